//! A message's place in the durable inbox, as every transport holds it while the message is
//! answered: the guard that records the turn's start, the answer and the end, and the report of
//! entries whose turns a stop cut off.

use crate::chat::session::StartHook;
use crate::core::inbox::{InboxEntry, cut_notice};
use crate::runtime::bus::BusHandle;
use crate::store::inbox_journal::SharedInbox;

/// A message's entry in the durable inbox: its turn start is recorded, and the entry is done
/// when the message's answer is over (whatever way it ends).
#[derive(Debug)]
pub struct InboxEntryGuard {
    inbox: SharedInbox,
    id: u64,
    kept: bool,
}

impl InboxEntryGuard {
    /// Guards entry `id`.
    pub fn new(inbox: SharedInbox, id: u64) -> Self {
        Self { inbox, id, kept: false }
    }

    /// The hook that records the turn's start (given to the Orchestrator with the message).
    pub fn start_hook(&self) -> StartHook {
        let (inbox, id) = (self.inbox.clone(), self.id);
        StartHook::new(move || inbox.started(id))
    }

    pub(crate) fn answered(&self, text: &str) {
        self.inbox.answered(self.id, text);
    }

    /// Done now.
    pub(crate) fn finish(self) {
        drop(self);
    }

    /// Not done: the entry stays in the inbox and the next start takes it up again (its chat's
    /// Session stopped while the message waited in its queue — a restart or a shutdown).
    pub(crate) fn keep(mut self) {
        self.kept = true;
        tracing::info!(entry = self.id, "A waiting message is kept for the next start.");
    }
}

impl Drop for InboxEntryGuard {
    fn drop(&mut self) {
        if !self.kept {
            self.inbox.done(self.id);
        }
    }
}

/// The stale messages of one chat, waiting to be listed in one notice: the person's own words
/// and each message's inbox entry (done once the notice is out).
pub type StaleMessages = Vec<(String, Option<InboxEntryGuard>)>;

/// Reports inbox entries whose turns a stop cut off (one notice each, through the Bus, where it
/// is durable) and marks them done; an entry whose notice the Bus did not take stays for the
/// next start.
pub async fn report_cut(bus: &BusHandle, inbox: &SharedInbox, cut: &[InboxEntry]) {
    for entry in cut {
        match bus.submit(cut_notice(entry)).await {
            Ok(_) => inbox.done(entry.id),
            Err(e) => {
                tracing::warn!(chat = %entry.chat_id.get(), error = %e, "Could not report a cut turn; kept for the next start.")
            }
        }
    }
}

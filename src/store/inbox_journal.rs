//! The inbox journal file (`<home>/inbox.jsonl`, see `core::inbox`): records are appended in
//! batches made durable with one fsync each — a burst of messages costs one fsync before the
//! upstream confirmation — and the file is compacted to the pending entries when it is opened.

use std::fs::{self, File, OpenOptions};
use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::inbox::{Inbox, InboxRecord};
use crate::store::atomic::{self, Durability, StoreError};

/// The open journal.
#[derive(Debug)]
pub struct InboxJournal {
    path: Utf8PathBuf,
    file: File,
    fsyncs: u64,
}

impl InboxJournal {
    /// Opens (creating if needed) and replays the journal; unreadable lines (other than a torn
    /// last line) leave a copy of the file aside before it is compacted.
    pub fn open(path: &Utf8Path) -> Result<(Self, Inbox), StoreError> {
        let text = match fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(StoreError::io("read", path, e)),
        };
        let (inbox, bad) = Inbox::replay(&text);
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        let torn_tail_only = bad.len() == 1 && bad[0] == lines && !text.ends_with('\n');
        if !bad.is_empty() && !torn_tail_only {
            let aside = atomic::quarantine_path(path, chrono::Utc::now());
            fs::copy(path, &aside).map_err(|e| StoreError::io("copy aside", &aside, e))?;
            tracing::warn!(path = %path, kept_at = %aside, bad_lines = ?bad, "Inbox journal has unreadable lines; kept a copy.");
        }
        let mut compacted = String::new();
        for record in inbox.compacted() {
            compacted.push_str(&line(path, &record)?);
        }
        atomic::write_bytes_atomic(path, compacted.as_bytes(), Durability::Fsync)?;
        let file = OpenOptions::new().append(true).open(path).map_err(|e| StoreError::io("open", path, e))?;
        Ok((Self { path: path.to_owned(), file, fsyncs: 0 }, inbox))
    }

    /// Appends records and makes them durable with one fsync.
    pub fn write(&mut self, records: &[InboxRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for record in records {
            text.push_str(&line(&self.path, record)?);
        }
        self.file.write_all(text.as_bytes()).map_err(|e| StoreError::io("append", &self.path, e))?;
        self.file.sync_data().map_err(|e| StoreError::io("fsync", &self.path, e))?;
        self.fsyncs += 1;
        Ok(())
    }

    /// fsyncs so far (for benchmarks).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
    }
}

fn line(path: &Utf8Path, record: &InboxRecord) -> Result<String, StoreError> {
    serde_json::to_string(record)
        .map(|l| l + "\n")
        .map_err(|source| StoreError::Serialise { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::inbox::InboxEntry;
    use crate::core::session_key::ChatId;

    fn add(id: u64) -> InboxRecord {
        InboxRecord::Add(Box::new(InboxEntry {
            id,
            transport: "tg".into(),
            chat_id: ChatId::from(7i64),
            topic_id: None,
            upstream: format!("tg:7:{id}"),
            reply_to: None,
            text: "hi".into(),
            prompt: "hi".into(),
            at: 1.0,
            message: None,
        }))
    }

    #[test]
    fn a_burst_is_one_fsync_and_survives_a_reopen_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("inbox.jsonl")).unwrap();
        let (mut journal, inbox) = InboxJournal::open(&path).unwrap();
        assert!(inbox.is_empty());
        journal.write(&[add(1), add(2), add(3)]).unwrap();
        journal.write(&[InboxRecord::Done { id: 2 }]).unwrap();
        assert_eq!(journal.fsyncs(), 2);
        drop(journal);
        let (_, inbox) = InboxJournal::open(&path).unwrap();
        assert_eq!(inbox.len(), 2);
        assert!(inbox.knows("tg:7:3") && !inbox.knows("tg:7:2"));
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2, "compacted on open");
    }

    #[test]
    fn garbage_is_kept_aside_and_a_torn_tail_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("inbox.jsonl")).unwrap();
        let good = serde_json::to_string(&add(1)).unwrap();
        fs::write(&path, format!("{good}\n{{\"op\":\"add\"")).unwrap();
        let (_, inbox) = InboxJournal::open(&path).unwrap();
        assert_eq!(inbox.len(), 1);
        let aside = |dir: &std::path::Path| {
            fs::read_dir(dir)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("corrupt"))
                .count()
        };
        assert_eq!(aside(dir.path()), 0, "a torn last line is a crash mid-write, not corruption");
        fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        let (_, inbox) = InboxJournal::open(&path).unwrap();
        assert_eq!(inbox.len(), 1);
        assert_eq!(aside(dir.path()), 1, "garbage is kept aside");
    }
}

/// Test seam: `1` makes a transport abort the process right after a batch is in the inbox and
/// before it is confirmed upstream (Telegram offset, Matrix sync token) — the instant a
/// `kill -9` is hardest to hit from outside.
pub const CRASH_BEFORE_CONFIRM_ENV: &str = "DUCTOR_TEST_CRASH_BEFORE_CONFIRM";

/// Test seam: `1` makes the Matrix transport abort the process right after an answer was
/// accepted by the homeserver and before its inbox entry is done.
pub const CRASH_AFTER_ANSWER_ENV: &str = "DUCTOR_TEST_CRASH_AFTER_ANSWER";

/// The inbox shared by a transport and its answer tasks: ids are handed out at once, records
/// are written in batches. A message answered before its batch was written is simply left out
/// of it (there is nothing to replay).
#[derive(Debug, Clone, Default)]
pub struct SharedInbox {
    state: std::sync::Arc<std::sync::Mutex<Option<SharedState>>>,
}

#[derive(Debug)]
struct SharedState {
    journal: InboxJournal,
    inbox: Inbox,
    next_id: u64,
    started_early: std::collections::HashSet<u64>,
    done_early: std::collections::HashSet<u64>,
}

impl SharedInbox {
    /// Opens the journal; without one (an I/O error, logged) messages are not made durable.
    pub fn open(path: &Utf8Path) -> Self {
        let state = match InboxJournal::open(path) {
            Ok((journal, inbox)) => Some(SharedState {
                next_id: inbox.next_id(),
                journal,
                inbox,
                started_early: Default::default(),
                done_early: Default::default(),
            }),
            Err(e) => {
                tracing::error!(path = %path, error = %e, "Inbox unavailable; messages are not kept across crashes.");
                None
            }
        };
        Self { state: std::sync::Arc::new(std::sync::Mutex::new(state)) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut SharedState) -> T) -> Option<T> {
        let mut guard = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.as_mut().map(f)
    }

    /// A fresh entry id.
    pub fn allocate(&self) -> Option<u64> {
        self.with(|s| {
            let id = s.next_id;
            s.next_id += 1;
            id
        })
    }

    /// Whether this upstream message is already in the inbox (a redelivery).
    pub fn knows(&self, upstream: &str) -> bool {
        self.with(|s| s.inbox.knows(upstream)).unwrap_or(false)
    }

    /// Entries waiting.
    pub fn depth(&self) -> usize {
        self.with(|s| s.inbox.len()).unwrap_or(0)
    }

    /// Makes a batch of new entries durable with one fsync.
    pub fn record(&self, entries: Vec<crate::core::inbox::InboxEntry>) {
        self.with(|s| {
            let mut records = Vec::new();
            for entry in entries {
                if s.done_early.remove(&entry.id) {
                    s.started_early.remove(&entry.id);
                    continue;
                }
                let id = entry.id;
                records.push(InboxRecord::Add(Box::new(entry)));
                if s.started_early.remove(&id) {
                    records.push(InboxRecord::Started { id });
                }
            }
            s.write(records);
        });
    }

    /// The entry's turn started.
    pub fn started(&self, id: u64) {
        self.with(|s| {
            if s.inbox.contains(id) {
                s.write(vec![InboxRecord::Started { id }]);
            } else {
                s.started_early.insert(id);
            }
        });
    }

    /// The entry's answer, recorded before it is delivered.
    pub fn answered(&self, id: u64, text: &str) {
        self.with(|s| {
            if s.inbox.contains(id) {
                s.write(vec![InboxRecord::Answered { id, text: text.to_owned() }]);
            }
        });
    }

    /// The entry is finished with (answered, reported or dropped).
    pub fn done(&self, id: u64) {
        self.with(|s| {
            if s.inbox.contains(id) {
                s.write(vec![InboxRecord::Done { id }]);
            } else {
                s.done_early.insert(id);
            }
        });
    }

    /// What start-up does with what was left.
    pub fn startup_plan(&self, transport: &str, now: f64, max_age_s: f64) -> crate::core::inbox::StartupPlan {
        self.with(|s| s.inbox.startup_plan(transport, now, max_age_s)).unwrap_or_default()
    }
}

impl Drop for SharedState {
    fn drop(&mut self) {
        tracing::info!(fsyncs = self.journal.fsyncs(), waiting = self.inbox.len(), "Inbox closed.");
    }
}

impl SharedState {
    fn write(&mut self, records: Vec<InboxRecord>) {
        if records.is_empty() {
            return;
        }
        match self.journal.write(&records) {
            Ok(()) => records.into_iter().for_each(|r| self.inbox.apply(r)),
            Err(e) => tracing::error!(error = %e, "Could not write to the inbox."),
        }
    }
}

//! The durable inbox (transports spec §4, core §4.9): every message a
//! person sends is recorded before it is confirmed upstream, and removed once its turn has
//! ended. This module is the pure part: the journal records, folding them into the pending
//! entries, recognising a redelivered upstream id, and the start-up plan (run again in order,
//! report the cut one, list the stale ones, never replay immediate commands).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::command::ChatCommand;
use crate::core::envelope::{Envelope, Origin};
use crate::core::session_key::ChatId;

/// One recorded message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// Increasing id (arrival order across the agent).
    pub id: u64,
    /// Transport short name (`tg`, `mx`).
    pub transport: String,
    /// The chat.
    pub chat_id: ChatId,
    /// The forum topic / thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<i64>,
    /// The upstream identity (`tg:<chat>:<message id>`, a Matrix event id) for redeliveries.
    pub upstream: String,
    /// The upstream message id answers reply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// What the person wrote (shown in notices; never the prompt hooks).
    pub text: String,
    /// What runs (the text, or the incoming-file prompt).
    pub prompt: String,
    /// Unix seconds the person sent it (Telegram's `date`, the Matrix event's
    /// `origin_server_ts`): the age rule counts from here, not from when ductor saw it.
    pub at: f64,
    /// The upstream message as received (a Telegram message), run through the transport's
    /// pipeline again when the entry is replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<serde_json::Value>,
}

/// A line of the inbox journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum InboxRecord {
    /// A message arrived.
    Add(Box<InboxEntry>),
    /// Its turn started (a crash from here on means "cut", not "run again").
    Started {
        /// The entry.
        id: u64,
    },
    /// Its turn ended with this answer, about to be delivered (a crash from here on means
    /// "deliver the answer again", never "run the message again").
    Answered {
        /// The entry.
        id: u64,
        /// The answer (Markdown).
        text: String,
    },
    /// Its turn ended and the answer is out (or it was reported / dropped).
    Done {
        /// The entry.
        id: u64,
    },
}

/// The pending entries, folded from the journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inbox {
    entries: BTreeMap<u64, (InboxEntry, bool)>,
    answers: BTreeMap<u64, String>,
    next_id: u64,
}

impl Inbox {
    /// Applies one record.
    pub fn apply(&mut self, record: InboxRecord) {
        match record {
            InboxRecord::Add(entry) => {
                self.next_id = self.next_id.max(entry.id + 1);
                self.entries.insert(entry.id, (*entry, false));
            }
            InboxRecord::Started { id } => {
                if let Some((_, started)) = self.entries.get_mut(&id) {
                    *started = true;
                }
            }
            InboxRecord::Answered { id, text } => {
                if self.entries.contains_key(&id) {
                    self.answers.insert(id, text);
                }
            }
            InboxRecord::Done { id } => {
                self.entries.remove(&id);
                self.answers.remove(&id);
            }
        }
    }

    /// Folds journal text; unreadable lines are returned by number (1-based).
    pub fn replay(text: &str) -> (Self, Vec<usize>) {
        let mut inbox = Self::default();
        let mut bad = Vec::new();
        for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            match serde_json::from_str::<InboxRecord>(line) {
                Ok(record) => inbox.apply(record),
                Err(_) => bad.push(index + 1),
            }
        }
        (inbox, bad)
    }

    /// The id the next entry gets.
    pub fn next_id(&self) -> u64 {
        self.next_id.max(1)
    }

    /// Whether an upstream message is already recorded (a redelivery).
    pub fn knows(&self, upstream: &str) -> bool {
        self.entries.values().any(|(e, _)| e.upstream == upstream)
    }

    /// Whether an entry is pending.
    pub fn contains(&self, id: u64) -> bool {
        self.entries.contains_key(&id)
    }

    /// Pending entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The records that rebuild this state (for compaction).
    pub fn compacted(&self) -> Vec<InboxRecord> {
        let mut records = Vec::new();
        for (entry, started) in self.entries.values() {
            records.push(InboxRecord::Add(Box::new(entry.clone())));
            if *started {
                records.push(InboxRecord::Started { id: entry.id });
            }
            if let Some(text) = self.answers.get(&entry.id) {
                records.push(InboxRecord::Answered { id: entry.id, text: text.clone() });
            }
        }
        records
    }

    /// What to do at start with what `transport` left (see [`StartupPlan`]); each transport
    /// takes care of its own entries.
    pub fn startup_plan(&self, transport: &str, now: f64, max_age_s: f64) -> StartupPlan {
        let mut plan = StartupPlan::default();
        for (entry, started) in self.entries.values().filter(|(e, _)| e.transport == transport) {
            if let Some(answer) = self.answers.get(&entry.id) {
                plan.redeliver.push((entry.clone(), answer.clone()));
            } else if *started {
                plan.cut.push(entry.clone());
            } else if is_immediate(&entry.text) {
                plan.dropped.push(entry.clone());
            } else if now - entry.at > max_age_s {
                plan.stale
                    .entry((entry.transport.clone(), entry.chat_id, entry.topic_id))
                    .or_default()
                    .push(entry.clone());
            } else {
                plan.rerun.push(entry.clone());
            }
        }
        plan
    }
}

/// The "Interrupted Task" notice of an entry whose turn a stop cut off, quoting the person's
/// own words, to its chat.
pub fn cut_notice(entry: &InboxEntry) -> Envelope {
    Envelope {
        origin: Origin::Recovery,
        chat_id: entry.chat_id,
        topic_id: entry.topic_id,
        transport: entry.transport.clone(),
        result_text: crate::core::recovery::interrupted_notice(&entry.text),
        status: "interrupted".to_owned(),
        ..Envelope::default()
    }
}

/// A JSON value without its `null` fields (how Telegram sends objects; teloxide reads its
/// own serialisation back only in that form).
pub fn without_nulls(mut value: serde_json::Value) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.retain(|_, v| !v.is_null());
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

/// Commands that act at once and are never replayed (`/stop`, `/interrupt`, `/stop_all`,
/// `/new`, and their bare words like `stop` or `esc`).
pub fn is_immediate(text: &str) -> bool {
    let without_bot = match text.trim().split_once(char::is_whitespace) {
        Some((first, rest)) => format!("{} {rest}", first.split('@').next().unwrap_or(first)),
        None => text.trim().split('@').next().unwrap_or_default().to_owned(),
    };
    matches!(
        crate::core::command::classify(&without_bot, None),
        ChatCommand::Stop | ChatCommand::StopAll | ChatCommand::Interrupt | ChatCommand::New
    )
}

/// What start-up does with the entries left in the inbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartupPlan {
    /// Run again, in arrival order (per chat order follows).
    pub rerun: Vec<InboxEntry>,
    /// Their turn was running when ductor died: reported once as cut, not run again.
    pub cut: Vec<InboxEntry>,
    /// Too old to run blindly: listed to their chat in one notice.
    pub stale: BTreeMap<(String, ChatId, Option<i64>), Vec<InboxEntry>>,
    /// Immediate commands: dropped.
    pub dropped: Vec<InboxEntry>,
    /// Answered but maybe not delivered: the answer goes out again (the turn does not run again).
    pub redeliver: Vec<(InboxEntry, String)>,
}

/// The one notice listing a chat's stale messages (their own words).
pub fn stale_notice(entries: &[InboxEntry]) -> String {
    stale_notice_of(entries.iter().map(|e| e.text.as_str()))
}

/// The same notice from the texts themselves.
pub fn stale_notice_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let lines: Vec<String> = texts
        .into_iter()
        .map(|text| {
            let text: String = text.chars().take(200).collect();
            format!("- {}", text.replace('\n', " "))
        })
        .collect();
    crate::core::text::render("inbox.stale", &[("messages", &lines.join("\n"))])
}

/// What becomes of a message as it reaches ductor — also one that waited upstream while ductor
/// was down, restarting or offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Answered, in order.
    Run,
    /// Older than `inbox_max_age_minutes`: listed to its chat in one notice, never run.
    Stale,
    /// An immediate command (`/stop`, `/interrupt`, …) that is stale or was sent before this
    /// start: there is nothing it could stop now; dropped.
    Dropped,
}

/// The rule for a message `text` the person sent at `sent_at` (Unix seconds, the upstream's
/// own time), seen at `now`; `waited_upstream`: it was already waiting upstream when the
/// transport started (the first batches, fetched without waiting).
pub fn arrival(text: &str, sent_at: f64, now: f64, max_age_s: f64, waited_upstream: bool) -> Arrival {
    let stale = now - sent_at > max_age_s;
    if is_immediate(text) && (stale || waited_upstream) {
        Arrival::Dropped
    } else if stale {
        Arrival::Stale
    } else {
        Arrival::Run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, chat: i64, text: &str, at: f64) -> InboxEntry {
        InboxEntry {
            id,
            transport: "tg".into(),
            chat_id: ChatId::from(chat),
            topic_id: None,
            upstream: format!("tg:{chat}:{id}"),
            reply_to: Some(id as i64),
            text: text.into(),
            prompt: format!("{text}\n\n## HOOK"),
            at,
            message: None,
        }
    }

    fn journal(records: &[InboxRecord]) -> String {
        records.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect()
    }

    #[test]
    fn fold_knows_redeliveries_and_compacts() {
        let text = journal(&[
            InboxRecord::Add(Box::new(entry(1, 7, "a", 100.0))),
            InboxRecord::Add(Box::new(entry(2, 7, "b", 100.0))),
            InboxRecord::Started { id: 1 },
            InboxRecord::Done { id: 1 },
            InboxRecord::Add(Box::new(entry(3, 8, "c", 100.0))),
            InboxRecord::Started { id: 3 },
        ]) + "{torn";
        let (inbox, bad) = Inbox::replay(&text);
        assert_eq!(bad, [7]);
        assert_eq!(inbox.len(), 2);
        assert_eq!(inbox.next_id(), 4);
        assert!(inbox.knows("tg:7:2") && !inbox.knows("tg:7:1"));
        let (again, _) = Inbox::replay(&journal(&inbox.compacted()));
        assert_eq!(again, inbox, "compaction keeps the state");
    }

    #[test]
    fn immediate_commands_and_their_words() {
        for text in ["/stop", "/stop@DuctorBot", "stop", "esc", "/interrupt", "/stop_all", "stop all", "/new"] {
            assert!(is_immediate(text), "{text}");
        }
        for text in ["stop please", "/status", "hello", "/new_thing"] {
            assert!(!is_immediate(text), "{text}");
        }
    }

    #[test]
    fn startup_reruns_reports_lists_and_drops() {
        let mut inbox = Inbox::default();
        for record in [
            InboxRecord::Add(Box::new(entry(1, 7, "running one", 9000.0))),
            InboxRecord::Started { id: 1 },
            InboxRecord::Add(Box::new(entry(2, 7, "next one", 9000.0))),
            InboxRecord::Add(Box::new(entry(3, 7, "/stop", 9000.0))),
            InboxRecord::Add(Box::new(entry(4, 8, "old one", 10.0))),
            InboxRecord::Add(Box::new(entry(5, 8, "older one", 5.0))),
            InboxRecord::Add(Box::new(entry(6, 9, "answered one", 9000.0))),
            InboxRecord::Started { id: 6 },
            InboxRecord::Answered { id: 6, text: "the answer".into() },
        ] {
            inbox.apply(record);
        }
        let plan = inbox.startup_plan("tg", 10_000.0, 3600.0);
        assert_eq!(plan.cut.iter().map(|e| e.id).collect::<Vec<_>>(), [1]);
        assert_eq!(plan.rerun.iter().map(|e| e.id).collect::<Vec<_>>(), [2]);
        assert_eq!(plan.dropped.iter().map(|e| e.id).collect::<Vec<_>>(), [3]);
        assert_eq!(plan.redeliver.iter().map(|(e, a)| (e.id, a.as_str())).collect::<Vec<_>>(), [(6, "the answer")]);
        let (again, _) = Inbox::replay(&journal(&inbox.compacted()));
        assert_eq!(again, inbox, "answers survive compaction");
        let stale = &plan.stale[&("tg".to_owned(), ChatId::from(8i64), None)];
        assert_eq!(stale.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5]);
        let notice = stale_notice(stale);
        assert!(notice.contains("- old one\n- older one"), "{notice}");
        assert!(!notice.contains("HOOK"), "the person's words, not the prompt hooks");
    }

    #[test]
    fn arrivals_run_when_young_are_listed_when_old_and_immediate_commands_from_before_the_start_drop() {
        let (now, hour) = (10_000.0, 3600.0);
        assert_eq!(arrival("hello", 9_995.0, now, hour, false), Arrival::Run);
        assert_eq!(arrival("sent while down", 9_000.0, now, hour, true), Arrival::Run);
        assert_eq!(arrival("sent long ago", 6_000.0, now, hour, true), Arrival::Stale);
        assert_eq!(arrival("/status", 6_000.0, now, hour, false), Arrival::Stale);
        assert_eq!(arrival("/stop", 9_999.0, now, hour, true), Arrival::Dropped, "waited while ductor was down");
        assert_eq!(arrival("/interrupt", 6_000.0, now, hour, false), Arrival::Dropped, "stale");
        assert_eq!(arrival("/stop", 9_999.0, now, hour, false), Arrival::Run);
    }
}

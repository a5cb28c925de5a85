//! The Bus's durable outbox as a journal of records, and its in-memory state.
//!
//! The journal (`<home>/outbox.jsonl`, one JSON record per line) is appended to and replayed on
//! start: `put` records an accepted envelope and the adapters it must reach; `ack` records one
//! adapter's confirmation; `drop` records a permanent refusal. An envelope leaves the outbox when
//! every target acked or dropped. A torn last line (a crash mid-append) is ignored; any other
//! unreadable line is reported so the file can be kept aside before it is compacted.
//!
//! **Delivery keys** make a submission idempotent: a producer that must deliver a result exactly
//! once (a cron run, a webhook request) puts a key in the envelope's metadata
//! ([`DELIVERY_KEY`]); the outbox remembers the keys it accepted — also after their envelopes
//! were delivered and compacted away, in a `keys` record — so the producer can ask after a
//! crash whether its result was already accepted, and a second submission with the same key is
//! not recorded again.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::core::bus_route::Target;
use crate::core::envelope::{Envelope, EnvelopeId};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// Externally tagged (`{"put": {...}}`): an internally tagged enum would buffer the envelope
/// and lose 128-bit chat ids.
#[serde(rename_all = "snake_case")]
pub enum JournalRecord {
    /// An envelope was accepted; it must reach `targets` (empty: held until a transport exists).
    Put {
        /// The envelope, with its id assigned.
        envelope: Box<Envelope>,
        /// The adapters it must reach.
        targets: Vec<Target>,
    },
    /// An adapter confirmed delivery.
    Ack {
        /// The envelope.
        id: EnvelopeId,
        /// The adapter.
        transport: String,
    },
    /// Delivery keys of envelopes accepted earlier (written by compaction).
    Keys {
        /// The keys, oldest first.
        keys: Vec<KeptKey>,
    },
    /// An adapter refused the envelope for good; it is not retried there.
    Drop {
        /// The envelope.
        id: EnvelopeId,
        /// The adapter.
        transport: String,
        /// Why.
        reason: String,
    },
}

impl JournalRecord {
    /// The journal line (JSON + `\n`).
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        Ok(line)
    }
}

/// The metadata field that holds an envelope's delivery key.
pub const DELIVERY_KEY: &str = "delivery_key";

/// How many delivery keys are remembered (the oldest are forgotten first). A key is only needed
/// until its producer has recorded that the result was handed over — at the next start at the
/// latest — so this covers far more than a crash can leave open.
pub const KEPT_KEYS: usize = 10_000;

/// A delivery key the outbox accepted, with the envelope it came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptKey {
    /// The producer's key.
    pub key: String,
    /// The envelope accepted with it.
    pub id: EnvelopeId,
}

/// The delivery keys accepted, in acceptance order, at most [`KEPT_KEYS`].
#[derive(Debug, Clone, Default)]
struct KeyLog {
    ids: HashMap<String, EnvelopeId>,
    order: VecDeque<String>,
}

impl KeyLog {
    fn remember(&mut self, key: &str, id: &EnvelopeId) {
        if self.ids.insert(key.to_owned(), id.clone()).is_none() {
            self.order.push_back(key.to_owned());
        }
        while self.order.len() > KEPT_KEYS {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }

    fn kept(&self) -> Vec<KeptKey> {
        self.order
            .iter()
            .filter_map(|key| self.ids.get(key).map(|id| KeptKey { key: key.clone(), id: id.clone() }))
            .collect()
    }
}

/// The delivery key of an envelope, if its producer set one.
pub fn delivery_key(envelope: &Envelope) -> Option<&str> {
    envelope.metadata.get(DELIVERY_KEY).and_then(serde_json::Value::as_str).filter(|k| !k.is_empty())
}

/// An envelope still in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEnvelope {
    /// The envelope.
    pub envelope: Envelope,
    /// Targets that have not confirmed yet; empty = held (no transport yet).
    pub remaining: Vec<Target>,
}

/// What an ack or drop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The envelope has reached all its targets and left the outbox.
    Done,
    /// Other targets are still pending.
    StillPending,
    /// The envelope or target was not pending (a duplicate confirmation).
    NotPending,
}

/// The pending envelopes, in the order they were accepted.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    by_seq: BTreeMap<u64, PendingEnvelope>,
    seq_of: HashMap<EnvelopeId, u64>,
    next_seq: u64,
    keys: KeyLog,
}

/// What a replay found besides the records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records applied.
    pub records: usize,
    /// 1-based numbers of lines that did not parse (the torn tail excluded).
    pub bad_lines: Vec<usize>,
    /// The last line was incomplete (a crash during an append) and was ignored.
    pub torn_tail: bool,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the outbox from journal text.
    pub fn replay(text: &str) -> (Self, ReplayReport) {
        let mut outbox = Self::new();
        let mut report = ReplayReport::default();
        let ends_with_newline = text.ends_with('\n');
        let lines: Vec<&str> = text.split('\n').collect();
        let last_index = lines.len().saturating_sub(1);
        for (index, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<JournalRecord>(line) {
                Ok(record) => {
                    outbox.apply(record);
                    report.records += 1;
                }
                Err(_) if index == last_index && !ends_with_newline => report.torn_tail = true,
                Err(_) => report.bad_lines.push(index + 1),
            }
        }
        (outbox, report)
    }

    /// Applies one record.
    pub fn apply(&mut self, record: JournalRecord) -> Settled {
        match record {
            JournalRecord::Put { envelope, targets } => {
                self.put(*envelope, targets);
                Settled::StillPending
            }
            JournalRecord::Ack { id, transport } | JournalRecord::Drop { id, transport, .. } => {
                self.settle(&id, &transport)
            }
            JournalRecord::Keys { keys } => {
                for kept in keys {
                    self.keys.remember(&kept.key, &kept.id);
                }
                Settled::NotPending
            }
        }
    }

    /// Adds an accepted envelope (and remembers its delivery key). A second put of the same id
    /// replaces the first.
    pub fn put(&mut self, envelope: Envelope, targets: Vec<Target>) {
        if let Some(key) = delivery_key(&envelope) {
            self.keys.remember(key, &envelope.envelope_id);
        }
        if let Some(old) = self.seq_of.remove(&envelope.envelope_id) {
            self.by_seq.remove(&old);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seq_of.insert(envelope.envelope_id.clone(), seq);
        self.by_seq.insert(seq, PendingEnvelope { envelope, remaining: targets });
    }

    /// Marks one target of `id` as done (confirmed or permanently refused).
    pub fn settle(&mut self, id: &EnvelopeId, transport: &str) -> Settled {
        let Some(&seq) = self.seq_of.get(id) else {
            return Settled::NotPending;
        };
        let Some(entry) = self.by_seq.get_mut(&seq) else {
            return Settled::NotPending;
        };
        let before = entry.remaining.len();
        entry.remaining.retain(|t| t.transport != transport);
        if entry.remaining.len() == before {
            return Settled::NotPending;
        }
        if entry.remaining.is_empty() {
            self.by_seq.remove(&seq);
            self.seq_of.remove(id);
            Settled::Done
        } else {
            Settled::StillPending
        }
    }

    /// Replaces the targets of a pending envelope (re-routing a held one).
    pub fn retarget(&mut self, id: &EnvelopeId, targets: Vec<Target>) {
        if let Some(entry) = self.seq_of.get(id).and_then(|seq| self.by_seq.get_mut(seq)) {
            entry.remaining = targets;
        }
    }

    /// Removes an envelope whatever its targets (replaced by a fallback).
    pub fn remove(&mut self, id: &EnvelopeId) -> Option<PendingEnvelope> {
        let seq = self.seq_of.remove(id)?;
        self.by_seq.remove(&seq)
    }

    /// The envelope accepted with a delivery key, if the key is known (pending or delivered).
    pub fn accepted_with(&self, key: &str) -> Option<&EnvelopeId> {
        self.keys.ids.get(key)
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &EnvelopeId) -> bool {
        self.seq_of.contains_key(id)
    }

    /// A pending envelope.
    pub fn get(&self, id: &EnvelopeId) -> Option<&PendingEnvelope> {
        self.seq_of.get(id).and_then(|seq| self.by_seq.get(seq))
    }

    /// Pending envelopes in acceptance order.
    pub fn iter(&self) -> impl Iterator<Item = &PendingEnvelope> {
        self.by_seq.values()
    }

    /// How many envelopes are pending.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// The records that rebuild this outbox, for compaction: the delivery keys remembered, then
    /// one `put` per pending envelope.
    pub fn compacted(&self) -> Vec<JournalRecord> {
        let keys = self.keys.kept();
        let puts = self
            .by_seq
            .values()
            .map(|p| JournalRecord::Put { envelope: Box::new(p.envelope.clone()), targets: p.remaining.clone() });
        (!keys.is_empty()).then_some(JournalRecord::Keys { keys }).into_iter().chain(puts).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::envelope::DeliveryMode;

    fn env(id: &str) -> Envelope {
        Envelope { envelope_id: EnvelopeId::parse(id).unwrap(), result_text: id.into(), ..Envelope::default() }
    }

    fn target(t: &str) -> Target {
        Target { transport: t.into(), mode: DeliveryMode::Unicast }
    }

    fn put(id: &str, targets: &[&str]) -> JournalRecord {
        JournalRecord::Put { envelope: Box::new(env(id)), targets: targets.iter().map(|t| target(t)).collect() }
    }

    fn ack(id: &str, t: &str) -> JournalRecord {
        JournalRecord::Ack { id: EnvelopeId::parse(id).unwrap(), transport: t.into() }
    }

    fn journal(records: &[JournalRecord]) -> String {
        records.iter().map(|r| r.to_line().unwrap()).collect()
    }

    #[test]
    fn envelope_leaves_only_when_every_target_confirmed() {
        let mut outbox = Outbox::new();
        outbox.apply(put("aaaaaaaaaaaa", &["tg", "mx"]));
        assert_eq!(outbox.apply(ack("aaaaaaaaaaaa", "tg")), Settled::StillPending);
        assert_eq!(outbox.apply(ack("aaaaaaaaaaaa", "tg")), Settled::NotPending, "duplicate ack");
        assert_eq!(outbox.apply(ack("aaaaaaaaaaaa", "mx")), Settled::Done);
        assert!(outbox.is_empty());
    }

    #[test]
    fn replay_keeps_order_and_skips_torn_tail() {
        let mut text = journal(&[
            put("aaaaaaaaaaaa", &["tg"]),
            put("bbbbbbbbbbbb", &["tg"]),
            ack("aaaaaaaaaaaa", "tg"),
            put("cccccccccccc", &["tg"]),
        ]);
        text.push_str("{\"op\":\"put\",\"envel");
        let (outbox, report) = Outbox::replay(&text);
        assert!(report.torn_tail);
        assert!(report.bad_lines.is_empty());
        let ids: Vec<_> = outbox.iter().map(|p| p.envelope.envelope_id.to_string()).collect();
        assert_eq!(ids, ["bbbbbbbbbbbb", "cccccccccccc"]);
    }

    #[test]
    fn replay_reports_bad_lines_in_the_middle() {
        let text = format!(
            "{}garbage\n{}",
            journal(&[put("aaaaaaaaaaaa", &["tg"])]),
            journal(&[put("bbbbbbbbbbbb", &["tg"])])
        );
        let (outbox, report) = Outbox::replay(&text);
        assert_eq!(report.bad_lines, vec![2]);
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn compaction_rebuilds_the_same_outbox() {
        let text = journal(&[
            put("aaaaaaaaaaaa", &["tg", "mx"]),
            put("bbbbbbbbbbbb", &["tg"]),
            ack("aaaaaaaaaaaa", "mx"),
            ack("bbbbbbbbbbbb", "tg"),
        ]);
        let (outbox, _) = Outbox::replay(&text);
        let (again, _) = Outbox::replay(&journal(&outbox.compacted()));
        assert_eq!(again.iter().collect::<Vec<_>>(), outbox.iter().collect::<Vec<_>>());
        assert_eq!(again.get(&EnvelopeId::parse("aaaaaaaaaaaa").unwrap()).unwrap().remaining, vec![target("tg")]);
    }

    fn keyed(id: &str, key: &str) -> JournalRecord {
        let mut envelope = env(id);
        envelope.metadata.insert(DELIVERY_KEY.into(), key.into());
        JournalRecord::Put { envelope: Box::new(envelope), targets: vec![target("tg")] }
    }

    #[test]
    fn delivery_keys_outlive_their_envelopes_through_compaction() {
        let text = journal(&[
            keyed("aaaaaaaaaaaa", "cron:daily:1"),
            keyed("bbbbbbbbbbbb", "cron:daily:2"),
            ack("aaaaaaaaaaaa", "tg"),
        ]);
        let (outbox, _) = Outbox::replay(&text);
        assert_eq!(outbox.accepted_with("cron:daily:1"), EnvelopeId::parse("aaaaaaaaaaaa").as_ref(), "delivered");
        assert_eq!(outbox.accepted_with("cron:daily:2"), EnvelopeId::parse("bbbbbbbbbbbb").as_ref(), "pending");
        assert_eq!(outbox.accepted_with("cron:daily:3"), None);
        let (again, _) = Outbox::replay(&journal(&outbox.compacted()));
        assert_eq!(again.accepted_with("cron:daily:1"), EnvelopeId::parse("aaaaaaaaaaaa").as_ref());
        assert_eq!(again.len(), 1, "only the pending envelope is put again");
    }

    #[test]
    fn the_oldest_keys_are_forgotten_past_the_limit() {
        let mut outbox = Outbox::new();
        for n in 0..=KEPT_KEYS {
            let id = format!("{n:012x}");
            outbox.apply(keyed(&id, &format!("k{n}")));
            outbox.apply(ack(&id, "tg"));
        }
        assert_eq!(outbox.accepted_with("k0"), None);
        assert!(outbox.accepted_with("k1").is_some());
        assert!(outbox.accepted_with(&format!("k{KEPT_KEYS}")).is_some());
    }

    proptest::proptest! {
        #[test]
        fn replay_never_panics_on_garbage(text in ".{0,400}") {
            let _ = Outbox::replay(&text);
        }
    }
}

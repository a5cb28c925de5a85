//! The outbox journal file (`<home>/outbox.jsonl`): append with group fsync, replay, compaction.

use std::fs::{self, File, OpenOptions};
use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::outbox::{JournalRecord, Outbox, ReplayReport};
use crate::store::atomic::{self, Durability, StoreError};

/// Compact when this many records were appended since the last compaction and most of the
/// journal is settled history.
const COMPACT_AFTER_RECORDS: usize = 4096;

/// The open journal.
#[derive(Debug)]
pub struct OutboxJournal {
    path: Utf8PathBuf,
    file: File,
    buffer: String,
    appended_since_compaction: usize,
    fsyncs: u64,
}

impl OutboxJournal {
    /// Opens (creating if needed) and replays the journal. Unreadable lines other than a torn
    /// tail make a copy of the file aside (`outbox.jsonl.corrupt-<ts>`) before the journal is
    /// compacted, so nothing is silently lost.
    pub fn open(path: &Utf8Path) -> Result<(Self, Outbox, ReplayReport), StoreError> {
        let text = match fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(StoreError::io("read", path, e)),
        };
        let (outbox, report) = Outbox::replay(&text);
        if !report.bad_lines.is_empty() {
            let aside = atomic::quarantine_path(path, chrono::Utc::now());
            fs::copy(path, &aside).map_err(|e| StoreError::io("copy aside", &aside, e))?;
            tracing::warn!(path = %path, kept_at = %aside, bad_lines = ?report.bad_lines,
                "Outbox journal has unreadable lines; kept a copy and continuing with the readable records.");
        }
        if report.torn_tail {
            tracing::warn!(path = %path, "Outbox journal ends in a torn record (crash during a write); ignored it.");
        }
        let file = write_compacted(path, &outbox)?;
        let journal =
            Self { path: path.to_owned(), file, buffer: String::new(), appended_since_compaction: 0, fsyncs: 0 };
        Ok((journal, outbox, report))
    }

    /// Queues a record; it reaches the disk at the next [`OutboxJournal::flush`].
    pub fn append(&mut self, record: &JournalRecord) -> Result<(), StoreError> {
        let line = record.to_line().map_err(|source| StoreError::Serialise { path: self.path.clone(), source })?;
        self.buffer.push_str(&line);
        self.appended_since_compaction += 1;
        Ok(())
    }

    /// Whether records are waiting for a flush.
    pub fn has_unflushed(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Writes queued records and makes them durable with one fsync.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file.write_all(self.buffer.as_bytes()).map_err(|e| StoreError::io("append", &self.path, e))?;
        self.file.sync_data().map_err(|e| StoreError::io("fsync", &self.path, e))?;
        self.fsyncs += 1;
        self.buffer.clear();
        Ok(())
    }

    /// fsyncs done so far (for benchmarks).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
    }

    /// Rewrites the journal as one `put` per pending envelope when enough history piled up.
    pub fn maybe_compact(&mut self, outbox: &Outbox) -> Result<(), StoreError> {
        if self.appended_since_compaction < COMPACT_AFTER_RECORDS || outbox.len() * 2 > self.appended_since_compaction {
            return Ok(());
        }
        self.flush()?;
        self.file = write_compacted(&self.path, outbox)?;
        self.appended_since_compaction = 0;
        Ok(())
    }
}

/// Atomically replaces the journal with the compacted records and reopens it for appending.
fn write_compacted(path: &Utf8Path, outbox: &Outbox) -> Result<File, StoreError> {
    let mut text = String::new();
    for record in outbox.compacted() {
        let line = record.to_line().map_err(|source| StoreError::Serialise { path: path.to_owned(), source })?;
        text.push_str(&line);
    }
    atomic::write_bytes_atomic(path, text.as_bytes(), Durability::Fsync)?;
    OpenOptions::new().append(true).open(path).map_err(|e| StoreError::io("open", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bus_route::Target;
    use crate::core::envelope::{DeliveryMode, Envelope, EnvelopeId};

    fn put(id: &str) -> JournalRecord {
        JournalRecord::Put {
            envelope: Box::new(Envelope { envelope_id: EnvelopeId::parse(id).unwrap(), ..Envelope::default() }),
            targets: vec![Target { transport: "tg".into(), mode: DeliveryMode::Unicast }],
        }
    }

    #[test]
    fn records_survive_a_reopen_and_settled_ones_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("outbox.jsonl")).unwrap();
        let (mut journal, _, _) = OutboxJournal::open(&path).unwrap();
        journal.append(&put("aaaaaaaaaaaa")).unwrap();
        journal.append(&put("bbbbbbbbbbbb")).unwrap();
        journal
            .append(&JournalRecord::Ack { id: EnvelopeId::parse("aaaaaaaaaaaa").unwrap(), transport: "tg".into() })
            .unwrap();
        journal.flush().unwrap();
        assert_eq!(journal.fsyncs(), 1);
        drop(journal);
        let (_, outbox, report) = OutboxJournal::open(&path).unwrap();
        assert_eq!(report.records, 3);
        assert_eq!(outbox.len(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1, "compacted on open");
    }

    #[test]
    fn garbage_lines_are_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("outbox.jsonl")).unwrap();
        let good = put("aaaaaaaaaaaa").to_line().unwrap();
        fs::write(&path, format!("not json\n{good}")).unwrap();
        let (_, outbox, report) = OutboxJournal::open(&path).unwrap();
        assert_eq!(outbox.len(), 1);
        assert_eq!(report.bad_lines, vec![1]);
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(fs::read_to_string(aside[0].path()).unwrap().starts_with("not json"));
    }
}

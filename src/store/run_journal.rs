//! The run journal file (`<home>/cron_runs.jsonl`, see `core::run_journal`): every record is
//! made durable (fsync) before the caller goes on — a webhook answers 202 and a cron job starts
//! its CLI only after its record is on disk. The file is compacted to the open runs when it is
//! opened; unreadable lines (other than a torn last line) leave a copy of the file aside first.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::run_journal::{OpenRuns, RunRecord};
use crate::store::atomic::{self, Durability, StoreError};

/// The open journal.
#[derive(Debug)]
pub struct RunJournal {
    path: Utf8PathBuf,
    file: File,
    open: OpenRuns,
}

impl RunJournal {
    /// Opens (creating if needed), replays and compacts the journal.
    pub fn open(path: &Utf8Path) -> Result<Self, StoreError> {
        let text = match fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(StoreError::io("read", path, e)),
        };
        let (open, report) = OpenRuns::replay(&text);
        if !report.bad_lines.is_empty() {
            let aside = atomic::quarantine_path(path, chrono::Utc::now());
            fs::copy(path, &aside).map_err(|e| StoreError::io("copy aside", &aside, e))?;
            tracing::warn!(path = %path, kept_at = %aside, bad_lines = ?report.bad_lines,
                "Run journal has unreadable lines; kept a copy and continuing with the readable records.");
        }
        if report.torn_tail {
            tracing::warn!(path = %path, "Run journal ends in a torn record (crash during a write); ignored it.");
        }
        let mut compacted = String::new();
        for record in open.compacted() {
            compacted.push_str(&line(path, &record)?);
        }
        atomic::write_bytes_atomic(path, compacted.as_bytes(), Durability::Fsync)?;
        let file = OpenOptions::new().append(true).open(path).map_err(|e| StoreError::io("open", path, e))?;
        Ok(Self { path: path.to_owned(), file, open })
    }

    /// Appends a record and makes it durable.
    pub fn record(&mut self, record: RunRecord) -> Result<(), StoreError> {
        let text = line(&self.path, &record)?;
        self.file.write_all(text.as_bytes()).map_err(|e| StoreError::io("append", &self.path, e))?;
        self.file.sync_data().map_err(|e| StoreError::io("fsync", &self.path, e))?;
        self.open.apply(record);
        Ok(())
    }

    /// The runs not finished.
    pub fn open_runs(&self) -> &OpenRuns {
        &self.open
    }
}

fn line(path: &Utf8Path, record: &RunRecord) -> Result<String, StoreError> {
    serde_json::to_string(record)
        .map(|l| l + "\n")
        .map_err(|source| StoreError::Serialise { path: path.to_owned(), source })
}

/// The run journal shared by the cron observer and the webhook dispatch of one agent.
#[derive(Debug, Clone)]
pub struct SharedRunJournal {
    journal: Arc<Mutex<RunJournal>>,
}

impl SharedRunJournal {
    /// Opens the journal at `path`.
    pub fn open(path: &Utf8Path) -> Result<Self, StoreError> {
        Ok(Self { journal: Arc::new(Mutex::new(RunJournal::open(path)?)) })
    }

    /// Appends a record and makes it durable.
    pub fn record(&self, record: RunRecord) -> Result<(), StoreError> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner).record(record)
    }

    /// A copy of the runs not finished.
    pub fn open_runs(&self) -> OpenRuns {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner).open_runs().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::run_journal::RunSource;

    fn started(run: &str) -> RunRecord {
        RunRecord::Started { run: run.into(), source: RunSource::Cron { job: "a".into() }, at: "t".into() }
    }

    #[test]
    fn open_runs_survive_a_reopen_and_finished_ones_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("cron_runs.jsonl")).unwrap();
        let journal = SharedRunJournal::open(&path).unwrap();
        journal.record(started("cron:a:1")).unwrap();
        journal.record(started("cron:a:2")).unwrap();
        journal.record(RunRecord::Finished { run: "cron:a:1".into(), status: "success".into() }).unwrap();
        drop(journal);
        let again = SharedRunJournal::open(&path).unwrap();
        let open: Vec<String> = again.open_runs().iter().map(|(id, _)| id.to_owned()).collect();
        assert_eq!(open, ["cron:a:2"]);
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1, "compacted at open");
    }

    #[test]
    fn a_corrupt_journal_is_kept_aside_and_the_readable_runs_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("cron_runs.jsonl")).unwrap();
        let good = serde_json::to_string(&started("cron:a:1")).unwrap();
        fs::write(&path, format!("{good}\nnot json\n")).unwrap();
        let journal = SharedRunJournal::open(&path).unwrap();
        assert_eq!(journal.open_runs().len(), 1);
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("cron_runs.jsonl.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "a copy of the corrupt journal is kept");
    }
}

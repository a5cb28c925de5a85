//! Read-modify-write of a state file that people, tools and the service all change
//! (`cron_jobs.json`, `webhooks.json`): under an exclusive lock on `<file>.lock`, the file is
//! read again, changed and written atomically — so two writers never lose each other's change.
//! A file that does not parse is an error here (never overwritten with what we happen to hold):
//! the caller reports it and keeps the person's file as it is.

use std::fs::{File, OpenOptions};

use camino::{Utf8Path, Utf8PathBuf};

use crate::store::atomic::{self, StoreError};
use crate::store::paths::DuctorPaths;
use crate::store::state_files::StateFile;

/// Why a locked update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LockedStateError {
    /// The lock file could not be opened or locked.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: Utf8PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: Utf8PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not parse; it was left as it is.
    #[error("{path} is not valid ({detail}); fix or remove it — it was left unchanged")]
    Corrupt {
        /// The file.
        path: Utf8PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] StoreError),
}

/// An exclusive lock on `<file>.lock`, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Waits for the exclusive lock of `path` (the file `<path>.lock` beside it).
    pub fn acquire(path: &Utf8Path) -> Result<Self, LockedStateError> {
        let lock_path = Utf8PathBuf::from(format!("{path}.lock"));
        if let Some(folder) = lock_path.parent() {
            let _ = std::fs::create_dir_all(folder);
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| LockedStateError::Lock { path: lock_path.clone(), source })?;
        file.lock().map_err(|source| LockedStateError::Lock { path: lock_path, source })?;
        Ok(Self { file })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Reads a state file strictly: missing → the default, unparsable → [`LockedStateError::Corrupt`].
pub fn read_strict<T: StateFile>(path: &Utf8Path) -> Result<T, LockedStateError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| LockedStateError::Corrupt { path: path.to_owned(), detail: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(LockedStateError::Read { path: path.to_owned(), source }),
    }
}

/// Under the file's lock: reads it again, lets `change` edit it, and writes it back atomically
/// when `change` says it changed something (`(changed, answer)`).
pub fn update<T: StateFile, R>(
    paths: &DuctorPaths,
    change: impl FnOnce(&mut T) -> (bool, R),
) -> Result<R, LockedStateError> {
    let path = T::path(paths);
    let _lock = FileLock::acquire(&path)?;
    let mut state: T = read_strict(&path)?;
    let (changed, answer) = change(&mut state);
    if changed {
        atomic::write_json_atomic(&path, &state)?;
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::state::cron_jobs::CronJobs;

    fn job(id: &str) -> serde_json::Value {
        serde_json::json!({"id": id, "title": id, "schedule": "* * * * *", "task_folder": id, "agent_instruction": "x"})
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = DuctorPaths::at(Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap());
        let threads: Vec<_> = (0..10)
            .map(|n| {
                let paths = paths.clone();
                std::thread::spawn(move || {
                    update::<CronJobs, ()>(&paths, |jobs| {
                        jobs.jobs.push(serde_json::from_value(job(&format!("job-{n}"))).unwrap());
                        (true, ())
                    })
                    .unwrap();
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let jobs: CronJobs = read_strict(&paths.cron_jobs()).unwrap();
        assert_eq!(jobs.jobs.len(), 10);
    }

    #[test]
    fn a_corrupt_file_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let paths = DuctorPaths::at(Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap());
        std::fs::write(paths.cron_jobs(), "{\"jobs\": [").unwrap();
        let err = update::<CronJobs, ()>(&paths, |_| (true, ())).unwrap_err();
        assert!(matches!(err, LockedStateError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("cron_jobs.json"), "{err}");
        assert_eq!(std::fs::read_to_string(paths.cron_jobs()).unwrap(), "{\"jobs\": [");
    }
}

//! `logs/agent.log`: a size-rotated log file (5 MiB, 3 backups `agent.log.1`..`.3`, ops §13).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use camino::{Utf8Path, Utf8PathBuf};

/// Rotate when the file would grow past this.
pub const MAX_BYTES: u64 = 5 * 1024 * 1024;
/// Backups kept.
pub const BACKUPS: u32 = 3;

#[derive(Debug)]
struct Inner {
    path: Utf8PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    backups: u32,
}

/// A cloneable handle to the rotating log; every write appends whole lines.
#[derive(Debug, Clone)]
pub struct RotatingLog {
    inner: Arc<Mutex<Inner>>,
}

impl RotatingLog {
    /// Opens (appending) with the standard limits.
    pub fn open(path: &Utf8Path) -> io::Result<Self> {
        Self::with_limits(path, MAX_BYTES, BACKUPS)
    }

    /// Opens with custom limits (tests).
    pub fn with_limits(path: &Utf8Path, max_bytes: u64, backups: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let inner = Inner { path: path.to_owned(), file, size, max_bytes, backups };
        Ok(Self { inner: Arc::new(Mutex::new(inner)) })
    }

    /// Appends `bytes` (one or more whole lines), rotating first when the limit would be passed.
    pub fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.size > 0 && inner.size + bytes.len() as u64 > inner.max_bytes {
            inner.rotate()?;
        }
        inner.file.write_all(bytes)?;
        inner.size += bytes.len() as u64;
        Ok(())
    }
}

impl Inner {
    fn rotate(&mut self) -> io::Result<()> {
        for n in (1..self.backups).rev() {
            let from = backup(&self.path, n);
            if from.exists() {
                fs::rename(&from, backup(&self.path, n + 1))?;
            }
        }
        if self.backups > 0 {
            fs::rename(&self.path, backup(&self.path, 1))?;
        } else {
            fs::remove_file(&self.path)?;
        }
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn backup(path: &Utf8Path, n: u32) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("{path}.{n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_three_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("agent.log")).unwrap();
        let log = RotatingLog::with_limits(&path, 100, 3).unwrap();
        let line = [b'x'; 39];
        for _ in 0..40 {
            log.append(&line).unwrap();
            log.append(b"\n").unwrap();
        }
        for n in 1..=3 {
            assert!(backup(&path, n).exists(), "backup {n}");
            assert!(fs::metadata(backup(&path, n)).unwrap().len() <= 100);
        }
        assert!(!backup(&path, 4).exists());
        assert!(fs::metadata(&path).unwrap().len() <= 100);
    }
}

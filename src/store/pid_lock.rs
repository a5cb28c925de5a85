//! The PID lock (`<home>/bot.pid`, ops spec §11.1): one running ductor per home.
//!
//! Divergence from 0.18.2: the original kills a running instance and takes over; ductor-rs
//! refuses to start a second instance with a clear message (`ductor stop` stops the first).
//! A stale file (dead or unparsable PID) is taken over, as in the original.

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::store::atomic::{self, Durability, StoreError};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidLockError {
    /// Another live process holds the lock.
    #[error("ductor is already running on this home (pid {pid}, {path}); stop it first with `ductor stop`")]
    AlreadyRunning {
        /// Its PID.
        pid: i32,
        /// The pid file.
        path: Utf8PathBuf,
    },
    /// The pid file could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The held lock; dropping it removes the pid file if it still names this process.
#[derive(Debug)]
pub struct PidLock {
    path: Utf8PathBuf,
    pid: i32,
}

impl PidLock {
    /// Takes the lock for this process.
    pub fn acquire(path: &Utf8Path) -> Result<Self, PidLockError> {
        let own = std::process::id() as i32;
        if let Some(pid) = read_pid(path) {
            if pid != own && is_alive(pid) {
                return Err(PidLockError::AlreadyRunning { pid, path: path.to_owned() });
            }
            tracing::info!(path = %path, stale_pid = pid, "Taking over a stale pid file.");
        } else if path.exists() {
            tracing::info!(path = %path, "Taking over an unreadable (stale) pid file.");
        }
        atomic::write_bytes_atomic(path, own.to_string().as_bytes(), Durability::Fsync)?;
        Ok(Self { path: path.to_owned(), pid: own })
    }

    /// Removes the pid file now if it still names this process.
    pub fn release(&self) {
        if read_pid(&self.path) == Some(self.pid)
            && let Err(e) = fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path, error = %e, "Could not remove the pid file.");
        }
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        self.release();
    }
}

/// The PID in a pid file, if it holds a positive decimal number.
pub fn read_pid(path: &Utf8Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse::<i32>().ok().filter(|pid| *pid > 0)
}

/// Whether a process with this PID exists (EPERM counts as alive).
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

/// A zombie (exited, not yet reaped) is not a running ductor.
fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid_path() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("bot.pid")).unwrap();
        (dir, path)
    }

    #[test]
    fn lock_writes_own_pid_without_newline_and_removes_it() {
        let (_d, path) = pid_path();
        let lock = PidLock::acquire(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), std::process::id().to_string());
        drop(lock);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_holder_refuses_the_second_instance() {
        let (_d, path) = pid_path();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        fs::write(&path, child.id().to_string()).unwrap();
        let err = PidLock::acquire(&path).unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), child.id().to_string(), "holder's file untouched");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn stale_and_garbage_files_are_taken_over() {
        let (_d, path) = pid_path();
        fs::write(&path, "999999999").unwrap();
        let lock = PidLock::acquire(&path).unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id() as i32));
        drop(lock);
        fs::write(&path, "not a pid").unwrap();
        let _lock = PidLock::acquire(&path).unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id() as i32));
    }
}

//! Watching one file for changes (ops spec §0.4) with **notify**: the file's folder is watched
//! (so an atomic replace — write a temporary file, rename it over — is seen like an in-place
//! write), events for other files are ignored, and a burst of events is coalesced into one
//! call after a quiet `debounce`. What the change means (a reload, ignoring our own write) is
//! the caller's business.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Why a watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The path has no folder or file name.
    #[error("cannot watch {0}: it names no file in a folder")]
    NotAFile(Utf8PathBuf),
    /// The folder could not be created.
    #[error("cannot create {path}: {source}")]
    Folder {
        /// The folder.
        path: Utf8PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The platform watcher refused.
    #[error("cannot watch {path}: {source}")]
    Notify {
        /// The folder.
        path: Utf8PathBuf,
        /// The cause.
        source: notify::Error,
    },
}

/// A running watch; dropping it stops it.
#[derive(Debug)]
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    debouncer: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.debouncer.abort();
    }
}

impl FileWatch {
    /// Watches `path` (which need not exist yet; its folder is created) and calls `on_change`
    /// once per burst of changes, `debounce` after the last one. Must run inside a tokio runtime.
    pub fn start(
        path: &Utf8Path,
        debounce: Duration,
        on_change: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, WatchError> {
        let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(WatchError::NotAFile(path.to_owned()));
        };
        let folder = if folder.as_str().is_empty() { Utf8Path::new(".") } else { folder };
        std::fs::create_dir_all(folder).map_err(|source| WatchError::Folder { path: folder.to_owned(), source })?;
        let (events, mut changes) = mpsc::unbounded_channel::<()>();
        let name = name.to_owned();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                let ours = event.paths.iter().any(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == name));
                if ours && !matches!(event.kind, notify::EventKind::Access(_)) {
                    let _ = events.send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "File watch error."),
        })
        .map_err(|source| WatchError::Notify { path: folder.to_owned(), source })?;
        watcher
            .watch(folder.as_std_path(), RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Notify { path: folder.to_owned(), source })?;
        let debouncer = tokio::spawn(async move {
            while changes.recv().await.is_some() {
                // Wait until the burst is over: no event for `debounce`.
                while let Ok(Some(())) = tokio::time::timeout(debounce, changes.recv()).await {}
                on_change();
            }
        });
        Ok(Self { _watcher: watcher, debouncer })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    #[tokio::test]
    async fn a_burst_of_writes_and_an_atomic_replace_are_seen_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("cron_jobs.json")).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let _watch = FileWatch::start(&path, Duration::from_millis(100), move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        for n in 0..5 {
            std::fs::write(&path, format!("{{\"n\": {n}}}")).unwrap();
        }
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "five writes, one call");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, "{}").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "an atomic replace is a change");
        std::fs::write(dir.path().join("other.json"), "{}").unwrap();
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "other files are not ours");
    }
}

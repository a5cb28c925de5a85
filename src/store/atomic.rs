//! Atomic file writes (temp file, fsync, rename) and JSON loading that moves corrupt files aside.
//!
//! Format of every JSON state file, as the Python original writes it: 2-space indentation,
//! non-ASCII written raw as UTF-8, one trailing newline.

use std::fs::{self, File, OpenOptions};
use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Failures of the on-disk store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "rename", ...).
        op: &'static str,
        /// The file concerned.
        path: Utf8PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A value could not be serialised to JSON.
    #[error("serialise {path}: {source}")]
    Serialise {
        /// The file that was to be written.
        path: Utf8PathBuf,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: &Utf8Path, source: std::io::Error) -> Self {
        Self::Io { op, path: path.to_owned(), source }
    }
}

/// Whether to flush the file to stable storage before renaming it into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory (state files, outbox).
    Fsync,
    /// Rename only (caches that can be rebuilt).
    NoFsync,
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename over
/// the target, fsync of the directory. Parent directories are created on demand.
pub fn write_bytes_atomic(path: &Utf8Path, bytes: &[u8], durability: Durability) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or_else(|| Utf8Path::new("."));
    fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
    let file_name = path.file_name().unwrap_or("state");
    let tmp = dir.join(format!(".{file_name}.{}.{:08x}.tmp", std::process::id(), rand::random::<u32>()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| StoreError::io("create", &tmp, e))?;
        file.write_all(bytes).map_err(|e| StoreError::io("write", &tmp, e))?;
        if durability == Durability::Fsync {
            file.sync_all().map_err(|e| StoreError::io("fsync", &tmp, e))?;
        }
        fs::rename(&tmp, path).map_err(|e| StoreError::io("rename", path, e))?;
        if durability == Durability::Fsync {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes text atomically (see [`write_bytes_atomic`]).
pub fn write_text_atomic(path: &Utf8Path, text: &str) -> Result<(), StoreError> {
    write_bytes_atomic(path, text.as_bytes(), Durability::Fsync)
}

/// Serialises `value` the way the Python original does (2-space indent, raw UTF-8, trailing
/// newline) and writes it atomically.
pub fn write_json_atomic<T: Serialize + ?Sized>(path: &Utf8Path, value: &T) -> Result<(), StoreError> {
    let text = to_json_text(value).map_err(|source| StoreError::Serialise { path: path.to_owned(), source })?;
    write_bytes_atomic(path, text.as_bytes(), Durability::Fsync)
}

/// The on-disk text of a JSON state file: pretty, 2-space indent, trailing newline.
pub fn to_json_text<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// fsyncs a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Utf8Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io("fsync directory", dir, e))
}

/// The result of loading a JSON state file.
#[derive(Debug)]
pub enum Loaded<T> {
    /// The file existed and parsed.
    Found(T),
    /// There was no file.
    Missing,
    /// The file did not parse; it was moved aside to `moved_to` and must be replaced by defaults.
    Quarantined {
        /// Where the corrupt file now lives (`<name>.corrupt-<UTC timestamp>`).
        moved_to: Utf8PathBuf,
        /// Why it did not parse.
        error: String,
    },
}

impl<T: Default> Loaded<T> {
    /// The loaded value, or the default when the file was missing or corrupt.
    pub fn or_default(self) -> T {
        match self {
            Self::Found(value) => value,
            Self::Missing | Self::Quarantined { .. } => T::default(),
        }
    }
}

impl<T> Loaded<T> {
    /// The loaded value, if the file existed and parsed.
    pub fn found(self) -> Option<T> {
        match self {
            Self::Found(value) => Some(value),
            Self::Missing | Self::Quarantined { .. } => None,
        }
    }
}

/// Loads a JSON state file. A missing file is [`Loaded::Missing`]; a file that cannot be read
/// as `T` is moved aside to `<name>.corrupt-<UTC timestamp>` with a warning — it is never
/// silently overwritten — and reported as [`Loaded::Quarantined`].
pub fn load_json<T: DeserializeOwned>(path: &Utf8Path) -> Loaded<T> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => {
            tracing::warn!(path = %path, error = %e, "State file unreadable; using defaults.");
            return Loaded::Missing;
        }
    };
    match serde_json::from_slice::<T>(&bytes) {
        Ok(value) => Loaded::Found(value),
        Err(e) => quarantine(path, &e.to_string()),
    }
}

/// Moves a corrupt file aside and logs a warning; returns the [`Loaded::Quarantined`] report.
pub fn quarantine<T>(path: &Utf8Path, error: &str) -> Loaded<T> {
    let moved_to = quarantine_path(path, chrono::Utc::now());
    match fs::rename(path, &moved_to) {
        Ok(()) => {
            tracing::warn!(path = %path, moved_to = %moved_to, error = %error,
                "State file is corrupt; moved it aside and using defaults.");
        }
        Err(e) => {
            tracing::error!(path = %path, error = %error, rename_error = %e,
                "State file is corrupt and could not be moved aside; using defaults.");
        }
    }
    Loaded::Quarantined { moved_to, error: error.to_owned() }
}

/// `<name>.corrupt-<UTC timestamp>` beside the file, e.g. `sessions.json.corrupt-20261124T191500Z`.
/// A second quarantine within the same second gets a numeric suffix instead of overwriting.
pub fn quarantine_path(path: &Utf8Path, now: chrono::DateTime<chrono::Utc>) -> Utf8PathBuf {
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let base = Utf8PathBuf::from(format!("{path}.corrupt-{stamp}"));
    if !base.exists() {
        return base;
    }
    (1..).map(|n| Utf8PathBuf::from(format!("{base}.{n}"))).find(|candidate| !candidate.exists()).unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        (dir, path)
    }

    #[test]
    fn json_is_written_like_python_writes_it() {
        let (_d, dir) = tmp();
        let path = dir.join("sub/state.json");
        write_json_atomic(&path, &json!({"name": "Grüße", "n": 1800.0, "list": [1]})).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\n  \"name\": \"Grüße\",\n  \"n\": 1800.0,\n  \"list\": [\n    1\n  ]\n}\n");
        let leftovers: Vec<_> = fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn corrupt_file_is_moved_aside_not_overwritten() {
        let (_d, dir) = tmp();
        let path = dir.join("sessions.json");
        fs::write(&path, "{ not json").unwrap();
        let loaded: Loaded<serde_json::Value> = load_json(&path);
        let Loaded::Quarantined { moved_to, .. } = loaded else { panic!("expected quarantine") };
        assert!(!path.exists());
        assert!(moved_to.as_str().contains("sessions.json.corrupt-"));
        assert_eq!(fs::read_to_string(&moved_to).unwrap(), "{ not json");
    }

    #[test]
    fn second_quarantine_in_the_same_second_keeps_both() {
        let (_d, dir) = tmp();
        let path = dir.join("a.json");
        let now = chrono::Utc::now();
        let first = quarantine_path(&path, now);
        fs::write(&first, "x").unwrap();
        let second = quarantine_path(&path, now);
        assert_ne!(first, second);
    }

    #[test]
    fn missing_file_is_missing() {
        let (_d, dir) = tmp();
        assert!(matches!(load_json::<serde_json::Value>(&dir.join("nope.json")), Loaded::Missing));
    }
}

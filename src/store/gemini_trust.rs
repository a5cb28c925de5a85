//! Gemini's folder trust (core spec §7.6): the workspace is added to
//! `~/.gemini/trustedFolders.json` as `"<path>": "TRUST_FOLDER"` so Gemini runs there without
//! asking. Other entries are kept; a file that does not parse is left alone.

use camino::Utf8Path;
use serde_json::{Map, Value};

use crate::store::atomic::{Durability, write_bytes_atomic};

/// Why the workspace could not be trusted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file exists but is not a JSON object (it is Gemini's; ductor does not touch it).
    #[error("{0} is not a JSON object; left unchanged")]
    Unreadable(String),
    /// Writing failed.
    #[error("could not write {path}: {reason}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Adds `workspace` to `<gemini_dir>/trustedFolders.json`; `Ok(false)` when it was there already.
pub fn trust_workspace(gemini_dir: &Utf8Path, workspace: &Utf8Path) -> Result<bool, TrustError> {
    let path = gemini_dir.join("trustedFolders.json");
    let mut folders = match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => Map::new(),
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(TrustError::Unreadable(path.to_string())),
        },
        Err(_) => Map::new(),
    };
    if folders.get(workspace.as_str()).and_then(Value::as_str) == Some("TRUST_FOLDER") {
        return Ok(false);
    }
    folders.insert(workspace.to_string(), Value::String("TRUST_FOLDER".to_owned()));
    let text = serde_json::to_string_pretty(&Value::Object(folders))
        .map_err(|e| TrustError::Write { path: path.to_string(), reason: e.to_string() })?;
    write_bytes_atomic(&path, text.as_bytes(), Durability::NoFsync)
        .map_err(|e| TrustError::Write { path: path.to_string(), reason: e.to_string() })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    #[test]
    fn adds_once_and_keeps_other_folders_and_leaves_garbage_alone() {
        let dir = tempfile::tempdir().unwrap();
        let gemini = Utf8PathBuf::from_path_buf(dir.path().join(".gemini")).unwrap();
        std::fs::create_dir_all(&gemini).unwrap();
        std::fs::write(gemini.join("trustedFolders.json"), r#"{"/other": "TRUST_PARENT"}"#).unwrap();
        let workspace = Utf8Path::new("/home/a/.ductor/workspace");
        assert!(trust_workspace(&gemini, workspace).unwrap());
        assert!(!trust_workspace(&gemini, workspace).unwrap(), "already trusted");
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(gemini.join("trustedFolders.json")).unwrap()).unwrap();
        assert_eq!(file["/other"], "TRUST_PARENT");
        assert_eq!(file["/home/a/.ductor/workspace"], "TRUST_FOLDER");
        std::fs::write(gemini.join("trustedFolders.json"), "[1,").unwrap();
        assert!(matches!(trust_workspace(&gemini, workspace), Err(TrustError::Unreadable(_))));
        assert_eq!(std::fs::read_to_string(gemini.join("trustedFolders.json")).unwrap(), "[1,");
    }
}

//! Loading and writing `config/config.json` (ops spec §2.1) and reading `.env` (§12).

use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::Value;

use crate::core::config::dotenv::parse_dotenv;
use crate::core::config::{Config, ConfigProblem, resolve};
use crate::store::atomic::{self, StoreError};
use crate::store::paths::DuctorPaths;

/// Why the config could not be loaded. Every variant names the file; none touched it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// There is no config file.
    #[error("config file {path} does not exist")]
    Missing {
        /// The file.
        path: Utf8PathBuf,
    },
    /// The file could not be read.
    #[error("config file {path} could not be read: {source}")]
    Unreadable {
        /// The file.
        path: Utf8PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("config file {path} is not valid JSON (line {line}, column {column}): {message}")]
    InvalidJson {
        /// The file.
        path: Utf8PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The content is not a valid config.
    #[error("config error in {path}: {problem}")]
    Invalid {
        /// The file.
        path: Utf8PathBuf,
        /// What is wrong, naming the key.
        problem: ConfigProblem,
    },
    /// Writing the merged file back failed.
    #[error("config file {path} could not be updated: {source}")]
    Write {
        /// The file.
        path: Utf8PathBuf,
        /// The store error.
        #[source]
        source: StoreError,
    },
}

/// A loaded config.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The typed config.
    pub config: Config,
    /// The file content after merge and normalisation.
    pub raw: Value,
    /// Whether the file was rewritten (new default keys or normalisations).
    pub rewritten: bool,
}

/// The load algorithm of ops spec §2.1: read, parse, normalise, merge the defaults, validate,
/// and write the file back atomically only if something was added or normalised — and only
/// when it validated, so a bad file is never touched.
pub fn load_config(paths: &DuctorPaths) -> Result<LoadedConfig, ConfigError> {
    let path = paths.config_file();
    let user = read_raw_config(&path)?;
    let resolved = resolve(user).map_err(|problem| ConfigError::Invalid { path: path.clone(), problem })?;
    if resolved.changed {
        atomic::write_json_atomic(&path, &resolved.merged)
            .map_err(|source| ConfigError::Write { path: path.clone(), source })?;
    }
    Ok(LoadedConfig { config: resolved.config, raw: resolved.merged, rewritten: resolved.changed })
}

/// Reads and parses the config file as raw JSON.
pub fn read_raw_config(path: &Utf8Path) -> Result<Value, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing { path: path.to_owned() });
        }
        Err(source) => return Err(ConfigError::Unreadable { path: path.to_owned(), source }),
    };
    serde_json::from_slice(&bytes).map_err(|e| ConfigError::InvalidJson {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// `<home>/.env`, re-read whenever its modification time or size changes; a deleted file means no
/// secrets.
#[derive(Debug)]
pub struct DotEnv {
    path: Utf8PathBuf,
    seen: Option<(SystemTime, u64)>,
    secrets: Vec<(String, String)>,
}

impl DotEnv {
    /// A reader for `<home>/.env`.
    pub fn new(paths: &DuctorPaths) -> Self {
        Self { path: paths.env_file(), seen: None, secrets: Vec::new() }
    }

    /// The current secrets.
    pub fn current(&mut self) -> &[(String, String)] {
        let modified = std::fs::metadata(&self.path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        if modified != self.seen {
            self.seen = modified;
            self.secrets = match std::fs::read_to_string(&self.path) {
                Ok(text) => parse_dotenv(&text),
                Err(_) => Vec::new(),
            };
        }
        &self.secrets
    }
}

/// Programmatic update (ops spec §2.7): re-reads the file, replaces the given top-level keys,
/// keeps every other key, and writes atomically — nothing is written when every key already
/// has its value. Returns whether the file changed.
pub fn update_config_keys(paths: &DuctorPaths, updates: &[(&str, Value)]) -> Result<bool, ConfigError> {
    let path = paths.config_file();
    let mut raw = read_raw_config(&path)?;
    let Some(map) = raw.as_object_mut() else {
        return Err(ConfigError::Invalid {
            path: path.clone(),
            problem: ConfigProblem::NotAnObject { found: "something else".to_owned() },
        });
    };
    if updates.iter().all(|(key, value)| map.get(*key) == Some(value)) {
        return Ok(false);
    }
    for (key, value) in updates {
        map.insert((*key).to_owned(), value.clone());
    }
    atomic::write_json_atomic(&path, &raw).map_err(|source| ConfigError::Write { path, source })?;
    Ok(true)
}

/// Makes a file that holds secrets (`config.json` with the API token) readable by its owner
/// only (0600); a failure is logged.
pub fn restrict_to_owner(path: &Utf8Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path, error = %e, "Could not make the file private (0600).");
    }
}

//! `<home>/config_applied.json`: when the running service last applied `config.json` and which
//! changed keys wait for a restart (written at start and at each hot reload, read by
//! `ductor status`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::Value;

use crate::core::status_view::ConfigApplied;
use crate::store::atomic::write_json_atomic;
use crate::store::paths::DuctorPaths;

/// The file's name in the home.
pub const FILE_NAME: &str = "config_applied.json";

/// Records `applied` (a failed write is logged; the service runs on).
pub fn record(paths: &DuctorPaths, applied: &ConfigApplied) {
    let path = paths.home().join(FILE_NAME);
    if let Err(e) = write_json_atomic(&path, applied) {
        tracing::warn!(path = %path, error = %e, "Cannot record when the config was applied.");
    }
}

/// The last record, if there is a readable one.
pub fn read(paths: &DuctorPaths) -> Option<ConfigApplied> {
    let bytes = std::fs::read(paths.home().join(FILE_NAME)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The merged config each config file had when this process loaded it to start.
fn started() -> &'static Mutex<HashMap<Utf8PathBuf, Value>> {
    static STARTED: OnceLock<Mutex<HashMap<Utf8PathBuf, Value>>> = OnceLock::new();
    STARTED.get_or_init(Mutex::default)
}

/// Remembers the merged config the service starts with (the config reloader compares the file
/// with it, so a change made while the service was starting is not missed).
pub fn remember_started(config_file: &Utf8Path, merged: Value) {
    if let Ok(mut map) = started().lock() {
        map.insert(config_file.to_owned(), merged);
    }
}

/// The merged config the service started with, when this process loaded it.
pub fn started_with(config_file: &Utf8Path) -> Option<Value> {
    started().lock().ok()?.get(config_file).cloned()
}

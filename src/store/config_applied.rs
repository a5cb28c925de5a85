//! `<home>/config_applied.json`: when the running service last applied `config.json` and which
//! changed keys wait for a restart (written at start and at each hot reload, read by
//! `ductor status`).

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

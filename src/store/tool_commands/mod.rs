//! The disk side of the tool commands (`ductor cron …`, `ductor webhook …`, ops spec §6.1–§6.2):
//! each operation runs under the lock of its file through [`locked_state::update`] — the only
//! way these commands write — with the task folder work done while the lock is held, so
//! concurrent commands and the service never lose each other's change. The same functions run
//! in the command itself (no service running) and in the running service (the internal API's
//! `POST /interagent/cron` and `POST /interagent/webhooks`).
//!
//! [`locked_state::update`]: crate::store::locked_state::update

pub mod cron;
pub mod webhook;

use serde_json::Value;

use crate::core::tool_commands::{ToolAnswer, ToolSettings};
use crate::store::locked_state::LockedStateError;
use crate::store::paths::DuctorPaths;

/// What an operation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// What to print, and the exit status.
    pub answer: ToolAnswer,
    /// Whether the state file was written (its watcher should reload).
    pub changed: bool,
}

impl Applied {
    fn unchanged(answer: ToolAnswer) -> Self {
        Self { answer, changed: false }
    }
}

/// The settings of the home's `config.json` the tool commands read; a missing or unreadable
/// config gives the defaults.
pub fn settings(paths: &DuctorPaths) -> ToolSettings {
    let raw: Option<Value> =
        std::fs::read(paths.config_file()).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    ToolSettings::from_config(raw.as_ref())
}

/// The answer for a locked update that could not run (a corrupt file is named and left alone).
fn lock_failure(error: &LockedStateError) -> ToolAnswer {
    tracing::warn!(error = %error, "A tool command could not update its state file.");
    ToolAnswer::error(error.to_string())
}

//! `startup_state.json`: the last boot id, to tell a first start, a service restart and a
//! system reboot apart (ops spec §11.5).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartupState {
    /// Kernel boot id at the last start.
    #[serde(default)]
    pub boot_id: String,
    /// ISO timestamp of the last start.
    #[serde(default)]
    pub started_at: String,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

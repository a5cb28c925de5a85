//! `inflight_turns.json`: foreground turns in progress, so a turn cut by a crash is reported at
//! the next start (ops spec §11.6).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::session_key::ChatId;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InflightTurns {
    /// Turns by chat id text.
    pub turns: BTreeMap<String, InflightTurn>,
}

/// One turn in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InflightTurn {
    /// The chat.
    pub chat_id: ChatId,
    /// Provider.
    #[serde(default)]
    pub provider: String,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Provider session id.
    #[serde(default)]
    pub session_id: String,
    /// First 100 characters of the prompt.
    #[serde(default)]
    pub prompt_preview: String,
    /// ISO timestamp.
    #[serde(default)]
    pub started_at: String,
    /// Whether this turn was itself a recovery.
    #[serde(default)]
    pub is_recovery: bool,
    /// `normal`.
    #[serde(default)]
    pub path: String,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

//! `named_sessions.json`: background sessions started with `/session` (core spec §3.1).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::session_key::ChatId;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedSessions {
    /// The sessions.
    pub sessions: Vec<NamedSession>,
}

/// One named session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedSession {
    /// Its name (`keenhawk`, `ia-<agent>`).
    pub name: String,
    /// The chat it belongs to.
    pub chat_id: ChatId,
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Provider session id.
    #[serde(default)]
    pub session_id: String,
    /// First prompt, shortened.
    #[serde(default)]
    pub prompt_preview: String,
    /// `idle`, `running`, ...
    #[serde(default)]
    pub status: String,
    /// Unix time (float seconds).
    #[serde(default)]
    pub created_at: f64,
    /// Messages so far.
    #[serde(default)]
    pub message_count: u64,
    /// The last prompt (for auto-recovery).
    #[serde(default)]
    pub last_prompt: String,
    /// Transport short name.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_transport() -> String {
    "tg".to_owned()
}

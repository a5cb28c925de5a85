//! `chat_activity.json`: the Telegram chat tracker (transports spec §2.12).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::session_key::ChatId;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatActivity {
    /// Records by chat id text.
    pub records: BTreeMap<String, ChatRecord>,
}

/// One chat the bot has seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    /// The chat.
    pub chat_id: ChatId,
    /// `private`, `group`, `supergroup`, `channel`.
    #[serde(default)]
    pub chat_type: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// ISO timestamp.
    #[serde(default)]
    pub first_seen: String,
    /// ISO timestamp.
    #[serde(default)]
    pub last_seen: String,
    /// `active`, `rejected`, `left`, ...
    #[serde(default)]
    pub status: String,
    /// Whether it is allowed.
    #[serde(default)]
    pub allowed: bool,
    /// Rejected messages.
    #[serde(default)]
    pub rejected_count: u64,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

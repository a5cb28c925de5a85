//! `tasks.json`: the background task registry (core spec §8.1).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::session_key::ChatId;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRegistry {
    /// The tasks.
    pub tasks: Vec<TaskRecord>,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// 8-hex id.
    pub task_id: String,
    /// Chat that asked for it.
    pub chat_id: ChatId,
    /// Agent that owns it.
    #[serde(default)]
    pub parent_agent: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Provider.
    #[serde(default)]
    pub provider: String,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// `running`, `done`, `failed`, `cancelled`, ...
    #[serde(default)]
    pub status: String,
    /// Provider session id.
    #[serde(default)]
    pub session_id: String,
    /// Unix time (float seconds).
    #[serde(default)]
    pub created_at: f64,
    /// Folder holding the task folders.
    #[serde(default)]
    pub tasks_dir: String,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TaskRecord {
    /// The task's own folder: `<tasks_dir>/<task_id>`.
    pub fn folder(&self) -> String {
        format!("{}/{}", self.tasks_dir.trim_end_matches('/'), self.task_id)
    }
}

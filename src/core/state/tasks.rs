//! `tasks.json`: the background task registry (core spec §8.1).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::session_key::ChatId;

/// The whole file. An entry without `task_id` or `chat_id` (or otherwise unreadable) is
/// skipped with a warning; the others are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawRegistry")]
pub struct TaskRegistry {
    /// The tasks.
    pub tasks: Vec<TaskRecord>,
    /// Entries skipped while reading.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The file as read, before its entries are checked one by one.
#[derive(Debug, Default, Deserialize)]
struct RawRegistry {
    #[serde(default)]
    tasks: Vec<Value>,
}

impl From<RawRegistry> for TaskRegistry {
    fn from(raw: RawRegistry) -> Self {
        let mut registry = Self::default();
        for (index, entry) in raw.tasks.into_iter().enumerate() {
            match serde_json::from_value::<TaskRecord>(entry) {
                Ok(task) => registry.tasks.push(task),
                Err(e) => registry.warnings.push(format!("skipped task entry {index}: {e}")),
            }
        }
        registry
    }
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

impl TaskRegistry {
    /// At start no task process of an earlier run is alive: every `running` entry becomes
    /// `failed` with `error` (core spec §8.1). Returns how many changed.
    pub fn fail_running(&mut self, error: &str, now: f64) -> usize {
        let mut changed = 0;
        for task in self.tasks.iter_mut().filter(|t| t.status == "running") {
            task.status = "failed".to_owned();
            task.extra.insert("error".to_owned(), Value::String(error.to_owned()));
            task.extra.insert("completed_at".to_owned(), serde_json::json!(now));
            changed += 1;
        }
        changed
    }
}

impl TaskRecord {
    /// A text field kept among the other fields (`error`, `original_prompt`, ...); `""` when
    /// missing.
    pub fn text(&self, key: &str) -> &str {
        self.extra.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    /// A number field kept among the other fields; 0 when missing.
    pub fn number(&self, key: &str) -> f64 {
        self.extra.get(key).and_then(Value::as_f64).unwrap_or_default()
    }

    /// Sets a field kept among the other fields.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.extra.insert(key.to_owned(), value.into());
    }

    /// Whether no run of it is under way or waiting to start.
    pub fn is_finished(&self) -> bool {
        !matches!(self.status.as_str(), "running" | "queued")
    }

    /// The task's own folder: `<tasks_dir>/<task_id>`.
    pub fn folder(&self) -> String {
        format!("{}/{}", self.tasks_dir.trim_end_matches('/'), self.task_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_without_id_or_chat_are_skipped_and_the_others_kept() {
        let registry: TaskRegistry = serde_json::from_value(serde_json::json!({"tasks": [
            {"chat_id": 1, "status": "done"},
            {"task_id": "b", "status": "done"},
            {"task_id": "c", "chat_id": 1, "status": "done"}
        ]}))
        .unwrap();
        assert_eq!(registry.tasks.len(), 1);
        assert_eq!(registry.tasks[0].task_id, "c");
        assert_eq!(registry.warnings.len(), 2);
    }

    #[test]
    fn running_tasks_fail_at_start_and_others_stay() {
        let mut registry: TaskRegistry = serde_json::from_value(serde_json::json!({"tasks": [
            {"task_id": "a", "chat_id": 1, "status": "running", "prompt_preview": "kept"},
            {"task_id": "b", "chat_id": 1, "status": "done"}
        ]}))
        .unwrap();
        assert_eq!(registry.fail_running("restarted", 9.0), 1);
        assert_eq!(registry.tasks[0].status, "failed");
        assert_eq!(registry.tasks[0].extra["error"], "restarted");
        assert_eq!(registry.tasks[0].extra["prompt_preview"], "kept");
        assert_eq!(registry.tasks[1].status, "done");
        assert_eq!(registry.fail_running("restarted", 9.0), 0);
    }
}

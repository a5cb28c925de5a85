//! What a changed `config.json` means for a running service (ops spec §3): the top-level keys
//! that changed (compared as merged JSON, keys unknown to ductor and `_comment`-style keys
//! ignored), split into the hot keys applied at once and the keys that wait for a restart, and
//! the config the service runs with after a hot reload (the hot keys new, every other key as it
//! was).

use serde_json::{Map, Value};

/// Keys applied without a restart (ops spec §3 step 4, with the 0.20.1 `project_roots`).
pub const HOT_KEYS: &[&str] = &[
    "model",
    "provider",
    "reasoning_effort",
    "cli_timeout",
    "max_budget_usd",
    "max_turns",
    "max_session_messages",
    "idle_timeout_minutes",
    "session_age_warning_hours",
    "daily_reset_hour",
    "daily_reset_enabled",
    "permission_mode",
    "file_access",
    "user_timezone",
    "streaming",
    "heartbeat",
    "cleanup",
    "cli_parameters",
    "allowed_user_ids",
    "allowed_group_ids",
    "group_mention_only",
    "scene",
    "image",
    "language",
    "project_roots",
];

/// The changed keys of a new file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Changed keys applied now.
    pub hot: Vec<String>,
    /// Changed keys that only a restart applies.
    pub restart: Vec<String>,
}

impl ReloadPlan {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.hot.is_empty() && self.restart.is_empty()
    }
}

fn object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Compares the running (merged) config with the file's (merged) config, key by key; only keys
/// in `known` (the keys ductor has defaults for) count.
pub fn plan(running: &Value, file: &Value, known: &Value) -> ReloadPlan {
    let (running, file, known) = (object(running), object(file), object(known));
    let mut out = ReloadPlan::default();
    for key in known.keys().filter(|k| !k.starts_with('_')) {
        if running.get(key) == file.get(key) {
            continue;
        }
        if HOT_KEYS.contains(&key.as_str()) {
            out.hot.push(key.clone());
        } else {
            out.restart.push(key.clone());
        }
    }
    out
}

/// The config to run with: `running` with the `hot` keys taken from `file`.
pub fn with_hot_keys(running: &Value, file: &Value, hot: &[String]) -> Value {
    let mut merged = object(running);
    let file = object(file);
    for key in hot {
        match file.get(key) {
            Some(value) => merged.insert(key.clone(), value.clone()),
            None => merged.remove(key),
        };
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn known() -> Value {
        json!({"model": "opus", "webhooks": {"port": 1}, "heartbeat": {}, "allowed_user_ids": []})
    }

    #[test]
    fn hot_and_restart_keys_are_told_apart_and_comments_ignored() {
        let running = json!({"model": "opus", "webhooks": {"port": 8742}, "_comment": "a"});
        let file = json!({"model": "sonnet", "webhooks": {"port": 9000}, "_comment": "b"});
        let plan = plan(&running, &file, &known());
        assert_eq!(plan.hot, ["model"]);
        assert_eq!(plan.restart, ["webhooks"]);
        let applied = with_hot_keys(&running, &file, &plan.hot);
        assert_eq!(applied, json!({"model": "sonnet", "webhooks": {"port": 8742}, "_comment": "a"}));
    }

    #[test]
    fn the_same_content_is_no_change() {
        let running = json!({"model": "opus", "heartbeat": {"enabled": true}});
        assert!(plan(&running, &running.clone(), &known()).is_empty());
        let only_comment = json!({"model": "opus", "heartbeat": {"enabled": true}, "_comment": "new"});
        assert!(plan(&running, &only_comment, &known()).is_empty());
        let unknown = json!({"model": "opus", "heartbeat": {"enabled": true}, "my_own_key": 1});
        assert!(plan(&running, &unknown, &known()).is_empty());
    }
}

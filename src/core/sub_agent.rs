//! Sub-agents (core spec §9.1–9.2): the effective config of a sub-agent — the main config with
//! the entry's non-null overrides laid over it and its own transport, bots and allow-lists
//! forced — and what a change of `agents.json` means for the running set (start, stop, or
//! restart only when its transport, Telegram token or Matrix account changed). Pure.

use serde_json::{Map, Value};

use crate::core::state::agents::SubAgentEntry;

/// Keys a sub-agent inherits from main unless its entry sets them (non-null).
pub const OVERRIDE_KEYS: [&str; 24] = [
    "provider",
    "model",
    "log_level",
    "idle_timeout_minutes",
    "session_age_warning_hours",
    "daily_reset_hour",
    "daily_reset_enabled",
    "max_budget_usd",
    "max_turns",
    "max_session_messages",
    "permission_mode",
    "cli_timeout",
    "reasoning_effort",
    "file_access",
    "streaming",
    "docker",
    "heartbeat",
    "cleanup",
    "webhooks",
    "api",
    "cli_parameters",
    "user_timezone",
    "group_mention_only",
    "allowed_channel_ids",
];

/// The transport an entry asks for: `telegram` (the default) or `matrix`.
pub fn transport_of(entry: &SubAgentEntry) -> String {
    match entry.extra.get("transport").and_then(Value::as_str) {
        Some("matrix") => "matrix".to_owned(),
        _ => "telegram".to_owned(),
    }
}

/// The effective config object of a sub-agent (before defaults and validation): `main` (the
/// main agent's config object) overlaid with the entry's non-null overrides, then its own
/// home, transport, Telegram token, allow-lists (empty when absent) and Matrix block forced.
/// The direct API is off unless the entry configures it.
pub fn effective_config(main: &Value, entry: &SubAgentEntry, home: &str) -> Value {
    let mut config: Map<String, Value> = main.as_object().cloned().unwrap_or_default();
    let mut overrides = entry.extra.clone();
    if let Some(provider) = entry.effective_provider() {
        overrides.insert("provider".into(), provider.into());
    }
    if let Some(model) = &entry.model {
        overrides.insert("model".into(), model.clone().into());
    }
    for key in OVERRIDE_KEYS {
        if let Some(value) = overrides.get(key).filter(|v| !v.is_null()) {
            config.insert(key.to_owned(), value.clone());
        }
    }
    if overrides.get("api").is_none_or(|v| v.is_null()) {
        let mut api = config.get("api").and_then(Value::as_object).cloned().unwrap_or_default();
        api.insert("enabled".into(), false.into());
        config.insert("api".into(), Value::Object(api));
    }
    let transport = transport_of(entry);
    config.insert("ductor_home".into(), home.into());
    config.insert("transport".into(), transport.clone().into());
    config.insert("transports".into(), Value::Array(vec![transport.into()]));
    let text = |key: &str| overrides.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    config.insert("telegram_token".into(), text("telegram_token").into());
    let users: Vec<Value> = entry.allowed_user_ids.clone().unwrap_or_default().into_iter().map(Value::from).collect();
    config.insert("allowed_user_ids".into(), Value::Array(users));
    let groups = overrides.get("allowed_group_ids").filter(|v| v.is_array()).cloned().unwrap_or(Value::Array(vec![]));
    config.insert("allowed_group_ids".into(), groups);
    match overrides.get("matrix").filter(|v| v.is_object()) {
        Some(matrix) => config.insert("matrix".into(), matrix.clone()),
        None => config.remove("matrix"),
    };
    Value::Object(config)
}

/// Whether an edited entry needs its agent rebuilt: its transport, Telegram token, or Matrix
/// homeserver / user changed (other changes apply at its next start).
pub fn needs_restart(old: &SubAgentEntry, new: &SubAgentEntry) -> bool {
    let token = |e: &SubAgentEntry| e.extra.get("telegram_token").cloned();
    let matrix = |e: &SubAgentEntry, key: &str| e.extra.get("matrix").and_then(|m| m.get(key)).cloned();
    transport_of(old) != transport_of(new)
        || token(old) != token(new)
        || matrix(old, "homeserver") != matrix(new, "homeserver")
        || matrix(old, "user_id") != matrix(new, "user_id")
}

/// What a new `agents.json` means for the running sub-agents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentsPlan {
    /// Entries to start (new names).
    pub start: Vec<SubAgentEntry>,
    /// Names to stop (gone from the file).
    pub stop: Vec<String>,
    /// Entries to rebuild (their account changed).
    pub restart: Vec<SubAgentEntry>,
    /// Entries kept running whose other settings changed (applied at their next start).
    pub changed: Vec<String>,
}

/// Compares the running entries with the file's.
pub fn plan(running: &[SubAgentEntry], wanted: &[SubAgentEntry]) -> AgentsPlan {
    let mut plan = AgentsPlan::default();
    for entry in wanted {
        match running.iter().find(|r| r.name == entry.name) {
            None => plan.start.push(entry.clone()),
            Some(old) if needs_restart(old, entry) => plan.restart.push(entry.clone()),
            Some(old) if old != entry => plan.changed.push(entry.name.clone()),
            Some(_) => {}
        }
    }
    plan.stop = running.iter().filter(|r| !wanted.iter().any(|w| w.name == r.name)).map(|r| r.name.clone()).collect();
    plan
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(value: Value) -> SubAgentEntry {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn overrides_win_and_the_bot_and_home_are_its_own() {
        let main = json!({"provider": "claude", "model": "opus", "telegram_token": "main:TOKEN",
            "allowed_user_ids": [1], "allowed_group_ids": [-5], "streaming": {"enabled": true},
            "api": {"enabled": true, "port": 1}, "matrix": {"homeserver": "https://m"}, "cli_timeout": 1800});
        let sub = entry(json!({"name": "ops", "provider": "openai", "model": "gpt-5.5", "telegram_token": "ops:TOKEN",
            "allowed_user_ids": [2], "cli_timeout": null, "streaming": {"enabled": false}}));
        let config = effective_config(&main, &sub, "/h/agents/ops");
        assert_eq!(config["provider"], "codex", "openai means codex");
        assert_eq!(config["model"], "gpt-5.5");
        assert_eq!(config["telegram_token"], "ops:TOKEN");
        assert_eq!(config["allowed_user_ids"], json!([2]));
        assert_eq!(config["allowed_group_ids"], json!([]), "not inherited");
        assert_eq!(config["streaming"], json!({"enabled": false}));
        assert_eq!(config["cli_timeout"], 1800, "null inherits");
        assert_eq!(config["api"]["enabled"], false, "no API unless configured");
        assert!(config.get("matrix").is_none(), "main's Matrix account is not the sub-agent's");
        assert_eq!((config["transport"].as_str(), &config["transports"]), (Some("telegram"), &json!(["telegram"])));
        assert_eq!(config["ductor_home"], "/h/agents/ops");
    }

    #[test]
    fn a_change_of_account_restarts_other_changes_do_not() {
        let a = entry(json!({"name": "a", "telegram_token": "1:A", "model": "opus"}));
        let b = entry(json!({"name": "b", "telegram_token": "2:B"}));
        let a_model = entry(json!({"name": "a", "telegram_token": "1:A", "model": "sonnet"}));
        let b_token = entry(json!({"name": "b", "telegram_token": "2:NEW"}));
        let c = entry(json!({"name": "c", "transport": "matrix", "matrix": {"homeserver": "h", "user_id": "@c:h"}}));
        let plan = plan(&[a.clone(), b], &[a_model, b_token.clone(), c.clone()]);
        assert_eq!(plan.start, [c]);
        assert_eq!(plan.restart, [b_token]);
        assert_eq!(plan.changed, ["a"]);
        assert!(plan.stop.is_empty());
        let gone = super::plan(&[a], &[]);
        assert_eq!(gone.stop, ["a"]);
    }
}

//! The configuration: the typed model of `config/config.json`, its defaults, the deep merge and
//! normalisations of the load algorithm (ops spec §2), validation with errors that name the key,
//! the "configured" predicate (§18.3) and `.env` parsing (§12). Pure: the file I/O is in
//! `store::config_file`.

pub mod defaults;
pub mod dotenv;
pub mod lax;
pub mod merge;
pub mod model;

pub use defaults::defaults_json;
pub use model::Config;

use serde_json::{Map, Value};

/// A problem with the config's content, before it is tied to a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// The top level is not a JSON object.
    #[error("the top level must be an object, found {found}")]
    NotAnObject {
        /// What was found.
        found: String,
    },
    /// A value has the wrong type.
    #[error("key '{key}': {message}")]
    InvalidValue {
        /// Dotted key path (`streaming`, `memory_compaction.target_lines`).
        key: String,
        /// What was expected and found.
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("key '{key}': {message}")]
    Constraint {
        /// Dotted key path.
        key: String,
        /// The rule broken.
        message: String,
    },
    /// A transport name is not known.
    #[error("key 'transports': unknown transport '{name}' (supported: telegram, matrix)")]
    UnknownTransport {
        /// The name.
        name: String,
    },
}

/// The outcome of resolving a user config.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The user's object with defaults merged in and normalised (what the file should hold).
    pub merged: Value,
    /// Whether `merged` differs from what the user wrote (the file must be rewritten).
    pub changed: bool,
    /// The typed config.
    pub config: Config,
}

/// Runs the pure part of the load algorithm on the parsed file: normalise, merge defaults,
/// validate into the typed model.
pub fn resolve(user: Value) -> Result<Resolved, ConfigProblem> {
    let Value::Object(mut user_map) = user else {
        return Err(ConfigProblem::NotAnObject { found: lax::describe(&user) });
    };
    let normalised = merge::normalise(&mut user_map);
    let (merged, added) = merge::deep_merge(&Value::Object(user_map), &defaults_json());
    let config = validate(&merged)?;
    Ok(Resolved { merged, changed: normalised || added, config })
}

/// Validates a merged config object into the typed model.
pub fn validate(merged: &Value) -> Result<Config, ConfigProblem> {
    let config: Config = serde_path_to_error::deserialize(merged).map_err(|e| ConfigProblem::InvalidValue {
        key: e.path().to_string(),
        message: readable(&e.inner().to_string()),
    })?;
    let config = config.finish();
    check_constraints(&config)?;
    Ok(config)
}

/// serde's wording with our own names for the shapes.
fn readable(message: &str) -> String {
    match message.find("expected struct ") {
        Some(index) => format!("{}expected an object", &message[..index]),
        None => message.replace("a sequence", "a list").replace("a map", "an object"),
    }
}

fn check_constraints(config: &Config) -> Result<(), ConfigProblem> {
    let constraint = |key: &str, message: String| Err(ConfigProblem::Constraint { key: key.to_owned(), message });
    let compaction = &config.memory_compaction;
    if compaction.trigger_lines < 1 {
        return constraint(
            "memory_compaction.trigger_lines",
            format!("must be at least 1, is {}", compaction.trigger_lines),
        );
    }
    if compaction.target_lines < 1 {
        return constraint(
            "memory_compaction.target_lines",
            format!("must be at least 1, is {}", compaction.target_lines),
        );
    }
    if compaction.target_lines > compaction.trigger_lines {
        return constraint(
            "memory_compaction.target_lines",
            format!("must not exceed trigger_lines ({} > {})", compaction.target_lines, compaction.trigger_lines),
        );
    }
    if compaction.preserve_recency_days < 0 {
        return constraint("memory_compaction.preserve_recency_days", "must not be negative".to_owned());
    }
    if config.memory_flush.dedup_seconds < 0 {
        return constraint("memory_flush.dedup_seconds", "must not be negative".to_owned());
    }
    if config.memory_reflection.every_n_messages < 1 {
        return constraint("memory_reflection.every_n_messages", "must be at least 1".to_owned());
    }
    if let Some(name) = config.transports.iter().find(|t| !merge::KNOWN_TRANSPORTS.contains(&t.as_str())) {
        return Err(ConfigProblem::UnknownTransport { name: name.clone() });
    }
    Ok(())
}

/// A token that is empty or a placeholder (`YOUR_...`) counts as not set.
pub fn is_placeholder(value: &str) -> bool {
    value.trim().is_empty() || value.trim().starts_with("YOUR_")
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The "configured" predicate of ops spec §18.3 on the raw file: empty when configured,
/// otherwise what is missing, in words a person can act on.
pub fn configured_problems(raw: &Value) -> Vec<String> {
    let Some(map) = raw.as_object() else { return vec!["config.json is not a JSON object".to_owned()] };
    let transports: Vec<String> = match map.get("transports").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => vec![map.get("transport").and_then(Value::as_str).unwrap_or("telegram").to_owned()],
    };
    let mut missing = Vec::new();
    for transport in transports {
        if transport == "matrix" {
            let matrix = map.get("matrix").and_then(Value::as_object);
            for key in ["homeserver", "user_id"] {
                if matrix.is_none_or(|m| text(m, key).trim().is_empty()) {
                    missing.push(format!("matrix.{key} is empty"));
                }
            }
        } else {
            if is_placeholder(text(map, "telegram_token")) {
                missing.push("telegram_token is empty (the token from @BotFather)".to_owned());
            }
            if map.get("allowed_user_ids").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                missing.push("allowed_user_ids is empty (your Telegram user id)".to_owned());
            }
        }
    }
    missing
}

/// The stricter start-time check (ops spec §18.3): Matrix also needs a password or access token
/// and at least one allowed room or user.
pub fn start_problems(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if config.transports.iter().any(|t| t == "matrix") {
        let m = &config.matrix;
        if m.password.trim().is_empty() && m.access_token.trim().is_empty() {
            problems.push("matrix needs a password or an access_token".to_owned());
        }
        if m.allowed_rooms.is_empty() && m.allowed_users.is_empty() {
            problems.push("matrix needs at least one of allowed_rooms / allowed_users".to_owned());
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve_json(value: Value) -> Result<Resolved, ConfigProblem> {
        resolve(value)
    }

    #[test]
    fn minimal_config_gains_every_key_and_keeps_its_values() {
        let resolved = resolve_json(json!({"telegram_token": "1:x", "allowed_user_ids": [5]})).unwrap();
        assert!(resolved.changed);
        let merged = resolved.merged.as_object().unwrap();
        for key in defaults_json().as_object().unwrap().keys() {
            assert!(merged.contains_key(key), "{key}");
        }
        assert_eq!(merged["gemini_api_key"], "null");
        assert_eq!(merged["telegram_token"], "1:x");
        assert_eq!(merged["allowed_user_ids"], json!([5]));
        assert_eq!(resolved.config.gemini_api_key, None);
        assert_eq!(resolved.config.timeouts.normal, 1800.0);
    }

    #[test]
    fn complete_config_is_unchanged() {
        let first = resolve_json(json!({"telegram_token": "1:x", "allowed_user_ids": [5]})).unwrap();
        let second = resolve_json(first.merged.clone()).unwrap();
        assert!(!second.changed);
        assert_eq!(second.merged, first.merged);
    }

    #[test]
    fn wrong_shape_names_the_key() {
        let err = resolve_json(json!({"streaming": true})).unwrap_err();
        assert_eq!(err.to_string(), "key 'streaming': invalid type: boolean `true`, expected an object");
        let err = resolve_json(json!({"streaming": {"min_chars": "lots"}})).unwrap_err();
        assert_eq!(err.to_string(), "key 'streaming.min_chars': expected an integer, found a string (\"lots\")");
        let err = resolve_json(json!({"allowed_user_ids": ["me"]})).unwrap_err();
        assert!(err.to_string().starts_with("key 'allowed_user_ids': expected a list of integers"), "{err}");
    }

    #[test]
    fn lax_values_are_accepted() {
        let config = resolve_json(json!({"idle_timeout_minutes": "30", "cli_timeout": 900, "update_check": "false",
            "streaming": {"enabled": "true"}}))
        .unwrap()
        .config;
        assert_eq!(config.idle_timeout_minutes, 30);
        assert_eq!(config.cli_timeout, 900.0);
        assert!(!config.update_check);
        assert!(config.streaming.enabled);
    }

    #[test]
    fn cli_timeout_quirk() {
        let config = resolve_json(json!({"cli_timeout": 900, "timeouts": {"normal": 600}})).unwrap().config;
        assert_eq!(config.timeouts.normal, 900.0);
        let config = resolve_json(json!({"cli_timeout": 900, "timeouts": {"normal": 300}})).unwrap().config;
        assert_eq!(config.timeouts.normal, 300.0);
    }

    #[test]
    fn compaction_target_above_trigger_is_refused() {
        let err = resolve_json(json!({"memory_compaction": {"trigger_lines": 10, "target_lines": 20}})).unwrap_err();
        assert!(err.to_string().contains("memory_compaction.target_lines"), "{err}");
        let err = resolve_json(json!({"memory_reflection": {"every_n_messages": 0}})).unwrap_err();
        assert!(err.to_string().contains("every_n_messages"), "{err}");
    }

    #[test]
    fn unknown_transport_lists_the_supported_ones() {
        let err = resolve_json(json!({"transport": "irc"})).unwrap_err();
        assert_eq!(err.to_string(), "key 'transports': unknown transport 'irc' (supported: telegram, matrix)");
    }

    #[test]
    fn matrix_primary_wins() {
        let resolved = resolve_json(json!({"transport": "matrix", "transports": ["telegram"]})).unwrap();
        assert_eq!(resolved.config.transports, ["matrix", "telegram"]);
        assert_eq!(resolved.config.transport_short_names(), ["mx", "tg"]);
    }

    #[test]
    fn gemini_none_is_unset() {
        let config = resolve_json(json!({"gemini_api_key": " None "})).unwrap().config;
        assert_eq!(config.gemini_api_key, None);
        let config = resolve_json(json!({"gemini_api_key": "abc"})).unwrap().config;
        assert_eq!(config.gemini_api_key.as_deref(), Some("abc"));
    }

    #[test]
    fn top_level_must_be_an_object() {
        assert!(matches!(resolve_json(json!([1])), Err(ConfigProblem::NotAnObject { .. })));
    }

    #[test]
    fn configured_predicate() {
        assert!(configured_problems(&json!({"telegram_token": "1:x", "allowed_user_ids": [1]})).is_empty());
        let missing = configured_problems(&json!({"telegram_token": "YOUR_BOT_TOKEN_HERE", "allowed_user_ids": []}));
        assert_eq!(missing.len(), 2);
        let matrix = json!({"transport": "matrix", "transports": ["matrix"], "matrix": {"homeserver": "https://m", "user_id": "@b:m"}});
        assert!(configured_problems(&matrix).is_empty());
        let config = resolve_json(matrix).unwrap().config;
        assert_eq!(start_problems(&config).len(), 2, "no password/token and no allowed rooms/users");
    }
}

//! The deep merge of defaults into a user config (ops spec §2.3) and the normalisations done on
//! the raw JSON before it is written back (§2.1 step 3, §2.5, §2.6).

use serde_json::{Map, Value};

/// Merges `defaults` into `user`: user values win; keys missing in the user object are appended
/// with the default value (insertion order kept); when both sides are objects it recurses;
/// arrays are never merged; unknown user keys at any depth are kept. Returns the merged value
/// and whether anything was added.
pub fn deep_merge(user: &Value, defaults: &Value) -> (Value, bool) {
    match (user, defaults) {
        (Value::Object(user_map), Value::Object(default_map)) => {
            let mut merged: Map<String, Value> = user_map.clone();
            let mut changed = false;
            for (key, default_value) in default_map {
                match merged.get_mut(key) {
                    None => {
                        merged.insert(key.clone(), default_value.clone());
                        changed = true;
                    }
                    Some(user_value) => {
                        if user_value.is_object() && default_value.is_object() {
                            let (inner, inner_changed) = deep_merge(user_value, default_value);
                            *user_value = inner;
                            changed |= inner_changed;
                        }
                    }
                }
            }
            (Value::Object(merged), changed)
        }
        _ => (user.clone(), false),
    }
}

/// Transport names the service knows.
pub const KNOWN_TRANSPORTS: [&str; 2] = ["telegram", "matrix"];

/// Normalisations on the user's raw object before the merge; returns whether it changed.
///
/// - `gemini_api_key` missing or `null` → the string `"null"` (as the original writes it).
/// - `transport`/`transports` by the 0.20.1 rule: `transport` is authoritative; the list is
///   `[transport, others in their order]`. A file with `transports` but no `transport` takes
///   `transports[0]` as the primary.
/// - legacy `cleanup.telegram_files_days` → `media_files_days` when the latter is absent.
pub fn normalise(user: &mut Map<String, Value>) -> bool {
    let mut changed = false;
    if user.get("gemini_api_key").is_none_or(Value::is_null) {
        user.insert("gemini_api_key".to_owned(), Value::String("null".to_owned()));
        changed = true;
    }
    changed |= normalise_transports(user);
    if let Some(Value::Object(cleanup)) = user.get_mut("cleanup")
        && !cleanup.contains_key("media_files_days")
        && let Some(legacy) = cleanup.get("telegram_files_days").cloned()
    {
        cleanup.insert("media_files_days".to_owned(), legacy);
        changed = true;
    }
    changed
}

fn normalise_transports(user: &mut Map<String, Value>) -> bool {
    let list: Option<Vec<String>> = match user.get("transports") {
        Some(Value::Array(items)) => items.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    };
    let primary = match (user.get("transport"), &list) {
        (Some(Value::String(t)), _) => t.clone(),
        (None, Some(list)) if !list.is_empty() => list[0].clone(),
        (None, _) => "telegram".to_owned(),
        // A non-string `transport` is left for validation to report.
        (Some(_), _) => return false,
    };
    let mut normalised = vec![primary.clone()];
    if let Some(list) = &list {
        normalised.extend(list.iter().filter(|t| **t != primary).cloned());
    } else if user.contains_key("transports") {
        // A non-list `transports` is left for validation to report.
        return false;
    }
    let new_list = Value::Array(normalised.into_iter().map(Value::String).collect());
    let mut changed = false;
    if user.get("transport") != Some(&Value::String(primary.clone())) {
        user.insert("transport".to_owned(), Value::String(primary));
        changed = true;
    }
    if user.get("transports") != Some(&new_list) {
        user.insert("transports".to_owned(), new_list);
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_values_win_unknown_keys_stay_missing_keys_are_added() {
        let user = json!({"streaming": {"enabled": false, "bogus": 1}, "mine": {"x": 1}});
        let defaults = json!({"streaming": {"enabled": true, "min_chars": 200}, "log_level": "INFO"});
        let (merged, changed) = deep_merge(&user, &defaults);
        assert!(changed);
        assert_eq!(
            merged,
            json!({"streaming": {"enabled": false, "bogus": 1, "min_chars": 200}, "mine": {"x": 1}, "log_level": "INFO"})
        );
        let keys: Vec<_> = merged["streaming"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["enabled", "bogus", "min_chars"], "added keys are appended");
    }

    #[test]
    fn arrays_are_not_merged_and_wrong_kinds_are_kept() {
        let user = json!({"group_targets": [], "streaming": true});
        let defaults = json!({"group_targets": [{"enabled": false}], "streaming": {"enabled": true}});
        let (merged, changed) = deep_merge(&user, &defaults);
        assert!(!changed);
        assert_eq!(merged, user);
    }

    #[test]
    fn gemini_key_null_becomes_the_string_null() {
        let mut user = json!({"gemini_api_key": null, "transport": "telegram", "transports": ["telegram"]});
        assert!(normalise(user.as_object_mut().unwrap()));
        assert_eq!(user["gemini_api_key"], "null");
        assert!(!normalise(user.as_object_mut().unwrap()), "stable");
    }

    #[test]
    fn transport_is_authoritative() {
        let mut user = json!({"gemini_api_key": "x", "transport": "matrix", "transports": ["telegram"]});
        normalise(user.as_object_mut().unwrap());
        assert_eq!(user["transports"], json!(["matrix", "telegram"]));
        let mut user = json!({"gemini_api_key": "x", "transport": "matrix", "transports": ["telegram", "matrix"]});
        normalise(user.as_object_mut().unwrap());
        assert_eq!(user["transports"], json!(["matrix", "telegram"]));
        let mut user = json!({"gemini_api_key": "x", "transports": ["matrix", "telegram"]});
        normalise(user.as_object_mut().unwrap());
        assert_eq!(user["transport"], "matrix", "a list alone names the primary");
        let mut user = json!({"gemini_api_key": "x"});
        normalise(user.as_object_mut().unwrap());
        assert_eq!(user["transports"], json!(["telegram"]));
    }

    #[test]
    fn legacy_cleanup_alias() {
        let mut user = json!({"gemini_api_key": "x", "transport": "telegram", "transports": ["telegram"],
            "cleanup": {"telegram_files_days": 7}});
        assert!(normalise(user.as_object_mut().unwrap()));
        assert_eq!(user["cleanup"]["media_files_days"], 7);
        let mut both = json!({"gemini_api_key": "x", "transport": "telegram", "transports": ["telegram"],
            "cleanup": {"telegram_files_days": 7, "media_files_days": 9}});
        assert!(!normalise(both.as_object_mut().unwrap()));
        assert_eq!(both["cleanup"]["media_files_days"], 9);
    }
}

//! The Codex model cache (core spec §7.10): `config/codex_models.json`, what `codex app-server`
//! answers to `model/list`, when to refresh, and the fallback list when nothing is known.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One Codex model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodexModel {
    /// Model id (`gpt-5.4`).
    pub id: String,
    /// Name shown in the selector.
    #[serde(default)]
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Reasoning efforts it supports.
    #[serde(default)]
    pub supported_efforts: Vec<String>,
    /// Its default effort.
    #[serde(default)]
    pub default_effort: String,
    /// Whether Codex uses it by default.
    #[serde(default)]
    pub is_default: bool,
}

/// `config/codex_models.json` (written without a trailing newline, as the original does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodexModelsFile {
    /// ISO timestamp of the last discovery.
    #[serde(default)]
    pub last_updated: String,
    /// The models.
    #[serde(default)]
    pub models: Vec<CodexModel>,
}

/// A file older than this is refreshed.
pub const MAX_AGE: chrono::Duration = chrono::Duration::hours(24);

/// Maps the `result.data[]` of a `model/list` answer.
pub fn parse_model_list(answer: &Value) -> Vec<CodexModel> {
    let Some(data) = answer.get("result").and_then(|r| r.get("data")).and_then(Value::as_array) else {
        return Vec::new();
    };
    data.iter()
        .filter_map(|entry| {
            let id = entry.get("id").and_then(Value::as_str)?.to_owned();
            let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
            let mut efforts: Vec<String> = entry
                .get("supportedReasoningEfforts")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|e| e.get("reasoningEffort").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if efforts.is_empty() {
                efforts.push("medium".to_owned());
            }
            let default_effort =
                entry.get("defaultReasoningEffort").and_then(Value::as_str).unwrap_or("medium").to_owned();
            Some(CodexModel {
                display_name: if text("displayName").is_empty() { id.clone() } else { text("displayName") },
                description: text("description"),
                supported_efforts: efforts,
                default_effort,
                is_default: entry.get("isDefault").and_then(Value::as_bool).unwrap_or(false),
                id,
            })
        })
        .collect()
}

/// Whether a cache file must be rediscovered: missing models or older than [`MAX_AGE`].
pub fn needs_refresh(file: Option<&CodexModelsFile>, now: chrono::DateTime<chrono::Utc>) -> bool {
    let Some(file) = file else { return true };
    if file.models.is_empty() {
        return true;
    }
    crate::core::state::parse_timestamp(&file.last_updated).is_none_or(|at| now - at > MAX_AGE)
}

/// The list used when nothing was ever discovered (not written to disk).
pub fn fallback() -> Vec<CodexModel> {
    let model = |id: &str, efforts: &[&str], is_default: bool| CodexModel {
        id: id.to_owned(),
        display_name: id.to_owned(),
        description: String::new(),
        supported_efforts: efforts.iter().map(|e| (*e).to_owned()).collect(),
        default_effort: "medium".to_owned(),
        is_default,
    };
    let all = ["low", "medium", "high", "xhigh"];
    vec![
        model("gpt-5.3-codex", &all, true),
        model("gpt-5.4", &all, false),
        model("gpt-5.2-codex", &all, false),
        model("gpt-5.1-codex-mini", &["medium", "high"], false),
    ]
}

/// The two JSON-RPC lines that ask `codex app-server` for its models.
pub fn discovery_requests() -> String {
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"clientInfo": {"name": "ductor", "version": "1.0"}}});
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "model/list", "params": {}});
    format!("{initialize}\n{list}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_list_is_mapped_with_defaults() {
        let answer = json!({"id": 2, "result": {"data": [
            {"id": "gpt-5.4", "displayName": "GPT-5.4", "description": "d", "isDefault": true,
             "supportedReasoningEfforts": [{"reasoningEffort": "low"}, {"reasoningEffort": "high"}], "defaultReasoningEffort": "high"},
            {"id": "gpt-mini"},
            {"name": "no id"}
        ]}});
        let models = parse_model_list(&answer);
        assert_eq!(models.len(), 2);
        assert_eq!(
            (models[0].display_name.as_str(), models[0].default_effort.as_str(), models[0].is_default),
            ("GPT-5.4", "high", true)
        );
        assert_eq!(models[0].supported_efforts, ["low", "high"]);
        assert_eq!(
            (models[1].display_name.as_str(), models[1].supported_efforts.as_slice()),
            ("gpt-mini", &["medium".to_owned()][..])
        );
    }

    #[test]
    fn refresh_rules() {
        let now = crate::core::state::parse_timestamp("2026-11-24T12:00:00+00:00").unwrap();
        let fresh = CodexModelsFile { last_updated: "2026-11-24T11:00:00+00:00".into(), models: fallback() };
        assert!(!needs_refresh(Some(&fresh), now));
        assert!(needs_refresh(
            Some(&CodexModelsFile { last_updated: "2026-11-22T11:00:00+00:00".into(), ..fresh.clone() }),
            now
        ));
        assert!(needs_refresh(Some(&CodexModelsFile { models: vec![], ..fresh.clone() }), now));
        assert!(needs_refresh(None, now));
        assert_eq!(fallback().iter().filter(|m| m.is_default).count(), 1);
        assert!(discovery_requests().lines().nth(1).unwrap().contains("model/list"));
    }
}

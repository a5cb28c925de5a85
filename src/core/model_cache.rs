//! The model caches (core spec §7.10): `config/codex_models.json` with what `codex app-server`
//! answers to `model/list`, `config/gemini_models.json` with the ids read from the installed
//! Gemini CLI's `VALID_GEMINI_MODELS`, when to refresh, and the fallbacks when nothing is known;
//! the Claude and Gemini aliases every build knows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Claude model aliases (core spec §6.1).
pub const CLAUDE_MODELS: [&str; 6] = ["haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]", "fable"];
/// Gemini aliases.
pub const GEMINI_ALIASES: [&str; 4] = ["auto", "pro", "flash", "flash-lite"];

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

/// Whether a cache file must be rediscovered: missing, without models, or older than
/// [`MAX_AGE`]. `file` = (its `last_updated`, whether it lists any model).
pub fn needs_refresh(file: Option<(&str, bool)>, now: chrono::DateTime<chrono::Utc>) -> bool {
    let Some((last_updated, has_models)) = file else { return true };
    if !has_models {
        return true;
    }
    crate::core::state::parse_timestamp(last_updated).is_none_or(|at| now - at > MAX_AGE)
}

/// `config/gemini_models.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeminiModelsFile {
    /// ISO timestamp of the last discovery.
    #[serde(default)]
    pub last_updated: String,
    /// Model ids.
    #[serde(default)]
    pub models: Vec<String>,
}

/// The Gemini list used when nothing was ever discovered (not written to disk).
pub fn gemini_fallback() -> Vec<String> {
    ["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro"].map(str::to_owned).to_vec()
}

const VALID_SET: &str = "VALID_GEMINI_MODELS";

/// The model ids of `VALID_GEMINI_MODELS = new Set([...])` in the Gemini CLI's JavaScript
/// (`sources`: the files that may hold it and the constants it names). Items are string
/// literals or identifiers; an identifier is resolved through `NAME = "gemini-…"` anywhere in
/// `sources` (bundlers rename constants, so the definition may sit in another chunk). Ids that
/// do not resolve to a `gemini-…` string are skipped. Empty when the set is not found.
pub fn scan_valid_gemini_models(sources: &[&str]) -> Vec<String> {
    let mut models: Vec<String> = Vec::new();
    for source in sources {
        let mut rest = *source;
        while let Some(at) = rest.find(VALID_SET) {
            rest = &rest[at + VALID_SET.len()..];
            let Some(body) = set_body(rest) else { continue };
            for item in body.split(',').map(str::trim).filter(|item| !item.is_empty()) {
                let id = string_literal(item).map(str::to_owned).or_else(|| resolve_constant(item, sources));
                if let Some(id) = id.filter(|id| id.starts_with("gemini-") || id.starts_with("auto-gemini-"))
                    && !models.contains(&id)
                {
                    models.push(id);
                }
            }
        }
    }
    models
}

/// The text between `[` and `]` of a following `= new Set([ … ])`.
fn set_body(after_name: &str) -> Option<&str> {
    let rest = after_name.trim_start().strip_prefix('=')?.trim_start().strip_prefix("new")?.trim_start();
    let rest = rest.strip_prefix("Set")?.trim_start().strip_prefix('(')?.trim_start().strip_prefix('[')?;
    let end = rest.find(']')?;
    Some(&rest[..end])
}

fn string_literal(item: &str) -> Option<&str> {
    ['"', '\'', '`'].iter().find_map(|quote| item.strip_prefix(*quote)?.strip_suffix(*quote))
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Finds `<name> = "<value>"` (not `==`) in any source.
fn resolve_constant(name: &str, sources: &[&str]) -> Option<String> {
    if !is_identifier(name) {
        return None;
    }
    for source in sources {
        let mut from = 0;
        while let Some(found) = source[from..].find(name) {
            let start = from + found;
            from = start + name.len();
            let before_ok = source[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'));
            let after = source[from..].trim_start();
            let Some(value) = after.strip_prefix('=').filter(|v| !v.starts_with('=')) else { continue };
            let value = value.trim_start();
            if !before_ok {
                continue;
            }
            let quote = value.chars().next().filter(|c| matches!(c, '"' | '\'' | '`'));
            if let Some(quote) = quote
                && let Some(end) = value[1..].find(quote)
            {
                return Some(value[1..=end].to_owned());
            }
        }
    }
    None
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
    fn gemini_models_from_the_old_layout_and_from_bundle_chunks() {
        let models_js = r#"export const PREVIEW_GEMINI_MODEL = 'gemini-3-pro-preview';
export const DEFAULT_GEMINI_MODEL = 'gemini-2.5-pro';
export const DEFAULT_GEMINI_FLASH_MODEL = 'gemini-2.5-flash';
export const VALID_GEMINI_MODELS = new Set([
    PREVIEW_GEMINI_MODEL,
    DEFAULT_GEMINI_MODEL,
    DEFAULT_GEMINI_FLASH_MODEL,
    'gemini-2.5-flash-lite',
]);"#;
        assert_eq!(
            scan_valid_gemini_models(&[models_js]),
            ["gemini-3-pro-preview", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"]
        );
        // A minified bundle: the set in one chunk, the constants (renamed) in another.
        let chunk_a = "var x=1;var VALID_GEMINI_MODELS=new Set([a1,b2,\"gemini-2.0-flash\",UNKNOWN]);";
        let chunk_b = "var a1=\"gemini-3-flash-preview\",b2=\"gemini-2.5-pro\",c=a1==b2;var ca1=\"nope\";";
        assert_eq!(
            scan_valid_gemini_models(&[chunk_a, chunk_b]),
            ["gemini-3-flash-preview", "gemini-2.5-pro", "gemini-2.0-flash"]
        );
        assert!(scan_valid_gemini_models(&["VALID_GEMINI_MODELS.has(m)", "no set here"]).is_empty());
        assert!(scan_valid_gemini_models(&["VALID_GEMINI_MODELS = new Set([x"]).is_empty(), "truncated");
    }

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
        assert!(!needs_refresh(Some((&fresh.last_updated, true)), now));
        assert!(needs_refresh(Some(("2026-11-22T11:00:00+00:00", true)), now), "older than a day");
        assert!(needs_refresh(Some((&fresh.last_updated, false)), now), "no models");
        assert!(needs_refresh(Some(("garbage", true)), now));
        assert!(needs_refresh(None, now));
        assert_eq!(fallback().iter().filter(|m| m.is_default).count(), 1);
        assert!(discovery_requests().lines().nth(1).unwrap().contains("model/list"));
    }
}

//! `agents.json`: the sub-agent list (ops spec §2.9, core spec §9.1). A JSON array; entries
//! without a usable `name` are skipped with a warning.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct SubAgents {
    /// The usable entries.
    pub agents: Vec<SubAgentEntry>,
    /// What was skipped (the store logs these).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One sub-agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubAgentEntry {
    /// Lowercase name (`main` is reserved).
    pub name: String,
    /// Provider override as written (the tool script writes `openai` for codex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Telegram users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_user_ids: Option<Vec<i64>>,
    /// Everything else (token, transport, overrides), kept as it is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SubAgentEntry {
    /// The provider this entry means: `openai` → `codex`; `None` = inherited from main.
    pub fn effective_provider(&self) -> Option<&str> {
        self.provider.as_deref().map(|p| if p == "openai" { "codex" } else { p })
    }

    /// The sub-agent's home relative to the main home.
    pub fn home_dir(&self) -> String {
        format!("agents/{}", self.name)
    }
}

impl<'de> Deserialize<'de> for SubAgents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Value::Array(items) = Value::deserialize(deserializer)? else {
            return Err(D::Error::custom("agents.json must be a JSON array"));
        };
        let mut out = Self::default();
        for (index, item) in items.into_iter().enumerate() {
            match serde_json::from_value::<SubAgentEntry>(item) {
                Ok(entry) if !entry.name.trim().is_empty() && entry.name != "main" => out.agents.push(entry),
                Ok(entry) => out.warnings.push(format!("agents.json entry {index}: unusable name {:?}", entry.name)),
                Err(e) => out.warnings.push(format!("agents.json entry {index} skipped: {e}")),
            }
        }
        Ok(out)
    }
}

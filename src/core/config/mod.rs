//! Typed models of the config file (minimal stand-in until the full model lands).

use serde_json::Value;

/// The typed config.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// Internal API port.
    pub interagent_port: u16,
    /// Log level.
    pub log_level: String,
    /// Primary transport.
    pub transport: String,
    /// Transports.
    pub transports: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self { interagent_port: 8799, log_level: "INFO".into(), transport: "telegram".into(), transports: vec![] }
    }
}

impl Config {
    /// Short names.
    pub fn transport_short_names(&self) -> Vec<&'static str> {
        let list =
            if self.transports.is_empty() { std::slice::from_ref(&self.transport) } else { &self.transports[..] };
        list.iter()
            .filter_map(|t| match t.as_str() {
                "telegram" => Some("tg"),
                "matrix" => Some("mx"),
                _ => None,
            })
            .collect()
    }
}

/// What is missing.
pub fn configured_problems(raw: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if raw.get("telegram_token").and_then(Value::as_str).is_none_or(str::is_empty) {
        out.push("telegram_token is empty".to_owned());
    }
    if raw.get("allowed_user_ids").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        out.push("allowed_user_ids is empty".to_owned());
    }
    out
}

/// Start-time problems.
pub fn start_problems(_config: &Config) -> Vec<String> {
    Vec::new()
}

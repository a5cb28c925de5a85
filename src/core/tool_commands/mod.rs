//! The tool commands the agent CLIs run to manage their own automation (ops spec §6.1–§6.2):
//! `ductor cron add|edit|list|remove|time` ([`cron`]) and `ductor webhook
//! add|edit|list|remove|rotate-token|test` ([`webhook`]). Here is what is pure: the operations
//! as data (what the command line asks for — also what it sends to the running service), the
//! checks, what each does to the `cron_jobs.json` / `webhooks.json` models, and the one JSON
//! object each prints ([`ToolAnswer`]). The files and task folders are `store::tool_commands`,
//! the command line `cli::cron` and `cli::webhook`.

pub mod cron;
pub mod webhook;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The providers a job or hook may name.
pub const PROVIDERS: [&str; 3] = ["claude", "codex", "gemini"];

/// The reasoning efforts a job or hook may name (Codex).
pub const REASONING_EFFORTS: [&str; 4] = ["low", "medium", "high", "xhigh"];

/// The `via` value of a change the running service made.
pub const VIA_SERVICE: &str = "service";

/// The `via` value of a change the command wrote itself (no service running for the home, or
/// it did not answer).
pub const VIA_LOCAL: &str = "local";

/// What a tool command prints (one JSON object on stdout) and its exit status (0 or 1). Also
/// the running service's answer to a forwarded operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolAnswer {
    /// 0 = done, 1 = refused or failed.
    pub exit_code: i32,
    /// The JSON object to print.
    pub output: Value,
}

impl ToolAnswer {
    /// Done: `output`, exit 0.
    pub fn success(output: Value) -> Self {
        Self { exit_code: 0, output }
    }

    /// Failed with a full object (it carries an `error` key), exit 1.
    pub fn failure(output: Value) -> Self {
        Self { exit_code: 1, output }
    }

    /// Failed: `{"error": message}`, exit 1.
    pub fn error(message: impl Into<String>) -> Self {
        Self::failure(json!({ "error": message.into() }))
    }

    /// Failed: `{"error": message}` plus the given keys, exit 1.
    pub fn error_with(message: impl Into<String>, more: Value) -> Self {
        let mut output = Map::new();
        output.insert("error".to_owned(), Value::String(message.into()));
        if let Value::Object(more) = more {
            output.extend(more);
        }
        Self::failure(Value::Object(output))
    }

    /// Whether it is exit 0.
    pub fn is_success(&self) -> bool {
        self.exit_code == 0
    }

    /// Adds `"via": <via>` (who made the change: [`VIA_SERVICE`] or [`VIA_LOCAL`]).
    pub fn with_via(mut self, via: &str) -> Self {
        if let Value::Object(map) = &mut self.output {
            map.insert("via".to_owned(), Value::String(via.to_owned()));
        }
        self
    }
}

/// An operation on a state file as the command line sends it to the running service
/// (`POST /interagent/cron`, `POST /interagent/webhooks`): the home it is meant for (the
/// service refuses a home it does not run) and the operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRequest<Op> {
    /// The home the command runs on (`DUCTOR_HOME`, resolved).
    pub home: String,
    /// The operation.
    pub op: Op,
}

/// The webhook server's settings the tool commands read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookServerSettings {
    /// `webhooks.enabled`.
    pub enabled: bool,
    /// `webhooks.host`.
    pub host: String,
    /// `webhooks.port`.
    pub port: u16,
    /// `webhooks.token` (the global bearer token).
    pub token: String,
}

/// What the tool commands read from `config.json`, leniently: a key that is missing or of
/// another type has its default (the tool commands must work on a half-written config too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSettings {
    /// `user_timezone` (`""`: not set).
    pub user_timezone: String,
    /// `interagent_port` (default 8799): where the running service listens.
    pub interagent_port: u16,
    /// The `webhooks` block.
    pub webhooks: WebhookServerSettings,
}

impl ToolSettings {
    /// The settings from the raw config (`None`: no readable config — all defaults).
    pub fn from_config(raw: Option<&Value>) -> Self {
        let raw = raw.unwrap_or(&Value::Null);
        let hooks = raw.get("webhooks").unwrap_or(&Value::Null);
        Self {
            user_timezone: text(raw.get("user_timezone")).trim().to_owned(),
            interagent_port: port(raw.get("interagent_port")).unwrap_or(8799),
            webhooks: WebhookServerSettings {
                enabled: match hooks.get("enabled") {
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
                    Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
                    _ => false,
                },
                host: Some(text(hooks.get("host"))).filter(|h| !h.is_empty()).unwrap_or("127.0.0.1").to_owned(),
                port: port(hooks.get("port")).unwrap_or(8742),
                token: text(hooks.get("token")).to_owned(),
            },
        }
    }
}

fn text(value: Option<&Value>) -> &str {
    value.and_then(Value::as_str).unwrap_or_default()
}

fn port(value: Option<&Value>) -> Option<u16> {
    match value? {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `--cli-parameters`: a JSON array of strings (`'["--chrome"]'`).
pub fn parse_cli_parameters(text: &str) -> Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("--cli-parameters is not valid JSON ({e}): {text}"))?;
    let Value::Array(items) = value else {
        return Err(format!(
            "--cli-parameters must be a JSON array of strings, like '[\"--flag\", \"value\"]': {text}"
        ));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            other => Err(format!("--cli-parameters must hold only strings; {other} is not one")),
        })
        .collect()
}

/// Checks that `value` of `flag` is one of `allowed`.
pub fn check_choice(flag: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!("--{flag} must be one of {}; got {value:?}", allowed.join(", ")))
    }
}

/// Checks an hour of `--quiet-start` / `--quiet-end` (0–23).
pub fn check_hour(flag: &str, hour: Option<i64>) -> Result<(), String> {
    match hour {
        Some(h) if !(0..=23).contains(&h) => Err(format!("--{flag} must be an hour from 0 to 23; got {h}")),
        _ => Ok(()),
    }
}

/// Checks an IANA zone name (`Europe/Berlin`).
pub fn check_zone(flag: &str, name: &str) -> Result<(), String> {
    name.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
        format!("--{flag} {name:?} is not an IANA time zone (like Europe/Berlin or America/New_York); see `ductor cron time`")
    })
}

/// A text option that must not be empty when given.
pub fn check_not_empty(flag: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() { Err(format!("--{flag} must not be empty")) } else { Ok(()) }
}

/// The optional override fields a job or hook carries, checked.
pub fn check_overrides(
    provider: Option<&str>,
    reasoning_effort: Option<&str>,
    quiet_start: Option<i64>,
    quiet_end: Option<i64>,
) -> Result<(), String> {
    if let Some(provider) = provider {
        check_choice("provider", provider, &PROVIDERS)?;
    }
    if let Some(effort) = reasoning_effort {
        check_choice("reasoning-effort", effort, &REASONING_EFFORTS)?;
    }
    check_hour("quiet-start", quiet_start)?;
    check_hour("quiet-end", quiet_end)
}

/// An optional text with surrounding blanks removed; empty counts as not given.
pub fn trimmed(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn settings_are_read_leniently() {
        let raw = json!({
            "user_timezone": " Europe/Berlin ",
            "interagent_port": "9001",
            "webhooks": {"enabled": true, "host": "0.0.0.0", "port": 9100, "token": "t"},
        });
        let settings = ToolSettings::from_config(Some(&raw));
        assert_eq!(settings.user_timezone, "Europe/Berlin");
        assert_eq!(settings.interagent_port, 9001);
        assert_eq!(
            settings.webhooks,
            WebhookServerSettings { enabled: true, host: "0.0.0.0".into(), port: 9100, token: "t".into() }
        );
        let defaults = ToolSettings::from_config(Some(&json!({"interagent_port": 70000, "webhooks": 5})));
        assert_eq!(defaults.interagent_port, 8799);
        assert_eq!(
            defaults.webhooks,
            WebhookServerSettings { enabled: false, host: "127.0.0.1".into(), port: 8742, token: String::new() }
        );
        assert_eq!(ToolSettings::from_config(None), defaults);
    }

    #[test]
    fn cli_parameters_are_a_json_array_of_strings() {
        assert_eq!(parse_cli_parameters(r#"["--chrome", "-x"]"#).unwrap(), ["--chrome", "-x"]);
        assert_eq!(parse_cli_parameters("[]").unwrap(), Vec::<String>::new());
        assert!(parse_cli_parameters("--chrome").unwrap_err().contains("not valid JSON"));
        assert!(parse_cli_parameters(r#"{"a": 1}"#).unwrap_err().contains("must be a JSON array"));
        assert!(parse_cli_parameters("[1]").unwrap_err().contains("only strings"));
    }

    #[test]
    fn choices_hours_and_zones() {
        assert!(check_overrides(Some("codex"), Some("xhigh"), Some(0), Some(23)).is_ok());
        assert!(check_overrides(Some("antigravity"), None, None, None).unwrap_err().contains("--provider"));
        assert!(check_overrides(None, Some("max"), None, None).unwrap_err().contains("--reasoning-effort"));
        assert!(check_overrides(None, None, Some(24), None).unwrap_err().contains("--quiet-start"));
        assert!(check_overrides(None, None, None, Some(-1)).unwrap_err().contains("--quiet-end"));
        assert!(check_zone("timezone", "Asia/Tokyo").is_ok());
        assert!(check_zone("zone", "Mars/Olympus").unwrap_err().contains("Mars/Olympus"));
        assert!(check_not_empty("title", "  ").is_err());
        assert_eq!(trimmed(Some(" x ")), Some("x".to_owned()));
        assert_eq!(trimmed(Some("  ")), None);
    }

    #[test]
    fn answers_carry_their_exit_status_and_who_made_the_change() {
        let answer = ToolAnswer::error("nope");
        assert_eq!((answer.exit_code, &answer.output), (1, &json!({"error": "nope"})));
        let answer = ToolAnswer::error_with("nope", json!({"available_jobs": ["a"]}));
        assert_eq!(answer.output, json!({"error": "nope", "available_jobs": ["a"]}));
        let answer = ToolAnswer::success(json!({"job_id": "a"})).with_via(VIA_SERVICE);
        assert!(answer.is_success());
        assert_eq!(answer.output, json!({"job_id": "a", "via": "service"}));
    }
}

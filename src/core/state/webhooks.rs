//! `webhooks.json`: webhook definitions (ops spec §8.1) with the original reader's defaults;
//! `id`, `title`, `mode` and `prompt_template` are required (a hook without one makes the whole
//! file unreadable, as in the original). Written as the original's tools write a hook: every
//! field, nulls included.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Webhooks {
    /// The hooks.
    pub hooks: Vec<Webhook>,
}

/// One webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// Id (`/hooks/<id>`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `wake` or `cron_task`.
    pub mode: String,
    /// Prompt with `{{field}}` placeholders.
    pub prompt_template: String,
    /// Whether it accepts requests (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Task folder for `cron_task` mode.
    #[serde(default)]
    pub task_folder: Option<String>,
    /// `bearer` (default; also for any unknown value) or `hmac`.
    #[serde(default = "bearer")]
    pub auth_mode: String,
    /// Bearer token.
    #[serde(default)]
    pub token: String,
    /// HMAC secret.
    #[serde(default)]
    pub hmac_secret: String,
    /// Header carrying the signature.
    #[serde(default)]
    pub hmac_header: String,
    /// `sha256` (default), `sha1` or `sha512`.
    #[serde(default = "sha256")]
    pub hmac_algorithm: String,
    /// `hex` (default) or `base64`.
    #[serde(default = "hex")]
    pub hmac_encoding: String,
    /// Prefix stripped from the header value before the signature (default `sha256=`).
    #[serde(default = "sha256_prefix")]
    pub hmac_sig_prefix: String,
    /// Python-`re` pattern whose first search match's group 1 is the signature (`""`: unused).
    #[serde(default)]
    pub hmac_sig_regex: String,
    /// Python-`re` pattern whose group 1 (from the header value) is signed before the body as
    /// `group1 + "." + body` (`""`: only the body is signed).
    #[serde(default)]
    pub hmac_payload_prefix_regex: String,
    /// When it was added (ISO UTC; absent in a hand-written hook).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    /// How many accepted requests were dispatched.
    #[serde(default)]
    pub trigger_count: u64,
    /// ISO timestamp of the last dispatch.
    #[serde(default)]
    pub last_triggered_at: Option<String>,
    /// Status of the last dispatch unless it was `success` (then null).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Provider override (`cron_task` mode).
    #[serde(default)]
    pub provider: Option<String>,
    /// Model override (`cron_task` mode).
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort override (Codex, `cron_task` mode).
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// Extra CLI flags, after the configured ones for the provider.
    #[serde(default)]
    pub cli_parameters: Vec<String>,
    /// Quiet hours start (`cron_task` mode).
    #[serde(default)]
    pub quiet_start: Option<i64>,
    /// Quiet hours end (`cron_task` mode).
    #[serde(default)]
    pub quiet_end: Option<i64>,
    /// Serialization key shared with cron jobs (ops spec §7.5).
    #[serde(default)]
    pub dependency: Option<String>,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn yes() -> bool {
    true
}

fn bearer() -> String {
    "bearer".to_owned()
}

fn sha256() -> String {
    "sha256".to_owned()
}

fn hex() -> String {
    "hex".to_owned()
}

fn sha256_prefix() -> String {
    "sha256=".to_owned()
}

impl Webhook {
    /// The HTTP path it is served at.
    pub fn endpoint(&self) -> String {
        format!("/hooks/{}", self.id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_hook_with_only_the_required_fields_gets_the_readers_defaults() {
        let hooks: Webhooks =
            serde_json::from_str(r#"{"hooks": [{"id": "h", "title": "T", "mode": "wake", "prompt_template": "P"}]}"#)
                .unwrap();
        let hook = &hooks.hooks[0];
        assert!(hook.enabled);
        assert_eq!(
            (hook.auth_mode.as_str(), hook.hmac_algorithm.as_str(), hook.hmac_encoding.as_str()),
            ("bearer", "sha256", "hex")
        );
        assert_eq!((hook.hmac_sig_prefix.as_str(), hook.hmac_sig_regex.as_str()), ("sha256=", ""));
        assert!(hook.extra.is_empty());
    }

    #[test]
    fn a_whole_hook_as_the_tools_write_it_is_written_back_the_same() {
        let written = serde_json::json!({
            "id": "ci", "title": "CI", "description": "", "mode": "cron_task", "prompt_template": "CI {{status}}",
            "enabled": true, "task_folder": "ci-task", "auth_mode": "hmac", "token": "", "hmac_secret": "s",
            "hmac_header": "X-Sig", "hmac_algorithm": "sha1", "hmac_encoding": "base64", "hmac_sig_prefix": "",
            "hmac_sig_regex": "", "hmac_payload_prefix_regex": "", "created_at": "2025-01-01T00:00:00.000000+00:00",
            "trigger_count": 3, "last_triggered_at": "2025-01-02T00:00:00+00:00", "last_error": "error:timeout",
            "provider": "codex", "model": null, "reasoning_effort": null, "cli_parameters": ["--search"],
            "quiet_start": 22, "quiet_end": null, "dependency": null, "kept": {"unknown": true},
        });
        let hook: Webhook = serde_json::from_value(written.clone()).unwrap();
        assert_eq!((hook.trigger_count, hook.quiet_start), (3, Some(22)));
        let again = serde_json::to_value(&hook).unwrap();
        assert_eq!(again, written);
        let order: Vec<&String> = again.as_object().unwrap().keys().collect();
        assert_eq!(order, written.as_object().unwrap().keys().collect::<Vec<_>>());
    }

    #[test]
    fn a_hook_without_a_required_field_makes_the_file_unreadable() {
        for missing in ["title", "mode", "prompt_template", "id"] {
            let mut hook = serde_json::json!({"id": "h", "title": "T", "mode": "wake", "prompt_template": "P"});
            hook.as_object_mut().unwrap().remove(missing);
            let file = serde_json::json!({ "hooks": [hook] });
            assert!(serde_json::from_value::<Webhooks>(file).is_err(), "{missing}");
        }
    }
}

//! `webhooks.json`: webhook definitions (ops spec §8.1).

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
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `wake` or `cron_task`.
    pub mode: String,
    /// Prompt with `{{field}}` placeholders.
    #[serde(default)]
    pub prompt_template: String,
    /// Whether it accepts requests.
    #[serde(default)]
    pub enabled: bool,
    /// Task folder for `cron_task` mode.
    #[serde(default)]
    pub task_folder: Option<String>,
    /// `bearer` or `hmac`.
    #[serde(default)]
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
    /// `sha256`, ...
    #[serde(default)]
    pub hmac_algorithm: String,
    /// `hex` or `base64`.
    #[serde(default)]
    pub hmac_encoding: String,
    /// Prefix before the signature (`sha256=`).
    #[serde(default)]
    pub hmac_sig_prefix: String,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Webhook {
    /// The HTTP path it is served at.
    pub fn endpoint(&self) -> String {
        format!("/hooks/{}", self.id)
    }
}

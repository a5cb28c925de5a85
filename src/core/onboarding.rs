//! The pure parts of the setup wizard (ops spec §19): the bot token's shape, the pairing code
//! (one-time, 10 minutes, matched only in a private chat), and the config the wizard writes
//! over what the file already holds.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// How long a pairing code is good for.
pub const PAIRING_VALID_FOR: Duration = Duration::from_secs(10 * 60);

/// Whether `token` looks like a Bot API token: `<8+ digits>:<30+ of [A-Za-z0-9_-]>`.
pub fn token_shape_ok(token: &str) -> bool {
    let Some((id, secret)) = token.trim().split_once(':') else { return false };
    id.len() >= 8
        && id.bytes().all(|b| b.is_ascii_digit())
        && secret.len() >= 30
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A pairing code: six digits from a random number.
pub fn pairing_code(random: u32) -> String {
    format!("{:06}", random % 1_000_000)
}

/// Whether a message pairs: the code's digits (spaces allowed), sent in a private chat, while
/// the code is still good.
pub fn pairs(code: &str, text: &str, private_chat: bool, age: Duration) -> bool {
    let typed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    private_chat && age <= PAIRING_VALID_FOR && typed == code
}

/// What the wizard found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WizardAnswers {
    /// The bot token.
    pub telegram_token: String,
    /// The allowed users.
    pub allowed_user_ids: Vec<i64>,
    /// IANA time zone.
    pub user_timezone: String,
}

/// The config to write: the existing file's object (anything else counts as `{}`) with the
/// answers set; ductor adds the other keys' defaults at start.
pub fn config_with(existing: Option<Value>, answers: &WizardAnswers) -> Value {
    let mut map = match existing {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    map.insert("transport".into(), json!("telegram"));
    map.insert("transports".into(), json!(["telegram"]));
    map.insert("telegram_token".into(), json!(answers.telegram_token.trim()));
    map.insert("allowed_user_ids".into(), json!(answers.allowed_user_ids));
    map.insert("user_timezone".into(), json!(answers.user_timezone));
    let docker = map.entry("docker").or_insert_with(|| json!({}));
    if let Some(docker) = docker.as_object_mut() {
        docker.insert("enabled".into(), json!(false));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        assert!(token_shape_ok("12345678:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_9"));
        assert!(!token_shape_ok("123:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!token_shape_ok("12345678:short"));
        assert!(!token_shape_ok("12345678AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!token_shape_ok("12345678:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!!"));
    }

    #[test]
    fn a_code_pairs_only_privately_and_within_ten_minutes() {
        let code = pairing_code(4_042_137);
        assert_eq!(code, "042137");
        assert!(pairs(&code, " 042 137 ", true, Duration::from_secs(5)));
        assert!(!pairs(&code, "042137", false, Duration::from_secs(5)), "not in a group");
        assert!(!pairs(&code, "042138", true, Duration::from_secs(5)));
        assert!(!pairs(&code, "042137", true, PAIRING_VALID_FOR + Duration::from_secs(1)), "expired");
    }

    #[test]
    fn the_config_keeps_other_keys_and_sets_the_answers() {
        let answers = WizardAnswers {
            telegram_token: "12345678:x".into(),
            allowed_user_ids: vec![42],
            user_timezone: "UTC".into(),
        };
        let written = config_with(Some(json!({"model": "sonnet", "docker": {"image_name": "x"}})), &answers);
        assert_eq!(written["model"], "sonnet");
        assert_eq!(written["allowed_user_ids"], json!([42]));
        assert_eq!(written["user_timezone"], "UTC");
        assert_eq!(written["docker"], json!({"image_name": "x", "enabled": false}));
        assert_eq!(config_with(Some(json!([1])), &answers)["telegram_token"], "12345678:x");
    }
}

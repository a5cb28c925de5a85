//! The real `ductor` binary configured for Telegram on a temporary home, with the fake Bot API
//! server and the fake provider CLIs on its PATH — what the Telegram and automation tests start.

use std::time::Duration;

use camino::Utf8PathBuf;
use serde_json::{Value, json};

use super::binary::{Service, free_port, request};
use super::fake_bot_api::FakeBotApi;

pub const TOKEN: &str = "123456:TEST-TOKEN";
pub const ALICE: i64 = 7;
pub const BOB: i64 = 8;
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Tg {
    pub api: FakeBotApi,
    pub service: Option<Service>,
    pub home: Utf8PathBuf,
    pub root: Utf8PathBuf,
    pub port: u16,
    pub env: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
}

/// A home configured for Telegram with `extra` config keys; the service started with the fake
/// CLIs on PATH (`fake_env` goes to them).
pub async fn start(extra: Value, fake_env: &[(&str, &str)]) -> Tg {
    let api = FakeBotApi::start(TOKEN).await.unwrap();
    let (dir, home) = super::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = super::fake_cli::install(&root);
    let port = free_port();
    let mut config = json!({
        "telegram_token": TOKEN,
        "allowed_user_ids": [ALICE, BOB],
        "interagent_port": port,
        "model": "opus",
    });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    super::configure_home(&home, &config);
    let mut env: Vec<(String, String)> = vec![
        ("DUCTOR_TELEGRAM_API_BASE".into(), api.base_url()),
        ("PATH".into(), format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())),
        ("FAKE_CLI_RECORD".into(), root.join("record.jsonl").to_string()),
    ];
    env.extend(fake_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut tg = Tg { api, service: None, home, root, port, env, dir };
    tg.launch().await;
    tg
}

impl Tg {
    pub async fn launch(&mut self) {
        let (home, port, env) = (self.home.clone(), self.port, self.env.clone());
        // Only this start's polling counts (an earlier instance polled before).
        let before = self.api.calls().len();
        let service = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Service::start(&home, port, &env)
        })
        .await
        .unwrap();
        self.service = Some(service);
        // Logged in and polling.
        assert!(
            self.api
                .wait_until(WAIT, |calls| calls
                    .iter()
                    .skip(before)
                    .any(|c| c.method == "getUpdates" && c.params["timeout"] == json!(10)))
                .await,
            "the bot starts long polling"
        );
    }

    /// Hands an envelope (JSON) to the service's Bus through the internal API.
    pub fn post_envelope(&self, body: &str) {
        let (code, answer) = request(self.port, "POST", "/interagent/envelopes", Some(body)).unwrap();
        assert_eq!(code, 200, "{answer}");
    }

    /// The prompts the fake CLI received, in order.
    pub fn prompts(&self) -> Vec<String> {
        super::fake_cli::prompts(&self.root)
    }

    /// Waits until message `message_id` of `chat` shows `needle` (after edits).
    pub async fn message_shows(&self, chat: i64, message_id: i64, needle: &str) -> bool {
        self.api
            .wait_until(WAIT, |_| {
                self.api.messages(chat).iter().any(|m| m.message_id == message_id && m.visible.contains(needle))
            })
            .await
    }

    /// Waits until a visible bot message in `chat` contains `needle`; returns its text.
    pub async fn bot_says(&self, chat: i64, needle: &str) -> String {
        let found =
            self.api.wait_until(WAIT, |_| self.api.bot_messages(chat).iter().any(|m| m.visible.contains(needle))).await;
        let texts: Vec<String> = self.api.bot_messages(chat).iter().map(|m| m.visible.clone()).collect();
        assert!(found, "no bot message in {chat} contains {needle:?}; messages: {texts:?}");
        texts.into_iter().find(|t| t.contains(needle)).unwrap_or_default()
    }
}

/// Polls `condition` (things outside the Bot API, like the CLI record) for up to [`WAIT`].
pub async fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

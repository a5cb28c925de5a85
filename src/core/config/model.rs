//! The typed model of `config/config.json`: every key of ops spec §2.8 with its default.
//! Unknown keys are ignored here (they stay in the file: the merge works on raw JSON).

use serde::Deserialize;

use crate::core::config::defaults;
use crate::core::config::lax;

/// The whole configuration of one agent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Config {
    /// DEBUG / INFO / WARNING / ERROR (`-v` overrides to DEBUG).
    pub log_level: String,
    /// Default provider: claude / codex / gemini / antigravity.
    pub provider: String,
    /// Default model; the provider is inferred from it.
    pub model: String,
    /// Chat language: en, de, nl, es, fr, id, pt, ru.
    pub language: String,
    /// Home directory as written in the file (ductor-rs runs in the home it was loaded from).
    pub ductor_home: String,
    /// IANA time zone; "" = host / UTC.
    pub user_timezone: String,
    /// Check for new versions.
    #[serde(deserialize_with = "lax::boolean")]
    pub update_check: bool,
    /// Session expiry after inactivity (0 = never).
    #[serde(deserialize_with = "lax::int")]
    pub idle_timeout_minutes: i64,
    /// Age note on replies after this many hours.
    #[serde(deserialize_with = "lax::int")]
    pub session_age_warning_hours: i64,
    /// Local hour of the daily session reset.
    #[serde(deserialize_with = "lax::int")]
    pub daily_reset_hour: i64,
    /// Whether sessions reset daily.
    #[serde(deserialize_with = "lax::boolean")]
    pub daily_reset_enabled: bool,
    /// Claude budget limit per turn.
    #[serde(deserialize_with = "lax::opt_float")]
    pub max_budget_usd: Option<f64>,
    /// Claude turn limit.
    #[serde(deserialize_with = "lax::opt_int")]
    pub max_turns: Option<i64>,
    /// Session expiry after this many messages.
    #[serde(deserialize_with = "lax::opt_int")]
    pub max_session_messages: Option<i64>,
    /// Permission mode of the CLIs.
    pub permission_mode: String,
    /// Seconds: timeout of one-shot runs; legacy alias of `timeouts.normal` (see [`Config::finish`]).
    #[serde(deserialize_with = "lax::float")]
    pub cli_timeout: f64,
    /// Codex reasoning effort.
    pub reasoning_effort: String,
    /// all / home / workspace.
    pub file_access: String,
    /// Gemini API key; `None` when empty, `null` or `none`.
    #[serde(deserialize_with = "gemini_key")]
    pub gemini_api_key: Option<String>,
    /// Primary transport (telegram / matrix).
    pub transport: String,
    /// All transports, primary first.
    pub transports: Vec<String>,
    /// Telegram bot token.
    pub telegram_token: String,
    /// Bot API server (a local `telegram-bot-api` or a test server); `DUCTOR_TELEGRAM_API_BASE`
    /// wins over it; unset = the official server. Not written into config.json by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_api_base: Option<String>,
    /// Telegram users allowed to talk to the bot (also heartbeat/broadcast targets).
    #[serde(deserialize_with = "lax::int_list")]
    pub allowed_user_ids: Vec<i64>,
    /// Telegram groups allowed.
    #[serde(deserialize_with = "lax::int_list")]
    pub allowed_group_ids: Vec<i64>,
    /// Telegram channels allowed.
    #[serde(deserialize_with = "lax::int_list")]
    pub allowed_channel_ids: Vec<i64>,
    /// In groups, answer only when mentioned.
    #[serde(deserialize_with = "lax::boolean")]
    pub group_mention_only: bool,
    /// Messages that waited longer than this in the inbox while ductor was down are listed to
    /// their chat at start instead of being run (minutes; ductor's own key, not written to the
    /// file unless set).
    #[serde(deserialize_with = "lax::int")]
    pub inbox_max_age_minutes: i64,
    /// Internal API port on 127.0.0.1.
    #[serde(deserialize_with = "lax::port")]
    pub interagent_port: u16,
    /// Matrix transport.
    pub matrix: MatrixConfig,
    /// Streaming output.
    pub streaming: StreamingConfig,
    /// Docker sandbox.
    pub docker: DockerConfig,
    /// Heartbeat observer.
    pub heartbeat: HeartbeatConfig,
    /// Cleanup observer.
    pub cleanup: CleanupConfig,
    /// Webhook server.
    pub webhooks: WebhooksConfig,
    /// Direct WebSocket API.
    pub api: ApiConfig,
    /// Extra CLI flags per provider.
    pub cli_parameters: CliParameters,
    /// Incoming image processing.
    pub image: ImageConfig,
    /// Reactions and footers.
    pub scene: SceneConfig,
    /// Startup / upgrade notice routing.
    pub notifications: NotificationsConfig,
    /// Transcription commands.
    pub transcription: TranscriptionConfig,
    /// Turn timeouts.
    pub timeouts: TimeoutsConfig,
    /// Background tasks.
    pub tasks: TasksConfig,
    /// Pre-compaction memory flush.
    pub memory_flush: MemoryFlushConfig,
    /// Memory reflection hook.
    pub memory_reflection: MemoryReflectionConfig,
    /// Memory compaction.
    pub memory_compaction: MemoryCompactionConfig,
    /// Skill directory sync.
    pub skills: SkillsConfig,
}

fn gemini_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: Option<String> = Option::deserialize(d)?;
    Ok(value.filter(|v| !is_unset_secret(v)))
}

/// Whether a secret is "unset": empty, `null`/`none` (any case, trimmed).
pub fn is_unset_secret(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "" | "null" | "none")
}

impl Default for Config {
    fn default() -> Self {
        Self {
            log_level: "INFO".into(),
            provider: "claude".into(),
            model: "opus".into(),
            language: "en".into(),
            ductor_home: "~/.ductor".into(),
            user_timezone: String::new(),
            update_check: true,
            idle_timeout_minutes: 1440,
            session_age_warning_hours: 12,
            daily_reset_hour: 4,
            daily_reset_enabled: false,
            max_budget_usd: None,
            max_turns: None,
            max_session_messages: None,
            permission_mode: "bypassPermissions".into(),
            cli_timeout: 1800.0,
            reasoning_effort: "medium".into(),
            file_access: "all".into(),
            gemini_api_key: None,
            transport: "telegram".into(),
            transports: vec!["telegram".into()],
            telegram_token: String::new(),
            telegram_api_base: None,
            allowed_user_ids: Vec::new(),
            allowed_group_ids: Vec::new(),
            allowed_channel_ids: Vec::new(),
            group_mention_only: false,
            inbox_max_age_minutes: 60,
            interagent_port: 8799,
            matrix: MatrixConfig::default(),
            streaming: StreamingConfig::default(),
            docker: DockerConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            cleanup: CleanupConfig::default(),
            webhooks: WebhooksConfig::default(),
            api: ApiConfig::default(),
            cli_parameters: CliParameters::default(),
            image: ImageConfig::default(),
            scene: SceneConfig::default(),
            notifications: NotificationsConfig::default(),
            transcription: TranscriptionConfig::default(),
            timeouts: TimeoutsConfig::default(),
            tasks: TasksConfig::default(),
            memory_flush: MemoryFlushConfig::default(),
            memory_reflection: MemoryReflectionConfig::default(),
            memory_compaction: MemoryCompactionConfig::default(),
            skills: SkillsConfig::default(),
        }
    }
}

impl Config {
    /// The inbox age limit in seconds (at least one minute).
    pub fn inbox_max_age_s(&self) -> f64 {
        self.inbox_max_age_minutes.max(1) as f64 * 60.0
    }

    /// Applies the post-validation rules of the original: the `cli_timeout` → `timeouts.normal`
    /// quirk (ops spec §2.6: a `cli_timeout` other than 600 replaces a `timeouts.normal` of 600).
    #[must_use]
    pub fn finish(mut self) -> Self {
        if self.cli_timeout != 600.0 && self.timeouts.normal == 600.0 {
            self.timeouts.normal = self.cli_timeout;
        }
        self
    }

    /// The short names (`tg`, `mx`) of the configured transports, primary first.
    pub fn transport_short_names(&self) -> Vec<&'static str> {
        self.transports
            .iter()
            .filter_map(|t| match t.as_str() {
                "telegram" => Some("tg"),
                "matrix" => Some("mx"),
                _ => None,
            })
            .collect()
    }
}

/// `matrix`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MatrixConfig {
    /// Homeserver URL.
    pub homeserver: String,
    /// `@bot:server`.
    pub user_id: String,
    /// Password for the first login.
    pub password: String,
    /// Access token (persisted after login).
    pub access_token: String,
    /// Device id (persisted after login).
    pub device_id: String,
    /// Allowed rooms (`!id:server` or `#alias:server`).
    pub allowed_rooms: Vec<String>,
    /// Allowed users.
    pub allowed_users: Vec<String>,
    /// Store directory, relative to the home.
    pub store_path: String,
    /// Share room keys only with devices that are verified (cross-signed and trusted); off by
    /// default, so people's unverified devices can read the bot's answers in encrypted rooms.
    #[serde(deserialize_with = "lax::boolean")]
    pub verified_devices_only: bool,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        Self {
            homeserver: String::new(),
            user_id: String::new(),
            password: String::new(),
            access_token: String::new(),
            device_id: String::new(),
            allowed_rooms: Vec::new(),
            allowed_users: Vec::new(),
            store_path: "matrix_store".into(),
            verified_devices_only: false,
        }
    }
}

/// `streaming`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct StreamingConfig {
    /// Stream answers.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Minimum characters per streamed chunk.
    #[serde(deserialize_with = "lax::int")]
    pub min_chars: i64,
    /// Maximum characters per streamed chunk.
    #[serde(deserialize_with = "lax::int")]
    pub max_chars: i64,
    /// Flush after this idle time.
    #[serde(deserialize_with = "lax::int")]
    pub idle_ms: i64,
    /// Seconds between message edits.
    #[serde(deserialize_with = "lax::float")]
    pub edit_interval_seconds: f64,
    /// Edit failures before falling back to new messages.
    #[serde(deserialize_with = "lax::int")]
    pub max_edit_failures: i64,
    /// Append instead of edit.
    #[serde(deserialize_with = "lax::boolean")]
    pub append_mode: bool,
    /// Break chunks at sentence ends.
    #[serde(deserialize_with = "lax::boolean")]
    pub sentence_break: bool,
    /// Show the reasoning stream.
    #[serde(deserialize_with = "lax::boolean")]
    pub show_reasoning_stream: bool,
    /// Show tool progress lines.
    #[serde(deserialize_with = "lax::boolean")]
    pub show_tool_progress: bool,
    /// Show a thinking indicator.
    #[serde(deserialize_with = "lax::boolean")]
    pub show_thinking_indicator: bool,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_chars: 200,
            max_chars: 4000,
            idle_ms: 800,
            edit_interval_seconds: 2.0,
            max_edit_failures: 3,
            append_mode: false,
            sentence_break: true,
            show_reasoning_stream: false,
            show_tool_progress: true,
            show_thinking_indicator: true,
        }
    }
}

/// `docker`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct DockerConfig {
    /// Run the CLIs in the sandbox container.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Image name.
    pub image_name: String,
    /// Container name.
    pub container_name: String,
    /// Build the image when missing.
    #[serde(deserialize_with = "lax::boolean")]
    pub auto_build: bool,
    /// Mount the host's CLI caches.
    #[serde(deserialize_with = "lax::boolean")]
    pub mount_host_cache: bool,
    /// Host directories mounted at `/mnt/<basename>`.
    pub mounts: Vec<String>,
    /// `docker run -p` specs.
    pub published_ports: Vec<String>,
    /// Extra packages by id.
    pub extras: Vec<String>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            image_name: "ductor-sandbox".into(),
            container_name: "ductor-sandbox".into(),
            auto_build: true,
            mount_host_cache: false,
            mounts: Vec::new(),
            published_ports: Vec::new(),
            extras: Vec::new(),
        }
    }
}

/// `heartbeat`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct HeartbeatConfig {
    /// Run the heartbeat observer.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Minutes between heartbeats.
    #[serde(deserialize_with = "lax::int")]
    pub interval_minutes: i64,
    /// Minutes of quiet after user activity.
    #[serde(deserialize_with = "lax::int")]
    pub cooldown_minutes: i64,
    /// Quiet hours start (local hour).
    #[serde(deserialize_with = "lax::int")]
    pub quiet_start: i64,
    /// Quiet hours end (local hour).
    #[serde(deserialize_with = "lax::int")]
    pub quiet_end: i64,
    /// Heartbeat prompt.
    pub prompt: String,
    /// Reply meaning "nothing to say".
    pub ack_token: String,
    /// Per-group targets.
    pub group_targets: Vec<HeartbeatTarget>,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_minutes: 30,
            cooldown_minutes: 5,
            quiet_start: 21,
            quiet_end: 8,
            prompt: defaults::HEARTBEAT_PROMPT.into(),
            ack_token: "HEARTBEAT_OK".into(),
            group_targets: vec![HeartbeatTarget {
                enabled: false,
                prompt: Some(defaults::GROUP_TARGET_HINT.into()),
                ..HeartbeatTarget::default()
            }],
        }
    }
}

/// One `heartbeat.group_targets[]` entry (null fields fall back to the global values).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct HeartbeatTarget {
    /// Whether this target is active.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Group chat id (null = ignored).
    #[serde(deserialize_with = "lax::opt_int")]
    pub chat_id: Option<i64>,
    /// Forum topic.
    #[serde(deserialize_with = "lax::opt_int")]
    pub topic_id: Option<i64>,
    /// Own prompt.
    pub prompt: Option<String>,
    /// Own ack token.
    pub ack_token: Option<String>,
    /// Own interval (own loop).
    #[serde(deserialize_with = "lax::opt_int")]
    pub interval_minutes: Option<i64>,
    /// Own quiet start.
    #[serde(deserialize_with = "lax::opt_int")]
    pub quiet_start: Option<i64>,
    /// Own quiet end.
    #[serde(deserialize_with = "lax::opt_int")]
    pub quiet_end: Option<i64>,
    /// Transport of the chat (`tg`, `mx`; 0.20.1's key, `tg` when absent).
    pub transport: String,
}

impl Default for HeartbeatTarget {
    fn default() -> Self {
        Self {
            enabled: true,
            chat_id: None,
            topic_id: None,
            prompt: None,
            ack_token: None,
            interval_minutes: None,
            quiet_start: None,
            quiet_end: None,
            transport: "tg".into(),
        }
    }
}

/// `cleanup`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct CleanupConfig {
    /// Run the cleanup observer.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Days to keep received media (legacy alias `telegram_files_days`).
    #[serde(deserialize_with = "lax::int")]
    pub media_files_days: i64,
    /// Days to keep `output_to_user/` files.
    #[serde(deserialize_with = "lax::int")]
    pub output_to_user_days: i64,
    /// Days to keep API uploads.
    #[serde(deserialize_with = "lax::int")]
    pub api_files_days: i64,
    /// Local hour of the daily check.
    #[serde(deserialize_with = "lax::int")]
    pub check_hour: i64,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self { enabled: true, media_files_days: 30, output_to_user_days: 30, api_files_days: 30, check_hour: 3 }
    }
}

/// `webhooks`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Run the webhook server.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Bind address.
    pub host: String,
    /// Port.
    #[serde(deserialize_with = "lax::port")]
    pub port: u16,
    /// Global bearer token (generated when empty).
    pub token: String,
    /// Largest accepted body.
    #[serde(deserialize_with = "lax::int")]
    pub max_body_bytes: i64,
    /// Requests per minute (global).
    #[serde(deserialize_with = "lax::int")]
    pub rate_limit_per_minute: i64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".into(),
            port: 8742,
            token: String::new(),
            max_body_bytes: 262_144,
            rate_limit_per_minute: 30,
        }
    }
}

/// `api` (the direct WebSocket API).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    /// Run the API.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Bind address.
    pub host: String,
    /// Port.
    #[serde(deserialize_with = "lax::port")]
    pub port: u16,
    /// Auth token (generated on enable).
    pub token: String,
    /// Chat id of API sessions (0 = first allowed user, else 1).
    #[serde(deserialize_with = "lax::int")]
    pub chat_id: i64,
    /// Allow non-loopback clients.
    #[serde(deserialize_with = "lax::boolean")]
    pub allow_public: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "0.0.0.0".into(),
            port: 8741,
            token: String::new(),
            chat_id: 0,
            allow_public: false,
        }
    }
}

/// `cli_parameters`: extra CLI flags per provider.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CliParameters {
    /// For `claude`.
    pub claude: Vec<String>,
    /// For `codex`.
    pub codex: Vec<String>,
    /// For `gemini`.
    pub gemini: Vec<String>,
    /// For `agy` (antigravity).
    pub antigravity: Vec<String>,
}

/// `image`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    /// Longest side after resizing.
    #[serde(deserialize_with = "lax::int")]
    pub max_dimension: i64,
    /// Output format.
    pub output_format: String,
    /// Quality.
    #[serde(deserialize_with = "lax::int")]
    pub quality: i64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self { max_dimension: 2000, output_format: "webp".into(), quality: 85 }
    }
}

/// `scene`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct SceneConfig {
    /// React when a message is seen.
    #[serde(deserialize_with = "lax::boolean")]
    pub seen_reaction: bool,
    /// Status reactions during a turn.
    #[serde(deserialize_with = "lax::boolean")]
    pub status_reaction: bool,
    /// Technical footer under answers.
    #[serde(deserialize_with = "lax::boolean")]
    pub technical_footer: bool,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self { seen_reaction: false, status_reaction: true, technical_footer: false }
    }
}

/// `notifications`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NotificationsConfig {
    /// Where startup notices go (empty = every allowed user).
    pub startup_targets: Vec<NotificationTarget>,
    /// Where upgrade notices go.
    pub upgrade_targets: Vec<NotificationTarget>,
}

/// One notification target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct NotificationTarget {
    /// Whether it is active.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Chat.
    #[serde(deserialize_with = "lax::opt_int")]
    pub chat_id: Option<i64>,
    /// Topic.
    #[serde(deserialize_with = "lax::opt_int")]
    pub topic_id: Option<i64>,
}

impl Default for NotificationTarget {
    fn default() -> Self {
        Self { enabled: true, chat_id: None, topic_id: None }
    }
}

/// `transcription`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TranscriptionConfig {
    /// Exported as `DUCTOR_TRANSCRIBE_COMMAND`.
    pub audio_command: String,
    /// Exported as `DUCTOR_VIDEO_TRANSCRIBE_COMMAND`.
    pub video_command: String,
}

/// `timeouts` (seconds).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct TimeoutsConfig {
    /// Foreground turns (effective default 1800: see [`Config::finish`]).
    #[serde(deserialize_with = "lax::float")]
    pub normal: f64,
    /// Background sessions.
    #[serde(deserialize_with = "lax::float")]
    pub background: f64,
    /// Sub-agent turns.
    #[serde(deserialize_with = "lax::float")]
    pub subagent: f64,
    /// Warnings this many seconds before the timeout.
    #[serde(deserialize_with = "lax::float_list")]
    pub warning_intervals: Vec<f64>,
    /// Extend the timeout while the CLI is active.
    #[serde(deserialize_with = "lax::boolean")]
    pub extend_on_activity: bool,
    /// Seconds per extension.
    #[serde(deserialize_with = "lax::float")]
    pub activity_extension: f64,
    /// Extensions at most.
    #[serde(deserialize_with = "lax::int")]
    pub max_extensions: i64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            normal: 600.0,
            background: 1800.0,
            subagent: 3600.0,
            warning_intervals: vec![60.0, 10.0],
            extend_on_activity: true,
            activity_extension: 120.0,
            max_extensions: 3,
        }
    }
}

/// `tasks`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct TasksConfig {
    /// Background tasks on.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Tasks at once.
    #[serde(deserialize_with = "lax::int")]
    pub max_parallel: i64,
    /// Seconds per task.
    #[serde(deserialize_with = "lax::float")]
    pub timeout_seconds: f64,
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self { enabled: true, max_parallel: 5, timeout_seconds: 3600.0 }
    }
}

/// `memory_flush`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MemoryFlushConfig {
    /// Flush before compaction.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// The flush prompt.
    pub flush_prompt: String,
    /// Seconds between flushes (≥ 0).
    #[serde(deserialize_with = "lax::int")]
    pub dedup_seconds: i64,
}

impl Default for MemoryFlushConfig {
    fn default() -> Self {
        Self { enabled: true, flush_prompt: defaults::FLUSH_PROMPT.into(), dedup_seconds: 300 }
    }
}

/// `memory_reflection`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MemoryReflectionConfig {
    /// Reflection hook on.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Every n messages (≥ 1).
    #[serde(deserialize_with = "lax::int")]
    pub every_n_messages: i64,
    /// The reflection prompt.
    pub prompt: String,
}

impl Default for MemoryReflectionConfig {
    fn default() -> Self {
        Self { enabled: false, every_n_messages: 10, prompt: defaults::REFLECTION_PROMPT.into() }
    }
}

/// `memory_compaction`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MemoryCompactionConfig {
    /// Compaction on.
    #[serde(deserialize_with = "lax::boolean")]
    pub enabled: bool,
    /// Compact above this many lines (≥ 1).
    #[serde(deserialize_with = "lax::int")]
    pub trigger_lines: i64,
    /// Target size (1 ≤ target ≤ trigger).
    #[serde(deserialize_with = "lax::int")]
    pub target_lines: i64,
    /// Keep entries of the last n days verbatim (≥ 0).
    #[serde(deserialize_with = "lax::int")]
    pub preserve_recency_days: i64,
    /// The compaction prompt.
    pub prompt: String,
}

impl Default for MemoryCompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            trigger_lines: 70,
            target_lines: 40,
            preserve_recency_days: 14,
            prompt: defaults::COMPACTION_PROMPT.into(),
        }
    }
}

/// `skills`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct SkillsConfig {
    /// Sync skills with the CLIs' skill directories.
    #[serde(deserialize_with = "lax::boolean")]
    pub sync_enabled: bool,
    /// Per CLI.
    pub sync: SkillSync,
}

impl Default for SkillsConfig {
    fn default() -> Self {
        Self { sync_enabled: true, sync: SkillSync::default() }
    }
}

/// `skills.sync`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct SkillSync {
    /// Claude.
    #[serde(deserialize_with = "lax::boolean")]
    pub claude: bool,
    /// Codex.
    #[serde(deserialize_with = "lax::boolean")]
    pub codex: bool,
    /// Gemini.
    #[serde(deserialize_with = "lax::boolean")]
    pub gemini: bool,
}

impl Default for SkillSync {
    fn default() -> Self {
        Self { claude: true, codex: true, gemini: true }
    }
}

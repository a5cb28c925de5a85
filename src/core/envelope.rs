//! The Envelope: the one typed message every asynchronous delivery travels in (transports spec §4.1).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::core::session_key::ChatId;

/// Who produced an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A named background session finished.
    Background,
    /// A cron job ran.
    Cron,
    /// A webhook in wake mode ran in a chat session.
    WebhookWake,
    /// A webhook in cron_task mode ran its task folder.
    WebhookCron,
    /// A heartbeat produced a message.
    Heartbeat,
    /// An asynchronous inter-agent answer.
    Interagent,
    /// A background task finished.
    TaskResult,
    /// A background task asks the user something.
    TaskQuestion,
    /// A user message (audit only).
    User,
    /// The direct API (audit only).
    Api,
    /// The supervision tree reports something to the agent's users (ductor-rs).
    Supervisor,
    /// A turn cut by a crash is reported at the next start (ductor-rs).
    Recovery,
    /// An origin this build does not know (kept when read back from the outbox).
    #[serde(other)]
    Unknown,
}

impl Origin {
    /// The wire name (`cron`, `task_result`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Background => "background",
            Self::Cron => "cron",
            Self::WebhookWake => "webhook_wake",
            Self::WebhookCron => "webhook_cron",
            Self::Heartbeat => "heartbeat",
            Self::Interagent => "interagent",
            Self::TaskResult => "task_result",
            Self::TaskQuestion => "task_question",
            Self::User => "user",
            Self::Api => "api",
            Self::Supervisor => "supervisor",
            Self::Recovery => "recovery",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// To one chat, or to everyone the transport serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// To `chat_id` / `topic_id`.
    #[default]
    Unicast,
    /// To every allowed user / room of the transport.
    Broadcast,
}

/// Whether the envelope must wait for the chat's current turn (per-chat order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// Queue behind the chat session's turns.
    Required,
    /// Deliver independently of the session.
    #[default]
    None,
}

/// A 12-lowercase-hex envelope id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnvelopeId(String);

impl EnvelopeId {
    /// A fresh random id: 48 random bits as 12 lowercase hex characters.
    pub fn random() -> Self {
        Self(format!("{:012x}", rand::random::<u64>() & 0xFFFF_FFFF_FFFF))
    }

    /// Accepts exactly 12 lowercase hex characters.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Self(text.to_owned()))
    }

    /// Whether no id was assigned yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One asynchronous delivery: identity, input, result, delivery rules and tracking data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Envelope {
    /// Who produced it.
    pub origin: Origin,
    /// Target chat (0 with BROADCAST).
    pub chat_id: ChatId,
    /// Target topic / thread, if any.
    pub topic_id: Option<i64>,
    /// Target transport short name (`tg`, `mx`, `api`); `""` means every transport.
    pub transport: String,
    /// Prompt to run in the chat's active session when `needs_injection` is set.
    pub prompt: String,
    /// Short preview of the prompt for notices.
    pub prompt_preview: String,
    /// The text to deliver.
    pub result_text: String,
    /// Producer status (`success`, `error: ...`, `done`, ...).
    pub status: String,
    /// Whether the result is an error.
    pub is_error: bool,
    /// UNICAST or BROADCAST.
    pub delivery: DeliveryMode,
    /// Whether to queue behind the chat session's turns.
    pub lock_mode: LockMode,
    /// Whether `prompt` must be run in the chat's active session before delivery.
    pub needs_injection: bool,
    /// Free-form producer data (`task_id`, `title`, `hook_id`, ...).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Telegram message to reply to.
    pub reply_to_message_id: Option<i64>,
    /// Telegram thread for the answer.
    pub thread_id: Option<i64>,
    /// 12-hex id, assigned on submit when empty.
    pub envelope_id: EnvelopeId,
    /// Unix time (seconds) of creation.
    pub created_at: f64,
    /// How long the producer worked, in seconds.
    pub elapsed_seconds: f64,
    /// Provider that produced the result.
    pub provider: String,
    /// Model that produced the result.
    pub model: String,
    /// Named session the result belongs to.
    pub session_name: String,
    /// Provider session id.
    pub session_id: String,
}

impl Default for Envelope {
    fn default() -> Self {
        Self {
            origin: Origin::Unknown,
            chat_id: ChatId(0),
            topic_id: None,
            transport: "tg".to_owned(),
            prompt: String::new(),
            prompt_preview: String::new(),
            result_text: String::new(),
            status: String::new(),
            is_error: false,
            delivery: DeliveryMode::Unicast,
            lock_mode: LockMode::None,
            needs_injection: false,
            metadata: serde_json::Map::new(),
            reply_to_message_id: None,
            thread_id: None,
            envelope_id: EnvelopeId::default(),
            created_at: 0.0,
            elapsed_seconds: 0.0,
            provider: String::new(),
            model: String::new(),
            session_name: String::new(),
            session_id: String::new(),
        }
    }
}

impl Envelope {
    /// A BROADCAST notice from the supervision tree, prefixed `[Supervisor]`.
    pub fn supervisor_notice(text: &str) -> Self {
        Self {
            origin: Origin::Supervisor,
            transport: String::new(),
            delivery: DeliveryMode::Broadcast,
            status: "error".to_owned(),
            is_error: true,
            result_text: format!("[Supervisor] {text}"),
            ..Self::default()
        }
    }

    /// The same envelope with a delivery key: the Bus records it at most once (see
    /// [`crate::core::outbox::DELIVERY_KEY`]).
    pub fn with_delivery_key(mut self, key: &str) -> Self {
        self.metadata.insert(crate::core::outbox::DELIVERY_KEY.to_owned(), key.into());
        self
    }

    /// The per-chat ordering key: `(chat_id, topic_id)`, not transport-qualified.
    pub fn lock_key(&self) -> (ChatId, Option<i64>) {
        (self.chat_id, self.topic_id)
    }

    /// Whether this envelope must go through the chat session (queue and/or injection) —
    /// the seam the session layer plugs into.
    pub fn needs_session(&self) -> bool {
        self.lock_mode == LockMode::Required || (self.needs_injection && !self.prompt.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ten_thousand_ids_are_distinct_12_hex() {
        let ids: HashSet<String> = (0..10_000).map(|_| EnvelopeId::random().0).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| EnvelopeId::parse(id).is_some()));
    }

    #[test]
    fn id_parse_rejects_wrong_shapes() {
        assert!(EnvelopeId::parse("0123456789ab").is_some());
        assert!(EnvelopeId::parse("0123456789AB").is_none());
        assert!(EnvelopeId::parse("0123456789a").is_none());
        assert!(EnvelopeId::parse("0123456789abc").is_none());
        assert!(EnvelopeId::parse("0123456789ag").is_none());
    }

    #[test]
    fn envelope_round_trips_with_wire_names() {
        let env = Envelope {
            origin: Origin::TaskResult,
            chat_id: ChatId::from(11_157_422_694_161_409_176u64),
            delivery: DeliveryMode::Broadcast,
            lock_mode: LockMode::Required,
            ..Envelope::default()
        };
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(json["origin"], "task_result");
        assert_eq!(json["delivery"], "broadcast");
        assert_eq!(json["lock_mode"], "required");
        assert_eq!(json["transport"], "tg");
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn unknown_origin_is_kept_readable() {
        let env: Envelope = serde_json::from_str(r#"{"origin":"martian","result_text":"x"}"#).unwrap();
        assert_eq!(env.origin, Origin::Unknown);
        assert_eq!(env.result_text, "x");
    }

    #[test]
    fn session_seam() {
        let mut env = Envelope::default();
        assert!(!env.needs_session());
        env.lock_mode = LockMode::Required;
        assert!(env.needs_session());
        env.lock_mode = LockMode::None;
        env.needs_injection = true;
        assert!(!env.needs_session(), "injection without a prompt does nothing");
        env.prompt = "go".into();
        assert!(env.needs_session());
    }
}

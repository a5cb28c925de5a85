//! The frames of the direct API, pure (no I/O): the plaintext `auth` frame and its checks, the
//! error codes, the JSON each frame carries (compact, non-ASCII escaped as `\uXXXX`, as the
//! original's `json.dumps`), the client frames after `auth_ok`, and the events of a turn.
//! The protocol is written down in `docs/api-protocol.md`.

use serde_json::{Map, Value, json};

use crate::core::stream_event::StreamEvent;

/// The error codes a client can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No `auth` frame within the time allowed.
    AuthTimeout,
    /// The first frame is not a JSON `auth` frame.
    AuthRequired,
    /// Wrong token, or a missing / unusable public key.
    AuthFailed,
    /// `protocol` names a version this server does not speak.
    UnsupportedProtocol,
    /// A frame that does not open (v2: the connection is closed after it).
    DecryptFailed,
    /// A decrypted frame that is not a JSON object with a `type`.
    InvalidJson,
    /// A `message` whose text is empty.
    Empty,
    /// A frame of a type the server does not know.
    UnknownType,
    /// The turn failed inside ductor.
    InternalError,
    /// Nothing runs messages (the agent is starting or stopping).
    NoHandler,
}

impl ErrorCode {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthTimeout => "auth_timeout",
            Self::AuthRequired => "auth_required",
            Self::AuthFailed => "auth_failed",
            Self::UnsupportedProtocol => "unsupported_protocol",
            Self::DecryptFailed => "decrypt_failed",
            Self::InvalidJson => "invalid_json",
            Self::Empty => "empty",
            Self::UnknownType => "unknown_type",
            Self::InternalError => "internal_error",
            Self::NoHandler => "no_handler",
        }
    }
}

/// `{"type":"error","code":…,"message":…}`.
pub fn error_frame(code: ErrorCode, message: &str) -> Value {
    json!({"type": "error", "code": code.as_str(), "message": message})
}

/// Compact JSON with every non-ASCII character escaped (`\uXXXX`, surrogate pairs above the
/// BMP) — byte for byte what Python's `json.dumps(..., separators=(",", ":"))` writes.
pub fn ascii_json(value: &Value) -> String {
    let compact = value.to_string();
    let mut out = String::with_capacity(compact.len());
    for c in compact.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The protocol a client asked for in its `auth` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// No `protocol` field (or `1`): NaCl boxes, as ductor 0.18.2.
    V1,
    /// `"protocol": 2`: `crypto_kx` keys and one secretstream per direction.
    V2,
}

/// A parsed `auth` frame (the token is checked by the caller, in constant time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFrame {
    /// The token as sent.
    pub token: String,
    /// The client's X25519 public key, when present and decodable.
    pub client_pk: Option<[u8; 32]>,
    /// A positive `chat_id`, if given.
    pub chat_id: Option<i64>,
    /// A positive `channel_id`, if given.
    pub channel_id: Option<i64>,
    /// The protocol asked for.
    pub protocol: Result<Protocol, String>,
}

/// The first frame's text as an `auth` frame; `Err` is the `auth_required` refusal's message.
pub fn parse_auth(text: &str) -> Result<AuthFrame, &'static str> {
    let value: Value = serde_json::from_str(text).map_err(|_| "the first frame must be a JSON auth frame")?;
    if value.get("type").and_then(Value::as_str) != Some("auth") {
        return Err("the first frame must be {\"type\":\"auth\",…}");
    }
    let positive = |key: &str| value.get(key).and_then(Value::as_i64).filter(|n| *n > 0);
    let client_pk = value.get("e2e_pk").and_then(Value::as_str).and_then(decode_key);
    let protocol = match value.get("protocol") {
        None | Some(Value::Null) => Ok(Protocol::V1),
        Some(p) if p.as_u64() == Some(1) => Ok(Protocol::V1),
        Some(p) if p.as_u64() == Some(2) => Ok(Protocol::V2),
        Some(other) => Err(other.to_string()),
    };
    Ok(AuthFrame {
        token: value.get("token").and_then(Value::as_str).unwrap_or_default().to_owned(),
        client_pk,
        chat_id: positive("chat_id"),
        channel_id: positive("channel_id"),
        protocol,
    })
}

/// A base64 32-byte key.
pub fn decode_key(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

/// A base64 text of bytes.
pub fn encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One provider of `auth_ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEntry {
    /// `claude`, `codex`, `gemini`, …
    pub id: String,
    /// Its models.
    pub models: Vec<String>,
}

/// A provider's display name and colour (unknown ids title-cased, grey).
pub fn provider_style(id: &str) -> (String, &'static str) {
    match id {
        "claude" => ("Claude Code".to_owned(), "#F97316"),
        "codex" => ("Codex".to_owned(), "#10B981"),
        "gemini" => ("Gemini".to_owned(), "#8B5CF6"),
        "antigravity" => ("Antigravity".to_owned(), "#3B82F6"),
        other => {
            let mut chars = other.chars();
            let title = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
            (title, "#A1A1AA")
        }
    }
}

/// What `auth_ok` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOk {
    /// The chat the connection talks in.
    pub chat_id: i64,
    /// Its channel, if any.
    pub channel_id: Option<i64>,
    /// The server's ephemeral public key.
    pub server_pk: [u8; 32],
    /// The authenticated providers.
    pub providers: Vec<ProviderEntry>,
    /// The provider of the chat's next turn.
    pub provider: String,
    /// Its model.
    pub model: String,
    /// The protocol agreed.
    pub protocol: Protocol,
}

/// The `auth_ok` frame. v1 keeps 0.18.2's swap (`active_provider` carries the model,
/// `active_model` the provider id) for the clients written against it; v2 says what the names
/// say and adds `"protocol": 2`.
pub fn auth_ok_frame(ok: &AuthOk) -> Value {
    let mut providers: Vec<&ProviderEntry> = ok.providers.iter().collect();
    providers.sort_by(|a, b| a.id.cmp(&b.id));
    let providers: Vec<Value> = providers
        .into_iter()
        .map(|p| {
            let (name, color) = provider_style(&p.id);
            json!({"id": p.id, "name": name, "color": color, "models": p.models})
        })
        .collect();
    let mut frame = Map::new();
    frame.insert("type".into(), json!("auth_ok"));
    frame.insert("chat_id".into(), json!(ok.chat_id));
    frame.insert("e2e_pk".into(), json!(encode(&ok.server_pk)));
    frame.insert("providers".into(), Value::Array(providers));
    if let Some(channel) = ok.channel_id {
        frame.insert("channel_id".into(), json!(channel));
    }
    match ok.protocol {
        Protocol::V1 => {
            frame.insert("active_provider".into(), json!(ok.model));
            frame.insert("active_model".into(), json!(ok.provider));
        }
        Protocol::V2 => {
            frame.insert("active_provider".into(), json!(ok.provider));
            frame.insert("active_model".into(), json!(ok.model));
            frame.insert("protocol".into(), json!(2));
        }
    }
    Value::Object(frame)
}

/// A decrypted client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// A message to run (trimmed, not empty, not `/stop`).
    Message(String),
    /// `abort`, or a message that is exactly `/stop`.
    Abort,
    /// A message with nothing in it.
    Empty,
    /// A type this server does not know.
    Unknown(String),
    /// Not a JSON object with a `type`.
    Invalid,
}

/// Reads a decrypted frame.
pub fn parse_client_frame(plaintext: &[u8]) -> ClientFrame {
    let Ok(Value::Object(frame)) = serde_json::from_slice::<Value>(plaintext) else { return ClientFrame::Invalid };
    match frame.get("type").and_then(Value::as_str) {
        Some("message") => {
            let text = frame.get("text").and_then(Value::as_str).unwrap_or_default().trim();
            if text.is_empty() {
                ClientFrame::Empty
            } else if text.eq_ignore_ascii_case("/stop") {
                ClientFrame::Abort
            } else {
                ClientFrame::Message(text.to_owned())
            }
        }
        Some("abort") => ClientFrame::Abort,
        Some(other) => ClientFrame::Unknown(other.to_owned()),
        None => ClientFrame::Invalid,
    }
}

/// The frame a stream event becomes, if any (reasoning is not forwarded).
pub fn event_frame(event: &StreamEvent) -> Option<Value> {
    match event {
        StreamEvent::TextDelta { text } if !text.is_empty() => Some(json!({"type": "text_delta", "data": text})),
        StreamEvent::ToolUse { name, .. } => Some(json!({"type": "tool_activity", "data": name})),
        StreamEvent::SystemStatus { status } => Some(json!({"type": "system_status", "data": status})),
        StreamEvent::CompactBoundary { .. } => Some(json!({"type": "system_status", "data": "compacting"})),
        _ => None,
    }
}

/// One file an answer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFile {
    /// Its absolute path (fetch it with `GET /files?path=`).
    pub path: String,
    /// Its file name.
    pub name: String,
    /// Whether it is an image.
    pub is_image: bool,
}

/// The `result` frame ending a turn.
pub fn result_frame(text: &str, stream_fallback: bool, files: &[ResultFile]) -> Value {
    let files: Vec<Value> =
        files.iter().map(|f| json!({"path": f.path, "name": f.name, "is_image": f.is_image})).collect();
    json!({"type": "result", "text": text, "stream_fallback": stream_fallback, "files": files})
}

/// `abort_ok` with the number of processes stopped.
pub fn abort_ok_frame(killed: usize) -> Value {
    json!({"type": "abort_ok", "killed": killed})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compact_and_ascii() {
        let value = json!({"type": "text_delta", "data": "Grüße 🚀 \"q\"\n"});
        assert_eq!(ascii_json(&value), r#"{"type":"text_delta","data":"Gr\u00fc\u00dfe \ud83d\ude80 \"q\"\n"}"#);
    }

    #[test]
    fn auth_frames() {
        let pk = encode(&[4; 32]);
        let auth = parse_auth(&format!(r#"{{"type":"auth","token":"t","e2e_pk":"{pk}","chat_id":5,"channel_id":-1}}"#))
            .unwrap();
        assert_eq!(auth.client_pk, Some([4; 32]));
        assert_eq!((auth.chat_id, auth.channel_id, auth.protocol), (Some(5), None, Ok(Protocol::V1)));
        let v2 = parse_auth(&format!(r#"{{"type":"auth","token":"t","e2e_pk":"{pk}","protocol":2,"chat_id":"x"}}"#))
            .unwrap();
        assert_eq!((v2.chat_id, v2.protocol), (None, Ok(Protocol::V2)));
        assert_eq!(parse_auth(r#"{"type":"auth","protocol":9}"#).unwrap().protocol, Err("9".to_owned()));
        assert_eq!(parse_auth(r#"{"type":"auth","e2e_pk":"short"}"#).unwrap().client_pk, None);
        assert!(parse_auth("hello").is_err());
        assert!(parse_auth(r#"{"type":"message"}"#).is_err());
    }

    #[test]
    fn auth_ok_swaps_only_in_v1() {
        let ok = AuthOk {
            chat_id: 7,
            channel_id: Some(2),
            server_pk: [0; 32],
            providers: vec![
                ProviderEntry { id: "gemini".into(), models: vec![] },
                ProviderEntry { id: "claude".into(), models: vec!["opus".into()] },
            ],
            provider: "claude".into(),
            model: "opus".into(),
            protocol: Protocol::V1,
        };
        let v1 = auth_ok_frame(&ok);
        assert_eq!((v1["active_provider"].as_str(), v1["active_model"].as_str()), (Some("opus"), Some("claude")));
        assert_eq!(v1["providers"][0]["name"], "Claude Code");
        assert_eq!(v1["channel_id"], 2);
        let v2 = auth_ok_frame(&AuthOk { protocol: Protocol::V2, ..ok });
        assert_eq!((v2["active_provider"].as_str(), v2["active_model"].as_str()), (Some("claude"), Some("opus")));
        assert_eq!(provider_style("grok"), ("Grok".to_owned(), "#A1A1AA"));
    }

    #[test]
    fn client_frames() {
        assert_eq!(parse_client_frame(br#"{"type":"message","text":"  hi "}"#), ClientFrame::Message("hi".into()));
        assert_eq!(parse_client_frame(br#"{"type":"message","text":"  "}"#), ClientFrame::Empty);
        assert_eq!(parse_client_frame(br#"{"type":"message","text":"/STOP"}"#), ClientFrame::Abort);
        assert_eq!(parse_client_frame(br#"{"type":"abort"}"#), ClientFrame::Abort);
        assert_eq!(parse_client_frame(br#"{"type":"foo"}"#), ClientFrame::Unknown("foo".into()));
        assert_eq!(parse_client_frame(b"[1]"), ClientFrame::Invalid);
    }
}

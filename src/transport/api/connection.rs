//! One WebSocket connection of the direct API (a task per socket): the plaintext handshake
//! (`auth` within the time allowed, the token compared in constant time, protocol v1 or v2),
//! then a reader that opens each frame in order and a writer that seals each frame in order.
//! A `message` becomes a turn task that sends the chat message to the Orchestrator (the chat's
//! Session keeps the order of every socket's messages and runs one turn at a time) and forwards
//! its events; an `abort` is handled at once, while a turn of the same socket streams. v1 frames
//! that do not open are answered with `decrypt_failed` and the socket stays; in v2 a frame that
//! does not open (replayed, dropped, reordered, another key) ends the connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use warp::ws::{Message, WebSocket};

use super::box_v1::{self, BoxV1};
use super::stream_v2::{self, Opener, Sealer};
use super::wire::{
    self, AuthOk, ClientFrame, ErrorCode, Protocol, ProviderEntry, ResultFile, abort_ok_frame, ascii_json, error_frame,
    event_frame, parse_auth, parse_client_frame, result_frame,
};
use crate::chat::model_catalog::ModelCatalog;
use crate::chat::orchestrator::OrchestratorHandle;
use crate::chat::session::SessionOutput;
use crate::core::config::model::Config;
use crate::core::file_tags::{UploadKind, take_file_tags, upload_kind};
use crate::core::inbox::InboxEntry;
use crate::core::model_cache::CLAUDE_MODELS;
use crate::core::session_key::SessionKey;
use crate::provider::ProviderKind;
use crate::provider::auth::{AuthProbe, AuthStatus};
use crate::store::inbox_journal::SharedInbox;
use crate::store::paths::DuctorPaths;
use crate::transport::inbox_entry::InboxEntryGuard;

/// The Bus transport name of the direct API (its inbox entries carry it too).
pub const API_TRANSPORT: &str = "api";
/// The transport of API session keys: API chats are the Telegram chats of the same id, as in
/// the original (`(tg, chat_id, channel_id)`).
const SESSION_TRANSPORT: &str = "tg";
/// How often the server pings.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A socket that answered nothing (not even a pong) for this long is closed.
const SILENT_LIMIT: Duration = Duration::from_secs(75);
/// How often refused frames are summarised in the log.
const REFUSALS_LOG_EVERY: Duration = Duration::from_secs(60);

/// What every connection of one server shares.
pub struct Hub {
    /// The API token (`api.token`).
    pub token: String,
    /// The agent's config.
    pub config: Arc<Config>,
    /// The agent's home.
    pub paths: DuctorPaths,
    /// Where messages go.
    pub orchestrator: OrchestratorHandle,
    /// The agent's inbox.
    pub inbox: SharedInbox,
    /// Model lists for `auth_ok`.
    pub catalog: ModelCatalog,
    /// The chat of a connection that names none.
    pub default_chat: i64,
    /// How long a new socket has for its `auth` frame.
    pub auth_timeout: Duration,
    sockets: Mutex<HashMap<u64, Socket>>,
    next_socket: AtomicU64,
    refusals: AtomicUsize,
    refusals_logged: Mutex<Instant>,
}

struct Socket {
    chat_id: i64,
    out: mpsc::UnboundedSender<Outgoing>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("default_chat", &self.default_chat).finish_non_exhaustive()
    }
}

/// What the writer of a socket sends.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// A frame, sealed on its way out.
    Frame(Value),
    /// Close the socket with this reason (policy violation).
    Close(String),
}

impl Hub {
    /// A hub for one server.
    pub fn new(
        token: String,
        config: Arc<Config>,
        paths: DuctorPaths,
        orchestrator: OrchestratorHandle,
        inbox: SharedInbox,
        catalog: ModelCatalog,
    ) -> Self {
        let default_chat = if config.api.chat_id > 0 {
            config.api.chat_id
        } else {
            config.allowed_user_ids.first().copied().filter(|id| *id > 0).unwrap_or(1)
        };
        Self {
            token,
            config,
            paths,
            orchestrator,
            inbox,
            catalog,
            default_chat,
            auth_timeout: Duration::from_secs(10),
            sockets: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(1),
            refusals: AtomicUsize::new(0),
            refusals_logged: Mutex::new(Instant::now()),
        }
    }

    /// Open authenticated sockets.
    pub fn connections(&self) -> usize {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether `token` is the API token (constant time; an unset token matches nothing).
    pub fn token_ok(&self, token: &str) -> bool {
        !self.token.is_empty() && orion::util::secure_cmp(token.as_bytes(), self.token.as_bytes()).is_ok()
    }

    /// Counts a refused request or frame; logs the count at most once a minute (each one is a
    /// debug line), so a flood cannot flood the log.
    pub fn refused(&self, what: &str, why: &str) {
        tracing::debug!(actor = "api", what, why, "Refused.");
        let count = self.refusals.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.refusals_logged.lock().unwrap_or_else(PoisonError::into_inner);
        if last.elapsed() >= REFUSALS_LOG_EVERY || count == 1 {
            *last = Instant::now();
            let count = self.refusals.swap(0, Ordering::Relaxed);
            tracing::warn!(actor = "api", refused = count, last = what, why, "Direct API refused requests or frames.");
        }
    }

    /// A notice for the sockets of `chat` (every socket with `None`); returns how many got it.
    pub fn notify(&self, chat: Option<i64>, text: &str) -> usize {
        let sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        sockets
            .values()
            .filter(|s| chat.is_none_or(|c| c == s.chat_id))
            .filter(|s| s.out.send(Outgoing::Frame(json!({"type": "notification", "text": text}))).is_ok())
            .count()
    }

    fn providers(&self) -> Vec<ProviderEntry> {
        let env = |name: &str| std::env::var(name).ok();
        let probe = AuthProbe {
            home: camino::Utf8PathBuf::from(std::env::var("HOME").unwrap_or_default()),
            env: &env,
            gemini_api_key: self.config.gemini_api_key.clone(),
            search_path: None,
            claude_cli_logged_in: None,
        };
        let models = |kind: ProviderKind| -> Vec<String> {
            match kind {
                ProviderKind::Claude => CLAUDE_MODELS.iter().map(|m| (*m).to_owned()).collect(),
                ProviderKind::Codex => self.catalog.codex().into_iter().map(|m| m.id).collect(),
                _ => self.catalog.gemini(),
            }
        };
        [ProviderKind::Claude, ProviderKind::Codex, ProviderKind::Gemini]
            .into_iter()
            .filter(|kind| matches!(probe.status(*kind), AuthStatus::Authenticated { .. }))
            .map(|kind| ProviderEntry { id: kind.name().to_owned(), models: models(kind) })
            .collect()
    }
}

/// The sealing half of a connection's protocol.
enum FrameSealer {
    V1(BoxV1),
    V2(Sealer),
}

impl FrameSealer {
    fn seal(&mut self, plaintext: &str) -> Result<String, String> {
        match self {
            Self::V1(b) => b.seal(&rand::random(), plaintext.as_bytes()).map_err(|e| e.to_string()),
            Self::V2(s) => s.seal_text(plaintext).map_err(|e| e.to_string()),
        }
    }
}

/// The opening half.
enum FrameOpener {
    V1(BoxV1),
    V2(Opener),
}

impl FrameOpener {
    /// The plaintext, or why not and whether the connection must end.
    fn open(&mut self, text: &str) -> Result<Vec<u8>, (String, bool)> {
        match self {
            Self::V1(b) => b.open(text).map_err(|e| (e.to_string(), false)),
            Self::V2(o) => o.open_text(text).map_err(|e| (e.to_string(), true)),
        }
    }
}

async fn refuse(mut sink: futures_util::stream::SplitSink<WebSocket, Message>, code: ErrorCode, message: &str) {
    let _ = sink.send(Message::text(ascii_json(&error_frame(code, message)))).await;
    let _ = sink.send(Message::close_with(1008u16, code.as_str())).await;
    let _ = sink.close().await;
}

/// Serves one socket until it closes.
pub async fn serve_socket(socket: WebSocket, hub: Arc<Hub>) {
    let (sink, mut stream) = socket.split();
    let first = tokio::time::timeout(hub.auth_timeout, async {
        while let Some(Ok(message)) = stream.next().await {
            if message.is_ping() || message.is_pong() {
                continue;
            }
            return Some(message);
        }
        None
    })
    .await;
    let message = match first {
        Err(_) => {
            hub.refused("socket", "no auth frame in time");
            return refuse(sink, ErrorCode::AuthTimeout, "no auth frame within 10 seconds").await;
        }
        Ok(None) => return,
        Ok(Some(message)) => message,
    };
    if message.is_close() {
        return;
    }
    let auth = match message.to_str().map_err(|()| "the first frame must be a text frame").and_then(parse_auth) {
        Ok(auth) => auth,
        Err(why) => {
            hub.refused("socket", why);
            return refuse(sink, ErrorCode::AuthRequired, why).await;
        }
    };
    if !hub.token_ok(&auth.token) {
        hub.refused("socket", "wrong token");
        return refuse(sink, ErrorCode::AuthFailed, "invalid token").await;
    }
    let Some(client_pk) = auth.client_pk else {
        hub.refused("socket", "no usable e2e_pk");
        return refuse(sink, ErrorCode::AuthFailed, "e2e_pk must be a base64 32-byte X25519 public key").await;
    };
    let protocol = match auth.protocol {
        Ok(protocol) => protocol,
        Err(asked) => {
            hub.refused("socket", "unsupported protocol");
            return refuse(
                sink,
                ErrorCode::UnsupportedProtocol,
                &format!("protocol {asked} is not spoken here; use 2"),
            )
            .await;
        }
    };
    let server_secret: [u8; 32] = rand::random();
    let negotiated = match protocol {
        Protocol::V1 => Ok((
            box_v1::public_key(&server_secret),
            FrameSealer::V1(BoxV1::new(&server_secret, &client_pk)),
            FrameOpener::V1(BoxV1::new(&server_secret, &client_pk)),
        )),
        Protocol::V2 => stream_v2::server_session_keys(&server_secret, &client_pk).and_then(|keys| {
            Ok((
                stream_v2::public_key(&server_secret)?,
                FrameSealer::V2(Sealer::new(&keys.tx, rand::random())),
                FrameOpener::V2(Opener::new(&keys.rx)),
            ))
        }),
    };
    let (server_pk, sealer, opener) = match negotiated {
        Ok(negotiated) => negotiated,
        Err(e) => {
            hub.refused("socket", "unusable e2e_pk");
            return refuse(sink, ErrorCode::AuthFailed, &e.to_string()).await;
        }
    };
    let chat_id = auth.chat_id.unwrap_or(hub.default_chat);
    let key = SessionKey::new(SESSION_TRANSPORT, chat_id, auth.channel_id);
    let model = hub.config.model.clone();
    let provider = crate::provider::provider_for(&model, &hub.catalog.gemini()).name().to_owned();
    let ok = AuthOk {
        chat_id,
        channel_id: auth.channel_id,
        server_pk,
        providers: hub.providers(),
        provider,
        model,
        protocol,
    };
    let mut sink = sink;
    if sink.send(Message::text(ascii_json(&wire::auth_ok_frame(&ok)))).await.is_err() {
        return;
    }
    let id = hub.next_socket.fetch_add(1, Ordering::Relaxed);
    let (out, outgoing) = mpsc::unbounded_channel();
    hub.sockets.lock().unwrap_or_else(PoisonError::into_inner).insert(id, Socket { chat_id, out: out.clone() });
    tracing::info!(actor = "api", socket = id, chat = chat_id, channel = ?auth.channel_id, protocol = ?protocol,
        "API client connected.");
    let started = Instant::now();
    let seen = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_frames(sink, sealer, outgoing, Arc::clone(&seen), started));
    let connection = Connection { hub: Arc::clone(&hub), key, out, socket: id, messages: 0 };
    connection.read_frames(&mut stream, opener, &seen, started).await;
    hub.sockets.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    let _ = writer.await;
    tracing::info!(actor = "api", socket = id, "API client disconnected.");
}

/// Seals and sends frames in order; pings every 30 s and closes a socket that went silent.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut sealer: FrameSealer,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    seen: Arc<AtomicU64>,
    started: Instant,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            next = outgoing.recv() => match next {
                Some(Outgoing::Frame(frame)) => match sealer.seal(&ascii_json(&frame)) {
                    Ok(text) => {
                        if sink.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(actor = "api", error = %e, "Could not seal a frame."),
                },
                Some(Outgoing::Close(reason)) => {
                    let _ = sink.send(Message::close_with(1008u16, reason)).await;
                    break;
                }
                None => break,
            },
            _ = ping.tick() => {
                let silent = started.elapsed().saturating_sub(Duration::from_millis(seen.load(Ordering::Relaxed)));
                if silent > SILENT_LIMIT {
                    tracing::info!(actor = "api", "API client stopped answering pings; closing.");
                    let _ = sink.send(Message::close_with(1001u16, "no pong")).await;
                    break;
                }
                if sink.send(Message::ping(Vec::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.close().await;
}

/// An authenticated socket's reading side.
struct Connection {
    hub: Arc<Hub>,
    key: SessionKey,
    out: mpsc::UnboundedSender<Outgoing>,
    socket: u64,
    messages: u64,
}

impl Connection {
    fn send(&self, frame: Value) {
        let _ = self.out.send(Outgoing::Frame(frame));
    }

    async fn read_frames(
        mut self,
        stream: &mut futures_util::stream::SplitStream<WebSocket>,
        mut opener: FrameOpener,
        seen: &AtomicU64,
        started: Instant,
    ) {
        while let Some(next) = stream.next().await {
            let message = match next {
                Ok(message) => message,
                Err(e) => {
                    self.hub.refused("frame", &e.to_string());
                    break;
                }
            };
            seen.store(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
            if message.is_close() {
                break;
            }
            let Ok(text) = message.to_str() else { continue };
            let plaintext = match opener.open(text) {
                Ok(plaintext) => plaintext,
                Err((why, fatal)) => {
                    self.hub.refused("frame", &why);
                    self.send(error_frame(ErrorCode::DecryptFailed, &why));
                    if fatal {
                        let _ = self.out.send(Outgoing::Close("decrypt_failed".to_owned()));
                        break;
                    }
                    continue;
                }
            };
            match parse_client_frame(&plaintext) {
                ClientFrame::Message(text) => self.message(text),
                ClientFrame::Abort => self.abort(),
                ClientFrame::Empty => self.send(error_frame(ErrorCode::Empty, "the message is empty")),
                ClientFrame::Unknown(kind) => {
                    self.send(error_frame(ErrorCode::UnknownType, &format!("unknown frame type {kind:?}")));
                }
                ClientFrame::Invalid => {
                    self.send(error_frame(ErrorCode::InvalidJson, "a frame must be a JSON object with a type"));
                }
            }
        }
        let _ = self.out.send(Outgoing::Close("bye".to_owned()));
    }

    /// Stops the whole chat at once (its running turn included) and answers `abort_ok`.
    fn abort(&self) {
        let (orchestrator, out) = (self.hub.orchestrator.clone(), self.out.clone());
        let key = SessionKey::new(SESSION_TRANSPORT, self.key.chat_id, None);
        tokio::spawn(async move {
            let frame = match orchestrator.stop_chat(key).await {
                Some(report) => abort_ok_frame(report.stopped),
                None => error_frame(ErrorCode::NoHandler, "ductor is not ready for messages"),
            };
            let _ = out.send(Outgoing::Frame(frame));
        });
    }

    /// Records the message in the inbox and runs it as a turn task.
    fn message(&mut self, text: String) {
        self.messages += 1;
        let inbox = &self.hub.inbox;
        let entry = inbox.allocate().map(|id| {
            inbox.record(vec![InboxEntry {
                id,
                transport: API_TRANSPORT.to_owned(),
                chat_id: self.key.chat_id,
                topic_id: self.key.topic_id,
                upstream: format!("api:{}:{}:{}", std::process::id(), self.socket, self.messages),
                reply_to: None,
                text: text.clone(),
                prompt: text.clone(),
                at: now(),
                message: None,
            }]);
            InboxEntryGuard::new(inbox.clone(), id)
        });
        let on_start = entry.as_ref().map(InboxEntryGuard::start_hook);
        let outputs = self.hub.orchestrator.message_with_start(self.key.clone(), &text, on_start);
        let home = self.hub.paths.home().to_owned();
        tokio::spawn(forward_turn(outputs, self.out.clone(), entry, home));
    }
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Forwards one message's outputs as frames: its events, then one `result`.
async fn forward_turn(
    mut outputs: mpsc::UnboundedReceiver<SessionOutput>,
    out: mpsc::UnboundedSender<Outgoing>,
    entry: Option<InboxEntryGuard>,
    home: camino::Utf8PathBuf,
) {
    let send = |frame: Value| {
        let _ = out.send(Outgoing::Frame(frame));
    };
    let mut streamed = false;
    let mut ended = false;
    while let Some(output) = outputs.recv().await {
        match output {
            SessionOutput::Queued { .. } | SessionOutput::Started => {}
            SessionOutput::Event(event) => {
                if let Some(frame) = event_frame(&event) {
                    streamed |= frame["type"] == "text_delta";
                    send(frame);
                }
            }
            SessionOutput::Finished { text, .. } => {
                if let Some(entry) = &entry {
                    entry.answered(&text);
                }
                let (_, paths) = take_file_tags(&text, &home);
                let files: Vec<ResultFile> = paths
                    .iter()
                    .map(|p| ResultFile {
                        path: p.to_string(),
                        name: p.file_name().unwrap_or_default().to_owned(),
                        is_image: matches!(upload_kind(p), UploadKind::Photo),
                    })
                    .collect();
                send(result_frame(&text, !streamed, &files));
                ended = true;
            }
            SessionOutput::Stopped | SessionOutput::Discarded => {
                let mut frame = result_frame("", false, &[]);
                frame["stopped"] = json!(true);
                send(frame);
                ended = true;
            }
            SessionOutput::Notice(text) => {
                send(result_frame(&text, true, &[]));
                ended = true;
            }
            SessionOutput::Menu(menu) => {
                send(result_frame(&menu.text, true, &[]));
                ended = true;
            }
        }
    }
    if !ended {
        send(error_frame(ErrorCode::InternalError, "the turn ended without an answer"));
    }
    if let Some(entry) = entry {
        entry.finish();
    }
}

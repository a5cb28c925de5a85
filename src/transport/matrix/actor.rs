//! The Matrix transport actor (`matrix` in the tree; Bus transport `mx`): logs in (saved
//! credentials → configured token → password), keeps its device and keys in the sqlite store
//! under `store_path`, skips what arrived while it was down, then syncs. Each sync batch is
//! written to the inbox before its token is saved; each message runs the ingress of transports
//! spec §3.5 (auth, dedup, mentions, buttons, `!commands`) and goes to the Orchestrator, its
//! answer posted by a task queued per room (`matrix_turn`). Encrypted rooms work like plain
//! ones: matrix-sdk decrypts what arrives and encrypts what is sent. It also delivers Bus
//! envelopes, confirming only what the homeserver accepted.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::{RequestConfig, SyncSettings, SyncToken};
use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::ruma::events::room::message::{MessageType, OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent, SyncMessageLikeEvent};
use matrix_sdk::ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId};
use matrix_sdk::{Client, Room, SessionMeta, SessionTokens};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, oneshot};

use crate::chat::orchestrator::OrchestratorHandle;
use crate::core::command::MENU;
use crate::core::command::{ChatCommand, classify};
use crate::core::config::model::Config;
use crate::core::dedup::Dedup;
use crate::core::envelope::{DeliveryMode, Origin};
use crate::core::envelope_text;
use crate::core::inbox::{InboxEntry, stale_notice};
use crate::core::incoming_file::{incoming_prompt, mime_for, sanitize_name};
use crate::core::session_key::SessionKey;
use crate::core::text::render;
use crate::runtime::adapter::{AdapterHandle, AdapterMsg, Delivery, DeliveryError};
use crate::runtime::bus::BusHandle;
use crate::runtime::supervision::RestartRequest;
use crate::store::inbox_journal::{CRASH_BEFORE_CONFIRM_ENV, SharedInbox};
use crate::store::paths::DuctorPaths;
use crate::store::{received_files, received_images};
use crate::transport::file_access::FileAccess;
use crate::transport::inbox_entry::InboxEntryGuard;
use crate::transport::matrix::ingress::{
    MxAdmission, MxGate, MxIncoming, RoomIds, SentEvents, admit, answer_txn, dm_like, normalise_command,
};
use crate::transport::matrix::store::{Credentials, MatrixStore};
use crate::transport::matrix::text::{reaction_choice, typed_choice};
use crate::transport::matrix::turn::{ButtonKind, ButtonSet, ButtonSets, MxError, MxTurnSettings, RoomOut, answer};

/// The Bus transport name of Matrix.
pub const MATRIX_TRANSPORT: &str = "mx";
/// Long-poll timeout of `/sync`.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// After this long without a successful sync the actor fails and supervision rebuilds it.
const SYNC_GIVE_UP: Duration = Duration::from_secs(300);
/// Largest received file downloaded.
const MAX_DOWNLOAD: u64 = 50 * 1024 * 1024;

/// Messages of the transport.
#[derive(Debug)]
pub enum MatrixMsg {
    /// A delivery from the Bus.
    Adapter(AdapterMsg),
    /// Log in, skip the backlog and start syncing (sent to itself at start; a failure crashes
    /// the actor so the supervisor retries with its backoff while the rest of the service runs).
    Connect,
    /// What one sync brought, in order; `recorded` fires once its messages are in the inbox,
    /// and only then does the syncer save the sync token.
    Synced {
        /// Messages, reactions and invites.
        batch: Vec<Inbound>,
        /// Fired when handled.
        recorded: oneshot::Sender<()>,
    },
    /// The sync loop gave up (token refused, or no sync for minutes).
    SyncFailed(String),
}

impl From<AdapterMsg> for MatrixMsg {
    fn from(msg: AdapterMsg) -> Self {
        Self::Adapter(msg)
    }
}

impl TryFrom<MatrixMsg> for AdapterMsg {
    type Error = ();

    fn try_from(msg: MatrixMsg) -> Result<Self, ()> {
        match msg {
            MatrixMsg::Adapter(inner) => Ok(inner),
            MatrixMsg::Connect | MatrixMsg::Synced { .. } | MatrixMsg::SyncFailed(_) => Err(()),
        }
    }
}

/// One thing a sync brought.
#[derive(Debug)]
pub enum Inbound {
    /// An `m.room.message` (decrypted when the room is encrypted), with its inbox entry.
    Message {
        /// The room.
        room_id: String,
        /// The event.
        event: Box<OriginalSyncRoomMessageEvent>,
        /// Its inbox entry.
        entry: Option<u64>,
    },
    /// An `m.reaction` (a button press when it is on a button list).
    Reaction {
        /// The room.
        room_id: String,
        /// Who reacted.
        sender: String,
        /// The event reacted to.
        target: String,
        /// The emoji.
        key: String,
    },
    /// An invitation to a room.
    Invite {
        /// The room.
        room_id: String,
    },
}

/// Construction arguments.
#[derive(Clone)]
pub struct MatrixArgs {
    /// The agent's home.
    pub paths: DuctorPaths,
    /// The agent's config.
    pub config: Arc<Config>,
    /// Where messages go.
    pub orchestrator: OrchestratorHandle,
    /// The agent's Bus (this transport registers as `mx`).
    pub bus: BusHandle,
    /// `!restart`.
    pub restart: RestartRequest,
    /// The agent's inbox (shared by its transports).
    pub inbox: SharedInbox,
}

impl std::fmt::Debug for MatrixArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixArgs").field("homeserver", &self.config.matrix.homeserver).finish_non_exhaustive()
    }
}

/// The transport actor.
#[derive(Debug, Default)]
pub struct Matrix;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Its state.
pub struct MatrixState {
    args: MatrixArgs,
    store: MatrixStore,
    connection: Option<Connection>,
    room_ids: Arc<Mutex<RoomIds>>,
    dedup: Dedup,
    sent: Arc<Mutex<SentEvents>>,
    buttons: ButtonSets,
    last_active: Arc<Mutex<Option<String>>>,
    files: Arc<FileAccess>,
    /// Answers waiting per room, run one after another.
    lanes: HashMap<String, mpsc::UnboundedSender<Job>>,
    /// Rooms being left (not allowed).
    rejected: HashSet<String>,
    /// Broadcast envelopes partly delivered: which rooms have them.
    broadcast_done: Arc<Mutex<HashMap<String, HashSet<String>>>>,
}

/// A logged-in client.
struct Connection {
    client: Client,
    user_id: String,
    syncer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MatrixState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixState").field("connected", &self.connection.is_some()).finish_non_exhaustive()
    }
}

impl Actor for Matrix {
    type Msg = MatrixMsg;
    type State = MatrixState;
    type Arguments = MatrixArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MatrixMsg>,
        args: MatrixArgs,
    ) -> Result<MatrixState, ActorProcessingErr> {
        args.bus.register_adapter(AdapterHandle::new(MATRIX_TRANSPORT, &myself));
        myself.cast(MatrixMsg::Connect)?;
        let store = MatrixStore::new(args.paths.matrix_store(&args.config.matrix.store_path));
        Ok(MatrixState {
            room_ids: Arc::new(Mutex::new(store.room_ids())),
            store,
            files: FileAccess::from_config(&args.config, &args.paths),
            args,
            connection: None,
            dedup: Dedup::default(),
            sent: Arc::default(),
            buttons: Arc::default(),
            last_active: Arc::default(),
            lanes: HashMap::new(),
            rejected: HashSet::new(),
            broadcast_done: Arc::default(),
        })
    }

    async fn post_stop(&self, _myself: ActorRef<MatrixMsg>, state: &mut MatrixState) -> Result<(), ActorProcessingErr> {
        if let Some(connection) = &state.connection {
            connection.syncer.abort();
        }
        tracing::info!(actor = "matrix", "Matrix transport stopped.");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<MatrixMsg>,
        msg: MatrixMsg,
        state: &mut MatrixState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MatrixMsg::Connect => {
                state.connect(&myself).await?;
                state.deliver_restart_sentinel().await;
                state.replay_inbox().await;
            }
            MatrixMsg::Synced { batch, recorded } => {
                for item in batch {
                    match item {
                        Inbound::Message { room_id, event, entry } => {
                            let entry = entry.map(|id| InboxEntryGuard::new(state.args.inbox.clone(), id));
                            state.message(&room_id, &event, entry).await;
                        }
                        Inbound::Reaction { room_id, sender, target, key } => {
                            state.reaction(&room_id, &sender, &target, &key);
                        }
                        Inbound::Invite { room_id } => state.invite(&room_id).await,
                    }
                }
                let _ = recorded.send(());
            }
            MatrixMsg::SyncFailed(why) => return Err(why.into()),
            MatrixMsg::Adapter(AdapterMsg::Deliver(delivery)) => state.deliver(delivery),
        }
        Ok(())
    }
}

/// The client for the configured homeserver, with its stores under `store`.
async fn build_client(config: &Config, store: &MatrixStore) -> Result<Client, String> {
    let m = &config.matrix;
    let strategy = if m.verified_devices_only {
        matrix_sdk_crypto::CollectStrategy::OnlyTrustedDevices
    } else {
        matrix_sdk_crypto::CollectStrategy::AllDevices
    };
    std::fs::create_dir_all(store.dir()).map_err(|e| format!("cannot create the Matrix store {}: {e}", store.dir()))?;
    Client::builder()
        .homeserver_url(m.homeserver.trim_end_matches('/'))
        .sqlite_store(store.dir(), None)
        .with_room_key_recipient_strategy(strategy)
        .request_config(RequestConfig::default().retry_limit(2))
        .build()
        .await
        .map_err(|e| format!("Matrix client for {} could not start: {e}", m.homeserver))
}

fn session_of(credentials: &Credentials) -> Result<MatrixSession, String> {
    let user_id = OwnedUserId::try_from(credentials.user_id.as_str()).map_err(|e| e.to_string())?;
    Ok(MatrixSession {
        meta: SessionMeta { user_id, device_id: OwnedDeviceId::from(credentials.device_id.as_str()) },
        tokens: SessionTokens { access_token: credentials.access_token.clone(), refresh_token: None },
    })
}

/// Login order of §3.2: saved credentials, then the configured token and device, then the
/// password (the result is saved, mode 0600).
async fn log_in(client: &Client, config: &Config, store: &MatrixStore) -> Result<(), String> {
    let m = &config.matrix;
    let mut tried = Vec::new();
    if let Some(saved) = store.credentials() {
        match restore(client, &saved).await {
            Ok(()) => return Ok(()),
            Err(e) => tried.push(format!("saved credentials: {e}")),
        }
    }
    if !m.access_token.trim().is_empty() && !m.device_id.trim().is_empty() {
        let configured = Credentials {
            user_id: m.user_id.clone(),
            device_id: m.device_id.clone(),
            access_token: m.access_token.clone(),
        };
        match restore(client, &configured).await {
            Ok(()) => {
                if let Err(e) = store.save_credentials(&configured) {
                    tracing::warn!(actor = "matrix", error = %e, "Could not save the Matrix credentials.");
                }
                return Ok(());
            }
            Err(e) => tried.push(format!("configured access token: {e}")),
        }
    }
    if !m.password.is_empty() {
        match client.matrix_auth().login_username(&m.user_id, &m.password).initial_device_display_name("ductor").await {
            Ok(response) => {
                let credentials = Credentials {
                    user_id: response.user_id.to_string(),
                    device_id: response.device_id.to_string(),
                    access_token: response.access_token.clone(),
                };
                if let Err(e) = store.save_credentials(&credentials) {
                    tracing::warn!(actor = "matrix", error = %e, "Could not save the Matrix credentials.");
                }
                tracing::info!(actor = "matrix", user = %credentials.user_id, device = %credentials.device_id, "Logged in with the password.");
                return Ok(());
            }
            Err(e) => tried.push(format!("password: {e}")),
        }
    }
    if tried.is_empty() {
        tried.push("no password or access token configured".to_owned());
    }
    Err(format!("Matrix login of {} at {} failed ({})", m.user_id, m.homeserver, tried.join("; ")))
}

async fn restore(client: &Client, credentials: &Credentials) -> Result<(), String> {
    client.restore_session(session_of(credentials)?).await.map_err(|e| e.to_string())?;
    client.whoami().await.map_err(|e| e.to_string())?;
    Ok(())
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The syncer: one `/sync` after another from `token`; each batch goes to the actor and into
/// the inbox before the token that covers it is saved.
async fn sync_loop(
    client: Client,
    store: MatrixStore,
    mut token: String,
    actor: ActorRef<MatrixMsg>,
    inbox: SharedInbox,
    room_ids: Arc<Mutex<RoomIds>>,
    bot: String,
) {
    let mut backoff = Duration::from_secs(1);
    let mut last_ok = Instant::now();
    let crash_before_confirm = std::env::var_os(CRASH_BEFORE_CONFIRM_ENV).is_some_and(|v| v == "1");
    loop {
        let settings = SyncSettings::default().token(token.clone()).timeout(SYNC_TIMEOUT);
        match client.sync_once(settings).await {
            Ok(response) => {
                backoff = Duration::from_secs(1);
                last_ok = Instant::now();
                let (batch, entries) = inbound(&response, &inbox, &room_ids, &store, &bot);
                if !batch.is_empty() {
                    let (recorded, done) = oneshot::channel();
                    if actor.cast(MatrixMsg::Synced { batch, recorded }).is_err() {
                        return;
                    }
                    // The turns need not wait for the fsync; only the token below does.
                    inbox.record(entries);
                    if done.await.is_err() {
                        return;
                    }
                    if crash_before_confirm {
                        tracing::error!(
                            actor = "matrix",
                            "Crashing before the sync token is saved ({CRASH_BEFORE_CONFIRM_ENV})."
                        );
                        std::process::abort();
                    }
                }
                if let Err(e) = store.save_next_batch(&response.next_batch) {
                    tracing::warn!(actor = "matrix", error = %e, "Could not save the sync token.");
                }
                token = response.next_batch;
            }
            Err(e) => {
                let refused = e.as_client_api_error().is_some_and(|api| api.status_code.as_u16() == 401);
                if refused || last_ok.elapsed() > SYNC_GIVE_UP {
                    let _ = actor.cast(MatrixMsg::SyncFailed(format!("Matrix sync failed: {e}")));
                    return;
                }
                tracing::warn!(actor = "matrix", error = %e, retry_in_ms = backoff.as_millis() as u64, "Sync failed.");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The messages, reactions and invites of a sync, in order, and the inbox entries of the
/// messages (a message already in the inbox — seen again after a token rewind — is left out).
fn inbound(
    response: &matrix_sdk::sync::SyncResponse,
    inbox: &SharedInbox,
    room_ids: &Arc<Mutex<RoomIds>>,
    store: &MatrixStore,
    bot: &str,
) -> (Vec<Inbound>, Vec<InboxEntry>) {
    let mut batch = Vec::new();
    let mut entries = Vec::new();
    for (room_id, update) in &response.rooms.joined {
        for event in &update.timeline.events {
            let raw = event.raw();
            let Ok(parsed) = raw.deserialize() else {
                tracing::debug!(actor = "matrix", room = %room_id, "Event that does not parse ignored.");
                continue;
            };
            match parsed {
                AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(
                    SyncMessageLikeEvent::Original(message),
                )) => {
                    if message.sender.as_str() == bot {
                        continue;
                    }
                    let upstream = format!("mx:{room_id}:{}", message.event_id);
                    if inbox.knows(&upstream) {
                        tracing::debug!(actor = "matrix", room = %room_id, event = %message.event_id, "Event already in the inbox.");
                        continue;
                    }
                    let id = inbox.allocate();
                    if let Some(id) = id {
                        let chat_id = chat_id_of(room_ids, store, room_id.as_str());
                        let body = match &message.content.msgtype {
                            MessageType::Text(text) => text.body.clone(),
                            other => other.body().to_owned(),
                        };
                        let stored: Option<serde_json::Value> = serde_json::from_str(raw.json().get()).ok();
                        entries.push(InboxEntry {
                            id,
                            transport: MATRIX_TRANSPORT.to_owned(),
                            chat_id: chat_id.into(),
                            topic_id: None,
                            upstream,
                            reply_to: None,
                            text: body,
                            prompt: String::new(),
                            at: now(),
                            message: stored
                                .map(|event| serde_json::json!({"room_id": room_id.as_str(), "event": event})),
                        });
                    }
                    batch.push(Inbound::Message { room_id: room_id.to_string(), event: Box::new(message), entry: id });
                }
                AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::Reaction(
                    SyncMessageLikeEvent::Original(reaction),
                )) => batch.push(Inbound::Reaction {
                    room_id: room_id.to_string(),
                    sender: reaction.sender.to_string(),
                    target: reaction.content.relates_to.event_id.to_string(),
                    key: reaction.content.relates_to.key.clone(),
                }),
                _ => {}
            }
        }
    }
    for room_id in response.rooms.invited.keys() {
        batch.push(Inbound::Invite { room_id: room_id.to_string() });
    }
    (batch, entries)
}

/// The chat id of a room, saving the map when the room is new.
fn chat_id_of(room_ids: &Arc<Mutex<RoomIds>>, store: &MatrixStore, room_id: &str) -> u64 {
    let mut ids = room_ids.lock().unwrap_or_else(PoisonError::into_inner);
    let (id, new) = ids.chat_id(room_id);
    if new && let Err(e) = store.save_room_ids(&ids) {
        tracing::warn!(actor = "matrix", error = %e, "Could not save room_id_map.json.");
    }
    id
}

/// A received file's facts.
struct Media {
    source: matrix_sdk::ruma::events::room::MediaSource,
    name: String,
    mime: Option<String>,
    size: Option<u64>,
    kind: &'static str,
    default_mime: &'static str,
}

fn media_of(msgtype: &MessageType) -> Option<Media> {
    // The four media contents have the same fields under different types.
    macro_rules! media {
        ($content:expr, $name:expr, $kind:literal, $default_mime:literal) => {
            Some(Media {
                source: $content.source.clone(),
                name: $name,
                mime: $content.info.as_ref().and_then(|i| i.mimetype.clone()),
                size: $content.info.as_ref().and_then(|i| i.size).map(u64::from),
                kind: $kind,
                default_mime: $default_mime,
            })
        };
    }
    match msgtype {
        MessageType::Image(c) => media!(c, c.body.clone(), "image", "image/png"),
        MessageType::Audio(c) => media!(c, c.body.clone(), "audio", "audio/ogg"),
        MessageType::Video(c) => media!(c, c.body.clone(), "video", "video/mp4"),
        MessageType::File(c) => {
            media!(c, c.filename.clone().unwrap_or_else(|| c.body.clone()), "file", "application/octet-stream")
        }
        _ => None,
    }
}

/// The extension for a MIME type, for received files without a usable name.
fn extension_for(mime: &str) -> &'static str {
    match mime {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        "image/webp" => ".webp",
        "audio/ogg" => ".ogg",
        "audio/mpeg" => ".mp3",
        "video/mp4" => ".mp4",
        "application/pdf" => ".pdf",
        "text/plain" => ".txt",
        _ => "",
    }
}

/// `!help` on Matrix: the command menu's descriptions, with `!`.
fn help_text() -> String {
    let describe = |cmd: &str| {
        let what = MENU.iter().find(|(c, _)| *c == cmd).map_or("", |(_, d)| *d);
        let what = match cmd {
            "stop_all" => "Stop every agent",
            "agents" => "List the agents",
            "agent_start" => "Start an agent",
            "agent_stop" => "Stop an agent",
            "agent_restart" => "Restart an agent",
            _ => what,
        };
        format!("\n`!{cmd}` — {what}")
    };
    let groups: [(&str, &[&str]); 5] = [
        ("Daily", &["new", "reset", "stop", "interrupt", "stop_all", "model", "status", "memory"]),
        ("Automation", &["session", "tasks", "cron"]),
        ("Multi-agent", &["agents", "agent_start", "agent_stop", "agent_restart"]),
        ("Browse", &["showfiles", "info", "help"]),
        ("Maintenance", &["diagnose", "upgrade", "restart"]),
    ];
    let mut text = String::from("**ductor commands**\n---");
    for (title, commands) in groups {
        text.push_str(&format!("\n\n**{title}**"));
        commands.iter().for_each(|cmd| text.push_str(&describe(cmd)));
    }
    text.push_str("\n---\nCommands start with `!` or `/`. Anything else you write goes to the agent.");
    text
}

/// `!showfiles [subdir]`: an overview of the usual folders, or one folder of the home.
fn show_files(home: &camino::Utf8Path, arg: &str) -> String {
    let list = |dir: &camino::Utf8Path| -> Vec<(std::time::SystemTime, String)> {
        let mut entries: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        let when = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                        let mut name = e.file_name().to_string_lossy().into_owned();
                        if e.path().is_dir() {
                            name.push('/');
                        }
                        (when, name)
                    })
                    .collect()
            })
            .unwrap_or_default();
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        entries
    };
    let arg = arg.trim().trim_matches('/');
    if arg.is_empty() {
        let mut text = String::from("**Files**");
        for folder in
            ["output_to_user", "telegram_files", "matrix_files", "tools", "cron_tasks", "memory_system", "skills"]
        {
            let entries = list(&home.join("workspace").join(folder));
            text.push_str(&format!("\n\n**{folder}/** ({} entries)", entries.len()));
            for (_, name) in entries.iter().take(5) {
                text.push_str(&format!("\n- {name}"));
            }
        }
        return text;
    }
    if !crate::core::file_browser::is_inside(arg) {
        return format!("`{arg}` is outside the ductor home.");
    }
    let dir = home.join(arg);
    if !dir.is_dir() {
        return format!("`{arg}` is not a folder of the ductor home.");
    }
    let entries = list(&dir);
    let mut text = format!("**{arg}/** ({} entries)", entries.len());
    for (_, name) in entries.iter().take(50) {
        text.push_str(&format!("\n- {name}"));
    }
    text
}

impl MatrixState {
    fn client(&self) -> Option<(Client, String)> {
        self.connection.as_ref().map(|c| (c.client.clone(), c.user_id.clone()))
    }

    fn out(&self, room: Room) -> RoomOut {
        RoomOut {
            room,
            files: Arc::clone(&self.files),
            sent: Arc::clone(&self.sent),
            buttons: Arc::clone(&self.buttons),
        }
    }

    fn settings(&self) -> MxTurnSettings {
        MxTurnSettings {
            streaming: self.args.config.streaming.enabled,
            footer: self.args.config.scene.technical_footer,
        }
    }

    /// Runs `job` after the room's earlier answers.
    fn queue(&mut self, room_id: &str, job: Job) {
        let lane = self.lanes.entry(room_id.to_owned()).or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    job.await;
                }
            });
            tx
        });
        if let Err(mpsc::error::SendError(job)) = lane.send(job) {
            tokio::spawn(job);
        }
    }

    fn chat_id(&self, room_id: &str) -> u64 {
        chat_id_of(&self.room_ids, &self.store, room_id)
    }

    /// Log in, first sync (its events are not answered), then the sync loop.
    async fn connect(&mut self, myself: &ActorRef<MatrixMsg>) -> Result<(), ActorProcessingErr> {
        let config = &self.args.config;
        let client = build_client(config, &self.store).await?;
        log_in(&client, config, &self.store).await?;
        let user_id = client.user_id().map(ToString::to_string).unwrap_or_else(|| config.matrix.user_id.clone());
        let device = client.device_id().map(ToString::to_string).unwrap_or_default();
        let settings = SyncSettings::default().timeout(Duration::from_secs(10)).full_state(true);
        let saved = self.store.next_batch();
        let first = match saved {
            Some(token) => match client.sync_once(settings.clone().token(token)).await {
                // The homeserver refuses the saved token (a broken file): moved aside, and the
                // first sync starts over without it.
                Err(e) if e.as_client_api_error().is_some_and(|api| api.status_code.as_u16() == 400) => {
                    self.store.quarantine_next_batch(&e.to_string());
                    client.sync_once(settings.token(SyncToken::NoToken)).await
                }
                result => result,
            },
            None => client.sync_once(settings).await,
        };
        let first = first.map_err(|e| format!("first Matrix sync at {} failed: {e}", config.matrix.homeserver))?;
        if let Err(e) = self.store.save_next_batch(&first.next_batch) {
            tracing::warn!(actor = "matrix", error = %e, "Could not save the sync token.");
        }
        for room in client.joined_rooms() {
            self.chat_id(room.room_id().as_str());
        }
        tracing::info!(actor = "matrix", user = %user_id, device = %device, homeserver = %config.matrix.homeserver, "Logged in to Matrix.");
        let invited: Vec<OwnedRoomId> = first.rooms.invited.keys().cloned().collect();
        let syncer = tokio::spawn(sync_loop(
            client.clone(),
            self.store.clone(),
            first.next_batch.clone(),
            myself.clone(),
            self.args.inbox.clone(),
            Arc::clone(&self.room_ids),
            user_id.clone(),
        ));
        self.connection = Some(Connection { client, user_id, syncer });
        // Invitations are the one thing taken from the backlog.
        for room_id in invited {
            self.invite(room_id.as_str()).await;
        }
        Ok(())
    }

    /// One message; `entry` is its inbox entry.
    async fn message(&mut self, room_id: &str, event: &OriginalSyncRoomMessageEvent, entry: Option<InboxEntryGuard>) {
        let Some((client, bot)) = self.client() else { return };
        if self.rejected.contains(room_id) {
            return;
        }
        let Some(room) = matrix_sdk::ruma::RoomId::parse(room_id).ok().and_then(|id| client.get_room(&id)) else {
            return;
        };
        let (body, formatted, media) = match &event.content.msgtype {
            MessageType::Text(text) => (text.body.clone(), text.formatted.as_ref().map(|f| f.body.clone()), None),
            other => match media_of(other) {
                Some(media) => (other.body().to_owned(), None, Some(media)),
                None => return,
            },
        };
        let in_reply_to = match &event.content.relates_to {
            Some(Relation::Reply(reply)) => Some(reply.in_reply_to.event_id.to_string()),
            _ => None,
        };
        let alias = room.canonical_alias().map(|a| a.to_string());
        let room_name = room.name();
        let is_dm = dm_like(room_name.as_deref(), alias.as_deref(), room.joined_members_count());
        let verdict = {
            let sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
            let gate = MxGate {
                allowed_rooms: &self.args.config.matrix.allowed_rooms,
                allowed_users: &self.args.config.matrix.allowed_users,
                mention_only: self.args.config.group_mention_only,
                bot_user_id: &bot,
                sent: &sent,
            };
            let incoming = MxIncoming {
                room_id,
                sender: event.sender.as_str(),
                body: &body,
                formatted_body: formatted.as_deref(),
                in_reply_to: in_reply_to.as_deref(),
                dm_like: is_dm,
            };
            admit(&incoming, &gate)
        };
        let text = match verdict {
            MxAdmission::Accepted(text) => text,
            other => {
                tracing::debug!(actor = "matrix", room = %room_id, sender = %event.sender, verdict = ?other, "Message dropped.");
                return;
            }
        };
        if self.dedup.seen_before(event.event_id.as_str(), Instant::now()) {
            tracing::debug!(actor = "matrix", room = %room_id, event = %event.event_id, "Duplicate event dropped.");
            return;
        }
        *self.last_active.lock().unwrap_or_else(PoisonError::into_inner) = Some(room_id.to_owned());
        if self.args.config.scene.seen_reaction {
            let (room, event_id) = (room.clone(), event.event_id.clone());
            tokio::spawn(async move {
                use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
                use matrix_sdk::ruma::events::receipt::ReceiptThread;
                let _ = room.send_single_receipt(ReceiptType::FullyRead, ReceiptThread::Unthreaded, event_id).await;
            });
        }
        let chat = self.chat_id(room_id);
        let key = SessionKey::new(MATRIX_TRANSPORT, chat, None);
        let out = self.out(room.clone());
        // A typed number picks a button of the room's active set.
        let pending = self.buttons.lock().unwrap_or_else(PoisonError::into_inner).get(room_id).map(|s| s.data.len());
        if let Some(choice) = pending.and_then(|count| typed_choice(&text, count)) {
            drop(entry);
            self.press(room_id, key, out, choice);
            return;
        }
        let text = match media {
            Some(media) => match self.receive_file(&client, &out, &media, &body).await {
                Some(prompt) => prompt,
                None => return,
            },
            None => normalise_command(&text),
        };
        if self.transport_command(&text, &out).await {
            return;
        }
        let immediate = matches!(
            classify(&text, None),
            ChatCommand::Stop | ChatCommand::StopAll | ChatCommand::Interrupt | ChatCommand::Status
        );
        let on_start = entry.as_ref().map(InboxEntryGuard::start_hook);
        let outputs = self.args.orchestrator.message_with_start(key, &text, on_start);
        let txn = answer_txn(&format!("mx:{room_id}:{}", event.event_id));
        let job = Box::pin(answer(out, self.settings(), outputs, entry, Some(txn)));
        if immediate {
            tokio::spawn(job);
        } else {
            self.queue(room_id, job);
        }
    }

    /// Button `choice` of the room's active set was picked: the set is used up.
    fn press(&mut self, room_id: &str, key: SessionKey, out: RoomOut, choice: usize) {
        let set = self.buttons.lock().unwrap_or_else(PoisonError::into_inner).remove(room_id);
        let Some(ButtonSet { data, kind, .. }) = set else { return };
        let Some(data) = data.get(choice).cloned() else { return };
        tracing::debug!(actor = "matrix", room = %room_id, choice, "Button picked.");
        match kind {
            ButtonKind::Menu => {
                let outputs = self.args.orchestrator.callback(key, &data);
                tokio::spawn(answer(out, self.settings(), outputs, None, None));
            }
            ButtonKind::Answer => {
                let outputs = self.args.orchestrator.message(key, &data);
                let job = Box::pin(answer(out, self.settings(), outputs, None, None));
                self.queue(room_id, job);
            }
        }
    }

    /// A reaction: a button press when it is on the room's button list (reactions are not
    /// authorisation-checked, as in 0.18.2: only people in the room can react).
    fn reaction(&mut self, room_id: &str, sender: &str, target: &str, key: &str) {
        let Some((client, bot)) = self.client() else { return };
        if sender == bot {
            return;
        }
        let on_list = self
            .buttons
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(room_id)
            .filter(|set| set.event_id.as_deref() == Some(target))
            .map(|set| set.data.len());
        let (Some(count), Some(choice)) = (on_list, reaction_choice(key)) else { return };
        if choice >= count {
            return;
        }
        let Some(room) = matrix_sdk::ruma::RoomId::parse(room_id).ok().and_then(|id| client.get_room(&id)) else {
            return;
        };
        let session = SessionKey::new(MATRIX_TRANSPORT, self.chat_id(room_id), None);
        let out = self.out(room);
        self.press(room_id, session, out, choice);
    }

    /// Commands the transport answers itself; `true` when `text` was one.
    async fn transport_command(&mut self, text: &str, out: &RoomOut) -> bool {
        let word = text.split_whitespace().next().unwrap_or_default().to_lowercase();
        let arg = text.split_once(char::is_whitespace).map_or("", |(_, rest)| rest);
        let reply = match word.as_str() {
            "/help" | "/start" => help_text(),
            "/info" => render("info.text", &[("version", env!("CARGO_PKG_VERSION"))]),
            "/agent_commands" => "**Multi-agent**\n`!agents` — list the agents\n`!agent_start <name>`\n`!agent_stop <name>`\n`!agent_restart <name>`".to_owned(),
            "/showfiles" => show_files(self.args.paths.home(), arg),
            "/restart" => {
                self.restart(out).await;
                return true;
            }
            _ => return false,
        };
        if let Err(e) = out.rich_send(&reply).await {
            tracing::warn!(actor = "matrix", room = %out.room.room_id(), error = %e, "Could not answer a command.");
        }
        true
    }

    async fn restart(&mut self, out: &RoomOut) {
        let sentinel = serde_json::json!({
            "chat_id": self.chat_id(out.room.room_id().as_str()),
            "transport": MATRIX_TRANSPORT,
            "message": render("startup.restart_default", &[]),
            "timestamp": crate::core::state::timestamp_now(),
        });
        if let Err(e) = crate::store::atomic::write_json_atomic(&self.args.paths.restart_sentinel(), &sentinel) {
            tracing::warn!(actor = "matrix", error = %e, "Could not write the restart sentinel.");
        }
        let reply = format!("{}\n---\n{}", render("startup.restart_header", &[]), render("startup.restart_body", &[]));
        let _ = out.rich_send(&reply).await;
        (self.args.restart)(format!("!restart from room {}", out.room.room_id()));
    }

    /// The restart sentinel written by `!restart` in a Matrix room: its message goes there.
    async fn deliver_restart_sentinel(&mut self) {
        let path = self.args.paths.restart_sentinel();
        let Ok(text) = std::fs::read_to_string(&path) else { return };
        let Ok(sentinel) = serde_json::from_str::<serde_json::Value>(&text) else { return };
        if sentinel.get("transport").and_then(|t| t.as_str()) != Some(MATRIX_TRANSPORT) {
            return;
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(actor = "matrix", path = %path, error = %e, "Could not remove the restart sentinel.");
        }
        let chat = sentinel.get("chat_id").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let message = sentinel.get("message").and_then(|m| m.as_str()).unwrap_or_default();
        if let Some(out) = self.room_of_chat(chat)
            && !message.is_empty()
            && let Err(e) = out.rich_send(message).await
        {
            tracing::warn!(actor = "matrix", chat, error = %e, "Could not send the restart notice.");
        }
    }

    fn room_of_chat(&self, chat: u64) -> Option<RoomOut> {
        let (client, _) = self.client()?;
        let room_id = self.room_ids.lock().unwrap_or_else(PoisonError::into_inner).room(chat)?.to_owned();
        let room = client.get_room(&OwnedRoomId::try_from(room_id).ok()?)?;
        Some(self.out(room))
    }

    /// Downloads a received file into `workspace/matrix_files/<date>/`, rebuilds the index and
    /// returns the prompt; tells the room and returns `None` when it cannot be downloaded.
    async fn receive_file(&self, client: &Client, out: &RoomOut, media: &Media, body: &str) -> Option<String> {
        let mime = media.mime.clone().unwrap_or_else(|| {
            let by_name = mime_for(camino::Utf8Path::new(&media.name));
            if by_name == "application/octet-stream" { media.default_mime.to_owned() } else { by_name.to_owned() }
        });
        let name = {
            let clean = sanitize_name(&media.name);
            if clean.is_empty() || clean == "file" { format!("matrix_file{}", extension_for(&mime)) } else { clean }
        };
        let base = self.args.paths.workspace().join("matrix_files");
        let downloaded = async {
            if media.size.is_some_and(|s| s > MAX_DOWNLOAD) {
                return Err("over the 50 MiB limit".to_owned());
            }
            let request = MediaRequestParameters { source: media.source.clone(), format: MediaFormat::File };
            let bytes = client.media().get_media_content(&request, false).await.map_err(|e| e.to_string())?;
            let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
            let saved = received_files::save(&base, &date, &name, &bytes).map_err(|e| e.to_string())?;
            let converting = saved.clone();
            let path = match tokio::task::spawn_blocking(move || received_images::process(&converting)).await {
                Ok(Ok(converted)) => converted,
                _ => saved,
            };
            if let Err(e) = received_files::rebuild_index(&base) {
                tracing::warn!(actor = "matrix", error = %e, "Could not rebuild _index.yaml.");
            }
            Ok(path)
        };
        match downloaded.await {
            Ok(path) => {
                let workspace = self.args.paths.workspace();
                let shown = path.strip_prefix(&workspace).map_or_else(|_| path.to_string(), |p| p.to_string());
                let saved = path.file_name().unwrap_or(&name).to_owned();
                tracing::info!(actor = "matrix", room = %out.room.room_id(), kind = media.kind, path = %path, "Received a file.");
                let caption = (body != media.name).then_some(body);
                Some(incoming_prompt("Matrix", &shown, mime_for(&path), &saved, caption))
            }
            Err(e) => {
                tracing::warn!(actor = "matrix", room = %out.room.room_id(), error = %e, "Could not download a received file.");
                let _ = out.rich_send(&crate::transport::matrix::turn::download_failed(&name)).await;
                None
            }
        }
    }

    /// An invitation (§3.9): allowed rooms are joined, greeted with JOIN_NOTIFICATION.md (pinned);
    /// others are joined, told why, and left.
    async fn invite(&mut self, room_id: &str) {
        let Some((client, _)) = self.client() else { return };
        let Ok(id) = OwnedRoomId::try_from(room_id) else { return };
        let allowed_rooms = &self.args.config.matrix.allowed_rooms;
        let allowed = allowed_rooms.is_empty() || allowed_rooms.iter().any(|r| r == room_id);
        let room = match client.join_room_by_id(&id).await {
            Ok(room) => room,
            Err(e) => {
                tracing::warn!(actor = "matrix", room = %room_id, error = %e, "Could not join a room I was invited to.");
                return;
            }
        };
        let out = self.out(room.clone());
        if !allowed {
            self.rejected.insert(room_id.to_owned());
            tracing::info!(actor = "matrix", room = %room_id, "Invited to a room that is not allowed; leaving.");
            let _ = out.rich_send(&render("matrix.room_rejected", &[])).await;
            if let Err(e) = room.leave().await {
                tracing::warn!(actor = "matrix", room = %room_id, error = %e, "Could not leave the room.");
            }
            return;
        }
        tracing::info!(actor = "matrix", room = %room_id, "Joined a room.");
        self.chat_id(room_id);
        *self.last_active.lock().unwrap_or_else(PoisonError::into_inner) = Some(room_id.to_owned());
        let Ok(text) = std::fs::read_to_string(self.args.paths.join_notification()) else { return };
        if text.trim().is_empty() {
            return;
        }
        if let Ok(Some(event_id)) = out.rich_send(&text).await {
            let pinned = serde_json::json!({ "pinned": [event_id.to_string()] });
            if let Err(e) = room.send_state_event_raw("m.room.pinned_events", "", pinned).await {
                tracing::info!(actor = "matrix", room = %room_id, error = %e, "Could not pin the join notification.");
            }
        }
    }

    /// At start: the messages this transport left in the inbox (see the Telegram transport's
    /// `replay_inbox` for the rules; they are the same).
    async fn replay_inbox(&mut self) {
        let inbox = self.args.inbox.clone();
        let plan = inbox.startup_plan(MATRIX_TRANSPORT, now(), self.args.config.inbox_max_age_s());
        crate::transport::inbox_entry::report_cut(&self.args.bus, &inbox, &plan.cut).await;
        for entry in &plan.dropped {
            inbox.done(entry.id);
        }
        for (entry, answer) in &plan.redeliver {
            let chat = u64::try_from(entry.chat_id.get()).unwrap_or(0);
            if let Some(out) = self.room_of_chat(chat)
                && out.send_answer(answer, Some(&answer_txn(&entry.upstream))).await.is_ok()
            {
                inbox.done(entry.id);
            }
        }
        for ((_, chat, _), entries) in &plan.stale {
            let chat = u64::try_from(chat.get()).unwrap_or(0);
            let Some(out) = self.room_of_chat(chat) else { continue };
            if out.rich_send(&stale_notice(entries)).await.is_ok() {
                entries.iter().for_each(|entry| inbox.done(entry.id));
            }
        }
        for entry in plan.rerun {
            let stored = entry.message.as_ref().and_then(|m| {
                let room_id = m.get("room_id")?.as_str()?.to_owned();
                let event = serde_json::from_value::<OriginalSyncRoomMessageEvent>(m.get("event")?.clone()).ok()?;
                Some((room_id, event))
            });
            let guard = InboxEntryGuard::new(inbox.clone(), entry.id);
            match stored {
                Some((room_id, event)) => self.message(&room_id, &event, Some(guard)).await,
                None => {
                    tracing::warn!(actor = "matrix", entry = entry.id, "An inbox entry without its event; dropped.");
                    drop(guard);
                }
            }
        }
    }

    /// Delivers a Bus envelope in its own task (a slow homeserver never holds up the actor).
    fn deliver(&mut self, delivery: Delivery) {
        let Some((client, _)) = self.client() else {
            delivery.receipt.fail(DeliveryError::Retryable("Matrix is not connected yet".to_owned()));
            return;
        };
        let outs = Outs {
            client,
            files: Arc::clone(&self.files),
            sent: Arc::clone(&self.sent),
            buttons: Arc::clone(&self.buttons),
            room_ids: Arc::clone(&self.room_ids),
            allowed_rooms: self.args.config.matrix.allowed_rooms.clone(),
            last_active: self.last_active.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            broadcast_done: Arc::clone(&self.broadcast_done),
        };
        tokio::spawn(outs.deliver(delivery));
    }
}

/// What a Bus delivery needs, detached from the actor.
struct Outs {
    client: Client,
    files: Arc<FileAccess>,
    sent: Arc<Mutex<SentEvents>>,
    buttons: ButtonSets,
    room_ids: Arc<Mutex<RoomIds>>,
    allowed_rooms: Vec<String>,
    last_active: Option<String>,
    broadcast_done: Arc<Mutex<HashMap<String, HashSet<String>>>>,
}

impl Outs {
    fn out(&self, room_id: &str) -> Option<RoomOut> {
        let room = self.client.get_room(&OwnedRoomId::try_from(room_id).ok()?)?;
        Some(RoomOut {
            room,
            files: Arc::clone(&self.files),
            sent: Arc::clone(&self.sent),
            buttons: Arc::clone(&self.buttons),
        })
    }

    /// Rooms a broadcast goes to: the allowed rooms, else the last active one.
    fn broadcast_rooms(&self) -> Vec<String> {
        let allowed: Vec<String> = self.allowed_rooms.iter().filter(|r| r.starts_with('!')).cloned().collect();
        if allowed.is_empty() { self.last_active.iter().cloned().collect() } else { allowed }
    }

    async fn deliver(self, delivery: Delivery) {
        let Delivery { envelope, mode, receipt } = delivery;
        let unicast_room = || {
            let chat = u64::try_from(envelope.chat_id.get()).ok()?;
            self.room_ids.lock().unwrap_or_else(PoisonError::into_inner).room(chat).map(str::to_owned)
        };
        let broadcast = match mode {
            DeliveryMode::Unicast => {
                let Some(text) = envelope_text::unicast_text(&envelope) else {
                    receipt.confirm();
                    return;
                };
                match unicast_room().and_then(|room| self.out(&room)) {
                    Some(out) => {
                        match out.send_answer(&text, None).await {
                            Ok(()) => receipt.confirm(),
                            Err(e) => receipt.fail(delivery_error(&e)),
                        }
                        return;
                    }
                    // An unknown room: a cron result goes to everyone instead (§3.11).
                    None if matches!(envelope.origin, Origin::Cron | Origin::WebhookCron) => text,
                    None => {
                        tracing::info!(actor = "matrix", chat = %envelope.chat_id.get(), "No room for this chat id; envelope dropped.");
                        receipt.fail(DeliveryError::Permanent(format!(
                            "no Matrix room for chat {}",
                            envelope.chat_id.get()
                        )));
                        return;
                    }
                }
            }
            DeliveryMode::Broadcast => match envelope_text::broadcast_text(&envelope) {
                Some(text) => text,
                None => {
                    receipt.confirm();
                    return;
                }
            },
        };
        let rooms = self.broadcast_rooms();
        if rooms.is_empty() {
            tracing::warn!(
                actor = "matrix",
                "A broadcast with no room to go to (no allowed rooms, none active); dropped."
            );
            receipt.confirm();
            return;
        }
        let id = envelope.envelope_id.as_str().to_owned();
        let mut retry = None;
        for room_id in rooms {
            let done = self
                .broadcast_done
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&id)
                .is_some_and(|d| d.contains(&room_id));
            if done {
                continue;
            }
            let Some(out) = self.out(&room_id) else { continue };
            match out.send_answer(&broadcast, None).await {
                Ok(()) => {
                    self.broadcast_done
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(id.clone())
                        .or_default()
                        .insert(room_id);
                }
                Err(e) => {
                    tracing::warn!(actor = "matrix", room = %room_id, error = %e, "Broadcast to a room failed.");
                    match delivery_error(&e) {
                        DeliveryError::Permanent(_) => {
                            self.broadcast_done
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .entry(id.clone())
                                .or_default()
                                .insert(room_id);
                        }
                        retryable => retry = Some(retryable),
                    }
                }
            }
        }
        match retry {
            Some(error) => receipt.fail(error),
            None => {
                self.broadcast_done.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                receipt.confirm();
            }
        }
    }
}

fn delivery_error(error: &MxError) -> DeliveryError {
    match error {
        MxError::Refused(why) => DeliveryError::Permanent(why.clone()),
        MxError::Unreachable(why) => DeliveryError::Retryable(why.clone()),
    }
}

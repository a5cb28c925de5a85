//! The Matrix transport actor (`matrix` in the tree; Bus transport `mx`): logs in (saved
//! credentials → configured token → password), keeps its device and keys in the sqlite store
//! under `store_path`, takes what arrived while it was down from the saved sync token (the
//! backlog of a first start ever is skipped), then syncs. Each sync batch is
//! written to the inbox before its token is saved; each message runs the ingress of transports
//! spec §3.5 (auth, dedup, mentions, buttons, `!commands`) and goes to the Orchestrator, its
//! answer posted by a task queued per room (`turn.rs`). Encrypted rooms work like plain ones:
//! matrix-sdk decrypts what arrives and encrypts what is sent. Beside it: the login
//! (`login.rs`), the syncer (`sync.rs`), its own commands and reaction buttons (`commands.rs`)
//! and Bus deliveries (`delivery.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use matrix_sdk::config::{SyncSettings, SyncToken};
use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::ruma::events::room::message::{MessageType, OriginalSyncRoomMessageEvent, Relation};
use matrix_sdk::{Client, Room};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, oneshot};

use super::login::{build_client, log_in};
use super::sync::{Syncer, chat_id_of, inbound, sync_loop};
use crate::chat::orchestrator::OrchestratorHandle;
use crate::core::command::{ChatCommand, classify};
use crate::core::config::model::Config;
use crate::core::dedup::Dedup;
use crate::core::inbox::{Arrival, arrival, stale_notice, stale_notice_of};
use crate::core::incoming_file::{incoming_prompt, mime_for, sanitize_name};
use crate::core::reconnect::Reconnect;
use crate::core::session_key::SessionKey;
use crate::core::text::render;
use crate::runtime::adapter::{AdapterHandle, AdapterMsg};
use crate::runtime::bus::BusHandle;
use crate::runtime::health_board::LinkStatus;
use crate::runtime::supervision::RestartRequest;
use crate::store::inbox_journal::SharedInbox;
use crate::store::paths::DuctorPaths;
use crate::store::{received_files, received_images};
use crate::transport::file_access::FileAccess;
use crate::transport::inbox_entry::{InboxEntryGuard, StaleMessages};
use crate::transport::matrix::ingress::{
    MxAdmission, MxGate, MxIncoming, RoomIds, SentEvents, admit, answer_txn, dm_like, normalise_command,
};
use crate::transport::matrix::store::MatrixStore;
use crate::transport::matrix::text::typed_choice;
use crate::transport::matrix::turn::{ButtonSets, MxTurnSettings, RoomOut, answer};

/// The Bus transport name of Matrix.
pub const MATRIX_TRANSPORT: &str = "mx";

/// Largest received file downloaded.
const MAX_DOWNLOAD: u64 = 50 * 1024 * 1024;

/// Messages of the transport.
#[derive(Debug)]
pub enum MatrixMsg {
    /// A delivery from the Bus.
    Adapter(AdapterMsg),
    /// Log in, take what arrived while down and start syncing (sent to itself at start). A
    /// homeserver that cannot be reached is tried again after a capped backoff (1 s → 60 s)
    /// while the tree shows `reconnecting`; a refused login crashes the actor.
    Connect,
    /// What one sync brought, in order; `recorded` fires once its messages are in the inbox,
    /// and only then does the syncer save the sync token.
    Synced {
        /// Messages, reactions and invites.
        batch: Vec<Inbound>,
        /// Fired when handled.
        recorded: oneshot::Sender<()>,
    },
    /// The sync loop gave up (the token was refused).
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
    /// Where it shows `reconnecting` while the homeserver cannot be reached.
    pub link: LinkStatus,
}

/// Why a connection did not come up.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    /// The homeserver (or the way to it) did not answer: tried again later.
    #[error("{0}")]
    Unreachable(String),
    /// The login was refused, the store cannot be opened, …: waiting does not heal it.
    #[error("{0}")]
    Refused(String),
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
    pub(super) args: MatrixArgs,
    pub(super) store: MatrixStore,
    pub(super) connection: Option<Connection>,
    pub(super) room_ids: Arc<Mutex<RoomIds>>,
    pub(super) dedup: Dedup,
    pub(super) sent: Arc<Mutex<SentEvents>>,
    pub(super) buttons: ButtonSets,
    pub(super) last_active: Arc<Mutex<Option<String>>>,
    pub(super) files: Arc<FileAccess>,
    /// Answers waiting per room, run one after another.
    pub(super) lanes: HashMap<String, mpsc::UnboundedSender<Job>>,
    /// Rooms being left (not allowed).
    pub(super) rejected: HashSet<String>,
    /// Broadcast envelopes partly delivered: which rooms have them.
    pub(super) broadcast_done: Arc<Mutex<HashMap<String, HashSet<String>>>>,
    /// The batch being handled waited at the homeserver while ductor was down (the first sync
    /// from the saved token).
    pub(super) waited_batch: bool,
    /// Stale messages of the batch being handled, by room: their words and inbox entries,
    /// listed in one notice per room at the end of the batch.
    pub(super) late: BTreeMap<String, StaleMessages>,
    /// The waits between attempts to connect while the homeserver cannot be reached.
    pub(super) reconnect: Reconnect,
}

/// A logged-in client.
pub(super) struct Connection {
    pub(super) client: Client,
    pub(super) user_id: String,
    pub(super) syncer: tokio::task::JoinHandle<()>,
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
            waited_batch: false,
            late: BTreeMap::new(),
            reconnect: Reconnect::new(),
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
            MatrixMsg::Connect => match state.connect(&myself).await {
                Ok(()) => {
                    state.reconnect.succeeded();
                    state.args.link.connected();
                    state.deliver_restart_sentinel().await;
                    state.replay_inbox().await;
                }
                Err(ConnectError::Refused(why)) => return Err(why.into()),
                Err(ConnectError::Unreachable(why)) => {
                    let wait = state.reconnect.failed(rand::random());
                    tracing::warn!(actor = "matrix", error = %why, attempts = state.reconnect.failures(),
                        retry_in_ms = wait.as_millis() as u64, "The homeserver cannot be reached; trying again.");
                    state.args.link.reconnecting(&why);
                    myself.send_after(wait, || MatrixMsg::Connect);
                }
            },
            MatrixMsg::Synced { batch, recorded } => {
                state.take_batch(batch).await;
                let _ = recorded.send(());
            }
            MatrixMsg::SyncFailed(why) => return Err(why.into()),
            MatrixMsg::Adapter(AdapterMsg::Deliver(delivery)) => state.deliver(delivery),
        }
        Ok(())
    }
}

/// Unix seconds the person sent an event (its `origin_server_ts`).
pub(super) fn sent_at(event: &OriginalSyncRoomMessageEvent) -> f64 {
    u64::from(event.origin_server_ts.0) as f64 / 1000.0
}

pub(super) fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
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

impl MatrixState {
    /// One sync's messages, reactions and invites, in order; then the stale ones listed.
    async fn take_batch(&mut self, batch: Vec<Inbound>) {
        for item in batch {
            match item {
                Inbound::Message { room_id, event, entry } => {
                    let entry = entry.map(|id| InboxEntryGuard::new(self.args.inbox.clone(), id));
                    self.message(&room_id, &event, entry).await;
                }
                Inbound::Reaction { room_id, sender, target, key } => {
                    self.reaction(&room_id, &sender, &target, &key);
                }
                Inbound::Invite { room_id } => self.invite(&room_id).await,
            }
        }
        self.list_late().await;
    }

    /// Lists the stale messages of the batch just handled: one notice per room with the
    /// person's own words; their entries are done once it is out (kept for the next start
    /// when it cannot be sent).
    async fn list_late(&mut self) {
        if self.late.is_empty() {
            return;
        }
        let late = std::mem::take(&mut self.late);
        let Some((client, _)) = self.client() else { return };
        for (room_id, items) in late {
            let room = matrix_sdk::ruma::RoomId::parse(&room_id).ok().and_then(|id| client.get_room(&id));
            let notice = stale_notice_of(items.iter().map(|(words, _)| words.as_str()));
            let sent = match room {
                Some(room) => self.out(room).rich_send(&notice).await.map(|_| ()).map_err(|e| e.to_string()),
                None => Err("the room is not known".to_owned()),
            };
            if let Err(e) = sent {
                tracing::warn!(actor = "matrix", room = %room_id, error = %e, "Could not list the stale messages; kept for the next start.");
                items.into_iter().filter_map(|(_, entry)| entry).for_each(InboxEntryGuard::keep);
            }
        }
    }

    pub(super) fn client(&self) -> Option<(Client, String)> {
        self.connection.as_ref().map(|c| (c.client.clone(), c.user_id.clone()))
    }

    pub(super) fn out(&self, room: Room) -> RoomOut {
        RoomOut {
            room,
            files: Arc::clone(&self.files),
            sent: Arc::clone(&self.sent),
            buttons: Arc::clone(&self.buttons),
        }
    }

    pub(super) fn settings(&self) -> MxTurnSettings {
        MxTurnSettings {
            streaming: self.args.config.streaming.enabled,
            footer: self.args.config.scene.technical_footer,
        }
    }

    /// Runs `job` after the room's earlier answers.
    pub(super) fn queue(&mut self, room_id: &str, job: Job) {
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

    pub(super) fn chat_id(&self, room_id: &str) -> u64 {
        chat_id_of(&self.room_ids, &self.store, room_id)
    }

    /// Log in, first sync, then the sync loop. The first sync from a saved token is taken like
    /// any batch (what arrived while ductor was down); without one (a first start ever) only its
    /// invitations are.
    async fn connect(&mut self, myself: &ActorRef<MatrixMsg>) -> Result<(), ConnectError> {
        let config = &self.args.config;
        let client = build_client(config, &self.store).await.map_err(ConnectError::Refused)?;
        // A homeserver that does not answer at all is waited for; one that refuses is not.
        if let Err(e) = client.fetch_server_versions(None).await {
            return Err(ConnectError::Unreachable(format!(
                "the homeserver {} cannot be reached: {e}",
                config.matrix.homeserver
            )));
        }
        log_in(&client, config, &self.store).await.map_err(ConnectError::Refused)?;
        let user_id = client.user_id().map(ToString::to_string).unwrap_or_else(|| config.matrix.user_id.clone());
        let device = client.device_id().map(ToString::to_string).unwrap_or_default();
        let settings = SyncSettings::default().timeout(Duration::from_secs(10)).full_state(true);
        let saved = self.store.next_batch();
        let mut resumed = saved.is_some();
        let first = match saved {
            Some(token) => match client.sync_once(settings.clone().token(token)).await {
                // The homeserver refuses the saved token (a broken file): moved aside, and the
                // first sync starts over without it.
                Err(e) if e.as_client_api_error().is_some_and(|api| api.status_code.as_u16() == 400) => {
                    self.store.quarantine_next_batch(&e.to_string());
                    resumed = false;
                    client.sync_once(settings.token(SyncToken::NoToken)).await
                }
                result => result,
            },
            None => client.sync_once(settings).await,
        };
        let first = first.map_err(|e| {
            let why = format!("first Matrix sync at {} failed: {e}", config.matrix.homeserver);
            if e.as_client_api_error().is_some() { ConnectError::Refused(why) } else { ConnectError::Unreachable(why) }
        })?;
        for room in client.joined_rooms() {
            self.chat_id(room.room_id().as_str());
        }
        // What arrived since the saved token goes into the inbox before the newer token is
        // saved (as every batch of the syncer).
        let backlog = resumed.then(|| inbound(&first, &self.args.inbox, &self.room_ids, &self.store, &user_id));
        if let Some((_, entries)) = &backlog {
            self.args.inbox.record(entries.clone());
        }
        if let Err(e) = self.store.save_next_batch(&first.next_batch) {
            tracing::warn!(actor = "matrix", error = %e, "Could not save the sync token.");
        }
        tracing::info!(actor = "matrix", user = %user_id, device = %device, homeserver = %config.matrix.homeserver, "Logged in to Matrix.");
        let invited: Vec<OwnedRoomId> = first.rooms.invited.keys().cloned().collect();
        let syncer = Syncer {
            client: client.clone(),
            store: self.store.clone(),
            actor: myself.clone(),
            inbox: self.args.inbox.clone(),
            room_ids: Arc::clone(&self.room_ids),
            bot: user_id.clone(),
            link: self.args.link.clone(),
        };
        let syncer = tokio::spawn(sync_loop(syncer, first.next_batch.clone()));
        self.connection = Some(Connection { client, user_id, syncer });
        match backlog {
            Some((batch, _)) => {
                tracing::info!(actor = "matrix", events = batch.len(), "Taking what arrived while ductor was down.");
                self.waited_batch = true;
                self.take_batch(batch).await;
                self.waited_batch = false;
            }
            // A first start: invitations are the one thing taken from the backlog.
            None => {
                for room_id in invited {
                    self.invite(room_id.as_str()).await;
                }
            }
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
        // Sent while ductor was down (or long before): the age rule, by the event's own time.
        let sent_at = sent_at(event);
        let max_age = self.args.config.inbox_max_age_s();
        match arrival(&normalise_command(&text), sent_at, now(), max_age, self.waited_batch) {
            Arrival::Run => {}
            Arrival::Stale => {
                let words = if body.trim().is_empty() { "(a file)".to_owned() } else { body.clone() };
                tracing::info!(actor = "matrix", room = %room_id, event = %event.event_id, sent_at, "A stale message listed, not run.");
                self.late.entry(room_id.to_owned()).or_default().push((words, entry));
                return;
            }
            Arrival::Dropped => {
                tracing::info!(actor = "matrix", room = %room_id, event = %event.event_id, "An immediate command sent before this start dropped.");
                return;
            }
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
        self.list_late().await;
    }
}

//! The Telegram transport actor (`telegram` in the tree; Bus transport `tg`): logs in with
//! `getMe` (an unreachable server is retried with a capped backoff while the tree shows
//! `reconnecting`; a refused token is a crash), syncs the command menu, long-polls `getUpdates`
//! from what is still pending at Telegram (each batch recorded in the inbox before it is
//! confirmed; messages older than `inbox_max_age_minutes` by their own date are listed, not
//! run), replays the inbox at start, and for each update runs the
//! ingress pipeline of transports spec §2.3 (auth, group rules, dedup, received files) before
//! handing the text to the Orchestrator; each message's outputs are answered by its own task
//! (`turn.rs`). Its own commands and buttons are in `commands.rs`, groups and allow-lists in
//! `groups.rs`, Bus deliveries in `delivery.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use teloxide::Bot;
use teloxide::payloads::{DeleteMyCommandsSetters, GetMyCommandsSetters, GetUpdatesSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    AllowedUpdate, BotCommand, BotCommandScope, ChatKind as TgChatKind, MessageEntityKind, PublicChatKind, Update,
    UpdateKind,
};

use super::delivery::deliver_restart_sentinel;
use super::groups::{CONFIG_POLL, GROUP_AUDIT_EVERY};
use crate::chat::orchestrator::OrchestratorHandle;
use crate::core::command::MENU;
use crate::core::config::model::Config;
use crate::core::dedup::Dedup;
use crate::core::inbox::{Arrival, InboxEntry, arrival, stale_notice, stale_notice_of, without_nulls};
use crate::core::incoming_file::{MediaKind, incoming_prompt, mime_for, saved_name};
use crate::core::reconnect::Reconnect;
use crate::core::session_key::SessionKey;
use crate::core::state::chat_activity::ChatActivity;
use crate::core::text::render;
use crate::runtime::adapter::{AdapterHandle, AdapterMsg};
use crate::runtime::bus::BusHandle;
use crate::runtime::health_board::LinkStatus;
use crate::runtime::supervision::RestartRequest;
use crate::store::atomic::Loaded;
use crate::store::inbox_journal::SharedInbox;
use crate::store::paths::DuctorPaths;
use crate::store::state_files::StateFile;
use crate::store::{received_files, received_images};
use crate::transport::file_access::FileAccess;
use crate::transport::inbox_entry::{InboxEntryGuard, StaleMessages, report_cut};
use crate::transport::telegram::ingress::{
    Admission, ChatKind, Entity, Gate, Incoming, admit, normalise_command, strip_mention, with_reply_context,
};
use crate::transport::telegram::lanes::{ApiOp, Lanes};
use crate::transport::telegram::turn::{
    AnswerOrder, QueueNotices, Target, TurnSettings, answer, rich_send, send_plain,
};

/// The Bus transport name of Telegram.
pub const TELEGRAM_TRANSPORT: &str = "tg";

/// The official Bot API server.
pub const OFFICIAL_API: &str = "https://api.telegram.org";

/// Long-poll timeout of `getUpdates` (teloxide's HTTP client gives up after 17 s).
const POLL_TIMEOUT_S: u32 = 10;

/// Which API server to use: `DUCTOR_TELEGRAM_API_BASE`, then `telegram_api_base`, then the
/// official one.
pub fn api_base(env: Option<&str>, config: Option<&str>) -> String {
    env.or(config).map(str::trim).filter(|b| !b.is_empty()).unwrap_or(OFFICIAL_API).trim_end_matches('/').to_owned()
}

/// Messages of the transport.
#[derive(Debug)]
pub enum TelegramMsg {
    /// A delivery from the Bus.
    Adapter(AdapterMsg),
    /// A batch of updates from the long poll; `recorded` fires once the batch's messages are in
    /// the inbox, and only then does the poller confirm them to Telegram (next offset).
    Updates {
        /// The updates, in order, each with its inbox entry (messages only).
        updates: Vec<(Update, Option<u64>)>,
        /// Fired when recorded.
        recorded: tokio::sync::oneshot::Sender<()>,
        /// Fetched at start without waiting: these waited at Telegram while ductor was down.
        waited: bool,
    },
    /// Log in and start polling (sent to itself at start). An unreachable server is tried
    /// again after a capped backoff (1 s → 60 s) while the tree shows `reconnecting`; a refused
    /// token crashes the actor (waiting does not heal it).
    Connect,
    /// Telegram refused the token while polling: the actor fails with this text.
    Refused(String),
    /// Leave every tracked group or channel that is no longer allowed (after login, then
    /// every 24 h).
    AuditGroups,
    /// Re-read the allow-lists when `config.json` changed (every few seconds).
    ReloadAllowLists,
}

impl From<AdapterMsg> for TelegramMsg {
    fn from(msg: AdapterMsg) -> Self {
        Self::Adapter(msg)
    }
}

impl TryFrom<TelegramMsg> for AdapterMsg {
    type Error = ();

    fn try_from(msg: TelegramMsg) -> Result<Self, ()> {
        match msg {
            TelegramMsg::Adapter(inner) => Ok(inner),
            TelegramMsg::Updates { .. }
            | TelegramMsg::Connect
            | TelegramMsg::Refused(_)
            | TelegramMsg::AuditGroups
            | TelegramMsg::ReloadAllowLists => Err(()),
        }
    }
}

/// Construction arguments.
#[derive(Clone)]
pub struct TelegramArgs {
    /// The agent's home.
    pub paths: DuctorPaths,
    /// The agent's config.
    pub config: Arc<Config>,
    /// The Bot API base URL.
    pub api_base: String,
    /// Where messages go.
    pub orchestrator: OrchestratorHandle,
    /// The agent's Bus (this transport registers as `tg`).
    pub bus: BusHandle,
    /// `/restart`.
    pub restart: RestartRequest,
    /// The agent's inbox (shared by its transports).
    pub inbox: SharedInbox,
    /// Where it shows `reconnecting` while Telegram cannot be reached.
    pub link: LinkStatus,
}

impl std::fmt::Debug for TelegramArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramArgs").field("api_base", &self.api_base).finish_non_exhaustive()
    }
}

/// The transport actor.
#[derive(Debug, Default)]
pub struct Telegram;

/// Its state.
pub struct TelegramState {
    pub(super) args: TelegramArgs,
    pub(super) connection: Option<Connection>,
    pub(super) dedup: Dedup,
    pub(super) notices: QueueNotices,
    /// Per chat (and topic): the end of the last message's answer task, which the next one
    /// waits for (answers in the order of the messages).
    pub(super) answer_order: HashMap<SessionKey, tokio::sync::oneshot::Receiver<()>>,
    /// Broadcast envelopes partly delivered: who has them already.
    pub(super) broadcast_done: HashMap<String, HashSet<i64>>,
    /// `chat_activity.json`.
    pub(super) tracker: ChatActivity,
    /// Which files answers may send.
    pub(super) files: Arc<FileAccess>,
    /// Forum topic names by (chat, topic), from the topics' service messages.
    pub(super) topic_names: HashMap<(i64, i32), String>,
    /// The allow-lists, reloaded when `config.json` changes.
    pub(super) allow: AllowLists,
    /// Messages received and not yet answered (`inbox.jsonl`).
    pub(super) inbox: SharedInbox,
    /// When `config.json` was last read.
    pub(super) config_stamp: Option<std::time::SystemTime>,
    /// The waits between attempts to log in while Telegram cannot be reached.
    pub(super) reconnect: Reconnect,
    /// The batch being handled waited at Telegram while ductor was down.
    pub(super) waited_batch: bool,
    /// Stale messages of the batch being handled, by (chat, topic): their words and inbox
    /// entries, listed in one notice per chat at the end of the batch.
    pub(super) late: BTreeMap<(i64, Option<i32>), StaleMessages>,
}

/// Who may talk to the bot; hot-reloadable (transports spec §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AllowLists {
    pub(super) users: Vec<i64>,
    pub(super) groups: Vec<i64>,
    pub(super) channels: Vec<i64>,
}

impl AllowLists {
    pub(super) fn of(config: &Config) -> Self {
        Self {
            users: config.allowed_user_ids.clone(),
            groups: config.allowed_group_ids.clone(),
            channels: config.allowed_channel_ids.clone(),
        }
    }
}

/// A logged-in bot.
pub(super) struct Connection {
    pub(super) lanes: Lanes,
    pub(super) bot_id: u64,
    pub(super) username: String,
    pub(super) poller: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TelegramState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramState").field("connected", &self.connection.is_some()).finish_non_exhaustive()
    }
}

impl Actor for Telegram {
    type Msg = TelegramMsg;
    type State = TelegramState;
    type Arguments = TelegramArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<TelegramMsg>,
        args: TelegramArgs,
    ) -> Result<TelegramState, ActorProcessingErr> {
        args.bus.register_adapter(AdapterHandle::new(TELEGRAM_TRANSPORT, &myself));
        myself.cast(TelegramMsg::Connect)?;
        myself.send_interval(CONFIG_POLL, || TelegramMsg::ReloadAllowLists);
        Ok(TelegramState {
            inbox: args.inbox.clone(),
            allow: AllowLists::of(&args.config),
            config_stamp: std::fs::metadata(args.paths.config_file()).and_then(|m| m.modified()).ok(),
            reconnect: Reconnect::new(),
            waited_batch: false,
            late: BTreeMap::new(),
            topic_names: HashMap::new(),
            files: FileAccess::from_config(&args.config, &args.paths),
            args: args.clone(),
            connection: None,
            dedup: Dedup::default(),
            notices: QueueNotices::default(),
            answer_order: HashMap::new(),
            broadcast_done: HashMap::new(),
            tracker: match ChatActivity::load(&args.paths) {
                Loaded::Found(tracker) => tracker,
                Loaded::Missing | Loaded::Quarantined { .. } => ChatActivity::default(),
            },
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TelegramMsg>,
        state: &mut TelegramState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(connection) = &state.connection {
            connection.poller.abort();
        }
        tracing::info!(actor = "telegram", "Telegram transport stopped.");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<TelegramMsg>,
        msg: TelegramMsg,
        state: &mut TelegramState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TelegramMsg::Connect => match connect(&state.args, &myself, &state.inbox).await {
                Ok(connection) => {
                    state.connection = Some(connection);
                    state.reconnect.succeeded();
                    state.args.link.connected();
                    myself.send_interval(GROUP_AUDIT_EVERY, || TelegramMsg::AuditGroups);
                    state.audit_groups().await;
                    state.replay_inbox().await;
                }
                Err(ConnectError::Refused(why)) => return Err(why.into()),
                Err(ConnectError::Unreachable(why)) => {
                    let wait = state.reconnect.failed(rand::random());
                    tracing::warn!(actor = "telegram", error = %why, attempts = state.reconnect.failures(),
                            retry_in_ms = wait.as_millis() as u64, "Telegram cannot be reached; trying again.");
                    state.args.link.reconnecting(&why);
                    myself.send_after(wait, || TelegramMsg::Connect);
                }
            },
            TelegramMsg::Refused(why) => return Err(why.into()),
            TelegramMsg::AuditGroups => state.audit_groups().await,
            TelegramMsg::ReloadAllowLists => state.reload_allow_lists().await,
            TelegramMsg::Updates { updates, recorded, waited } => {
                state.waited_batch = waited;
                for (update, entry) in updates {
                    let entry = entry.map(|id| InboxEntryGuard::new(state.inbox.clone(), id));
                    match update.kind {
                        UpdateKind::Message(message) => state.message(&message, entry).await,
                        UpdateKind::CallbackQuery(query) => state.callback(&query).await,
                        UpdateKind::MyChatMember(change) => state.membership(&change).await,
                        _ => {}
                    }
                }
                state.list_late().await;
                state.waited_batch = false;
                let _ = recorded.send(());
            }
            TelegramMsg::Adapter(AdapterMsg::Deliver(delivery)) => state.deliver(delivery).await,
        }
        Ok(())
    }
}

/// Why a login did not work.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    /// Telegram (or the way to it) did not answer: tried again later.
    #[error("{0}")]
    Unreachable(String),
    /// The token or the API base is wrong: waiting does not heal it.
    #[error("{0}")]
    Refused(String),
}

/// The text of a refused token (`call`: `getMe`, `getUpdates`).
fn refused_token(api_base: &str, call: &str) -> String {
    let what = if call == "getMe" { "login" } else { "polling" };
    format!(
        "Telegram {what} ({call} at {api_base}) failed: the bot token was refused; check telegram_token in config.json"
    )
}

/// Logs in, syncs the menu, sends the restart notice and starts polling from what is still
/// pending at Telegram (the messages sent while ductor was down come in the first batches).
async fn connect(
    args: &TelegramArgs,
    myself: &ActorRef<TelegramMsg>,
    inbox: &SharedInbox,
) -> Result<Connection, ConnectError> {
    let url = args
        .api_base
        .parse()
        .map_err(|e| ConnectError::Refused(format!("telegram API base {:?} is not a URL: {e}", args.api_base)))?;
    let bot = Bot::new(args.config.telegram_token.clone()).set_api_url(url);
    let me = bot.get_me().await.map_err(|e| match e {
        teloxide::RequestError::Api(teloxide::ApiError::InvalidToken) => {
            ConnectError::Refused(refused_token(&args.api_base, "getMe"))
        }
        e => ConnectError::Unreachable(format!("Telegram login (getMe at {}) failed: {e}", args.api_base)),
    })?;
    let username = me.username.clone().unwrap_or_default();
    tracing::info!(actor = "telegram", bot = %username, api = %args.api_base, "Logged in to Telegram.");
    let lanes = Lanes::new(bot.clone());
    sync_commands(&bot).await;
    deliver_restart_sentinel(&lanes, args).await;
    // A webhook would make getUpdates fail; its pending updates are kept (never dropped).
    if let Err(e) = bot.delete_webhook().await {
        tracing::warn!(actor = "telegram", error = %e, "deleteWebhook failed.");
    }
    let link =
        Poller { actor: myself.clone(), inbox: inbox.clone(), link: args.link.clone(), api: args.api_base.clone() };
    let poller = tokio::spawn(poll(bot, 0, link));
    Ok(Connection { lanes, bot_id: me.id.0, username, poller })
}

/// What the poller hands updates to and reports its link on.
struct Poller {
    actor: ActorRef<TelegramMsg>,
    inbox: SharedInbox,
    link: LinkStatus,
    api: String,
}

/// Long-polls `getUpdates` and hands each update to the actor, in order. Network trouble backs
/// off 1 s → 60 s (jittered) and never stops the polling (the tree shows `reconnecting` until a
/// poll works again); a refused token fails the actor.
async fn poll(bot: Bot, mut offset: i32, poller: Poller) {
    let Poller { actor, inbox, link, api } = poller;
    let mut reconnect = Reconnect::new();
    // What waited at Telegram while ductor was down comes first, fetched without waiting, until
    // a poll comes back empty; then the long poll.
    let mut draining = true;
    let env = crate::store::inbox_journal::CRASH_BEFORE_CONFIRM_ENV;
    let crash_before_confirm = std::env::var_os(env).is_some_and(|v| v == "1");
    loop {
        let timeout = if draining { 0 } else { POLL_TIMEOUT_S };
        let request = bot.get_updates().offset(offset).timeout(timeout).allowed_updates([
            AllowedUpdate::Message,
            AllowedUpdate::CallbackQuery,
            AllowedUpdate::MyChatMember,
        ]);
        match request.await {
            Ok(updates) => {
                if reconnect.failures() > 0 {
                    tracing::info!(actor = "telegram", "Telegram answers again.");
                    reconnect.succeeded();
                    link.connected();
                }
                if updates.is_empty() {
                    draining = false;
                    continue;
                }
                let next = updates.iter().map(|u| i32::try_from(u.id.0).unwrap_or(i32::MAX).saturating_add(1)).max();
                let (batch, entries) = inbox_entries(&inbox, updates);
                let (recorded, done) = tokio::sync::oneshot::channel();
                if actor.cast(TelegramMsg::Updates { updates: batch, recorded, waited: draining }).is_err() {
                    return;
                }
                // The turns need not wait for the fsync; only the confirmation below does.
                inbox.record(entries);
                // The next offset confirms the batch to Telegram: only once it is recorded and
                // handed over (a crash before makes Telegram deliver it again).
                if done.await.is_err() {
                    return;
                }
                if crash_before_confirm {
                    tracing::error!(actor = "telegram", "Crashing before the batch is confirmed ({env}).");
                    std::process::abort();
                }
                offset = next.unwrap_or(offset);
            }
            Err(teloxide::RequestError::Api(teloxide::ApiError::InvalidToken)) => {
                let _ = actor.cast(TelegramMsg::Refused(refused_token(&api, "getUpdates")));
                return;
            }
            Err(e) => {
                let wait = reconnect.failed(rand::random());
                tracing::warn!(actor = "telegram", error = %e, retry_in_ms = wait.as_millis() as u64, "getUpdates failed.");
                link.reconnecting(&format!("getUpdates at {api} failed: {e}"));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The inbox entries of a batch's messages, as they arrived (written by the caller with one
/// fsync); a message already in the inbox (a redelivery) is left out of the batch.
fn inbox_entries(inbox: &SharedInbox, updates: Vec<Update>) -> (Vec<(Update, Option<u64>)>, Vec<InboxEntry>) {
    let mut entries = Vec::new();
    let mut batch = Vec::new();
    for update in updates {
        let UpdateKind::Message(message) = &update.kind else {
            batch.push((update, None));
            continue;
        };
        let chat = message.chat.id.0;
        let upstream = format!("tg:{chat}:{}", message.id.0);
        if inbox.knows(&upstream) {
            tracing::debug!(
                actor = "telegram",
                chat,
                message_id = message.id.0,
                "Redelivered message already in the inbox."
            );
            continue;
        }
        let id = inbox.allocate();
        if let Some(id) = id {
            entries.push(InboxEntry {
                id,
                transport: TELEGRAM_TRANSPORT.to_owned(),
                chat_id: chat.into(),
                topic_id: message.is_topic_message.then_some(message.thread_id).flatten().map(|t| i64::from(t.0.0)),
                upstream,
                reply_to: Some(i64::from(message.id.0)),
                text: message.text().or_else(|| message.caption()).unwrap_or_default().to_owned(),
                prompt: String::new(),
                at: message.date.timestamp() as f64,
                message: serde_json::to_value(message).ok().map(without_nulls),
            });
        }
        batch.push((update, id));
    }
    (batch, entries)
}

/// The command menu: scoped menus removed, the default one set only when it differs.
async fn sync_commands(bot: &Bot) {
    for scope in [BotCommandScope::AllPrivateChats, BotCommandScope::AllGroupChats] {
        if let Ok(commands) = bot.get_my_commands().scope(scope.clone()).await
            && !commands.is_empty()
        {
            let _ = bot.delete_my_commands().scope(scope).await;
        }
    }
    let desired: Vec<BotCommand> = MENU.iter().map(|(c, d)| BotCommand::new(*c, *d)).collect();
    match bot.get_my_commands().await {
        Ok(current) if current == desired => {}
        _ => {
            if let Err(e) = bot.set_my_commands(desired).await {
                tracing::warn!(actor = "telegram", error = %e, "Could not set the command menu.");
            }
        }
    }
}

pub(super) fn chat_kind(kind: &TgChatKind) -> ChatKind {
    match kind {
        TgChatKind::Private(_) => ChatKind::Private,
        TgChatKind::Public(public) => match public.kind {
            PublicChatKind::Channel(_) => ChatKind::Channel,
            _ => ChatKind::Group,
        },
    }
}

pub(super) fn chat_type(chat: &teloxide::types::Chat) -> &'static str {
    if chat.is_private() {
        "private"
    } else if chat.is_channel() {
        "channel"
    } else if chat.is_supergroup() {
        "supergroup"
    } else {
        "group"
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Now, ISO 8601 UTC to the second (`2026-11-24T16:53:04+00:00`), as the chat tracker writes.
pub(super) fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Largest file ductor downloads.
const MAX_DOWNLOAD: u64 = 50 * 1024 * 1024;

/// A media attachment of a message.
struct Media {
    kind: MediaKind,
    file_id: String,
    unique_id: String,
    size: u32,
    original: Option<String>,
    sticker_ext: &'static str,
}

fn media_of(message: &teloxide::types::Message) -> Option<Media> {
    let media = |kind, meta: &teloxide::types::FileMeta, original: Option<&String>| Media {
        kind,
        file_id: meta.id.0.clone(),
        unique_id: meta.unique_id.0.clone(),
        size: meta.size,
        original: original.cloned(),
        sticker_ext: "",
    };
    if let Some(largest) = message.photo().and_then(|sizes| sizes.iter().max_by_key(|p| p.width * p.height)) {
        return Some(media(MediaKind::Photo, &largest.file, None));
    }
    if let Some(d) = message.document() {
        return Some(media(MediaKind::Document, &d.file, d.file_name.as_ref()));
    }
    if let Some(v) = message.voice() {
        return Some(media(MediaKind::Voice, &v.file, None));
    }
    if let Some(a) = message.audio() {
        return Some(media(MediaKind::Audio, &a.file, a.file_name.as_ref()));
    }
    if let Some(v) = message.video() {
        return Some(media(MediaKind::Video, &v.file, v.file_name.as_ref()));
    }
    if let Some(v) = message.video_note() {
        return Some(media(MediaKind::VideoNote, &v.file, None));
    }
    if let Some(sticker) = message.sticker() {
        let ext = if sticker.is_animated() {
            "tgs"
        } else if sticker.is_video() {
            "webm"
        } else {
            "webp"
        };
        return Some(Media { sticker_ext: ext, ..media(MediaKind::Sticker, &sticker.file, None) });
    }
    None
}

impl TelegramState {
    /// The logged-in bot: (lanes, bot id, username); `None` before login.
    pub(super) fn bot(&self) -> Option<(Lanes, u64, String)> {
        self.connection.as_ref().map(|c| (c.lanes.clone(), c.bot_id, c.username.clone()))
    }

    pub(super) fn gate<'a>(&'a self, bot_id: u64, username: &'a str) -> Gate<'a> {
        Gate {
            allowed_users: &self.allow.users,
            allowed_groups: &self.allow.groups,
            mention_only: self.args.config.group_mention_only,
            bot_id,
            bot_username: username,
        }
    }

    /// One message; `entry` is its inbox entry (done when the message goes nowhere, handed to
    /// the answer when it goes to the Orchestrator).
    async fn message(&mut self, message: &teloxide::types::Message, entry: Option<InboxEntryGuard>) {
        let Some((lanes, bot_id, username)) = self.bot() else { return };
        let chat = message.chat.id.0;
        let topic_name = message
            .forum_topic_created()
            .map(|created| created.name.clone())
            .or_else(|| message.forum_topic_edited().and_then(|edited| edited.name.clone()));
        if let (Some(name), Some(thread)) = (topic_name, message.thread_id) {
            tracing::debug!(actor = "telegram", chat, topic = thread.0.0, name = %name, "Topic name noted.");
            self.topic_names.insert((chat, thread.0.0), name);
            return;
        }
        let text = message.text().or_else(|| message.caption()).unwrap_or_default();
        let entities = message
            .entities()
            .or_else(|| message.caption_entities())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| match e.kind {
                MessageEntityKind::BotCommand => Some(Entity { is_command: true, offset: e.offset, length: e.length }),
                MessageEntityKind::Mention => Some(Entity { is_command: false, offset: e.offset, length: e.length }),
                _ => None,
            })
            .collect();
        let incoming = Incoming {
            chat_id: chat,
            chat_kind: chat_kind(&message.chat.kind),
            from_id: message.from.as_ref().map(|u| u.id.0),
            text,
            entities,
            reply_to_author: message.reply_to_message().and_then(|m| m.from.as_ref()).map(|u| u.id.0),
        };
        match admit(&incoming, &self.gate(bot_id, &username)) {
            Admission::Accepted => {}
            Admission::RejectedGroup => {
                let title = message.chat.title().unwrap_or_default();
                self.tracker.rejected(chat, chat_type(&message.chat), title, &now_iso());
                self.save_tracker();
                tracing::info!(actor = "telegram", chat, "Message from a group that is not allowed dropped.");
                return;
            }
            verdict => {
                tracing::debug!(actor = "telegram", chat, ?verdict, "Message dropped.");
                return;
            }
        }
        if self.dedup.seen_before(&format!("{chat}:{}", message.id.0), Instant::now()) {
            tracing::debug!(actor = "telegram", chat, message_id = message.id.0, "Duplicate message dropped.");
            return;
        }
        let thread = message.is_topic_message.then_some(message.thread_id).flatten().map(|t| t.0.0);
        let target = Target { files: Arc::clone(&self.files), lanes, chat, thread, anchor: Some(message.id.0) };
        let media = media_of(message);
        if text.trim().is_empty() && media.is_none() {
            tracing::debug!(actor = "telegram", chat, "A message without text or supported media ignored.");
            return;
        }
        // Sent while ductor was down (or long before): the age rule, by the message's own date.
        let sent_at = message.date.timestamp() as f64;
        match arrival(text, sent_at, unix_now(), self.args.config.inbox_max_age_s(), self.waited_batch) {
            Arrival::Run => {}
            Arrival::Stale => {
                let words = if text.trim().is_empty() { "(a file)".to_owned() } else { text.to_owned() };
                tracing::info!(
                    actor = "telegram",
                    chat,
                    message_id = message.id.0,
                    sent_at,
                    "A stale message listed, not run."
                );
                self.late.entry((chat, thread)).or_default().push((words, entry));
                return;
            }
            Arrival::Dropped => {
                tracing::info!(
                    actor = "telegram",
                    chat,
                    message_id = message.id.0,
                    "An immediate command sent before this start dropped."
                );
                return;
            }
        }
        let text = if incoming.chat_kind == ChatKind::Group { strip_mention(text, &username) } else { text.to_owned() };
        let text = match media {
            // Downloaded here, in the actor, so the message keeps its place among the chat's
            // messages.
            Some(media) => match self.receive_file(&target, &media, &text).await {
                Some(prompt) if message.reply_to_message().is_some() => {
                    format!("The user attached {} to this reply.\n{prompt}", media.kind.described())
                }
                Some(prompt) => prompt,
                None => return,
            },
            None => normalise_command(&text, &username),
        };
        // A reply carries the text it answers (the selected quote first).
        let cited = message
            .quote()
            .map(|q| q.text.clone())
            .or_else(|| message.reply_to_message().and_then(|r| r.text().or_else(|| r.caption())).map(str::to_owned));
        let text = if text.starts_with('/') { text } else { with_reply_context(&text, cited.as_deref()) };
        let key = SessionKey::new(TELEGRAM_TRANSPORT, chat, thread.map(i64::from));
        if self.transport_command(&text, &target, message).await {
            return;
        }
        let scene = &self.args.config.scene;
        if scene.seen_reaction && !scene.status_reaction {
            target.lanes.post(chat, ApiOp::React { message_id: message.id.0, emoji: Some("👀".to_owned()) });
        }
        let guard = entry;
        let slot = target.lanes.reserve(chat);
        let on_start = guard.as_ref().map(InboxEntryGuard::start_hook);
        let (order, end) = AnswerOrder::after(self.answer_order.remove(&key));
        self.answer_order.insert(key.clone(), end);
        let outputs = self.args.orchestrator.message_with_start(key, &text, on_start);
        let settings = TurnSettings::from_config(&self.args.config);
        tokio::spawn(answer(target, settings, self.notices.clone(), outputs, Some(slot), guard, order));
    }

    /// Downloads a received file into `workspace/telegram_files/<date>/`, rebuilds the index and
    /// returns the prompt; tells the chat and returns `None` when it cannot be downloaded.
    async fn receive_file(&self, target: &Target, media: &Media, caption: &str) -> Option<String> {
        let base = self.args.paths.workspace().join("telegram_files");
        let name = saved_name(media.kind, &media.unique_id, media.original.as_deref(), media.sticker_ext);
        let downloaded = async {
            if u64::from(media.size) > MAX_DOWNLOAD && media.size != u32::MAX {
                return Err(format!("{} bytes is over the 50 MiB limit", media.size));
            }
            let bot = target.lanes.bot();
            let file = bot.get_file(teloxide::types::FileId(media.file_id.clone())).await.map_err(|e| e.to_string())?;
            let mut bytes: Vec<u8> = Vec::new();
            teloxide::net::Download::download_file(bot, &file.path, &mut bytes).await.map_err(|e| e.to_string())?;
            let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
            let saved = received_files::save(&base, &date, &name, &bytes).map_err(|e| e.to_string())?;
            let converting = saved.clone();
            let path = match tokio::task::spawn_blocking(move || received_images::process(&converting)).await {
                Ok(Ok(converted)) => converted,
                Ok(Err(received_images::ImageError::NotStill)) => saved,
                Ok(Err(e)) => {
                    tracing::info!(actor = "telegram", path = %saved, error = %e, "Image kept as received.");
                    saved
                }
                Err(e) => {
                    tracing::warn!(actor = "telegram", error = %e, "Image conversion did not finish.");
                    saved
                }
            };
            if let Err(e) = received_files::rebuild_index(&base) {
                tracing::warn!(actor = "telegram", error = %e, "Could not rebuild _index.yaml.");
            }
            Ok(path)
        };
        match downloaded.await {
            Ok(path) => {
                let workspace = self.args.paths.workspace();
                let shown = path.strip_prefix(&workspace).map_or_else(|_| path.to_string(), |p| p.to_string());
                let saved = path.file_name().unwrap_or(&name).to_owned();
                tracing::info!(actor = "telegram", chat = target.chat, path = %path, "Received a file.");
                Some(incoming_prompt("Telegram", &shown, mime_for(&path), &saved, Some(caption)))
            }
            Err(e) => {
                tracing::warn!(actor = "telegram", chat = target.chat, error = %e, "Could not download a received file.");
                let _ = send_plain(target, &render("files.download_failed", &[("name", &name)]), Vec::new()).await;
                None
            }
        }
    }

    /// Lists the stale messages of the batch just handled: one notice per chat with the
    /// person's own words; their entries are done once it is out (kept for the next start
    /// when it cannot be sent).
    async fn list_late(&mut self) {
        if self.late.is_empty() {
            return;
        }
        let late = std::mem::take(&mut self.late);
        let Some((lanes, _, _)) = self.bot() else { return };
        for ((chat, thread), items) in late {
            let target = Target { files: Arc::clone(&self.files), lanes: lanes.clone(), chat, thread, anchor: None };
            let notice = stale_notice_of(items.iter().map(|(words, _)| words.as_str()));
            if let Err(e) = rich_send(&target, &notice, None, None).await {
                tracing::warn!(actor = "telegram", chat, error = %e, "Could not list the stale messages; kept for the next start.");
                items.into_iter().filter_map(|(_, entry)| entry).for_each(InboxEntryGuard::keep);
            }
        }
    }

    /// At start: the messages left in the inbox by an earlier run. The one whose turn was
    /// running is not run again (the Orchestrator reports it as cut); immediate commands are
    /// dropped; messages older than an hour are listed to their chat in one notice; the others
    /// run again, in their order.
    async fn replay_inbox(&mut self) {
        let Some((lanes, _, _)) = self.bot() else { return };
        let plan = self.inbox.startup_plan(TELEGRAM_TRANSPORT, unix_now(), self.args.config.inbox_max_age_s());
        if plan.rerun.is_empty()
            && plan.cut.is_empty()
            && plan.stale.is_empty()
            && plan.dropped.is_empty()
            && plan.redeliver.is_empty()
        {
            return;
        }
        tracing::info!(
            actor = "telegram",
            rerun = plan.rerun.len(),
            cut = plan.cut.len(),
            stale = plan.stale.len(),
            dropped = plan.dropped.len(),
            "Messages left from the last run."
        );
        report_cut(&self.args.bus, &self.inbox, &plan.cut).await;
        for entry in &plan.dropped {
            self.inbox.done(entry.id);
        }
        for (entry, answer) in &plan.redeliver {
            let (Ok(chat), thread) =
                (i64::try_from(entry.chat_id.get()), entry.topic_id.and_then(|t| i32::try_from(t).ok()))
            else {
                continue;
            };
            let anchor = entry.reply_to.and_then(|r| i32::try_from(r).ok());
            let target = Target { files: Arc::clone(&self.files), lanes: lanes.clone(), chat, thread, anchor };
            if rich_send(&target, answer, anchor, None).await.is_ok() {
                self.inbox.done(entry.id);
            }
        }
        for ((_, chat, topic), entries) in &plan.stale {
            let Ok(chat) = i64::try_from(chat.get()) else { continue };
            let thread = topic.and_then(|t| i32::try_from(t).ok());
            let target = Target { files: Arc::clone(&self.files), lanes: lanes.clone(), chat, thread, anchor: None };
            if let Err(e) = rich_send(&target, &stale_notice(entries), None, None).await {
                tracing::warn!(actor = "telegram", chat, error = %e, "Could not list the messages that arrived while down.");
                continue;
            }
            entries.iter().for_each(|entry| self.inbox.done(entry.id));
        }
        for entry in plan.rerun {
            // The message goes through the pipeline again as it arrived (auth, commands,
            // prompt, files), keeping its inbox entry.
            let message =
                entry.message.clone().and_then(|raw| serde_json::from_value::<teloxide::types::Message>(raw).ok());
            let guard = InboxEntryGuard::new(self.inbox.clone(), entry.id);
            match message {
                Some(message) => self.message(&message, Some(guard)).await,
                None => {
                    tracing::warn!(
                        actor = "telegram",
                        entry = entry.id,
                        "An inbox entry without its message; dropped."
                    );
                    drop(guard);
                }
            }
        }
        self.list_late().await;
    }
}

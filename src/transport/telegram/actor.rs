//! The Telegram transport actor (`telegram` in the tree; Bus transport `tg`): logs in with
//! `getMe`, syncs the command menu, drops what arrived while it was down
//! (`deleteWebhook(drop_pending_updates)`), long-polls `getUpdates`, and for each update runs the
//! ingress pipeline of transports spec §2.3 (auth, group rules, dedup) before handing the text
//! to the Orchestrator; each message's outputs are answered by its own task
//! (`telegram_turn`). It also delivers Bus envelopes (unicast and broadcast), confirming only
//! what Telegram accepted, and carries out `/restart` with the restart sentinel.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use teloxide::Bot;
use teloxide::payloads::{DeleteMyCommandsSetters, DeleteWebhookSetters, GetMyCommandsSetters, GetUpdatesSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    AllowedUpdate, BotCommand, BotCommandScope, ChatKind as TgChatKind, MessageEntityKind, PublicChatKind, Update,
    UpdateKind,
};

use crate::chat::orchestrator::OrchestratorHandle;
use crate::chat::session::SessionOutput;
use crate::core::command::MENU;
use crate::core::config::model::Config;
use crate::core::config::resolve;
use crate::core::dedup::Dedup;
use crate::core::envelope::{DeliveryMode, Origin};
use crate::core::envelope_text;
use crate::core::file_browser::{self, BrowserAction};
use crate::core::html::escape;
use crate::core::inbox::{InboxEntry, stale_notice, without_nulls};
use crate::core::incoming_file::{MediaKind, incoming_prompt, mime_for, saved_name};
use crate::core::session_key::SessionKey;
use crate::core::state::chat_activity::ChatActivity;
use crate::core::text::render;
use crate::runtime::adapter::{AdapterHandle, AdapterMsg, Delivery, DeliveryError};
use crate::runtime::bus::BusHandle;
use crate::runtime::supervision::RestartRequest;
use crate::store::atomic::Loaded;
use crate::store::config_file::read_raw_config;
use crate::store::inbox_journal::SharedInbox;
use crate::store::paths::DuctorPaths;
use crate::store::state_files::StateFile;
use crate::store::{received_files, received_images};
use crate::transport::file_access::FileAccess;
use crate::transport::inbox_entry::{InboxEntryGuard, report_cut};
use crate::transport::telegram::ingress::{
    Admission, ChatKind, Entity, Gate, Incoming, admit, command_word, normalise_command, strip_mention,
    with_reply_context,
};
use crate::transport::telegram::lanes::{ApiOp, Lanes, TgError};
use crate::transport::telegram::turn::{QueueNotices, Target, TurnSettings, answer, rich_send, send_plain};

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
    },
    /// Log in and start polling (sent to itself at start; a failure crashes the actor so the
    /// supervisor retries with its backoff while the rest of the service runs).
    Connect,
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
    args: TelegramArgs,
    connection: Option<Connection>,
    dedup: Dedup,
    notices: QueueNotices,
    /// Broadcast envelopes partly delivered: who has them already.
    broadcast_done: HashMap<String, HashSet<i64>>,
    /// `chat_activity.json`.
    tracker: ChatActivity,
    /// Which files answers may send.
    files: Arc<FileAccess>,
    /// Forum topic names by (chat, topic), from the topics' service messages.
    topic_names: HashMap<(i64, i32), String>,
    /// The allow-lists, reloaded when `config.json` changes.
    allow: AllowLists,
    /// Messages received and not yet answered (`inbox.jsonl`).
    inbox: SharedInbox,
    /// When `config.json` was last read.
    config_stamp: Option<std::time::SystemTime>,
}

/// Who may talk to the bot; hot-reloadable (transports spec §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowLists {
    users: Vec<i64>,
    groups: Vec<i64>,
    channels: Vec<i64>,
}

impl AllowLists {
    fn of(config: &Config) -> Self {
        Self {
            users: config.allowed_user_ids.clone(),
            groups: config.allowed_group_ids.clone(),
            channels: config.allowed_channel_ids.clone(),
        }
    }
}

/// A logged-in bot.
struct Connection {
    lanes: Lanes,
    bot_id: u64,
    username: String,
    poller: tokio::task::JoinHandle<()>,
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
            topic_names: HashMap::new(),
            files: FileAccess::from_config(&args.config, &args.paths),
            args: args.clone(),
            connection: None,
            dedup: Dedup::default(),
            notices: QueueNotices::default(),
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
            TelegramMsg::Connect => {
                state.connection = Some(connect(&state.args, &myself, &state.inbox).await?);
                myself.send_interval(GROUP_AUDIT_EVERY, || TelegramMsg::AuditGroups);
                state.audit_groups().await;
                state.replay_inbox().await;
            }
            TelegramMsg::AuditGroups => state.audit_groups().await,
            TelegramMsg::ReloadAllowLists => state.reload_allow_lists().await,
            TelegramMsg::Updates { updates, recorded } => {
                for (update, entry) in updates {
                    let entry = entry.map(|id| InboxEntryGuard::new(state.inbox.clone(), id));
                    match update.kind {
                        UpdateKind::Message(message) => state.message(&message, entry).await,
                        UpdateKind::CallbackQuery(query) => state.callback(&query).await,
                        UpdateKind::MyChatMember(change) => state.membership(&change).await,
                        _ => {}
                    }
                }
                let _ = recorded.send(());
            }
            TelegramMsg::Adapter(AdapterMsg::Deliver(delivery)) => state.deliver(delivery).await,
        }
        Ok(())
    }
}

/// Logs in, syncs the menu, sends the restart notice, drops the updates that arrived while
/// ductor was down, takes over the polling slot and starts polling.
async fn connect(
    args: &TelegramArgs,
    myself: &ActorRef<TelegramMsg>,
    inbox: &SharedInbox,
) -> Result<Connection, ActorProcessingErr> {
    let url = args.api_base.parse().map_err(|e| format!("telegram API base {:?} is not a URL: {e}", args.api_base))?;
    let bot = Bot::new(args.config.telegram_token.clone()).set_api_url(url);
    let me = bot.get_me().await.map_err(|e| match e {
        teloxide::RequestError::Api(teloxide::ApiError::InvalidToken) => format!(
            "Telegram login (getMe at {}) failed: the bot token was refused; check telegram_token in config.json",
            args.api_base
        ),
        e => format!("Telegram login (getMe at {}) failed: {e}", args.api_base),
    })?;
    let username = me.username.clone().unwrap_or_default();
    tracing::info!(actor = "telegram", bot = %username, api = %args.api_base, "Logged in to Telegram.");
    let lanes = Lanes::new(bot.clone());
    sync_commands(&bot).await;
    deliver_restart_sentinel(&lanes, args).await;
    if let Err(e) = bot.delete_webhook().drop_pending_updates(true).await {
        tracing::warn!(actor = "telegram", error = %e, "deleteWebhook failed; old updates may arrive.");
    }
    let mut offset = 0;
    match bot.get_updates().offset(-1).timeout(0).await {
        Ok(updates) => {
            if let Some(last) = updates.last() {
                offset = i32::try_from(last.id.0).unwrap_or(i32::MAX).saturating_add(1);
            }
        }
        Err(e) => tracing::debug!(actor = "telegram", error = %e, "Could not take over the polling slot."),
    }
    let poller = tokio::spawn(poll(bot, offset, myself.clone(), inbox.clone()));
    Ok(Connection { lanes, bot_id: me.id.0, username, poller })
}

/// Long-polls `getUpdates` and hands each update to the actor, in order. Errors back off
/// 1 s → ×1.3 → 5 s and never stop the polling.
async fn poll(bot: Bot, mut offset: i32, actor: ActorRef<TelegramMsg>, inbox: SharedInbox) {
    let mut backoff = Duration::from_secs(1);
    let env = crate::store::inbox_journal::CRASH_BEFORE_CONFIRM_ENV;
    let crash_before_confirm = std::env::var_os(env).is_some_and(|v| v == "1");
    loop {
        let request = bot.get_updates().offset(offset).timeout(POLL_TIMEOUT_S).allowed_updates([
            AllowedUpdate::Message,
            AllowedUpdate::CallbackQuery,
            AllowedUpdate::MyChatMember,
        ]);
        match request.await {
            Ok(updates) => {
                backoff = Duration::from_secs(1);
                if updates.is_empty() {
                    continue;
                }
                let next = updates.iter().map(|u| i32::try_from(u.id.0).unwrap_or(i32::MAX).saturating_add(1)).max();
                let (batch, entries) = inbox_entries(&inbox, updates);
                let (recorded, done) = tokio::sync::oneshot::channel();
                if actor.cast(TelegramMsg::Updates { updates: batch, recorded }).is_err() {
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
            Err(e) => {
                tracing::warn!(actor = "telegram", error = %e, retry_in_ms = backoff.as_millis() as u64, "getUpdates failed.");
                let jitter = 0.9 + rand::random::<f64>() * 0.2;
                tokio::time::sleep(backoff.mul_f64(jitter)).await;
                backoff = backoff.mul_f64(1.3).min(Duration::from_secs(5));
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
                at: unix_now(),
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

/// `restart-sentinel.json` left by `/restart`: its message goes to its chat, the file is removed.
async fn deliver_restart_sentinel(lanes: &Lanes, args: &TelegramArgs) {
    let path = args.paths.restart_sentinel();
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    let sentinel = serde_json::from_str::<serde_json::Value>(&text).ok();
    // A sentinel of another transport is left for it.
    if sentinel
        .as_ref()
        .and_then(|s| s.get("transport"))
        .and_then(|t| t.as_str())
        .is_some_and(|t| t != TELEGRAM_TRANSPORT)
    {
        return;
    }
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(actor = "telegram", path = %path, error = %e, "Could not remove the restart sentinel.");
    }
    let Some(sentinel) = sentinel else {
        tracing::warn!(actor = "telegram", path = %path, "Unreadable restart sentinel ignored.");
        return;
    };
    let chat = sentinel.get("chat_id").and_then(serde_json::Value::as_i64).unwrap_or(0);
    let message = sentinel.get("message").and_then(|m| m.as_str()).unwrap_or_default();
    if chat != 0 && !message.is_empty() {
        let target = Target {
            files: FileAccess::from_config(&args.config, &args.paths),
            lanes: lanes.clone(),
            chat,
            thread: None,
            anchor: None,
        };
        if let Err(e) = rich_send(&target, message, None, None).await {
            tracing::warn!(actor = "telegram", chat, error = %e, "Could not send the restart notice.");
        }
    }
}

fn chat_kind(kind: &TgChatKind) -> ChatKind {
    match kind {
        TgChatKind::Private(_) => ChatKind::Private,
        TgChatKind::Public(public) => match public.kind {
            PublicChatKind::Channel(_) => ChatKind::Channel,
            _ => ChatKind::Group,
        },
    }
}

fn chat_type(chat: &teloxide::types::Chat) -> &'static str {
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
fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// The file browser's view of `<home>/<rel>`; "not found" for anything outside the home or
/// not a folder.
fn browse(home: &camino::Utf8Path, rel: &str) -> crate::core::selector::Menu {
    if !file_browser::is_inside(rel) {
        return file_browser::not_found();
    }
    let folder = home.join(rel);
    let inside = match (std::fs::canonicalize(&folder), std::fs::canonicalize(home)) {
        (Ok(folder), Ok(home)) => folder.starts_with(home),
        _ => false,
    };
    let Ok(entries) = folder.read_dir_utf8() else { return file_browser::not_found() };
    if !inside {
        return file_browser::not_found();
    }
    let entries: Vec<file_browser::Entry> = entries
        .filter_map(Result::ok)
        .map(|e| file_browser::Entry { name: e.file_name().to_owned(), is_dir: e.path().is_dir() })
        .collect();
    file_browser::menu(rel, &entries)
}

/// The links of `/info`: the Python original this build replaces, and its release history.
const INFO_ORIGINAL: &str = "https://pypi.org/project/ductor/";
const INFO_CHANGELOG: &str = "https://pypi.org/project/ductor/#history";

/// How often `config.json` is checked for new allow-lists.
const CONFIG_POLL: Duration = Duration::from_secs(3);

/// How often tracked groups are checked against the allow-lists.
const GROUP_AUDIT_EVERY: Duration = Duration::from_secs(24 * 3600);

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

fn help_text() -> String {
    let describe = |cmd: &str| {
        let text = MENU.iter().find(|(c, _)| *c == cmd).map_or("", |(_, d)| *d);
        let text = match cmd {
            "stop_all" => "Stop every agent",
            "where" => "Chats I am in",
            "leave" => "Leave a chat",
            _ => text,
        };
        format!("/{cmd} -- {text}")
    };
    let groups: [(&str, &[&str]); 5] = [
        ("Daily", &["new", "reset", "stop", "interrupt", "stop_all", "model", "status", "memory"]),
        ("Automation", &["session", "tasks", "cron"]),
        ("Multi-agent", &["agent_commands"]),
        ("Browse", &["where", "leave", "showfiles", "info", "help"]),
        ("Maintenance", &["diagnose", "upgrade", "restart"]),
    ];
    let mut text = String::from("**ductor commands**\n---");
    for (title, commands) in groups {
        text.push_str(&format!("\n\n**{title}**"));
        for cmd in commands {
            text.push('\n');
            text.push_str(&describe(cmd));
        }
    }
    text.push_str("\n---\nAnything else you write goes to the agent.");
    text
}

impl TelegramState {
    /// The logged-in bot: (lanes, bot id, username); `None` before login.
    fn bot(&self) -> Option<(Lanes, u64, String)> {
        self.connection.as_ref().map(|c| (c.lanes.clone(), c.bot_id, c.username.clone()))
    }

    fn gate<'a>(&'a self, bot_id: u64, username: &'a str) -> Gate<'a> {
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
        let outputs = self.args.orchestrator.message_with_start(key, &text, on_start);
        let settings = TurnSettings::from_config(&self.args.config);
        tokio::spawn(answer(target, settings, self.notices.clone(), outputs, Some(slot), guard));
    }

    /// Commands the transport answers itself; `true` when `text` was one.
    async fn transport_command(&mut self, text: &str, target: &Target, message: &teloxide::types::Message) -> bool {
        let Some(word) = command_word(text) else { return false };
        let reply = match word.as_str() {
            "/help" => help_text(),
            "/start" => {
                let name = message.from.as_ref().map_or("there", |u| u.first_name.as_str());
                let welcome = render("welcome.text", &[("name", name), ("model", &self.args.config.model)]);
                let keyboard: Vec<Vec<crate::core::selector::Button>> = (1..=3)
                    .map(|n| {
                        vec![crate::core::selector::Button::callback(
                            &render(&format!("welcome.button_{n}"), &[]),
                            format!("w:{n}"),
                        )]
                    })
                    .collect();
                if let Err(e) = rich_send(target, &welcome, target.anchor, Some(keyboard)).await {
                    tracing::warn!(actor = "telegram", chat = target.chat, error = %e, "Could not send the welcome.");
                }
                return true;
            }
            "/info" => {
                let text = render("info.text", &[("version", env!("CARGO_PKG_VERSION"))]);
                let keyboard = vec![
                    vec![crate::core::selector::Button::link("Releases", INFO_CHANGELOG)],
                    vec![crate::core::selector::Button::link("PyPI (the original)", INFO_ORIGINAL)],
                ];
                if let Err(e) = rich_send(target, &text, target.anchor, Some(keyboard)).await {
                    tracing::warn!(actor = "telegram", chat = target.chat, error = %e, "Could not answer /info.");
                }
                return true;
            }
            "/agent_commands" => "**Multi-agent**\n/agents -- list the agents\n/agent_start <name>\n/agent_stop <name>\n/agent_restart <name>".to_owned(),
            "/where" => self.tracker.where_text(),
            "/new" if text.split_whitespace().nth(1).is_some_and(|a| a.starts_with('@')) => self.new_in_topic(text, target).await,
            "/leave" => self.leave(text).await,
            "/showfiles" => {
                let menu = browse(self.args.paths.home(), "");
                if let Err(e) = rich_send(target, &menu.text, target.anchor, Some(menu.buttons)).await {
                    tracing::warn!(actor = "telegram", chat = target.chat, error = %e, "Could not send the file browser.");
                }
                return true;
            }
            "/restart" => {
                self.restart(target).await;
                return true;
            }
            _ => return false,
        };
        if let Err(e) = rich_send(target, &reply, target.anchor, None).await {
            tracing::warn!(actor = "telegram", chat = target.chat, error = %e, "Could not answer a command.");
        }
        true
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

    /// `/new @<topic name>`: starts that forum topic's session over.
    async fn new_in_topic(&self, text: &str, target: &Target) -> String {
        let wanted = text.split_once('@').map_or("", |(_, name)| name).trim();
        let found = self
            .topic_names
            .iter()
            .find(|((chat, _), name)| *chat == target.chat && name.eq_ignore_ascii_case(wanted))
            .map(|((_, topic), name)| (*topic, name.clone()));
        let Some((topic, name)) = found else { return render("new.topic_not_found", &[("name", wanted)]) };
        let key = SessionKey::new(TELEGRAM_TRANSPORT, target.chat, Some(i64::from(topic)));
        let mut outputs = self.args.orchestrator.message(key, "/new");
        while outputs.recv().await.is_some() {}
        let provider = crate::provider::provider_for(&self.args.config.model, &[]).display_name();
        render("new.topic_reset", &[("name", &name), ("provider", provider)])
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
    }

    /// Takes new allow-lists from `config.json` when it changed and still validates; a new
    /// group list triggers the group audit. A broken file keeps the lists in force.
    async fn reload_allow_lists(&mut self) {
        let path = self.args.paths.config_file();
        let stamp = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if stamp.is_none() || stamp == self.config_stamp {
            return;
        }
        self.config_stamp = stamp;
        let config = match read_raw_config(&path).map(resolve) {
            Ok(Ok(resolved)) => resolved.config,
            Ok(Err(problem)) => {
                tracing::warn!(actor = "telegram", problem = %problem, "config.json changed but is invalid; allow-lists kept.");
                return;
            }
            Err(e) => {
                tracing::warn!(actor = "telegram", error = %e, "config.json changed but cannot be read; allow-lists kept.");
                return;
            }
        };
        let fresh = AllowLists::of(&config);
        if fresh == self.allow {
            return;
        }
        let groups_changed = fresh.groups != self.allow.groups || fresh.channels != self.allow.channels;
        tracing::info!(actor = "telegram", users = ?fresh.users, groups = ?fresh.groups, "Allow-lists reloaded.");
        self.allow = fresh;
        if groups_changed {
            self.audit_groups().await;
        }
    }

    /// Leaves every `active` group or channel that is not (or no longer) allowed.
    async fn audit_groups(&mut self) {
        let Some((lanes, _, _)) = self.bot() else { return };
        let allow = self.allow.clone();
        let stale: Vec<i64> = self
            .tracker
            .records
            .values()
            .filter(|r| r.status == "active" && r.chat_type != "private")
            .filter_map(|r| i64::try_from(r.chat_id.get()).ok().map(|id| (id, r.chat_type.clone())))
            .filter(|(id, kind)| {
                let allowed = if kind == "channel" { &allow.channels } else { &allow.groups };
                !allowed.contains(id)
            })
            .map(|(id, _)| id)
            .collect();
        for chat in stale {
            tracing::info!(actor = "telegram", chat, "Leaving a chat that is no longer allowed.");
            if let Err(e) = lanes.bot().leave_chat(teloxide::types::ChatId(chat)).await {
                tracing::debug!(actor = "telegram", chat, error = %e, "leaveChat failed.");
            }
            self.tracker.gone(chat, "auto_left", &now_iso());
            self.save_tracker();
        }
    }

    fn save_tracker(&self) {
        if let Err(e) = self.tracker.save(&self.args.paths) {
            tracing::warn!(actor = "telegram", error = %e, "Could not save chat_activity.json.");
        }
    }

    /// `/leave <chat id>`.
    async fn leave(&mut self, text: &str) -> String {
        let Some(argument) = text.split_whitespace().nth(1) else { return render("leave.usage", &[]) };
        let Ok(chat) = argument.parse::<i64>() else { return render("leave.invalid", &[("id", argument)]) };
        let Some((lanes, _, _)) = self.bot() else { return render("leave.failed", &[("error", "not connected")]) };
        match lanes.bot().leave_chat(teloxide::types::ChatId(chat)).await {
            Ok(_) => {
                self.tracker.gone(chat, "left", &now_iso());
                self.save_tracker();
                render("leave.done", &[("id", argument)])
            }
            Err(e) => render("leave.failed", &[("error", &e.to_string())]),
        }
    }

    /// The bot was added to or removed from a chat (transports spec §2.12).
    async fn membership(&mut self, change: &teloxide::types::ChatMemberUpdated) {
        let Some((lanes, _, _)) = self.bot() else { return };
        let chat = change.chat.id.0;
        let (was, is) = (change.old_chat_member.kind.is_present(), change.new_chat_member.kind.is_present());
        let title = change.chat.title().unwrap_or_default();
        match (was, is) {
            (false, true) => {
                let channel = change.chat.is_channel();
                let allowed =
                    if channel { self.allow.channels.contains(&chat) } else { self.allow.groups.contains(&chat) };
                self.tracker.joined(chat, chat_type(&change.chat), title, allowed, &now_iso());
                let target =
                    Target { files: Arc::clone(&self.files), lanes: lanes.clone(), chat, thread: None, anchor: None };
                if allowed {
                    tracing::info!(actor = "telegram", chat, "Added to an allowed chat.");
                    self.join_notification(&target).await;
                } else {
                    tracing::info!(actor = "telegram", chat, "Added to a chat that is not allowed; leaving.");
                    let key = if channel { "telegram.channel_not_whitelisted" } else { "telegram.group_rejected" };
                    let _ = rich_send(&target, &render(key, &[("id", &chat.to_string())]), None, None).await;
                    if let Err(e) = lanes.bot().leave_chat(teloxide::types::ChatId(chat)).await {
                        tracing::warn!(actor = "telegram", chat, error = %e, "leaveChat failed.");
                    }
                    self.tracker.gone(chat, "auto_left", &now_iso());
                }
                self.save_tracker();
            }
            (true, false) => {
                let status = if change.new_chat_member.kind.is_banned() { "kicked" } else { "left" };
                self.tracker.gone(chat, status, &now_iso());
                self.save_tracker();
            }
            _ => {}
        }
    }

    /// `workspace/JOIN_NOTIFICATION.md`, when present, is sent to a chat the bot joined and pinned.
    async fn join_notification(&self, target: &Target) {
        let path = self.args.paths.workspace().join("JOIN_NOTIFICATION.md");
        let Ok(text) = std::fs::read_to_string(&path) else { return };
        if text.trim().is_empty() {
            return;
        }
        if let Ok(ids) = rich_send(target, &text, None, None).await
            && let Some(last) = ids.last()
        {
            let pin = target
                .lanes
                .bot()
                .pin_chat_message(teloxide::types::ChatId(target.chat), teloxide::types::MessageId(*last));
            let _ = teloxide::payloads::PinChatMessageSetters::disable_notification(pin, true).await;
        }
    }

    async fn restart(&mut self, target: &Target) {
        let sentinel = serde_json::json!({
            "chat_id": target.chat,
            "message": render("startup.restart_default", &[]),
            "timestamp": crate::core::state::timestamp_now(),
        });
        if let Err(e) = crate::store::atomic::write_json_atomic(&self.args.paths.restart_sentinel(), &sentinel) {
            tracing::warn!(actor = "telegram", error = %e, "Could not write the restart sentinel.");
        }
        let reply = format!("{}\n---\n{}", render("startup.restart_header", &[]), render("startup.restart_body", &[]));
        let _ = rich_send(target, &reply, target.anchor, None).await;
        (self.args.restart)(format!("/restart from chat {}", target.chat));
    }

    async fn callback(&mut self, query: &teloxide::types::CallbackQuery) {
        let Some((lanes, bot_id, username)) = self.bot() else { return };
        let _ = lanes.bot().answer_callback_query(query.id.clone()).await;
        let (Some(data), Some(message)) =
            (query.data.as_deref(), query.message.as_ref().and_then(|m| m.regular_message()))
        else {
            return;
        };
        let chat = message.chat.id.0;
        let incoming = Incoming {
            chat_id: chat,
            chat_kind: chat_kind(&message.chat.kind),
            from_id: Some(query.from.id.0),
            text: "",
            entities: Vec::new(),
            reply_to_author: None,
        };
        let gate = Gate { mention_only: false, ..self.gate(bot_id, &username) };
        if admit(&incoming, &gate) != Admission::Accepted {
            tracing::debug!(actor = "telegram", chat, "Button press from someone not allowed dropped.");
            return;
        }
        let thread = message.is_topic_message.then_some(message.thread_id).flatten().map(|t| t.0.0);
        let key = SessionKey::new(TELEGRAM_TRANSPORT, chat, thread.map(i64::from));
        let target =
            Target { files: Arc::clone(&self.files), lanes: lanes.clone(), chat, thread, anchor: Some(message.id.0) };
        if let Some(entry) = data.strip_prefix("mq:") {
            if let Ok(entry) = entry.parse::<u64>() {
                self.notices.cancel(entry);
            }
            return;
        }
        if let Some(action) = file_browser::action(data) {
            match action {
                BrowserAction::Open(rel) => {
                    let menu = browse(self.args.paths.home(), &rel);
                    let html = crate::transport::telegram::html::markdown_to_html(&menu.text);
                    let op =
                        ApiOp::Edit { message_id: message.id.0, text: html, html: true, keyboard: Some(menu.buttons) };
                    match lanes.call(chat, op).await {
                        Ok(_) | Err(TgError::NotModified) => {}
                        Err(e) => {
                            tracing::warn!(actor = "telegram", chat, error = %e, "Could not update the file browser.")
                        }
                    }
                    return;
                }
                BrowserAction::SendFrom(rel) => {
                    lanes.post(chat, ApiOp::EditKeyboard { message_id: message.id.0, keyboard: Vec::new() });
                    let dir = if file_browser::is_inside(&rel) {
                        self.args.paths.home().join(&rel)
                    } else {
                        self.args.paths.home().to_owned()
                    };
                    let prompt = render("file_browser.file_request_prompt", &[("dir", dir.as_str())]);
                    let slot = target.lanes.reserve(chat);
                    let outputs = self.args.orchestrator.message(key, &prompt);
                    let settings = TurnSettings::from_config(&self.args.config);
                    tokio::spawn(answer(target, settings, self.notices.clone(), outputs, Some(slot), None));
                    return;
                }
            }
        }
        if ["ms:", "nsc:", "tsc:", "crn:"].iter().any(|p| data.starts_with(p)) {
            let mut outputs = self.args.orchestrator.callback(key, data);
            let message_id = message.id.0;
            tokio::spawn(async move {
                while let Some(output) = outputs.recv().await {
                    let (text, keyboard) = match output {
                        SessionOutput::Menu(menu) => (menu.text, menu.buttons),
                        SessionOutput::Notice(text) => (text, Vec::new()),
                        _ => continue,
                    };
                    let html = crate::transport::telegram::html::markdown_to_html(&text);
                    let op = ApiOp::Edit { message_id, text: html, html: true, keyboard: Some(keyboard) };
                    match target.lanes.call(target.chat, op).await {
                        Ok(_) | Err(TgError::NotModified) => {}
                        Err(e) => {
                            tracing::warn!(actor = "telegram", chat = target.chat, error = %e, "Could not update a menu.")
                        }
                    }
                }
            });
            return;
        }
        let prompt = if let Some(n) = data.strip_prefix("w:") {
            if !matches!(n, "1" | "2" | "3") {
                return;
            }
            render(&format!("welcome.prompt_{n}"), &[])
        } else if let Some(rest) = data.strip_prefix("ns:") {
            match rest.split_once(':') {
                Some((session, label)) => format!("@{session} {label}"),
                None => return,
            }
        } else {
            // A free-form answer button: show the choice, remove the keyboard, run it.
            let shown = message.text().map(escape).unwrap_or_default();
            let op = if shown.is_empty() {
                ApiOp::EditKeyboard { message_id: message.id.0, keyboard: Vec::new() }
            } else {
                ApiOp::Edit {
                    message_id: message.id.0,
                    text: format!("{shown}\n\n<i>[USER ANSWER] {}</i>", escape(data)),
                    html: true,
                    keyboard: Some(Vec::new()),
                }
            };
            if let Err(e) = lanes.call(chat, op).await {
                tracing::debug!(actor = "telegram", chat, error = %e, "Could not mark the answer; removing the keyboard.");
                lanes.post(chat, ApiOp::EditKeyboard { message_id: message.id.0, keyboard: Vec::new() });
            }
            data.to_owned()
        };
        let slot = target.lanes.reserve(chat);
        let outputs = self.args.orchestrator.message(key, &prompt);
        let settings = TurnSettings::from_config(&self.args.config);
        tokio::spawn(answer(target, settings, self.notices.clone(), outputs, Some(slot), None));
    }

    async fn deliver(&mut self, delivery: Delivery) {
        let Delivery { envelope, mode, receipt } = delivery;
        let Some((lanes, _, _)) = self.bot() else {
            receipt.fail(DeliveryError::Retryable("Telegram is not connected yet".to_owned()));
            return;
        };
        match mode {
            DeliveryMode::Unicast => {
                let Some(text) = envelope_text::unicast_text(&envelope) else {
                    receipt.confirm();
                    return;
                };
                let chat = envelope.chat_id.get();
                let Ok(chat) = i64::try_from(chat) else {
                    receipt.fail(DeliveryError::Permanent(format!("chat id {chat} is not a Telegram chat")));
                    return;
                };
                let thread = envelope.topic_id.or(envelope.thread_id).and_then(|t| i32::try_from(t).ok());
                let target =
                    Target { files: Arc::clone(&self.files), lanes: lanes.clone(), chat, thread, anchor: None };
                let reply_to = envelope.reply_to_message_id.and_then(|r| i32::try_from(r).ok());
                let keyboard = envelope_text::keyboard(&envelope, &text);
                match rich_send(&target, &text, reply_to, Some(keyboard)).await {
                    Ok(_) => receipt.confirm(),
                    Err(e) => {
                        let header = match envelope.origin {
                            Origin::Cron => Some("Cron delivery failed"),
                            Origin::Heartbeat => Some("Heartbeat delivery failed"),
                            _ => None,
                        };
                        let owner = self.allow.users.first().copied().filter(|owner| *owner != chat);
                        match (header, owner, delivery_error(&e)) {
                            // The target chat refuses it for good: its result goes to the owner.
                            (Some(header), Some(owner), DeliveryError::Permanent(why)) => {
                                let topic = envelope.topic_id.map(|t| format!(" / topic {t}")).unwrap_or_default();
                                let notice = format!("**{header}**\nTarget: chat {chat}{topic} ({why})\n---\n{text}");
                                let fallback = Target { chat: owner, thread: None, ..target.clone() };
                                match rich_send(&fallback, &notice, None, None).await {
                                    Ok(_) => receipt.confirm(),
                                    Err(e) => receipt.fail(delivery_error(&e)),
                                }
                            }
                            (_, _, error) => receipt.fail(error),
                        }
                    }
                }
            }
            DeliveryMode::Broadcast => {
                let Some(text) = envelope_text::broadcast_text(&envelope) else {
                    tracing::debug!(actor = "telegram", origin = ?envelope.origin, "No broadcast form for this origin; dropped.");
                    receipt.confirm();
                    return;
                };
                let id = envelope.envelope_id.as_str().to_owned();
                let mut retry = None;
                for user in self.allow.users.clone() {
                    if self.broadcast_done.get(&id).is_some_and(|done| done.contains(&user)) {
                        continue;
                    }
                    let target = Target {
                        files: Arc::clone(&self.files),
                        lanes: lanes.clone(),
                        chat: user,
                        thread: None,
                        anchor: None,
                    };
                    match rich_send(&target, &text, None, None).await {
                        Ok(_) => {
                            self.broadcast_done.entry(id.clone()).or_default().insert(user);
                        }
                        Err(e) => {
                            tracing::warn!(actor = "telegram", chat = user, error = %e, "Broadcast to a user failed.");
                            match delivery_error(&e) {
                                DeliveryError::Permanent(_) => {
                                    self.broadcast_done.entry(id.clone()).or_default().insert(user);
                                }
                                retryable => retry = Some(retryable),
                            }
                        }
                    }
                }
                match retry {
                    Some(error) => receipt.fail(error),
                    None => {
                        self.broadcast_done.remove(&id);
                        receipt.confirm();
                    }
                }
            }
        }
    }
}

/// Whether the Bus should try again.
fn delivery_error(error: &TgError) -> DeliveryError {
    match error {
        TgError::Forbidden(_) | TgError::BadRequest(_) | TgError::BadHtml(_) | TgError::NotModified => {
            DeliveryError::Permanent(error.to_string())
        }
        TgError::RateLimited(_) | TgError::Network(_) | TgError::Other(_) => {
            DeliveryError::Retryable(error.to_string())
        }
    }
}

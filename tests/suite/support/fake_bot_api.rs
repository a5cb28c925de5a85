//! A fake Telegram Bot API server on 127.0.0.1 for the end-to-end tests and the benchmark: the
//! real teloxide client talks to it over HTTP (`{base}/bot{token}/{Method}`, JSON, form or
//! multipart bodies, method names in any case). It keeps chats, message ids, edits, reactions,
//! uploaded files and every call made; long-polls `getUpdates` with Telegram's offset rules;
//! checks HTML like Telegram does (unknown or unclosed tags → 400 "can't parse entities");
//! and can be told to fail a method (429 `retry_after`, "message is not modified", 403, any
//! 400) or to answer slowly. It can be switched unreachable (`set_reachable(false)`): its
//! connections are cut and new ones closed at once, as when the network or Telegram is down.
//! The test side injects updates as a person would send them.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, oneshot};
use warp::Filter;
use warp::http::StatusCode;

/// The bot's own user id.
pub const BOT_ID: u64 = 4242;
/// The bot's username.
pub const BOT_USERNAME: &str = "DuctorTestBot";

/// One recorded Bot API call.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// Canonical method name (`sendMessage`).
    pub method: String,
    /// Its parameters (multipart files as `{"filename", "size"}`).
    pub params: Value,
    /// When it arrived.
    pub at: Instant,
}

/// A failure to answer a method with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `parameters.retry_after`.
    RetryAfter(u32),
    /// 400 "message is not modified".
    NotModified,
    /// 400 "can't parse entities".
    CantParseEntities,
    /// 403 "bot was blocked by the user".
    Forbidden,
    /// 400 with this description.
    BadRequest(String),
}

/// A message as the chat shows it now.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Its id.
    pub message_id: i64,
    /// Sent by the bot.
    pub from_bot: bool,
    /// Current text (or caption) as the bot sent it (HTML included).
    pub text: String,
    /// What the chat shows (tags removed, entities decoded).
    pub visible: String,
    /// `HTML` when sent so.
    pub parse_mode: Option<String>,
    /// Current inline keyboard (`null` when none).
    pub reply_markup: Value,
    /// Forum topic.
    pub thread_id: Option<i64>,
    /// The message it replies to.
    pub reply_to: Option<i64>,
    /// Deleted.
    pub deleted: bool,
    /// Current reactions (emoji).
    pub reactions: Vec<String>,
    /// Times edited.
    pub edits: u32,
    /// `photo` / `document` for uploads.
    pub media: Option<String>,
}

#[derive(Default)]
struct State {
    next_update_id: i64,
    pending: VecDeque<Value>,
    calls: Vec<ApiCall>,
    chats: HashMap<i64, Value>,
    messages: HashMap<i64, Vec<StoredMessage>>,
    next_message_id: HashMap<i64, i64>,
    failures: Vec<(String, Failure, u32)>,
    delays: HashMap<String, Duration>,
    commands: HashMap<String, Value>,
    files: HashMap<String, (String, Vec<u8>)>,
    uploads: Vec<(String, String, Vec<u8>)>,
    next_callback: u64,
    webhook_drops: u32,
}

struct Inner {
    token: String,
    /// Whether clients get through (the front door below the HTTP server).
    reachable: std::sync::atomic::AtomicBool,
    /// The open client connections, cut when it becomes unreachable.
    links: Mutex<Vec<tokio::task::AbortHandle>>,
    state: Mutex<State>,
    arrived: Notify,
    called: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running server.
pub struct FakeBotApi {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A person talking to the bot.
pub fn user(id: u64, first_name: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": first_name})
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "Ductor", "username": BOT_USERNAME})
}

impl FakeBotApi {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        Self::start_on(token, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on this address.
    pub async fn start_on(token: &str, addr: SocketAddr) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            token: token.to_owned(),
            state: Mutex::new(State { next_update_id: 1, next_callback: 1, ..State::default() }),
            reachable: std::sync::atomic::AtomicBool::new(true),
            links: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            called: Notify::new(),
        });
        let routes = routes(Arc::clone(&inner));
        // The HTTP server on a port of its own; clients come through the front door on `addr`,
        // which can be shut (see `set_reachable`).
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let server = listener.local_addr()?;
        let door = tokio::net::TcpListener::bind(addr).await?;
        let addr = door.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let front = tokio::spawn(front_door(door, server, Arc::clone(&inner)));
        tokio::spawn(async move {
            warp::serve(routes)
                .incoming(listener)
                .graceful(async move {
                    let _ = stopped.await;
                    front.abort();
                })
                .run()
                .await;
        });
        Ok(Self { inner, addr, stop: Some(stop) })
    }

    /// The API base for teloxide (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bot token.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// Switches the server unreachable (open connections are cut, new ones closed at once —
    /// what a client sees when the network or Telegram is down) or reachable again.
    pub fn set_reachable(&self, reachable: bool) {
        self.inner.reachable.store(reachable, std::sync::atomic::Ordering::SeqCst);
        if !reachable {
            let links = std::mem::take(&mut *self.inner.links.lock().unwrap_or_else(PoisonError::into_inner));
            links.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }

    // ---- the person's side ----

    /// Queues an update (`{"message": {...}}` and the like); returns its `update_id`.
    pub fn inject_update(&self, mut kind: Value) -> i64 {
        let mut state = self.inner.lock();
        let id = state.next_update_id;
        state.next_update_id += 1;
        if let Some(map) = kind.as_object_mut() {
            map.insert("update_id".to_owned(), json!(id));
        }
        state.pending.push_back(kind);
        drop(state);
        self.inner.arrived.notify_waiters();
        id
    }

    fn chat_json(state: &mut State, chat_id: i64, title: Option<&str>, is_forum: bool) -> Value {
        if let Some(chat) = state.chats.get(&chat_id) {
            return chat.clone();
        }
        let chat = if chat_id > 0 {
            json!({"id": chat_id, "type": "private", "first_name": "Alice"})
        } else {
            let mut chat = json!({"id": chat_id, "type": "supergroup", "title": title.unwrap_or("Test group")});
            if is_forum {
                chat["is_forum"] = json!(true);
            }
            chat
        };
        state.chats.insert(chat_id, chat.clone());
        chat
    }

    fn next_id(state: &mut State, chat_id: i64) -> i64 {
        let next = state.next_message_id.entry(chat_id).or_insert(1);
        let id = *next;
        *next += 1;
        id
    }

    /// A text message from `from` in `chat_id` (a `bot_command` entity when it starts with
    /// `/`, `mention` entities for `@names`); returns its message id.
    pub fn send_text(&self, chat_id: i64, from: u64, text: &str) -> i64 {
        self.send_message(chat_id, from, text, None, None)
    }

    /// The same inside forum topic `thread`, optionally replying to a message.
    pub fn send_message(&self, chat_id: i64, from: u64, text: &str, thread: Option<i64>, reply_to: Option<i64>) -> i64 {
        let (message, id) = self.user_message(chat_id, from, thread, reply_to, |m| {
            m.insert("text".to_owned(), json!(text));
            let entities = entities_of(text);
            if !entities.is_empty() {
                m.insert("entities".to_owned(), Value::Array(entities));
            }
        });
        self.inject_update(json!({"message": message}));
        id
    }

    /// A text message the person sent `ago` seconds before now (its `date`), e.g. one that
    /// waited at Telegram while the bot was away; returns its message id.
    pub fn send_text_sent_ago(&self, chat_id: i64, from: u64, text: &str, ago: u64) -> i64 {
        let (message, id) = self.user_message(chat_id, from, None, None, |m| {
            m.insert("text".to_owned(), json!(text));
            m.insert("date".to_owned(), json!(now_s().saturating_sub(ago)));
        });
        self.inject_update(json!({"message": message}));
        id
    }

    /// Builds a message from a person (stored in the chat), then lets `fill` add its content.
    pub fn user_message(
        &self,
        chat_id: i64,
        from: u64,
        thread: Option<i64>,
        reply_to: Option<i64>,
        fill: impl FnOnce(&mut Map<String, Value>),
    ) -> (Value, i64) {
        let mut state = self.inner.lock();
        let chat = Self::chat_json(&mut state, chat_id, None, thread.is_some());
        let id = Self::next_id(&mut state, chat_id);
        let mut map = Map::new();
        map.insert("message_id".to_owned(), json!(id));
        map.insert("from".to_owned(), user(from, "Alice"));
        map.insert("chat".to_owned(), chat);
        map.insert("date".to_owned(), json!(now_s()));
        if let Some(thread) = thread {
            map.insert("message_thread_id".to_owned(), json!(thread));
            map.insert("is_topic_message".to_owned(), json!(true));
        }
        if let Some(reply_id) = reply_to
            && let Some(replied) =
                state.messages.get(&chat_id).and_then(|m| m.iter().find(|m| m.message_id == reply_id))
        {
            let replied = replied.clone();
            map.insert("reply_to_message".to_owned(), message_json(&mut state, chat_id, &replied));
        }
        fill(&mut map);
        let text =
            map.get("text").or_else(|| map.get("caption")).and_then(Value::as_str).unwrap_or_default().to_owned();
        state.messages.entry(chat_id).or_default().push(StoredMessage {
            message_id: id,
            from_bot: false,
            visible: text.clone(),
            text,
            parse_mode: None,
            reply_markup: Value::Null,
            thread_id: thread,
            reply_to,
            deleted: false,
            reactions: Vec::new(),
            edits: 0,
            media: None,
        });
        (Value::Object(map), id)
    }

    /// A press of an inline button under the bot's message `message_id`.
    pub fn press_button(&self, chat_id: i64, from: u64, message_id: i64, data: &str) -> String {
        let mut state = self.inner.lock();
        let query_id = format!("cbq{}", state.next_callback);
        state.next_callback += 1;
        let message = state
            .messages
            .get(&chat_id)
            .and_then(|m| m.iter().find(|m| m.message_id == message_id))
            .cloned()
            .map(|m| message_json(&mut state, chat_id, &m))
            .unwrap_or(Value::Null);
        drop(state);
        self.inject_update(json!({"callback_query": {
            "id": query_id, "from": user(from, "Alice"), "message": message,
            "chat_instance": format!("ci{chat_id}"), "data": data}}));
        query_id
    }

    /// The bot's membership in a chat changed (`old`/`new`: `left`, `member`, `kicked`, …).
    pub fn chat_member(&self, chat_id: i64, title: &str, from: u64, old: &str, new: &str) {
        let mut state = self.inner.lock();
        let chat = Self::chat_json(&mut state, chat_id, Some(title), false);
        drop(state);
        self.inject_update(json!({"my_chat_member": {
            "chat": chat, "from": user(from, "Alice"), "date": now_s(),
            "old_chat_member": {"status": old, "user": bot_user()},
            "new_chat_member": {"status": new, "user": bot_user()}}}));
    }

    /// A file the bot can fetch with `getFile`; returns `(file_id, file_unique_id)`.
    pub fn add_file(&self, bytes: &[u8], name: &str) -> (String, String) {
        let mut state = self.inner.lock();
        let n = state.files.len() + 1;
        let file_id = format!("FILE{n}");
        let unique = format!("U{n}");
        state.files.insert(file_id.clone(), (format!("documents/{n}_{name}"), bytes.to_vec()));
        (file_id, unique)
    }

    /// Makes the next `times` calls of `method` fail.
    pub fn fail(&self, method: &str, failure: Failure, times: u32) {
        self.inner.lock().failures.push((method.to_lowercase(), failure, times));
    }

    /// Answers `method` only after `delay`.
    pub fn delay(&self, method: &str, delay: Duration) {
        self.inner.lock().delays.insert(method.to_lowercase(), delay);
    }

    // ---- what the bot did ----

    /// Every call so far.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.inner.lock().calls.clone()
    }

    /// The calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<ApiCall> {
        self.inner.lock().calls.iter().filter(|c| c.method.eq_ignore_ascii_case(method)).cloned().collect()
    }

    /// Waits until a call satisfies `predicate` (checking the ones already made first).
    pub async fn wait_for_call(&self, timeout: Duration, predicate: impl Fn(&ApiCall) -> bool) -> Option<ApiCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.called.notified();
            let calls = self.inner.lock().calls.clone();
            if let Some(call) = calls.into_iter().find(|c| predicate(c)) {
                return Some(call);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Waits until `predicate` holds for the calls made so far.
    pub async fn wait_until(&self, timeout: Duration, predicate: impl Fn(&[ApiCall]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.called.notified();
            // The lock is released before the predicate runs: it may look at the server too.
            let calls = self.inner.lock().calls.clone();
            if predicate(&calls) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let calls = self.inner.lock().calls.clone();
                return predicate(&calls);
            }
        }
    }

    /// The messages of a chat as it shows them now (deleted ones included, flagged).
    pub fn messages(&self, chat_id: i64) -> Vec<StoredMessage> {
        self.inner.lock().messages.get(&chat_id).cloned().unwrap_or_default()
    }

    /// The bot's visible (not deleted) messages in a chat.
    pub fn bot_messages(&self, chat_id: i64) -> Vec<StoredMessage> {
        self.messages(chat_id).into_iter().filter(|m| m.from_bot && !m.deleted).collect()
    }

    /// Updates not yet confirmed by an offset.
    pub fn pending_updates(&self) -> usize {
        self.inner.lock().pending.len()
    }

    /// The uploaded files: (method, file name, bytes).
    pub fn uploads(&self) -> Vec<(String, String, Vec<u8>)> {
        self.inner.lock().uploads.clone()
    }

    /// The command menu stored for a scope (`default`, `all_private_chats`, …).
    pub fn commands(&self, scope: &str) -> Value {
        self.inner.lock().commands.get(scope).cloned().unwrap_or_else(|| json!([]))
    }

    /// Sets the command menu of a scope (as if set earlier).
    pub fn set_commands(&self, scope: &str, commands: Value) {
        self.inner.lock().commands.insert(scope.to_owned(), commands);
    }
}

fn entities_of(text: &str) -> Vec<Value> {
    let mut entities = Vec::new();
    let mut utf16 = 0;
    let mut word_start: Option<(usize, usize)> = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut push = |start_byte: usize, start_units: usize, end_byte: usize, units: usize| {
        let word = &text[start_byte..end_byte];
        let kind = if word.starts_with('/') {
            Some("bot_command")
        } else if word.starts_with('@') && word.len() > 1 {
            Some("mention")
        } else {
            None
        };
        if let Some(kind) = kind
            && (kind == "mention" || start_units == 0)
        {
            entities.push(json!({"type": kind, "offset": start_units, "length": units - start_units}));
        }
    };
    for (byte, c) in &chars {
        if c.is_whitespace() {
            if let Some((start_byte, start_units)) = word_start.take() {
                push(start_byte, start_units, *byte, utf16);
            }
        } else if word_start.is_none() {
            word_start = Some((*byte, utf16));
        }
        utf16 += c.len_utf16();
    }
    if let Some((start_byte, start_units)) = word_start {
        push(start_byte, start_units, text.len(), utf16);
    }
    entities
}

fn message_json(state: &mut State, chat_id: i64, m: &StoredMessage) -> Value {
    let chat = FakeBotApi::chat_json(state, chat_id, None, false);
    let mut json = json!({
        "message_id": m.message_id,
        "from": if m.from_bot { bot_user() } else { user(7, "Alice") },
        "chat": chat,
        "date": now_s(),
    });
    match m.media.as_deref() {
        Some("photo") => {
            json["photo"] = json!([{"file_id": format!("P{}", m.message_id), "file_unique_id": format!("PU{}", m.message_id), "width": 10, "height": 10}]);
            if !m.text.is_empty() {
                json["caption"] = json!(m.visible);
            }
        }
        Some(_) => {
            json["document"] = json!({"file_id": format!("D{}", m.message_id), "file_unique_id": format!("DU{}", m.message_id), "file_name": "file"});
            if !m.text.is_empty() {
                json["caption"] = json!(m.visible);
            }
        }
        None => json["text"] = json!(m.visible),
    }
    if let Some(thread) = m.thread_id {
        json["message_thread_id"] = json!(thread);
        json["is_topic_message"] = json!(true);
    }
    if !m.reply_markup.is_null() {
        json["reply_markup"] = m.reply_markup.clone();
    }
    if m.edits > 0 {
        json["edit_date"] = json!(now_s());
    }
    json
}

const TAGS: [&str; 16] = [
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
];

/// Checks HTML as Telegram does; the visible text on success.
pub fn check_html(html: &str) -> Result<String, String> {
    let mut visible = String::new();
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(tag_body) = rest.strip_prefix('<') {
            let end = tag_body.find('>').ok_or("Unclosed start tag")?;
            let inner = &tag_body[..end];
            if let Some(name) = inner.strip_prefix('/') {
                let name = name.trim().to_lowercase();
                match stack.pop() {
                    Some(open) if open == name => {}
                    _ => return Err(format!("Can't find end tag corresponding to start tag \"{name}\"")),
                }
            } else {
                let name = inner.split_whitespace().next().unwrap_or_default().to_lowercase();
                if !TAGS.contains(&name.as_str()) {
                    return Err(format!("Unsupported start tag \"{name}\""));
                }
                stack.push(name);
            }
            rest = &tag_body[end + 1..];
        } else if let Some(entity) = rest.strip_prefix('&') {
            match entity.find(';').filter(|e| *e <= 8) {
                Some(end) => {
                    let name = &entity[..end];
                    let c = match name {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "quot" => Some('"'),
                        _ => name.strip_prefix('#').and_then(|n| match n.strip_prefix('x') {
                            Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                            None => n.parse().ok().and_then(char::from_u32),
                        }),
                    };
                    match c {
                        Some(c) => visible.push(c),
                        None => return Err(format!("Unsupported HTML entity \"&{name};\"")),
                    }
                    rest = &entity[end + 1..];
                }
                None => {
                    visible.push('&');
                    rest = entity;
                }
            }
        } else {
            let next = rest.find(['<', '&']).unwrap_or(rest.len());
            visible.push_str(&rest[..next]);
            rest = &rest[next..];
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("Can't find end tag corresponding to start tag \"{open}\""));
    }
    Ok(visible)
}

fn routes(
    inner: Arc<Inner>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static {
    warp::path::full()
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::bytes())
        .then(move |path: warp::path::FullPath, content_type: Option<String>, body: warp::hyper::body::Bytes| {
            let inner = Arc::clone(&inner);
            let path = path.as_str().to_owned();
            async move { route(inner, path, content_type, body).await }
        })
        .recover(|_rejection: warp::Rejection| async move {
            Ok::<_, std::convert::Infallible>(warp::reply::Reply::into_response(error(400, "Bad Request")))
        })
        .unify()
}

async fn route(
    inner: Arc<Inner>,
    path: String,
    content_type: Option<String>,
    body: warp::hyper::body::Bytes,
) -> warp::reply::Response {
    use warp::reply::Reply;
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    match parts.as_slice() {
        ["file", bot, file_path] => {
            // teloxide sends the file path as one segment (`/` as `%2F`), as Telegram accepts.
            let (bot, file_path) = (percent_decode(bot), percent_decode(file_path));
            let (bot, file_path) = (bot.as_str(), file_path.as_str());
            let state = inner.lock();
            let found = (bot == format!("bot{}", inner.token))
                .then(|| state.files.values().find(|(path, _)| path == file_path))
                .flatten();
            match found {
                Some((_, bytes)) => warp::reply::with_status(bytes.clone(), StatusCode::OK).into_response(),
                None => warp::reply::with_status(b"Not Found".to_vec(), StatusCode::NOT_FOUND).into_response(),
            }
        }
        ["control", what] => control(&inner, what, &body).into_response(),
        [bot, method] => {
            handle(inner, (*bot).to_owned(), (*method).to_owned(), content_type, body).await.into_response()
        }
        _ => error(404, "Not Found").into_response(),
    }
}

/// Accepts clients on the front door and joins each to the HTTP server, while reachable.
async fn front_door(door: tokio::net::TcpListener, server: SocketAddr, inner: Arc<Inner>) {
    use std::sync::atomic::Ordering;
    while let Ok((mut client, _)) = door.accept().await {
        if !inner.reachable.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let link = tokio::spawn(async move {
            if let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
        let mut links = inner.links.lock().unwrap_or_else(PoisonError::into_inner);
        links.retain(|l| !l.is_finished());
        links.push(link.abort_handle());
    }
}

/// The control side over HTTP, for scripts and the example binary: `POST /control/update`
/// (an update kind, e.g. `{"message": {...}}`), `POST /control/text` (`{"chat_id", "from",
/// "text"}`), `POST /control/calls`, `POST /control/fail` (`{"method", "failure":
/// "retry_after:N" | "not_modified" | "cant_parse" | "forbidden" | "<400 text>", "times"}`),
/// `POST /control/messages` (`{"chat_id"}`).
fn control(inner: &Arc<Inner>, what: &str, body: &[u8]) -> warp::reply::WithStatus<warp::reply::Json> {
    let params: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
    let api = FakeBotApi { inner: Arc::clone(inner), addr: SocketAddr::from(([127, 0, 0, 1], 0)), stop: None };
    match what {
        "update" => ok(json!({"update_id": api.inject_update(params)})),
        "text" => {
            let chat = int(&params, "chat_id").unwrap_or(0);
            let from = int(&params, "from").unwrap_or(chat).unsigned_abs();
            let text = params.get("text").and_then(Value::as_str).unwrap_or_default();
            ok(json!({"message_id": api.send_text(chat, from, text)}))
        }
        "calls" => {
            ok(Value::Array(api.calls().iter().map(|c| json!({"method": c.method, "params": c.params})).collect()))
        }
        "fail" => {
            let method = params.get("method").and_then(Value::as_str).unwrap_or_default();
            let times = u32::try_from(int(&params, "times").unwrap_or(1)).unwrap_or(1);
            let failure = match params.get("failure").and_then(Value::as_str).unwrap_or_default() {
                "not_modified" => Failure::NotModified,
                "cant_parse" => Failure::CantParseEntities,
                "forbidden" => Failure::Forbidden,
                other => match other.strip_prefix("retry_after:").and_then(|n| n.parse().ok()) {
                    Some(seconds) => Failure::RetryAfter(seconds),
                    None => Failure::BadRequest(other.to_owned()),
                },
            };
            api.fail(method, failure, times);
            ok(json!(true))
        }
        "messages" => {
            let chat = int(&params, "chat_id").unwrap_or(0);
            let messages = api.messages(chat);
            ok(Value::Array(
                messages
                    .iter()
                    .map(|m| {
                        json!({"message_id": m.message_id, "from_bot": m.from_bot, "text": m.text,
                            "visible": m.visible, "deleted": m.deleted, "reply_to": m.reply_to,
                            "reactions": m.reactions, "reply_markup": m.reply_markup})
                    })
                    .collect(),
            ))
        }
        _ => error(404, "Not Found"),
    }
}

fn ok(result: Value) -> warp::reply::WithStatus<warp::reply::Json> {
    warp::reply::with_status(warp::reply::json(&json!({"ok": true, "result": result})), StatusCode::OK)
}

fn error(code: u16, description: &str) -> warp::reply::WithStatus<warp::reply::Json> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    warp::reply::with_status(
        warp::reply::json(&json!({"ok": false, "error_code": code, "description": description})),
        status,
    )
}

fn failure_reply(failure: &Failure) -> warp::reply::WithStatus<warp::reply::Json> {
    match failure {
        Failure::RetryAfter(seconds) => warp::reply::with_status(
            warp::reply::json(&json!({"ok": false, "error_code": 429,
                "description": format!("Too Many Requests: retry after {seconds}"),
                "parameters": {"retry_after": seconds}})),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Failure::NotModified => error(
            400,
            "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ),
        Failure::CantParseEntities => {
            error(400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0")
        }
        Failure::Forbidden => error(403, "Forbidden: bot was blocked by the user"),
        Failure::BadRequest(text) => error(400, text),
    }
}

/// Parameters of a request body: JSON, form or multipart.
fn parse_params(content_type: Option<&str>, body: &[u8]) -> (Value, Vec<(String, String, Vec<u8>)>) {
    let content_type = content_type.unwrap_or_default();
    if let Some(boundary) = content_type.split("boundary=").nth(1) {
        return parse_multipart(boundary.trim_matches('"'), body);
    }
    if content_type.contains("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(body);
        let mut map = Map::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            map.insert(percent_decode(k), serde_json::from_str(&v).unwrap_or(Value::String(v)));
        }
        return (Value::Object(map), Vec::new());
    }
    (serde_json::from_slice(body).unwrap_or_else(|_| json!({})), Vec::new())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_multipart(boundary: &str, body: &[u8]) -> (Value, Vec<(String, String, Vec<u8>)>) {
    let mut params = Map::new();
    let mut files = Vec::new();
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + delimiter.len() <= body.len() {
        if body[i..].starts_with(&delimiter) {
            if let Some(s) = start {
                parts.push(&body[s..i]);
            }
            i += delimiter.len();
            start = Some(i);
        } else {
            i += 1;
        }
    }
    for part in parts {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = part.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let headers = String::from_utf8_lossy(&part[..split]).to_string();
        let content = &part[split + 4..];
        let field = |key: &str| {
            headers
                .split(';')
                .find_map(|h| h.trim().strip_prefix(&format!("{key}=")).map(|v| v.trim_matches('"').to_owned()))
        };
        let Some(name) = field("name") else { continue };
        match field("filename") {
            Some(filename) => {
                params.insert(name.clone(), json!({"filename": filename, "size": content.len()}));
                files.push((name, filename, content.to_vec()));
            }
            None => {
                let text = String::from_utf8_lossy(content).into_owned();
                params.insert(name, serde_json::from_str(&text).unwrap_or(Value::String(text)));
            }
        }
    }
    (Value::Object(params), files)
}

fn canonical(method: &str) -> String {
    const METHODS: [&str; 24] = [
        "getMe",
        "getUpdates",
        "deleteWebhook",
        "getWebhookInfo",
        "getMyCommands",
        "setMyCommands",
        "deleteMyCommands",
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "deleteMessage",
        "sendChatAction",
        "setMessageReaction",
        "answerCallbackQuery",
        "sendPhoto",
        "sendVideo",
        "sendAudio",
        "sendDocument",
        "getFile",
        "leaveChat",
        "pinChatMessage",
        "getChat",
        "logOut",
        "close",
    ];
    METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)).map_or_else(|| method.to_owned(), |m| (*m).to_owned())
}

fn int(params: &Value, key: &str) -> Option<i64> {
    params.get(key).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
}

fn scope_key(params: &Value) -> String {
    let scope = match params.get("scope") {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    scope.get("type").and_then(Value::as_str).unwrap_or("default").to_owned()
}

async fn handle(
    inner: Arc<Inner>,
    bot: String,
    method: String,
    content_type: Option<String>,
    body: warp::hyper::body::Bytes,
) -> warp::reply::WithStatus<warp::reply::Json> {
    if bot != format!("bot{}", inner.token) {
        return error(401, "Unauthorized");
    }
    let method = canonical(&method);
    let (params, files) = parse_params(content_type.as_deref(), &body);
    let delay = inner.lock().delays.get(&method.to_lowercase()).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if method != "getUpdates" {
        let mut state = inner.lock();
        state.calls.push(ApiCall { method: method.clone(), params: params.clone(), at: Instant::now() });
        let lower = method.to_lowercase();
        let failure = state.failures.iter_mut().find(|(m, _, left)| *m == lower && *left > 0).map(|(_, f, left)| {
            *left -= 1;
            f.clone()
        });
        state.failures.retain(|(_, _, left)| *left > 0);
        drop(state);
        if let Some(failure) = failure {
            inner.called.notify_waiters();
            return failure_reply(&failure);
        }
    }
    let reply = answer(&inner, &method, &params, files).await;
    // Waiters look at the server's state: wake them once the call has changed it.
    inner.called.notify_waiters();
    reply
}

async fn answer(
    inner: &Arc<Inner>,
    method: &str,
    params: &Value,
    files: Vec<(String, String, Vec<u8>)>,
) -> warp::reply::WithStatus<warp::reply::Json> {
    match method {
        "getMe" => ok(json!({"id": BOT_ID, "is_bot": true, "first_name": "Ductor", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false})),
        "getUpdates" => get_updates(inner, params).await,
        "deleteWebhook" => {
            let drop_pending = params.get("drop_pending_updates").is_some_and(|v| v == &json!(true) || v == "true");
            let mut state = inner.lock();
            if drop_pending {
                state.pending.clear();
                state.webhook_drops += 1;
            }
            ok(json!(true))
        }
        "getWebhookInfo" => ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0})),
        "getMyCommands" => ok(inner.lock().commands.get(&scope_key(params)).cloned().unwrap_or_else(|| json!([]))),
        "setMyCommands" => {
            let commands = match params.get("commands") {
                Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
                Some(other) => other.clone(),
                None => Value::Null,
            };
            inner.lock().commands.insert(scope_key(params), commands);
            ok(json!(true))
        }
        "deleteMyCommands" => {
            inner.lock().commands.remove(&scope_key(params));
            ok(json!(true))
        }
        "sendMessage" => send_message(inner, params),
        "editMessageText" => edit_message(inner, params),
        "editMessageReplyMarkup" => {
            let mut state = inner.lock();
            let (Some(chat), Some(id)) = (int(params, "chat_id"), int(params, "message_id")) else {
                return error(400, "Bad Request: message to edit not found");
            };
            let markup = params.get("reply_markup").cloned().unwrap_or(Value::Null);
            let Some(stored) = state.messages.get_mut(&chat).and_then(|m| m.iter_mut().find(|m| m.message_id == id))
            else {
                return error(400, "Bad Request: message to edit not found");
            };
            let markup = if markup.get("inline_keyboard").and_then(Value::as_array).is_some_and(Vec::is_empty) {
                Value::Null
            } else {
                markup
            };
            if stored.reply_markup == markup {
                return failure_reply(&Failure::NotModified);
            }
            stored.reply_markup = markup;
            let stored = stored.clone();
            ok(message_json(&mut state, chat, &stored))
        }
        "deleteMessage" => {
            let mut state = inner.lock();
            let (Some(chat), Some(id)) = (int(params, "chat_id"), int(params, "message_id")) else {
                return error(400, "Bad Request: message to delete not found");
            };
            match state.messages.get_mut(&chat).and_then(|m| m.iter_mut().find(|m| m.message_id == id && !m.deleted)) {
                Some(stored) => {
                    stored.deleted = true;
                    ok(json!(true))
                }
                None => error(400, "Bad Request: message to delete not found"),
            }
        }
        "setMessageReaction" => {
            let mut state = inner.lock();
            let (Some(chat), Some(id)) = (int(params, "chat_id"), int(params, "message_id")) else {
                return error(400, "Bad Request: message not found");
            };
            let reaction = match params.get("reaction") {
                Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(json!([])),
                Some(other) => other.clone(),
                None => json!([]),
            };
            let emoji: Vec<String> = reaction
                .as_array()
                .map(|list| {
                    list.iter().filter_map(|r| r.get("emoji").and_then(Value::as_str)).map(str::to_owned).collect()
                })
                .unwrap_or_default();
            match state.messages.get_mut(&chat).and_then(|m| m.iter_mut().find(|m| m.message_id == id)) {
                Some(stored) => {
                    stored.reactions = emoji;
                    ok(json!(true))
                }
                None => error(400, "Bad Request: message not found"),
            }
        }
        "sendChatAction" | "answerCallbackQuery" | "leaveChat" | "pinChatMessage" | "logOut" | "close" => {
            ok(json!(true))
        }
        "getChat" => {
            let chat = int(params, "chat_id").unwrap_or(0);
            let mut state = inner.lock();
            let mut json = FakeBotApi::chat_json(&mut state, chat, None, false);
            json["accent_color_id"] = json!(0);
            json["max_reaction_count"] = json!(11);
            ok(json)
        }
        "sendPhoto" | "sendDocument" | "sendVideo" | "sendAudio" => send_file(inner, method, params, files),
        "getFile" => {
            let state = inner.lock();
            let id = params.get("file_id").and_then(Value::as_str).unwrap_or_default();
            match state.files.get(id) {
                Some((path, bytes)) => ok(json!({"file_id": id, "file_unique_id": format!("U-{id}"),
                    "file_size": bytes.len(), "file_path": path})),
                None => error(400, "Bad Request: invalid file_id"),
            }
        }
        _ => error(404, "Not Found"),
    }
}

async fn get_updates(inner: &Arc<Inner>, params: &Value) -> warp::reply::WithStatus<warp::reply::Json> {
    let offset = int(params, "offset").unwrap_or(0);
    let timeout = int(params, "timeout").unwrap_or(0).clamp(0, 50) as u64;
    let limit = int(params, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let allowed: Option<Vec<String>> = match params.get("allowed_updates") {
        Some(Value::Array(list)) => Some(list.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        Some(Value::String(text)) => serde_json::from_str::<Vec<String>>(text).ok(),
        _ => None,
    };
    {
        let mut state = inner.lock();
        state.calls.push(ApiCall { method: "getUpdates".to_owned(), params: params.clone(), at: Instant::now() });
        if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            while state.pending.len() > keep {
                state.pending.pop_front();
            }
        } else {
            while state.pending.front().is_some_and(|u| u["update_id"].as_i64().unwrap_or(0) < offset) {
                state.pending.pop_front();
            }
        }
    }
    inner.called.notify_waiters();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let arrived = inner.arrived.notified();
        let ready: Vec<Value> = {
            let state = inner.lock();
            state
                .pending
                .iter()
                .filter(|u| {
                    allowed
                        .as_ref()
                        .is_none_or(|kinds| kinds.is_empty() || kinds.iter().any(|k| u.get(k.as_str()).is_some()))
                })
                .take(limit)
                .cloned()
                .collect()
        };
        if !ready.is_empty() || timeout == 0 {
            return ok(Value::Array(ready));
        }
        if tokio::time::timeout_at(deadline, arrived).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn keyboard_param(params: &Value) -> Value {
    let markup = match params.get("reply_markup") {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    // An empty inline keyboard removes the keyboard, as on Telegram.
    if markup.get("inline_keyboard").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        Value::Null
    } else {
        markup
    }
}

fn reply_to_param(params: &Value) -> Option<i64> {
    let parameters = match params.get("reply_parameters") {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    parameters.get("message_id").and_then(Value::as_i64).or_else(|| int(params, "reply_to_message_id"))
}

fn checked_text(params: &Value, key: &str) -> Result<(String, String, Option<String>), String> {
    let text = params.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let parse_mode = params.get("parse_mode").and_then(Value::as_str).map(str::to_owned);
    let visible = if parse_mode.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("html")) {
        check_html(&text).map_err(|e| format!("Bad Request: can't parse entities: {e}"))?
    } else {
        text.clone()
    };
    if key == "text" && visible.trim().is_empty() {
        return Err("Bad Request: message text is empty".to_owned());
    }
    if visible.encode_utf16().count() > 4096 {
        return Err("Bad Request: message is too long".to_owned());
    }
    Ok((text, visible, parse_mode))
}

/// A message the bot sends, as stored.
fn bot_message(id: i64, text: String, visible: String, params: &Value, media: Option<&str>) -> StoredMessage {
    StoredMessage {
        message_id: id,
        from_bot: true,
        text,
        visible,
        parse_mode: params.get("parse_mode").and_then(Value::as_str).map(str::to_owned),
        reply_markup: keyboard_param(params),
        thread_id: int(params, "message_thread_id"),
        reply_to: reply_to_param(params),
        deleted: false,
        reactions: Vec::new(),
        edits: 0,
        media: media.map(str::to_owned),
    }
}

fn send_message(inner: &Arc<Inner>, params: &Value) -> warp::reply::WithStatus<warp::reply::Json> {
    let Some(chat) = int(params, "chat_id") else { return error(400, "Bad Request: chat not found") };
    let (text, visible, _) = match checked_text(params, "text") {
        Ok(checked) => checked,
        Err(description) => return error(400, &description),
    };
    let mut state = inner.lock();
    let id = FakeBotApi::next_id(&mut state, chat);
    let stored = bot_message(id, text, visible, params, None);
    state.messages.entry(chat).or_default().push(stored.clone());
    let mut json = message_json(&mut state, chat, &stored);
    if let Some(reply_id) = stored.reply_to
        && let Some(replied) =
            state.messages.get(&chat).and_then(|m| m.iter().find(|m| m.message_id == reply_id)).cloned()
    {
        json["reply_to_message"] = message_json(&mut state, chat, &replied);
    }
    ok(json)
}

fn edit_message(inner: &Arc<Inner>, params: &Value) -> warp::reply::WithStatus<warp::reply::Json> {
    let (Some(chat), Some(id)) = (int(params, "chat_id"), int(params, "message_id")) else {
        return error(400, "Bad Request: message to edit not found");
    };
    let (text, visible, parse_mode) = match checked_text(params, "text") {
        Ok(checked) => checked,
        Err(description) => return error(400, &description),
    };
    let markup = keyboard_param(params);
    let mut state = inner.lock();
    let Some(stored) =
        state.messages.get_mut(&chat).and_then(|m| m.iter_mut().find(|m| m.message_id == id && !m.deleted))
    else {
        return error(400, "Bad Request: message to edit not found");
    };
    if stored.text == text && stored.reply_markup == markup {
        return failure_reply(&Failure::NotModified);
    }
    stored.text = text;
    stored.visible = visible;
    stored.parse_mode = parse_mode;
    stored.reply_markup = markup;
    stored.edits += 1;
    let stored = stored.clone();
    ok(message_json(&mut state, chat, &stored))
}

fn send_file(
    inner: &Arc<Inner>,
    method: &str,
    params: &Value,
    files: Vec<(String, String, Vec<u8>)>,
) -> warp::reply::WithStatus<warp::reply::Json> {
    let Some(chat) = int(params, "chat_id") else { return error(400, "Bad Request: chat not found") };
    let caption = params.get("caption").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut state = inner.lock();
    let id = FakeBotApi::next_id(&mut state, chat);
    let kind = if method == "sendPhoto" { "photo" } else { "document" };
    for (_, filename, bytes) in files {
        state.uploads.push((method.to_owned(), filename, bytes));
    }
    let stored = bot_message(id, caption.clone(), caption, params, Some(kind));
    state.messages.entry(chat).or_default().push(stored.clone());
    ok(message_json(&mut state, chat, &stored))
}

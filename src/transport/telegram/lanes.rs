//! Calls to the Telegram Bot API through teloxide, one ordered lane per chat: everything sent
//! to a chat (answers, edits, queue notices, reactions, typing) leaves in the order it was
//! asked for, and a `429 retry_after` delays that chat only and is retried, so nothing is
//! lost to rate limits. Errors are sorted into what the callers react to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use teloxide::payloads::{
    EditMessageReplyMarkupSetters, EditMessageTextSetters, SendAudioSetters, SendChatActionSetters,
    SendDocumentSetters, SendMessageSetters, SendPhotoSetters, SendVideoSetters, SetMessageReactionSetters,
};
use teloxide::prelude::Requester;
use teloxide::types::{
    ChatAction, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode, ReactionType,
    ReplyParameters, ThreadId,
};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::{mpsc, oneshot};

use crate::core::file_tags::UploadKind;
use crate::core::selector::ButtonGrid;

/// Retries of one call after `429 retry_after`.
const RETRY_AFTER_ATTEMPTS: u32 = 5;
/// Longest `retry_after` honoured in place (longer ones fail the call).
const RETRY_AFTER_MAX: Duration = Duration::from_secs(120);

/// What went wrong with a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TgError {
    /// 400 "message is not modified" (harmless on edits).
    #[error("message is not modified")]
    NotModified,
    /// 400 "can't parse entities" (bad HTML).
    #[error("can't parse entities: {0}")]
    BadHtml(String),
    /// Another 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 403: blocked, kicked.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 429 that outlasted the retries.
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    /// The request did not get an answer (connection refused or dropped, timeout).
    #[error("network: {0}")]
    Network(String),
    /// Anything else (unparsable answer, other API errors).
    #[error("{0}")]
    Other(String),
}

impl TgError {
    /// Sorts a teloxide error.
    pub fn from_request(error: &RequestError) -> Self {
        match error {
            RequestError::Api(ApiError::MessageNotModified) => Self::NotModified,
            RequestError::Api(ApiError::CantParseEntities(text)) => Self::BadHtml(text.clone()),
            RequestError::Api(api) => {
                let text = api.to_string();
                if text.contains("message is not modified") {
                    Self::NotModified
                } else if text.contains("can't parse entities") {
                    Self::BadHtml(text)
                } else if text.starts_with("Forbidden") || matches!(api, ApiError::BotBlocked | ApiError::BotKicked) {
                    Self::Forbidden(text)
                } else if text.starts_with("Bad Request") || text.contains("Bad Request") {
                    Self::BadRequest(text)
                } else {
                    Self::Other(text)
                }
            }
            RequestError::RetryAfter(seconds) => Self::RateLimited(seconds.duration()),
            RequestError::Network(e) => Self::Network(e.to_string()),
            RequestError::Io(e) => Self::Network(e.to_string()),
            other => Self::Other(other.to_string()),
        }
    }

    /// A 4xx the server meant (the request will not succeed as it is).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, Self::BadHtml(_) | Self::BadRequest(_))
    }
}

/// One call into a chat.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiOp {
    /// `sendMessage`.
    Send {
        /// Text.
        text: String,
        /// `parse_mode=HTML`.
        html: bool,
        /// Reply to this message (allowed to go without it).
        reply_to: Option<i32>,
        /// Forum topic.
        thread: Option<i32>,
        /// Inline keyboard.
        keyboard: Option<ButtonGrid>,
    },
    /// `editMessageText`.
    Edit {
        /// The message.
        message_id: i32,
        /// New text.
        text: String,
        /// `parse_mode=HTML`.
        html: bool,
        /// New keyboard (`Some(empty)` removes it, `None` leaves it out of the call).
        keyboard: Option<ButtonGrid>,
    },
    /// `editMessageReplyMarkup` (an empty grid removes the keyboard).
    EditKeyboard {
        /// The message.
        message_id: i32,
        /// The keyboard.
        keyboard: ButtonGrid,
    },
    /// `deleteMessage`.
    Delete {
        /// The message.
        message_id: i32,
    },
    /// `sendChatAction typing`.
    Typing {
        /// Forum topic.
        thread: Option<i32>,
    },
    /// `setMessageReaction` (`None` clears).
    React {
        /// The message.
        message_id: i32,
        /// The emoji.
        emoji: Option<String>,
    },
    /// `sendPhoto` / `sendDocument` of a local file.
    File {
        /// The file.
        path: camino::Utf8PathBuf,
        /// How.
        upload: UploadKind,
        /// Reply to this message.
        reply_to: Option<i32>,
        /// Forum topic.
        thread: Option<i32>,
    },
}

/// What a successful call gave back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// A message was sent: its id.
    Sent(i32),
    /// Done.
    Ok,
}

impl Done {
    /// The id of the message sent, if one was.
    pub fn message_id(self) -> Option<i32> {
        match self {
            Self::Sent(id) => Some(id),
            Self::Ok => None,
        }
    }
}

/// The keyboard in teloxide's form.
pub fn markup(grid: &ButtonGrid) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(grid.iter().map(|row| {
        row.iter()
            .map(|b| match b.url.as_deref().and_then(|u| u.parse().ok()) {
                Some(url) => InlineKeyboardButton::url(b.text.clone(), url),
                None => InlineKeyboardButton::callback(b.text.clone(), b.callback_data.clone()),
            })
            .collect::<Vec<_>>()
    }))
}

fn thread_id(thread: Option<i32>) -> Option<ThreadId> {
    thread.map(|id| ThreadId(MessageId(id)))
}

fn reply(reply_to: Option<i32>) -> Option<ReplyParameters> {
    reply_to.map(|id| ReplyParameters::new(MessageId(id)).allow_sending_without_reply())
}

/// Carries out one call (no retries).
pub async fn execute(bot: &Bot, chat: i64, op: &ApiOp) -> Result<Done, TgError> {
    let chat = ChatId(chat);
    let sorted = |e: RequestError| TgError::from_request(&e);
    match op {
        ApiOp::Send { text, html, reply_to, thread, keyboard } => {
            let mut request = bot.send_message(chat, text.clone());
            if *html {
                request = request.parse_mode(ParseMode::Html);
            }
            if let Some(parameters) = reply(*reply_to) {
                request = request.reply_parameters(parameters);
            }
            if let Some(thread) = thread_id(*thread) {
                request = request.message_thread_id(thread);
            }
            if let Some(grid) = keyboard.as_ref().filter(|g| !g.is_empty()) {
                request = request.reply_markup(markup(grid));
            }
            request.await.map(|m| Done::Sent(m.id.0)).map_err(sorted)
        }
        ApiOp::Edit { message_id, text, html, keyboard } => {
            let mut request = bot.edit_message_text(chat, MessageId(*message_id), text.clone());
            if *html {
                request = request.parse_mode(ParseMode::Html);
            }
            if let Some(grid) = keyboard {
                request = request.reply_markup(markup(grid));
            }
            request.await.map(|_| Done::Ok).map_err(sorted)
        }
        ApiOp::EditKeyboard { message_id, keyboard } => bot
            .edit_message_reply_markup(chat, MessageId(*message_id))
            .reply_markup(markup(keyboard))
            .await
            .map(|_| Done::Ok)
            .map_err(sorted),
        ApiOp::Delete { message_id } => {
            bot.delete_message(chat, MessageId(*message_id)).await.map(|_| Done::Ok).map_err(sorted)
        }
        ApiOp::Typing { thread } => {
            let mut request = bot.send_chat_action(chat, ChatAction::Typing);
            if let Some(thread) = thread_id(*thread) {
                request = request.message_thread_id(thread);
            }
            request.await.map(|_| Done::Ok).map_err(sorted)
        }
        ApiOp::React { message_id, emoji } => {
            let reaction: Vec<ReactionType> = emoji.iter().map(|e| ReactionType::Emoji { emoji: e.clone() }).collect();
            bot.set_message_reaction(chat, MessageId(*message_id))
                .reaction(reaction)
                .await
                .map(|_| Done::Ok)
                .map_err(sorted)
        }
        ApiOp::File { path, upload, reply_to, thread } => {
            let file = InputFile::file(path.as_std_path());
            let (reply, thread) = (reply(*reply_to), thread_id(*thread));
            macro_rules! upload {
                ($request:expr) => {{
                    let mut request = $request;
                    if let Some(parameters) = reply {
                        request = request.reply_parameters(parameters);
                    }
                    if let Some(thread) = thread {
                        request = request.message_thread_id(thread);
                    }
                    request.await.map(|m| Done::Sent(m.id.0)).map_err(sorted)
                }};
            }
            match upload {
                UploadKind::Photo => upload!(bot.send_photo(chat, file)),
                UploadKind::Video => upload!(bot.send_video(chat, file)),
                UploadKind::Audio => upload!(bot.send_audio(chat, file)),
                UploadKind::Document => upload!(bot.send_document(chat, file)),
            }
        }
    }
}

type Outcome = oneshot::Sender<Result<Done, TgError>>;

enum Job {
    Call {
        op: ApiOp,
        done: Option<Outcome>,
    },
    /// A place kept in the chat's order for a call decided a little later (a queue notice,
    /// reserved when the message arrives); the lane waits for it at most [`SLOT_WAIT`].
    Slot(oneshot::Receiver<(ApiOp, Outcome)>),
}

/// How long a lane keeps a reserved place open.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// A reserved place in a chat's lane: [`Slot::fill`] puts a call there; dropping it frees the
/// place.
#[derive(Debug)]
pub struct Slot(oneshot::Sender<(ApiOp, Outcome)>);

impl Slot {
    /// Makes the call in the reserved place and waits for its outcome.
    pub async fn fill(self, op: ApiOp) -> Result<Done, TgError> {
        let (done, outcome) = oneshot::channel();
        if self.0.send((op, done)).is_err() {
            return Err(TgError::Other("the reserved place expired".to_owned()));
        }
        outcome.await.unwrap_or_else(|_| Err(TgError::Other("the chat's lane dropped the call".to_owned())))
    }
}

/// The per-chat ordered lanes.
#[derive(Clone)]
pub struct Lanes {
    bot: Bot,
    lanes: Arc<Mutex<HashMap<i64, mpsc::UnboundedSender<Job>>>>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").finish_non_exhaustive()
    }
}

impl Lanes {
    /// Lanes for this bot.
    pub fn new(bot: Bot) -> Self {
        Self { bot, lanes: Arc::default() }
    }

    /// The bot.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    fn lane(&self, chat: i64) -> mpsc::UnboundedSender<Job> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lane) = lanes.get(&chat).filter(|lane| !lane.is_closed()) {
            return lane.clone();
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run_lane(self.bot.clone(), chat, receiver));
        lanes.insert(chat, sender.clone());
        sender
    }

    /// Keeps a place in the chat's order for a call decided later.
    pub fn reserve(&self, chat: i64) -> Slot {
        let (slot, filled) = oneshot::channel();
        let _ = self.lane(chat).send(Job::Slot(filled));
        Slot(slot)
    }

    /// Queues a call on the chat's lane and waits for its outcome.
    pub async fn call(&self, chat: i64, op: ApiOp) -> Result<Done, TgError> {
        let (done, outcome) = oneshot::channel();
        if self.lane(chat).send(Job::Call { op, done: Some(done) }).is_err() {
            return Err(TgError::Other("the chat's lane is gone".to_owned()));
        }
        outcome.await.unwrap_or_else(|_| Err(TgError::Other("the chat's lane dropped the call".to_owned())))
    }

    /// Queues a call without waiting (its failure is only logged).
    pub fn post(&self, chat: i64, op: ApiOp) {
        let _ = self.lane(chat).send(Job::Call { op, done: None });
    }
}

async fn run_lane(bot: Bot, chat: i64, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.recv().await {
        let (op, done) = match job {
            Job::Call { op, done } => (op, done),
            Job::Slot(filled) => match tokio::time::timeout(SLOT_WAIT, filled).await {
                Ok(Ok((op, done))) => (op, Some(done)),
                _ => continue,
            },
        };
        let mut attempt = 0;
        let outcome = loop {
            match execute(&bot, chat, &op).await {
                Err(TgError::RateLimited(wait)) if attempt < RETRY_AFTER_ATTEMPTS && wait <= RETRY_AFTER_MAX => {
                    attempt += 1;
                    tracing::info!(
                        actor = "telegram",
                        chat,
                        wait_s = wait.as_secs(),
                        attempt,
                        "Rate limited; this chat waits."
                    );
                    tokio::time::sleep(wait).await;
                }
                outcome => break outcome,
            }
        };
        match done {
            Some(done) => {
                let _ = done.send(outcome);
            }
            None => {
                if let Err(e) = outcome {
                    tracing::debug!(actor = "telegram", chat, error = %e, "A call without a waiter failed.");
                }
            }
        }
    }
}

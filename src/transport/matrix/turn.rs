//! How one Matrix message is answered (transports spec §3.7, §3.8): the typing indicator while
//! the turn runs, the streamed answer posted as segments (the text so far goes out as its own
//! event whenever a tool starts; tool names are never shown), the rest at the end, and the rich
//! send every output uses (Markdown → HTML events under the size limit, files, and buttons as a
//! numbered list the bot reacts to with 1️⃣ 2️⃣ …). Runs as a task per message, queued behind the
//! room's earlier answers so a room's events keep the order of its messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use matrix_sdk::Room;
use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::ruma::OwnedEventId;
use matrix_sdk::ruma::events::reaction::ReactionEventContent;
use matrix_sdk::ruma::events::relation::Annotation;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use tokio::sync::mpsc;

use crate::chat::session::SessionOutput;
use crate::core::buttons;
use crate::core::file_tags::take_file_tags;
use crate::core::incoming_file::mime_for;
use crate::core::selector::ButtonGrid;
use crate::core::stream_event::StreamEvent;
use crate::core::text::render;
use crate::core::turn_outcome::{status_label, technical_footer};
use crate::store::inbox_journal::CRASH_AFTER_ANSWER_ENV;
use crate::transport::file_access::FileAccess;
use crate::transport::file_access::is_safe;
use crate::transport::inbox_entry::InboxEntryGuard;
use crate::transport::matrix::ingress::SentEvents;
use crate::transport::matrix::text::{EVENT_TEXT_BUDGET, KEYCAPS, events, numbered_buttons};

/// How often the typing notice is renewed while a turn runs (matrix-sdk sends it with a 4-s
/// timeout).
const TYPING_EVERY: Duration = Duration::from_secs(3);

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum MxError {
    /// The homeserver refused it for good (forbidden, unknown room, too large).
    #[error("the homeserver refused it: {0}")]
    Refused(String),
    /// Network or server trouble: worth trying again.
    #[error("could not reach the homeserver: {0}")]
    Unreachable(String),
}

impl From<matrix_sdk::Error> for MxError {
    fn from(error: matrix_sdk::Error) -> Self {
        let status = error.as_client_api_error().map(|e| e.status_code.as_u16());
        match status {
            Some(code) if (400..500).contains(&code) && code != 429 => Self::Refused(error.to_string()),
            _ => Self::Unreachable(error.to_string()),
        }
    }
}

/// What a press of a numbered button does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonKind {
    /// A menu (selector): the data goes to the Orchestrator as a callback.
    Menu,
    /// `[button:…]` of an answer: the label is the next prompt.
    Answer,
}

/// A room's active button set (one per room; a new one replaces it; a press consumes it).
#[derive(Debug, Clone)]
pub struct ButtonSet {
    /// Callback data per button, in order.
    pub data: Vec<String>,
    /// The event carrying the list (reactions on it pick a button).
    pub event_id: Option<String>,
    /// What a press does.
    pub kind: ButtonKind,
}

/// Active button sets by room id.
pub type ButtonSets = Arc<Mutex<HashMap<String, ButtonSet>>>;

/// Where one room's outputs go.
#[derive(Clone)]
pub struct RoomOut {
    /// The room.
    pub room: Room,
    /// Files an answer may send.
    pub files: Arc<FileAccess>,
    /// Events the bot sent (replies to them address it in group rooms).
    pub sent: Arc<Mutex<SentEvents>>,
    /// The rooms' button sets.
    pub buttons: ButtonSets,
}

impl std::fmt::Debug for RoomOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomOut").field("room", &self.room.room_id()).finish_non_exhaustive()
    }
}

impl RoomOut {
    fn remember(&self, event_id: &OwnedEventId) {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).remember(event_id.as_str());
    }

    async fn send_event(&self, content: RoomMessageEventContent, txn: Option<String>) -> Result<OwnedEventId, MxError> {
        let mut send = self.room.send(content);
        if let Some(txn) = txn {
            send = send.with_transaction_id(txn.into());
        }
        let sent = send.await?;
        let id = sent.response.event_id;
        self.remember(&id);
        Ok(id)
    }

    /// Markdown as HTML events under the size limit, then the files its `<file:…>` tags name;
    /// returns the last event id.
    pub async fn rich_send(&self, markdown: &str) -> Result<Option<OwnedEventId>, MxError> {
        self.rich_send_as(markdown, None).await
    }

    /// The same; with `txn`, event `i` is sent as transaction `<txn>-<i>`, so sending it again
    /// (after a crash) does not post it twice.
    pub async fn rich_send_as(&self, markdown: &str, txn: Option<&str>) -> Result<Option<OwnedEventId>, MxError> {
        let (text, files) = take_file_tags(markdown, &self.files.home);
        let mut last = None;
        for (i, event) in events(&text, EVENT_TEXT_BUDGET).into_iter().enumerate() {
            let content = RoomMessageEventContent::text_html(event.plain, event.html);
            last = Some(self.send_event(content, txn.map(|t| format!("{t}-{i}"))).await?);
        }
        for path in files {
            if let Some(id) = self.send_file(&path).await? {
                last = Some(id);
            }
        }
        Ok(last)
    }

    /// One file (§3.8): missing files and files outside the allowed roots are skipped (logged);
    /// the upload is encrypted in encrypted rooms.
    async fn send_file(&self, path: &camino::Utf8Path) -> Result<Option<OwnedEventId>, MxError> {
        if !path.is_file() || !is_safe(path, self.files.roots.as_deref()) {
            tracing::info!(actor = "matrix", path = %path, "File of an answer skipped (missing or not allowed).");
            return Ok(None);
        }
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(actor = "matrix", path = %path, error = %e, "Could not read a file of an answer.");
                return Ok(None);
            }
        };
        let mime: mime::Mime = mime_for(path).parse().unwrap_or(mime::APPLICATION_OCTET_STREAM);
        let name = path.file_name().unwrap_or("file").to_owned();
        let sent = self.room.send_attachment(name, &mime, bytes, AttachmentConfig::new()).await?;
        self.remember(&sent.event_id);
        Ok(Some(sent.event_id))
    }

    /// Text with buttons: the numbered list appended, the set registered for the room, and the
    /// bot's own 1️⃣ … reactions on the event (stopping at the first failure).
    pub async fn send_with_buttons(
        &self,
        markdown: &str,
        grid: &ButtonGrid,
        kind: ButtonKind,
        txn: Option<&str>,
    ) -> Result<(), MxError> {
        let flat: Vec<&crate::core::selector::Button> = grid.iter().flatten().filter(|b| b.url.is_none()).collect();
        if flat.is_empty() {
            self.rich_send_as(markdown, txn).await?;
            return Ok(());
        }
        let labels: Vec<String> = flat.iter().map(|b| b.text.clone()).collect();
        let text = format!("{}{}", markdown.trim_end(), numbered_buttons(&labels));
        let last = self.rich_send_as(&text, txn).await?;
        let set = ButtonSet {
            data: flat.iter().map(|b| b.callback_data.clone()).collect(),
            event_id: last.as_ref().map(|id| id.to_string()),
            kind,
        };
        self.buttons.lock().unwrap_or_else(PoisonError::into_inner).insert(self.room.room_id().to_string(), set);
        if let Some(event_id) = last {
            for emoji in KEYCAPS.iter().take(labels.len()) {
                let reaction = ReactionEventContent::new(Annotation::new(event_id.clone(), (*emoji).to_owned()));
                if let Err(e) = self.room.send(reaction).await {
                    tracing::debug!(actor = "matrix", error = %e, "Could not add a button reaction.");
                    break;
                }
            }
        }
        Ok(())
    }

    /// An agent answer: `[button:…]` markers become a numbered list (a typed number or a
    /// reaction sends the label as the next prompt). `txn`: see [`RoomOut::rich_send_as`].
    pub async fn send_answer(&self, text: &str, txn: Option<&str>) -> Result<(), MxError> {
        let grid = buttons::keyboard(text);
        if grid.is_empty() {
            self.rich_send_as(text, txn).await.map(|_| ())
        } else {
            self.send_with_buttons(&buttons::remove_markers(text), &grid, ButtonKind::Answer, txn).await
        }
    }
}

/// One message's answer settings.
#[derive(Debug, Clone, Copy)]
pub struct MxTurnSettings {
    /// `streaming.enabled`: segments while the turn runs.
    pub streaming: bool,
    /// `scene.technical_footer`.
    pub footer: bool,
}

/// Answers one message from its outputs; `txn` is the transaction id base of its final answer
/// (see [`crate::transport::matrix::ingress::answer_txn`]).
pub async fn answer(
    out: RoomOut,
    settings: MxTurnSettings,
    mut outputs: mpsc::UnboundedReceiver<SessionOutput>,
    inbox: Option<InboxEntryGuard>,
    txn: Option<String>,
) {
    let crash_after_answer = std::env::var_os(CRASH_AFTER_ANSWER_ENV).is_some_and(|v| v == "1");
    let mut typing: Option<tokio::task::JoinHandle<()>> = None;
    let mut buffer = String::new();
    let mut segments = 0usize;
    // Queued and not yet started, stopped or discarded: when the outputs end now, the Session
    // stopped under the waiting message (a restart) and the next start runs it.
    let mut waiting = false;
    while let Some(output) = outputs.recv().await {
        match output {
            SessionOutput::Queued { .. } => waiting = true,
            SessionOutput::Started => {
                waiting = false;
                typing = Some(start_typing(out.room.clone()));
            }
            SessionOutput::Event(event) if settings.streaming => match event {
                StreamEvent::TextDelta { text } => buffer.push_str(&text),
                StreamEvent::ToolUse { .. } => {
                    segments += flush(&out, &mut buffer).await;
                }
                StreamEvent::SystemStatus { status } if status_label(&status, false).is_some() => {
                    segments += flush(&out, &mut buffer).await;
                }
                _ => {}
            },
            SessionOutput::Event(_) => {}
            SessionOutput::Finished { text, result, model } => {
                waiting = false;
                stop_typing(&mut typing, &out.room).await;
                // Streamed segments already carry the start of the answer: only the rest goes
                // out (0.18.2 sent the whole text again when the rest was empty).
                let body = if settings.streaming && segments > 0 && !result.is_error { buffer.clone() } else { text };
                let footer = if settings.footer { technical_footer(&model, &result) } else { None };
                let body = match footer {
                    Some(footer) if !body.trim().is_empty() => format!("{}\n\n{footer}", body.trim_end()),
                    Some(footer) => footer,
                    None => body,
                };
                if let Some(inbox) = &inbox {
                    inbox.answered(&body);
                }
                if !body.trim().is_empty() {
                    match out.send_answer(&body, txn.as_deref()).await {
                        Ok(()) if crash_after_answer && inbox.is_some() => {
                            tracing::error!(
                                actor = "matrix",
                                "Crashing after the answer, before its entry is done ({CRASH_AFTER_ANSWER_ENV})."
                            );
                            std::process::abort();
                        }
                        Ok(()) => {}
                        Err(e) => {
                            tracing::warn!(actor = "matrix", room = %out.room.room_id(), error = %e, "Could not send an answer.");
                        }
                    }
                }
                buffer.clear();
            }
            SessionOutput::Stopped | SessionOutput::Discarded => {
                waiting = false;
                stop_typing(&mut typing, &out.room).await;
            }
            SessionOutput::Notice(text) => {
                if let Err(e) = out.rich_send(&text).await {
                    tracing::warn!(actor = "matrix", room = %out.room.room_id(), error = %e, "Could not send a notice.");
                }
            }
            SessionOutput::Menu(menu) => {
                if let Err(e) = out.send_with_buttons(&menu.text, &menu.buttons, ButtonKind::Menu, None).await {
                    tracing::warn!(actor = "matrix", room = %out.room.room_id(), error = %e, "Could not send a menu.");
                }
            }
        }
    }
    stop_typing(&mut typing, &out.room).await;
    match inbox {
        Some(inbox) if waiting => inbox.keep(),
        Some(inbox) => inbox.finish(),
        None => {}
    }
}

/// Sends the streamed text so far as its own event; 1 when something went out.
async fn flush(out: &RoomOut, buffer: &mut String) -> usize {
    let text = std::mem::take(buffer);
    if text.trim().is_empty() {
        return 0;
    }
    match out.send_answer(&text, None).await {
        Ok(()) => 1,
        Err(e) => {
            tracing::warn!(actor = "matrix", room = %out.room.room_id(), error = %e, "Could not send a streamed segment.");
            buffer.push_str(&text);
            0
        }
    }
}

fn start_typing(room: Room) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = room.typing_notice(true).await {
                tracing::debug!(actor = "matrix", error = %e, "Typing notice failed.");
            }
            tokio::time::sleep(TYPING_EVERY).await;
        }
    })
}

async fn stop_typing(typing: &mut Option<tokio::task::JoinHandle<()>>, room: &Room) {
    if let Some(task) = typing.take() {
        task.abort();
        let _ = room.typing_notice(false).await;
    }
}

/// The "could not download" notice of a received file.
pub fn download_failed(name: &str) -> String {
    render("files.download_failed", &[("name", name)])
}

//! How one Telegram message is answered (transports spec §2.3–2.8): the queue notice with its
//! "Cancel message" button while the chat is busy, status reactions, the typing indicator,
//! the streamed answer edited in place (2-s throttle, tool lines, overflow into a new message,
//! fallback to new messages after repeated edit failures) or the whole answer sent at the end,
//! and the rich send every other output uses (HTML, split, plain-text fallback, keyboard).
//! Runs as a task per message; every call goes through the chat's ordered lane.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::chat::session::SessionOutput;
use crate::core::buttons;
use crate::core::config::model::Config;
use crate::core::file_tags::{UploadKind, take_file_tags, upload_kind};
use crate::core::html::escape;
use crate::core::selector::{Button, ButtonGrid};
use crate::core::stream_event::StreamEvent;
use crate::core::text::render;
use crate::core::turn_outcome::{status_label, technical_footer};
use crate::transport::file_access::FileAccess;
use crate::transport::file_access::is_safe;
use crate::transport::inbox_entry::InboxEntryGuard;
use crate::transport::telegram::html::{MESSAGE_LIMIT, markdown_to_html, split_html, strip_tags};
use crate::transport::telegram::ingress::tool_reaction;
use crate::transport::telegram::lanes::{ApiOp, Lanes, Slot, TgError};
use crate::transport::telegram::live_message::{Coalescer, CoalescerSettings, LiveMessage};

/// How often the typing indicator is renewed.
const TYPING_EVERY: Duration = Duration::from_secs(4);

/// Queue notices waiting for their turn, by entry id: pressing `mq:<id>` fires the sender.
#[derive(Debug, Clone, Default)]
pub struct QueueNotices {
    next: Arc<AtomicU64>,
    waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>,
}

impl QueueNotices {
    fn register(&self) -> (u64, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (cancel, cancelled) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner).insert(id, cancel);
        (id, cancelled)
    }

    fn forget(&self, id: u64) {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// `mq:<id>` was pressed: cancels that queued message. `false` for an unknown id.
    pub fn cancel(&self, id: u64) -> bool {
        let sender = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        sender.is_some_and(|s| s.send(()).is_ok())
    }
}

/// Where the outputs of one message go.
#[derive(Debug, Clone)]
pub struct Target {
    /// Files an answer may send.
    pub files: std::sync::Arc<FileAccess>,
    /// The ordered lanes.
    pub lanes: Lanes,
    /// The chat.
    pub chat: i64,
    /// The forum topic.
    pub thread: Option<i32>,
    /// The person's message (answers reply to it, reactions go on it).
    pub anchor: Option<i32>,
}

/// One message's answer: settings from the config.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    streaming: bool,
    append_mode: bool,
    coalescer: CoalescerSettings,
    idle: Duration,
    edit_interval: Duration,
    max_edit_failures: u32,
    show_tool_progress: bool,
    show_thinking: bool,
    status_reaction: bool,
    footer: bool,
    reasoning: bool,
}

impl TurnSettings {
    /// From `streaming.*` and `scene.*`.
    pub fn from_config(config: &Config) -> Self {
        let s = &config.streaming;
        let positive = |v: i64| usize::try_from(v.max(1)).unwrap_or(1);
        Self {
            streaming: s.enabled,
            append_mode: s.append_mode,
            coalescer: CoalescerSettings {
                min_chars: positive(s.min_chars),
                max_chars: positive(s.max_chars),
                sentence_break: s.sentence_break,
            },
            idle: Duration::from_millis(u64::try_from(s.idle_ms.max(0)).unwrap_or(800)),
            edit_interval: Duration::from_secs_f64(s.edit_interval_seconds.clamp(0.0, 60.0)),
            max_edit_failures: u32::try_from(s.max_edit_failures.max(1)).unwrap_or(3),
            show_tool_progress: s.show_tool_progress,
            show_thinking: s.show_thinking_indicator && !s.show_reasoning_stream,
            status_reaction: config.scene.status_reaction,
            footer: config.scene.technical_footer,
            reasoning: s.show_reasoning_stream,
        }
    }
}

fn cancel_button(entry: u64) -> ButtonGrid {
    vec![vec![Button::callback("Cancel message", format!("mq:{entry}"))]]
}

/// Sends Markdown as Telegram HTML (split; plain text from the failing chunk on when Telegram
/// rejects the HTML); only the first message replies to `reply_to`; the keyboard goes on the
/// last. Returns the ids of the messages sent.
pub async fn rich_send(
    target: &Target,
    markdown: &str,
    reply_to: Option<i32>,
    keyboard: Option<ButtonGrid>,
) -> Result<Vec<i32>, TgError> {
    let (text, files) = take_file_tags(markdown, &target.files.home);
    let mut sent = if text.is_empty() { Vec::new() } else { send_text(target, &text, reply_to, keyboard).await? };
    for path in files {
        sent.extend(send_file(target, &path, if sent.is_empty() { reply_to } else { None }).await?);
    }
    Ok(sent)
}

/// One file of an answer (§2.10): refused outside the allowed roots, reported when missing,
/// retried as a document when Telegram refuses it as a photo, video or audio.
async fn send_file(target: &Target, path: &camino::Utf8Path, reply_to: Option<i32>) -> Result<Vec<i32>, TgError> {
    let name = path.file_name().unwrap_or(path.as_str());
    if !path.is_file() {
        let notice = render("files.missing", &[("name", name), ("path", path.as_str())]);
        return send_plain(target, &notice, Vec::new()).await;
    }
    if !is_safe(path, target.files.roots.as_deref()) {
        let notice = render("files.outside", &[("name", &escape(name))]);
        let op = ApiOp::Send { text: notice, html: true, reply_to, thread: target.thread, keyboard: None };
        return Ok(target.lanes.call(target.chat, op).await?.message_id().into_iter().collect());
    }
    let upload = upload_kind(path);
    let op = |upload| ApiOp::File { path: path.to_owned(), upload, reply_to, thread: target.thread };
    let outcome = match target.lanes.call(target.chat, op(upload)).await {
        Err(e) if e.is_bad_request() && upload != UploadKind::Document => {
            target.lanes.call(target.chat, op(UploadKind::Document)).await
        }
        outcome => outcome,
    };
    match outcome {
        Ok(done) => Ok(done.message_id().into_iter().collect()),
        Err(TgError::Network(e)) => Err(TgError::Network(e)),
        Err(e) => {
            tracing::warn!(actor = "telegram", chat = target.chat, file = %path, error = %e, "Could not send a file.");
            send_plain(target, &render("files.failed", &[("name", name)]), Vec::new()).await
        }
    }
}

/// The text part of [`rich_send`].
async fn send_text(
    target: &Target,
    markdown: &str,
    reply_to: Option<i32>,
    keyboard: Option<ButtonGrid>,
) -> Result<Vec<i32>, TgError> {
    let keyboard = keyboard.unwrap_or_else(|| buttons::keyboard(markdown));
    send_html_chunks(target, &markdown_to_html(markdown), reply_to, keyboard).await
}

/// Sends HTML split to the limit: the first message replies to `reply_to`, the last carries the
/// keyboard; from a chunk Telegram refuses on, the rest goes as plain text.
async fn send_html_chunks(
    target: &Target,
    html: &str,
    reply_to: Option<i32>,
    keyboard: ButtonGrid,
) -> Result<Vec<i32>, TgError> {
    let chunks = split_html(html, MESSAGE_LIMIT);
    let mut sent = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let last = index + 1 == chunks.len();
        let op = ApiOp::Send {
            text: chunk.clone(),
            html: true,
            reply_to: if index == 0 { reply_to } else { None },
            thread: target.thread,
            keyboard: last.then(|| keyboard.clone()),
        };
        match target.lanes.call(target.chat, op).await {
            Ok(done) => sent.extend(done.message_id()),
            Err(e) if e.is_bad_request() => {
                tracing::info!(actor = "telegram", chat = target.chat, error = %e, "HTML refused; sending plain text.");
                let plain = strip_tags(&chunks[index..].join("\n\n"));
                sent.extend(send_plain(target, &plain, keyboard).await?);
                return Ok(sent);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// Sends ready HTML (split, plain text from a refused chunk on); the ids sent, none on failure.
async fn send_html(target: &Target, html: &str) -> Vec<i32> {
    send_html_chunks(target, html, None, Vec::new()).await.unwrap_or_default()
}

/// Sends plain text (no parse mode), split, keyboard on the last message.
pub async fn send_plain(target: &Target, text: &str, keyboard: ButtonGrid) -> Result<Vec<i32>, TgError> {
    let chunks: Vec<String> = split_html(&escape(text), MESSAGE_LIMIT).iter().map(|c| strip_tags(c)).collect();
    let mut sent = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let last = index + 1 == chunks.len();
        let op = ApiOp::Send {
            text: chunk.clone(),
            html: false,
            reply_to: None,
            thread: target.thread,
            keyboard: last.then(|| keyboard.clone()),
        };
        sent.extend(target.lanes.call(target.chat, op).await?.message_id());
    }
    Ok(sent)
}

/// The live message of a streamed answer.
struct Stream {
    live: LiveMessage,
    message: Option<i32>,
    last_edit: Option<Instant>,
    edit_due: Option<Instant>,
    failures: u32,
    append: bool,
    streamed_text: bool,
    sent_any: bool,
    last_sent: Option<i32>,
}

/// Where a message's answer stands among its chat's answers: its task waits for the previous
/// message's task to end before its turn shows anything, and its own link ends only after the
/// previous one did (a task that never started a turn — a command answered at once — still
/// passes the order on), so the next one goes on after every earlier answer.
#[derive(Debug, Default)]
pub struct AnswerOrder {
    after: Option<oneshot::Receiver<()>>,
    done: Option<oneshot::Sender<()>>,
}

impl Drop for AnswerOrder {
    fn drop(&mut self) {
        if let (Some(after), Some(done)) = (self.after.take(), self.done.take()) {
            tokio::spawn(async move {
                let _ = after.await;
                drop(done);
            });
        }
    }
}

impl AnswerOrder {
    /// The next link of a chat's chain: after `previous` (the last link's end, if any); the
    /// returned receiver is the end of this one.
    pub fn after(previous: Option<oneshot::Receiver<()>>) -> (Self, oneshot::Receiver<()>) {
        let (done, end) = oneshot::channel();
        (Self { after: previous, done: Some(done) }, end)
    }
}

/// Drives one message's outputs to Telegram until its turn is over. `slot` is the place in
/// the chat's order reserved when the message arrived: the queue notice goes there, so notices
/// keep the order of the messages; any other first output frees it.
pub async fn answer(
    target: Target,
    settings: TurnSettings,
    notices: QueueNotices,
    mut outputs: mpsc::UnboundedReceiver<SessionOutput>,
    slot: Option<Slot>,
    inbox: Option<InboxEntryGuard>,
    mut order: AnswerOrder,
) {
    let mut slot = slot;
    let mut turn = Turn {
        inbox,
        target,
        settings: settings.clone(),
        notices,
        indicator: None,
        reaction: None,
        typing: None,
        coalescer: Coalescer::new(settings.coalescer),
        reasoning: Coalescer::new(settings.coalescer),
        idle_due: None,
        stream: Stream {
            live: LiveMessage::default(),
            message: None,
            last_edit: None,
            edit_due: None,
            failures: 0,
            append: settings.append_mode,
            streamed_text: false,
            sent_any: false,
            last_sent: None,
        },
        thinking_shown: false,
    };
    let mut cancelled: Option<oneshot::Receiver<()>> = None;
    // Queued and nothing since: when the outputs end now, the Session stopped under the message.
    let mut waiting = false;
    loop {
        let idle = turn.idle_due;
        let edit = turn.stream.edit_due;
        let cancel = async {
            match cancelled.as_mut() {
                Some(receiver) => receiver.await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            output = outputs.recv() => {
                let Some(output) = output else {
                    if waiting {
                        // Queued and never started: the Session stopped under the waiting
                        // message (a restart); it stays in the inbox and runs at the next start.
                        if let Some(inbox) = turn.inbox.take() {
                            inbox.keep();
                        }
                        turn.indicator_says("[Message kept: it runs when ductor is back.]").await;
                    }
                    break;
                };
                if let SessionOutput::Queued { .. } = output {
                    waiting = true;
                    if turn.indicator.is_none() {
                        cancelled = turn.queue_notice(slot.take()).await;
                    }
                    continue;
                }
                waiting = false;
                slot = None;
                // The previous message of this chat is answered first (its task may still be
                // sending while this turn, run right after it, already starts). Notices of
                // commands that act at once do not wait.
                if matches!(output, SessionOutput::Started)
                    && let Some(previous) = order.after.take()
                {
                    let _ = previous.await;
                }
                if turn.output(output).await {
                    break;
                }
            }
            () = sleep_until(idle) => {
                turn.idle_due = None;
                if let Some(chunk) = turn.coalescer.take_all() {
                    turn.text(&chunk).await;
                }
            }
            () = sleep_until(edit) => {
                turn.stream.edit_due = None;
                turn.edit_now().await;
            }
            pressed = cancel => {
                cancelled = None;
                if pressed {
                    // Dropping the outputs tells the Session to skip this message.
                    turn.indicator_says("[Message cancelled.]").await;
                    return;
                }
            }
        }
    }
    turn.stop_typing();
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Turn {
    inbox: Option<InboxEntryGuard>,
    target: Target,
    settings: TurnSettings,
    notices: QueueNotices,
    indicator: Option<(i32, u64)>,
    reaction: Option<&'static str>,
    typing: Option<tokio::task::JoinHandle<()>>,
    coalescer: Coalescer,
    reasoning: Coalescer,
    idle_due: Option<Instant>,
    stream: Stream,
    thinking_shown: bool,
}

impl Turn {
    async fn queue_notice(&mut self, slot: Option<Slot>) -> Option<oneshot::Receiver<()>> {
        let (entry, cancelled) = self.notices.register();
        let op = ApiOp::Send {
            text: "<i>[Message in queue...]</i>".to_owned(),
            html: true,
            reply_to: self.target.anchor,
            thread: self.target.thread,
            keyboard: Some(cancel_button(entry)),
        };
        let sent = match slot {
            Some(slot) => slot.fill(op).await,
            None => self.target.lanes.call(self.target.chat, op).await,
        };
        match sent {
            Ok(done) => {
                self.indicator = done.message_id().map(|id| (id, entry));
                Some(cancelled)
            }
            Err(e) => {
                tracing::debug!(actor = "telegram", chat = self.target.chat, error = %e, "Queue notice not sent.");
                self.notices.forget(entry);
                None
            }
        }
    }

    async fn indicator_says(&mut self, label: &str) {
        if let Some((message_id, entry)) = self.indicator.take() {
            self.notices.forget(entry);
            let op = ApiOp::Edit {
                message_id,
                text: format!("<i>{}</i>", escape(label)),
                html: true,
                keyboard: Some(Vec::new()),
            };
            let _ = self.target.lanes.call(self.target.chat, op).await;
        }
    }

    fn react(&mut self, emoji: Option<&'static str>) {
        if !self.settings.status_reaction || self.reaction == emoji {
            return;
        }
        let Some(message_id) = self.target.anchor else { return };
        self.reaction = emoji;
        self.target.lanes.post(self.target.chat, ApiOp::React { message_id, emoji: emoji.map(str::to_owned) });
    }

    fn start_typing(&mut self) {
        let target = self.target.clone();
        self.typing = Some(tokio::spawn(async move {
            loop {
                let op = ApiOp::Typing { thread: target.thread };
                if target.lanes.call(target.chat, op).await.is_err() {
                    break;
                }
                tokio::time::sleep(TYPING_EVERY).await;
            }
        }));
    }

    fn stop_typing(&mut self) {
        if let Some(typing) = self.typing.take() {
            typing.abort();
        }
    }

    /// Handles one output; `true` when the message is done.
    async fn output(&mut self, output: SessionOutput) -> bool {
        match output {
            SessionOutput::Queued { .. } => false,
            SessionOutput::Started => {
                if let Some((message_id, entry)) = self.indicator.take() {
                    self.notices.forget(entry);
                    self.target.lanes.post(self.target.chat, ApiOp::Delete { message_id });
                }
                self.react(Some("🤔"));
                self.start_typing();
                false
            }
            SessionOutput::Event(event) => {
                self.event(event).await;
                false
            }
            SessionOutput::Finished { text, result, model } => {
                let footer = if self.settings.footer { technical_footer(&model, &result) } else { None };
                self.finish(&text, footer.as_deref()).await;
                true
            }
            SessionOutput::Stopped => {
                self.stop_typing();
                if let Some(chunk) = self.coalescer.take_all() {
                    self.text(&chunk).await;
                }
                if self.stream.message.is_some() {
                    self.final_edit(Vec::new()).await;
                }
                self.react(None);
                true
            }
            SessionOutput::Discarded => {
                self.indicator_says("[Message discarded.]").await;
                true
            }
            SessionOutput::Notice(text) => {
                if let Err(e) = rich_send(&self.target, &text, self.target.anchor, None).await {
                    tracing::warn!(actor = "telegram", chat = self.target.chat, error = %e, "Could not send a notice.");
                }
                false
            }
            SessionOutput::Menu(menu) => {
                let sent = rich_send(&self.target, &menu.text, self.target.anchor, Some(menu.buttons)).await;
                if let Err(e) = sent {
                    tracing::warn!(actor = "telegram", chat = self.target.chat, error = %e, "Could not send a menu.");
                }
                false
            }
        }
    }

    async fn event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::TextDelta { text } if self.settings.streaming => {
                if let Some(chunk) = self.reasoning.take_all() {
                    self.reasoning_chunk(&chunk).await;
                }
                self.idle_due = None;
                let fed = self.coalescer.feed(&text);
                if let Some(chunk) = fed.chunk {
                    self.text(&chunk).await;
                }
                if fed.arm_idle {
                    self.idle_due = Some(Instant::now() + self.settings.idle);
                }
            }
            StreamEvent::ToolUse { name, .. } => {
                self.react(Some(tool_reaction(&name)));
                if self.settings.streaming {
                    self.flush_text().await;
                    if self.settings.show_tool_progress {
                        self.line(&name, false).await;
                    }
                }
            }
            StreamEvent::SystemStatus { status } => {
                let label = status_label(&status, self.settings.show_thinking);
                if label.is_some() {
                    self.react(Some("💯"));
                }
                if let (Some(label), true) = (label, self.settings.streaming) {
                    self.flush_text().await;
                    self.line(label, true).await;
                }
            }
            StreamEvent::Thinking { text } if self.settings.streaming && self.settings.reasoning => {
                self.react(Some("🤔"));
                if !text.trim().is_empty() {
                    self.flush_text().await;
                    if let Some(chunk) = self.reasoning.feed(&text).chunk {
                        self.reasoning_chunk(&chunk).await;
                    }
                }
            }
            StreamEvent::Thinking { .. } => {
                self.react(Some("🤔"));
                if self.settings.streaming && self.settings.show_thinking && !self.thinking_shown {
                    self.thinking_shown = true;
                    self.flush_text().await;
                    self.line("THINKING", true).await;
                }
            }
            _ => {}
        }
    }

    /// Reasoning shown as its own messages (`show_reasoning_stream`).
    async fn reasoning_chunk(&mut self, chunk: &str) {
        let text = format!("**Thinking**\n\n{}", chunk.trim());
        if let Err(e) = rich_send(&self.target, &text, None, Some(Vec::new())).await {
            tracing::debug!(actor = "telegram", chat = self.target.chat, error = %e, "Reasoning not shown.");
        }
    }

    async fn flush_text(&mut self) {
        if let Some(chunk) = self.reasoning.take_all() {
            self.reasoning_chunk(&chunk).await;
        }
        self.idle_due = None;
        if let Some(chunk) = self.coalescer.take_all() {
            self.text(&chunk).await;
        }
    }

    /// A chunk of answer text for the stream.
    async fn text(&mut self, chunk: &str) {
        if chunk.trim().is_empty() {
            return;
        }
        self.stream.streamed_text = true;
        if self.stream.append {
            if let Ok(ids) = rich_send(&self.target, chunk, None, Some(Vec::new())).await {
                self.stream.sent_any |= !ids.is_empty();
                self.stream.last_sent = ids.last().copied().or(self.stream.last_sent);
            }
            return;
        }
        self.stream.live.add_text(chunk);
        self.schedule_edit().await;
    }

    /// A tool or status line for the stream.
    async fn line(&mut self, name: &str, system: bool) {
        if self.stream.append {
            let mut single = LiveMessage::default();
            if system {
                single.add_system(name)
            } else {
                single.add_tool(name)
            }
            let op = ApiOp::Send {
                text: single.render(),
                html: true,
                reply_to: None,
                thread: self.target.thread,
                keyboard: None,
            };
            if let Ok(done) = self.target.lanes.call(self.target.chat, op).await {
                self.stream.sent_any = true;
                self.stream.last_sent = done.message_id().or(self.stream.last_sent);
            }
            return;
        }
        if system {
            self.stream.live.add_system(name)
        } else {
            self.stream.live.add_tool(name)
        }
        self.schedule_edit().await;
    }

    /// Edits now when the last edit is old enough; otherwise one deferred edit.
    async fn schedule_edit(&mut self) {
        if self.stream.message.is_none() {
            self.edit_now().await;
            return;
        }
        let due = self.stream.last_edit.map_or_else(Instant::now, |at| at + self.settings.edit_interval);
        if due <= Instant::now() {
            self.edit_now().await;
        } else if self.stream.edit_due.is_none() {
            self.stream.edit_due = Some(due);
        }
    }

    async fn edit_now(&mut self) {
        self.stream.edit_due = None;
        while let Some(sealed) = self.stream.live.take_overflow() {
            self.put(sealed, None).await;
            self.stream.message = None;
        }
        let rendered = self.stream.live.render();
        if rendered.trim().is_empty() {
            return;
        }
        self.put(rendered, None).await;
    }

    /// Writes `html` into the live message (creating it when there is none).
    async fn put(&mut self, html: String, keyboard: Option<ButtonGrid>) {
        self.stream.last_edit = Some(Instant::now());
        match self.stream.message {
            None => {
                let op = ApiOp::Send {
                    text: html.clone(),
                    html: true,
                    reply_to: None,
                    thread: self.target.thread,
                    keyboard,
                };
                match self.target.lanes.call(self.target.chat, op).await {
                    Ok(done) => {
                        self.stream.message = done.message_id();
                        self.stream.sent_any = true;
                    }
                    Err(e) if e.is_bad_request() => {
                        let plain = strip_tags(&html);
                        if let Ok(ids) = send_plain(&self.target, &plain, Vec::new()).await {
                            self.stream.message = ids.last().copied();
                            self.stream.sent_any = true;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(actor = "telegram", chat = self.target.chat, error = %e, "Stream message not created.")
                    }
                }
            }
            Some(message_id) => {
                let op = ApiOp::Edit { message_id, text: html, html: true, keyboard };
                match self.target.lanes.call(self.target.chat, op).await {
                    Ok(_) | Err(TgError::NotModified) => self.stream.failures = 0,
                    Err(e) => {
                        self.stream.failures += 1;
                        tracing::debug!(actor = "telegram", chat = self.target.chat, error = %e, failures = self.stream.failures, "Stream edit failed.");
                        if self.stream.failures >= self.settings.max_edit_failures {
                            tracing::info!(
                                actor = "telegram",
                                chat = self.target.chat,
                                "Edits keep failing; the rest of this answer comes as new messages."
                            );
                            self.stream.append = true;
                            // What the failed edits would have shown comes as new messages,
                            // so nothing of the answer is lost.
                            let unseen = std::mem::take(&mut self.stream.live).render_final();
                            if !unseen.trim().is_empty() {
                                let sent = send_html(&self.target, &unseen).await;
                                self.stream.last_sent = sent.last().copied().or(self.stream.last_sent);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The last edit of the live message: the answer without indicator lines.
    async fn final_edit(&mut self, keyboard: ButtonGrid) {
        let html = self.stream.live.render_final();
        if html.trim().is_empty() {
            if let Some(message_id) = self.stream.message {
                self.target.lanes.post(self.target.chat, ApiOp::Delete { message_id });
            }
            return;
        }
        self.stream.edit_due = None;
        self.put(html, Some(keyboard)).await;
    }

    async fn finish(&mut self, text: &str, footer: Option<&str>) {
        if let Some(inbox) = &self.inbox {
            inbox.answered(text);
        }
        self.stop_typing();
        self.flush_text().await;
        let with_footer;
        let text = match footer {
            Some(footer) => {
                if self.stream.streamed_text && !self.stream.append {
                    self.stream.live.add_text(footer);
                }
                with_footer = format!("{text}{footer}");
                with_footer.as_str()
            }
            None => text,
        };
        let keyboard = buttons::keyboard(text);
        let streamed = self.settings.streaming && self.stream.streamed_text && self.stream.sent_any;
        if streamed && !self.stream.append {
            self.final_edit(keyboard).await;
        } else if streamed {
            if !keyboard.is_empty() {
                self.put_keyboard_on_last(keyboard).await;
            }
        } else {
            if let Some(message_id) = self.stream.message.take() {
                // Only indicator lines were shown: the answer replaces them.
                self.target.lanes.post(self.target.chat, ApiOp::Delete { message_id });
            }
            if let Err(e) = rich_send(&self.target, text, self.target.anchor, Some(keyboard)).await {
                tracing::warn!(actor = "telegram", chat = self.target.chat, error = %e, "Could not send the answer.");
            }
        }
        // The answer is out: the entry is done now, before anything else (the shorter this
        // window, the rarer an answer delivered twice after a crash).
        if let Some(inbox) = self.inbox.take() {
            inbox.finish();
        }
        self.react(None);
    }

    async fn put_keyboard_on_last(&mut self, keyboard: ButtonGrid) {
        if let Some(message_id) = self.stream.last_sent {
            let _ = self.target.lanes.call(self.target.chat, ApiOp::EditKeyboard { message_id, keyboard }).await;
        }
    }
}

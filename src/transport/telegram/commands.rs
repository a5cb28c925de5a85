//! What the Telegram transport answers itself, without the Orchestrator: `/help`, `/start`,
//! `/info`, `/agent_commands`, `/showfiles` and its file browser, `/restart`, and the button
//! presses it owns (queue-notice cancel, file browser) before the rest goes to the
//! Orchestrator.

use std::sync::Arc;

use teloxide::prelude::Requester;

use super::actor::{TELEGRAM_TRANSPORT, TelegramState, chat_kind};
use crate::chat::session::SessionOutput;
use crate::core::command::MENU;
use crate::core::file_browser::{self, BrowserAction};
use crate::core::html::escape;
use crate::core::session_key::SessionKey;
use crate::core::text::render;
use crate::transport::telegram::ingress::{Admission, Gate, Incoming, admit, command_word};
use crate::transport::telegram::lanes::{ApiOp, TgError};
use crate::transport::telegram::turn::{AnswerOrder, Target, TurnSettings, answer, rich_send};

/// The file browser's view of `<home>/<rel>`; "not found" for anything outside the home or
/// not a folder.
pub(super) fn browse(home: &camino::Utf8Path, rel: &str) -> crate::core::selector::Menu {
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
pub(super) const INFO_ORIGINAL: &str = "https://pypi.org/project/ductor/";

pub(super) const INFO_CHANGELOG: &str = "https://pypi.org/project/ductor/#history";

pub(super) fn help_text() -> String {
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
    /// Commands the transport answers itself; `true` when `text` was one.
    pub(super) async fn transport_command(
        &mut self,
        text: &str,
        target: &Target,
        message: &teloxide::types::Message,
    ) -> bool {
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

    pub(super) async fn restart(&mut self, target: &Target) {
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

    pub(super) async fn callback(&mut self, query: &teloxide::types::CallbackQuery) {
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
                    tokio::spawn(answer(
                        target,
                        settings,
                        self.notices.clone(),
                        outputs,
                        Some(slot),
                        None,
                        AnswerOrder::default(),
                    ));
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
        tokio::spawn(answer(target, settings, self.notices.clone(), outputs, Some(slot), None, AnswerOrder::default()));
    }

    /// `/new @<topic name>`: starts that forum topic's session over.
    pub(super) async fn new_in_topic(&self, text: &str, target: &Target) -> String {
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
}

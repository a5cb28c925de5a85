//! What the Matrix transport answers itself (transports spec §3.6): `!help`/`!start`,
//! `!info`, `!agent_commands`, `!showfiles [dir]`, `!restart`; and the answer buttons picked by
//! reaction or by a typed number.

use std::sync::PoisonError;

use super::actor::{MATRIX_TRANSPORT, MatrixState};
use crate::core::command::MENU;
use crate::core::session_key::SessionKey;
use crate::core::text::render;
use crate::transport::matrix::text::reaction_choice;
use crate::transport::matrix::turn::{ButtonKind, ButtonSet, RoomOut, answer};

/// `!help` on Matrix: the command menu's descriptions, with `!`.
pub(super) fn help_text() -> String {
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
pub(super) fn show_files(home: &camino::Utf8Path, arg: &str) -> String {
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
    /// Button `choice` of the room's active set was picked: the set is used up.
    pub(super) fn press(&mut self, room_id: &str, key: SessionKey, out: RoomOut, choice: usize) {
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
    pub(super) fn reaction(&mut self, room_id: &str, sender: &str, target: &str, key: &str) {
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
    pub(super) async fn transport_command(&mut self, text: &str, out: &RoomOut) -> bool {
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

    pub(super) async fn restart(&mut self, out: &RoomOut) {
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
}

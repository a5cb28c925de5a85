//! Groups and channels of the Telegram transport (transports spec §2.1, §2.10): allow-lists
//! reloaded when `config.json` changes, the tracked chats of `chat_activity.json`, leaving
//! groups that are no longer allowed (at login, every 24 h, on a change), the bot's own
//! membership changes and the join notification.

use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::Requester;

use super::actor::{AllowLists, TelegramState, chat_type, now_iso};
use crate::core::config::resolve;
use crate::core::text::render;
use crate::store::config_file::read_raw_config;
use crate::store::state_files::StateFile;
use crate::transport::telegram::turn::{Target, rich_send};

/// How often `config.json` is checked for new allow-lists.
pub(super) const CONFIG_POLL: Duration = Duration::from_secs(3);

/// How often tracked groups are checked against the allow-lists.
pub(super) const GROUP_AUDIT_EVERY: Duration = Duration::from_secs(24 * 3600);

impl TelegramState {
    /// Takes new allow-lists from `config.json` when it changed and still validates; a new
    /// group list triggers the group audit. A broken file keeps the lists in force.
    pub(super) async fn reload_allow_lists(&mut self) {
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
    pub(super) async fn audit_groups(&mut self) {
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

    pub(super) fn save_tracker(&self) {
        if let Err(e) = self.tracker.save(&self.args.paths) {
            tracing::warn!(actor = "telegram", error = %e, "Could not save chat_activity.json.");
        }
    }

    /// `/leave <chat id>`.
    pub(super) async fn leave(&mut self, text: &str) -> String {
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
    pub(super) async fn membership(&mut self, change: &teloxide::types::ChatMemberUpdated) {
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
    pub(super) async fn join_notification(&self, target: &Target) {
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
}

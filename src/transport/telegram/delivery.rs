//! Bus deliveries through Telegram (transports spec §4): a unicast to its chat or topic, a
//! broadcast to every allowed user (retried only for those who did not get it), the restart
//! notice after `/restart`; each confirmed only once Telegram accepted it.

use std::sync::Arc;

use super::actor::{TELEGRAM_TRANSPORT, TelegramArgs, TelegramState};
use crate::core::envelope::{DeliveryMode, Origin};
use crate::core::envelope_text;
use crate::runtime::adapter::{Delivery, DeliveryError};
use crate::transport::file_access::FileAccess;
use crate::transport::telegram::lanes::{Lanes, TgError};
use crate::transport::telegram::turn::{Target, rich_send};

/// `restart-sentinel.json` left by `/restart`: its message goes to its chat, the file is removed.
pub(super) async fn deliver_restart_sentinel(lanes: &Lanes, args: &TelegramArgs) {
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

/// Whether the Bus should try again.
pub(super) fn delivery_error(error: &TgError) -> DeliveryError {
    match error {
        TgError::Forbidden(_) | TgError::BadRequest(_) | TgError::BadHtml(_) | TgError::NotModified => {
            DeliveryError::Permanent(error.to_string())
        }
        TgError::RateLimited(_) | TgError::Network(_) | TgError::Other(_) => {
            DeliveryError::Retryable(error.to_string())
        }
    }
}

impl TelegramState {
    pub(super) async fn deliver(&mut self, delivery: Delivery) {
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

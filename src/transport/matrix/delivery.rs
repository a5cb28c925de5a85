//! Bus deliveries through Matrix (transports spec §4): a unicast to the room of a chat id (a cron
//! result for an unknown room to every broadcast room), a broadcast to the allowed rooms or else
//! the last active room, the restart notice; each sent from its own task and confirmed once the
//! homeserver accepted it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use matrix_sdk::Client;
use matrix_sdk::ruma::OwnedRoomId;

use super::actor::{MATRIX_TRANSPORT, MatrixState};
use crate::core::envelope::{DeliveryMode, Origin};
use crate::core::envelope_text;
use crate::runtime::adapter::{Delivery, DeliveryError};
use crate::transport::file_access::FileAccess;
use crate::transport::matrix::ingress::{RoomIds, SentEvents};
use crate::transport::matrix::turn::{ButtonSets, MxError, RoomOut};

/// What a Bus delivery needs, detached from the actor.
pub(super) struct Outs {
    client: Client,
    files: Arc<FileAccess>,
    sent: Arc<Mutex<SentEvents>>,
    buttons: ButtonSets,
    room_ids: Arc<Mutex<RoomIds>>,
    allowed_rooms: Vec<String>,
    last_active: Option<String>,
    broadcast_done: Arc<Mutex<HashMap<String, HashSet<String>>>>,
}

impl Outs {
    fn out(&self, room_id: &str) -> Option<RoomOut> {
        let room = self.client.get_room(&OwnedRoomId::try_from(room_id).ok()?)?;
        Some(RoomOut {
            room,
            files: Arc::clone(&self.files),
            sent: Arc::clone(&self.sent),
            buttons: Arc::clone(&self.buttons),
        })
    }

    /// Rooms a broadcast goes to: the allowed rooms, else the last active one.
    fn broadcast_rooms(&self) -> Vec<String> {
        let allowed: Vec<String> = self.allowed_rooms.iter().filter(|r| r.starts_with('!')).cloned().collect();
        if allowed.is_empty() { self.last_active.iter().cloned().collect() } else { allowed }
    }

    async fn deliver(self, delivery: Delivery) {
        let Delivery { envelope, mode, receipt } = delivery;
        let unicast_room = || {
            let chat = u64::try_from(envelope.chat_id.get()).ok()?;
            self.room_ids.lock().unwrap_or_else(PoisonError::into_inner).room(chat).map(str::to_owned)
        };
        let broadcast = match mode {
            DeliveryMode::Unicast => {
                let Some(text) = envelope_text::unicast_text(&envelope) else {
                    receipt.confirm();
                    return;
                };
                match unicast_room().and_then(|room| self.out(&room)) {
                    Some(out) => {
                        match out.send_answer(&text, None).await {
                            Ok(()) => receipt.confirm(),
                            Err(e) => receipt.fail(delivery_error(&e)),
                        }
                        return;
                    }
                    // An unknown room: a cron result goes to everyone instead (§3.11).
                    None if matches!(envelope.origin, Origin::Cron | Origin::WebhookCron) => text,
                    None => {
                        tracing::info!(actor = "matrix", chat = %envelope.chat_id.get(), "No room for this chat id; envelope dropped.");
                        receipt.fail(DeliveryError::Permanent(format!(
                            "no Matrix room for chat {}",
                            envelope.chat_id.get()
                        )));
                        return;
                    }
                }
            }
            DeliveryMode::Broadcast => match envelope_text::broadcast_text(&envelope) {
                Some(text) => text,
                None => {
                    receipt.confirm();
                    return;
                }
            },
        };
        let rooms = self.broadcast_rooms();
        if rooms.is_empty() {
            tracing::warn!(
                actor = "matrix",
                "A broadcast with no room to go to (no allowed rooms, none active); dropped."
            );
            receipt.confirm();
            return;
        }
        let id = envelope.envelope_id.as_str().to_owned();
        let mut retry = None;
        for room_id in rooms {
            let done = self
                .broadcast_done
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&id)
                .is_some_and(|d| d.contains(&room_id));
            if done {
                continue;
            }
            let Some(out) = self.out(&room_id) else { continue };
            match out.send_answer(&broadcast, None).await {
                Ok(()) => {
                    self.broadcast_done
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(id.clone())
                        .or_default()
                        .insert(room_id);
                }
                Err(e) => {
                    tracing::warn!(actor = "matrix", room = %room_id, error = %e, "Broadcast to a room failed.");
                    match delivery_error(&e) {
                        DeliveryError::Permanent(_) => {
                            self.broadcast_done
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .entry(id.clone())
                                .or_default()
                                .insert(room_id);
                        }
                        retryable => retry = Some(retryable),
                    }
                }
            }
        }
        match retry {
            Some(error) => receipt.fail(error),
            None => {
                self.broadcast_done.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                receipt.confirm();
            }
        }
    }
}

pub(super) fn delivery_error(error: &MxError) -> DeliveryError {
    match error {
        MxError::Refused(why) => DeliveryError::Permanent(why.clone()),
        MxError::Unreachable(why) => DeliveryError::Retryable(why.clone()),
    }
}

impl MatrixState {
    /// The restart sentinel written by `!restart` in a Matrix room: its message goes there.
    pub(super) async fn deliver_restart_sentinel(&mut self) {
        let path = self.args.paths.restart_sentinel();
        let Ok(text) = std::fs::read_to_string(&path) else { return };
        let Ok(sentinel) = serde_json::from_str::<serde_json::Value>(&text) else { return };
        if sentinel.get("transport").and_then(|t| t.as_str()) != Some(MATRIX_TRANSPORT) {
            return;
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(actor = "matrix", path = %path, error = %e, "Could not remove the restart sentinel.");
        }
        let chat = sentinel.get("chat_id").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let message = sentinel.get("message").and_then(|m| m.as_str()).unwrap_or_default();
        if let Some(out) = self.room_of_chat(chat)
            && !message.is_empty()
            && let Err(e) = out.rich_send(message).await
        {
            tracing::warn!(actor = "matrix", chat, error = %e, "Could not send the restart notice.");
        }
    }

    pub(super) fn room_of_chat(&self, chat: u64) -> Option<RoomOut> {
        let (client, _) = self.client()?;
        let room_id = self.room_ids.lock().unwrap_or_else(PoisonError::into_inner).room(chat)?.to_owned();
        let room = client.get_room(&OwnedRoomId::try_from(room_id).ok()?)?;
        Some(self.out(room))
    }

    /// Delivers a Bus envelope in its own task (a slow homeserver never holds up the actor).
    pub(super) fn deliver(&mut self, delivery: Delivery) {
        let Some((client, _)) = self.client() else {
            delivery.receipt.fail(DeliveryError::Retryable("Matrix is not connected yet".to_owned()));
            return;
        };
        let outs = Outs {
            client,
            files: Arc::clone(&self.files),
            sent: Arc::clone(&self.sent),
            buttons: Arc::clone(&self.buttons),
            room_ids: Arc::clone(&self.room_ids),
            allowed_rooms: self.args.config.matrix.allowed_rooms.clone(),
            last_active: self.last_active.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            broadcast_done: Arc::clone(&self.broadcast_done),
        };
        tokio::spawn(outs.deliver(delivery));
    }
}

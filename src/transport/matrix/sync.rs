//! The Matrix syncer: a `sync_once` loop whose batches (messages, reactions, invites) go to the
//! actor and into the inbox before the batch's `next_batch` token is saved. A homeserver that
//! cannot be reached is tried again after a capped backoff (1 s → 60 s) while the tree shows
//! `reconnecting`; a refused token ends it and the actor fails.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use matrix_sdk::Client;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::events::room::message::MessageType;
use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent, SyncMessageLikeEvent};
use ractor::ActorRef;
use tokio::sync::oneshot;

use super::actor::{Inbound, MATRIX_TRANSPORT, MatrixMsg, sent_at};
use crate::core::inbox::InboxEntry;
use crate::core::reconnect::Reconnect;
use crate::runtime::health_board::LinkStatus;
use crate::store::inbox_journal::{CRASH_BEFORE_CONFIRM_ENV, SharedInbox};
use crate::transport::matrix::ingress::RoomIds;
use crate::transport::matrix::store::MatrixStore;

/// Long-poll timeout of `/sync`.
pub(super) const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// What the syncer works with.
pub(super) struct Syncer {
    pub(super) client: Client,
    pub(super) store: MatrixStore,
    pub(super) actor: ActorRef<MatrixMsg>,
    pub(super) inbox: SharedInbox,
    pub(super) room_ids: Arc<Mutex<RoomIds>>,
    /// The bot's own user id (its events are not taken).
    pub(super) bot: String,
    pub(super) link: LinkStatus,
}

/// The syncer: one `/sync` after another from `token`; each batch goes to the actor and into
/// the inbox before the token that covers it is saved.
pub(super) async fn sync_loop(syncer: Syncer, mut token: String) {
    let Syncer { client, store, actor, inbox, room_ids, bot, link } = syncer;
    let mut reconnect = Reconnect::new();
    let crash_before_confirm = std::env::var_os(CRASH_BEFORE_CONFIRM_ENV).is_some_and(|v| v == "1");
    loop {
        let settings = SyncSettings::default().token(token.clone()).timeout(SYNC_TIMEOUT);
        match client.sync_once(settings).await {
            Ok(response) => {
                if reconnect.failures() > 0 {
                    tracing::info!(actor = "matrix", "The homeserver answers again.");
                    reconnect.succeeded();
                    link.connected();
                }
                let (batch, entries) = inbound(&response, &inbox, &room_ids, &store, &bot);
                if !batch.is_empty() {
                    let (recorded, done) = oneshot::channel();
                    if actor.cast(MatrixMsg::Synced { batch, recorded }).is_err() {
                        return;
                    }
                    // The turns need not wait for the fsync; only the token below does.
                    inbox.record(entries);
                    if done.await.is_err() {
                        return;
                    }
                    if crash_before_confirm {
                        tracing::error!(
                            actor = "matrix",
                            "Crashing before the sync token is saved ({CRASH_BEFORE_CONFIRM_ENV})."
                        );
                        std::process::abort();
                    }
                }
                if let Err(e) = store.save_next_batch(&response.next_batch) {
                    tracing::warn!(actor = "matrix", error = %e, "Could not save the sync token.");
                }
                token = response.next_batch;
            }
            Err(e) => {
                let refused = e.as_client_api_error().is_some_and(|api| api.status_code.as_u16() == 401);
                if refused {
                    let _ = actor.cast(MatrixMsg::SyncFailed(format!("Matrix sync failed: {e}")));
                    return;
                }
                let wait = reconnect.failed(rand::random());
                tracing::warn!(actor = "matrix", error = %e, retry_in_ms = wait.as_millis() as u64, "Sync failed.");
                link.reconnecting(&format!("Matrix sync failed: {e}"));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The messages, reactions and invites of a sync, in order, and the inbox entries of the
/// messages (a message already in the inbox — seen again after a token rewind — is left out).
pub(super) fn inbound(
    response: &matrix_sdk::sync::SyncResponse,
    inbox: &SharedInbox,
    room_ids: &Arc<Mutex<RoomIds>>,
    store: &MatrixStore,
    bot: &str,
) -> (Vec<Inbound>, Vec<InboxEntry>) {
    let mut batch = Vec::new();
    let mut entries = Vec::new();
    for (room_id, update) in &response.rooms.joined {
        for event in &update.timeline.events {
            let raw = event.raw();
            let Ok(parsed) = raw.deserialize() else {
                tracing::debug!(actor = "matrix", room = %room_id, "Event that does not parse ignored.");
                continue;
            };
            match parsed {
                AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(
                    SyncMessageLikeEvent::Original(message),
                )) => {
                    if message.sender.as_str() == bot {
                        continue;
                    }
                    let upstream = format!("mx:{room_id}:{}", message.event_id);
                    if inbox.knows(&upstream) {
                        tracing::debug!(actor = "matrix", room = %room_id, event = %message.event_id, "Event already in the inbox.");
                        continue;
                    }
                    let id = inbox.allocate();
                    if let Some(id) = id {
                        let chat_id = chat_id_of(room_ids, store, room_id.as_str());
                        let body = match &message.content.msgtype {
                            MessageType::Text(text) => text.body.clone(),
                            other => other.body().to_owned(),
                        };
                        let stored: Option<serde_json::Value> = serde_json::from_str(raw.json().get()).ok();
                        entries.push(InboxEntry {
                            id,
                            transport: MATRIX_TRANSPORT.to_owned(),
                            chat_id: chat_id.into(),
                            topic_id: None,
                            upstream,
                            reply_to: None,
                            text: body,
                            prompt: String::new(),
                            at: sent_at(&message),
                            message: stored
                                .map(|event| serde_json::json!({"room_id": room_id.as_str(), "event": event})),
                        });
                    }
                    batch.push(Inbound::Message { room_id: room_id.to_string(), event: Box::new(message), entry: id });
                }
                AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::Reaction(
                    SyncMessageLikeEvent::Original(reaction),
                )) => batch.push(Inbound::Reaction {
                    room_id: room_id.to_string(),
                    sender: reaction.sender.to_string(),
                    target: reaction.content.relates_to.event_id.to_string(),
                    key: reaction.content.relates_to.key.clone(),
                }),
                _ => {}
            }
        }
    }
    for room_id in response.rooms.invited.keys() {
        batch.push(Inbound::Invite { room_id: room_id.to_string() });
    }
    (batch, entries)
}

/// The chat id of a room, saving the map when the room is new.
pub(super) fn chat_id_of(room_ids: &Arc<Mutex<RoomIds>>, store: &MatrixStore, room_id: &str) -> u64 {
    let mut ids = room_ids.lock().unwrap_or_else(PoisonError::into_inner);
    let (id, new) = ids.chat_id(room_id);
    if new && let Err(e) = store.save_room_ids(&ids) {
        tracing::warn!(actor = "matrix", error = %e, "Could not save room_id_map.json.");
    }
    id
}

//! The person side of the Matrix tests: a matrix-sdk client (so encrypted rooms work too) that
//! creates rooms, invites the bot, writes, reacts, and records what it sees.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use camino::Utf8Path;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoom;
use matrix_sdk::ruma::events::reaction::{OriginalSyncReactionEvent, ReactionEventContent};
use matrix_sdk::ruma::events::relation::{Annotation, InReplyTo};
use matrix_sdk::ruma::events::room::member::{MembershipState, OriginalSyncRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, Relation, RoomMessageEventContent,
};
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use matrix_sdk::{Client, Room};

/// Something the person saw in a room.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The room.
    pub room: OwnedRoomId,
    /// Who sent it.
    pub sender: String,
    /// The event.
    pub event_id: OwnedEventId,
    /// `m.text` body, or the reaction key.
    pub body: String,
    /// `formatted_body`.
    pub html: Option<String>,
    /// `m.reaction` (then `relates` is the event reacted to).
    pub reaction: bool,
    /// The event a reaction is on.
    pub relates: Option<OwnedEventId>,
    /// The message type (`m.text`, `m.file`, ...).
    pub msgtype: String,
}

/// A person with a Matrix account.
pub struct Person {
    /// Its client.
    pub client: Client,
    seen: Arc<Mutex<Vec<Seen>>>,
    joined: Arc<Mutex<Vec<(OwnedRoomId, String)>>>,
    sync: tokio::task::JoinHandle<()>,
    _store: tempfile::TempDir,
}

impl Drop for Person {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

impl Person {
    /// Logs in and starts syncing.
    pub async fn login(homeserver: &str, user: &str, password: &str) -> Self {
        let store = tempfile::tempdir().unwrap();
        let client =
            Client::builder().homeserver_url(homeserver).sqlite_store(store.path(), None).build().await.unwrap();
        client.matrix_auth().login_username(user, password).initial_device_display_name("person").await.unwrap();
        client.sync_once(SyncSettings::default().timeout(Duration::from_secs(1))).await.unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let joined: Arc<Mutex<Vec<(OwnedRoomId, String)>>> = Arc::default();
        let record = Arc::clone(&seen);
        client.add_event_handler(move |ev: OriginalSyncRoomMessageEvent, room: Room| {
            let record = Arc::clone(&record);
            async move {
                let (body, html) = match &ev.content.msgtype {
                    MessageType::Text(text) => (text.body.clone(), text.formatted.as_ref().map(|f| f.body.clone())),
                    other => (other.body().to_owned(), None),
                };
                record.lock().unwrap().push(Seen {
                    room: room.room_id().to_owned(),
                    sender: ev.sender.to_string(),
                    event_id: ev.event_id.clone(),
                    body,
                    html,
                    reaction: false,
                    relates: None,
                    msgtype: ev.content.msgtype.msgtype().to_owned(),
                });
            }
        });
        let record = Arc::clone(&seen);
        client.add_event_handler(move |ev: OriginalSyncReactionEvent, room: Room| {
            let record = Arc::clone(&record);
            async move {
                record.lock().unwrap().push(Seen {
                    room: room.room_id().to_owned(),
                    sender: ev.sender.to_string(),
                    event_id: ev.event_id.clone(),
                    body: ev.content.relates_to.key.clone(),
                    html: None,
                    reaction: true,
                    relates: Some(ev.content.relates_to.event_id.clone()),
                    msgtype: "m.reaction".into(),
                });
            }
        });
        let members = Arc::clone(&joined);
        client.add_event_handler(move |ev: OriginalSyncRoomMemberEvent, room: Room| {
            let members = Arc::clone(&members);
            async move {
                let state = match ev.content.membership {
                    MembershipState::Join => "join",
                    MembershipState::Leave => "leave",
                    _ => return,
                };
                members.lock().unwrap().push((room.room_id().to_owned(), format!("{}:{state}", ev.state_key)));
            }
        });
        let syncer = client.clone();
        let sync = tokio::spawn(async move {
            loop {
                if syncer.sync_once(SyncSettings::default().timeout(Duration::from_secs(5))).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        });
        Self { client, seen, joined, sync, _store: store }
    }

    /// Creates a room, invites `bot` and waits until it joined. `direct`: a DM (no name);
    /// otherwise a named group room.
    pub async fn room_with(&self, bot: &str, encrypted: bool, direct: bool) -> Room {
        let room = self.create_room(bot, encrypted, direct).await;
        assert!(self.wait_member(room.room_id(), bot, "join").await, "the bot never joined {}", room.room_id());
        room
    }

    /// Creates a room and invites `bot` (without waiting).
    pub async fn create_room(&self, bot: &str, encrypted: bool, direct: bool) -> Room {
        self.create_room_with(bot, encrypted, direct, None).await
    }

    /// The same, the bot with power level 100 from the start (it may pin, rename, ...).
    pub async fn create_room_as_moderator(&self, bot: &str) -> Room {
        // The creator has all power already (room version 12) and may not be listed.
        let levels = serde_json::json!({"users": {bot: 100}});
        self.create_room_with(bot, false, true, Some(levels)).await
    }

    async fn create_room_with(
        &self,
        bot: &str,
        encrypted: bool,
        direct: bool,
        levels: Option<serde_json::Value>,
    ) -> Room {
        let bot: OwnedUserId = bot.try_into().unwrap();
        let mut request = CreateRoom::new();
        if let Some(levels) = levels {
            request.power_level_content_override =
                Some(matrix_sdk::ruma::serde::Raw::new(&levels).unwrap().cast_unchecked());
        }
        request.invite = vec![bot];
        request.is_direct = direct;
        if !direct {
            request.name = Some("Team room".to_owned());
        }
        let room = self.client.create_room(request).await.unwrap();
        if encrypted {
            room.enable_encryption().await.unwrap();
        }
        room
    }

    /// Waits until `user` reached `state` (`join`/`leave`) in `room`.
    pub async fn wait_member(&self, room: &matrix_sdk::ruma::RoomId, user: &str, state: &str) -> bool {
        let wanted = format!("{user}:{state}");
        eventually(Duration::from_secs(30), || {
            self.joined.lock().unwrap().iter().any(|(r, s)| r == room && *s == wanted)
        })
        .await
    }

    /// Sends a text message; returns its id.
    pub async fn say(&self, room: &Room, text: &str) -> OwnedEventId {
        room.send(RoomMessageEventContent::text_plain(text)).await.unwrap().response.event_id
    }

    /// Sends a text message that replies to `to`.
    pub async fn reply(&self, room: &Room, to: &OwnedEventId, text: &str) -> OwnedEventId {
        let mut content = RoomMessageEventContent::text_plain(text);
        content.relates_to =
            Some(Relation::Reply(matrix_sdk::ruma::events::relation::Reply::new(InReplyTo::new(to.clone()))));
        room.send(content).await.unwrap().response.event_id
    }

    /// Reacts to an event.
    pub async fn react(&self, room: &Room, to: &OwnedEventId, key: &str) {
        room.send(ReactionEventContent::new(Annotation::new(to.clone(), key.to_owned()))).await.unwrap();
    }

    /// Sends a file.
    pub async fn send_file(&self, room: &Room, name: &str, mime: &str, bytes: Vec<u8>) {
        let mime: mime::Mime = mime.parse().unwrap();
        room.send_attachment(name, &mime, bytes, matrix_sdk::attachment::AttachmentConfig::new()).await.unwrap();
    }

    /// Everything seen so far from `sender` in `room`.
    pub fn from(&self, room: &Room, sender: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.room == room.room_id() && s.sender == sender).cloned().collect()
    }

    /// Messages (not reactions) from `sender` in `room`.
    pub fn messages(&self, room: &Room, sender: &str) -> Vec<Seen> {
        self.from(room, sender).into_iter().filter(|s| !s.reaction).collect()
    }

    /// Waits for a message from `sender` in `room` containing `needle`.
    pub async fn wait_for(&self, room: &Room, sender: &str, needle: &str, limit: Duration) -> Option<Seen> {
        let found = eventually(limit, || self.messages(room, sender).iter().any(|s| s.body.contains(needle))).await;
        if !found {
            return None;
        }
        self.messages(room, sender).into_iter().find(|s| s.body.contains(needle))
    }
}

/// Polls `condition` every 50 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    condition()
}

/// A file under a directory, for checks on what the bot saved.
pub fn files_under(dir: &Utf8Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = camino::Utf8PathBuf::from_path_buf(entry.path()).unwrap();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path.to_string());
            }
        }
    }
    out
}

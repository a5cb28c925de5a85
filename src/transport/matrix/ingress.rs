//! Matrix ingress decisions (transports spec §3.3, §3.5, §3.6): the room id ↔ chat id map,
//! who may talk to the bot, the mention filter of group rooms, and `!cmd` → `/cmd`.

use std::collections::{BTreeMap, HashSet, VecDeque};

use sha2::{Digest, Sha256};

/// The room id ↔ chat id map (`room_id_map.json`): the chat id of a room is the first 8
/// bytes of SHA-256 of its id, big-endian; on a collision with another room the value is
/// hashed again as `SHA-256("<room_id>:<previous value>")`. Stored values win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomIds {
    by_room: BTreeMap<String, u64>,
}

fn first_u64(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

impl RoomIds {
    /// The map as stored.
    pub fn from_map(by_room: BTreeMap<String, u64>) -> Self {
        Self { by_room }
    }

    /// The stored form.
    pub fn as_map(&self) -> &BTreeMap<String, u64> {
        &self.by_room
    }

    /// The chat id of a room, and whether it is new (to be saved).
    pub fn chat_id(&mut self, room_id: &str) -> (u64, bool) {
        if let Some(id) = self.by_room.get(room_id) {
            return (*id, false);
        }
        let taken: HashSet<u64> = self.by_room.values().copied().collect();
        let mut id = first_u64(room_id);
        while taken.contains(&id) {
            id = first_u64(&format!("{room_id}:{id}"));
        }
        self.by_room.insert(room_id.to_owned(), id);
        (id, true)
    }

    /// The room of a chat id.
    pub fn room(&self, chat_id: u64) -> Option<&str> {
        self.by_room.iter().find(|(_, id)| **id == chat_id).map(|(room, _)| room.as_str())
    }
}

/// The transaction id base of the answer to an inbound message (`upstream` = `mx:<room>:<event>`):
/// the same on every try, so the homeserver takes an answer sent again after a crash as the
/// one it already has.
pub fn answer_txn(upstream: &str) -> String {
    let digest = Sha256::digest(upstream.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("ductor-answer-{hex}")
}

/// What the gate knows about a room message.
#[derive(Debug, Clone)]
pub struct MxIncoming<'a> {
    /// The room.
    pub room_id: &'a str,
    /// Who sent it.
    pub sender: &'a str,
    /// `body`.
    pub body: &'a str,
    /// `formatted_body`, if any.
    pub formatted_body: Option<&'a str>,
    /// The event it replies to, if any.
    pub in_reply_to: Option<&'a str>,
    /// No name, no canonical alias, at most two members.
    pub dm_like: bool,
}

/// Who may talk, and how group rooms are addressed.
#[derive(Debug, Clone)]
pub struct MxGate<'a> {
    /// `matrix.allowed_rooms` (room ids; aliases never match).
    pub allowed_rooms: &'a [String],
    /// `matrix.allowed_users`.
    pub allowed_users: &'a [String],
    /// `group_mention_only`.
    pub mention_only: bool,
    /// The bot's own user id.
    pub bot_user_id: &'a str,
    /// Events the bot sent recently (a reply to one addresses the bot).
    pub sent: &'a SentEvents,
}

/// The verdict on a room message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAdmission {
    /// Take it, with this text (the bot's user id removed in group rooms).
    Accepted(String),
    /// The bot's own message.
    Own,
    /// The room or the sender is not allowed.
    NotAllowed,
    /// A group room message not addressed to the bot.
    NotAddressed,
    /// Nothing but whitespace.
    Empty,
}

/// Runs the gate of §3.5 on a message.
pub fn admit(incoming: &MxIncoming<'_>, gate: &MxGate<'_>) -> MxAdmission {
    if incoming.sender == gate.bot_user_id {
        return MxAdmission::Own;
    }
    let room_ok = gate.allowed_rooms.is_empty() || gate.allowed_rooms.iter().any(|r| r == incoming.room_id);
    let user_ok = gate.allowed_users.is_empty() || gate.allowed_users.iter().any(|u| u == incoming.sender);
    let group = !incoming.dm_like;
    let authorised = if group && gate.mention_only { room_ok } else { room_ok && user_ok };
    if !authorised {
        return MxAdmission::NotAllowed;
    }
    if incoming.body.trim().is_empty() {
        return MxAdmission::Empty;
    }
    if group && gate.mention_only {
        let mentioned = incoming.body.contains(gate.bot_user_id)
            || incoming.formatted_body.is_some_and(|html| html.contains(gate.bot_user_id));
        let replies_to_bot = incoming.in_reply_to.is_some_and(|id| gate.sent.contains(id));
        if !mentioned && !replies_to_bot {
            return MxAdmission::NotAddressed;
        }
        let text = incoming.body.replace(gate.bot_user_id, "");
        let text = text.trim();
        if text.is_empty() {
            return MxAdmission::Empty;
        }
        return MxAdmission::Accepted(text.to_owned());
    }
    MxAdmission::Accepted(incoming.body.trim().to_owned())
}

/// The last 1000 event ids the bot sent.
#[derive(Debug, Clone, Default)]
pub struct SentEvents {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl SentEvents {
    /// How many are kept.
    pub const CAPACITY: usize = 1000;

    /// Remembers an event the bot sent.
    pub fn remember(&mut self, event_id: &str) {
        if self.ids.insert(event_id.to_owned()) {
            self.order.push_back(event_id.to_owned());
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Whether the bot sent it.
    pub fn contains(&self, event_id: &str) -> bool {
        self.ids.contains(event_id)
    }
}

/// A room that looks like a direct chat: no name, no canonical alias, at most two members.
pub fn dm_like(name: Option<&str>, canonical_alias: Option<&str>, members: u64) -> bool {
    name.is_none_or(str::is_empty) && canonical_alias.is_none() && members <= 2
}

/// `!cmd …` → `/cmd …` (commands take either prefix on Matrix); other text unchanged.
pub fn normalise_command(text: &str) -> String {
    match text.strip_prefix('!') {
        Some(rest) if rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => format!("/{rest}"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_ids_follow_the_test_vectors() {
        let mut ids = RoomIds::default();
        assert_eq!(ids.chat_id("!abc123:example.org"), (7_070_014_638_169_153_529, true));
        assert_eq!(ids.chat_id("!a:x"), (4_512_465_447_790_902_818, true));
        assert_eq!(ids.chat_id("!c:x"), (11_157_422_694_161_409_176, true));
        assert_eq!(ids.chat_id("!c:x"), (11_157_422_694_161_409_176, false));
        assert_eq!(ids.room(4_512_465_447_790_902_818), Some("!a:x"));
    }

    #[test]
    fn a_collision_is_hashed_again_and_stored_values_win() {
        let taken = first_u64("!b:x");
        let mut ids = RoomIds::from_map(BTreeMap::from([("!other:x".to_owned(), taken)]));
        let (id, new) = ids.chat_id("!b:x");
        assert!(new);
        assert_eq!(id, first_u64(&format!("!b:x:{taken}")));
        let mut ids = RoomIds::from_map(BTreeMap::from([("!a:x".to_owned(), 5)]));
        assert_eq!(ids.chat_id("!a:x"), (5, false));
    }

    fn incoming<'a>(sender: &'a str, body: &'a str, dm_like: bool) -> MxIncoming<'a> {
        MxIncoming { room_id: "!r:x", sender, body, formatted_body: None, in_reply_to: None, dm_like }
    }

    #[test]
    fn authorisation_and_mentions() {
        let sent = {
            let mut sent = SentEvents::default();
            sent.remember("$bot1");
            sent
        };
        let users = vec!["@alice:x".to_owned()];
        let gate = MxGate {
            allowed_rooms: &[],
            allowed_users: &users,
            mention_only: true,
            bot_user_id: "@bot:x",
            sent: &sent,
        };
        assert_eq!(admit(&incoming("@alice:x", " hi ", true), &gate), MxAdmission::Accepted("hi".into()));
        assert_eq!(admit(&incoming("@eve:x", "hi", true), &gate), MxAdmission::NotAllowed);
        assert_eq!(admit(&incoming("@bot:x", "hi", true), &gate), MxAdmission::Own);
        assert_eq!(admit(&incoming("@alice:x", "  ", true), &gate), MxAdmission::Empty);
        // Group room, mention only: the room is the gate, the mention addresses the bot.
        assert_eq!(admit(&incoming("@eve:x", "hi all", false), &gate), MxAdmission::NotAddressed);
        assert_eq!(admit(&incoming("@eve:x", "@bot:x do it", false), &gate), MxAdmission::Accepted("do it".into()));
        let reply = MxIncoming { in_reply_to: Some("$bot1"), ..incoming("@eve:x", "and this?", false) };
        assert_eq!(admit(&reply, &gate), MxAdmission::Accepted("and this?".into()));
        let reply_other = MxIncoming { in_reply_to: Some("$someone"), ..incoming("@eve:x", "and this?", false) };
        assert_eq!(admit(&reply_other, &gate), MxAdmission::NotAddressed);
        let rooms = vec!["!other:x".to_owned()];
        let closed = MxGate { allowed_rooms: &rooms, ..gate.clone() };
        assert_eq!(admit(&incoming("@alice:x", "@bot:x hi", false), &closed), MxAdmission::NotAllowed);
        let open = MxGate { allowed_users: &[], mention_only: false, ..gate };
        assert_eq!(admit(&incoming("@anyone:y", "hi", false), &open), MxAdmission::Accepted("hi".into()));
    }

    #[test]
    fn sent_events_keep_the_last_thousand() {
        let mut sent = SentEvents::default();
        (0..1001).for_each(|i| sent.remember(&format!("$e{i}")));
        assert!(!sent.contains("$e0"));
        assert!(sent.contains("$e1") && sent.contains("$e1000"));
    }

    #[test]
    fn answer_transaction_ids_are_stable_and_distinct() {
        assert_eq!(answer_txn("mx:!r:x:$e1"), answer_txn("mx:!r:x:$e1"));
        assert_ne!(answer_txn("mx:!r:x:$e1"), answer_txn("mx:!r:x:$e2"));
        assert!(answer_txn("mx:!r:x:$e1").chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn rooms_and_commands() {
        assert!(dm_like(None, None, 2));
        assert!(!dm_like(Some("Team"), None, 2));
        assert!(!dm_like(None, Some("#a:x"), 2));
        assert!(!dm_like(None, None, 3));
        assert_eq!(normalise_command("!model"), "/model");
        assert_eq!(normalise_command("!session fix it"), "/session fix it");
        assert_eq!(normalise_command("!!"), "!!");
        assert_eq!(normalise_command("hello!"), "hello!");
    }
}

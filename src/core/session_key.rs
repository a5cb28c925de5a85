//! `SessionKey`: the transport-agnostic identity of a conversation (core spec §1), and `ChatId`,
//! wide enough for Telegram's signed ids and Matrix's unsigned 64-bit ids.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A chat id: Telegram's (signed, negative for groups) or Matrix's (unsigned 64-bit, often above
/// `i64::MAX`). Written as a plain JSON integer; never uses 128-bit serde calls, so it also works
/// inside buffered (flattened or tagged) serde types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ChatId(pub i128);

impl ChatId {
    /// The value.
    pub fn get(self) -> i128 {
        self.0
    }
}

impl From<i64> for ChatId {
    fn from(value: i64) -> Self {
        Self(i128::from(value))
    }
}

impl From<u64> for ChatId {
    fn from(value: u64) -> Self {
        Self(i128::from(value))
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A chat id text that is not an integer in range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a chat id: {0:?}")]
pub struct ChatIdError(String);

impl FromStr for ChatId {
    type Err = ChatIdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value: i128 = text.parse().map_err(|_| ChatIdError(text.to_owned()))?;
        if value < i128::from(i64::MIN) || value > i128::from(u64::MAX) {
            return Err(ChatIdError(text.to_owned()));
        }
        Ok(Self(value))
    }
}

impl Serialize for ChatId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Ok(small) = i64::try_from(self.0) {
            serializer.serialize_i64(small)
        } else if let Ok(big) = u64::try_from(self.0) {
            serializer.serialize_u64(big)
        } else {
            Err(serde::ser::Error::custom("chat id out of range"))
        }
    }
}

impl<'de> Deserialize<'de> for ChatId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChatIdVisitor;
        impl Visitor<'_> for ChatIdVisitor {
            type Value = ChatId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer chat id")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ChatId, E> {
                Ok(ChatId::from(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ChatId, E> {
                Ok(ChatId::from(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ChatId, E> {
                if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(ChatId(v as i128))
                } else {
                    Err(E::custom(format!("not an integer chat id: {v}")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ChatId, E> {
                v.trim().parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(ChatIdVisitor)
    }
}

/// Why a stored session key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a session key: {0:?}")]
pub struct SessionKeyError(String);

/// The identity of a conversation: `(transport, chat_id, topic_id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// Transport short name: `tg`, `mx`, ...
    pub transport: String,
    /// The chat.
    pub chat_id: ChatId,
    /// The forum topic / thread, if any.
    pub topic_id: Option<i64>,
}

impl SessionKey {
    /// A key.
    pub fn new(transport: &str, chat_id: impl Into<ChatId>, topic_id: Option<i64>) -> Self {
        Self { transport: transport.to_owned(), chat_id: chat_id.into(), topic_id }
    }

    /// `"<transport>:<chat_id>"` or `"<transport>:<chat_id>:<topic_id>"`.
    pub fn storage_key(&self) -> String {
        match self.topic_id {
            Some(topic) => format!("{}:{}:{topic}", self.transport, self.chat_id),
            None => format!("{}:{}", self.transport, self.chat_id),
        }
    }

    /// The per-chat ordering key: `(chat_id, topic_id)`, not transport-qualified.
    pub fn lock_key(&self) -> (ChatId, Option<i64>) {
        (self.chat_id, self.topic_id)
    }

    /// Parses a stored key: `"123"` and `"-1001:7"` (legacy, Telegram), `"mx:5"`,
    /// `"tg:-100123:9"`; anything else is an error.
    pub fn parse(text: &str) -> Result<Self, SessionKeyError> {
        let err = || SessionKeyError(text.to_owned());
        let parts: Vec<&str> = text.split(':').collect();
        let topic = |t: &str| t.parse::<i64>().map_err(|_| err());
        let chat = |c: &str| c.parse::<ChatId>().map_err(|_| err());
        let transport_ok = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match parts.as_slice() {
            [chat_id] => Ok(Self::new("tg", chat(chat_id)?, None)),
            [first, second] if is_integer(first) => Ok(Self::new("tg", chat(first)?, Some(topic(second)?))),
            [transport, chat_id] if transport_ok(transport) => Ok(Self::new(transport, chat(chat_id)?, None)),
            [transport, chat_id, topic_id] if transport_ok(transport) => {
                Ok(Self::new(transport, chat(chat_id)?, Some(topic(topic_id)?)))
            }
            _ => Err(err()),
        }
    }
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.storage_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys() {
        assert_eq!(SessionKey::new("tg", -1001i64, None).storage_key(), "tg:-1001");
        assert_eq!(SessionKey::new("tg", -1001i64, Some(7)).storage_key(), "tg:-1001:7");
    }

    #[test]
    fn parsing_legacy_and_current_keys() {
        assert_eq!(SessionKey::parse("-1001:7").unwrap(), SessionKey::new("tg", -1001i64, Some(7)));
        assert_eq!(SessionKey::parse("123").unwrap(), SessionKey::new("tg", 123i64, None));
        assert_eq!(SessionKey::parse("mx:5").unwrap(), SessionKey::new("mx", 5i64, None));
        assert_eq!(SessionKey::parse("tg:-100123:9").unwrap(), SessionKey::new("tg", -100_123i64, Some(9)));
        assert!(SessionKey::parse("a:b:c:d").is_err());
        assert!(SessionKey::parse("tg:x").is_err());
        assert!(SessionKey::parse("").is_err());
    }

    #[test]
    fn lock_key_ignores_the_transport() {
        assert_eq!(SessionKey::new("tg", 5i64, None).lock_key(), SessionKey::new("mx", 5i64, None).lock_key());
    }

    #[test]
    fn matrix_ids_above_i64_survive_json() {
        let id = ChatId::from(11_157_422_694_161_409_176u64);
        let text = serde_json::to_string(&id).unwrap();
        assert_eq!(text, "11157422694161409176");
        assert_eq!(serde_json::from_str::<ChatId>(&text).unwrap(), id);
        let key = SessionKey::new("mx", id, None);
        assert_eq!(SessionKey::parse(&key.storage_key()).unwrap(), key);
    }

    proptest::proptest! {
        #[test]
        fn storage_key_round_trips(signed in proptest::num::i64::ANY, unsigned in proptest::num::u64::ANY,
                                   topic in proptest::option::of(proptest::num::i64::ANY), use_unsigned: bool) {
            let chat = if use_unsigned { ChatId::from(unsigned) } else { ChatId::from(signed) };
            let key = SessionKey { transport: if use_unsigned { "mx".into() } else { "tg".into() }, chat_id: chat, topic_id: topic };
            proptest::prop_assert_eq!(SessionKey::parse(&key.storage_key()).unwrap(), key);
        }
    }
}

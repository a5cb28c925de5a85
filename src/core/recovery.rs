//! Turns cut by a crash or kill (ops spec §11.6, core spec §4.9): which chats get an
//! "Interrupted Task" notice at the next start. Pure: the caller reads `inflight_turns.json`,
//! submits the notices and deletes the file.

use chrono::{DateTime, Utc};

use crate::core::session_key::ChatId;
use crate::core::state::inflight_turns::{InflightTurn, InflightTurns};
use crate::core::state::parse_timestamp;

/// One chat to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryNotice {
    /// The chat.
    pub chat_id: ChatId,
    /// Its topic, when ductor-rs recorded one.
    pub topic_id: Option<i64>,
    /// Its transport (`tg` when the record has none, as the original's records).
    pub transport: String,
    /// The text.
    pub text: String,
}

/// The notices to send: records that are not themselves recoveries, with a positive chat id,
/// a readable start time and an age of at most `2 × normal_timeout_s`; one per chat.
pub fn plan(turns: &InflightTurns, now: DateTime<Utc>, normal_timeout_s: f64) -> Vec<RecoveryNotice> {
    let limit = chrono::Duration::milliseconds((2.0 * normal_timeout_s * 1000.0) as i64);
    let mut notices: Vec<RecoveryNotice> = Vec::new();
    for turn in turns.turns.values() {
        let Some(started) = parse_timestamp(&turn.started_at) else { continue };
        if turn.is_recovery || turn.chat_id.get() <= 0 || now - started > limit {
            continue;
        }
        if notices.iter().any(|n| n.chat_id == turn.chat_id) {
            continue;
        }
        notices.push(RecoveryNotice {
            chat_id: turn.chat_id,
            topic_id: turn.extra.get("topic_id").and_then(serde_json::Value::as_i64),
            transport: turn.extra.get("transport").and_then(serde_json::Value::as_str).unwrap_or("tg").to_owned(),
            text: notice_text(turn),
        });
    }
    notices
}

fn notice_text(turn: &InflightTurn) -> String {
    interrupted_notice(&turn.prompt_preview)
}

/// The "Interrupted Task" notice for a turn a stop cut off, quoting the start of its message.
pub fn interrupted_notice(message: &str) -> String {
    let preview: String = message.chars().take(80).collect();
    let ellipsis = if message.chars().count() > 80 { "…" } else { "" };
    format!(
        "**Interrupted Task**\nA reply was cut off when ductor stopped: `{preview}{ellipsis}`\nPlease send it again."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn turn(chat: i64, started: &str, recovery: bool) -> InflightTurn {
        InflightTurn {
            chat_id: ChatId::from(chat),
            provider: "claude".into(),
            model: "sonnet".into(),
            session_id: "s".into(),
            prompt_preview: "a long question that will be cut".into(),
            started_at: started.into(),
            is_recovery: recovery,
            path: "normal".into(),
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn only_fresh_non_recovery_positive_chats() {
        let now = parse_timestamp("2026-11-24T17:00:00+00:00").unwrap();
        let turns = InflightTurns {
            turns: BTreeMap::from([
                ("1002".into(), turn(1002, "2026-11-24T16:53:26.738445+00:00", false)),
                ("7".into(), turn(7, "2026-11-24T10:00:00+00:00", false)),
                ("8".into(), turn(8, "2026-11-24T16:59:00", true)),
                ("-5".into(), turn(-5, "2026-11-24T16:59:00", false)),
                ("9".into(), turn(9, "not a time", false)),
            ]),
        };
        let notices = plan(&turns, now, 1800.0);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].chat_id, ChatId(1002));
        assert_eq!(notices[0].transport, "tg");
        assert!(
            notices[0].text.contains("Interrupted Task")
                && notices[0].text.contains("a long question that will be cut")
        );
    }
}

//! `chat_activity.json`: the Telegram chat tracker (transports spec §2.12).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::session_key::ChatId;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatActivity {
    /// Records by chat id text.
    pub records: BTreeMap<String, ChatRecord>,
}

/// One chat the bot has seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    /// The chat.
    pub chat_id: ChatId,
    /// `private`, `group`, `supergroup`, `channel`.
    #[serde(default)]
    pub chat_type: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// ISO timestamp.
    #[serde(default)]
    pub first_seen: String,
    /// ISO timestamp.
    #[serde(default)]
    pub last_seen: String,
    /// `active`, `rejected`, `left`, ...
    #[serde(default)]
    pub status: String,
    /// Whether it is allowed.
    #[serde(default)]
    pub allowed: bool,
    /// Rejected messages.
    #[serde(default)]
    pub rejected_count: u64,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatActivity {
    fn entry(&mut self, chat_id: i64, chat_type: &str, title: &str, now: &str, allowed: bool) -> &mut ChatRecord {
        let record = self.records.entry(chat_id.to_string()).or_insert_with(|| ChatRecord {
            chat_id: ChatId::from(chat_id),
            chat_type: chat_type.to_owned(),
            title: title.to_owned(),
            first_seen: now.to_owned(),
            last_seen: now.to_owned(),
            status: "active".to_owned(),
            allowed,
            rejected_count: 0,
            extra: Map::new(),
        });
        record.last_seen = now.to_owned();
        if !title.is_empty() {
            record.title = title.to_owned();
        }
        if !chat_type.is_empty() {
            record.chat_type = chat_type.to_owned();
        }
        record
    }

    /// A message from a chat that is not allowed.
    pub fn rejected(&mut self, chat_id: i64, chat_type: &str, title: &str, now: &str) {
        let record = self.entry(chat_id, chat_type, title, now, false);
        record.rejected_count += 1;
        record.status = "rejected".to_owned();
        record.allowed = false;
    }

    /// The bot joined a chat.
    pub fn joined(&mut self, chat_id: i64, chat_type: &str, title: &str, allowed: bool, now: &str) {
        let record = self.entry(chat_id, chat_type, title, now, allowed);
        record.status = "active".to_owned();
        record.allowed = allowed;
    }

    /// The bot is no longer in a chat: `left`, `kicked` or `auto_left`.
    pub fn gone(&mut self, chat_id: i64, status: &str, now: &str) {
        let record = self.entry(chat_id, "", "", now, false);
        record.status = status.to_owned();
    }

    /// The `/where` answer: Active, Rejected and Left sections, newest first.
    pub fn where_text(&self) -> String {
        let mut records: Vec<&ChatRecord> = self.records.values().collect();
        records.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
        let line = |r: &ChatRecord| {
            let title = if r.title.is_empty() { "untitled" } else { r.title.as_str() };
            format!("`{}` — {} ({})", r.chat_id, title, r.chat_type)
        };
        let active: Vec<String> =
            records.iter().filter(|r| r.status == "active" && r.allowed).map(|r| line(r)).collect();
        let rejected: Vec<String> =
            records
                .iter()
                .filter(|r| !r.allowed || r.status == "rejected")
                .map(|r| {
                    if r.rejected_count > 0 {
                        format!("{} — {}x rejected", line(r), r.rejected_count)
                    } else {
                        line(r)
                    }
                })
                .collect();
        let left: Vec<String> = records
            .iter()
            .filter(|r| matches!(r.status.as_str(), "left" | "kicked" | "auto_left"))
            .map(|r| format!("{} [{}]", line(r), r.status))
            .collect();
        let mut text = String::from("**Chats**");
        for (title, lines) in [("Active", active), ("Rejected", rejected), ("Left", left)] {
            if !lines.is_empty() {
                text.push_str(&format!("\n\n**{title}**\n{}", lines.join("\n")));
            }
        }
        if self.records.is_empty() {
            text.push_str("\n\nNo chats tracked yet.");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_joins_and_leaves_are_tracked_and_listed() {
        let mut tracker = ChatActivity::default();
        tracker.rejected(-100, "supergroup", "Strangers", "2026-11-24T10:00:00Z");
        tracker.rejected(-100, "supergroup", "Strangers", "2026-11-24T10:01:00Z");
        assert_eq!(tracker.records["-100"].rejected_count, 2);
        tracker.joined(-200, "group", "Team", true, "2026-11-24T10:02:00Z");
        tracker.joined(-300, "group", "", false, "2026-11-24T10:03:00Z");
        tracker.gone(-300, "auto_left", "2026-11-24T10:03:01Z");
        let text = tracker.where_text();
        assert!(text.contains("**Active**\n`-200` — Team (group)"), "{text}");
        assert!(text.contains("`-100` — Strangers (supergroup) — 2x rejected"), "{text}");
        assert!(text.contains("**Left**\n`-300` — untitled (group) [auto_left]"), "{text}");
        assert!(text.find("`-300`").unwrap() < text.find("`-100`").unwrap(), "newest first within a section");
        let json = serde_json::to_value(&tracker).unwrap();
        assert_eq!(json["records"]["-100"]["status"], "rejected");
        assert_eq!(json["records"]["-100"]["allowed"], false);
    }
}

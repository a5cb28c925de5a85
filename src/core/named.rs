//! Named sessions (core spec §3): background conversations a chat starts with `/session` and
//! continues with `@<name> …`. The registry rules are pure: names, the per-chat limit, status
//! changes, and what `named_sessions.json` holds (only sessions that have not ended).

use crate::core::session_key::ChatId;
use crate::core::state::named_sessions::{NamedSession, NamedSessions};

/// Non-ended named sessions a chat may have.
pub const MAX_PER_CHAT: usize = 10;

const ADJECTIVES: [&str; 16] = [
    "red", "calm", "keen", "bold", "quiet", "swift", "bright", "brave", "lucky", "wise", "sunny", "merry", "noble",
    "rapid", "silver", "gentle",
];
const NOUNS: [&str; 16] = [
    "owl", "fox", "hawk", "lynx", "otter", "heron", "badger", "wolf", "raven", "seal", "finch", "bison", "crane",
    "mole", "hare", "wren",
];

/// Why a named-session operation was refused (the text is the reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamedError {
    /// The chat has [`MAX_PER_CHAT`] sessions already.
    #[error("This chat already has {MAX_PER_CHAT} named sessions. End one with /sessions first.")]
    LimitReached,
    /// No such session in this chat.
    #[error("There is no session named '{0}' in this chat.")]
    NotFound(String),
    /// It is working on a message already.
    #[error("Session '{0}' is still working on the last message. Wait for its answer.")]
    StillRunning(String),
}

/// What a new named session starts with.
#[derive(Debug, Clone, Copy)]
pub struct NewNamed<'a> {
    /// The chat.
    pub chat: ChatId,
    /// Its transport.
    pub transport: &'a str,
    /// Provider.
    pub provider: &'a str,
    /// Model.
    pub model: &'a str,
    /// The first prompt.
    pub prompt: &'a str,
    /// Unix time.
    pub created_at: f64,
}

/// All named sessions, in memory (authoritative) and as the file holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamedRegistry {
    sessions: Vec<NamedSession>,
    recovered_running: Vec<(ChatId, String)>,
}

impl NamedRegistry {
    /// From the file: ended or nameless entries are skipped; `running` ones become `idle` and
    /// are remembered for the start-up recovery (except inter-agent `ia-` sessions).
    pub fn from_file(file: NamedSessions) -> Self {
        let mut registry = Self::default();
        for mut session in file.sessions {
            if session.name.trim().is_empty() || session.status == "ended" {
                continue;
            }
            if session.status == "running" {
                session.status = "idle".to_owned();
                if !session.name.starts_with("ia-") && !session.name.starts_with("ia.") {
                    registry.recovered_running.push((session.chat_id, session.name.clone()));
                }
            }
            registry.sessions.push(session);
        }
        registry
    }

    /// What `named_sessions.json` holds.
    pub fn to_file(&self) -> NamedSessions {
        NamedSessions { sessions: self.sessions.iter().filter(|s| s.status != "ended").cloned().collect() }
    }

    /// Sessions that were running when the service stopped (taken once).
    pub fn take_recovered_running(&mut self) -> Vec<(ChatId, String)> {
        std::mem::take(&mut self.recovered_running)
    }

    /// A chat's session by name.
    pub fn get(&self, chat: ChatId, name: &str) -> Option<&NamedSession> {
        self.sessions.iter().find(|s| s.chat_id == chat && s.name == name && s.status != "ended")
    }

    fn get_mut(&mut self, chat: ChatId, name: &str) -> Option<&mut NamedSession> {
        self.sessions.iter_mut().find(|s| s.chat_id == chat && s.name == name && s.status != "ended")
    }

    /// A chat's sessions.
    pub fn for_chat(&self, chat: ChatId) -> impl Iterator<Item = &NamedSession> {
        self.sessions.iter().filter(move |s| s.chat_id == chat && s.status != "ended")
    }

    /// Creates a session in `running` state; `pick` chooses among `n` options (randomness
    /// comes from the caller).
    pub fn create(
        &mut self,
        new: &NewNamed<'_>,
        mut pick: impl FnMut(usize) -> usize,
    ) -> Result<NamedSession, NamedError> {
        let chat = new.chat;
        if self.for_chat(chat).count() >= MAX_PER_CHAT {
            return Err(NamedError::LimitReached);
        }
        let taken: Vec<String> = self.for_chat(chat).map(|s| s.name.clone()).collect();
        let name = (0..50)
            .map(|_| format!("{}{}", ADJECTIVES[pick(ADJECTIVES.len())], NOUNS[pick(NOUNS.len())]))
            .find(|n| !taken.contains(n))
            .or_else(|| (2..100).map(|i| format!("{}{}{i}", ADJECTIVES[0], NOUNS[0])).find(|n| !taken.contains(n)))
            .ok_or(NamedError::LimitReached)?;
        Ok(self.insert(new, name))
    }

    /// Creates a session with a given name (`ia-<agent>` for inter-agent messages) in
    /// `running` state; refused when the chat has one of that name already. Not counted against
    /// the per-chat limit (the person did not start it).
    pub fn create_named(&mut self, new: &NewNamed<'_>, name: &str) -> Result<NamedSession, NamedError> {
        if self.get(new.chat, name).is_some() {
            return Err(NamedError::StillRunning(name.to_owned()));
        }
        Ok(self.insert(new, name.to_owned()))
    }

    fn insert(&mut self, new: &NewNamed<'_>, name: String) -> NamedSession {
        let chat = new.chat;
        let session = NamedSession {
            name,
            chat_id: chat,
            provider: new.provider.to_owned(),
            model: new.model.to_owned(),
            session_id: String::new(),
            prompt_preview: new.prompt.chars().take(60).collect(),
            status: "running".to_owned(),
            created_at: new.created_at,
            message_count: 0,
            last_prompt: new.prompt.chars().take(4000).collect(),
            transport: new.transport.to_owned(),
            extra: serde_json::Map::new(),
        };
        self.sessions.push(session.clone());
        session
    }

    /// Marks a session busy with `prompt`; refused when it is missing or busy.
    pub fn mark_running(&mut self, chat: ChatId, name: &str, prompt: &str) -> Result<NamedSession, NamedError> {
        let session = self.get_mut(chat, name).ok_or_else(|| NamedError::NotFound(name.to_owned()))?;
        if session.status == "running" {
            return Err(NamedError::StillRunning(name.to_owned()));
        }
        session.status = "running".to_owned();
        session.last_prompt = prompt.chars().take(4000).collect();
        Ok(session.clone())
    }

    /// After an answer: the CLI's session id (when given), one more message, idle again.
    pub fn update_after_response(&mut self, chat: ChatId, name: &str, session_id: &str) {
        if let Some(session) = self.get_mut(chat, name) {
            if !session_id.is_empty() {
                session.session_id = session_id.to_owned();
            }
            session.message_count += 1;
            session.status = "idle".to_owned();
        }
    }

    /// A chat's session by name, for changes the registry has no rule for.
    pub fn get_mut_session(&mut self, chat: ChatId, name: &str) -> Option<&mut NamedSession> {
        self.get_mut(chat, name)
    }

    /// After a failure: idle again, nothing counted.
    pub fn mark_idle(&mut self, chat: ChatId, name: &str) {
        if let Some(session) = self.get_mut(chat, name) {
            session.status = "idle".to_owned();
        }
    }

    /// Ends a session (it leaves the file).
    pub fn end(&mut self, chat: ChatId, name: &str) -> bool {
        match self.get_mut(chat, name) {
            Some(session) => {
                session.status = "ended".to_owned();
                true
            }
            None => false,
        }
    }
}

/// A leading `@word` of a message and the rest, if the message starts with one.
pub fn leading_directive(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim_start().strip_prefix('@')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let word = &rest[..end];
    let valid = word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    valid.then(|| (word, rest[end..].trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> NamedRegistry {
        NamedRegistry::default()
    }

    fn new(chat: i64, prompt: &str) -> NewNamed<'_> {
        NewNamed {
            chat: ChatId::from(chat),
            transport: "tg",
            provider: "claude",
            model: "opus",
            prompt,
            created_at: 1.0,
        }
    }

    #[test]
    fn names_are_unique_per_chat_and_the_limit_is_ten() {
        let mut r = registry();
        let mut n = 0;
        let mut pick = |len: usize| {
            n += 1;
            n % len
        };
        let mut names = Vec::new();
        for _ in 0..MAX_PER_CHAT {
            names.push(r.create(&new(1, "p"), &mut pick).unwrap().name);
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), MAX_PER_CHAT);
        assert_eq!(r.create(&new(1, "p"), &mut pick), Err(NamedError::LimitReached));
        assert!(r.create(&new(2, "p"), &mut pick).is_ok(), "per chat");
    }

    #[test]
    fn a_named_inter_agent_session_is_one_per_chat_and_outside_the_limit() {
        let mut r = registry();
        for _ in 0..MAX_PER_CHAT {
            r.create(&new(1, "p"), |n| n - 1).ok();
        }
        let ia = r.create_named(&new(1, "hi"), "ia-ops").unwrap();
        assert_eq!((ia.name.as_str(), ia.status.as_str()), ("ia-ops", "running"));
        assert_eq!(r.create_named(&new(1, "again"), "ia-ops"), Err(NamedError::StillRunning("ia-ops".into())));
        assert!(r.end(ChatId::from(1_i64), "ia-ops"));
        assert!(r.create_named(&new(1, "fresh"), "ia-ops").is_ok(), "after its end the name is free");
    }

    #[test]
    fn same_pick_every_time_still_gives_a_free_name() {
        let mut r = registry();
        let a = r.create(&new(1, "p"), |_| 0).unwrap().name;
        let b = r.create(&new(1, "p"), |_| 0).unwrap().name;
        assert_eq!(a, "redowl");
        assert_eq!(b, "redowl2");
    }

    #[test]
    fn lifecycle_and_file() {
        let mut r = registry();
        let s = r.create(&new(1, "write a poem"), |_| 0).unwrap();
        assert_eq!((s.status.as_str(), s.session_id.as_str()), ("running", ""));
        assert_eq!(r.mark_running(ChatId(1), &s.name, "x"), Err(NamedError::StillRunning(s.name.clone())));
        r.update_after_response(ChatId(1), &s.name, "sid-1");
        let stored = r.get(ChatId(1), &s.name).unwrap();
        assert_eq!((stored.status.as_str(), stored.message_count, stored.session_id.as_str()), ("idle", 1, "sid-1"));
        assert!(r.end(ChatId(1), &s.name));
        assert!(r.to_file().sessions.is_empty(), "ended sessions are not written");
    }

    #[test]
    fn running_sessions_come_back_idle_and_are_offered_once() {
        let mut r = registry();
        let a = r.create(&new(1, "p"), |_| 0).unwrap();
        let mut file = r.to_file();
        file.sessions.push(NamedSession { name: "ia-helper".into(), ..a.clone() });
        let mut loaded = NamedRegistry::from_file(file);
        assert_eq!(loaded.get(ChatId(1), &a.name).unwrap().status, "idle");
        assert_eq!(loaded.take_recovered_running(), vec![(ChatId(1), a.name.clone())]);
        assert!(loaded.take_recovered_running().is_empty());
    }

    #[test]
    fn directives() {
        assert_eq!(leading_directive("@redowl more please"), Some(("redowl", "more please")));
        assert_eq!(leading_directive("  @codex"), Some(("codex", "")));
        assert_eq!(leading_directive("mail me@example.org"), None);
        assert_eq!(leading_directive("@ hi"), None);
    }
}

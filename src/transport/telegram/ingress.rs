//! What the Telegram transport decides about an incoming message before anything runs
//! (transports spec §2.3): who may talk (allow-lists), group rules (`/cmd@otherbot`,
//! mention-only), the `@ourbot` mention removed from the prompt, `/cmd@ourbot` normalised, the
//! and the status-reaction stage of a tool. Pure; the transport maps
//! teloxide's types onto [`Incoming`].

/// The kind of chat a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// A one-to-one chat with a user.
    Private,
    /// A basic group or a supergroup.
    Group,
    /// A channel.
    Channel,
}

/// The entities ingress looks at (offsets and lengths in UTF-16 units, as Telegram sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// `true` for a `bot_command`, `false` for a `mention`.
    pub is_command: bool,
    /// Start.
    pub offset: usize,
    /// Length.
    pub length: usize,
}

/// An incoming message, reduced to what the decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming<'a> {
    /// The chat.
    pub chat_id: i64,
    /// Its kind.
    pub chat_kind: ChatKind,
    /// The sender (`None`: no `from`, e.g. a channel post).
    pub from_id: Option<u64>,
    /// Text or caption.
    pub text: &'a str,
    /// `bot_command` and `mention` entities of the text or caption.
    pub entities: Vec<Entity>,
    /// Author of the message this one replies to.
    pub reply_to_author: Option<u64>,
}

/// Who may talk and how the bot is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate<'a> {
    /// `allowed_user_ids`.
    pub allowed_users: &'a [i64],
    /// `allowed_group_ids`.
    pub allowed_groups: &'a [i64],
    /// `group_mention_only`.
    pub mention_only: bool,
    /// The bot's user id.
    pub bot_id: u64,
    /// The bot's username without `@`.
    pub bot_username: &'a str,
}

/// The verdict on an incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Handle it.
    Accepted,
    /// No sender, or a sender not in `allowed_user_ids` (dropped silently).
    UnknownUser,
    /// A group not in `allowed_group_ids` (dropped silently, counted in the chat tracker).
    RejectedGroup,
    /// A command for another bot in a group.
    ForAnotherBot,
    /// Mention-only group and the bot was not addressed.
    NotAddressed,
}

/// The text an entity covers.
pub fn entity_text<'t>(text: &'t str, entity: &Entity) -> &'t str {
    let mut units = 0;
    let mut start = None;
    let mut end = text.len();
    for (index, c) in text.char_indices() {
        if units == entity.offset && start.is_none() {
            start = Some(index);
        }
        if units == entity.offset + entity.length {
            end = index;
            break;
        }
        units += c.len_utf16();
    }
    match start {
        Some(start) if start <= end => &text[start..end],
        _ => "",
    }
}

fn is_user_allowed(gate: &Gate<'_>, from: Option<u64>) -> bool {
    from.and_then(|id| i64::try_from(id).ok()).is_some_and(|id| gate.allowed_users.contains(&id))
}

/// Auth and group rules, in the spec's order.
pub fn admit(incoming: &Incoming<'_>, gate: &Gate<'_>) -> Admission {
    if !is_user_allowed(gate, incoming.from_id) {
        return if incoming.chat_kind == ChatKind::Group && incoming.from_id.is_some() {
            if gate.allowed_groups.contains(&incoming.chat_id) {
                Admission::UnknownUser
            } else {
                Admission::RejectedGroup
            }
        } else {
            Admission::UnknownUser
        };
    }
    match incoming.chat_kind {
        ChatKind::Private => Admission::Accepted,
        ChatKind::Channel => Admission::UnknownUser,
        ChatKind::Group => {
            if !gate.allowed_groups.contains(&incoming.chat_id) {
                return Admission::RejectedGroup;
            }
            let ours = format!("@{}", gate.bot_username.to_lowercase());
            let commands: Vec<String> = incoming
                .entities
                .iter()
                .filter(|e| e.is_command)
                .map(|e| entity_text(incoming.text, e).to_lowercase())
                .collect();
            if commands.iter().any(|c| c.contains('@') && !c.ends_with(&ours)) {
                return Admission::ForAnotherBot;
            }
            if gate.mention_only && !is_addressed(incoming, gate, &ours, &commands) {
                return Admission::NotAddressed;
            }
            Admission::Accepted
        }
    }
}

fn is_addressed(incoming: &Incoming<'_>, gate: &Gate<'_>, ours: &str, commands: &[String]) -> bool {
    incoming.reply_to_author == Some(gate.bot_id)
        || incoming.entities.iter().any(|e| !e.is_command && entity_text(incoming.text, e).to_lowercase() == ours)
        || commands.iter().any(|c| c.ends_with(ours))
}

/// The prompt: the first `@ourbot` (any case) removed, the original kept if nothing remains.
pub fn strip_mention(text: &str, bot_username: &str) -> String {
    let needle = format!("@{}", bot_username.to_lowercase());
    let lowered = text.to_lowercase();
    // Lower-casing can change byte lengths; only cut when the positions line up.
    let Some(at) = lowered.find(&needle).filter(|at| text.is_char_boundary(*at)) else { return text.to_owned() };
    let end = at + needle.len();
    if !text.is_char_boundary(end) || !text[at..end].eq_ignore_ascii_case(&needle) {
        return text.to_owned();
    }
    let stripped = format!("{}{}", &text[..at], &text[end..]);
    let stripped = stripped.trim();
    if stripped.is_empty() { text.to_owned() } else { stripped.to_owned() }
}

/// `/cmd@ourbot args` → `/cmd args` (other text unchanged).
pub fn normalise_command(text: &str, bot_username: &str) -> String {
    let trimmed = text.trim_start();
    let Some(first) = trimmed.split_whitespace().next() else { return text.to_owned() };
    if !first.starts_with('/') {
        return text.to_owned();
    }
    match first.split_once('@') {
        Some((command, bot)) if bot.eq_ignore_ascii_case(bot_username) => {
            format!("{command}{}", &trimmed[first.len()..])
        }
        _ => text.to_owned(),
    }
}

/// The first word of a command message, lower-cased and without `@bot` (`/help`), if any.
pub fn command_word(text: &str) -> Option<String> {
    let first = text.split_whitespace().next()?;
    let command = first.strip_prefix('/')?;
    let command = command.split('@').next().unwrap_or(command);
    (!command.is_empty()).then(|| format!("/{}", command.to_lowercase()))
}

/// The prompt of a message that replies to another one (§2.4): the cited text first, each
/// line prefixed `> `, then the person's own message. Unchanged without cited text.
pub fn with_reply_context(text: &str, cited: Option<&str>) -> String {
    let Some(cited) = cited.map(str::trim).filter(|c| !c.is_empty()) else { return text.to_owned() };
    let quoted: Vec<String> = cited.lines().map(|line| format!("> {line}")).collect();
    format!("[The user is replying to this message:]\n{}\n\n[The user's message:]\n{text}", quoted.join("\n"))
}

/// The status reaction for a tool (by name prefix, lower-case).
pub fn tool_reaction(tool: &str) -> &'static str {
    let name = tool.to_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    if starts(&["read", "grep", "glob", "ls"]) {
        "👀"
    } else if starts(&["edit", "write", "multiedit", "str_replace"]) {
        "✍️"
    } else if starts(&["bash", "shell", "run", "exec"]) {
        "👨‍💻"
    } else {
        "🤔"
    }
}

/// The tool name shown in streamed tool lines (`bash`, `sh`, … → `Shell`).
pub fn display_tool_name(tool: &str) -> String {
    match tool.to_lowercase().as_str() {
        "bash" | "powershell" | "cmd" | "sh" | "zsh" | "shell" => "Shell".to_owned(),
        _ => tool.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: [i64; 1] = [7];
    const GROUPS: [i64; 1] = [-100];

    fn gate(mention_only: bool) -> Gate<'static> {
        Gate { allowed_users: &USERS, allowed_groups: &GROUPS, mention_only, bot_id: 99, bot_username: "DuctorBot" }
    }

    fn message(chat_id: i64, kind: ChatKind, from: Option<u64>, text: &str) -> Incoming<'_> {
        let mut entities = Vec::new();
        for (at, word) in text.match_indices(['/', '@']) {
            let length = text[at..].find(' ').unwrap_or(text.len() - at);
            if at == 0 || text[..at].ends_with(' ') {
                entities.push(Entity { is_command: word == "/", offset: at, length });
            }
        }
        Incoming { chat_id, chat_kind: kind, from_id: from, text, entities, reply_to_author: None }
    }

    #[test]
    fn only_allowed_users_and_groups() {
        assert_eq!(admit(&message(7, ChatKind::Private, Some(7), "hi"), &gate(false)), Admission::Accepted);
        assert_eq!(admit(&message(8, ChatKind::Private, Some(8), "hi"), &gate(false)), Admission::UnknownUser);
        assert_eq!(admit(&message(7, ChatKind::Private, None, "hi"), &gate(false)), Admission::UnknownUser);
        assert_eq!(admit(&message(-5, ChatKind::Group, Some(7), "hi"), &gate(false)), Admission::RejectedGroup);
        assert_eq!(admit(&message(-5, ChatKind::Group, Some(8), "hi"), &gate(false)), Admission::RejectedGroup);
        assert_eq!(admit(&message(-100, ChatKind::Group, Some(8), "hi"), &gate(false)), Admission::UnknownUser);
        assert_eq!(admit(&message(-100, ChatKind::Group, Some(7), "hi"), &gate(false)), Admission::Accepted);
    }

    #[test]
    fn group_commands_for_other_bots_and_mention_only() {
        let g = gate(false);
        assert_eq!(admit(&message(-100, ChatKind::Group, Some(7), "/status@otherbot"), &g), Admission::ForAnotherBot);
        assert_eq!(admit(&message(-100, ChatKind::Group, Some(7), "/status@ductorbot"), &g), Admission::Accepted);
        let m = gate(true);
        assert_eq!(admit(&message(-100, ChatKind::Group, Some(7), "hello all"), &m), Admission::NotAddressed);
        assert_eq!(admit(&message(-100, ChatKind::Group, Some(7), "@DuctorBot hi"), &m), Admission::Accepted);
        assert_eq!(admit(&message(-100, ChatKind::Group, Some(7), "/new@DuctorBot"), &m), Admission::Accepted);
        let mut reply = message(-100, ChatKind::Group, Some(7), "and this?");
        reply.reply_to_author = Some(99);
        assert_eq!(admit(&reply, &m), Admission::Accepted);
    }

    #[test]
    fn mention_and_command_text() {
        assert_eq!(strip_mention("@DuctorBot hi", "ductorbot"), "hi");
        assert_eq!(strip_mention("hi @ductorbot!", "DuctorBot"), "hi !");
        assert_eq!(strip_mention("@ductorbot", "ductorbot"), "@ductorbot", "kept when nothing remains");
        assert_eq!(normalise_command("/status@DuctorBot now", "ductorbot"), "/status now");
        assert_eq!(normalise_command("/status@other", "ductorbot"), "/status@other");
        assert_eq!(command_word("/Help@DuctorBot x"), Some("/help".into()));
        assert_eq!(command_word("hello"), None);
        let text = "😀 /cmd@x";
        assert_eq!(entity_text(text, &Entity { is_command: true, offset: 3, length: 6 }), "/cmd@x");
    }

    #[test]
    fn replies_cite_the_quoted_text() {
        assert_eq!(
            with_reply_context("why?", Some("line one\nline two")),
            "[The user is replying to this message:]\n> line one\n> line two\n\n[The user's message:]\nwhy?"
        );
        assert_eq!(with_reply_context("why?", Some("  ")), "why?");
        assert_eq!(with_reply_context("why?", None), "why?");
    }

    #[test]
    fn tool_stages_and_names() {
        assert_eq!(tool_reaction("Bash"), "👨‍💻");
        assert_eq!(tool_reaction("Read"), "👀");
        assert_eq!(tool_reaction("MultiEdit"), "✍️");
        assert_eq!(tool_reaction("WebSearch"), "🤔");
        assert_eq!(display_tool_name("bash"), "Shell");
        assert_eq!(display_tool_name("Read"), "Read");
    }
}

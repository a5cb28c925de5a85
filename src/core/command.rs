//! What a chat message asks for (core spec §5.1–5.2), as a pure classification: the pre-lock
//! triggers that act at once (`/interrupt`, `/stop_all`, `/stop` and their bare words), the
//! orchestrator commands, and everything else — a prompt for the CLI; and the command menu the
//! transports offer.

/// A classified chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// SIGINT to the chat's CLI processes; the queue is kept.
    Interrupt,
    /// Kill every process of the agent; drain this chat's queue.
    StopAll,
    /// Kill the chat's processes; drain its queue.
    Stop,
    /// Reset the config-default provider's session for this chat.
    New,
    /// Kill the chat's processes and reset the current provider's session.
    Reset,
    /// `/status`.
    Status,
    /// `/model` (selector) or `/model <id>`.
    Model(Option<String>),
    /// `/session` (help) or `/session <prompt>` (a named background session).
    Session(Option<String>),
    /// `/memory`: show MAINMEMORY.md.
    Memory,
    /// `/sessions`: the chat's named sessions.
    Sessions,
    /// `/cron`: the cron jobs.
    Cron,
    /// `/tasks`: the chat's background tasks.
    Tasks,
    /// `/diagnose`: version, models, agent health and the end of the log.
    Diagnose,
    /// `/agents`: the agents and their health (main agent only).
    Agents,
    /// `/agent_start|stop|restart <name>` (sub-agents; come with multi-agent support).
    AgentControl(String),
    /// `/upgrade`.
    Upgrade,
    /// A prompt for the CLI (including unknown `/commands`).
    Prompt(String),
}

const INTERRUPT_WORDS: [&str; 4] = ["esc", "interrupt", "skip", "überspringen"];
const STOP_ALL_PHRASES: [&str; 5] = ["stop all", "stopp alle", "alles stoppen", "cancel all", "abort all"];
const STOP_WORDS: [&str; 14] = [
    "stop",
    "abort",
    "cancel",
    "halt",
    "hold",
    "wait",
    "quit",
    "exit",
    "stopp",
    "warte",
    "abbruch",
    "abbrechen",
    "aufhören",
    "aufhoren",
];

/// Classifies a message. `bot_username` removes a trailing `@bot` from a command word.
pub fn classify(text: &str, bot_username: Option<&str>) -> ChatCommand {
    let trimmed = text.trim();
    let lowered = trimmed.to_lowercase();
    let (word, rest) = match lowered.split_once(char::is_whitespace) {
        Some((word, rest)) => (word.to_owned(), rest.trim().to_owned()),
        None => (lowered.clone(), String::new()),
    };
    let command = match (word.strip_prefix('/').or_else(|| word.strip_prefix('!')), bot_username) {
        (Some(cmd), Some(bot)) => cmd.strip_suffix(&format!("@{}", bot.to_lowercase())).unwrap_or(cmd).to_owned(),
        (Some(cmd), None) => cmd.to_owned(),
        (None, _) => String::new(),
    };
    let bare = lowered.trim_end_matches(['.', '!']).trim();
    match command.as_str() {
        "interrupt" => return ChatCommand::Interrupt,
        "stop_all" => return ChatCommand::StopAll,
        "stop" => return ChatCommand::Stop,
        "new" if rest.is_empty() => return ChatCommand::New,
        "reset" => return ChatCommand::Reset,
        "status" if rest.is_empty() => return ChatCommand::Status,
        "model" if rest.is_empty() => return ChatCommand::Model(None),
        "session" if rest.is_empty() => return ChatCommand::Session(None),
        "memory" if rest.is_empty() => return ChatCommand::Memory,
        "sessions" if rest.is_empty() => return ChatCommand::Sessions,
        "cron" if rest.is_empty() => return ChatCommand::Cron,
        "tasks" if rest.is_empty() => return ChatCommand::Tasks,
        "diagnose" if rest.is_empty() => return ChatCommand::Diagnose,
        "agents" if rest.is_empty() => return ChatCommand::Agents,
        "agent_start" | "agent_stop" | "agent_restart" => return ChatCommand::AgentControl(command.clone()),
        "upgrade" if rest.is_empty() => return ChatCommand::Upgrade,
        "session" => {
            let original = trimmed.split_once(char::is_whitespace).map_or("", |(_, r)| r.trim());
            return ChatCommand::Session(Some(original.to_owned()));
        }
        "model" => {
            let original = trimmed.split_once(char::is_whitespace).map_or("", |(_, r)| r.trim());
            return ChatCommand::Model(Some(original.to_owned()));
        }
        _ => {}
    }
    if INTERRUPT_WORDS.contains(&bare) {
        ChatCommand::Interrupt
    } else if STOP_ALL_PHRASES.contains(&bare) {
        ChatCommand::StopAll
    } else if STOP_WORDS.contains(&bare) {
        ChatCommand::Stop
    } else {
        ChatCommand::Prompt(trimmed.to_owned())
    }
}

/// The command menu every transport offers, in order (≤ 22-character descriptions, the limit
/// of Telegram's menu; Matrix `!help` shows the same descriptions).
pub const MENU: [(&str, &str); 17] = [
    ("new", "Start a new session"),
    ("reset", "Reset this session"),
    ("stop", "Stop the running agent"),
    ("interrupt", "Interrupt the agent"),
    ("model", "Show or switch model"),
    ("status", "Session status"),
    ("memory", "Show main memory"),
    ("session", "Background sessions"),
    ("tasks", "Background tasks"),
    ("cron", "Scheduled jobs"),
    ("agent_commands", "Multi-agent commands"),
    ("showfiles", "Browse files"),
    ("info", "Version and links"),
    ("help", "Show all commands"),
    ("diagnose", "System diagnostics"),
    ("upgrade", "Check for updates"),
    ("restart", "Restart ductor"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_and_commands() {
        assert_eq!(classify("/stop", None), ChatCommand::Stop);
        assert_eq!(classify("Stop", None), ChatCommand::Stop);
        assert_eq!(classify("abbrechen!", None), ChatCommand::Stop);
        assert_eq!(classify("/interrupt", None), ChatCommand::Interrupt);
        assert_eq!(classify("esc", None), ChatCommand::Interrupt);
        assert_eq!(classify("stop all", None), ChatCommand::StopAll);
        assert_eq!(classify("/stop_all@MyBot", Some("mybot")), ChatCommand::StopAll);
        assert_eq!(classify("/new", None), ChatCommand::New);
        assert_eq!(classify("/reset please", None), ChatCommand::Reset);
        assert_eq!(classify("/model gpt-5.5", None), ChatCommand::Model(Some("gpt-5.5".into())));
        assert_eq!(classify("/session Write a Poem", None), ChatCommand::Session(Some("Write a Poem".into())));
        assert_eq!(classify("/session", None), ChatCommand::Session(None));
    }

    #[test]
    fn exact_only_commands_with_arguments_are_prompts() {
        assert_eq!(classify("/status now", None), ChatCommand::Prompt("/status now".into()));
        assert_eq!(classify("/unknown thing", None), ChatCommand::Prompt("/unknown thing".into()));
        assert_eq!(classify("please stop the server", None), ChatCommand::Prompt("please stop the server".into()));
    }
}

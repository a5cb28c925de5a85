//! The permissive command-line dispatch of the original (ops spec §18.1): `--version`/`-V`
//! anywhere wins; `-v`/`--verbose` anywhere; `-h`/`--help` means `help`; the FIRST positional
//! word that is a known command wins; no known command means the default action (run).
//!
//! The tool commands (`cron`, `webhook`, `agent`/`agents`; ductor-rs) take free text after their word
//! (descriptions, prompt templates), so when one of them wins, everything after its word is its
//! own arguments, untouched ([`Invocation::tool_args`]); only what comes before the word counts
//! for `--version` and `--verbose`.

/// The commands `ductor` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandWord {
    /// No known command: run the service (or onboarding when not configured).
    Run,
    /// `help`.
    Help,
    /// `status`.
    Status,
    /// `stop`.
    Stop,
    /// `restart`.
    Restart,
    /// `upgrade`.
    Upgrade,
    /// `uninstall`.
    Uninstall,
    /// `onboarding` / `reset` (same action).
    Onboarding,
    /// `service <sub>`.
    Service,
    /// `docker <sub>`.
    Docker,
    /// `api <sub>`.
    Api,
    /// `agents <sub>`.
    Agents,
    /// `install <extra>`.
    Install,
    /// `cron <sub>`: the cron tool commands.
    Cron,
    /// `webhook <sub>`: the webhook tool commands.
    Webhook,
    /// `task <sub>`: the background task tool commands.
    Task,
    /// `agent <sub>`: the agent tool commands (asks between agents, agents.json).
    Agent,
    /// `completions <shell>`: the shell completion script.
    Completions,
    /// `chat --url …`: the terminal client of the direct API.
    Chat,
}

impl CommandWord {
    fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "help" => Self::Help,
            "status" => Self::Status,
            "stop" => Self::Stop,
            "restart" => Self::Restart,
            "upgrade" => Self::Upgrade,
            "uninstall" => Self::Uninstall,
            "onboarding" | "reset" => Self::Onboarding,
            "service" => Self::Service,
            "docker" => Self::Docker,
            "api" => Self::Api,
            "agents" => Self::Agents,
            "install" => Self::Install,
            "cron" => Self::Cron,
            "webhook" => Self::Webhook,
            "task" => Self::Task,
            "agent" => Self::Agent,
            "completions" => Self::Completions,
            "chat" => Self::Chat,
            _ => return None,
        })
    }

    /// The word as typed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Run => "",
            Self::Help => "help",
            Self::Status => "status",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Upgrade => "upgrade",
            Self::Uninstall => "uninstall",
            Self::Onboarding => "onboarding",
            Self::Service => "service",
            Self::Docker => "docker",
            Self::Api => "api",
            Self::Agents => "agents",
            Self::Install => "install",
            Self::Cron => "cron",
            Self::Webhook => "webhook",
            Self::Task => "task",
            Self::Agent => "agent",
            Self::Completions => "completions",
            Self::Chat => "chat",
        }
    }
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command that won.
    pub command: CommandWord,
    /// Positional words after the command word (sub-command and its arguments).
    pub rest: Vec<String>,
    /// `-v` / `--verbose`.
    pub verbose: bool,
    /// `--json` (status).
    pub json: bool,
    /// `--version` / `-V`.
    pub version: bool,
    /// `-h` / `--help` (with a command: that command's help).
    pub help: bool,
    /// For a tool command (`cron`, `webhook`, `task`, `agent`) and `chat`: every argument after
    /// its word, flags included.
    pub tool_args: Vec<String>,
}

/// Parses argv after the program name.
pub fn parse(args: &[String]) -> Invocation {
    let first_known = args
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.starts_with('-'))
        .find_map(|(i, a)| CommandWord::from_word(a).map(|c| (i, c)));
    if let Some((
        index,
        command @ (CommandWord::Cron
        | CommandWord::Webhook
        | CommandWord::Task
        | CommandWord::Agent
        | CommandWord::Agents
        | CommandWord::Chat),
    )) = first_known
    {
        let before = &args[..index];
        let has = |flags: &[&str]| before.iter().any(|a| flags.contains(&a.as_str()));
        let tool_args = args[index + 1..].to_vec();
        return Invocation {
            command,
            rest: tool_args.iter().filter(|a| !a.starts_with('-')).cloned().collect(),
            verbose: has(&["-v", "--verbose"]),
            json: false,
            version: has(&["-V", "--version"]),
            help: false,
            tool_args,
        };
    }
    let has = |flags: &[&str]| args.iter().any(|a| flags.contains(&a.as_str()));
    let mut words: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    if has(&["-h", "--help"]) {
        words.push("help");
    }
    let found = words.iter().enumerate().find_map(|(i, w)| CommandWord::from_word(w).map(|c| (i, c)));
    let (command, rest) = match found {
        Some((index, command)) => (command, words[index + 1..].iter().map(|w| (*w).to_owned()).collect()),
        None => (CommandWord::Run, Vec::new()),
    };
    Invocation {
        command,
        rest,
        verbose: has(&["-v", "--verbose"]),
        json: has(&["--json"]),
        version: has(&["-V", "--version"]),
        help: has(&["-h", "--help"]),
        tool_args: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn first_known_word_wins() {
        assert_eq!(parse(&args("status --help")).command, CommandWord::Status);
        assert_eq!(parse(&args("foo stop status")).command, CommandWord::Stop);
        assert_eq!(parse(&args("reset")).command, CommandWord::Onboarding);
    }

    #[test]
    fn help_flag_appends_help() {
        assert_eq!(parse(&args("-h")).command, CommandWord::Help);
        assert_eq!(parse(&args("--help")).command, CommandWord::Help);
    }

    #[test]
    fn unknown_words_run_the_default() {
        let inv = parse(&args("whatever -v"));
        assert_eq!(inv.command, CommandWord::Run);
        assert!(inv.verbose);
        assert_eq!(parse(&[]).command, CommandWord::Run);
    }

    #[test]
    fn flags_anywhere_and_sub_words_kept() {
        let inv = parse(&args("service logs extra --json -V"));
        assert_eq!(inv.command, CommandWord::Service);
        assert_eq!(inv.rest, ["logs", "extra"]);
        assert!(inv.json && inv.version);
    }

    #[test]
    fn the_agent_commands_are_tool_commands() {
        let inv = parse(&args("agents add --name helper --json"));
        assert_eq!(inv.command, CommandWord::Agents);
        assert_eq!(inv.tool_args, ["add", "--name", "helper", "--json"]);
        assert_eq!(parse(&args("agent ask ops -V")).tool_args, ["ask", "ops", "-V"]);
    }

    #[test]
    fn a_tool_command_keeps_everything_after_its_word() {
        let inv = parse(&args("-v cron add --name status --description -V --help"));
        assert_eq!(inv.command, CommandWord::Cron);
        assert_eq!(inv.tool_args, ["add", "--name", "status", "--description", "-V", "--help"]);
        assert!(inv.verbose && !inv.version, "only flags before the word count for ductor");
        assert_eq!(parse(&args("webhook list")).command, CommandWord::Webhook);
        let inv = parse(&args("status cron"));
        assert_eq!(inv.command, CommandWord::Status, "the first known word still wins");
        assert!(inv.tool_args.is_empty());
        assert!(parse(&args("--version cron list")).version);
    }
}

//! `ductor help`: the command table (commands this build has), then the status panel.

/// The help text.
pub fn text() -> String {
    let rows = [
        ("ductor", "Start the bot in the foreground (the setup wizard first when not configured)"),
        ("ductor status", "Status panel and the live actor tree (--json for scripts)"),
        ("ductor stop", "Stop the running bot"),
        ("ductor restart", "Stop the running bot and start it again in the background"),
        ("ductor cron", "Scheduled jobs: add, edit, list, remove, time (JSON output)"),
        ("ductor webhook", "Webhooks: add, edit, list, remove, rotate-token, test (JSON output)"),
        ("ductor api", "Direct WebSocket API: enable, disable"),
        ("ductor chat", "Talk to an agent over its API: --url ws://HOST:PORT [--token …]"),
        ("ductor task", "Background tasks: create, list, resume, cancel, delete, ask-parent (JSON output)"),
        ("ductor onboarding", "The setup wizard (also `ductor reset`); flags for scripts: see --help"),
        ("ductor service", "install | status | start | stop | logs | uninstall the system service"),
        ("ductor completions", "bash | zsh | fish: the shell completion script"),
        ("ductor help", "This help (`ductor <command> --help` for one command)"),
        ("-v, --verbose", "Debug logging"),
        ("-V, --version", "Print the version"),
    ];
    let mut out = format!("ductor {} — your coding-agent CLIs, from your chats.\n\n", env!("CARGO_PKG_VERSION"));
    for (command, what) in rows {
        out.push_str(&format!("  {command:<18}{what}\n"));
    }
    out.push_str("\nHome: $DUCTOR_HOME or ~/.ductor. Config: <home>/config/config.json.\n\n");
    out.push_str(crate::cli::command_tree::EXIT_CODES);
    out.push('\n');
    out
}

//! `ductor help`: the command table (commands this build has), then the status panel.

/// The help text.
pub fn text() -> String {
    let rows = [
        ("ductor", "Start the bot in the foreground (tells you what to configure first)"),
        ("ductor status", "Status panel and the live actor tree (--json for scripts)"),
        ("ductor stop", "Stop the running bot"),
        ("ductor restart", "Stop the running bot and start it again in the background"),
        ("ductor cron", "Scheduled jobs: add, edit, list, remove, time (JSON output)"),
        ("ductor webhook", "Webhooks: add, edit, list, remove, rotate-token, test (JSON output)"),
        ("ductor api", "Direct WebSocket API: enable, disable"),
        ("ductor chat", "Talk to an agent over its API: --url ws://HOST:PORT [--token …]"),
        ("ductor help", "This help"),
        ("-v, --verbose", "Debug logging"),
        ("-V, --version", "Print the version"),
    ];
    let mut out = format!("ductor {} — your coding-agent CLIs, from your chats.\n\n", env!("CARGO_PKG_VERSION"));
    for (command, what) in rows {
        out.push_str(&format!("  {command:<18}{what}\n"));
    }
    out.push_str("\nHome: $DUCTOR_HOME or ~/.ductor. Config: <home>/config/config.json.\n");
    out
}

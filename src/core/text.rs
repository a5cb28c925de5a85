//! The English text table: every reply ductor writes to a chat, by key (the spec's i18n keys),
//! so more languages can follow. Placeholders are `{name}`.

/// The English text of `key`; unknown keys give `[MISSING: key]` (as the original does).
pub fn en(key: &str) -> &'static str {
    match key {
        "session.error_header" => "**Something went wrong.**",
        "session.error_body" => "{model} could not answer this message.",
        "session.error_auth" => {
            "The CLI is not logged in or its API key was refused. Log it in again on this machine (for example `claude auth login`, `codex login`, or set the API key), then try again."
        }
        "session.error_rate" => {
            "The provider's rate limit or quota was reached. Wait a moment and try again, or switch the model with /model."
        }
        "session.error_context" => {
            "The conversation no longer fits into the model's context. Start a fresh session with /new."
        }
        "session.empty_turn" => "(The model finished without a text answer.)",
        "timeout.error" => "{model} did not finish within {minutes} min and was stopped.",
        "interrupt.done" => "Interrupted the running turn.",
        "interrupt.nothing" => "Nothing is running.",
        "stop.killed" => "**Stopped.** {provider} was stopped; {discarded} queued message(s) discarded.",
        "stop.nothing" => "Nothing is running.",
        "abort_all.done" => "**Stopped everything:** {count} running turn(s) in {chats} chat(s).",
        "abort_all.nothing" => "Nothing is running anywhere.",
        "new.topic_not_found" => {
            "There is no topic called {name} here (topics are known once they are created or renamed while ductor runs)."
        }
        "new.topic_reset" => "New session started for {provider} in topic {name}.",
        "new.done" => "New session started for {provider}.",
        "reset.done" => "Session reset for {provider}.",
        "model.switched" => "Model switched: {old} -> {model} ({provider}).",
        "model.directive_only" => "Send `@{model} <your message>` to use {model}.",
        "model.effort_unsupported" => "{model} does not support reasoning effort {effort}; it supports: {supported}.",
        "model.already" => "{model} is already running.",
        "session.auto_recovery" => "**Auto-Recovery** — resuming background session **{name}**.",
        "status.no_session" => "No session yet: the next message starts one.",
        "memory.empty" => "Memory is empty. The agent writes what it should remember to memory_system/MAINMEMORY.md.",
        "memory.header" => "**Memory** (memory_system/MAINMEMORY.md)",
        "sessions.ended_one" => "Ended session {name}.",
        "sessions.ended_not_found" => "There is no session {name} (any more).",
        "sessions.ended_all" => "Ended {count} session(s).",
        "sessions.ended_all_none" => "There were no sessions to end.",
        "startup.restart_default" => "Restart complete. ductor is back.",
        "startup.restart_header" => "**Restarting**",
        "startup.restart_body" => "ductor restarts now and tells you here when it is back.",
        "telegram.group_rejected" => {
            "This group ({id}) is not on my list of allowed groups, so I am leaving. Add its id to allowed_group_ids to use me here."
        }
        "telegram.channel_not_whitelisted" => {
            "This channel ({id}) is not on my list of allowed channels, so I am leaving."
        }
        "leave.usage" => "Usage: /leave <chat id> (see /where for the ids).",
        "leave.invalid" => "{id} is not a chat id.",
        "leave.failed" => "Could not leave the chat: {error}",
        "leave.done" => "Left chat {id}.",
        "files.missing" => "File not found: {name} (looked for {path})",
        "files.outside" => {
            "<b>{name}</b> is outside the directory ductor may send files from. To send any file, set <code>\"file_access\": \"all\"</code> in the config and /restart."
        }
        "files.download_failed" => "Could not download {name}.",
        "matrix.room_rejected" => "This room is not on my list of allowed rooms, so I am leaving it.",
        "files.failed" => "[Failed to send: {name}]",
        "welcome.text" => {
            "Hi {name}! I am **ductor**: the coding agents on this machine, in this chat.\n---\nModel: {model}\n---\nWrite a task in plain words, or pick a start below. /help lists the commands."
        }
        "welcome.button_1" => "What can you do?",
        "welcome.button_2" => "Look around my workspace",
        "welcome.button_3" => "Remember something about me",
        "welcome.prompt_1" => "Briefly tell me what you can do for me from this chat, with two or three examples.",
        "welcome.prompt_2" => "Look around your workspace and tell me in a few lines what is there.",
        "welcome.prompt_3" => "Ask me one question about myself and remember the answer in your memory file.",
        "file_browser.empty" => "(empty)",
        "file_browser.not_found" => "Directory not found.",
        "file_browser.send_button" => "Send me a file from this folder",
        "file_browser.file_request_prompt" => {
            "Look at the files in {dir} and send me the one I most likely want (attach it with a file tag). If it is not clear which, list them and ask."
        }
        "footer.tokens" => "{total} tokens ({input} in, {output} out)",
        "info.text" => {
            "**ductor {version}**\nThe official coding-agent CLIs on your machine, from your messenger. A drop-in rebuild of the Python ductor."
        }
        "inbox.stale" => {
            "**These messages arrived while ductor was down:**\n{messages}\n\nSend them again to run them."
        }
        "telegram.not_yet" => "{command} is not available in this version of ductor yet.",
        "cron.none" => "No cron jobs.",
        "cron.header" => "**Cron jobs**",
        "cron.paused" => "Paused {title}.",
        "error.save_failed" => "Could not save the change; see the log. Nothing was changed.",
        "cron.resumed" => "Resumed {title}.",
        "cron.all_on" => "All {count} job(s) are active.",
        "cron.all_off" => "All {count} job(s) are paused.",
        "cron.list_changed" => "The job list has changed since this menu was shown. Here it is again.",
        "tasks.none" => "No background tasks in this chat.",
        "tasks.disabled" => "Background tasks are disabled (tasks.enabled is false).",
        "tasks.header" => "**Background tasks**",
        "tasks.not_running" => "Task {id} is not running.",
        "tasks.cancelled" => "Cancelled {count} task(s).",
        "tasks.restarted" => "ductor restarted while this task was running.",
        "tasks.cleaned" => "Removed {count} finished task(s).",
        "session.recovered" => "_The previous session could not be resumed; continuing in a new one._",
        "session.recovery_failed" => "The session could not be resumed, and a new one failed too. Try /new.",
        "selector.unknown" => "Unknown selector action.",
        "model.no_auth" => "No CLI is logged in. Log in to claude, codex or gemini on this machine first.",
        "model.no_codex" => "No Codex models are known yet (the model list has not been read).",
        "error.session_start" => "The session could not be started.",
        "error.starting" => "ductor is starting; try again in a moment.",
        "agents.not_active" => "Only the main agent is running.",
        "agents.main_only" => "Agents are started and stopped from the main agent's chat.",
        "agents.name_missing" => "Which agent? Usage: /{command} <name> (see /agents).",
        "upgrade.unavailable" => {
            "This is ductor {version}. Upgrading from the chat is not available in this build; update the binary and restart."
        }
        "session.help" => {
            "Start a background session: /session <what to do>. Pick the CLI with /session @codex <what to do>. Continue one with @<name> <message>."
        }
        "session.started" => "Session **{name}** started on {provider} ({model}). Follow up with `@{name} <message>`.",
        "session.followup" => "Follow-up sent to **{name}**.",
        "tasks.too_many" => "This chat has 5 background jobs running already. Wait for one to finish.",
        _ => "[MISSING]",
    }
}

/// `key`'s text with `{name}` placeholders filled in.
pub fn render(key: &str, args: &[(&str, &str)]) -> String {
    let mut text = en(key).to_owned();
    if text == "[MISSING]" {
        return format!("[MISSING: {key}]");
    }
    for (name, value) in args {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_missing_keys() {
        assert_eq!(render("session.error_body", &[("model", "opus")]), "opus could not answer this message.");
        assert_eq!(render("no.such.key", &[]), "[MISSING: no.such.key]");
    }
}

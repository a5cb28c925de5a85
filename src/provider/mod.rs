//! The provider CLIs — `claude`, `codex`, `gemini`: how each is called (argv and stdin) and how
//! its output is parsed into provider-neutral [`StreamEvent`]s (pure), the process runner of a
//! chat turn ([`runner`]) and the one-shot runs of cron jobs and webhooks ([`oneshot`]).

pub mod auth;
pub mod claude;
pub mod codex;
pub mod codex_models;
pub mod gemini;
pub mod gemini_models;
pub mod oneshot;
pub mod runner;

use crate::core::stream_event::{StreamEvent, TurnResult};

/// Which CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Claude Code (`claude`).
    Claude,
    /// OpenAI Codex (`codex`).
    Codex,
    /// Gemini CLI (`gemini`).
    Gemini,
}

impl ProviderKind {
    /// The config / binary name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::Codex => "codex",
            Self::Gemini => "gemini",
        }
    }

    /// The CLI of a config / job `provider` value (`None` for anything else, `antigravity`
    /// included).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "claude" => Some(Self::Claude),
            "codex" => Some(Self::Codex),
            "gemini" => Some(Self::Gemini),
            _ => None,
        }
    }

    /// The name users see.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Claude => "Claude Code",
            Self::Codex => "Codex",
            Self::Gemini => "Gemini",
        }
    }

    /// A fresh parser for this CLI's streaming output.
    pub fn stream_parser(self) -> Box<dyn StreamParser + Send> {
        match self {
            Self::Claude => Box::new(claude::ClaudeStream::default()),
            Self::Codex => Box::new(codex::CodexStream::default()),
            Self::Gemini => Box::new(gemini::GeminiStream::default()),
        }
    }
}

pub use crate::core::model_cache::{CLAUDE_MODELS, GEMINI_ALIASES};

/// The search path for the CLIs: `cli_dirs` first, then the process's `PATH`.
pub fn search_path(cli_dirs: &[camino::Utf8PathBuf]) -> String {
    let mut dirs: Vec<String> = cli_dirs.iter().map(ToString::to_string).collect();
    dirs.extend(std::env::var("PATH").ok());
    dirs.join(":")
}

/// Which CLI serves a model id (a total function: unknown ids are Codex models).
pub fn provider_for(model: &str, discovered_gemini: &[String]) -> ProviderKind {
    if CLAUDE_MODELS.contains(&model) || model.starts_with("claude-") {
        ProviderKind::Claude
    } else if GEMINI_ALIASES.contains(&model)
        || discovered_gemini.iter().any(|m| m == model)
        || model.starts_with("gemini-")
        || model.starts_with("auto-gemini-")
    {
        ProviderKind::Gemini
    } else {
        ProviderKind::Codex
    }
}

/// What one turn asks of a CLI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnSpec {
    /// The user's prompt.
    pub prompt: String,
    /// Model (empty: the CLI's default).
    pub model: String,
    /// `bypassPermissions`, ...
    pub permission_mode: String,
    /// Replaces the system prompt (claude) / precedes the prompt (codex).
    pub system_prompt: Option<String>,
    /// Appended system prompt (MAINMEMORY on a new session).
    pub append_system_prompt: Option<String>,
    /// Session / thread id to resume.
    pub resume: Option<String>,
    /// Continue the most recent session.
    pub continue_session: bool,
    /// Claude `--max-turns`.
    pub max_turns: Option<i64>,
    /// Claude `--max-budget-usd`.
    pub max_budget_usd: Option<f64>,
    /// Codex reasoning effort.
    pub reasoning_effort: String,
    /// `cli_parameters.<provider>`.
    pub cli_parameters: Vec<String>,
}

/// The process to start for a turn: argv (program first) and what to write to stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Text for stdin (then closed); `None` = stdin is `/dev/null`.
    pub stdin: Option<String>,
}

/// How the CLI process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    /// The start of its stderr.
    pub stderr: String,
}

/// Turns a CLI's stdout lines into events. Never panics on any input.
pub trait StreamParser {
    /// One stdout line (without the newline).
    fn line(&mut self, line: &str) -> Vec<StreamEvent>;
    /// After EOF and exit: the post step (synthetic results, error details).
    fn finish(&mut self, exit: &ExitInfo) -> Vec<StreamEvent>;
}

/// Everything a finished turn produced, folded the way the original folds it (§7.2): the last
/// `Result` wins; a result without session id inherits the `SystemInit` one; without any
/// result, the accumulated text is the answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnTranscript {
    /// All events in order.
    pub events: Vec<StreamEvent>,
    /// The folded result.
    pub result: TurnResult,
}

/// Runs a parser over a whole transcript.
pub fn fold_transcript<'a>(
    parser: &mut dyn StreamParser,
    lines: impl IntoIterator<Item = &'a str>,
    exit: &ExitInfo,
) -> TurnTranscript {
    let mut events = Vec::new();
    for line in lines {
        events.extend(parser.line(line));
    }
    events.extend(parser.finish(exit));
    let result = fold_events(&events, exit);
    TurnTranscript { events, result }
}

/// Folds events into the turn's result.
pub fn fold_events(events: &[StreamEvent], exit: &ExitInfo) -> TurnResult {
    let mut session = None;
    let mut text = String::new();
    let mut last = None;
    for event in events {
        match event {
            StreamEvent::SystemInit { session_id } => session = Some(session_id.clone()),
            StreamEvent::TextDelta { text: delta } => text.push_str(delta),
            StreamEvent::Result(result) => last = Some(result.clone()),
            _ => {}
        }
    }
    match last {
        Some(mut result) => {
            if result.session_id.is_none() {
                result.session_id = session;
            }
            if result.returncode.is_none() {
                result.returncode = exit.code;
            }
            if result.result.is_empty() && !result.is_error {
                result.result = text;
            }
            result
        }
        None => TurnResult {
            session_id: session,
            is_error: exit.code != Some(0) && text.is_empty(),
            result: if text.is_empty() { stderr_summary(&exit.stderr, exit.code) } else { text },
            returncode: exit.code,
            ..TurnResult::default()
        },
    }
}

/// CLI chatter on stderr that says nothing about a failure.
const STDERR_NOISE: [&str; 6] = [
    "YOLO mode is enabled",
    "Ripgrep is not available",
    "256-color support not detected",
    "Reading additional input from stdin",
    "Reading prompt from stdin",
    "Approval mode overridden",
];

/// What stderr says about a failure: ANSI colours and known chatter removed, repeated lines
/// once, at most 500 characters; a note about the exit status when nothing is left.
pub fn stderr_summary(stderr: &str, code: Option<i32>) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let line = strip_ansi(line).trim().to_owned();
        if line.is_empty() || STDERR_NOISE.iter().any(|noise| line.contains(noise)) || lines.contains(&line) {
            continue;
        }
        lines.push(line);
    }
    let text = lines.join("\n");
    if text.is_empty() {
        return match code {
            Some(0) => String::new(),
            Some(code) => format!("exited with code {code}"),
            None => "killed by a signal".to_owned(),
        };
    }
    text.chars().take(500).collect()
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Parses one JSON object line; anything else is `None`.
pub(crate) fn json_line(line: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str::<serde_json::Value>(line.trim()) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    }
}

pub(crate) fn str_field<'a>(map: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(serde_json::Value::as_str)
}

pub(crate) fn u64_field(value: Option<&serde_json::Value>, key: &str) -> u64 {
    value.and_then(|v| v.get(key)).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_summary_drops_chatter_and_colours() {
        let stderr = "YOLO mode is enabled. x\n\u{1b}[31mNot trusted.\u{1b}[0m\nNot trusted.\n";
        assert_eq!(stderr_summary(stderr, Some(55)), "Not trusted.");
        assert_eq!(stderr_summary("", Some(3)), "exited with code 3");
        assert_eq!(stderr_summary("  ", Some(0)), "");
    }

    #[test]
    fn provider_for_is_total() {
        assert_eq!(provider_for("claude-opus-4-7", &[]), ProviderKind::Claude);
        assert_eq!(provider_for("opus", &[]), ProviderKind::Claude);
        assert_eq!(provider_for("gemini-2.5-pro", &[]), ProviderKind::Gemini);
        assert_eq!(provider_for("flash", &[]), ProviderKind::Gemini);
        assert_eq!(provider_for("o3", &[]), ProviderKind::Codex);
        assert_eq!(provider_for("Opus", &[]), ProviderKind::Codex);
        assert_eq!(provider_for("x-gem", &["x-gem".to_owned()]), ProviderKind::Gemini);
    }
}

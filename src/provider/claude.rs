//! Claude Code (`claude`): argv (core spec §7.4, ops spec §7.6) and the `stream-json` parser.

use serde_json::{Map, Value};

use crate::core::stream_event::{StreamEvent, TurnResult, Usage};
use crate::provider::{ExitInfo, Invocation, StreamParser, TurnSpec, json_line, stderr_summary, str_field, u64_field};

/// The argv of an interactive turn: streaming (`--verbose … stream-json`) or not (`json`).
pub fn turn_invocation(spec: &TurnSpec, streaming: bool) -> Invocation {
    let mut argv = vec!["claude".to_owned()];
    if streaming {
        argv.push("--verbose".to_owned());
    }
    argv.extend(["-p", "--output-format", if streaming { "stream-json" } else { "json" }].map(str::to_owned));
    let mut flag = |name: &str, value: &str| {
        argv.push(name.to_owned());
        argv.push(value.to_owned());
    };
    if !spec.permission_mode.is_empty() {
        flag("--permission-mode", &spec.permission_mode);
    }
    if !spec.model.is_empty() {
        flag("--model", &spec.model);
    }
    if let Some(system) = spec.system_prompt.as_deref().filter(|s| !s.is_empty()) {
        flag("--system-prompt", system);
    }
    if let Some(append) = spec.append_system_prompt.as_deref().filter(|s| !s.is_empty()) {
        flag("--append-system-prompt", append);
    }
    if let Some(turns) = spec.max_turns {
        flag("--max-turns", &turns.to_string());
    }
    if let Some(budget) = spec.max_budget_usd {
        flag("--max-budget-usd", &budget.to_string());
    }
    if let Some(session) = spec.resume.as_deref().filter(|s| !s.is_empty()) {
        flag("--resume", session);
    } else if spec.continue_session {
        argv.push("--continue".to_owned());
    }
    argv.extend(spec.cli_parameters.iter().cloned());
    argv.push("--".to_owned());
    argv.push(spec.prompt.clone());
    Invocation { argv, stdin: None }
}

/// The argv of a cron / webhook one-shot run (ops spec §7.6; `--effort` as 0.20.1 adds it,
/// only when an effort is set).
pub fn oneshot_invocation(spec: &TurnSpec) -> Invocation {
    let mut argv: Vec<String> = ["claude", "-p", "--output-format", "json"].map(str::to_owned).to_vec();
    argv.extend(["--model".to_owned(), spec.model.clone()]);
    argv.extend(["--permission-mode".to_owned(), spec.permission_mode.clone()]);
    argv.push("--no-session-persistence".to_owned());
    if !spec.reasoning_effort.is_empty() {
        argv.extend(["--effort".to_owned(), spec.reasoning_effort.clone()]);
    }
    argv.extend(spec.cli_parameters.iter().cloned());
    argv.push("--".to_owned());
    argv.push(spec.prompt.clone());
    Invocation { argv, stdin: None }
}

/// Parser of `claude --output-format stream-json`.
#[derive(Debug, Default)]
pub struct ClaudeStream {
    saw_result: bool,
}

impl StreamParser for ClaudeStream {
    fn line(&mut self, line: &str) -> Vec<StreamEvent> {
        let Some(event) = json_line(line) else { return Vec::new() };
        match str_field(&event, "type") {
            Some("system") => system_event(&event).into_iter().collect(),
            Some("assistant") => assistant_blocks(&event),
            Some("result") => {
                self.saw_result = true;
                vec![StreamEvent::Result(result_of(&event))]
            }
            _ => Vec::new(),
        }
    }

    /// A non-zero exit after a result keeps that result's text (it says what went wrong) and
    /// marks it failed; without a result, stderr becomes the error text.
    fn finish(&mut self, exit: &ExitInfo) -> Vec<StreamEvent> {
        if exit.code == Some(0) || self.saw_result {
            return Vec::new();
        }
        vec![StreamEvent::Result(TurnResult {
            is_error: true,
            result: stderr_summary(&exit.stderr, exit.code),
            returncode: exit.code,
            ..TurnResult::default()
        })]
    }
}

fn system_event(event: &Map<String, Value>) -> Option<StreamEvent> {
    match str_field(event, "subtype")? {
        "init" => Some(StreamEvent::SystemInit { session_id: str_field(event, "session_id")?.to_owned() }),
        "status" => Some(StreamEvent::SystemStatus { status: str_field(event, "status").unwrap_or("").to_owned() }),
        "compact_boundary" => {
            let meta = event.get("compact_metadata");
            Some(StreamEvent::CompactBoundary {
                trigger: meta.and_then(|m| m.get("trigger")).and_then(Value::as_str).unwrap_or("").to_owned(),
                pre_tokens: u64_field(meta, "pre_tokens"),
            })
        }
        _ => None,
    }
}

fn assistant_blocks(event: &Map<String, Value>) -> Vec<StreamEvent> {
    let Some(blocks) = event.get("message").and_then(|m| m.get("content")).and_then(Value::as_array) else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter_map(|block| match block.get("type").and_then(Value::as_str)? {
            "text" => {
                let text = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty())?;
                Some(StreamEvent::TextDelta { text: text.to_owned() })
            }
            "tool_use" => Some(StreamEvent::ToolUse {
                name: block.get("name").and_then(Value::as_str).filter(|n| !n.is_empty())?.to_owned(),
                id: block.get("id").and_then(Value::as_str).map(str::to_owned),
                parameters: block.get("input").cloned(),
            }),
            "thinking" => {
                let text = block.get("thinking").or_else(|| block.get("text")).and_then(Value::as_str).unwrap_or("");
                Some(StreamEvent::Thinking { text: text.to_owned() })
            }
            _ => None,
        })
        .collect()
}

/// A `result` object (stream) or the one-shot JSON document.
pub fn result_of(event: &Map<String, Value>) -> TurnResult {
    let usage = event.get("usage");
    let is_error = event.get("is_error").and_then(Value::as_bool).unwrap_or(false);
    let subtype = str_field(event, "subtype").unwrap_or("");
    let result = match str_field(event, "result") {
        Some(text) => text.to_owned(),
        None if is_error => format!("Claude stopped: {}", if subtype.is_empty() { "error" } else { subtype }),
        None => String::new(),
    };
    TurnResult {
        session_id: str_field(event, "session_id").map(str::to_owned),
        result,
        is_error,
        returncode: None,
        duration_ms: event.get("duration_ms").and_then(Value::as_u64),
        total_cost_usd: event.get("total_cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
        usage: Usage {
            input_tokens: u64_field(usage, "input_tokens"),
            output_tokens: u64_field(usage, "output_tokens"),
            cached_tokens: u64_field(usage, "cache_read_input_tokens"),
        },
        num_turns: event.get("num_turns").and_then(Value::as_u64),
        api_error_status: event.get("api_error_status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()),
    }
}

/// The result of a one-shot run (`--output-format json`): empty stdout → stderr is the error;
/// invalid JSON → the raw stdout (first 2000 characters) is the error.
pub fn parse_oneshot(stdout: &str, exit: &ExitInfo) -> TurnResult {
    if stdout.trim().is_empty() {
        return TurnResult {
            is_error: true,
            result: stderr_summary(&exit.stderr, exit.code),
            returncode: exit.code,
            ..TurnResult::default()
        };
    }
    match json_line(stdout) {
        Some(document) => {
            let mut result = result_of(&document);
            result.returncode = exit.code;
            result.is_error |= exit.code != Some(0);
            result
        }
        None => TurnResult {
            is_error: true,
            result: stdout.chars().take(2000).collect(),
            returncode: exit.code,
            ..TurnResult::default()
        },
    }
}

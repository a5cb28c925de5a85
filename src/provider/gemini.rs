//! Gemini CLI (`gemini --output-format stream-json`): argv (core spec §7.6, ops spec §7.6) and
//! the parser. The prompt goes to stdin.

use serde_json::{Map, Value};

use crate::core::stream_event::{StreamEvent, TurnResult, Usage};
use crate::provider::{ExitInfo, Invocation, StreamParser, TurnSpec, json_line, stderr_summary, str_field, u64_field};

fn common_flags(argv: &mut Vec<String>, spec: &TurnSpec) {
    argv.extend(["--include-directories", "."].map(str::to_owned));
    if !spec.model.is_empty() {
        argv.extend(["--model".to_owned(), spec.model.clone()]);
    }
    if spec.permission_mode == "bypassPermissions" {
        argv.extend(["--approval-mode", "yolo"].map(str::to_owned));
    }
}

/// The argv of an interactive turn; the prompt is written to stdin.
pub fn turn_invocation(spec: &TurnSpec) -> Invocation {
    let mut argv: Vec<String> = ["gemini", "--output-format", "stream-json"].map(str::to_owned).to_vec();
    common_flags(&mut argv, spec);
    if let Some(session) = spec.resume.as_deref().filter(|s| !s.is_empty()) {
        argv.extend(["--resume".to_owned(), session.to_owned()]);
    } else if spec.continue_session {
        argv.extend(["--resume", "latest"].map(str::to_owned));
    }
    argv.extend(spec.cli_parameters.iter().cloned());
    Invocation { argv, stdin: Some(spec.prompt.clone()) }
}

/// The argv of a cron / webhook one-shot run; the prompt is written to stdin.
pub fn oneshot_invocation(spec: &TurnSpec) -> Invocation {
    let mut argv: Vec<String> = ["gemini", "-p", "", "--output-format", "json"].map(str::to_owned).to_vec();
    common_flags(&mut argv, spec);
    argv.extend(spec.cli_parameters.iter().cloned());
    Invocation { argv, stdin: Some(spec.prompt.clone()) }
}

/// Parser of `gemini --output-format stream-json`.
#[derive(Debug, Default)]
pub struct GeminiStream {
    session_id: Option<String>,
    saw_result: bool,
}

impl GeminiStream {
    /// A parser for a resumed session (results without an id inherit it).
    pub fn resuming(session_id: &str) -> Self {
        Self { session_id: Some(session_id.to_owned()), saw_result: false }
    }
}

fn text_of(map: &Map<String, Value>) -> Option<String> {
    ["result", "response", "content", "output"]
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn error_text(map: &Map<String, Value>) -> Option<String> {
    match map.get("error") {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Object(error)) => {
            ["message", "detail"].iter().find_map(|k| error.get(*k).and_then(Value::as_str)).map(str::to_owned)
        }
        _ => ["message", "detail"].iter().find_map(|k| map.get(*k).and_then(Value::as_str)).map(str::to_owned),
    }
}

/// Splits a `[Thought: …]` marker off the front of a text block.
fn thought_split(text: &str) -> (Option<&str>, &str) {
    match text.strip_prefix("[Thought:").and_then(|rest| rest.split_once(']')) {
        Some((thought, rest)) => (Some(thought.trim()), rest.trim_start()),
        None => (None, text),
    }
}

fn blocks(content: &Value) -> Vec<StreamEvent> {
    match content {
        Value::String(text) if !text.is_empty() => vec![StreamEvent::TextDelta { text: text.clone() }],
        Value::Array(items) => items
            .iter()
            .flat_map(|block| {
                let mut out = Vec::new();
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => out.extend(tool_use(block)),
                    _ => {
                        let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                        let (thought, rest) = thought_split(text);
                        if let Some(thought) = thought {
                            out.push(StreamEvent::Thinking { text: thought.to_owned() });
                        }
                        if !rest.is_empty() {
                            out.push(StreamEvent::TextDelta { text: rest.to_owned() });
                        }
                    }
                }
                out
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn tool_use(event: &Value) -> Option<StreamEvent> {
    let name = event.get("tool_name").or_else(|| event.get("name")).and_then(Value::as_str)?;
    Some(StreamEvent::ToolUse {
        name: name.to_owned(),
        id: event.get("tool_id").or_else(|| event.get("id")).and_then(Value::as_str).map(str::to_owned),
        parameters: event.get("parameters").or_else(|| event.get("input")).cloned(),
    })
}

/// A `result` object (stream) or the one-shot document.
pub fn result_of(event: &Map<String, Value>, session_id: Option<String>) -> TurnResult {
    let stats = event.get("stats");
    let is_error =
        event.get("is_error").and_then(Value::as_bool).unwrap_or(false) || str_field(event, "status") == Some("error");
    let result = if is_error {
        error_text(event).or_else(|| text_of(event)).unwrap_or_else(|| "Gemini reported an unknown error".to_owned())
    } else {
        text_of(event).unwrap_or_default()
    };
    let cached = stats.and_then(|s| s.get("cached_tokens").or_else(|| s.get("cached"))).and_then(Value::as_u64);
    TurnResult {
        session_id: str_field(event, "session_id").map(str::to_owned).or(session_id),
        result,
        is_error,
        duration_ms: stats.and_then(|s| s.get("duration_ms")).and_then(Value::as_u64),
        usage: Usage {
            input_tokens: u64_field(stats, "input_tokens"),
            output_tokens: u64_field(stats, "output_tokens"),
            cached_tokens: cached.unwrap_or(0),
        },
        ..TurnResult::default()
    }
}

impl StreamParser for GeminiStream {
    fn line(&mut self, line: &str) -> Vec<StreamEvent> {
        let Some(event) = json_line(line) else { return Vec::new() };
        match str_field(&event, "type") {
            Some("init") => match str_field(&event, "session_id") {
                Some(id) => {
                    self.session_id = Some(id.to_owned());
                    vec![StreamEvent::SystemInit { session_id: id.to_owned() }]
                }
                None => Vec::new(),
            },
            Some("message") if matches!(str_field(&event, "role"), Some("assistant" | "model")) => {
                event.get("content").map(blocks).unwrap_or_default()
            }
            Some("tool_use") => tool_use(&Value::Object(event)).into_iter().collect(),
            Some("tool_result") => vec![StreamEvent::ToolResult {
                id: str_field(&event, "tool_id").unwrap_or("").to_owned(),
                status: str_field(&event, "status").unwrap_or("").to_owned(),
                output: str_field(&event, "output").unwrap_or("").to_owned(),
            }],
            Some("result") => {
                self.saw_result = true;
                vec![StreamEvent::Result(result_of(&event, self.session_id.clone()))]
            }
            Some("error") => {
                self.saw_result = true;
                vec![StreamEvent::Result(TurnResult {
                    session_id: self.session_id.clone(),
                    is_error: true,
                    result: error_text(&event).unwrap_or_else(|| "Gemini reported an unknown error".to_owned()),
                    ..TurnResult::default()
                })]
            }
            _ => Vec::new(),
        }
    }

    fn finish(&mut self, exit: &ExitInfo) -> Vec<StreamEvent> {
        if self.saw_result {
            return Vec::new();
        }
        let failed = exit.code != Some(0);
        vec![StreamEvent::Result(TurnResult {
            session_id: self.session_id.clone(),
            is_error: failed,
            result: if failed { stderr_summary(&exit.stderr, exit.code) } else { String::new() },
            returncode: exit.code,
            ..TurnResult::default()
        })]
    }
}

/// The result of a one-shot run: the JSON document's text, or the raw stdout.
pub fn parse_oneshot(stdout: &str, exit: &ExitInfo) -> TurnResult {
    let failed = exit.code != Some(0);
    match serde_json::from_str::<Value>(stdout.trim()) {
        Ok(Value::Object(document)) => {
            let mut result = result_of(&document, None);
            if document.get("error").is_some_and(|e| !e.is_null()) {
                result.is_error = true;
                result.result = error_text(&document).unwrap_or(result.result);
            }
            result.is_error |= failed;
            result.returncode = exit.code;
            result
        }
        _ => TurnResult {
            is_error: failed,
            result: if stdout.trim().is_empty() && failed {
                stderr_summary(&exit.stderr, exit.code)
            } else {
                stdout.chars().take(2000).collect()
            },
            returncode: exit.code,
            ..TurnResult::default()
        },
    }
}

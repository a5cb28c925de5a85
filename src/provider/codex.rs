//! OpenAI Codex (`codex exec --json`): argv (core spec §7.5, ops spec §7.6) and the JSONL parser.
//!
//! Divergence (a fix the spec recommends): a resumed turn re-asserts `--model` and the
//! reasoning effort, so a model switch inside a Codex session is honoured (0.18.2 left them out,
//! and Codex fell back to its own default model).

use serde_json::{Map, Value};

use crate::core::stream_event::{StreamEvent, TurnResult, Usage};
use crate::provider::{ExitInfo, Invocation, StreamParser, TurnSpec, json_line, str_field, u64_field};

fn sandbox_flag(permission_mode: &str, oneshot: bool) -> &'static str {
    match (permission_mode, oneshot) {
        ("bypassPermissions", _) => "--dangerously-bypass-approvals-and-sandbox",
        (_, true) => "--full-auto",
        (_, false) => "--sandbox",
    }
}

fn push_model_and_effort(argv: &mut Vec<String>, spec: &TurnSpec, skip_effort: &[&str]) {
    if !spec.model.is_empty() {
        argv.extend(["--model".to_owned(), spec.model.clone()]);
    }
    if !spec.reasoning_effort.is_empty() && !skip_effort.contains(&spec.reasoning_effort.as_str()) {
        argv.extend(["-c".to_owned(), format!("model_reasoning_effort={}", spec.reasoning_effort)]);
    }
}

/// Codex has no system-prompt flag: system prompt, user prompt and appended prompt are joined
/// with blank lines (MAINMEMORY comes after the user's text on a new session).
pub fn compose_prompt(spec: &TurnSpec) -> String {
    [spec.system_prompt.as_deref(), Some(spec.prompt.as_str()), spec.append_system_prompt.as_deref()]
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The argv of an interactive turn (new session, or `exec resume` with the thread id).
pub fn turn_invocation(spec: &TurnSpec) -> Invocation {
    let mut argv = vec!["codex".to_owned(), "exec".to_owned()];
    let sandbox = sandbox_flag(&spec.permission_mode, false);
    let sandbox_args: Vec<String> = if sandbox == "--sandbox" {
        vec![sandbox.to_owned(), "read-only".to_owned()]
    } else {
        vec![sandbox.to_owned()]
    };
    match spec.resume.as_deref().filter(|t| !t.is_empty()) {
        Some(thread) => {
            argv.extend(["resume".to_owned(), "--json".to_owned()]);
            argv.extend(sandbox_args);
            push_model_and_effort(&mut argv, spec, &["default"]);
            argv.extend(["--".to_owned(), thread.to_owned(), compose_prompt(spec)]);
        }
        None => {
            argv.extend(["--json", "--color", "never"].map(str::to_owned));
            argv.extend(sandbox_args);
            argv.push("--skip-git-repo-check".to_owned());
            push_model_and_effort(&mut argv, spec, &["default"]);
            argv.extend(spec.cli_parameters.iter().cloned());
            argv.extend(["--".to_owned(), compose_prompt(spec)]);
        }
    }
    Invocation { argv, stdin: None }
}

/// The argv of a cron / webhook one-shot run (no effort flag at `medium`).
pub fn oneshot_invocation(spec: &TurnSpec) -> Invocation {
    let mut argv: Vec<String> =
        ["codex", "exec", "--json", "--color", "never", "--skip-git-repo-check"].map(str::to_owned).to_vec();
    argv.push(sandbox_flag(&spec.permission_mode, true).to_owned());
    push_model_and_effort(&mut argv, spec, &["medium", "default"]);
    argv.extend(spec.cli_parameters.iter().cloned());
    argv.extend(["--".to_owned(), spec.prompt.clone()]);
    Invocation { argv, stdin: None }
}

/// Parser of `codex exec --json`.
#[derive(Debug, Default)]
pub struct CodexStream {
    thread_id: Option<String>,
    messages: Vec<String>,
    usage: Option<Usage>,
    last_error: Option<String>,
    turn_failed: Option<String>,
}

fn usage_of(event: &Map<String, Value>) -> Usage {
    let usage = event.get("usage");
    Usage {
        input_tokens: u64_field(usage, "input_tokens"),
        output_tokens: u64_field(usage, "output_tokens"),
        cached_tokens: u64_field(usage, "cached_input_tokens"),
    }
}

fn tool_name(item: &Value) -> Option<String> {
    let name = match item.get("type").and_then(Value::as_str)? {
        "command_execution" => "Bash",
        "file_change" => "Edit",
        "web_search" => "WebSearch",
        "todo_list" => "TodoWrite",
        "mcp_tool_call" => {
            return Some(
                item.get("name").or_else(|| item.get("tool_name")).and_then(Value::as_str).unwrap_or("MCP").to_owned(),
            );
        }
        _ => return None,
    };
    Some(name.to_owned())
}

impl StreamParser for CodexStream {
    fn line(&mut self, line: &str) -> Vec<StreamEvent> {
        let Some(event) = json_line(line) else { return Vec::new() };
        match str_field(&event, "type") {
            Some("thread.started") => match str_field(&event, "thread_id") {
                Some(thread) => {
                    self.thread_id = Some(thread.to_owned());
                    vec![StreamEvent::SystemInit { session_id: thread.to_owned() }]
                }
                None => Vec::new(),
            },
            Some("turn.completed") => {
                self.usage = Some(usage_of(&event));
                Vec::new()
            }
            Some("turn.failed") => {
                let message = event.get("error").and_then(|e| e.get("message")).and_then(Value::as_str);
                self.turn_failed = Some(message.unwrap_or("turn failed").to_owned());
                Vec::new()
            }
            Some("error") => {
                self.last_error = str_field(&event, "message").map(str::to_owned);
                Vec::new()
            }
            Some(kind @ ("item.started" | "item.completed" | "item.updated")) => {
                let Some(item) = event.get("item") else { return Vec::new() };
                match item.get("type").and_then(Value::as_str) {
                    Some("agent_message") if kind == "item.completed" => {
                        let text = item.get("text").and_then(Value::as_str).unwrap_or("");
                        if text.is_empty() {
                            return Vec::new();
                        }
                        self.messages.push(text.to_owned());
                        vec![StreamEvent::TextDelta { text: text.to_owned() }]
                    }
                    Some("reasoning") => {
                        vec![StreamEvent::Thinking {
                            text: item.get("text").and_then(Value::as_str).unwrap_or("").to_owned(),
                        }]
                    }
                    _ if kind == "item.started" => tool_name(item)
                        .map(|name| StreamEvent::ToolUse {
                            name,
                            id: item.get("id").and_then(Value::as_str).map(str::to_owned),
                            parameters: item.get("command").cloned(),
                        })
                        .into_iter()
                        .collect(),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    fn finish(&mut self, exit: &ExitInfo) -> Vec<StreamEvent> {
        let usage = self.usage.unwrap_or_default();
        let result = if exit.code == Some(0) {
            TurnResult {
                session_id: self.thread_id.clone(),
                result: self.messages.join("\n"),
                returncode: exit.code,
                usage,
                ..TurnResult::default()
            }
        } else {
            let detail = self
                .turn_failed
                .clone()
                .or_else(|| self.last_error.clone())
                .or_else(|| (!self.messages.is_empty()).then(|| self.messages.join("\n")))
                .or_else(|| Some(clean_stderr(&exit.stderr)).filter(|s| !s.is_empty()))
                .unwrap_or_else(|| "(no output)".to_owned());
            TurnResult {
                session_id: self.thread_id.clone(),
                result: detail.chars().take(500).collect(),
                is_error: true,
                returncode: exit.code,
                usage,
                ..TurnResult::default()
            }
        };
        vec![StreamEvent::Result(result)]
    }
}

/// stderr without Codex's "Reading … from stdin" notices.
pub fn clean_stderr(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.contains("Reading prompt from stdin") && !l.contains("Reading additional input from stdin"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// The result of a one-shot run: the agent messages after the last tool call.
pub fn parse_oneshot(stdout: &str, exit: &ExitInfo) -> TurnResult {
    let mut parser = CodexStream::default();
    let mut text: Vec<String> = Vec::new();
    for line in stdout.lines() {
        for event in parser.line(line) {
            match event {
                StreamEvent::TextDelta { text: t } => text.push(t),
                StreamEvent::ToolUse { .. } => text.clear(),
                _ => {}
            }
        }
    }
    let mut result = match parser.finish(exit).into_iter().next() {
        Some(StreamEvent::Result(result)) => result,
        _ => TurnResult::default(),
    };
    if !result.is_error {
        result.result = text.join("\n");
        if result.result.is_empty() && parser.thread_id.is_none() && parser.usage.is_none() {
            result.result = stdout.chars().take(2000).collect();
        }
    }
    result
}

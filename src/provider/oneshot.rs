//! One-shot runs — what a cron job or a webhook `cron_task` executes (ops spec §7.6, §7.7): the
//! prompt, the command line of each CLI, the environment, the run itself (once, unattended, in
//! the task folder, in its own process group, with a timeout and a cancel signal) and its
//! outcome: a status (`success`, `error:exit_<code>`, `error:timeout`, ...) and a result text.
//!
//! Building the command and reading the output are pure ([`compose_prompt`],
//! [`OneshotCommand::new`], [`parse_output`], [`oneshot_env`]); [`run_oneshot`] does the I/O.

use std::fmt;
use std::future::Future;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use crate::core::config::dotenv::env_for_child;
use crate::core::resolve::{ExecutionConfig, ResolveError};
use crate::core::stream_event::Usage;
use crate::provider::auth::find_program;
use crate::provider::runner::{LEADER_EXIT_GRACE, STDERR_KEEP, drain_bounded, exit_code, stop_group};
use crate::provider::{Invocation, ProviderKind, TurnSpec, claude, codex, gemini, json_line, str_field, u64_field};

/// The label of a cron job's run in its timeout text.
pub const CRON_LABEL: &str = "Cron job";
/// The label of a webhook `cron_task` run in its timeout text.
pub const WEBHOOK_LABEL: &str = "Webhook cron_task";
/// Bytes of stdout kept; the rest is read and dropped (a runaway CLI cannot fill our memory).
pub const STDOUT_KEEP: usize = 4 * 1024 * 1024;
/// Characters of raw stdout that become the result text when it cannot be parsed.
pub const RAW_TEXT_CHARS: usize = 2000;

/// The prompt of a run: the job's instruction, a blank line, and what an unattended agent must
/// know — its memory file, that its answer is delivered for it, and what that answer is.
pub fn compose_prompt(instruction: &str, task_folder: &str) -> String {
    let memory = format!("{task_folder}_MEMORY.md");
    format!(
        "{instruction}\n\n\
         IMPORTANT — this is a scheduled, unattended run:\n\
         - First read `{memory}` in this folder: it holds what earlier runs of this task learned.\n\
         - When you are finished, update `{memory}`: add the current date and time and a short \
         note of what you did and found.\n\
         - Your final answer is delivered to the user automatically. Return only the result the \
         user should read.\n\
         - Do not report that something was sent or delivered (no \"message sent\" confirmations \
         or other transport or tool acknowledgements)."
    )
}

/// The process of one run: which CLI and its argv (program name first) and stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneshotCommand {
    /// The CLI.
    pub provider: ProviderKind,
    /// Its argv (`argv[0]` is the bare CLI name, resolved on the search path when run) and the
    /// text for its stdin (Gemini only).
    pub invocation: Invocation,
}

impl OneshotCommand {
    /// The command line of ops spec §7.6 for `spec` (its prompt, model, permission mode,
    /// reasoning effort and CLI parameters):
    /// - claude: `-p --output-format json --model M --permission-mode P --no-session-persistence
    ///   [--effort E] <params> -- <prompt>`;
    /// - codex: `exec --json --color never --skip-git-repo-check` with
    ///   `--dangerously-bypass-approvals-and-sandbox` (bypassPermissions) or `--full-auto`,
    ///   `--model M`, `-c model_reasoning_effort=E` unless E is empty or `medium`, params,
    ///   `--`, prompt;
    /// - gemini: `-p "" --output-format json --include-directories . [--model M]
    ///   [--approval-mode yolo] <params>`, the prompt on stdin.
    pub fn new(provider: ProviderKind, spec: &TurnSpec) -> Self {
        let invocation = match provider {
            ProviderKind::Claude => claude::oneshot_invocation(spec),
            ProviderKind::Codex => codex::oneshot_invocation(spec),
            ProviderKind::Gemini => gemini::oneshot_invocation(spec),
        };
        Self { provider, invocation }
    }

    /// The command of a resolved execution config with the given (composed) prompt.
    pub fn for_execution(execution: &ExecutionConfig, prompt: String) -> Result<Self, ResolveError> {
        let target = &execution.target;
        let provider = ProviderKind::from_name(&target.provider)
            .ok_or_else(|| ResolveError::UnsupportedProvider(target.provider.clone()))?;
        let spec = TurnSpec {
            prompt,
            model: target.model.clone(),
            permission_mode: execution.permission_mode.clone(),
            reasoning_effort: target.reasoning_effort.clone(),
            cli_parameters: execution.cli_parameters.clone(),
            ..TurnSpec::default()
        };
        Ok(Self::new(provider, &spec))
    }
}

/// The environment of a run (ops spec §7.6, §12): ductor's own environment, `DUCTOR_HOME`, and
/// every `.env` secret whose key is not already set.
pub fn oneshot_env(
    inherited: impl IntoIterator<Item = (String, String)>,
    ductor_home: &str,
    secrets: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = inherited.into_iter().filter(|(k, _)| k != "DUCTOR_HOME").collect();
    env.push(("DUCTOR_HOME".to_owned(), ductor_home.to_owned()));
    let added: Vec<(String, String)> = env_for_child(secrets, |key| env.iter().any(|(k, _)| k == key))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.extend(added);
    env
}

/// How a run ended, as recorded in `last_run_status` / `last_error` and shown when its text is
/// empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneshotStatus {
    /// Exit code 0: `success`.
    Success,
    /// Any other exit code (minus the signal number when killed by one): `error:exit_<code>`.
    Exit(i32),
    /// Past its timeout, its process group killed: `error:timeout`.
    Timeout,
    /// The CLI is not on the search path: `error:cli_not_found_<provider>`.
    CliNotFound(ProviderKind),
    /// The CLI was found but could not be started: `error:start_failed`.
    StartFailed,
    /// The caller cancelled it (its actor stopped), its process group killed: `error:cancelled`.
    Cancelled,
}

impl OneshotStatus {
    /// Whether the run succeeded.
    pub fn is_success(self) -> bool {
        self == Self::Success
    }
}

impl fmt::Display for OneshotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("success"),
            Self::Exit(code) => write!(f, "error:exit_{code}"),
            Self::Timeout => f.write_str("error:timeout"),
            Self::CliNotFound(provider) => write!(f, "error:cli_not_found_{}", provider.name()),
            Self::StartFailed => f.write_str("error:start_failed"),
            Self::Cancelled => f.write_str("error:cancelled"),
        }
    }
}

/// What a run came to.
#[derive(Debug, Clone, PartialEq)]
pub struct OneshotOutcome {
    /// How it ended.
    pub status: OneshotStatus,
    /// The result text for the user (parsed from stdout even when the CLI failed; a bracketed
    /// note when it timed out, was cancelled or could not start).
    pub text: String,
    /// From start to end (including the kill of a timed-out run).
    pub elapsed: Duration,
    /// Tokens, where the output reports them.
    pub usage: Option<Usage>,
    /// Cost in USD, where the output reports it (Claude).
    pub cost_usd: Option<f64>,
    /// The start of stderr (at most [`STDERR_KEEP`] bytes), for the log.
    pub stderr: String,
}

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct OneshotSettings {
    /// The task folder: the working directory.
    pub task_folder: Utf8PathBuf,
    /// The whole environment of the CLI (see [`oneshot_env`]); nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// Where the CLI is looked for (`PATH` syntax).
    pub search_path: String,
    /// How long it may run.
    pub timeout: Duration,
    /// [`CRON_LABEL`] or [`WEBHOOK_LABEL`], for the timeout text.
    pub label: String,
}

/// What a run's stdout says (ops spec §7.7).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedOutput {
    /// The result text.
    pub text: String,
    /// Tokens, when reported.
    pub usage: Option<Usage>,
    /// Cost in USD, when reported.
    pub cost_usd: Option<f64>,
}

/// Reads a run's stdout, whatever the exit code:
/// - claude: the JSON document's `result`; stdout that is not JSON → its first 2000 characters;
/// - gemini: the JSON document's response text (or, without one, its error message); not JSON
///   → the first 2000 characters;
/// - codex: the agent messages of the JSONL stream, one per line; a stream that parsed (a
///   thread id or usage seen) without a message → `""`; otherwise the first 2000 characters.
pub fn parse_output(provider: ProviderKind, stdout: &str) -> ParsedOutput {
    match provider {
        ProviderKind::Claude => claude_output(stdout),
        ProviderKind::Codex => codex_output(stdout),
        ProviderKind::Gemini => gemini_output(stdout),
    }
}

fn raw_text(stdout: &str) -> String {
    stdout.trim().chars().take(RAW_TEXT_CHARS).collect()
}

/// The one JSON object of a `--output-format json` run (after any line of chatter before it).
fn json_document(stdout: &str) -> Option<Map<String, Value>> {
    json_line(stdout).or_else(|| stdout.find("\n{").and_then(|at| json_line(&stdout[at..])))
}

fn claude_output(stdout: &str) -> ParsedOutput {
    let Some(document) = json_document(stdout) else {
        return ParsedOutput { text: raw_text(stdout), ..ParsedOutput::default() };
    };
    let usage = document.get("usage").map(|usage| Usage {
        input_tokens: u64_field(Some(usage), "input_tokens"),
        output_tokens: u64_field(Some(usage), "output_tokens"),
        cached_tokens: u64_field(Some(usage), "cache_read_input_tokens"),
    });
    ParsedOutput {
        text: str_field(&document, "result").unwrap_or("").to_owned(),
        usage,
        cost_usd: document.get("total_cost_usd").and_then(Value::as_f64),
    }
}

fn gemini_output(stdout: &str) -> ParsedOutput {
    let Some(document) = json_document(stdout) else {
        return ParsedOutput { text: raw_text(stdout), ..ParsedOutput::default() };
    };
    let answer = ["response", "result", "content", "output"]
        .iter()
        .find_map(|key| str_field(&document, key))
        .filter(|text| !text.is_empty());
    let error = || match document.get("error") {
        Some(Value::String(text)) => Some(text.as_str()),
        Some(Value::Object(error)) => error.get("message").and_then(Value::as_str),
        _ => None,
    };
    ParsedOutput {
        text: answer.or_else(error).unwrap_or("").to_owned(),
        usage: document.get("stats").and_then(gemini_usage),
        cost_usd: None,
    }
}

/// Gemini's `stats.models.<model>.tokens` summed over the models used.
fn gemini_usage(stats: &Value) -> Option<Usage> {
    let models = stats.get("models")?.as_object()?;
    let mut usage = Usage::default();
    for tokens in models.values().filter_map(|model| model.get("tokens")) {
        let input = tokens.get("input").or_else(|| tokens.get("prompt")).and_then(Value::as_u64).unwrap_or(0);
        usage.input_tokens += input;
        usage.output_tokens += u64_field(Some(tokens), "candidates");
        usage.cached_tokens += u64_field(Some(tokens), "cached");
    }
    Some(usage)
}

fn codex_output(stdout: &str) -> ParsedOutput {
    let mut messages: Vec<&str> = Vec::new();
    let mut usage: Option<Usage> = None;
    let mut parsed = false;
    let events: Vec<Map<String, Value>> = stdout.lines().filter_map(json_line).collect();
    for event in &events {
        if str_field(event, "thread_id").is_some() {
            parsed = true;
        }
        match str_field(event, "type") {
            Some("turn.completed") => {
                parsed = true;
                let turn = event.get("usage");
                let total = usage.get_or_insert_with(Usage::default);
                total.input_tokens += u64_field(turn, "input_tokens");
                total.output_tokens += u64_field(turn, "output_tokens");
                total.cached_tokens += u64_field(turn, "cached_input_tokens");
            }
            Some("item.completed") => {
                let item = event.get("item");
                if item.and_then(|i| i.get("type")).and_then(Value::as_str) == Some("agent_message")
                    && let Some(text) =
                        item.and_then(|i| i.get("text")).and_then(Value::as_str).filter(|t| !t.is_empty())
                {
                    messages.push(text);
                }
            }
            _ => {}
        }
    }
    let text = if !messages.is_empty() {
        messages.join("\n")
    } else if parsed {
        String::new()
    } else {
        raw_text(stdout)
    };
    ParsedOutput { text, usage, cost_usd: None }
}

/// How long a timeout was, for its text (`1800`, `0.5`).
fn seconds(timeout: Duration) -> String {
    format!("{}", timeout.as_secs_f64())
}

/// Kills the process group if the run is dropped while its CLI still runs (the task running it
/// was aborted).
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

enum Ending {
    Exited(Option<std::process::ExitStatus>),
    TimedOut,
    Cancelled,
}

/// Runs the command once: the CLI found on the search path (missing →
/// `error:cli_not_found_<provider>`, text `[<provider> CLI not found]`), started in the task
/// folder with exactly the given environment, stdin closed (Gemini: the prompt, then closed),
/// stdout and stderr captured (bounded), in its own process group. Past the timeout, or when
/// `cancel` completes first, the group gets SIGTERM and, 2 s later, SIGKILL; the CLI is always
/// waited for.
pub async fn run_oneshot(
    command: &OneshotCommand,
    settings: &OneshotSettings,
    cancel: impl Future<Output = ()>,
) -> OneshotOutcome {
    let started = Instant::now();
    let provider = command.provider;
    let finished = |status: OneshotStatus, text: String| OneshotOutcome {
        status,
        text,
        elapsed: started.elapsed(),
        usage: None,
        cost_usd: None,
        stderr: String::new(),
    };
    let Some(program) = find_program(provider.name(), &settings.search_path) else {
        tracing::warn!(provider = provider.name(), label = %settings.label, "The CLI of a one-shot run is not installed.");
        return finished(OneshotStatus::CliNotFound(provider), format!("[{} CLI not found]", provider.name()));
    };
    let args = command.invocation.argv.get(1..).unwrap_or_default();
    let stdin_text = command.invocation.stdin.clone();
    let mut process = tokio::process::Command::new(program.as_std_path());
    process
        .args(args)
        .current_dir(&settings.task_folder)
        .env_clear()
        .envs(settings.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if stdin_text.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match process.spawn() {
        Ok(child) => child,
        Err(error) => {
            tracing::warn!(program = %program, folder = %settings.task_folder, error = %error, "A one-shot CLI could not be started.");
            return finished(
                OneshotStatus::StartFailed,
                format!("[{} CLI could not be started: {error}]", provider.name()),
            );
        }
    };
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    let mut guard = GroupGuard(pid);
    tracing::info!(provider = provider.name(), label = %settings.label, folder = %settings.task_folder, pid = ?pid, "One-shot run started.");
    if let (Some(text), Some(mut stdin)) = (stdin_text, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(text.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    let stdout_kept = Arc::new(Mutex::new(Vec::new()));
    let stderr_kept = Arc::new(Mutex::new(Vec::new()));
    let stdout_task =
        child.stdout.take().map(|out| tokio::spawn(drain_bounded(out, Arc::clone(&stdout_kept), STDOUT_KEEP)));
    let stderr_task =
        child.stderr.take().map(|err| tokio::spawn(drain_bounded(err, Arc::clone(&stderr_kept), STDERR_KEEP)));

    let ending = tokio::select! {
        status = child.wait() => Ending::Exited(status.ok()),
        () = tokio::time::sleep(settings.timeout) => Ending::TimedOut,
        () = cancel => Ending::Cancelled,
    };
    if !matches!(ending, Ending::Exited(_)) {
        match pid {
            Some(pid) => stop_group(pid, &mut child).await,
            None => {
                let _ = child.start_kill();
            }
        }
        let _ = child.wait().await;
    }
    guard.disarm();

    // Something the CLI started may still hold its pipes open: do not wait for it long.
    let stdout_total = settle(stdout_task).await;
    settle(stderr_task).await;
    if stdout_total.is_some_and(|total| total > STDOUT_KEEP) {
        tracing::warn!(kept = STDOUT_KEEP, printed = ?stdout_total, "A one-shot CLI printed more than is kept; the rest was dropped.");
    }
    let stdout = String::from_utf8_lossy(&stdout_kept.lock().unwrap_or_else(PoisonError::into_inner)).into_owned();
    let stderr = String::from_utf8_lossy(&stderr_kept.lock().unwrap_or_else(PoisonError::into_inner)).into_owned();
    let parsed = parse_output(provider, &stdout);
    let (status, text) = match ending {
        Ending::Exited(Some(status)) => match exit_code(status) {
            0 => (OneshotStatus::Success, parsed.text),
            code => (OneshotStatus::Exit(code), parsed.text),
        },
        Ending::Exited(None) => (OneshotStatus::Exit(-1), parsed.text),
        Ending::TimedOut => {
            (OneshotStatus::Timeout, format!("[{} timed out after {}s]", settings.label, seconds(settings.timeout)))
        }
        Ending::Cancelled => (OneshotStatus::Cancelled, format!("[{} cancelled]", settings.label)),
    };
    let elapsed = started.elapsed();
    tracing::info!(
        provider = provider.name(),
        label = %settings.label,
        status = %status,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "One-shot run finished."
    );
    OneshotOutcome { status, text, elapsed, usage: parsed.usage, cost_usd: parsed.cost_usd, stderr }
}

/// Waits a moment for a pipe reader to reach the end; aborts it otherwise. Returns the bytes it
/// read when it finished.
async fn settle(task: Option<JoinHandle<usize>>) -> Option<usize> {
    let task = task?;
    let abort = task.abort_handle();
    match tokio::time::timeout(LEADER_EXIT_GRACE, task).await {
        Ok(Ok(total)) => Some(total),
        Ok(Err(_)) => None,
        Err(_) => {
            abort.abort();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers");

    fn fixture_stdout(cli: &str, file: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{cli}/{file}")).unwrap()
    }

    const SAID: &str = "FAKE[text] hello from the fake model (user turns seen: 1). You said: Say hello from cron";

    #[test]
    fn claude_result_tokens_and_cost() {
        let parsed = parse_output(ProviderKind::Claude, &fixture_stdout("claude", "cron_oneshot.json"));
        assert_eq!(parsed.text, SAID);
        assert_eq!(parsed.usage.map(|u| u.total()), Some(132));
        assert_eq!(parsed.cost_usd, Some(0.00072));
    }

    #[test]
    fn codex_messages_and_tokens() {
        let parsed = parse_output(ProviderKind::Codex, &fixture_stdout("codex", "cron_oneshot.jsonl"));
        assert_eq!(parsed.text, SAID);
        assert_eq!(parsed.usage.map(|u| u.total()), Some(132));
        assert_eq!(parsed.cost_usd, None);
    }

    #[test]
    fn gemini_response_and_tokens() {
        let parsed = parse_output(ProviderKind::Gemini, &fixture_stdout("gemini", "cron_oneshot.json"));
        assert_eq!(parsed.text, SAID);
        assert_eq!(parsed.usage, Some(Usage { input_tokens: 120, output_tokens: 12, cached_tokens: 0 }));
    }

    #[test]
    fn every_agent_message_is_part_of_the_codex_text() {
        let stdout = [
            r#"{"type":"thread.started","thread_id":"t1"}"#,
            r#"{"type":"item.completed","item":{"id":"i0","type":"agent_message","text":"Checking the feed."}}"#,
            r#"{"type":"item.started","item":{"id":"i1","type":"command_execution","command":"curl x"}}"#,
            r#"{"type":"item.completed","item":{"id":"i1","type":"command_execution","exit_code":0}}"#,
            r#"{"type":"item.completed","item":{"id":"i2","type":"reasoning","text":"thinking"}}"#,
            r#"{"type":"item.completed","item":{"id":"i3","type":"agent_message","text":"Three new posts."}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":4,"output_tokens":5}}"#,
        ]
        .join("\n");
        let parsed = parse_output(ProviderKind::Codex, &stdout);
        assert_eq!(parsed.text, "Checking the feed.\nThree new posts.");
        assert_eq!(parsed.usage, Some(Usage { input_tokens: 10, output_tokens: 5, cached_tokens: 4 }));
    }

    #[test]
    fn output_that_is_not_json_is_cut_to_2000_characters() {
        let long = format!("Ünïcode {}", "x".repeat(5000));
        for provider in [ProviderKind::Claude, ProviderKind::Codex, ProviderKind::Gemini] {
            let parsed = parse_output(provider, &long);
            assert_eq!(parsed.text.chars().count(), 2000, "{provider:?}");
            assert!(parsed.text.starts_with("Ünïcode x"), "{provider:?}");
            assert_eq!(parsed.usage, None);
            assert_eq!(parse_output(provider, "").text, "", "{provider:?}: empty stdout, empty text");
        }
    }

    #[test]
    fn a_codex_stream_without_message_is_empty_text() {
        let stdout = "{\"type\":\"thread.started\",\"thread_id\":\"t1\"}\n{\"type\":\"turn.failed\",\"error\":{\"message\":\"quota\"}}\n";
        assert_eq!(parse_output(ProviderKind::Codex, stdout).text, "");
        let usage_only = "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}\n";
        let parsed = parse_output(ProviderKind::Codex, usage_only);
        assert_eq!((parsed.text.as_str(), parsed.usage.map(|u| u.total())), ("", Some(7)));
        assert_eq!(parse_output(ProviderKind::Codex, "{\"type\":\"other\"}\n").text, "{\"type\":\"other\"}");
    }

    #[test]
    fn claude_json_without_result_is_empty_and_gemini_errors_say_why() {
        let parsed =
            parse_output(ProviderKind::Claude, r#"{"type":"result","subtype":"error_max_turns","is_error":true}"#);
        assert_eq!(parsed.text, "");
        let gemini = r#"{"session_id":"s","error":{"type":"ApiError","message":"quota exhausted","code":429}}"#;
        assert_eq!(parse_output(ProviderKind::Gemini, gemini).text, "quota exhausted");
        let with_chatter = format!("Loaded cached credentials.\n{}", fixture_stdout("gemini", "cron_oneshot.json"));
        assert_eq!(parse_output(ProviderKind::Gemini, &with_chatter).text, SAID, "chatter before the document");
    }

    #[test]
    fn statuses_read_as_the_original_writes_them() {
        assert_eq!(OneshotStatus::Success.to_string(), "success");
        assert_eq!(OneshotStatus::Exit(3).to_string(), "error:exit_3");
        assert_eq!(OneshotStatus::Exit(-9).to_string(), "error:exit_-9");
        assert_eq!(OneshotStatus::Timeout.to_string(), "error:timeout");
        assert_eq!(OneshotStatus::CliNotFound(ProviderKind::Gemini).to_string(), "error:cli_not_found_gemini");
        assert!(OneshotStatus::Success.is_success() && !OneshotStatus::Timeout.is_success());
    }

    #[test]
    fn the_prompt_is_the_instruction_then_the_memory_rules() {
        let prompt = compose_prompt("Summarise the news.", "daily-report");
        let (instruction, block) = prompt.split_once("\n\n").unwrap();
        assert_eq!(instruction, "Summarise the news.");
        assert_eq!(block.matches("`daily-report_MEMORY.md`").count(), 2, "read first, update at the end");
        assert!(block.contains("date and time"));
        assert!(block.contains("delivered to the user automatically"));
    }

    #[test]
    fn the_command_of_an_execution_config() {
        use crate::core::resolve::ResolvedTarget;
        let execution = ExecutionConfig {
            target: ResolvedTarget {
                provider: "codex".into(),
                model: "gpt-5.5".into(),
                reasoning_effort: "high".into(),
            },
            cli_parameters: vec!["--oss".into()],
            permission_mode: "default".into(),
            timeout: Duration::from_secs(60),
        };
        let command = OneshotCommand::for_execution(&execution, "do it".into()).unwrap();
        assert_eq!(command.provider, ProviderKind::Codex);
        assert_eq!(
            command.invocation.argv,
            [
                "codex",
                "exec",
                "--json",
                "--color",
                "never",
                "--skip-git-repo-check",
                "--full-auto",
                "--model",
                "gpt-5.5",
                "-c",
                "model_reasoning_effort=high",
                "--oss",
                "--",
                "do it"
            ]
        );
        let mut claude = execution.clone();
        claude.target =
            ResolvedTarget { provider: "claude".into(), model: "opus".into(), reasoning_effort: "low".into() };
        let argv = OneshotCommand::for_execution(&claude, "p".into()).unwrap().invocation.argv;
        let effort = argv.iter().position(|a| a == "--effort").unwrap();
        assert_eq!(argv[effort + 1], "low");
        assert!(effort < argv.iter().position(|a| a == "--oss").unwrap(), "before the configured parameters");
        let mut other = execution;
        other.target.provider = "antigravity".into();
        assert!(OneshotCommand::for_execution(&other, "p".into()).is_err());
    }

    #[test]
    fn the_environment_keeps_ours_and_adds_home_and_new_secrets() {
        let inherited = vec![("PATH".to_owned(), "/bin".to_owned()), ("FOO".to_owned(), "mine".to_owned())];
        let secrets = vec![("FOO".to_owned(), "file".to_owned()), ("TOKEN".to_owned(), "t".to_owned())];
        let env = oneshot_env(inherited, "/home/u/.ductor", &secrets);
        assert_eq!(
            env,
            [("PATH", "/bin"), ("FOO", "mine"), ("DUCTOR_HOME", "/home/u/.ductor"), ("TOKEN", "t")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn timeout_texts_use_plain_seconds() {
        assert_eq!(seconds(Duration::from_secs(1800)), "1800");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
    }
}

//! A fake `claude` / `codex` / `gemini` for tests and benchmarks: installed under those names
//! (a symlink or copy on a temporary PATH), it checks its argv against the recorded argv shape
//! of a fixture in `tests/fixtures/providers/`, then replays that fixture's stdout, stderr
//! and exit code.
//!
//! Environment:
//! - `FAKE_CLI_FIXTURES`: the fixtures directory (default `<crate>/tests/fixtures/providers`).
//! - `FAKE_CLI_FIXTURE`: the fixture name (default: `cron_oneshot` for an unattended run —
//!   `--output-format json` — `resume` when resuming, else `text`).
//! - `FAKE_CLI_LINE_DELAY_MS`: pause before each stdout line.
//! - `FAKE_CLI_HOLD_MS`: pause after the last line before exiting (a long turn).
//! - `FAKE_CLI_GRANDCHILD`: start `sleep 300` as a child first (to test process-group kills);
//!   its pid is recorded.
//! - `FAKE_CLI_IGNORE_TERM`: block SIGTERM, so only SIGKILL ends it (its child still gets the
//!   default action).
//! - `FAKE_CLI_HOLD_WHILE`: after the last line, wait while this file exists (runs that are not
//!   background tasks); `FAKE_CLI_TASK_HOLD_WHILE`: the same for background task workers (runs
//!   with `DUCTOR_TASK_ID`) — a test releases a run by deleting the file.
//! - `FAKE_CLI_TASK_COMMAND`: a worker's first run (not resuming) runs this `sh -c` command first
//!   (e.g. a task tool script).
//! - `FAKE_CLI_RECORD`: append a JSON line when it starts (cli, argv, stdin, cwd, pid,
//!   grandchild pid, the `DUCTOR_*` / `GEMINI_*` environment, time) and one when it exits.
//!
//! A prompt line `RUN: <command>` makes it act like a CLI using its shell tool: it runs the
//! command with `sh -c` (its own cwd and environment) and answers with the command's output
//! (stdout, then stderr) in place of the fixture's text and result (claude's formats).
//!
//! An argv whose shape (flags in order, number of other words) differs from the fixture's
//! exits 97 with the difference on stderr.

#[path = "../tests/suite/support/shell_words.rs"]
mod shell_words;

use std::io::{Read, Write};

use shell_words::shell_words;
use std::time::Duration;

fn shape(argv: &[String]) -> (Vec<String>, usize) {
    let flags: Vec<String> = argv.iter().filter(|a| a.starts_with('-') && a.len() > 1).cloned().collect();
    (flags, argv.len())
}

/// `argv` without the `flag value` pairs of `extras` that the expected argv does not have.
fn without_extra_pairs(argv: &[String], expected: &[String], extras: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for arg in argv {
        if skip {
            skip = false;
            continue;
        }
        if extras.contains(&arg.as_str()) && !expected.contains(arg) {
            skip = true;
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// `codex app-server`: answers `initialize` and `model/list` (models from `FAKE_CODEX_MODELS`,
/// a JSON array of `model/list` entries, or two defaults), until stdin closes.
fn app_server() -> i32 {
    let models: serde_json::Value = std::env::var("FAKE_CODEX_MODELS")
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| {
            serde_json::json!([
                {"id": "gpt-5.5", "displayName": "GPT-5.5", "isDefault": true,
                 "supportedReasoningEfforts": [{"reasoningEffort": "medium"}, {"reasoningEffort": "high"}]},
                {"id": "gpt-5.5-mini", "displayName": "GPT-5.5 mini"}
            ])
        });
    if let Ok(record) = std::env::var("FAKE_CLI_RECORD") {
        append_record(&record, &serde_json::json!({"event": "app-server", "t": now_ms(), "pid": std::process::id()}));
    }
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        let Ok(request) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let answer = match request["id"].as_i64() {
            Some(1) => serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"userAgent": "fake"}}),
            Some(2) => serde_json::json!({"jsonrpc": "2.0", "id": 2, "result": {"data": models}}),
            _ => continue,
        };
        if writeln!(out, "{answer}").and_then(|()| out.flush()).is_err() {
            return 141;
        }
    }
    0
}

/// One `write` of a whole line, so concurrent fake CLIs do not interleave their records.
fn append_record(path: &str, line: &serde_json::Value) {
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

fn now_us() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn env_ms(name: &str) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn main() {
    std::process::exit(run());
}

/// The recorded output with every assistant text and the result replaced by `answer`.
fn with_answer(stdout: &str, answer: &str) -> String {
    let mut out = String::new();
    for line in stdout.lines() {
        let Ok(mut event) = serde_json::from_str::<serde_json::Value>(line) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        if event.get("result").is_some_and(serde_json::Value::is_string) {
            event["result"] = answer.into();
        }
        if let Some(content) = event.pointer_mut("/message/content").and_then(serde_json::Value::as_array_mut) {
            for part in content.iter_mut().filter(|p| p["type"] == "text") {
                part["text"] = answer.into();
            }
        }
        out.push_str(&event.to_string());
        out.push('\n');
    }
    out
}

fn run() -> i32 {
    let argv: Vec<String> = std::env::args().collect();
    let cli = std::path::Path::new(argv.first().map_or("", String::as_str))
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_owned();
    if !["claude", "codex", "gemini"].contains(&cli.as_str()) {
        eprintln!("fake-cli: install me as claude, codex or gemini (got {cli:?})");
        return 96;
    }
    if cli == "codex" && argv.get(1).map(String::as_str) == Some("app-server") {
        return app_server();
    }
    if std::env::var_os("FAKE_CLI_IGNORE_TERM").is_some() {
        // A blocked signal stays pending; children start with an empty mask again.
        let mut term = nix::sys::signal::SigSet::empty();
        term.add(nix::sys::signal::Signal::SIGTERM);
        if term.thread_block().is_err() {
            eprintln!("fake-cli: could not block SIGTERM");
            return 95;
        }
    }
    let resuming = argv.iter().any(|a| a == "--resume" || a == "resume");
    let oneshot = argv.windows(2).any(|w| w[0] == "--output-format" && w[1] == "json");
    let fixture = std::env::var("FAKE_CLI_FIXTURE").unwrap_or_else(|_| {
        if oneshot {
            "cron_oneshot"
        } else if resuming {
            "resume"
        } else {
            "text"
        }
        .to_owned()
    });
    let dir = std::env::var("FAKE_CLI_FIXTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers").to_owned());
    let base = format!("{dir}/{cli}/{fixture}");
    let meta: serde_json::Value =
        match std::fs::read_to_string(format!("{base}.meta.json")).map(|t| serde_json::from_str(&t)) {
            Ok(Ok(meta)) => meta,
            _ => {
                eprintln!("fake-cli: no fixture {base}");
                return 98;
            }
        };
    let mut stdin_text = String::new();
    if cli == "gemini" {
        let _ = std::io::stdin().read_to_string(&mut stdin_text);
    }
    let grandchild = std::env::var_os("FAKE_CLI_GRANDCHILD")
        .and_then(|_| std::process::Command::new("sleep").arg("300").spawn().ok())
        .map(|child| child.id());
    if let Ok(record) = std::env::var("FAKE_CLI_RECORD") {
        let env: serde_json::Map<String, serde_json::Value> = std::env::vars()
            .filter(|(k, _)| k.starts_with("DUCTOR_") || k.starts_with("GEMINI_"))
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let system_md = std::env::var("GEMINI_SYSTEM_MD").ok().and_then(|p| std::fs::read_to_string(p).ok());
        let line = serde_json::json!({
            "event": "start", "system_md": system_md, "t": now_ms(), "t_us": now_us(),
            "cli": cli, "argv": argv, "stdin": stdin_text, "pid": std::process::id(), "grandchild": grandchild,
            "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(), "env": env,
        });
        append_record(&record, &line);
    }
    let expected = shell_words(meta["argv"].as_str().unwrap_or(""));
    // ductor re-asserts the model and effort when resuming codex (0.18.2 did not): allowed extras.
    let given = without_extra_pairs(&argv, &expected, &["--model", "-c"]);
    if shape(&given) != shape(&expected) {
        eprintln!(
            "fake-cli: argv shape differs from {fixture}\n  got:      {:?}\n  expected: {:?}",
            shape(&argv),
            shape(&expected)
        );
        return 97;
    }
    let task = std::env::var_os("DUCTOR_TASK_ID").is_some();
    if let (true, false, Ok(command)) = (task, resuming, std::env::var("FAKE_CLI_TASK_COMMAND")) {
        let _ = std::process::Command::new("sh").args(["-c", &command]).status();
    }
    let stdout_file = meta["stdout_file"].as_str().unwrap_or("");
    let mut stdout = std::fs::read_to_string(format!("{dir}/{cli}/{stdout_file}")).unwrap_or_default();
    let command = argv
        .iter()
        .map(String::as_str)
        .chain([stdin_text.as_str()])
        .find_map(|text| text.lines().find_map(|line| line.trim_start().strip_prefix("RUN: ").map(str::to_owned)));
    if let Some(command) = command {
        let output = std::process::Command::new("sh").arg("-c").arg(&command).output();
        let answer = match output {
            Ok(o) => format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
            Err(e) => format!("fake-cli: could not run {command:?}: {e}"),
        };
        stdout = with_answer(&stdout, answer.trim_end());
    }
    let stderr = std::fs::read_to_string(format!("{base}.stderr.txt")).unwrap_or_default();
    let delay = Duration::from_millis(env_ms("FAKE_CLI_LINE_DELAY_MS"));
    let mut out = std::io::stdout().lock();
    for line in stdout.lines() {
        std::thread::sleep(delay);
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return 141;
        }
    }
    eprint!("{stderr}");
    if let Ok(record) = std::env::var("FAKE_CLI_RECORD") {
        append_record(&record, &serde_json::json!({"event": "last_line", "t_us": now_us(), "pid": std::process::id()}));
    }
    std::thread::sleep(Duration::from_millis(env_ms("FAKE_CLI_HOLD_MS")));
    let hold = std::env::var(if task { "FAKE_CLI_TASK_HOLD_WHILE" } else { "FAKE_CLI_HOLD_WHILE" });
    while hold.as_ref().is_ok_and(|file| std::path::Path::new(file).exists()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Ok(record) = std::env::var("FAKE_CLI_RECORD") {
        append_record(&record, &serde_json::json!({"event": "exit", "t": now_ms(), "pid": std::process::id()}));
    }
    meta["exit_code"].as_i64().and_then(|c| i32::try_from(c).ok()).unwrap_or(0)
}

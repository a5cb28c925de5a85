//! Installs the fake provider CLI (`examples/fake_cli.rs`) as `claude`, `codex` and `gemini` in
//! a temporary directory for tests.

use std::path::PathBuf;

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Value, json};

/// The built fake CLI; built on demand when a single test binary runs without the examples.
pub fn fake_cli_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let binary = profile_dir.join("examples/fake_cli");
    if !binary.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "fake_cli"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the fake CLI");
    }
    binary
}

/// A directory holding `claude`, `codex` and `gemini` links to the fake CLI.
pub fn install(dir: &Utf8PathBuf) -> Utf8PathBuf {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = fake_cli_binary();
    for name in ["claude", "codex", "gemini"] {
        let link = bin.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(&fake, &link).unwrap();
        }
    }
    bin
}

/// A turn as the recorded fixtures were made: the prompt, the model, bypassed permissions and
/// medium effort.
pub fn turn_spec(prompt: &str, model: &str) -> ductor::provider::TurnSpec {
    ductor::provider::TurnSpec {
        prompt: prompt.into(),
        model: model.into(),
        permission_mode: "bypassPermissions".into(),
        reasoning_effort: "medium".into(),
        ..ductor::provider::TurnSpec::default()
    }
}

/// A fixture directory for the fake CLI whose `claude/<name>` answers with `events` (stream
/// lines between the recorded init line and a result line carrying `result`).
pub fn custom_fixture(root: &Utf8Path, name: &str, events: &[Value], result: &str) -> Utf8PathBuf {
    custom_fixture_from(root, "text", name, events, result)
}

/// The same with the argv shape and the init line of the recorded fixture `recorded` (`resume`
/// for turns that resume a session).
pub fn custom_fixture_from(root: &Utf8Path, recorded: &str, name: &str, events: &[Value], result: &str) -> Utf8PathBuf {
    let shared = Utf8PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers"));
    let dir = root.join("fixtures");
    std::fs::create_dir_all(dir.join("claude")).unwrap();
    let mut meta: Value =
        serde_json::from_str(&std::fs::read_to_string(shared.join(format!("claude/{recorded}.meta.json"))).unwrap())
            .unwrap();
    meta["fixture"] = json!(name);
    meta["stdout_file"] = json!(format!("{name}.jsonl"));
    std::fs::write(dir.join(format!("claude/{name}.meta.json")), meta.to_string()).unwrap();
    let recorded = std::fs::read_to_string(shared.join(format!("claude/{recorded}.jsonl"))).unwrap();
    let mut lines: Vec<String> = recorded.lines().map(str::to_owned).collect();
    let mut last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    last["result"] = json!(result);
    let mut out = vec![lines.remove(0)];
    out.extend(events.iter().map(Value::to_string));
    out.push(last.to_string());
    std::fs::write(dir.join(format!("claude/{name}.jsonl")), out.join("\n") + "\n").unwrap();
    std::fs::write(dir.join(format!("claude/{name}.stderr.txt")), "").unwrap();
    dir
}

/// A fixture directory for the fake CLI whose `<cli>/<name>` is that CLI's recorded cron run
/// (same argv) answering with `stdout` and exiting with `exit_code`.
pub fn oneshot_fixture(root: &Utf8Path, cli: &str, name: &str, stdout: &str, exit_code: i32) -> Utf8PathBuf {
    let shared = Utf8PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers"));
    let dir = root.join("fixtures");
    std::fs::create_dir_all(dir.join(cli)).unwrap();
    let mut meta: Value =
        serde_json::from_str(&std::fs::read_to_string(shared.join(format!("{cli}/cron_oneshot.meta.json"))).unwrap())
            .unwrap();
    meta["fixture"] = json!(name);
    meta["exit_code"] = json!(exit_code);
    meta["stdout_file"] = json!(format!("{name}.out"));
    std::fs::write(dir.join(format!("{cli}/{name}.meta.json")), meta.to_string()).unwrap();
    std::fs::write(dir.join(format!("{cli}/{name}.out")), stdout).unwrap();
    std::fs::write(dir.join(format!("{cli}/{name}.stderr.txt")), "").unwrap();
    dir
}

pub fn assistant_text(text: &str) -> Value {
    json!({"type": "assistant", "message": {"id": "m", "type": "message", "role": "assistant", "model": "claude-opus-5-5",
        "content": [{"type": "text", "text": text}]}, "session_id": "a8c43301-b916-468d-9254-a466e9799860"})
}

pub fn assistant_tool(name: &str) -> Value {
    json!({"type": "assistant", "message": {"id": "m", "type": "message", "role": "assistant", "model": "claude-opus-5-5",
        "content": [{"type": "tool_use", "id": "t", "name": name, "input": {"command": "ls"}}]},
        "session_id": "a8c43301-b916-468d-9254-a466e9799860"})
}

/// The prompts the fake CLIs were started with (`FAKE_CLI_RECORD` = `<root>/record.jsonl`),
/// in order.
pub fn prompts(root: &Utf8Path) -> Vec<String> {
    std::fs::read_to_string(root.join("record.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"] == "start")
        .map(|r| r["argv"].as_array().unwrap().last().unwrap().as_str().unwrap().to_owned())
        .collect()
}

//! One-shot runs (what cron jobs and webhook `cron_task`s execute) with real child processes:
//! the fake CLIs replay the recorded cron runs of the real ones and check the argv shape; the
//! argv, stdin, cwd and environment they were started with are recorded and compared; failures,
//! a missing CLI, timeouts, cancels and refused configs give the status and text the user sees;
//! no process is left behind.

use std::time::{Duration, Instant};

use crate::support::shell_words::shell_words;
use camino::Utf8PathBuf;
use ductor::core::config::Config;
use ductor::core::model_cache::CodexModel;
use ductor::core::resolve::{CONFIG_ERROR_STATUS, Known, ResolveError, TaskOverrides, resolve_execution};
use ductor::provider::oneshot::{
    CRON_LABEL, OneshotCommand, OneshotOutcome, OneshotSettings, WEBHOOK_LABEL, compose_prompt, oneshot_env,
    run_oneshot,
};
use ductor::provider::{Invocation, ProviderKind, TurnSpec};
use ductor::store::pid_lock::is_alive;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers");
/// The instruction of the recorded cron runs.
const RECORDED_PROMPT: &str = "Say hello from cron";

struct Setup {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
    home: Utf8PathBuf,
    bin: Utf8PathBuf,
    task_folder: Utf8PathBuf,
    record: Utf8PathBuf,
}

fn setup() -> Setup {
    let (dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = crate::support::fake_cli::install(&root);
    let task_folder = home.join("workspace/cron_tasks/daily");
    std::fs::create_dir_all(&task_folder).unwrap();
    Setup { _dir: dir, home, bin, task_folder, record: root.join("record.jsonl"), root }
}

impl Setup {
    /// The environment a caller builds: ductor's own (the test's), the fake CLI's switches,
    /// `DUCTOR_HOME` and a `.env` secret.
    fn settings(&self, extra: &[(&str, &str)], timeout: Duration, label: &str) -> OneshotSettings {
        let mut inherited: Vec<(String, String)> =
            std::env::vars().filter(|(k, _)| !k.starts_with("FAKE_CLI")).collect();
        inherited.push(("FAKE_CLI_RECORD".to_owned(), self.record.to_string()));
        inherited.push(("FAKE_CLI_FIXTURE".to_owned(), "cron_oneshot".to_owned()));
        inherited.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let secrets = vec![("DUCTOR_TEST_SECRET".to_owned(), "from-dotenv".to_owned())];
        OneshotSettings {
            task_folder: self.task_folder.clone(),
            env: oneshot_env(inherited, self.home.as_str(), &secrets),
            search_path: self.bin.to_string(),
            timeout,
            label: label.to_owned(),
        }
    }

    fn records(&self, event: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event"] == event)
            .collect()
    }

    async fn wait_for_start(&self) -> Value {
        for _ in 0..250 {
            if let Some(record) = self.records("start").into_iter().next() {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the fake CLI did not start");
    }
}

fn codex_models() -> Vec<CodexModel> {
    vec![CodexModel {
        id: "gpt-5.5".into(),
        display_name: "GPT-5.5".into(),
        description: String::new(),
        supported_efforts: vec!["medium".into(), "high".into()],
        default_effort: "medium".into(),
        is_default: true,
    }]
}

/// The command the cron observer builds for a job without overrides under this config.
fn command_for(provider: &str, model: &str, prompt: &str) -> OneshotCommand {
    let config = Config { provider: provider.into(), model: model.into(), ..Config::default() };
    let models = codex_models();
    let execution =
        resolve_execution(&config, &TaskOverrides::default(), Known { codex: &models, gemini: &[] }).unwrap();
    OneshotCommand::for_execution(&execution, prompt.to_owned()).unwrap()
}

/// What the recorded model said in the fixture (read from the transcript, not retyped).
fn recorded_answer(cli: &str) -> String {
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{cli}/cron_oneshot.meta.json")).unwrap())
            .unwrap();
    let stdout =
        std::fs::read_to_string(format!("{FIXTURES}/{cli}/{}", meta["stdout_file"].as_str().unwrap())).unwrap();
    match cli {
        "claude" => serde_json::from_str::<Value>(&stdout).unwrap()["result"].as_str().unwrap().to_owned(),
        "gemini" => serde_json::from_str::<Value>(&stdout).unwrap()["response"].as_str().unwrap().to_owned(),
        _ => stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|e| e["item"]["type"] == "agent_message")
            .unwrap()["item"]["text"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

fn recorded_argv(cli: &str) -> Vec<String> {
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{cli}/cron_oneshot.meta.json")).unwrap())
            .unwrap();
    shell_words(meta["argv"].as_str().unwrap())
}

/// The argv a fake CLI was started with, its program as the bare name.
fn started_argv(record: &Value) -> Vec<String> {
    let mut argv: Vec<String> =
        record["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    argv[0] = Utf8PathBuf::from(&argv[0]).file_name().unwrap().to_owned();
    argv
}

async fn wait_dead(pid: i32) -> bool {
    for _ in 0..150 {
        if !is_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn pids(record: &Value) -> (i32, i32) {
    (record["pid"].as_i64().unwrap() as i32, record["grandchild"].as_i64().unwrap() as i32)
}

async fn run(command: &OneshotCommand, settings: &OneshotSettings) -> OneshotOutcome {
    run_oneshot(command, settings, std::future::pending()).await
}

async fn recorded_cron_run(cli: &str, model: &str) -> (Setup, OneshotOutcome, Value) {
    let s = setup();
    let command = command_for(cli, model, RECORDED_PROMPT);
    let outcome = run(&command, &s.settings(&[], Duration::from_secs(30), CRON_LABEL)).await;
    let record = s.records("start").into_iter().next().expect("the CLI ran");
    (s, outcome, record)
}

#[tokio::test]
async fn claude_cron_run_has_the_recorded_argv_and_answers() {
    let (s, outcome, record) = recorded_cron_run("claude", "opus").await;
    assert_eq!(outcome.status.to_string(), "success", "{outcome:?}");
    assert_eq!(outcome.text, recorded_answer("claude"));
    assert_eq!(started_argv(&record), recorded_argv("claude"));
    assert_eq!(record["stdin"], "", "stdin closed");
    assert_eq!(record["cwd"], s.task_folder.as_str());
    assert_eq!(record["env"]["DUCTOR_HOME"], s.home.as_str());
    assert_eq!(record["env"]["DUCTOR_TEST_SECRET"], "from-dotenv");
    let usage = outcome.usage.expect("claude reports tokens");
    assert!(usage.total() > 0);
    assert!(outcome.cost_usd.is_some_and(|c| c > 0.0));
    assert!(outcome.elapsed > Duration::ZERO);
}

#[tokio::test]
async fn codex_cron_run_has_the_recorded_argv_and_answers() {
    let (s, outcome, record) = recorded_cron_run("codex", "gpt-5.5").await;
    assert_eq!(outcome.status.to_string(), "success", "{outcome:?}");
    assert_eq!(outcome.text, recorded_answer("codex"));
    assert_eq!(started_argv(&record), recorded_argv("codex"), "medium effort: no -c flag");
    assert_eq!(record["cwd"], s.task_folder.as_str());
    assert!(outcome.usage.is_some_and(|u| u.total() > 0));
    assert!(outcome.stderr.contains("Reading additional input from stdin"), "stderr kept for the log");
}

#[tokio::test]
async fn gemini_cron_run_gets_the_prompt_on_stdin_and_answers() {
    let (s, outcome, record) = recorded_cron_run("gemini", "gemini-2.5-pro").await;
    assert_eq!(outcome.status.to_string(), "success", "{outcome:?}");
    assert_eq!(outcome.text, recorded_answer("gemini"));
    assert_eq!(started_argv(&record), recorded_argv("gemini"));
    assert_eq!(record["stdin"], RECORDED_PROMPT);
    assert_eq!(record["cwd"], s.task_folder.as_str());
    assert!(outcome.usage.is_some_and(|u| u.total() > 0));
}

#[tokio::test]
async fn the_composed_prompt_is_the_last_argument() {
    let s = setup();
    let prompt = compose_prompt("Check the feed.", "daily");
    let command = command_for("claude", "sonnet", &prompt);
    let outcome = run(&command, &s.settings(&[], Duration::from_secs(30), CRON_LABEL)).await;
    assert_eq!(outcome.status.to_string(), "success", "{outcome:?}");
    let record = s.records("start").remove(0);
    assert_eq!(started_argv(&record).last().unwrap(), &prompt);
    assert!(prompt.contains("daily_MEMORY.md"));
}

#[tokio::test]
async fn a_cli_failing_without_output_is_exit_3_with_empty_text() {
    let s = setup();
    let fixtures = crate::support::fake_cli::oneshot_fixture(&s.root, "claude", "fails", "", 3);
    let settings = s.settings(
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "fails")],
        Duration::from_secs(30),
        CRON_LABEL,
    );
    let outcome = run(&command_for("claude", "opus", RECORDED_PROMPT), &settings).await;
    assert_eq!(outcome.status.to_string(), "error:exit_3");
    assert_eq!(outcome.text, "");
}

#[tokio::test]
async fn output_that_is_not_json_becomes_its_first_2000_characters() {
    let s = setup();
    let printed = format!("Traceback: {}\n", "é".repeat(2500));
    for cli in ["claude", "gemini"] {
        let fixtures = crate::support::fake_cli::oneshot_fixture(&s.root, cli, "garbled", &printed, 0);
        let settings = s.settings(
            &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "garbled")],
            Duration::from_secs(30),
            CRON_LABEL,
        );
        let model = if cli == "claude" { "opus" } else { "gemini-2.5-pro" };
        let outcome = run(&command_for(cli, model, RECORDED_PROMPT), &settings).await;
        assert_eq!(outcome.status.to_string(), "success", "{cli}: {outcome:?}");
        assert_eq!(outcome.text, printed.chars().take(2000).collect::<String>(), "{cli}");
    }
}

#[tokio::test]
async fn a_flood_of_output_is_bounded_and_does_not_block_the_cli() {
    let s = setup();
    // 12 MiB on one line: more than is kept, far more than a pipe holds.
    let printed = format!("{}\n", "y".repeat(12 * 1024 * 1024));
    let fixtures = crate::support::fake_cli::oneshot_fixture(&s.root, "claude", "flood", &printed, 0);
    let settings = s.settings(
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "flood")],
        Duration::from_secs(30),
        CRON_LABEL,
    );
    let outcome = run(&command_for("claude", "opus", RECORDED_PROMPT), &settings).await;
    assert_eq!(outcome.status.to_string(), "success", "the CLI could write everything and exit: {:?}", outcome.status);
    assert_eq!(outcome.text, "y".repeat(2000));
}

#[tokio::test]
async fn a_cli_missing_from_the_search_path_is_reported() {
    let s = setup();
    let empty = s.root.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut settings = s.settings(&[], Duration::from_secs(30), CRON_LABEL);
    settings.search_path = empty.to_string();
    let outcome = run(&command_for("claude", "opus", RECORDED_PROMPT), &settings).await;
    assert_eq!(outcome.status.to_string(), "error:cli_not_found_claude");
    assert_eq!(outcome.text, "[claude CLI not found]");
    assert!(s.records("start").is_empty());
}

#[tokio::test]
async fn a_run_past_its_timeout_is_killed_with_its_child() {
    let s = setup();
    let settings =
        s.settings(&[("FAKE_CLI_HOLD_MS", "60000"), ("FAKE_CLI_GRANDCHILD", "1")], Duration::from_secs(1), CRON_LABEL);
    let started = Instant::now();
    let outcome = run(&command_for("codex", "gpt-5.5", RECORDED_PROMPT), &settings).await;
    let took = started.elapsed();
    assert_eq!(outcome.status.to_string(), "error:timeout");
    assert_eq!(outcome.text, "[Cron job timed out after 1s]");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(4), "took {took:?}");
    let (pid, grandchild) = pids(&s.records("start")[0]);
    assert!(wait_dead(pid).await, "the CLI is gone");
    assert!(wait_dead(grandchild).await, "its child is gone too");
    assert!(s.records("exit").is_empty(), "the CLI did not finish on its own");
}

#[tokio::test]
async fn a_cli_ignoring_sigterm_is_killed_2_s_later() {
    let s = setup();
    let extra = [("FAKE_CLI_HOLD_MS", "60000"), ("FAKE_CLI_GRANDCHILD", "1"), ("FAKE_CLI_IGNORE_TERM", "1")];
    let settings = s.settings(&extra, Duration::from_millis(500), WEBHOOK_LABEL);
    let started = Instant::now();
    let outcome = run(&command_for("gemini", "gemini-2.5-pro", RECORDED_PROMPT), &settings).await;
    let took = started.elapsed();
    assert_eq!(outcome.status.to_string(), "error:timeout");
    assert_eq!(outcome.text, "[Webhook cron_task timed out after 0.5s]");
    assert!(
        took >= Duration::from_millis(2400) && took < Duration::from_secs(5),
        "SIGKILL 2 s after SIGTERM: {took:?}"
    );
    let (pid, grandchild) = pids(&s.records("start")[0]);
    assert!(wait_dead(pid).await, "the CLI is gone");
    assert!(wait_dead(grandchild).await, "its child is gone too");
}

#[tokio::test]
async fn a_cancel_kills_the_group() {
    let s = setup();
    let settings =
        s.settings(&[("FAKE_CLI_HOLD_MS", "60000"), ("FAKE_CLI_GRANDCHILD", "1")], Duration::from_secs(60), CRON_LABEL);
    let command = command_for("claude", "opus", RECORDED_PROMPT);
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(async move {
        run_oneshot(&command, &settings, async move {
            let _ = cancelled.await;
        })
        .await
    });
    let record = s.wait_for_start().await;
    let started = Instant::now();
    cancel.send(()).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "stopped in {:?}", started.elapsed());
    assert_eq!(outcome.status.to_string(), "error:cancelled");
    assert_eq!(outcome.text, "[Cron job cancelled]");
    let (pid, grandchild) = pids(&record);
    assert!(wait_dead(pid).await && wait_dead(grandchild).await, "nothing is left");
}

#[tokio::test]
async fn an_aborted_run_leaves_no_process() {
    let s = setup();
    let settings =
        s.settings(&[("FAKE_CLI_HOLD_MS", "60000"), ("FAKE_CLI_GRANDCHILD", "1")], Duration::from_secs(60), CRON_LABEL);
    let command = command_for("claude", "opus", RECORDED_PROMPT);
    let run = tokio::spawn(async move { run_oneshot(&command, &settings, std::future::pending()).await });
    let record = s.wait_for_start().await;
    run.abort();
    let _ = run.await;
    let (pid, grandchild) = pids(&record);
    assert!(wait_dead(pid).await, "the CLI is gone");
    assert!(wait_dead(grandchild).await, "its child is gone too");
}

#[tokio::test]
async fn an_argv_the_cli_refuses_is_its_exit_code() {
    // The fake exits 97 when the argv shape differs from the recording: a cron run with a stray
    // parameter shows how a CLI's own refusal reaches the user.
    let s = setup();
    let spec = TurnSpec {
        prompt: RECORDED_PROMPT.into(),
        model: "opus".into(),
        permission_mode: "bypassPermissions".into(),
        cli_parameters: vec!["--bogus".into()],
        ..TurnSpec::default()
    };
    let command = OneshotCommand::new(ProviderKind::Claude, &spec);
    let outcome = run(&command, &s.settings(&[], Duration::from_secs(30), CRON_LABEL)).await;
    assert_eq!(outcome.status.to_string(), "error:exit_97");
    assert!(outcome.stderr.contains("argv shape differs"), "{}", outcome.stderr);
}

#[tokio::test]
async fn a_folder_that_is_gone_is_a_start_failure() {
    let s = setup();
    let mut settings = s.settings(&[], Duration::from_secs(30), CRON_LABEL);
    settings.task_folder = s.root.join("no-such-folder");
    let outcome = run(&command_for("claude", "opus", RECORDED_PROMPT), &settings).await;
    assert_eq!(outcome.status.to_string(), "error:start_failed");
    assert!(outcome.text.starts_with("[claude CLI could not be started: "), "{}", outcome.text);
}

#[test]
fn refused_configs_are_config_errors_with_a_clear_text() {
    let models = codex_models();
    let known = Known { codex: &models, gemini: &[] };
    let config = Config { provider: "claude".into(), model: "opus".into(), ..Config::default() };
    let cases = [
        (
            TaskOverrides { provider: Some("antigravity"), ..TaskOverrides::default() },
            "Provider 'antigravity' is not supported here (use claude, codex or gemini).",
        ),
        (
            TaskOverrides { model: Some("claude-sonnet-4-5"), ..TaskOverrides::default() },
            "Model 'claude-sonnet-4-5' is not a known claude model.",
        ),
        (
            TaskOverrides { provider: Some("codex"), model: Some("gpt-4o"), ..TaskOverrides::default() },
            "Model 'gpt-4o' is not a known codex model.",
        ),
        (
            TaskOverrides {
                provider: Some("codex"),
                model: Some("gpt-5.5"),
                reasoning_effort: Some("xhigh"),
                ..TaskOverrides::default()
            },
            "gpt-5.5 does not support reasoning effort xhigh; it supports: medium, high.",
        ),
    ];
    for (overrides, text) in cases {
        let err: ResolveError = resolve_execution(&config, &overrides, known).unwrap_err();
        assert_eq!(err.to_string(), text);
    }
    assert_eq!(CONFIG_ERROR_STATUS, "error:config");
}

#[test]
fn a_gemini_command_writes_the_prompt_to_stdin_only() {
    let command = command_for("gemini", "flash", "hello");
    assert_eq!(command.invocation.stdin.as_deref(), Some("hello"));
    assert!(!command.invocation.argv.iter().any(|a| a == "hello"));
    let Invocation { stdin, .. } = command_for("codex", "gpt-5.5", "hello").invocation;
    assert_eq!(stdin, None);
}

//! The process runner with real child processes: the fake CLIs replay recorded transcripts;
//! their argv, stdin, cwd and environment are checked; `/stop`, `/interrupt` and timeouts act on
//! process groups; nothing is left behind.

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use ductor::core::stream_event::StreamEvent;
use ductor::provider::runner::{Control, RunSettings, run_turn};
use ductor::provider::{Invocation, ProviderKind, TurnSpec, TurnTranscript, claude, codex, gemini};
use ductor::store::pid_lock::is_alive;
use serde_json::Value;
use tokio::sync::watch;

struct Setup {
    _dir: tempfile::TempDir,
    bin: Utf8PathBuf,
    workspace: Utf8PathBuf,
    record: Utf8PathBuf,
}

fn setup() -> Setup {
    let (dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = crate::support::fake_cli::install(&root);
    let workspace = home.join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    Setup { _dir: dir, bin, workspace, record: root.join("record.jsonl") }
}

impl Setup {
    fn settings(&self, extra: &[(&str, &str)], timeout: Option<Duration>) -> RunSettings {
        let mut env = vec![
            ("FAKE_CLI_RECORD".to_owned(), self.record.to_string()),
            ("DUCTOR_CHAT_ID".to_owned(), "1001".to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        RunSettings {
            cwd: self.workspace.clone(),
            env,
            timeout,
            extension: None,
            temp_files: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn invocation(&self, mut inv: Invocation) -> Invocation {
        inv.argv[0] = self.bin.join(&inv.argv[0]).to_string();
        inv
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event"] == "start")
            .collect()
    }
}

fn spec(prompt: &str, model: &str) -> TurnSpec {
    TurnSpec {
        append_system_prompt: Some("# MAINMEMORY\nThe user likes short answers. (fake memory for tests)".into()),
        ..crate::support::fake_cli::turn_spec(prompt, model)
    }
}

async fn run(
    setup: &Setup,
    kind: ProviderKind,
    inv: Invocation,
    extra: &[(&str, &str)],
    timeout: Option<Duration>,
    control: watch::Receiver<Control>,
) -> (TurnTranscript, Vec<StreamEvent>) {
    let mut streamed = Vec::new();
    let mut parser = kind.stream_parser();
    let transcript = run_turn(&setup.invocation(inv), parser.as_mut(), &setup.settings(extra, timeout), control, |e| {
        streamed.push(e.clone())
    })
    .await
    .unwrap();
    (transcript, streamed)
}

#[tokio::test]
async fn claude_turn_streams_events_with_the_real_argv_cwd_and_env() {
    let s = setup();
    let (_tx, rx) = watch::channel(Control::Run);
    let inv = claude::turn_invocation(&spec("Say hello", "opus"), true);
    let (t, streamed) = run(&s, ProviderKind::Claude, inv, &[("FAKE_CLI_LINE_DELAY_MS", "20")], None, rx).await;
    assert!(!t.result.is_error, "{:?}", t.result);
    assert!(t.result.result.starts_with("FAKE[text] hello"));
    assert_eq!(t.result.session_id.as_deref(), Some("a8c43301-b916-468d-9254-a466e9799860"));
    assert_eq!(streamed, t.events, "every event was handed out as it came");
    let record = &s.records()[0];
    assert_eq!(record["argv"][1], "--verbose");
    assert_eq!(record["argv"].as_array().unwrap().last().unwrap(), "Say hello");
    assert_eq!(record["cwd"], s.workspace.as_str());
    assert_eq!(record["env"]["DUCTOR_CHAT_ID"], "1001");
}

#[tokio::test]
async fn gemini_gets_the_prompt_on_stdin() {
    let s = setup();
    let (_tx, rx) = watch::channel(Control::Run);
    let (t, _) =
        run(&s, ProviderKind::Gemini, gemini::turn_invocation(&spec("Say hello", "gemini-2.5-pro")), &[], None, rx)
            .await;
    assert!(!t.result.is_error, "{:?}", t.result);
    assert_eq!(s.records()[0]["stdin"], "Say hello");
}

#[tokio::test]
async fn codex_resume_is_accepted_by_the_argv_check() {
    let s = setup();
    let (_tx, rx) = watch::channel(Control::Run);
    let mut sp = spec("And what did I ask you before?", "gpt-5.5");
    sp.append_system_prompt = None;
    sp.resume = Some("01a20c49-9732-7e73-a0c5-62872f496b3c".into());
    let (t, _) = run(&s, ProviderKind::Codex, codex::turn_invocation(&sp), &[], None, rx).await;
    assert!(!t.result.is_error, "{:?}", t.result);
    assert!(t.result.result.starts_with("FAKE[resume]"));
}

#[tokio::test]
async fn a_wrong_argv_is_refused_by_the_fake_cli() {
    let s = setup();
    let (_tx, rx) = watch::channel(Control::Run);
    let inv = Invocation { argv: vec!["claude".into(), "--bogus".into()], stdin: None };
    let (t, _) = run(&s, ProviderKind::Claude, inv, &[], None, rx).await;
    assert!(t.result.is_error);
    assert_eq!(t.result.returncode, Some(97));
    assert!(t.result.result.contains("argv shape differs"), "{}", t.result.result);
}

#[tokio::test]
async fn stop_kills_the_whole_group_within_3_s() {
    let s = setup();
    let (tx, rx) = watch::channel(Control::Run);
    let inv = claude::turn_invocation(&spec("Say hello", "opus"), true);
    let extra = [("FAKE_CLI_HOLD_MS", "60000"), ("FAKE_CLI_GRANDCHILD", "1")];
    let turn = tokio::spawn({
        let inv = s.invocation(inv);
        let settings = s.settings(&extra, None);
        async move {
            let mut parser = ProviderKind::Claude.stream_parser();
            run_turn(&inv, parser.as_mut(), &settings, rx, |_| {}).await.unwrap()
        }
    });
    let record = wait_for_record(&s).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    tx.send(Control::Stop).unwrap();
    let t = tokio::time::timeout(Duration::from_secs(5), turn).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "stopped in {:?}", started.elapsed());
    let pid = record["pid"].as_i64().unwrap() as i32;
    let grandchild = record["grandchild"].as_i64().unwrap() as i32;
    assert!(!is_alive(pid), "the CLI is gone and reaped");
    assert!(wait_dead(grandchild).await, "its child is gone too");
    assert!(t.result.returncode.is_some_and(|c| c < 0), "ended by a signal: {:?}", t.result.returncode);
}

#[tokio::test]
async fn interrupt_signals_the_cli_but_not_its_children() {
    // ductor handles SIGINT itself (graceful shutdown), so the CLIs it starts get SIGINT's
    // default action even when ductor was started with SIGINT ignored (e.g. from `cmd &`).
    // The test process does the same.
    let _sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
    let s = setup();
    let (tx, rx) = watch::channel(Control::Run);
    let inv = s.invocation(claude::turn_invocation(&spec("Say hello", "opus"), true));
    let settings = s.settings(&[("FAKE_CLI_HOLD_MS", "60000"), ("FAKE_CLI_GRANDCHILD", "1")], None);
    let turn = tokio::spawn(async move {
        let mut parser = ProviderKind::Claude.stream_parser();
        run_turn(&inv, parser.as_mut(), &settings, rx, |_| {}).await.unwrap()
    });
    let record = wait_for_record(&s).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Control::Interrupt).unwrap();
    let t = tokio::time::timeout(Duration::from_secs(5), turn).await.unwrap().unwrap();
    assert_eq!(t.result.returncode, Some(-2), "SIGINT ended the CLI");
    let grandchild = record["grandchild"].as_i64().unwrap() as i32;
    assert!(is_alive(grandchild), "SIGINT went to the CLI only");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(grandchild), nix::sys::signal::Signal::SIGKILL);
}

#[tokio::test]
async fn timeout_kills_the_group_and_says_so() {
    let s = setup();
    let (_tx, rx) = watch::channel(Control::Run);
    let inv = claude::turn_invocation(&spec("Say hello", "opus"), true);
    let started = Instant::now();
    let (t, _) =
        run(&s, ProviderKind::Claude, inv, &[("FAKE_CLI_HOLD_MS", "60000")], Some(Duration::from_secs(1)), rx).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(t.result.is_error);
    assert_eq!(t.result.result, "__TIMEOUT__1");
}

#[tokio::test]
async fn a_missing_cli_is_a_clear_error() {
    let s = setup();
    let settings = s.settings(&[], None);
    let inv = Invocation { argv: vec!["/nonexistent/claude".into()], stdin: None };
    let (_tx, rx) = watch::channel(Control::Run);
    let mut parser = ProviderKind::Claude.stream_parser();
    let err = run_turn(&inv, parser.as_mut(), &settings, rx, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("could not start /nonexistent/claude"), "{err}");
}

async fn wait_for_record(s: &Setup) -> Value {
    for _ in 0..200 {
        if let Some(record) = s.records().into_iter().next() {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the fake CLI did not start");
}

async fn wait_dead(pid: i32) -> bool {
    for _ in 0..100 {
        if !is_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn an_active_cli_gets_its_deadline_extended_a_silent_one_times_out() {
    use ductor::provider::runner::Extension;
    let s = setup();
    let mut settings =
        s.settings(&[("FAKE_CLI_FIXTURE", "tool"), ("FAKE_CLI_LINE_DELAY_MS", "1000")], Some(Duration::from_secs(2)));
    settings.extension = Some(Extension { by: Duration::from_secs(2), max: 3 });
    settings.warnings = vec![Duration::from_millis(1500), Duration::from_secs(60)];
    let mut sp = spec("Run echo hi in the shell and tell me what it printed", "opus");
    sp.append_system_prompt = Some("# MAINMEMORY\nThe user likes short answers. (fake memory for tests)".into());
    let inv = s.invocation(claude::turn_invocation(&sp, true));
    let (_tx, rx) = watch::channel(Control::Run);
    let mut parser = ProviderKind::Claude.stream_parser();
    let mut statuses = Vec::new();
    let t = run_turn(&inv, parser.as_mut(), &settings, rx, |event| {
        if let ductor::core::stream_event::StreamEvent::SystemStatus { status } = event {
            statuses.push(status.clone());
        }
    })
    .await
    .unwrap();
    assert!(
        !t.result.is_error,
        "6 lines a second apart finish under a 2 s deadline extended by activity: {:?}",
        t.result
    );
    // Each 2-s window warns 1.5 s before its end (the 60-s interval never falls inside one),
    // and every extension is announced.
    let warnings = statuses.iter().filter(|s| *s == "timeout_warning").count();
    let extended = statuses.iter().filter(|s| *s == "timeout_extended").count();
    assert!(extended >= 1 && (extended..=extended + 1).contains(&warnings), "{statuses:?}");
    assert!(statuses.windows(2).all(|pair| pair[0] != pair[1]), "a warning before each extension: {statuses:?}");

    let mut silent = s.settings(&[("FAKE_CLI_LINE_DELAY_MS", "60000")], Some(Duration::from_secs(2)));
    silent.extension = Some(Extension { by: Duration::from_secs(2), max: 3 });
    let (_tx, rx) = watch::channel(Control::Run);
    let started = Instant::now();
    let mut parser = ProviderKind::Claude.stream_parser();
    let inv = s.invocation(claude::turn_invocation(&spec("Say hello", "opus"), true));
    let t = run_turn(&inv, parser.as_mut(), &silent, rx, |_| {}).await.unwrap();
    assert_eq!(t.result.result, "__TIMEOUT__2", "a CLI that prints nothing gets no extension");
    assert!(started.elapsed() < Duration::from_secs(4), "timed out at ~2 s: {:?}", started.elapsed());
}

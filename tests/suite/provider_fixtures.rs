//! The three CLI parsers and argv builders against the recorded transcripts of the real CLIs
//! (`tests/fixtures/providers/`): the events, the final result and what the user is shown.

use crate::support::shell_words::shell_words;
use ductor::core::stream_event::StreamEvent;
use ductor::core::turn_outcome::{ErrorCause, TurnOutcome, outcome, reply_text};
use ductor::provider::{self, ExitInfo, ProviderKind, TurnSpec, TurnTranscript, claude, codex, gemini};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers");
const MEM: &str = "# MAINMEMORY\nThe user likes short answers. (fake memory for tests)";

struct Fixture {
    stdout: String,
    exit: ExitInfo,
    argv: Vec<String>,
}

fn fixture(cli: &str, name: &str) -> Fixture {
    let base = format!("{FIXTURES}/{cli}/{name}");
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(format!("{base}.meta.json")).unwrap()).unwrap();
    let stdout_file = meta["stdout_file"].as_str().unwrap_or("");
    let stdout = std::fs::read_to_string(format!("{FIXTURES}/{cli}/{stdout_file}")).unwrap_or_default();
    let stderr = std::fs::read_to_string(format!("{base}.stderr.txt")).unwrap_or_default();
    let code = meta["exit_code"].as_i64().map(|c| c as i32);
    Fixture { stdout, exit: ExitInfo { code, stderr }, argv: shell_words(meta["argv"].as_str().unwrap()) }
}

fn run(kind: ProviderKind, cli: &str, name: &str) -> (TurnTranscript, Fixture) {
    let f = fixture(cli, name);
    let mut parser = kind.stream_parser();
    let transcript = provider::fold_transcript(parser.as_mut(), f.stdout.lines(), &f.exit);
    (transcript, f)
}

fn texts(t: &TurnTranscript) -> String {
    t.events
        .iter()
        .filter_map(|e| if let StreamEvent::TextDelta { text } = e { Some(text.as_str()) } else { None })
        .collect()
}

fn tools(t: &TurnTranscript) -> Vec<String> {
    t.events
        .iter()
        .filter_map(|e| if let StreamEvent::ToolUse { name, .. } = e { Some(name.clone()) } else { None })
        .collect()
}

fn init(t: &TurnTranscript) -> Option<String> {
    t.events
        .iter()
        .find_map(|e| if let StreamEvent::SystemInit { session_id } = e { Some(session_id.clone()) } else { None })
}

fn spec(prompt: &str, model: &str) -> TurnSpec {
    crate::support::fake_cli::turn_spec(prompt, model)
}

// ---------------------------------------------------------------- claude

#[test]
fn claude_text() {
    let (t, _) = run(ProviderKind::Claude, "claude", "text");
    assert_eq!(init(&t).as_deref(), Some("a8c43301-b916-468d-9254-a466e9799860"));
    assert!(texts(&t).starts_with("FAKE[text] hello from the fake model"));
    let r = &t.result;
    assert!(!r.is_error);
    assert_eq!(r.session_id.as_deref(), Some("a8c43301-b916-468d-9254-a466e9799860"));
    assert_eq!(r.usage.total(), 132);
    assert!((r.total_cost_usd - 0.00072).abs() < 1e-9);
    assert_eq!(outcome(r), TurnOutcome::Answer(r.result.clone()));
}

#[test]
fn claude_tool() {
    let (t, _) = run(ProviderKind::Claude, "claude", "tool");
    assert_eq!(tools(&t), ["Bash"]);
    let StreamEvent::ToolUse { parameters, .. } =
        t.events.iter().find(|e| matches!(e, StreamEvent::ToolUse { .. })).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(parameters.as_ref().unwrap()["command"], "echo hi");
    assert_eq!(texts(&t), "I will run the command.FAKE[tool] the command ran; its output was: hi");
    assert_eq!(t.result.result, "FAKE[tool] the command ran; its output was: hi");
}

#[test]
fn claude_resume_keeps_the_session() {
    let (t, f) = run(ProviderKind::Claude, "claude", "resume");
    assert_eq!(t.result.session_id.as_deref(), Some("a8c43301-b916-468d-9254-a466e9799860"));
    let mut s = spec("And what did I ask you before?", "opus");
    s.resume = Some("a8c43301-b916-468d-9254-a466e9799860".into());
    assert_eq!(claude::turn_invocation(&s, true).argv, f.argv);
}

#[test]
fn claude_argv_new_session_and_max_turns_and_cron() {
    let f = fixture("claude", "text");
    let mut s = spec("Say hello", "opus");
    s.append_system_prompt = Some(MEM.into());
    let inv = claude::turn_invocation(&s, true);
    assert_eq!(inv.argv, f.argv);
    assert_eq!(inv.stdin, None);

    let f = fixture("claude", "max_turns_exceeded");
    let mut s = spec("Run echo hi in the shell and tell me what it printed", "opus");
    s.max_turns = Some(1);
    assert_eq!(claude::turn_invocation(&s, true).argv, f.argv);

    let f = fixture("claude", "cron_oneshot");
    let mut s = spec("Say hello from cron", "opus");
    s.reasoning_effort = String::new();
    assert_eq!(claude::oneshot_invocation(&s).argv, f.argv, "no effort: no --effort");
}

#[test]
fn claude_errors_401_500_and_max_turns() {
    let (t, _) = run(ProviderKind::Claude, "claude", "error401");
    assert!(t.result.is_error);
    assert_eq!(t.result.api_error_status, Some(401));
    assert_eq!(outcome(&t.result), TurnOutcome::Failed(ErrorCause::Auth), "401 → auth hint");
    assert!(reply_text(&outcome(&t.result), "opus").contains("logged in"));

    let (t, _) = run(ProviderKind::Claude, "claude", "error500");
    assert!(t.result.is_error);
    let TurnOutcome::Failed(ErrorCause::Detail(line)) = outcome(&t.result) else { panic!("{:?}", t.result) };
    assert!(line.starts_with("API Error: 500"), "500 → the error text: {line}");

    let (t, _) = run(ProviderKind::Claude, "claude", "max_turns_exceeded");
    assert!(t.result.is_error);
    assert!(t.result.result.contains("error_max_turns"), "{}", t.result.result);

    let (t, _) = run(ProviderKind::Claude, "claude", "error401_default_retries");
    assert_eq!(outcome(&t.result), TurnOutcome::Failed(ErrorCause::Auth));
    let (t, _) = run(ProviderKind::Claude, "claude", "error500_default_retries");
    assert!(matches!(outcome(&t.result), TurnOutcome::Failed(ErrorCause::Detail(_))));
}

#[test]
fn claude_root_refused_reports_stderr() {
    let (t, _) = run(ProviderKind::Claude, "claude", "root_refused");
    assert!(t.result.is_error);
    assert_eq!(t.result.returncode, Some(1));
    let TurnOutcome::Failed(ErrorCause::Detail(line)) = outcome(&t.result) else { panic!() };
    assert!(line.contains("cannot be used with root/sudo privileges"), "{line}");
}

#[test]
fn claude_cron_oneshot() {
    let f = fixture("claude", "cron_oneshot");
    let r = claude::parse_oneshot(&f.stdout, &f.exit);
    assert!(!r.is_error);
    assert!(r.result.starts_with("FAKE[text] hello"));
    assert_eq!(r.session_id.as_deref(), Some("818b9eee-5bab-40f8-ba8e-08e77f10bbaa"));
    let r = claude::parse_oneshot("", &ExitInfo { code: Some(1), stderr: "boom".into() });
    assert_eq!((r.is_error, r.result.as_str(), r.returncode), (true, "boom", Some(1)));
    let r = claude::parse_oneshot("not json", &ExitInfo { code: Some(0), stderr: String::new() });
    assert_eq!((r.is_error, r.result.as_str()), (true, "not json"));
}

// ---------------------------------------------------------------- codex

#[test]
fn codex_text_and_argv() {
    let (t, f) = run(ProviderKind::Codex, "codex", "text");
    assert_eq!(init(&t).as_deref(), Some("01a20c49-9732-7e73-a0c5-62872f496b3c"));
    assert!(!t.result.is_error);
    assert_eq!(t.result.session_id.as_deref(), Some("01a20c49-9732-7e73-a0c5-62872f496b3c"));
    assert!(t.result.result.starts_with("FAKE[text] hello"));
    assert_eq!(t.result.usage.total(), 132, "usage of turn.completed is kept");
    let mut s = spec("Say hello", "gpt-5.5");
    s.append_system_prompt = Some(MEM.into());
    assert_eq!(codex::turn_invocation(&s).argv, f.argv);
}

#[test]
fn codex_tool() {
    let (t, _) = run(ProviderKind::Codex, "codex", "tool");
    assert_eq!(tools(&t), ["Bash"]);
    assert!(!t.result.is_error);
    assert!(t.result.result.contains("hi"));
}

#[test]
fn codex_resume_re_asserts_model_and_effort() {
    let (t, f) = run(ProviderKind::Codex, "codex", "resume");
    assert_eq!(t.result.session_id.as_deref(), Some("01a20c49-9732-7e73-a0c5-62872f496b3c"));
    let mut s = spec("And what did I ask you before?", "gpt-5.5");
    s.resume = Some("01a20c49-9732-7e73-a0c5-62872f496b3c".into());
    let argv = codex::turn_invocation(&s).argv;
    let dash = argv.iter().position(|a| a == "--").unwrap();
    let mut expected = f.argv.clone();
    let fixture_dash = expected.iter().position(|a| a == "--").unwrap();
    expected.splice(
        fixture_dash..fixture_dash,
        ["--model", "gpt-5.5", "-c", "model_reasoning_effort=medium"].map(String::from),
    );
    assert_eq!(argv, expected, "0.18.2's resume argv plus the model and effort (a documented fix)");
    assert_eq!(&argv[dash + 1..], &f.argv[f.argv.len() - 2..], "thread id and prompt last");
}

#[test]
fn codex_warnings_do_not_fail_the_turn() {
    for name in ["text_unknown_model", "resume_model_mismatch"] {
        let (t, _) = run(ProviderKind::Codex, "codex", name);
        assert!(!t.result.is_error, "{name}");
        assert!(t.result.result.starts_with("FAKE["), "{name}: {}", t.result.result);
    }
}

#[test]
fn codex_errors() {
    let (t, _) = run(ProviderKind::Codex, "codex", "error401");
    assert!(t.result.is_error);
    assert_eq!(t.result.returncode, Some(1));
    assert!(t.result.result.starts_with("unexpected status 401"), "{}", t.result.result);
    assert_eq!(outcome(&t.result), TurnOutcome::Failed(ErrorCause::Auth));
    let (t, _) = run(ProviderKind::Codex, "codex", "error500");
    assert!(t.result.is_error);
    assert_eq!(
        outcome(&t.result),
        TurnOutcome::Failed(ErrorCause::Detail(
            "We’re currently experiencing high demand, which may cause temporary errors.".into()
        ))
    );
}

#[test]
fn codex_cron_oneshot() {
    let f = fixture("codex", "cron_oneshot");
    assert_eq!(codex::oneshot_invocation(&spec("Say hello from cron", "gpt-5.5")).argv, f.argv);
    let r = codex::parse_oneshot(&f.stdout, &f.exit);
    assert!(!r.is_error);
    assert!(r.result.starts_with("FAKE[text] hello"));
}

#[test]
fn codex_turn_failed_quota_is_the_reply() {
    let mut parser = ProviderKind::Codex.stream_parser();
    let exit = ExitInfo { code: Some(1), stderr: "Reading additional input from stdin...".into() };
    let t =
        provider::fold_transcript(parser.as_mut(), [r#"{"type":"turn.failed","error":{"message":"quota"}}"#], &exit);
    assert_eq!(t.result.result, "quota");
    let t = provider::fold_transcript(ProviderKind::Codex.stream_parser().as_mut(), [], &exit);
    assert_eq!(t.result.result, "(no output)", "the stdin notice is not an error detail");
}

// ---------------------------------------------------------------- gemini

#[test]
fn gemini_text_and_argv() {
    let (t, f) = run(ProviderKind::Gemini, "gemini", "text");
    assert_eq!(init(&t).as_deref(), Some("68d60459-109a-4546-9b18-956a1eaf3cf1"));
    assert_eq!(texts(&t), "FAKE[text] hello from the fake model (user turns seen: 1). You said: Say hello");
    assert!(!t.result.is_error);
    assert_eq!(t.result.result, texts(&t), "the deltas are the answer");
    assert_eq!(t.result.session_id.as_deref(), Some("68d60459-109a-4546-9b18-956a1eaf3cf1"));
    assert_eq!(t.result.usage.total(), 132);
    let inv = gemini::turn_invocation(&spec("Say hello", "gemini-2.5-pro"));
    assert_eq!(inv.argv, f.argv);
    assert_eq!(inv.stdin.as_deref(), Some("Say hello"), "prompt on stdin");
}

#[test]
fn gemini_tool_and_resume() {
    let (t, _) = run(ProviderKind::Gemini, "gemini", "tool");
    assert_eq!(tools(&t), ["run_shell_command"]);
    assert!(t.events.iter().any(
        |e| matches!(e, StreamEvent::ToolResult { status, output, .. } if status == "success" && output.contains("hi"))
    ));
    let (t, f) = run(ProviderKind::Gemini, "gemini", "resume");
    assert_eq!(t.result.session_id.as_deref(), Some("68d60459-109a-4546-9b18-956a1eaf3cf1"));
    let mut s = spec("And what did I ask you before?", "gemini-2.5-pro");
    s.resume = Some("68d60459-109a-4546-9b18-956a1eaf3cf1".into());
    assert_eq!(gemini::turn_invocation(&s).argv, f.argv);
}

#[test]
fn gemini_errors() {
    let (t, _) = run(ProviderKind::Gemini, "gemini", "error401");
    assert!(t.result.is_error);
    assert_eq!(outcome(&t.result), TurnOutcome::Failed(ErrorCause::Auth));
    let (t, _) = run(ProviderKind::Gemini, "gemini", "error500");
    let TurnOutcome::Failed(ErrorCause::Detail(line)) = outcome(&t.result) else { panic!("{:?}", t.result) };
    assert!(line.contains("500") && line.contains("Internal error"), "{line}");
}

#[test]
fn gemini_without_output_reports_stderr() {
    let (t, _) = run(ProviderKind::Gemini, "gemini", "untrusted_folder");
    let TurnOutcome::Failed(ErrorCause::Detail(line)) = outcome(&t.result) else { panic!("{:?}", t.result) };
    assert!(line.starts_with("Gemini CLI is not running in a trusted directory"), "{line}");
    let (t, _) = run(ProviderKind::Gemini, "gemini", "auth_gateway_invalid");
    assert_eq!(t.result.returncode, Some(41));
    assert_eq!(outcome(&t.result), TurnOutcome::Failed(ErrorCause::Detail("Invalid auth method selected.".into())));
}

#[test]
fn gemini_cron_oneshot() {
    let f = fixture("gemini", "cron_oneshot");
    let inv = gemini::oneshot_invocation(&spec("Say hello from cron", "gemini-2.5-pro"));
    assert_eq!(inv.argv, f.argv);
    assert_eq!(inv.stdin.as_deref(), Some("Say hello from cron"));
    let r = gemini::parse_oneshot(&f.stdout, &f.exit);
    assert!(!r.is_error);
    assert!(r.result.starts_with("FAKE[text] hello"), "{}", r.result);
}

#[test]
fn gemini_stream_without_result_uses_the_text() {
    let lines = [
        r#"{"type":"init","session_id":"s1"}"#,
        r#"{"type":"message","role":"assistant","content":"Hel","delta":true}"#,
        r#"{"type":"message","role":"assistant","content":"lo","delta":true}"#,
    ];
    let t = provider::fold_transcript(
        ProviderKind::Gemini.stream_parser().as_mut(),
        lines,
        &ExitInfo { code: Some(0), stderr: String::new() },
    );
    assert!(!t.result.is_error);
    assert_eq!((t.result.result.as_str(), t.result.session_id.as_deref()), ("Hello", Some("s1")));
}

// ---------------------------------------------------------------- robustness

proptest::proptest! {
    #[test]
    fn parsers_never_panic_on_garbage(lines in proptest::collection::vec(".{0,200}", 0..20), code in proptest::option::of(-1i32..256)) {
        for kind in [ProviderKind::Claude, ProviderKind::Codex, ProviderKind::Gemini] {
            let exit = ExitInfo { code, stderr: "x".into() };
            let t = provider::fold_transcript(kind.stream_parser().as_mut(), lines.iter().map(String::as_str), &exit);
            let _ = reply_text(&outcome(&t.result), "m");
        }
    }

    #[test]
    fn parsers_never_panic_on_truncated_fixture_lines(cut in 0usize..400) {
        for (kind, cli) in [(ProviderKind::Claude, "claude"), (ProviderKind::Codex, "codex"), (ProviderKind::Gemini, "gemini")] {
            let f = fixture(cli, "tool");
            let truncated: Vec<String> = f.stdout.lines().map(|l| l.chars().take(cut).collect()).collect();
            let _ = provider::fold_transcript(kind.stream_parser().as_mut(), truncated.iter().map(String::as_str), &f.exit);
        }
    }
}

#[test]
fn a_huge_line_is_handled() {
    let huge = format!(
        r#"{{"type":"assistant","message":{{"content":[{{"type":"text","text":"{}"}}]}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let t = provider::fold_transcript(
        ProviderKind::Claude.stream_parser().as_mut(),
        [huge.as_str()],
        &ExitInfo { code: Some(0), stderr: String::new() },
    );
    assert_eq!(t.result.result.len(), 5 * 1024 * 1024);
    let garbage = "{".repeat(1024 * 1024);
    let _ = provider::fold_transcript(
        ProviderKind::Codex.stream_parser().as_mut(),
        [garbage.as_str()],
        &ExitInfo::default(),
    );
}

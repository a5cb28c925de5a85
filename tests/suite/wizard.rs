//! The setup wizard in a real terminal (a pty, driven with rexpect) against the fake Bot API and
//! a fake logged-in `claude`: token → pairing code → the person sends it → config written →
//! the bot answers that person and nobody else. Without a logged-in CLI it writes nothing; Ctrl-C
//! at any step writes nothing.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use rexpect::session::PtySession;
use serde_json::{Value, json};

use crate::support::binary::{ductor, free_port};
use crate::support::fake_bot_api::FakeBotApi;

/// A token of the shape Telegram gives out.
const TOKEN: &str = "12345678:AAEfakeTokenForTheWizardTest_0123456789";
const PERSON: i64 = 7;
const STRANGER: i64 = 99;

struct Setup {
    _dir: tempfile::TempDir,
    home: Utf8PathBuf,
    root: Utf8PathBuf,
    first_config: String,
}

/// A home holding only its internal API port (not configured), a user home with or without a
/// logged-in claude.
fn setup(logged_in: bool) -> Setup {
    let (dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    if logged_in {
        std::fs::create_dir_all(root.join(".claude")).unwrap();
        std::fs::write(root.join(".claude/.credentials.json"), "{}").unwrap();
    }
    std::fs::create_dir_all(home.join("config")).unwrap();
    let first_config = json!({"interagent_port": free_port()}).to_string();
    std::fs::write(home.join("config/config.json"), &first_config).unwrap();
    Setup { _dir: dir, home, root, first_config }
}

fn spawn(setup: &Setup, api: &FakeBotApi, with_clis: bool) -> PtySession {
    spawn_args(setup, api, with_clis, &[])
}

fn spawn_with(setup: &Setup, api: &FakeBotApi, args: &[&str]) -> PtySession {
    spawn_args(setup, api, true, args)
}

fn spawn_args(setup: &Setup, api: &FakeBotApi, with_clis: bool, args: &[&str]) -> PtySession {
    let mut cmd = ductor(&setup.home);
    cmd.args(args);
    let path = if with_clis {
        let bin = crate::support::fake_cli::install(&setup.root);
        format!("{bin}:/usr/bin:/bin")
    } else {
        "/usr/bin:/bin".to_owned()
    };
    cmd.env("PATH", path)
        .env("DUCTOR_TELEGRAM_API_BASE", api.base_url())
        .env("FAKE_CLI_RECORD", setup.root.join("record.jsonl").as_str())
        .env("TZ", "Europe/Berlin")
        .env("TERM", "xterm")
        // The pty is stdin, stdout and stderr.
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit());
    for key in ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "CODEX_HOME"] {
        cmd.env_remove(key);
    }
    rexpect::session::spawn_command(cmd, Some(30_000)).unwrap()
}

fn service_offered() -> bool {
    ["/usr/bin/systemctl", "/bin/systemctl"].iter().any(|p| Utf8Path::new(p).exists())
}

fn config(home: &Utf8Path) -> String {
    std::fs::read_to_string(home.join("config/config.json")).unwrap_or_default()
}

/// Types `keys` (the session's writer is line-buffered: flushed at once).
fn send(p: &mut PtySession, keys: &str) {
    p.send(keys).unwrap();
    p.flush().unwrap();
}

/// Waits for a yes/no `prompt` to start reading keys (it hides the cursor first).
fn at_prompt(p: &mut PtySession, prompt: &str) {
    p.exp_string(prompt).unwrap();
    p.exp_string("\u{1b}[?25l").unwrap();
}

/// Waits for a selection `prompt` to show its last item.
fn at_select(p: &mut PtySession, prompt: &str, last_item: &str) {
    p.exp_string(prompt).unwrap();
    p.exp_string(last_item).unwrap();
}

/// Runs the wizard's steps up to (not including) step `stop_before` (0 = risk, 1 = transport,
/// 2 = token, 3 = pairing wait, 4 = time zone, 5 = service offer, 6 = all done); returns the
/// session and the pairing code when it was shown.
fn drive(p: &mut PtySession, api: &FakeBotApi, stop_before: usize) -> Option<String> {
    p.exp_string("claude  logged in").unwrap();
    at_prompt(p, "I understand the risk");
    if stop_before == 0 {
        return None;
    }
    send(p, "y");
    at_select(p, "Transport", "Matrix");
    if stop_before == 1 {
        return None;
    }
    send(p, "\r");
    p.exp_string("Bot token from @BotFather").unwrap();
    if stop_before == 2 {
        return None;
    }
    send(p, &format!("{TOKEN}\r"));
    p.exp_string("Token OK: this is @DuctorTestBot").unwrap();
    at_select(p, "Who may talk to the bot?", "I type a numeric");
    send(p, "\r");
    p.exp_string("in a private chat:").unwrap();
    let (_, code) = p.exp_regex(r"[0-9]{6}").unwrap();
    p.exp_string("valid for 10 minutes").unwrap();
    if stop_before == 3 {
        return Some(code);
    }
    // Someone else writes first: ignored and not answered.
    api.send_text(STRANGER, STRANGER as u64, "hello bot");
    api.send_text(PERSON, PERSON as u64, &code);
    p.exp_string("Paired with").unwrap();
    at_prompt(p, "Time zone: Europe/Berlin. Keep it?");
    if stop_before == 4 {
        return Some(code);
    }
    send(p, "y");
    if service_offered() {
        at_prompt(p, "Install ductor as a");
        if stop_before == 5 {
            return Some(code);
        }
        send(p, "n");
    }
    Some(code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pairing_writes_the_config_and_the_bot_answers_only_that_person() {
    let api = FakeBotApi::start(TOKEN).await.unwrap();
    let setup = setup(true);
    let mut p = spawn(&setup, &api, true);
    let code = tokio::task::block_in_place(|| {
        let code = drive(&mut p, &api, 6).unwrap();
        p.exp_string("Starting ductor now").unwrap();
        code
    });
    let written: Value = serde_json::from_str(&config(&setup.home)).unwrap();
    assert_eq!(written["allowed_user_ids"], json!([PERSON]));
    assert_eq!(written["user_timezone"], "Europe/Berlin");
    assert_eq!(written["telegram_token"], TOKEN);
    assert_eq!(written["docker"]["enabled"], false);
    // The bot starts and polls; the used code from a stranger gets nothing, the person an answer.
    assert!(
        api.wait_until(Duration::from_secs(30), |calls| calls
            .iter()
            .any(|c| c.method == "getUpdates" && c.params["timeout"] == json!(10) && c.params.get("offset").is_some()))
            .await
    );
    api.send_text(STRANGER, STRANGER as u64, &code);
    api.send_text(PERSON, PERSON as u64, "Say hello");
    let answered = api
        .wait_until(Duration::from_secs(30), |_| {
            api.bot_messages(PERSON).iter().any(|m| m.visible.starts_with("FAKE["))
        })
        .await;
    let seen: Vec<String> = api.bot_messages(PERSON).iter().map(|m| m.visible.clone()).collect();
    assert!(answered, "the paired person gets an answer: {seen:?}");
    assert!(api.bot_messages(STRANGER).is_empty(), "the stranger gets nothing");
    let pid = ductor::store::pid_lock::read_pid(&setup.home.join("bot.pid")).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM).unwrap();
    tokio::task::block_in_place(|| p.exp_eof()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_logged_in_cli_it_stops_after_detection_and_writes_nothing() {
    let api = FakeBotApi::start(TOKEN).await.unwrap();
    let setup = setup(false);
    let mut p = spawn(&setup, &api, false);
    tokio::task::block_in_place(|| {
        p.exp_string("No CLI is logged in").unwrap();
        p.exp_string("Nothing was written").unwrap();
        p.exp_eof().unwrap();
    });
    assert_eq!(config(&setup.home), setup.first_config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_every_step_writes_nothing() {
    let api = FakeBotApi::start(TOKEN).await.unwrap();
    let steps = if service_offered() { 6 } else { 5 };
    for step in 0..steps {
        let setup = setup(true);
        let mut p = spawn(&setup, &api, true);
        tokio::task::block_in_place(|| {
            drive(&mut p, &api, step);
            p.send_control('c').unwrap();
            p.exp_eof().unwrap();
        });
        assert_eq!(config(&setup.home), setup.first_config, "Ctrl-C at step {step}");
        assert!(!setup.home.join("bot.pid").exists(), "Ctrl-C at step {step}: nothing started");
    }
}

#[test]
fn onboarding_flags_write_the_config_without_asking() {
    let (_dir, home) = crate::support::temp_home();
    let run = |args: &[&str]| crate::support::binary::run(&home, args);
    let (status, _, err) =
        run(&["onboarding", "--telegram-token", "123:short", "--allowed-user", "42", "--no-service"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--telegram-token"), "{err}");
    assert!(!home.join("config/config.json").exists(), "a bad token writes nothing");
    let (status, out, err) = run(&[
        "onboarding",
        "--telegram-token",
        TOKEN,
        "--allowed-user",
        "42",
        "--timezone",
        "America/Chicago",
        "--no-service",
    ]);
    assert!(status.success(), "{out}{err}");
    let written: Value = serde_json::from_str(&config(&home)).unwrap();
    assert_eq!(written["telegram_token"], TOKEN);
    assert_eq!(written["allowed_user_ids"], json!([42]));
    assert_eq!(written["user_timezone"], "America/Chicago");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("config/config.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token is readable by its owner only");
    let (status, out, _) = run(&["status"]);
    assert!(status.success() && out.contains("Not running"), "configured now: {out}");
}

#[test]
fn onboarding_without_a_terminal_or_flags_says_how_and_exits_78() {
    let (_dir, home) = crate::support::temp_home();
    let (status, _, err) = crate::support::binary::run(&home, &["onboarding"]);
    assert_eq!(status.code(), Some(78), "{err}");
    assert!(err.contains("--telegram-token <TOKEN> --allowed-user <ID>"), "{err}");
    assert!(!home.join("config/config.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_on_a_configured_home_asks_first_and_no_keeps_everything() {
    let api = FakeBotApi::start(TOKEN).await.unwrap();
    let mut setup = setup(true);
    let configured = json!({"telegram_token": TOKEN, "allowed_user_ids": [PERSON], "model": "sonnet"}).to_string();
    std::fs::write(setup.home.join("config/config.json"), &configured).unwrap();
    setup.first_config = configured;
    let mut cmd_setup = spawn_with(&setup, &api, &["onboarding"]);
    tokio::task::block_in_place(|| {
        at_prompt(&mut cmd_setup, "Set it up again?");
        send(&mut cmd_setup, "n");
        cmd_setup.exp_string("Nothing changed.").unwrap();
        cmd_setup.exp_eof().unwrap();
    });
    assert_eq!(config(&setup.home), setup.first_config);
}

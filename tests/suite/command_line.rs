//! The command line behaves: a closed output pipe ends ductor quietly, every command and group
//! has `--help`, shell completions, the not-configured message without a terminal (exit 78), and
//! `ductor status` telling "not configured", "Not running" and "running, Telegram …" apart.

use std::process::Stdio;
use std::time::Duration;

use crate::support::binary::{Service, ductor, eventually, free_port, run, write_config};

/// Runs `ductor args` with stdout a pipe whose reading end is already closed (what `| head -1`
/// leaves once head exited); returns (exit code, stderr).
fn into_closed_pipe(home: &camino::Utf8Path, args: &[&str]) -> (Option<i32>, String) {
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let out = ductor(home).args(args).stdout(Stdio::from(write_end)).stderr(Stdio::piped()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn help_and_status_into_a_closed_pipe_exit_0_without_panic_text() {
    let (_dir, home) = crate::support::temp_home();
    for args in [&["--help"][..], &["status"], &["completions", "zsh"], &["service", "--help"]] {
        let (code, err) = into_closed_pipe(&home, args);
        assert_eq!(code, Some(0), "ductor {args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "ductor {args:?}: {err}");
    }
}

#[test]
fn every_command_and_group_has_its_help_with_the_exit_codes() {
    let (_dir, home) = crate::support::temp_home();
    for (args, usage) in [
        (&["status", "--help"][..], "Usage: ductor status"),
        (&["stop", "-h"], "Usage: ductor stop"),
        (&["service", "--help"], "Usage: ductor service"),
        (&["service", "install", "--help"], "Usage: ductor service install"),
        (&["onboarding", "--help"], "--telegram-token"),
        (&["completions", "--help"], "Usage: ductor completions"),
    ] {
        let (status, out, err) = run(&home, args);
        assert!(status.success(), "{args:?}: {err}");
        assert!(out.contains(usage), "{args:?}: {out}");
        assert!(out.contains("78  not configured"), "{args:?}: {out}");
    }
    let (_, out, _) = run(&home, &["--help"]);
    assert!(out.contains("ductor service") && out.contains("42  the service asked to be restarted"), "{out}");
    assert!(!home.join("config/config.json").exists(), "help writes nothing");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let (_dir, home) = crate::support::temp_home();
    for shell in ["bash", "zsh", "fish"] {
        let (status, out, err) = run(&home, &["completions", shell]);
        assert!(status.success(), "{shell}: {err}");
        assert!(out.contains("onboarding") && out.contains("uninstall"), "{shell}: {out}");
    }
    let (status, _, err) = run(&home, &["completions", "tcsh"]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("bash|zsh|fish"), "{err}");
}

#[test]
fn without_a_terminal_or_config_exit_78_naming_file_keys_and_sample() {
    let (_dir, home) = crate::support::temp_home();
    let (status, out, err) = run(&home, &[]);
    assert_eq!(status.code(), Some(78), "{out}{err}");
    assert!(err.contains(home.join("config/config.json").as_str()), "{err}");
    assert!(err.contains("\"telegram_token\"") && err.contains("\"allowed_user_ids\""), "{err}");
    assert!(err.contains("config-samples/config.json"), "{err}");
    assert!(!err.contains("Run `ductor`"), "never the circular advice: {err}");
    assert!(!home.join("config/config.json").exists());
    let (status, out, _) = run(&home, &["status"]);
    assert!(status.success());
    assert!(out.contains("not configured"), "{out}");
}

#[test]
fn status_says_not_running_then_running_with_telegram_unreachable() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let (status, out, _) = run(&home, &["status"]);
    assert!(status.success());
    assert!(out.contains("Not running"), "{out}");
    // The Bot API of the test environment is a closed port: Telegram cannot be reached.
    let mut service = Service::start(&home, port, &[]);
    let mut last = String::new();
    let seen = eventually(Duration::from_secs(20), || {
        last = run(&home, &["status"]).1;
        last.contains("Running  pid=") && last.contains("running, Telegram ")
    });
    assert!(seen, "{last}");
    service.signal(nix::sys::signal::Signal::SIGTERM);
    service.wait_exit(Duration::from_secs(10));
}

//! The real `ductor` binary as a user runs it: start, status with the live actor tree, PID lock,
//! SIGTERM, exit code 42, durable envelopes across SIGKILL, bad config and corrupt state.

use std::time::Duration;

use crate::support::binary::{Service, eventually, free_port, get, request, run, write_config};
use nix::sys::signal::Signal;

#[test]
fn status_shows_the_live_actor_tree_and_json_parses() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let mut service = Service::start(&home, port, &[]);
    // The internal API answers before the agent finished starting its children.
    eventually(Duration::from_secs(10), || run(&home, &["status"]).1.contains("main (agent)  running"));

    let (status, out, _) = run(&home, &["status"]);
    assert!(status.success());
    assert!(out.contains(&format!("Running  pid={}", service.pid())), "{out}");
    assert!(out.contains("Provider:  claude (opus)"), "{out}");
    for (label, path) in [
        ("Home:      ", home.to_string()),
        ("Config:    ", format!("{home}/config/config.json")),
        ("Workspace: ", format!("{home}/workspace")),
        ("Logs:      ", format!("{home}/logs")),
        ("Sessions:  ", format!("{home}/sessions.json")),
    ] {
        assert!(out.contains(&format!("{label}{path}\n")), "missing {label}{path} in:\n{out}");
    }
    for dir in [
        "workspace/memory_system",
        "workspace/cron_tasks",
        "workspace/tools/cron_tools",
        "workspace/output_to_user",
        "workspace/tasks",
        "workspace/skills",
        "config",
        "logs",
    ] {
        assert!(home.join(dir).is_dir(), "{dir} created at start");
    }
    assert!(out.contains("\nActors:\n"), "{out}");
    for line in [
        "root (supervisor)  running",
        "internal_api (transport)  running",
        "main (agent)  running",
        "bus (bus)  running",
        "orchestrator (supervisor)  running",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    let (status, out, _) = run(&home, &["status", "--json"]);
    assert!(status.success());
    let json: serde_json::Value = serde_json::from_str(&out).expect("status --json is JSON");
    assert_eq!(json["running"]["pid"], service.pid());
    let root = &json["actors"];
    assert_eq!(root["name"], "root");
    let main = root["children"].as_array().unwrap().iter().find(|c| c["name"] == "main").expect("main agent");
    assert_eq!(main["kind"], "agent");
    assert!(main["children"].as_array().unwrap().iter().any(|c| c["name"] == "bus" && c["status"] == "running"));

    let (code, body) = get(port, "/interagent/health").unwrap();
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["agents"]["main"]["status"], "running");
    assert_eq!(health["agents"]["main"]["restart_count"], 0);
    assert!(health["agents"]["main"]["last_crash_error"].is_null());
    assert!(health["agents"]["main"]["uptime"].as_str().unwrap().ends_with('s'));

    service.signal(Signal::SIGTERM);
    service.wait_exit(Duration::from_secs(6));
    let (_, out, _) = run(&home, &["status"]);
    assert!(out.contains("Not running"), "{out}");
    assert!(!out.contains("Actors"), "{out}");
}

#[test]
fn status_says_actors_unavailable_when_the_api_does_not_answer() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    // A live process that is not ductor holds the pid file: the API on `port` does not answer.
    let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(home.join("bot.pid"), other.id().to_string()).unwrap();
    let (status, out, _) = run(&home, &["status"]);
    other.kill().unwrap();
    other.wait().unwrap();
    assert!(status.success());
    assert!(out.contains("Actors: unavailable"), "{out}");
}

#[test]
fn second_instance_is_refused_and_sigterm_stops_within_5_s_with_exit_0() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let mut service = Service::start(&home, port, &[]);

    let (status, _, err) = run(&home, &[]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&service.pid().to_string()), "{err}");
    assert_eq!(get(port, "/interagent/health").unwrap().0, 200, "the first instance keeps running");
    assert_eq!(std::fs::read_to_string(home.join("bot.pid")).unwrap(), service.pid().to_string());

    service.signal(Signal::SIGTERM);
    let (status, took) = service.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", service.stderr());
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    assert!(!home.join("bot.pid").exists(), "pid file removed");
}

#[test]
fn sigint_stops_cleanly_too() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let mut service = Service::start(&home, port, &[]);
    service.signal(Signal::SIGINT);
    let (status, took) = service.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    assert!(!home.join("bot.pid").exists());
}

#[test]
fn stale_pid_file_is_taken_over_and_stop_command_stops_the_service() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    std::fs::write(home.join("bot.pid"), "999999999").unwrap();
    let mut service = Service::start(&home, port, &[]);
    assert_eq!(std::fs::read_to_string(home.join("bot.pid")).unwrap(), service.pid().to_string());

    let (status, out, _) = run(&home, &["stop"]);
    assert!(status.success());
    assert!(out.contains(&format!("Stopping bot (pid={})", service.pid())), "{out}");
    assert!(out.contains("Bot stopped."), "{out}");
    let (status, _) = service.wait_exit(Duration::from_secs(6));
    assert_eq!(status.code(), Some(0));
    let (_, out, _) = run(&home, &["stop"]);
    assert!(out.contains("No running bot instance found."), "{out}");
}

#[test]
fn restart_marker_exits_42_under_a_service_manager() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let mut service = Service::start(&home, port, &[("DUCTOR_SUPERVISOR", "1")]);
    std::fs::write(home.join("restart-requested"), "").unwrap();
    let (status, _) = service.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(42), "{}", service.stderr());
    assert!(!home.join("restart-requested").exists(), "marker consumed");
    assert!(!home.join("bot.pid").exists());
}

#[test]
fn foreground_restart_starts_a_fresh_copy() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let mut service = Service::start(&home, port, &[]);
    let first = service.pid();
    std::fs::write(home.join("restart-requested"), "").unwrap();
    let (status, _) = service.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", service.stderr());
    let mut second = None;
    assert!(
        eventually(Duration::from_secs(20), || {
            second = ductor::store::pid_lock::read_pid(&home.join("bot.pid")).filter(|pid| *pid != first);
            second.is_some() && get(port, "/interagent/health").is_some_and(|(code, _)| code == 200)
        }),
        "a fresh ductor took over"
    );
    let (_, out, _) = run(&home, &["stop"]);
    assert!(out.contains(&format!("pid={}", second.unwrap())), "{out}");
}

#[test]
fn envelope_submitted_before_sigkill_is_delivered_after_the_next_start() {
    let (dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let spool = camino::Utf8PathBuf::from_path_buf(dir.path().join("spool.jsonl")).unwrap();
    let hold = format!("{spool}.hold");
    std::fs::write(&hold, "").unwrap();
    let env = [("DUCTOR_SPOOL", spool.as_str())];

    let service = Service::start(&home, port, &env);
    let body = r#"{"origin":"cron","chat_id":1001,"transport":"spool","result_text":"nightly report"}"#;
    let (code, answer) = request(port, "POST", "/interagent/envelopes", Some(body)).unwrap();
    assert_eq!(code, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let id = answer["envelope_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 12);
    service.signal(Signal::SIGKILL);
    drop(service);
    assert!(!spool.exists() || std::fs::read_to_string(&spool).unwrap().is_empty(), "not delivered while held");
    assert!(std::fs::read_to_string(home.join("outbox.jsonl")).unwrap().contains(&id), "durable in the outbox");

    std::fs::remove_file(&hold).unwrap();
    let service = Service::start(&home, port, &env);
    let delivered = |spool: &camino::Utf8Path| {
        std::fs::read_to_string(spool).unwrap_or_default().lines().filter(|l| l.contains(&id)).count()
    };
    assert!(eventually(Duration::from_secs(10), || delivered(&spool) == 1), "{}", service.stderr());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(delivered(&spool), 1, "delivered once only");
    let line = std::fs::read_to_string(&spool).unwrap();
    assert!(line.contains("nightly report"));
    let journal = home.join("outbox.jsonl");
    assert!(
        eventually(Duration::from_secs(5), || std::fs::read_to_string(&journal).unwrap().contains("\"ack\"")),
        "the confirmation is recorded, so it is not delivered again"
    );
}

#[test]
fn garbage_envelope_gets_a_clear_error_and_the_service_keeps_running() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let _service = Service::start(&home, port, &[]);
    let (code, body) = request(port, "POST", "/interagent/envelopes", Some("{not json")).unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("invalid envelope"), "{body}");
    let (code, _) = request(port, "POST", "/interagent/envelopes?agent=nobody", Some("{}")).unwrap();
    assert_eq!(code, 404);
    assert_eq!(declared_body_answer(port, 2 * 1024 * 1024), 413, "oversized body refused before it is read");
    let (code, _) = get(port, "/interagent/nothing-here").unwrap();
    assert_eq!(code, 404);
    assert_eq!(get(port, "/interagent/health").unwrap().0, 200);
}

#[test]
fn invalid_config_json_exits_1_and_leaves_the_file_alone() {
    let (_dir, home) = crate::support::temp_home();
    std::fs::create_dir_all(home.join("config")).unwrap();
    let text = "{\"telegram_token\": \"1:x\", \"allowed_user_ids\": [1],,}";
    std::fs::write(home.join("config/config.json"), text).unwrap();
    let (status, _, err) = run(&home, &[]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("config.json"), "{err}");
    assert_eq!(std::fs::read_to_string(home.join("config/config.json")).unwrap(), text);
}

#[test]
fn wrong_value_type_names_the_key_and_exits_1() {
    let (_dir, home) = crate::support::temp_home();
    std::fs::create_dir_all(home.join("config")).unwrap();
    let text = r#"{"telegram_token": "1:x", "allowed_user_ids": [1], "streaming": true}"#;
    std::fs::write(home.join("config/config.json"), text).unwrap();
    let (status, _, err) = run(&home, &[]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("streaming"), "{err}");
    assert_eq!(std::fs::read_to_string(home.join("config/config.json")).unwrap(), text, "not rewritten");
}

#[test]
fn unconfigured_home_says_what_is_missing() {
    let (_dir, home) = crate::support::temp_home();
    let (status, _, err) = run(&home, &[]);
    assert_eq!(status.code(), Some(78));
    assert!(err.contains("not configured"), "{err}");
    assert!(err.contains("config.json"), "{err}");
    let (status, out, _) = run(&home, &["status"]);
    assert!(status.success());
    assert!(out.contains("not configured"), "{out}");
}

#[test]
fn corrupt_sessions_json_is_moved_aside_and_the_service_runs() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    std::fs::write(home.join("sessions.json"), "{\"tg:1\": {broken").unwrap();
    let _service = Service::start(&home, port, &[]);
    let aside: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.starts_with("sessions.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "moved aside");
    assert_eq!(std::fs::read_to_string(home.join(&aside[0])).unwrap(), "{\"tg:1\": {broken", "bytes kept");
    let log = std::fs::read_to_string(home.join("logs/agent.log")).unwrap();
    assert!(log.lines().any(|l| l.contains("[WARNING]") && l.contains("sessions.json")), "{log}");
    assert_eq!(get(port, "/interagent/health").unwrap().0, 200);
}

#[test]
fn verbose_logs_debug_lines_to_console_and_file() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let mut service = Service::start(&home, port, &[]);
    service.signal(Signal::SIGTERM);
    service.wait_exit(Duration::from_secs(6));
    let quiet = std::fs::read_to_string(home.join("logs/agent.log")).unwrap();
    assert!(!quiet.contains("[DEBUG]"));
    assert!(quiet.contains("[INFO]") && quiet.contains("actor="), "log lines carry the actor: {quiet}");

    let mut cmd = crate::support::binary::ductor(&home);
    let child = cmd.arg("-v").stderr(std::process::Stdio::piped()).spawn().unwrap();
    assert!(eventually(Duration::from_secs(20), || get(port, "/interagent/health").is_some()));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let console = String::from_utf8_lossy(&out.stderr);
    assert!(console.contains("DEBUG"), "{console}");
    let log = std::fs::read_to_string(home.join("logs/agent.log")).unwrap();
    assert!(log.contains("[DEBUG]"), "{log}");
}

#[test]
fn restart_command_stops_and_starts_a_new_instance() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let mut service = Service::start(&home, port, &[]);
    let first = service.pid();
    let (status, out, _) = run(&home, &["restart"]);
    assert!(status.success());
    assert!(out.contains(&format!("Stopping bot (pid={first})")), "{out}");
    assert!(out.contains("Started ductor (pid="), "{out}");
    service.wait_exit(Duration::from_secs(6));
    assert!(eventually(Duration::from_secs(20), || {
        ductor::store::pid_lock::read_pid(&home.join("bot.pid")).is_some_and(|pid| pid != first)
            && get(port, "/interagent/health").is_some_and(|(code, _)| code == 200)
    }));
    let (_, out, _) = run(&home, &["stop"]);
    assert!(out.contains("Bot stopped."), "{out}");
}

#[test]
fn version_and_help() {
    let (_dir, home) = crate::support::temp_home();
    let (status, out, _) = run(&home, &["status", "--version"]);
    assert!(status.success());
    assert_eq!(out.trim(), format!("ductor {}", env!("CARGO_PKG_VERSION")));
    let (status, out, _) = run(&home, &["--help"]);
    assert!(status.success());
    assert!(out.contains("ductor status") && out.contains("ductor stop"), "{out}");
    assert!(out.contains("not configured"), "help ends with the status panel: {out}");
    let (status, _, err) = run(&home, &["upgrade"]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("not available in this build"), "{err}");
}

#[test]
fn a_python_written_home_starts_unchanged() {
    let (_dir, home) = crate::support::temp_home();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python-home-0.18.2/home");
    crate::support::binary::copy_tree(&camino::Utf8PathBuf::from(fixture), &home);
    let config_before = std::fs::read(home.join("config/config.json")).unwrap();
    let sessions_before = std::fs::read(home.join("sessions.json")).unwrap();
    // The fixture's own port; its bot.pid names a process that no longer exists.
    let port = 18555;
    let mut service = Service::start(&home, port, &[]);
    assert_eq!(
        std::fs::read_to_string(home.join("bot.pid")).unwrap(),
        service.pid().to_string(),
        "stale pid taken over"
    );
    let (_, out, _) = run(&home, &["status"]);
    assert!(out.contains("Provider:  codex (codex)"), "{out}");
    assert!(out.contains("Sub-Agents (1)") && out.contains("helper"), "{out}");
    let daily = out.lines().find(|l| l.trim_start().starts_with("daily-report")).unwrap_or_default();
    assert!(daily.contains("active") && daily.contains(" 09:00 CE"), "the job's next fire in Berlin time: {out}");
    assert!(out.lines().any(|l| l.contains("hourly-check") && l.contains("paused")), "{out}");
    assert!(out.contains("cron (observer)"), "the cron observer runs: {out}");
    service.signal(Signal::SIGTERM);
    service.wait_exit(Duration::from_secs(6));
    assert_eq!(std::fs::read(home.join("config/config.json")).unwrap(), config_before, "config not rewritten");
    assert_eq!(std::fs::read(home.join("sessions.json")).unwrap(), sessions_before, "sessions untouched");
    let aside = std::fs::read_dir(&home)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(!aside, "nothing quarantined");
}

#[test]
fn a_taken_internal_api_port_stops_the_start_with_exit_1() {
    let (_dir, home) = crate::support::temp_home();
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    write_config(&home, port);
    let (status, _, err) = run(&home, &[]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("could not bind") && err.contains(&port.to_string()), "{err}");
    assert!(!home.join("bot.pid").exists(), "lock released");
}

/// Sends only the head of a POST declaring a body of `length` bytes; returns the status code.
fn declared_body_answer(port: u16, length: usize) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /interagent/envelopes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {length}\r\n\r\n",
        crate::support::binary::TEST_TOKEN
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[..n]).split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_internal_api_refuses_requests_without_the_token_and_a_home_gets_its_own_token() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    // Without DUCTOR_INTERAGENT_TOKEN the service creates the home's token file (0600).
    let mut service = {
        let mut cmd = crate::support::binary::ductor(&home);
        cmd.env_remove("DUCTOR_INTERAGENT_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = cmd.spawn().unwrap();
        Service { child, port, stderr_path: home.join("unused.log").into_std_path_buf() }
    };
    assert!(eventually(Duration::from_secs(20), || home.join("interagent.token").exists()), "token created");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("interagent.token")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(home.join("interagent.token")).unwrap();
    let ask = |headers: &[(&str, &str)]| {
        crate::support::binary::http(port, "GET", "/interagent/health", headers, b"").map(|(c, _)| c)
    };
    assert!(eventually(Duration::from_secs(20), || ask(&[("X-Ductor-Token", token.trim())]) == Some(200)));
    assert_eq!(ask(&[]), Some(401), "no token");
    assert_eq!(ask(&[("Authorization", "Bearer wrong")]), Some(401), "wrong token");
    assert_eq!(ask(&[("Authorization", &format!("Bearer {}", token.trim()))]), Some(200));
    // `ductor status` reads the token file and draws the tree.
    let status =
        crate::support::binary::ductor(&home).env_remove("DUCTOR_INTERAGENT_TOKEN").arg("status").output().unwrap();
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains("Actors:") && out.contains("main (agent)"), "{out}");
    service.signal(Signal::SIGTERM);
    service.wait_exit(Duration::from_secs(6));
}

#[tokio::test]
async fn the_internal_api_refuses_to_listen_beyond_loopback() {
    use ductor::transport::internal_api::{InternalApi, InternalApiArgs};
    let args = InternalApiArgs {
        addr: std::net::SocketAddr::from(([0, 0, 0, 0], free_port())),
        board: ductor::runtime::health_board::HealthBoard::new(),
        agents: ductor::chat::agent_directory::AgentDirectory::new(),
        token: "t".into(),
        on_state_change: None,
        inter_agent: ductor::tasks::inter_agent::InterAgent::new(ductor::chat::agent_directory::AgentDirectory::new()),
        tasks: ductor::tasks::hub::TaskHubHandle::new(),
    };
    let refused = ractor::Actor::spawn(None, InternalApi, args).await;
    let error = format!("{:?}", refused.expect_err("refused"));
    assert!(error.contains("loopback only"), "{error}");
}

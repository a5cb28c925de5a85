//! Automation end to end with the real `ductor` binary, the fake Bot API server and the fake
//! CLIs: a cron job written while the service runs fires on time and its result reaches the chat
//! once; a crash right after a run's result was recorded delivers it once after the restart
//! without running the CLI again; webhooks authenticate (bearer, HMAC), refuse what they must,
//! wake a chat's session with the hook's own model, run `cron_task`s, and a flood of bad
//! requests leaves the service answering chats.

use std::time::Duration;

use crate::support::binary::http;
use crate::support::telegram_service::{ALICE, BOB, Tg, WAIT, eventually, start};
use camino::Utf8Path;
use chrono::{Timelike, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// A 6-field (seconds-first) schedule that matches once, `ahead` from now (UTC).
fn once_in(ahead: Duration) -> String {
    once_at(Utc::now() + chrono::Duration::from_std(ahead).unwrap())
}

/// A 6-field (seconds-first) schedule that matches the second `at` (UTC).
fn once_at(at: chrono::DateTime<Utc>) -> String {
    use chrono::Datelike;
    format!("{} {} {} {} {} *", at.second(), at.minute(), at.hour(), at.day(), at.month())
}

fn write_job(home: &Utf8Path, id: &str, schedule: &str, chat: i64) {
    std::fs::create_dir_all(home.join("workspace/cron_tasks").join(id)).unwrap();
    let jobs = json!({"jobs": [{
        "id": id, "title": format!("Job {id}"), "description": "", "schedule": schedule, "timezone": "UTC",
        "task_folder": id, "agent_instruction": "Say hello from cron", "enabled": true,
        "created_at": "2026-01-01T00:00:00+00:00", "last_run_at": null, "last_run_status": null,
        "chat_id": chat, "transport": "tg"
    }]});
    // Written as a tool would: a temporary file renamed over the old one.
    let tmp = home.join("cron_jobs.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&jobs).unwrap()).unwrap();
    std::fs::rename(&tmp, home.join("cron_jobs.json")).unwrap();
}

/// CLI starts whose working directory is the task folder `folder`.
fn runs_in(tg: &Tg, folder: &str) -> usize {
    std::fs::read_to_string(tg.root.join("record.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| {
            r["event"] == "start" && r["cwd"].as_str().is_some_and(|c| c.ends_with(&format!("cron_tasks/{folder}")))
        })
        .count()
}

fn bot_texts(tg: &Tg, chat: i64, needle: &str) -> Vec<String> {
    tg.api.bot_messages(chat).into_iter().map(|m| m.visible).filter(|t| t.contains(needle)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_written_while_the_service_runs_fires_on_time_and_reaches_the_chat_once() {
    let tg = start(json!({"provider": "claude"}), &[]).await;
    let schedule = once_in(Duration::from_secs(3));
    write_job(&tg.home, "nightly", &schedule, ALICE);
    let text = tg.bot_says(ALICE, "TASK: Job nightly").await;
    assert!(text.contains("FAKE["), "the CLI's answer: {text}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bot_texts(&tg, ALICE, "TASK: Job nightly").len(), 1, "delivered once");
    assert_eq!(runs_in(&tg, "nightly"), 1, "one CLI run");
    assert!(bot_texts(&tg, BOB, "TASK:").is_empty(), "only the job's chat");
    let jobs: Value = serde_json::from_str(&std::fs::read_to_string(tg.home.join("cron_jobs.json")).unwrap()).unwrap();
    assert_eq!(jobs["jobs"][0]["last_run_status"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_right_after_the_result_was_recorded_delivers_it_once_and_never_runs_the_cli_again() {
    let mut tg = start(json!({"provider": "claude"}), &[("DUCTOR_TEST_CRASH_AFTER_RUN", "1")]).await;
    // Telegram is slow: the crash comes before the result could be sent.
    tg.api.delay("sendMessage", Duration::from_secs(5));
    write_job(&tg.home, "report", &once_in(Duration::from_secs(3)), ALICE);
    let mut crashed = tg.service.take().unwrap();
    let (status, _) = tokio::task::spawn_blocking(move || crashed.wait_exit(Duration::from_secs(30))).await.unwrap();
    assert!(!status.success(), "ductor aborted at the seam");
    assert_eq!(runs_in(&tg, "report"), 1);
    assert!(bot_texts(&tg, ALICE, "TASK:").is_empty(), "nothing was sent before the crash");

    tg.env.retain(|(k, _)| k != "DUCTOR_TEST_CRASH_AFTER_RUN");
    tg.api.delay("sendMessage", Duration::ZERO);
    tg.launch().await;
    let text = tg.bot_says(ALICE, "TASK: Job report").await;
    assert!(text.contains("FAKE["), "the recorded result: {text}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bot_texts(&tg, ALICE, "TASK: Job report").len(), 1, "delivered once");
    assert!(bot_texts(&tg, ALICE, "interrupted").is_empty(), "not reported as cut");
    assert_eq!(runs_in(&tg, "report"), 1, "the CLI did not run again");
}

/// Runs a workspace tool script as a CLI started by ductor would: python3, cwd = workspace,
/// `DUCTOR_BIN` and the chat's `DUCTOR_*` variables set. Returns its JSON answer.
fn workspace_script(tg: &Tg, script: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new("python3")
        .arg(format!("tools/cron_tools/{script}"))
        .args(args)
        .current_dir(tg.home.join("workspace"))
        .env("DUCTOR_HOME", tg.home.as_str())
        .env("HOME", tg.root.as_str())
        .env("DUCTOR_BIN", env!("CARGO_BIN_EXE_ductor"))
        .env("DUCTOR_INTERAGENT_TOKEN", crate::support::binary::TEST_TOKEN)
        .env("DUCTOR_CHAT_ID", ALICE.to_string())
        .env("DUCTOR_TRANSPORT", "tg")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{script}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}

/// When the fake CLI started, in Unix seconds, for runs in `folder`.
fn run_starts(tg: &Tg, folder: &str) -> Vec<f64> {
    std::fs::read_to_string(tg.root.join("record.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| {
            r["event"] == "start" && r["cwd"].as_str().is_some_and(|c| c.ends_with(&format!("cron_tasks/{folder}")))
        })
        .filter_map(|r| r["t_us"].as_f64().map(|t| t / 1e6))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_added_with_the_workspace_script_fires_on_time_and_edit_and_remove_apply_at_once() {
    let tg = start(json!({"provider": "claude"}), &[]).await;
    let first = Utc::now() + chrono::Duration::seconds(4);
    let schedule = once_at(first);
    let added = workspace_script(
        &tg,
        "cron_add.py",
        &["--name", "Ping", "--title", "Ping", "--description", "d", "--schedule", &schedule, "--timezone", "UTC"],
    );
    assert_eq!(added["job_id"], "ping", "{added}");
    assert_eq!(added["via"], "service", "the running service wrote it: {added}");
    let text = tg.bot_says(ALICE, "TASK: Ping").await;
    assert!(text.contains("FAKE["), "{text}");
    let starts = run_starts(&tg, "ping");
    assert_eq!(starts.len(), 1);
    let slot = first.timestamp() as f64;
    assert!(
        starts[0] >= slot && starts[0] < slot + 1.0,
        "started within a second of its slot: {} vs {slot}",
        starts[0]
    );

    // Edit: a new time, taken without a restart.
    let edited = workspace_script(&tg, "cron_edit.py", &["ping", "--schedule", &once_in(Duration::from_secs(3))]);
    assert_eq!(edited["updated"], true, "{edited}");
    assert!(
        tg.api.wait_until(WAIT, |_| bot_texts(&tg, ALICE, "TASK: Ping").len() == 2).await,
        "the edited schedule fires"
    );

    // Remove right before it would fire again: nothing more comes.
    workspace_script(&tg, "cron_edit.py", &["ping", "--schedule", &once_in(Duration::from_secs(3))]);
    let removed = workspace_script(&tg, "cron_remove.py", &["ping"]);
    assert_eq!(removed["json_entry_removed"], true, "{removed}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(bot_texts(&tg, ALICE, "TASK: Ping").len(), 2, "a removed job does not fire");
    assert_eq!(run_starts(&tg, "ping").len(), 2);
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn stripe_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn sha1_base64_signature(secret: &str, body: &[u8]) -> String {
    use base64::Engine;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn hooks() -> Value {
    json!({"hooks": [
        {"id": "mail", "title": "Mail", "description": "", "mode": "wake", "enabled": true,
         "prompt_template": "Mail from {{from}} about {{subject}}", "auth_mode": "bearer", "token": "mail-token",
         "model": "sonnet"},
        {"id": "gh", "title": "GitHub push", "description": "", "mode": "cron_task", "enabled": true,
         "prompt_template": "Push to {{repo}}", "task_folder": "gh-task", "auth_mode": "hmac",
         "hmac_secret": "s3cret", "hmac_header": "X-Hub-Signature-256", "hmac_algorithm": "sha256",
         "hmac_encoding": "hex", "hmac_sig_prefix": "sha256="},
        {"id": "stripe", "title": "Stripe", "description": "", "mode": "cron_task", "enabled": true,
         "prompt_template": "Paid {{amount}}", "task_folder": "gh-task", "auth_mode": "hmac",
         "hmac_secret": "whsec", "hmac_header": "Stripe-Signature", "hmac_algorithm": "sha256",
         "hmac_encoding": "hex", "hmac_sig_prefix": "", "hmac_sig_regex": "(?<=v1=)([0-9a-f]+)",
         "hmac_payload_prefix_regex": "t=(\\d+)"},
        {"id": "legacy", "title": "Legacy", "description": "", "mode": "cron_task", "enabled": true,
         "prompt_template": "Legacy {{n}}", "task_folder": "gh-task", "auth_mode": "hmac",
         "hmac_secret": "old", "hmac_header": "X-Signature", "hmac_algorithm": "sha1",
         "hmac_encoding": "base64", "hmac_sig_prefix": ""},
        {"id": "off", "title": "Off", "description": "", "mode": "wake", "enabled": false,
         "prompt_template": "x", "auth_mode": "bearer", "token": "off-token"}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_authenticate_refuse_wake_a_chat_with_their_model_and_run_tasks() {
    let port = crate::support::binary::free_port();
    let config = json!({"provider": "claude", "webhooks": {
        "enabled": true, "host": "127.0.0.1", "port": port, "token": "global-token",
        "max_body_bytes": 2048, "rate_limit_per_minute": 200
    }});
    let tg = {
        let tg = start(config, &[]).await;
        std::fs::create_dir_all(tg.home.join("workspace/cron_tasks/gh-task")).unwrap();
        std::fs::write(tg.home.join("webhooks.json"), serde_json::to_string_pretty(&hooks()).unwrap()).unwrap();
        tg
    };
    let post = |path: &str, headers: &[(&str, &str)], body: &[u8]| {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        http(port, "POST", path, &all, body).map(|(code, _)| code)
    };
    // The file written after start is picked up within a second (probed with a wrong token:
    // 404 while the hook is unknown, 401 once it exists — the probe itself wakes nobody).
    assert!(
        eventually(|| post("/hooks/mail", &[("Authorization", "Bearer wrong")], b"{}") == Some(401)).await,
        "the hook appears"
    );
    let mail = br#"{"from": "ann", "subject": "invoice"}"#;
    assert_eq!(post("/hooks/mail", &[("Authorization", "Bearer wrong")], mail), Some(401));
    assert_eq!(post("/hooks/mail", &[], mail), Some(401), "missing token");
    assert_eq!(post("/hooks/mail", &[("Authorization", "Bearer global-token")], mail), Some(401), "own token wins");
    assert_eq!(post("/hooks/nope", &[("Authorization", "Bearer global-token")], mail), Some(404));
    assert_eq!(post("/hooks/off", &[("Authorization", "Bearer off-token")], b"{}"), Some(403));
    assert_eq!(
        http(
            port,
            "POST",
            "/hooks/mail",
            &[("Content-Type", "text/plain"), ("Authorization", "Bearer mail-token")],
            mail
        )
        .map(|(c, _)| c),
        Some(415)
    );
    assert_eq!(post("/hooks/mail", &[("Authorization", "Bearer mail-token")], &[b' '; 4096]), Some(413));
    let accepted = post("/hooks/mail", &[("Authorization", "Bearer mail-token")], mail);
    assert_eq!(accepted, Some(202));

    // Wake: the prompt runs in each allowed chat's session, with the hook's model.
    tg.bot_says(ALICE, "FAKE[text]").await;
    tg.bot_says(BOB, "FAKE[text]").await;
    let prompts = tg.prompts();
    assert!(prompts.iter().any(|p| p.contains("Mail from ann about invoice") && p.contains("#--")), "{prompts:?}");
    let record = std::fs::read_to_string(tg.root.join("record.jsonl")).unwrap();
    let wake_run = record
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["event"] == "start" && r["argv"].to_string().contains("Mail from ann"))
        .unwrap();
    assert!(wake_run["argv"].to_string().contains("\"--model\",\"sonnet\""), "the hook's model: {}", wake_run["argv"]);

    // cron_task with a GitHub-style signature: a flipped digit is refused, the right one runs.
    let push = br#"{"repo": "ductor"}"#;
    let good = github_signature("s3cret", push);
    let mut bad = good.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).unwrap();
    assert_eq!(post("/hooks/gh", &[("X-Hub-Signature-256", &bad)], push), Some(401));
    assert_eq!(post("/hooks/gh", &[], push), Some(401), "missing signature");
    assert_eq!(post("/hooks/gh", &[("X-Hub-Signature-256", &good)], push), Some(202));
    // A Stripe-style header checked with a look-behind regex and a timestamp prefix, and a
    // SHA-1 base64 signature: right ones run, a wrong timestamp or body does not.
    let paid = br#"{"amount": 42}"#;
    let stripe = stripe_signature("whsec", "1700000000", paid);
    let forged = stripe.replace("t=1700000000", "t=1700000001");
    assert_eq!(post("/hooks/stripe", &[("Stripe-Signature", &forged)], paid), Some(401));
    assert_eq!(post("/hooks/stripe", &[("Stripe-Signature", &stripe)], paid), Some(202));
    let legacy = br#"{"n": 1}"#;
    let old = sha1_base64_signature("old", legacy);
    assert_eq!(post("/hooks/legacy", &[("X-Signature", &old)], br#"{"n": 2}"#), Some(401));
    assert_eq!(post("/hooks/legacy", &[("X-Signature", &old)], legacy), Some(202));
    tg.bot_says(ALICE, "WEBHOOK (CRON TASK): Stripe").await;
    tg.bot_says(ALICE, "WEBHOOK (CRON TASK): Legacy").await;
    let task = tg.bot_says(ALICE, "WEBHOOK (CRON TASK): GitHub push").await;
    assert!(task.contains("FAKE["), "{task}");
    tg.bot_says(BOB, "WEBHOOK (CRON TASK): GitHub push").await;
    assert!(
        eventually(|| {
            let file: Value =
                serde_json::from_str(&std::fs::read_to_string(tg.home.join("webhooks.json")).unwrap()).unwrap();
            file["hooks"][1]["trigger_count"] == 1 && file["hooks"][1]["last_error"].is_null()
        })
        .await,
        "the hook's counters"
    );

    // A flood of bad requests: answered (401, then 429 past the limit), and chats still work.
    let codes: Vec<u16> = tokio::task::spawn_blocking(move || {
        (0..1000)
            .filter_map(|_| {
                http(port, "POST", "/hooks/gh", &[("Content-Type", "application/json")], b"{\"x\":1}").map(|(c, _)| c)
            })
            .collect()
    })
    .await
    .unwrap();
    assert_eq!(codes.len(), 1000, "every request answered");
    assert!(codes.contains(&401) && codes.contains(&429), "refused, then rate limited");
    // Alice's chat has a session now (the wake turn made it): the answer resumes it.
    let answers = bot_texts(&tg, ALICE, "FAKE[").len();
    tg.api.send_text(ALICE, ALICE as u64, "still there?");
    assert!(
        tg.api.wait_until(WAIT, |_| bot_texts(&tg, ALICE, "FAKE[").len() == answers + 1).await,
        "the chat is answered after the flood"
    );
    assert!(tg.prompts().iter().any(|p| p.starts_with("still there?")));
}

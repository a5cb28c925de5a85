//! Config hot reload against the real binary: a changed `model` is used by the next turn without
//! a restart; invalid JSON keeps the running values and fixing the file applies; a restart key
//! is warned about once and not applied; touching the file without a change does nothing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::binary::run;
use crate::support::telegram_service::{ALICE, Tg, eventually, start};

fn log(tg: &Tg) -> String {
    std::fs::read_to_string(tg.home.join("logs/agent.log")).unwrap_or_default()
}

fn count(tg: &Tg, needle: &str) -> usize {
    log(tg).matches(needle).count()
}

fn edit_config(tg: &Tg, change: impl FnOnce(&mut Value)) {
    let path = tg.home.join("config/config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    change(&mut config);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

/// The `--model` of every CLI start, in order.
fn models(tg: &Tg) -> Vec<String> {
    std::fs::read_to_string(tg.root.join("record.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"] == "start")
        .filter_map(|r| {
            let argv: Vec<String> =
                r["argv"].as_array()?.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
            argv.iter().position(|a| a == "--model").and_then(|i| argv.get(i + 1).cloned())
        })
        .collect()
}

async fn turn(tg: &Tg, text: &str, answers_before: usize) {
    tg.api.send_text(ALICE, ALICE as u64, text);
    let answered = tg
        .api
        .wait_until(Duration::from_secs(20), |_| {
            tg.api.bot_messages(ALICE).iter().filter(|m| m.visible.starts_with("FAKE[")).count() > answers_before
        })
        .await;
    let seen: Vec<String> = tg.api.bot_messages(ALICE).iter().map(|m| m.visible.clone()).collect();
    assert!(answered, "no answer to {text:?} (turn {answers_before}): {seen:?}; models {:?}", models(tg));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_changes_apply_to_the_next_turn_invalid_files_keep_the_running_config() {
    let tg = start(json!({}), &[]).await;
    let pid = tg.service.as_ref().unwrap().pid();
    turn(&tg, "Say hello", 0).await;
    assert_eq!(models(&tg).last().map(String::as_str), Some("opus"));

    edit_config(&tg, |c| c["model"] = json!("sonnet"));
    assert!(eventually(|| count(&tg, "Config applied.") == 1).await, "{}", log(&tg));
    turn(&tg, "Say hello", 1).await;
    assert_eq!(models(&tg).last().map(String::as_str), Some("sonnet"), "the next turn uses the new model");

    // Invalid JSON: a warning, the running values stay.
    let path = tg.home.join("config/config.json");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, good.replace("\"sonnet\"", "\"haiku\",,")).unwrap();
    assert!(eventually(|| log(&tg).contains("config.json changed but cannot be used")).await, "{}", log(&tg));
    let (_, status, _) = run(&tg.home, &["status"]);
    assert!(status.contains("the file as it is now is not applied"), "{status}");
    turn(&tg, "Say hello", 2).await;
    assert_eq!(models(&tg).last().map(String::as_str), Some("sonnet"), "old values kept");

    // Fixing the file applies it.
    std::fs::write(&path, good.replace("\"sonnet\"", "\"haiku\"")).unwrap();
    assert!(eventually(|| count(&tg, "Config applied.") == 2).await, "{}", log(&tg));
    turn(&tg, "Say hello", 3).await;
    assert_eq!(models(&tg).last().map(String::as_str), Some("haiku"));
    assert_eq!(tg.service.as_ref().unwrap().pid(), pid);
    assert!(tg.service.as_ref().unwrap().stderr().is_empty() || !log(&tg).contains("Agent restart requested"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_key_is_warned_once_and_a_touch_changes_nothing() {
    let tg = start(json!({}), &[]).await;
    let warning = "only a restart applies";
    edit_config(&tg, |c| c["interagent_port"] = json!(1));
    assert!(eventually(|| count(&tg, warning) == 1).await, "{}", log(&tg));
    // Still answering on the old port: not applied.
    let (_, status, _) = run(&tg.home, &["status"]);
    assert!(status.contains("Running  pid="), "{status}");
    assert!(status.contains("waits for a restart: interagent_port"), "{status}");

    // Touching (the same content written again) does nothing: no reload, no second warning.
    let path = tg.home.join("config/config.json");
    let same = std::fs::read(&path).unwrap();
    std::fs::write(&path, &same).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A real change afterwards shows the watcher is alive and went past the touch.
    edit_config(&tg, |c| c["language"] = json!("de"));
    assert!(eventually(|| count(&tg, "Config applied.") == 1).await, "{}", log(&tg));
    assert_eq!(count(&tg, warning), 1, "warned once: {}", log(&tg));
    assert_eq!(count(&tg, "Config hot-reloaded"), 1, "{}", log(&tg));
    assert!(log(&tg).contains("keys=[\"language\"]"), "{}", log(&tg));

    // Heartbeat switched on in the file: its observer starts without a restart. (The port back
    // first: `ductor status` asks the service on the port the file names.)
    let port = tg.port;
    edit_config(&tg, |c| c["interagent_port"] = json!(port));
    assert!(!run(&tg.home, &["status"]).1.contains("heartbeat (observer)"));
    edit_config(&tg, |c| c["heartbeat"]["enabled"] = json!(true));
    let started = eventually(|| run(&tg.home, &["status"]).1.contains("heartbeat (observer)")).await;
    assert!(started, "{}", run(&tg.home, &["status"]).1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_removed_from_the_allow_list_is_ignored_without_a_restart() {
    use crate::support::telegram_service::BOB;
    let tg = start(json!({}), &[]).await;
    edit_config(&tg, |c| c["allowed_user_ids"] = json!([ALICE]));
    assert!(eventually(|| count(&tg, "Config applied.") == 1).await, "{}", log(&tg));
    tg.api.send_text(BOB, BOB as u64, "Say hello");
    turn(&tg, "Say hello", 0).await;
    assert!(tg.api.bot_messages(BOB).is_empty(), "Bob is no longer allowed");
}

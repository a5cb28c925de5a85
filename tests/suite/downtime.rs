//! Messages sent while ductor is down, restarting or cannot reach Telegram: the real `ductor`
//! binary, the fake Bot API server (which can be switched unreachable) and the fake CLIs. What
//! waited at Telegram is answered in order when it is young, listed in one notice when it is
//! older than `inbox_max_age_minutes` (by the message's own date), and never dropped without a
//! word; an unreachable Telegram is waited for (`reconnecting`), not a crash.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::binary::Service;
use crate::support::telegram_service::{ALICE, Tg, WAIT, eventually, start};

/// Starts the service of `tg` again without waiting for its polling (Telegram may be down).
async fn start_service(tg: &mut Tg) {
    let (home, port, env) = (tg.home.clone(), tg.port, tg.env.clone());
    let service = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Service::start(&home, port, &env)
    })
    .await
    .unwrap();
    tg.service = Some(service);
}

/// Stops the service with SIGTERM and waits for it to exit.
async fn stop_service(tg: &mut Tg) {
    let mut service = tg.service.take().unwrap();
    service.signal(nix::sys::signal::Signal::SIGTERM);
    tokio::task::spawn_blocking(move || service.wait_exit(Duration::from_secs(15))).await.unwrap();
}

/// The `telegram` line of `ductor status`.
async fn status_line(tg: &Tg) -> String {
    let home = tg.home.clone();
    let (status, out, err) =
        tokio::task::spawn_blocking(move || crate::support::binary::run(&home, &["status"])).await.unwrap();
    assert!(status.success(), "{out}{err}");
    out.lines().find(|l| l.contains("telegram (")).unwrap_or_default().to_owned()
}

/// The bot's answers (the fake CLI's texts) in `chat` after its first message containing
/// `after` (all of them when `after` is empty).
fn answers(tg: &Tg, chat: i64, after: &str) -> Vec<String> {
    let messages = tg.api.bot_messages(chat);
    let from = if after.is_empty() {
        0
    } else {
        messages.iter().position(|m| m.visible.contains(after)).unwrap_or(usize::MAX)
    };
    messages.iter().skip(from).filter(|m| m.visible.contains("FAKE[")).map(|m| m.visible.clone()).collect()
}

/// Waits up to `limit` until `texts` ran (in this order) and `count` answers are in `chat`
/// after `after`.
async fn answered(tg: &Tg, chat: i64, texts: &[&str], count: usize, after: &str, limit: Duration) -> bool {
    let ran = |prompts: &[String]| {
        let mut at = 0;
        texts.iter().all(|text| match prompts.iter().skip(at).position(|p| p.contains(text)) {
            Some(i) => {
                at += i + 1;
                true
            }
            None => false,
        })
    };
    let found = tg.api.wait_until(limit, |_| ran(&tg.prompts()) && answers(tg, chat, after).len() >= count).await;
    if !found {
        let seen: Vec<String> = tg.api.bot_messages(chat).iter().map(|m| m.visible.clone()).collect();
        let stderr = tg.service.as_ref().map(Service::stderr).unwrap_or_default();
        eprintln!(
            "{texts:?} not answered; prompts {:?}; the bot said {seen:?}\n--- ductor ---\n{stderr}",
            tg.prompts()
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telegram_unreachable_at_start_is_waited_for_and_what_is_sent_then_is_answered_or_listed() {
    let mut tg = start(json!({"inbox_max_age_minutes": 5}), &[]).await;
    stop_service(&mut tg).await;
    tg.api.set_reachable(false);
    start_service(&mut tg).await;
    // Unreachable for 15 s: the service runs on, Telegram shows `reconnecting`, and the
    // supervisor never counted a crash.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let line = status_line(&tg).await;
    assert!(line.contains("reconnecting"), "telegram reconnects: {line}");
    assert!(!line.contains("restarts"), "network trouble is no crash: {line}");
    let stderr = tg.service.as_ref().unwrap().stderr();
    assert!(stderr.contains("Telegram cannot be reached; trying again"), "{stderr}");

    // Back: a message sent that moment is answered within 5 s of the bot's next call.
    let back = Instant::now();
    tg.api.set_reachable(true);
    tg.api.send_text(ALICE, ALICE as u64, "Are you back?");
    let back_answered = answered(&tg, ALICE, &["Are you back?"], 1, "", Duration::from_secs(70)).await;
    assert!(back_answered, "answered once Telegram is back");
    let answered_at = Instant::now();
    let calls = tg.api.calls();
    let first = calls.iter().find(|c| c.at >= back).expect("the bot called again");
    let after_poll = answered_at.duration_since(first.at);
    assert!(after_poll < Duration::from_secs(5), "answered {after_poll:?} after the bot's next call");
    let line = status_line(&tg).await;
    assert!(line.contains("running"), "telegram runs again: {line}");

    // A second outage; a message sent as it began (ten minutes ago by its date) is listed when
    // Telegram is back, not run.
    tg.api.set_reachable(false);
    tg.api.send_text_sent_ago(ALICE, ALICE as u64, "Written as the outage began", 600);
    tokio::time::sleep(Duration::from_secs(3)).await;
    tg.api.set_reachable(true);
    let notice = tg.bot_says(ALICE, "arrived while ductor was down").await;
    assert!(notice.contains("Written as the outage began"), "the person's own words: {notice}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !tg.prompts().iter().any(|p| p.contains("Written as the outage began")),
        "a stale message never runs: {:?}",
        tg.prompts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_sent_while_stopped_are_answered_in_order_and_an_old_one_is_listed() {
    let mut tg = start(json!({"inbox_max_age_minutes": 5}), &[]).await;
    stop_service(&mut tg).await;
    let old = tg.api.send_text_sent_ago(ALICE, ALICE as u64, "Written ten minutes ago", 600);
    let stop = tg.api.send_text(ALICE, ALICE as u64, "/stop");
    for text in ["First while down", "Second while down", "Third while down"] {
        tg.api.send_text(ALICE, ALICE as u64, text);
    }
    tg.launch().await;
    let all = answered(&tg, ALICE, &["First while down", "Second while down", "Third while down"], 3, "", WAIT).await;
    assert!(all, "the three are answered in order");
    let notice = tg.bot_says(ALICE, "arrived while ductor was down").await;
    assert!(notice.contains("Written ten minutes ago"), "{notice}");
    assert!(!notice.contains("/stop"), "an immediate command from before the start is dropped: {notice}");
    let prompts = tg.prompts();
    let ran: Vec<&String> = prompts.iter().filter(|p| p.contains("while down") || p.contains("ten minutes")).collect();
    assert_eq!(ran.len(), 3, "the two young ones run, the old one does not: {prompts:?}");
    for (prompt, text) in ran.iter().zip(["First", "Second", "Third"]) {
        assert!(prompt.contains(text), "in order: {prompts:?}");
    }
    let messages = tg.api.bot_messages(ALICE);
    assert!(!messages.iter().any(|m| m.reply_to == Some(stop) || m.reply_to == Some(old)), "nothing answers those");
    assert!(
        !messages.iter().any(|m| m.visible.contains("Nothing is running")),
        "/stop from before the start is dropped"
    );
    assert_eq!(answers(&tg, ALICE, "").len(), 3, "one answer each");
    assert!(
        eventually(|| {
            let inbox = std::fs::read_to_string(tg.home.join("inbox.jsonl")).unwrap_or_default();
            inbox.matches("\"done\"").count() >= 5
        })
        .await,
        "every message is settled in the inbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_waiting_or_sent_during_a_restart_is_answered_after_it() {
    let mut tg = start(json!({}), &[("FAKE_CLI_HOLD_MS", "4000")]).await;
    tg.api.send_text(ALICE, ALICE as u64, "Write the long report");
    assert!(eventually(|| !tg.prompts().is_empty()).await, "the turn runs");
    tg.api.send_text(ALICE, ALICE as u64, "Queued behind the report");
    tg.bot_says(ALICE, "[Message in queue...]").await;
    tg.api.send_text(ALICE, ALICE as u64, "/restart");
    tg.bot_says(ALICE, "Restarting").await;
    tg.api.send_text(ALICE, ALICE as u64, "Sent during the restart");
    tg.bot_says(ALICE, "Restart complete").await;
    let both =
        answered(&tg, ALICE, &["Queued behind the report", "Sent during the restart"], 2, "Restart complete", WAIT * 3)
            .await;
    assert!(both, "both are answered after the restart, in order");
    let prompts = tg.prompts();
    let queued = prompts.iter().position(|p| p.contains("Queued behind the report")).unwrap();
    let during = prompts.iter().position(|p| p.contains("Sent during the restart")).unwrap();
    assert!(queued < during, "in their order: {prompts:?}");
    assert_eq!(prompts.iter().filter(|p| p.contains("Queued behind the report")).count(), 1, "run once");
    let asked_again = tg.api.bot_messages(ALICE).iter().any(|m| m.visible.contains("Send them again"));
    assert!(!asked_again, "nothing ductor can run itself is handed back to the person");
    // The fresh copy started by the restart is not our child: stop it by its home.
    let home = tg.home.clone();
    tokio::task::spawn_blocking(move || crate::support::binary::run(&home, &["stop"])).await.unwrap();
    tg.service.take();
}

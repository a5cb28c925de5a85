//! Telegram end to end: the real `ductor` binary, the real teloxide client inside it, the fake
//! Bot API server on loopback and the fake provider CLIs. Each test is what a person in the
//! chat would see (transports spec §2 acceptance checks).

use std::time::Duration;

use crate::support::binary::{Service, free_port};
use crate::support::fake_bot_api::{ApiCall, Failure, FakeBotApi};
use crate::support::fake_cli::{assistant_text, assistant_tool, custom_fixture};
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Value, json};

use crate::support::telegram_service::{ALICE, BOB, TOKEN, Tg, WAIT, eventually, start};

fn to_chat(call: &ApiCall, chat: i64) -> bool {
    call.params["chat_id"] == json!(chat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn startup_keeps_pending_updates_syncs_the_menu_and_a_message_is_answered_with_reactions() {
    let tg = start(json!({}), &[]).await;
    let calls = tg.api.calls();
    let webhook = calls.iter().find(|c| c.method == "deleteWebhook").expect("deleteWebhook");
    assert_ne!(webhook.params["drop_pending_updates"], json!(true), "what waited at Telegram is kept");
    let first_poll = calls.iter().find(|c| c.method == "getUpdates").unwrap();
    assert_ne!(first_poll.params["offset"], json!(-1), "no skip to the newest update");
    let menu = tg.api.commands("default");
    let names: Vec<&str> = menu.as_array().unwrap().iter().map(|c| c["command"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 17);
    assert_eq!(&names[..4], ["new", "reset", "stop", "interrupt"]);
    assert_eq!(names[16], "restart");

    let asked = tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    let answer = tg.bot_says(ALICE, "FAKE[text]").await;
    assert!(answer.contains("You said: Say hello"), "{answer}");
    let reactions: Vec<Value> =
        tg.api.calls_of("setMessageReaction").iter().map(|c| c.params["reaction"].clone()).collect();
    assert!(reactions.first().is_some_and(|r| r.to_string().contains("🤔")), "{reactions:?}");
    assert!(
        tg.api
            .wait_until(WAIT, |_| tg
                .api
                .messages(ALICE)
                .iter()
                .any(|m| m.message_id == asked && m.reactions.is_empty()))
            .await
    );
    assert_eq!(
        tg.api.calls_of("setMessageReaction").last().unwrap().params["reaction"],
        json!([]),
        "cleared at the end"
    );
    assert!(tg.api.calls_of("sendChatAction").iter().any(|c| c.params["action"] == "typing"));
    let home = tg.home.clone();
    let (status, out, _) =
        tokio::task::spawn_blocking(move || crate::support::binary::run(&home, &["status"])).await.unwrap();
    assert!(status.success(), "{out}");
    let line = out.lines().find(|l| l.contains("telegram")).unwrap_or_default().to_owned();
    assert!(line.contains("running"), "the live tree shows the transport: {out}");
    assert!(out.contains("tg:7"), "and the chat's session by its key: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_get_no_answer_and_no_cli_runs() {
    let tg = start(json!({}), &[]).await;
    tg.api.send_text(99, 99, "Say hello");
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "FAKE[text]").await;
    assert!(!tg.api.calls().iter().any(|c| to_chat(c, 99)), "no call towards the stranger");
    assert_eq!(tg.prompts().len(), 1, "one CLI run, for Alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_sent_during_a_turn_wait_with_a_notice_and_run_in_order_and_cancel_works() {
    let tg = start(json!({}), &[("FAKE_CLI_HOLD_MS", "3000")]).await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    assert!(eventually(|| !tg.prompts().is_empty()).await, "the first turn runs");
    let second = tg.api.send_text(ALICE, ALICE as u64, "second message");
    let third = tg.api.send_text(ALICE, ALICE as u64, "third message");
    let cancelled = tg.api.send_text(ALICE, ALICE as u64, "never mind this one");
    let queued = |tg: &Tg| tg.api.bot_messages(ALICE).iter().filter(|m| m.visible == "[Message in queue...]").count();
    let log = |tg: &Tg| {
        let all = tg.api.calls();
        let t0 = all[0].at;
        let calls: Vec<String> = all
            .iter()
            .map(|c| format!("{:>6}ms {} {}", c.at.duration_since(t0).as_millis(), c.method, c.params))
            .collect();
        let log = std::fs::read_to_string(tg.home.join("logs/agent.log")).unwrap_or_default();
        format!("calls:\n{}\nprompts: {:?}\nLOG\n{log}", calls.join("\n"), tg.prompts())
    };
    assert!(tg.api.wait_until(WAIT, |_| queued(&tg) == 3).await, "{}", log(&tg));
    let notices: Vec<_> =
        tg.api.bot_messages(ALICE).into_iter().filter(|m| m.visible == "[Message in queue...]").collect();
    let replies: Vec<Option<i64>> = notices.iter().map(|m| m.reply_to).collect();
    assert_eq!(replies, [Some(second), Some(third), Some(cancelled)], "each notice replies to its message");
    let button = notices[2].reply_markup["inline_keyboard"][0][0].clone();
    assert_eq!(button["text"], "Cancel message");
    let data = button["callback_data"].as_str().unwrap();
    assert!(data.starts_with("mq:"), "{data}");
    tg.api.press_button(ALICE, ALICE as u64, notices[2].message_id, data);
    assert!(tg.message_shows(ALICE, notices[2].message_id, "[Message cancelled.]").await);
    assert!(eventually(|| tg.prompts().len() == 3).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let prompts = tg.prompts();
    assert_eq!(prompts.len(), 3, "the cancelled message never reached the CLI: {prompts:?}");
    assert!(prompts[1].starts_with("second message") && prompts[2].starts_with("third message"), "{prompts:?}");
    let deleted: Vec<bool> = tg
        .api
        .messages(ALICE)
        .iter()
        .filter(|m| m.message_id == notices[0].message_id || m.message_id == notices[1].message_id)
        .map(|m| m.deleted)
        .collect();
    assert_eq!(deleted, [true, true], "each notice is deleted when its turn starts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_delays_the_chat_and_loses_nothing() {
    let tg = start(json!({"streaming": {"enabled": false}}), &[]).await;
    tg.api.fail("sendMessage", Failure::RetryAfter(1), 2);
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "FAKE[text]").await;
    let sends = tg.api.calls_of("sendMessage");
    assert_eq!(sends.len(), 3, "two refusals, then delivered");
    assert!(sends[2].at.duration_since(sends[0].at) >= Duration::from_secs(2), "retry_after honoured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcast_reaches_every_allowed_user_even_when_one_fails() {
    let tg = start(json!({}), &[]).await;
    tg.api.fail("sendMessage", Failure::Forbidden, 1);
    let body = r#"{"origin":"cron","chat_id":0,"delivery":"broadcast","result_text":"nightly report","status":"success","metadata":{"title":"Nightly"}}"#;
    tg.post_envelope(body);
    let text = tg.bot_says(BOB, "nightly report").await;
    assert_eq!(text, "TASK: Nightly\n\nnightly report");
    let bold = tg.api.bot_messages(BOB)[0].text.clone();
    assert!(bold.starts_with("<b>TASK: Nightly</b>"), "{bold}");
    let tries: Vec<i64> =
        tg.api.calls_of("sendMessage").iter().map(|c| c.params["chat_id"].as_i64().unwrap()).collect();
    assert_eq!(tries, [ALICE, BOB], "Alice blocked the bot (403, not retried); Bob got it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_answer_comes_in_three_messages_the_first_replying() {
    let long: String = (0..10_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let fixtures = custom_fixture(&root, "long", &[assistant_text(&long)], &long);
    let tg = start(
        json!({"streaming": {"enabled": false}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "long")],
    )
    .await;
    let asked = tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    assert!(
        tg.api.wait_until(WAIT, |_| tg.api.bot_messages(ALICE).len() == 3).await,
        "{:?}",
        tg.api.bot_messages(ALICE).len()
    );
    let messages = tg.api.bot_messages(ALICE);
    assert!(messages.iter().all(|m| m.visible.encode_utf16().count() <= 4096));
    assert_eq!(messages.iter().map(|m| m.visible.clone()).collect::<String>(), long, "nothing lost, in order");
    assert_eq!(messages[0].reply_to, Some(asked));
    assert_eq!((messages[1].reply_to, messages[2].reply_to), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answer_buttons_become_a_keyboard_and_a_press_is_the_next_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let text = "Shall I go on?\n[button:Yes] [button:No]";
    let fixtures = custom_fixture(&root, "buttons", &[assistant_text(text)], text);
    let tg = start(
        json!({"streaming": {"enabled": false}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "buttons")],
    )
    .await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    let shown = tg.bot_says(ALICE, "Shall I go on?").await;
    assert!(!shown.contains("[button:"), "{shown}");
    let message = tg.api.bot_messages(ALICE).into_iter().find(|m| m.visible.contains("Shall I")).unwrap();
    let rows = message.reply_markup["inline_keyboard"].as_array().unwrap().clone();
    let data: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|b| b["callback_data"].as_str().unwrap()).collect())
        .collect();
    assert_eq!(data, vec![vec!["Yes", "No"]]);
    tg.api.press_button(ALICE, ALICE as u64, message.message_id, "Yes");
    assert!(eventually(|| tg.prompts().len() == 2).await);
    assert!(tg.prompts()[1].starts_with("Yes"), "{:?}", tg.prompts());
    let pressed = tg.api.messages(ALICE).into_iter().find(|m| m.message_id == message.message_id).unwrap();
    assert!(pressed.visible.ends_with("[USER ANSWER] Yes"), "{}", pressed.visible);
    assert!(pressed.reply_markup.is_null(), "keyboard removed");
    assert!(!tg.api.calls_of("answerCallbackQuery").is_empty(), "the press is answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_tool_calls_collapse_and_the_final_text_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let events = [
        assistant_text("Let me look."),
        assistant_tool("Bash"),
        assistant_tool("Bash"),
        assistant_tool("Bash"),
        assistant_text(" All done."),
    ];
    let fixtures = custom_fixture(&root, "tools", &events, "Let me look. All done.");
    let tg = start(
        json!({"streaming": {"min_chars": 1, "edit_interval_seconds": 0.0}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "tools"), ("FAKE_CLI_LINE_DELAY_MS", "150")],
    )
    .await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    assert!(
        tg.api
            .wait_for_call(WAIT, |c| c.method == "editMessageText"
                && c.params["text"].as_str().is_some_and(|t| t.contains("<b>[TOOL: Shell] x3</b>")))
            .await
            .is_some(),
        "three Bash calls shown as one line"
    );
    tg.bot_says(ALICE, "All done.").await;
    assert!(
        tg.api
            .wait_until(WAIT, |_| tg
                .api
                .bot_messages(ALICE)
                .iter()
                .any(|m| m.visible.contains("All done") && !m.visible.contains("TOOL")))
            .await,
        "the final text has no tool lines: {:?}",
        tg.api.bot_messages(ALICE)
    );
    let reactions: Vec<String> =
        tg.api.calls_of("setMessageReaction").iter().map(|c| c.params["reaction"].to_string()).collect();
    assert!(reactions.iter().any(|r| r.contains("👨‍💻")), "{reactions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_exits_42_comes_back_and_says_so_in_the_chat() {
    let mut tg = start(json!({}), &[]).await;
    tg.api.send_text(ALICE, ALICE as u64, "/restart");
    tg.bot_says(ALICE, "Restarting").await;
    // The service exits 42 and, run in the foreground, starts itself again.
    tg.bot_says(ALICE, "Restart complete").await;
    assert!(!tg.home.join("restart-sentinel.json").exists(), "the sentinel is consumed");
    let logins = tg.api.calls_of("getMe").len();
    assert!(logins >= 2, "logged in again after the restart ({logins})");
    assert_eq!(tg.api.calls_of("setMyCommands").len(), 1, "the menu is set again only when it differs");
    tg.service.take();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_turn_cut_by_sigkill_is_reported_in_the_chat_after_the_next_start() {
    let mut tg = start(json!({}), &[("FAKE_CLI_HOLD_MS", "30000")]).await;
    tg.api.send_text(ALICE, ALICE as u64, "Write the long report");
    assert!(eventually(|| !tg.prompts().is_empty()).await, "the turn runs");
    tg.service.as_ref().unwrap().signal(nix::sys::signal::Signal::SIGKILL);
    let mut killed = tg.service.take().unwrap();
    tokio::task::spawn_blocking(move || killed.wait_exit(Duration::from_secs(5))).await.unwrap();
    tg.launch().await;
    let notice = tg.bot_says(ALICE, "Interrupted Task").await;
    assert!(notice.contains("Write the long report"), "{notice}");
    assert!(!notice.contains("BACKGROUND TASKS"), "the person's text, not the prompt hooks: {notice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_not_allowed_are_tracked_refused_and_left() {
    const STRANGERS: i64 = -1001;
    const NEW_GROUP: i64 = -1002;
    let tg = start(json!({}), &[]).await;
    tg.api.send_text(STRANGERS, ALICE as u64, "Say hello");
    // The bot is added to a group nobody allowed.
    tg.api.chat_member(NEW_GROUP, "Random group", ALICE as u64, "left", "member");
    assert!(tg.api.wait_for_call(WAIT, |c| c.method == "leaveChat" && to_chat(c, NEW_GROUP)).await.is_some());
    tg.bot_says(NEW_GROUP, "not on my list of allowed groups").await;
    let tracker: Value =
        serde_json::from_str(&std::fs::read_to_string(tg.home.join("chat_activity.json")).unwrap()).unwrap();
    let record = &tracker["records"][STRANGERS.to_string()];
    assert_eq!((record["status"].as_str(), record["rejected_count"].as_u64()), (Some("rejected"), Some(1)));
    assert_eq!(record["allowed"], json!(false));
    assert!(!tg.api.calls().iter().any(|c| to_chat(c, STRANGERS)), "nothing is sent to the group that wrote");
    assert!(tg.prompts().is_empty(), "no CLI ran");

    tg.api.send_text(ALICE, ALICE as u64, "/where");
    let answer = tg.bot_says(ALICE, "Rejected").await;
    let rejected = answer.split("Left").next().unwrap();
    assert!(rejected.contains(&format!("{NEW_GROUP} — Random group (supergroup)")), "{answer}");
    assert!(
        answer.split("Left").nth(1).unwrap().contains(&format!("{NEW_GROUP} — Random group (supergroup) [auto_left]")),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forum_topic_has_its_own_session_and_answers_go_to_the_topic() {
    const FORUM: i64 = -1003;
    let tg = start(json!({"allowed_group_ids": [FORUM]}), &[]).await;
    tg.api.send_message(FORUM, ALICE as u64, "Say hello", Some(7), None);
    tg.bot_says(FORUM, "FAKE[text]").await;
    let answer = tg.api.bot_messages(FORUM).into_iter().find(|m| m.visible.contains("FAKE[text]")).unwrap();
    assert_eq!(answer.thread_id, Some(7), "the answer is in topic 7");
    let starts: Vec<Value> = std::fs::read_to_string(tg.root.join("record.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"] == "start")
        .collect();
    assert_eq!(starts[0]["env"]["DUCTOR_TOPIC_ID"], "7", "{:?}", starts[0]["env"]);
    assert_eq!(starts[0]["env"]["DUCTOR_CHAT_ID"], FORUM.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_answers_during_a_turn_and_stop_kills_it_and_discards_the_queue() {
    let tg = start(json!({}), &[("FAKE_CLI_HOLD_MS", "30000")]).await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    assert!(eventually(|| !tg.prompts().is_empty()).await, "the turn runs");
    tg.api.send_text(ALICE, ALICE as u64, "/status");
    let status = tg.bot_says(ALICE, "Status").await;
    assert!(status.contains("opus"), "{status}");
    let waiting = tg.api.send_text(ALICE, ALICE as u64, "queued behind");
    assert!(
        tg.api
            .wait_until(WAIT, |_| tg.api.bot_messages(ALICE).iter().any(|m| m.visible == "[Message in queue...]"))
            .await
    );
    tg.api.send_text(ALICE, ALICE as u64, "stop please");
    tg.api.send_text(ALICE, ALICE as u64, "stop");
    tg.bot_says(ALICE, "Stopped.").await;
    let notice = tg.api.messages(ALICE).into_iter().find(|m| m.reply_to == Some(waiting) && m.from_bot).unwrap();
    assert!(
        tg.message_shows(ALICE, notice.message_id, "[Message discarded.]").await,
        "the queued message's notice says it was discarded"
    );
    let pid = {
        let record = std::fs::read_to_string(tg.root.join("record.jsonl")).unwrap();
        let first: Value = serde_json::from_str(record.lines().next().unwrap()).unwrap();
        first["pid"].as_i64().unwrap() as i32
    };
    assert!(
        eventually(|| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()).await,
        "the CLI is gone"
    );
    assert_eq!(tg.prompts().len(), 1, "`stop please` was discarded with the queue, never run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answer_files_are_sent_refused_outside_the_workspace_or_reported_missing() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let tg = start(
        json!({"file_access": "workspace", "streaming": {"enabled": false}}),
        &[("FAKE_CLI_FIXTURES", fixtures.join("fixtures").as_str()), ("FAKE_CLI_FIXTURE", "files")],
    )
    .await;
    let inside = tg.home.join("workspace/out.png");
    std::fs::write(&inside, b"\x89PNG fake image").unwrap();
    let outside = tg.root.join("secret.txt");
    std::fs::write(&outside, "secret").unwrap();
    let missing = tg.home.join("workspace/missing.pdf");
    let text = format!("Here you go.\n<file:{inside}>\n<file:{outside}>\n<file:{missing}>");
    custom_fixture(&fixtures, "files", &[assistant_text(&text)], &text);
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "File not found: missing.pdf").await;
    let shown = tg.bot_says(ALICE, "Here you go.").await;
    assert!(!shown.contains("<file:"), "{shown}");
    let uploads = tg.api.uploads();
    assert_eq!(uploads.len(), 1, "only the workspace file is uploaded");
    assert_eq!((uploads[0].0.as_str(), uploads[0].1.as_str()), ("sendPhoto", "out.png"));
    assert_eq!(uploads[0].2, b"\x89PNG fake image");
    let refused = tg.bot_says(ALICE, "outside the directory").await;
    assert!(refused.starts_with("secret.txt is outside"), "{refused}");
    assert!(tg.api.bot_messages(ALICE).iter().any(|m| m.text.contains("<b>secret.txt</b>")), "an HTML notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_received_photo_is_saved_indexed_and_given_to_the_cli_as_a_file_prompt() {
    let tg = start(json!({}), &[]).await;
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(64, 48, image::Rgb([10, 120, 200]))
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let (file_id, unique) = tg.api.add_file(&jpeg, "p.jpg");
    let (message, _) = tg.api.user_message(ALICE, ALICE as u64, None, None, |m| {
        m.insert(
            "photo".into(),
            json!([{"file_id": "small", "file_unique_id": "small", "width": 90, "height": 90, "file_size": 10},
                   {"file_id": file_id, "file_unique_id": unique, "width": 1280, "height": 960, "file_size": 17}]),
        );
        m.insert("caption".into(), json!("What is on this picture?"));
    });
    tg.api.inject_update(json!({"message": message}));
    assert!(
        eventually(|| !tg.prompts().is_empty()).await,
        "the CLI runs; bot said {:?}; log: {}",
        tg.api.bot_messages(ALICE).iter().map(|m| m.visible.clone()).collect::<Vec<_>>(),
        std::fs::read_to_string(tg.home.join("logs/agent.log")).unwrap_or_default()
    );
    let prompt = tg.prompts()[0].clone();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let relative = format!("telegram_files/{date}/photo_{unique}.webp");
    assert!(prompt.starts_with("[INCOMING FILE]\nThe user sent you a file via Telegram."), "{prompt}");
    assert!(prompt.contains(&format!("Path: {relative}")), "{prompt}");
    assert!(prompt.contains("User message: What is on this picture?"), "{prompt}");
    let stored = image::open(tg.home.join("workspace").join(&relative).as_std_path()).unwrap();
    assert_eq!((stored.width(), stored.height()), (64, 48), "converted to WebP, size kept");
    assert!(prompt.contains("Type: image/webp"), "{prompt}");
    let index = std::fs::read_to_string(tg.home.join("workspace/telegram_files/_index.yaml")).unwrap();
    assert!(index.contains(&format!("name: \"photo_{unique}.webp\"")) && index.contains("total_files: 1"), "{index}");
    tg.bot_says(ALICE, "FAKE[text]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_that_cannot_be_downloaded_is_reported_and_nothing_runs() {
    let tg = start(json!({}), &[]).await;
    let (message, _) = tg.api.user_message(ALICE, ALICE as u64, None, None, |m| {
        m.insert(
            "document".into(),
            json!({"file_id": "gone", "file_unique_id": "G1", "file_name": "notes.txt", "file_size": 5}),
        );
    });
    tg.api.inject_update(json!({"message": message}));
    tg.bot_says(ALICE, "Could not download notes.txt").await;
    assert!(tg.prompts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_update_twice_starts_one_turn_and_group_rules_hold() {
    const GROUP: i64 = -1004;
    let tg = start(json!({"allowed_group_ids": [GROUP], "group_mention_only": true}), &[]).await;
    let (message, _) = tg.api.user_message(ALICE, ALICE as u64, None, None, |m| {
        m.insert("text".into(), json!("Say hello"));
    });
    tg.api.inject_update(json!({"message": message.clone()}));
    tg.api.inject_update(json!({"message": message}));
    tg.bot_says(ALICE, "FAKE[text]").await;
    tg.api.send_text(GROUP, ALICE as u64, "hello everyone");
    tg.api.send_text(GROUP, ALICE as u64, "/status@OtherBot");
    tg.api.send_text(GROUP, ALICE as u64, "@DuctorTestBot Say hello");
    tg.bot_says(GROUP, "FAKE[text]").await;
    let prompts = tg.prompts();
    assert_eq!(prompts.len(), 2, "one turn for the doubled update, one for the mention: {prompts:?}");
    assert!(prompts[1].starts_with("Say hello"), "the mention is removed from the prompt: {:?}", prompts[1]);
    assert!(!tg.api.bot_messages(GROUP).iter().any(|m| m.visible.contains("Status")), "/status@OtherBot is not ours");
}

fn many_deltas(root: &Utf8Path, name: &str, count: usize) -> Utf8PathBuf {
    let events: Vec<Value> = (0..count).map(|i| assistant_text(&format!("part {i}. "))).collect();
    let full: String = (0..count).map(|i| format!("part {i}. ")).collect();
    custom_fixture(root, name, &events, full.trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_edits_are_at_least_two_seconds_apart() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let fixtures = many_deltas(&root, "deltas", 45);
    let tg = start(
        json!({"streaming": {"min_chars": 1}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "deltas"), ("FAKE_CLI_LINE_DELAY_MS", "100")],
    )
    .await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "part 44.").await;
    assert!(tg.api.wait_until(WAIT, |_| tg.api.calls_of("setMessageReaction").len() >= 2).await, "turn over");
    let edits = tg.api.calls_of("editMessageText");
    let (last, streaming) = edits.split_last().unwrap();
    assert!(!streaming.is_empty(), "edited while streaming: {}", edits.len());
    let created = tg.api.calls_of("sendMessage")[0].at;
    let mut previous = created;
    for edit in streaming {
        assert!(
            edit.at.duration_since(previous) >= Duration::from_millis(1500),
            "edits are throttled to one per 2 s (with lane jitter)"
        );
        previous = edit.at;
    }
    assert!(last.params["text"].as_str().unwrap().ends_with("part 44."), "the final edit has the whole answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_three_failed_edits_the_rest_comes_as_new_messages() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let fixtures = many_deltas(&root, "deltas", 8);
    let tg = start(
        json!({"streaming": {"min_chars": 1, "edit_interval_seconds": 0.0}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "deltas"), ("FAKE_CLI_LINE_DELAY_MS", "100")],
    )
    .await;
    tg.api.fail("editMessageText", Failure::BadRequest("Bad Request: message can't be edited".into()), 3);
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "part 7.").await;
    assert_eq!(tg.api.calls_of("editMessageText").len(), 3, "no edits after the third failure");
    let shown: String = tg.api.bot_messages(ALICE).iter().map(|m| m.visible.clone()).collect::<Vec<_>>().join(" ");
    for i in 0..8 {
        assert!(shown.contains(&format!("part {i}.")), "part {i} is shown somewhere: {shown}");
    }
    assert!(tg.api.bot_messages(ALICE).len() > 2, "new messages after the fallback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_with_a_topic_name_starts_that_topics_session_over() {
    const FORUM: i64 = -1005;
    let tg = start(json!({"allowed_group_ids": [FORUM]}), &[]).await;
    let (created, _) = tg.api.user_message(FORUM, ALICE as u64, Some(9), None, |m| {
        m.insert("forum_topic_created".into(), json!({"name": "Research", "icon_color": 7322096}));
    });
    tg.api.inject_update(json!({"message": created}));
    tg.api.send_message(FORUM, ALICE as u64, "Say hello", Some(9), None);
    tg.bot_says(FORUM, "FAKE[text]").await;
    tg.api.send_text(FORUM, ALICE as u64, "/new @nothing");
    tg.bot_says(FORUM, "There is no topic called nothing").await;
    tg.api.send_text(FORUM, ALICE as u64, "/new @research");
    let reply = tg.bot_says(FORUM, "New session started").await;
    assert!(reply.contains("topic Research"), "{reply}");
    tg.api.send_message(FORUM, ALICE as u64, "Say hello", Some(9), None);
    assert!(eventually(|| tg.prompts().len() == 2).await);
    let argv = std::fs::read_to_string(tg.root.join("record.jsonl")).unwrap();
    let starts: Vec<Value> =
        argv.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|r| r["event"] == "start").collect();
    assert!(!starts[1]["argv"].to_string().contains("--resume"), "the topic's session started over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_quotes_the_message_it_answers() {
    let tg = start(json!({}), &[]).await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "FAKE[text]").await;
    let answer = tg.api.bot_messages(ALICE)[0].message_id;
    tg.api.send_message(ALICE, ALICE as u64, "why that?", None, Some(answer));
    assert!(eventually(|| tg.prompts().len() == 2).await);
    let prompt = tg.prompts()[1].clone();
    assert!(
        prompt.starts_with("[The user is replying to this message:]\n> FAKE[text] hello from the fake model"),
        "{prompt}"
    );
    assert!(prompt.contains("\n\n[The user's message:]\nwhy that?"), "{prompt}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn start_shows_the_welcome_and_its_buttons_start_a_turn() {
    let tg = start(json!({}), &[]).await;
    tg.api.send_text(ALICE, ALICE as u64, "/start");
    let welcome = tg.bot_says(ALICE, "Hi Alice!").await;
    assert!(welcome.contains("Model: opus"), "{welcome}");
    let message = tg.api.bot_messages(ALICE).into_iter().find(|m| m.visible.contains("Hi Alice")).unwrap();
    let data: Vec<String> = message.reply_markup["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0]["callback_data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(data, ["w:1", "w:2", "w:3"]);
    tg.api.press_button(ALICE, ALICE as u64, message.message_id, "w:1");
    assert!(eventually(|| tg.prompts().len() == 1).await);
    assert!(tg.prompts()[0].starts_with("Briefly tell me what you can do"), "{:?}", tg.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_over_many_chats_loses_nothing_and_keeps_each_chats_order() {
    let tg = start(
        json!({"allowed_user_ids": [1, 2, 3, 4, 5], "streaming": {"enabled": false}}),
        &[("FAKE_CLI_LINE_DELAY_MS", "20")],
    )
    .await;
    let mut sent: Vec<(i64, i64)> = Vec::new();
    for round in 0..4 {
        for chat in 1..=5i64 {
            sent.push((chat, tg.api.send_text(chat, chat as u64, &format!("burst {round}"))));
        }
    }
    let answered = |chat: i64| -> Vec<i64> { tg.api.bot_messages(chat).iter().filter_map(|m| m.reply_to).collect() };
    assert!(
        tg.api.wait_until(Duration::from_secs(60), |_| (1..=5).all(|chat| answered(chat).len() == 4)).await,
        "every message answered: {:?}",
        (1..=5).map(answered).collect::<Vec<_>>()
    );
    for chat in 1..=5 {
        let asked: Vec<i64> = sent.iter().filter(|(c, _)| *c == chat).map(|(_, id)| *id).collect();
        assert_eq!(answered(chat), asked, "chat {chat}: answers in the order asked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cron_result_its_chat_refuses_goes_to_the_first_allowed_user() {
    let tg = start(json!({}), &[]).await;
    tg.api.fail("sendMessage", Failure::Forbidden, 1);
    let body = r#"{"origin":"cron","chat_id":-4242,"transport":"tg","result_text":"job output","status":"success","metadata":{"title":"Backup"}}"#;
    tg.post_envelope(body);
    let notice = tg.bot_says(ALICE, "Cron delivery failed").await;
    assert!(notice.contains("Target: chat -4242") && notice.ends_with("TASK: Backup\n\njob output"), "{notice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logged_in_gemini_trusts_the_workspace() {
    let tg = start(json!({}), &[("GEMINI_API_KEY", "test-key")]).await;
    let file = tg.root.join(".gemini/trustedFolders.json");
    assert!(eventually(|| file.exists()).await, "trustedFolders.json written");
    let folders: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(folders[tg.home.join("workspace").as_str()], "TRUST_FOLDER", "{folders}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_start_groups_that_are_no_longer_allowed_are_left() {
    let mut tg = start(json!({"allowed_group_ids": [-3001]}), &[]).await;
    tg.service.take();
    let tracker = json!({"records": {
        "-3001": {"chat_id": -3001, "chat_type": "supergroup", "title": "Kept", "first_seen": "2026-11-24T10:00:00+00:00",
                  "last_seen": "2026-11-24T10:00:00+00:00", "status": "active", "allowed": true, "rejected_count": 0},
        "-3002": {"chat_id": -3002, "chat_type": "supergroup", "title": "Dropped", "first_seen": "2026-11-24T10:00:00+00:00",
                  "last_seen": "2026-11-24T10:00:00+00:00", "status": "active", "allowed": true, "rejected_count": 0}}});
    std::fs::write(tg.home.join("chat_activity.json"), tracker.to_string()).unwrap();
    tg.launch().await;
    assert!(tg.api.wait_for_call(WAIT, |c| c.method == "leaveChat" && to_chat(c, -3002)).await.is_some());
    assert!(!tg.api.calls_of("leaveChat").iter().any(|c| to_chat(c, -3001)), "the allowed group stays");
    assert!(
        eventually(|| std::fs::read_to_string(tg.home.join("chat_activity.json"))
            .unwrap_or_default()
            .contains("auto_left"))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn showfiles_browses_the_home_and_never_leaves_it() {
    let tg = start(json!({}), &[]).await;
    tg.api.send_text(ALICE, ALICE as u64, "/showfiles");
    let listing = tg.bot_says(ALICE, "File browser").await;
    assert!(listing.contains("~/.ductor/") && listing.contains("  workspace/"), "{listing}");
    let message = tg.api.bot_messages(ALICE).into_iter().find(|m| m.visible.contains("File browser")).unwrap();
    tg.api.press_button(ALICE, ALICE as u64, message.message_id, "sf:workspace");
    assert!(
        tg.message_shows(ALICE, message.message_id, "~/.ductor/workspace/").await,
        "the browser opens the folder in place"
    );
    tg.api.press_button(ALICE, ALICE as u64, message.message_id, "sf:../..");
    assert!(tg.message_shows(ALICE, message.message_id, "Directory not found").await, "no way out of the home");
    tg.api.press_button(ALICE, ALICE as u64, message.message_id, "sf!workspace");
    assert!(eventually(|| tg.prompts().len() == 1).await);
    assert!(tg.prompts()[0].contains(tg.home.join("workspace").as_str()), "{:?}", tg.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn esc_interrupts_the_running_cli_and_says_so() {
    let tg = start(json!({}), &[("FAKE_CLI_HOLD_MS", "30000")]).await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    assert!(eventually(|| !tg.prompts().is_empty()).await, "the turn runs");
    tg.api.send_text(ALICE, ALICE as u64, "esc");
    tg.bot_says(ALICE, "Interrupted").await;
    let record = std::fs::read_to_string(tg.root.join("record.jsonl")).unwrap();
    let first: Value = serde_json::from_str(record.lines().next().unwrap()).unwrap();
    let pid = nix::unistd::Pid::from_raw(first["pid"].as_i64().unwrap() as i32);
    assert!(eventually(|| nix::sys::signal::kill(pid, None).is_err()).await, "SIGINT ended the fake CLI");
    assert_eq!(tg.prompts().len(), 1, "`esc` is not a prompt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_technical_footer_names_model_tokens_and_cost() {
    let tg = start(json!({"scene": {"technical_footer": true}, "streaming": {"enabled": false}}), &[]).await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    let answer = tg.bot_says(ALICE, "FAKE[text]").await;
    let footer = answer.rsplit("———").next().unwrap_or_default();
    assert!(answer.contains("———"), "a rule before the footer: {answer}");
    assert!(footer.contains("opus |") && footer.contains("tokens") && footer.contains("$0.0007"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reasoning_stream_comes_as_its_own_messages_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let thinking = json!({"type": "assistant", "message": {"id": "m", "type": "message", "role": "assistant",
        "model": "claude-opus-5-5", "content": [{"type": "thinking", "thinking": "The user wants a greeting."}]},
        "session_id": "a8c43301-b916-468d-9254-a466e9799860"});
    let fixtures = custom_fixture(&root, "thinking", &[thinking, assistant_text("Hello there.")], "Hello there.");
    let tg = start(
        json!({"streaming": {"show_reasoning_stream": true, "min_chars": 1}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "thinking")],
    )
    .await;
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "Hello there.").await;
    let shown: Vec<String> = tg.api.bot_messages(ALICE).iter().map(|m| m.visible.clone()).collect();
    assert_eq!(shown[0], "Thinking\n\nThe user wants a greeting.", "{shown:?}");
    assert!(shown[1].contains("Hello there."), "{shown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allow_lists_are_reloaded_without_a_restart() {
    const CAROL: i64 = 9;
    let tg = start(json!({}), &[]).await;
    tg.api.send_text(CAROL, CAROL as u64, "Say hello");
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "FAKE[text]").await;
    assert!(tg.api.bot_messages(CAROL).is_empty(), "Carol is not allowed yet");
    let path = tg.home.join("config/config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["allowed_user_ids"] = json!([ALICE, BOB, CAROL]);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut answered = false;
    while !answered && tokio::time::Instant::now() < deadline {
        tg.api.send_text(CAROL, CAROL as u64, "Say hello");
        answered = tg.api.wait_until(Duration::from_secs(1), |_| !tg.api.bot_messages(CAROL).is_empty()).await;
    }
    assert!(answered, "Carol is answered once the config says so, without a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_token_is_logged_and_retried_while_the_service_runs() {
    let api = FakeBotApi::start("999:OTHER").await.unwrap();
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    let config = json!({"telegram_token": TOKEN, "allowed_user_ids": [ALICE], "interagent_port": port});
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::write(home.join("config/config.json"), config.to_string()).unwrap();
    let base = api.base_url();
    let service = {
        let home = home.clone();
        tokio::task::spawn_blocking(move || Service::start(&home, port, &[("DUCTOR_TELEGRAM_API_BASE", base.as_str())]))
            .await
            .unwrap()
    };
    let log = home.join("logs/agent.log");
    assert!(
        eventually(|| std::fs::read_to_string(&log).unwrap_or_default().contains("Telegram login (getMe")).await,
        "the refusal is logged"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("the bot token was refused; check telegram_token"), "the log says why: {text}");
    let (code, health) = crate::support::binary::get(port, "/interagent/health").unwrap();
    assert_eq!(code, 200, "the service keeps running: {health}");
    let (code, tree) = crate::support::binary::get(port, "/interagent/actors").unwrap();
    assert_eq!(code, 200);
    assert!(tree.contains("\"telegram\""), "{tree}");
    assert!(tree.contains("restarting") || tree.contains("crashed"), "telegram waits for its next try: {tree}");
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn info_shows_the_version_with_link_buttons() {
    let tg = start(json!({}), &[]).await;
    tg.api.send_text(ALICE, ALICE as u64, "/info");
    let info = tg.bot_says(ALICE, "ductor").await;
    assert!(info.contains(env!("CARGO_PKG_VERSION")), "{info}");
    let message = tg.api.bot_messages(ALICE).into_iter().find(|m| m.visible.contains("ductor")).unwrap();
    let rows = message.reply_markup["inline_keyboard"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row[0]["url"].as_str().is_some_and(|u| u.starts_with("https://"))), "{rows:?}");
}

/// Issue "durable inbound": every message is answered or, for the turn that was cut, reported —
/// none twice, each chat in order — across a SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_sigkill_every_message_is_answered_or_reported_once_in_order() {
    sigkill_round(Duration::from_millis(2500), true).await;
}

/// The same with the kill at other instants, from just after the messages arrived to after
/// three turns. The instants fall inside turns: a kill in the milliseconds between Telegram
/// accepting an answer and the inbox noting it delivers that answer once more after the
/// restart (at-least-once, documented), which this test does not aim at.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_five_instants_loses_nothing_and_repeats_nothing() {
    for kill_after_ms in [400, 600, 1500, 2500, 3500] {
        sigkill_round(Duration::from_millis(kill_after_ms), false).await;
    }
}

async fn sigkill_round(kill_after: Duration, check_status: bool) {
    let chats: Vec<i64> = (11..=18).collect();
    let mut tg = start(
        json!({"allowed_user_ids": chats.clone(), "streaming": {"enabled": false}}),
        &[("FAKE_CLI_HOLD_MS", "1000")],
    )
    .await;
    let mut asked: Vec<(i64, i64, String)> = Vec::new();
    for round in 0..4 {
        for chat in &chats {
            let text = format!("chat {chat} message {round}");
            asked.push((*chat, tg.api.send_text(*chat, *chat as u64, &text), text));
        }
    }
    // "Arrived" = taken from Telegram and recorded; what was never taken is Telegram's to keep.
    let inbox_file = tg.home.join("inbox.jsonl");
    let recorded = || std::fs::read_to_string(&inbox_file).unwrap_or_default().matches("\"op\":\"add\"").count();
    assert!(eventually(|| recorded() >= asked.len()).await, "all messages recorded ({})", recorded());
    tokio::time::sleep(kill_after).await;
    tg.service.as_ref().unwrap().signal(nix::sys::signal::Signal::SIGKILL);
    let mut killed = tg.service.take().unwrap();
    tokio::task::spawn_blocking(move || killed.wait_exit(Duration::from_secs(5))).await.unwrap();
    let inbox = std::fs::read_to_string(tg.home.join("inbox.jsonl")).unwrap_or_default();
    assert!(!inbox.trim().is_empty(), "messages waited in the inbox when ductor died");
    if check_status {
        assert_status_shows_inbox(&tg).await;
    }
    tg.launch().await;
    settle_all(&tg, &chats, &asked, kill_after).await;
}

async fn assert_status_shows_inbox(tg: &Tg) {
    let home = tg.home.clone();
    let (_, status, _) =
        tokio::task::spawn_blocking(move || crate::support::binary::run(&home, &["status"])).await.unwrap();
    let waiting: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("Inbox:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(waiting > 0, "ductor status shows the inbox depth: {status}");
}

async fn settle_all(tg: &Tg, chats: &[i64], asked: &[(i64, i64, String)], kill_after: Duration) {
    let settled = |tg: &Tg| {
        asked.iter().all(|(chat, id, text)| {
            let messages = tg.api.bot_messages(*chat);
            messages.iter().any(|m| m.reply_to == Some(*id) && !m.visible.contains("[Message in queue"))
                || messages.iter().any(|m| m.visible.contains("Interrupted Task") && m.visible.contains(text.as_str()))
        })
    };
    let all = tg.api.wait_until(Duration::from_secs(60), |_| settled(tg)).await;
    for chat in chats {
        let messages = tg.api.bot_messages(*chat);
        let ids: Vec<i64> = asked.iter().filter(|(c, _, _)| c == chat).map(|(_, id, _)| *id).collect();
        let answers: Vec<i64> = messages
            .iter()
            .filter(|m| !m.visible.contains("[Message in queue"))
            .filter_map(|m| m.reply_to)
            .filter(|r| ids.contains(r))
            .collect();
        let mut unique = answers.clone();
        unique.dedup();
        assert_eq!(unique, answers, "kill at {kill_after:?}, chat {chat}: nothing answered twice: {answers:?}");
        assert!(answers.windows(2).all(|w| w[0] < w[1]), "chat {chat}: answers in order: {answers:?}");
        let reported = messages.iter().filter(|m| m.visible.contains("Interrupted Task")).count();
        assert!(reported <= 1, "chat {chat}: at most the one cut turn is reported ({reported})");
        assert_eq!(
            answers.len() + reported,
            ids.len(),
            "chat {chat}: every message answered or reported: {:?}",
            messages.iter().map(|m| (m.reply_to, m.visible.chars().take(60).collect::<String>())).collect::<Vec<_>>()
        );
    }
    assert!(all, "kill at {kill_after:?}: every message settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_inbox_entries_are_listed_once_and_not_run_and_a_corrupt_inbox_is_kept_aside() {
    // A limit of 5 minutes: entries 10 minutes old are stale (with the default hour they would run).
    let mut tg = start(json!({"inbox_max_age_minutes": 5}), &[]).await;
    tg.service.take();
    let ten_minutes_ago =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() - 600.0;
    let entry = |id: u64, text: &str| {
        json!({"op": "add", "id": id, "transport": "tg", "chat_id": ALICE, "upstream": format!("tg:{ALICE}:{}", 100 + id),
            "reply_to": 100 + id, "text": text, "prompt": format!("{text}\n\n## BACKGROUND TASKS\nhook"),
            "at": ten_minutes_ago})
        .to_string()
    };
    std::fs::write(
        tg.home.join("inbox.jsonl"),
        format!("{}\n{}\n", entry(1, "first old one"), entry(2, "second old one")),
    )
    .unwrap();
    tg.launch().await;
    let notice = tg.bot_says(ALICE, "arrived while ductor was down").await;
    assert!(notice.contains("first old one") && notice.contains("second old one"), "{notice}");
    assert!(!notice.contains("BACKGROUND TASKS"), "the person's words only: {notice}");
    assert!(
        eventually(|| std::fs::read_to_string(tg.home.join("inbox.jsonl")).unwrap_or_default().contains("done")).await
    );
    assert!(tg.prompts().is_empty(), "no CLI runs for stale messages");
    assert_eq!(tg.api.bot_messages(ALICE).len(), 1, "one notice");

    tg.service.take();
    std::fs::write(tg.home.join("inbox.jsonl"), "this is not json\n").unwrap();
    tg.launch().await;
    let kept = std::fs::read_dir(tg.home.as_std_path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("inbox.jsonl.corrupt-"));
    assert!(kept, "the corrupt inbox is kept aside");
    tg.api.send_text(ALICE, ALICE as u64, "Say hello");
    tg.bot_says(ALICE, "FAKE[text]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_recorded_before_a_crash_is_delivered_without_running_the_message_again() {
    let mut tg = start(json!({}), &[]).await;
    tg.service.take();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let records = [
        json!({"op": "add", "id": 1, "transport": "tg", "chat_id": ALICE, "upstream": format!("tg:{ALICE}:50"),
            "reply_to": 50, "text": "What is 2+2?", "prompt": "What is 2+2?", "at": now}),
        json!({"op": "started", "id": 1}),
        json!({"op": "answered", "id": 1, "text": "It is **4**."}),
    ];
    let journal: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(tg.home.join("inbox.jsonl"), journal).unwrap();
    tg.launch().await;
    let answer = tg.bot_says(ALICE, "It is 4.").await;
    assert_eq!(answer, "It is 4.");
    assert!(tg.prompts().is_empty(), "the message does not run again");
    assert!(
        eventually(|| std::fs::read_to_string(tg.home.join("inbox.jsonl")).unwrap_or_default().contains("done")).await
    );
}

/// A crash after the inbox write and before Telegram was told (next offset): the message is
/// answered once after the restart — from the inbox, or as cut when its turn had started.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_before_the_offset_is_confirmed_answers_the_message_once() {
    let mut tg = start(json!({"streaming": {"enabled": false}}), &[("DUCTOR_TEST_CRASH_BEFORE_CONFIRM", "1")]).await;
    tg.api.send_text(ALICE, ALICE as u64, "the one that crashes");
    let mut crashed = tg.service.take().unwrap();
    let (status, _) = tokio::task::spawn_blocking(move || crashed.wait_exit(Duration::from_secs(20))).await.unwrap();
    assert!(!status.success(), "the process died at the seam");
    let inbox = std::fs::read_to_string(tg.home.join("inbox.jsonl")).unwrap_or_default();
    assert!(inbox.contains("the one that crashes"), "recorded before the crash: {inbox}");
    tg.env.retain(|(k, _)| k != "DUCTOR_TEST_CRASH_BEFORE_CONFIRM");
    tg.launch().await;
    let answers = |tg: &Tg| {
        tg.api
            .bot_messages(ALICE)
            .iter()
            .filter(|m| m.visible.contains("FAKE[") || m.visible.contains("Interrupted"))
            .count()
    };
    assert!(eventually(|| answers(&tg) >= 1).await, "{:?}", tg.api.bot_messages(ALICE));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(answers(&tg), 1, "{:?}", tg.api.bot_messages(ALICE));
}

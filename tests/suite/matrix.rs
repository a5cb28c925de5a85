//! Matrix end to end: the real `ductor` binary with matrix-sdk inside, a real Synapse on
//! loopback (installed from PyPI on first use), a person who is a matrix-sdk client too (so
//! encrypted rooms are tested as people use them), and the fake provider CLIs. Each test is
//! what a person in the room would see (transports spec §3 acceptance checks).

use std::time::Duration;

use crate::support::binary::{Service, free_port};
use crate::support::fake_cli::{assistant_text, assistant_tool, custom_fixture};
use crate::support::mx_person::{Person, eventually};
use crate::support::synapse::{Synapse, unique};
use camino::Utf8PathBuf;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "secret-pass";

/// Which Synapse a test talks to.
enum Server {
    Shared(&'static Synapse),
    Own(Box<Synapse>),
}

impl Server {
    fn get(&self) -> &Synapse {
        match self {
            Self::Shared(s) => s,
            Self::Own(s) => s,
        }
    }
}

struct Mx {
    server: Server,
    bot: String,
    person: Person,
    person_id: String,
    service: Option<Service>,
    home: Utf8PathBuf,
    root: Utf8PathBuf,
    port: u16,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

/// A bot account and a person on Synapse; a home configured for Matrix (password only, the
/// person allowed) with `extra` config keys; the service started with the fake CLIs on PATH.
async fn start(extra: Value, fake_env: &[(&str, &str)]) -> Mx {
    start_on(None, extra, fake_env).await
}

async fn start_on(own: Option<Synapse>, extra: Value, fake_env: &[(&str, &str)]) -> Mx {
    let server = match own {
        Some(own) => Server::Own(Box::new(own)),
        None => Server::Shared(tokio::task::spawn_blocking(crate::support::synapse::shared).await.unwrap()),
    };
    let synapse = server.get();
    let bot = synapse.register(&unique("bot"), PASSWORD);
    let person_name = unique("alice");
    let person_id = synapse.register(&person_name, PASSWORD);
    let person = Person::login(&synapse.url(), &person_name, PASSWORD).await;
    let (dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = crate::support::fake_cli::install(&root);
    let port = free_port();
    let mut config = json!({
        "transport": "matrix",
        "transports": ["matrix"],
        "matrix": {"homeserver": synapse.url(), "user_id": bot, "password": PASSWORD, "allowed_users": [person_id]},
        "interagent_port": port,
        "model": "opus",
    });
    merge(&mut config, &extra);
    crate::support::configure_home(&home, &config);
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())),
        ("FAKE_CLI_RECORD".into(), root.join("record.jsonl").to_string()),
    ];
    env.extend(fake_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut mx = Mx { server, bot, person, person_id, service: None, home, root, port, env, _dir: dir };
    mx.launch().await;
    mx
}

/// Merges `extra` into `config`, objects key by key.
fn merge(config: &mut Value, extra: &Value) {
    match (config, extra) {
        (Value::Object(base), Value::Object(more)) => {
            for (key, value) in more {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

impl Mx {
    async fn launch(&mut self) {
        let (home, port, env) = (self.home.clone(), self.port, self.env.clone());
        let service = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Service::start(&home, port, &env)
        })
        .await
        .unwrap();
        let logged_in = eventually(WAIT, || service.stderr().matches("Logged in to Matrix").count() > 0).await;
        assert!(logged_in, "the bot did not log in: {}", service.stderr());
        self.service = Some(service);
    }

    /// Stops the service (SIGTERM) and waits for it to exit.
    async fn stop(&mut self) {
        let mut service = self.service.take().unwrap();
        service.signal(nix::sys::signal::Signal::SIGTERM);
        tokio::task::spawn_blocking(move || service.wait_exit(Duration::from_secs(10))).await.unwrap();
    }

    fn stderr(&self) -> String {
        self.service.as_ref().map(Service::stderr).unwrap_or_default()
    }

    /// The prompts the fake CLIs were started with, in order.
    fn prompts(&self) -> Vec<String> {
        crate::support::fake_cli::prompts(&self.root)
    }

    /// Waits until the bot said something containing `needle` in `room`; returns the body.
    async fn bot_says(&self, room: &matrix_sdk::Room, needle: &str) -> String {
        match self.person.wait_for(room, &self.bot, needle, WAIT).await {
            Some(seen) => seen.body,
            None => panic!(
                "the bot never said {needle:?}; it said {:?}\n--- ductor ---\n{}",
                self.person.messages(room, &self.bot).iter().map(|s| s.body.clone()).collect::<Vec<_>>(),
                self.stderr()
            ),
        }
    }

    fn credentials(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.home.join("matrix_store/credentials.json")).unwrap())
            .unwrap()
    }

    /// The bot's devices on the homeserver.
    fn devices(&self) -> usize {
        let token = self.credentials()["access_token"].as_str().unwrap().to_owned();
        self.server.get().get("/_matrix/client/v3/devices", &token)["devices"].as_array().unwrap().len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_message_is_answered_and_a_restart_keeps_the_device_and_answers_what_came_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let answer = "Hello from the **agent**";
    let fixtures = custom_fixture(&root, "hello", &[assistant_text(answer)], answer);
    let mut mx = start(
        json!({"streaming": {"enabled": false}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "hello")],
    )
    .await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "Say hello").await;
    mx.bot_says(&room, "Hello from the agent").await;
    let seen = mx.person.messages(&room, &mx.bot);
    let html = seen.iter().find(|s| s.body.contains("Hello from")).unwrap().html.clone().unwrap();
    assert_eq!(html, "Hello from the <strong>agent</strong><br>");
    assert!(mx.prompts()[0].contains("Say hello"), "{:?}", mx.prompts());

    // Check 11: one password login, its credentials kept private.
    let credentials = mx.credentials();
    assert_eq!(credentials["user_id"], json!(mx.bot));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(mx.home.join("matrix_store/credentials.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Check 3: the room has its chat id.
    let map: Value =
        serde_json::from_str(&std::fs::read_to_string(mx.home.join("matrix_store/room_id_map.json")).unwrap()).unwrap();
    let mut ids = ductor::transport::matrix::ingress::RoomIds::default();
    let chat = ids.chat_id(room.room_id().as_str()).0;
    assert_eq!(map[room.room_id().as_str()], json!(chat));
    // The session is kept under the exact unsigned id (about half are above i64::MAX).
    let sessions = std::fs::read_to_string(mx.home.join("sessions.json")).unwrap();
    assert!(sessions.contains(&format!("\"mx:{chat}\"")), "{sessions}");
    let devices = mx.devices();

    // The restart: what arrives while ductor is down is answered after it, before what comes
    // later; the same device comes back without a new login.
    mx.stop().await;
    mx.person.say(&room, "Written while you were away").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    mx.launch().await;
    mx.person.say(&room, "Are you back?").await;
    assert!(eventually(WAIT, || mx.prompts().len() == 3).await, "{:?}\n{}", mx.prompts(), mx.stderr());
    assert!(mx.prompts()[1].contains("Written while you were away"), "{:?}", mx.prompts());
    assert!(mx.prompts()[2].contains("Are you back?"), "{:?}", mx.prompts());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mx.prompts().len(), 3, "each message runs once: {:?}", mx.prompts());
    assert_eq!(mx.credentials(), credentials, "no new login");
    assert_eq!(mx.devices(), devices, "no new device");
    assert!(!mx.stderr().contains("Logged in with the password"), "{}", mx.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_direct_message_is_answered_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let answer = "A secret answer";
    let fixtures = custom_fixture(&root, "secret", &[assistant_text(answer)], answer);
    let mx = start(
        json!({"streaming": {"enabled": false}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "secret")],
    )
    .await;
    let room = mx.person.room_with(&mx.bot, true, true).await;
    mx.person.say(&room, "Tell me the secret").await;
    mx.bot_says(&room, "A secret answer").await;
    assert!(mx.prompts()[0].contains("Tell me the secret"), "the bot read the encrypted message: {:?}", mx.prompts());
    let seen = mx.person.messages(&room, &mx.bot).into_iter().find(|s| s.body.contains("secret")).unwrap();
    let event = room.load_or_fetch_event(&seen.event_id, None).await.unwrap();
    assert!(event.encryption_info().is_some(), "the answer travelled encrypted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stranger_gets_no_answer_and_no_cli_runs() {
    let mx = start(json!({}), &[]).await;
    let synapse = mx.server.get();
    let stranger_name = unique("eve");
    synapse.register(&stranger_name, PASSWORD);
    let stranger = Person::login(&synapse.url(), &stranger_name, PASSWORD).await;
    let room = stranger.room_with(&mx.bot, false, true).await;
    stranger.say(&room, "Run rm -rf for me").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(stranger.messages(&room, &mx.bot).is_empty(), "{:?}", stranger.messages(&room, &mx.bot));
    assert!(mx.prompts().is_empty(), "{:?}", mx.prompts());
    let _ = &mx.person_id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_tool_use_posts_the_text_so_far_and_never_shows_tools() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let events = [assistant_text("Let me look."), assistant_tool("Bash"), assistant_text(" All done.")];
    let fixtures = custom_fixture(&root, "tools", &events, "Let me look. All done.");
    let mx = start(
        json!({}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "tools"), ("FAKE_CLI_LINE_DELAY_MS", "100")],
    )
    .await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "Look around").await;
    mx.bot_says(&room, "All done.").await;
    let bodies: Vec<String> = mx.person.messages(&room, &mx.bot).into_iter().map(|s| s.body).collect();
    assert_eq!(bodies, ["Let me look.", "All done."], "two segments, nothing repeated");
    assert!(bodies.iter().all(|b| !b.contains("[TOOL")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_group_room_only_mentions_and_replies_to_the_bot_are_taken() {
    let mx = start(json!({"group_mention_only": true}), &[]).await;
    let room = mx.person.room_with(&mx.bot, false, false).await;
    mx.person.say(&room, "hello everyone").await;
    mx.person.say(&room, &format!("{} say something", mx.bot)).await;
    assert!(eventually(WAIT, || mx.prompts().len() == 1).await, "{}", mx.stderr());
    assert!(mx.prompts()[0].contains("say something") && !mx.prompts()[0].contains(&mx.bot), "{:?}", mx.prompts());
    assert!(eventually(WAIT, || !mx.person.messages(&room, &mx.bot).is_empty()).await);
    let answer = mx.person.messages(&room, &mx.bot)[0].event_id.clone();
    mx.person.say(&room, "and this without a reply?").await;
    mx.person.reply(&room, &answer, "and this as a reply?").await;
    assert!(eventually(WAIT, || mx.prompts().len() == 2).await, "{:?}", mx.prompts());
    assert!(mx.prompts()[1].contains("and this as a reply?"), "{:?}", mx.prompts());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mx.prompts().len(), 2, "{:?}", mx.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_model_menu_is_picked_by_reaction_once() {
    // A logged-in claude (an API key) so the selector has something to offer.
    let mx = start(json!({}), &[("ANTHROPIC_API_KEY", "test-key")]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "!model").await;
    let menu = mx.person.wait_for(&room, &mx.bot, "1\u{fe0f}\u{20e3}", WAIT).await;
    let menu =
        menu.unwrap_or_else(|| panic!("no numbered menu: {:?}\n{}", mx.person.messages(&room, &mx.bot), mx.stderr()));
    assert!(menu.body.contains("2\u{fe0f}\u{20e3}"), "{}", menu.body);
    let reacted = eventually(WAIT, || {
        mx.person
            .from(&room, &mx.bot)
            .iter()
            .filter(|s| s.reaction && s.relates.as_ref() == Some(&menu.event_id))
            .count()
            >= 2
    })
    .await;
    assert!(reacted, "the bot reacts with the numbers");
    let before = mx.person.messages(&room, &mx.bot).len();
    mx.person.react(&room, &menu.event_id, "2\u{fe0f}\u{20e3}").await;
    assert!(eventually(WAIT, || mx.person.messages(&room, &mx.bot).len() > before).await, "the pick is answered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = mx.person.messages(&room, &mx.bot).len();
    mx.person.react(&room, &menu.event_id, "1\u{fe0f}\u{20e3}").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mx.person.messages(&room, &mx.bot).len(), after, "the set was used up");
    assert!(mx.prompts().is_empty(), "a menu runs no CLI: {:?}", mx.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_typed_number_picks_an_answer_button() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let text = "Shall I go on?\n[button:Yes] [button:No]";
    let fixtures = custom_fixture(&root, "buttons", &[assistant_text(text)], text);
    let mx = start(
        json!({"streaming": {"enabled": false}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "buttons")],
    )
    .await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "Go").await;
    let shown = mx.bot_says(&room, "Shall I go on?").await;
    assert!(shown.contains("1\u{fe0f}\u{20e3} Yes") && shown.contains("2\u{fe0f}\u{20e3} No"), "{shown}");
    assert!(!shown.contains("[button:"), "{shown}");
    mx.person.say(&room, "2").await;
    assert!(eventually(WAIT, || mx.prompts().len() == 2).await, "{:?}", mx.prompts());
    assert!(mx.prompts()[1].starts_with("No"), "{:?}", mx.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_during_a_turn_kills_it_and_drops_the_queue() {
    let mx = start(json!({}), &[("FAKE_CLI_HOLD_MS", "30000")]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "Write the long report").await;
    assert!(eventually(WAIT, || !mx.prompts().is_empty()).await, "the turn runs: {}", mx.stderr());
    mx.person.say(&room, "queued behind it").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    mx.person.say(&room, "!stop").await;
    mx.bot_says(&room, "Stopped").await;
    let pid = {
        let record = std::fs::read_to_string(mx.root.join("record.jsonl")).unwrap();
        let first: Value = serde_json::from_str(record.lines().next().unwrap()).unwrap();
        first["pid"].as_i64().unwrap() as i32
    };
    assert!(
        eventually(WAIT, || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()).await,
        "the CLI is gone"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mx.prompts().len(), 1, "the queued message never ran: {:?}", mx.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invite_to_a_room_that_is_not_allowed_is_refused_and_left() {
    let mx = start(json!({"matrix": {"allowed_rooms": ["!elsewhere:localhost"]}}), &[]).await;
    let room = mx.person.create_room(&mx.bot, false, false).await;
    mx.bot_says(&room, "not on my list").await;
    assert!(mx.person.wait_member(room.room_id(), &mx.bot, "leave").await, "the bot left");
    assert_eq!(mx.person.messages(&room, &mx.bot).len(), 1, "one rejection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_answer_comes_in_several_events_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let long: String = (0..1500).map(|i| format!("line {i:05} with **bold** & <angle> text\n")).collect();
    let fixtures = custom_fixture(&root, "long", &[assistant_text(&long)], &long);
    let mx = start(
        json!({"streaming": {"enabled": false}}),
        &[("FAKE_CLI_FIXTURES", fixtures.as_str()), ("FAKE_CLI_FIXTURE", "long")],
    )
    .await;
    let (_, html) = ductor::transport::matrix::text::to_matrix(&long);
    assert!(html.len() > 60_000, "the HTML is over the old budget ({})", html.len());
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "Write a lot").await;
    mx.bot_says(&room, "line 01499").await;
    let events = mx.person.messages(&room, &mx.bot);
    assert!(events.len() > 1, "{}", events.len());
    assert!(events.iter().all(|e| e.body.len() <= 60_000 && e.html.as_ref().is_some_and(|h| h.len() < 60_000)));
    let numbers: Vec<usize> = events
        .iter()
        .flat_map(|e| e.body.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|l| l.strip_prefix("line ").and_then(|r| r.get(..5)).and_then(|n| n.parse().ok()))
        .collect();
    assert_eq!(numbers, (0..1500).collect::<Vec<_>>(), "everything, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_go_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let mx = start(
        json!({"streaming": {"enabled": false}}),
        &[("FAKE_CLI_FIXTURES", root.join("fixtures").as_str()), ("FAKE_CLI_FIXTURE", "files")],
    )
    .await;
    let report = mx.home.join("workspace/output_to_user/report.txt");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    std::fs::write(&report, "quarterly numbers").unwrap();
    let text = format!("Here it is <file:{report}>");
    custom_fixture(&root, "files", &[assistant_text(&text)], &text);
    let room = mx.person.room_with(&mx.bot, true, true).await;
    mx.person.send_file(&room, "notes.txt", "text/plain", b"remember the milk".to_vec()).await;
    assert!(eventually(WAIT, || !mx.prompts().is_empty()).await, "{}", mx.stderr());
    let prompt = mx.prompts()[0].clone();
    assert!(
        prompt.contains("[INCOMING FILE]") && prompt.contains("Matrix") && prompt.contains("notes.txt"),
        "{prompt}"
    );
    let saved = crate::support::mx_person::files_under(&mx.home.join("workspace/matrix_files"));
    let note = saved.iter().find(|p| p.ends_with("notes.txt")).expect("saved");
    assert_eq!(std::fs::read_to_string(note).unwrap(), "remember the milk", "decrypted and saved");
    mx.bot_says(&room, "Here it is").await;
    assert!(
        eventually(WAIT, || mx
            .person
            .messages(&room, &mx.bot)
            .iter()
            .any(|s| s.msgtype == "m.file" && s.body == "report.txt"))
        .await,
        "{:?}",
        mx.person.messages(&room, &mx.bot)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cron_result_sent_while_synapse_is_down_arrives_once_when_it_is_back() {
    let own = tokio::task::spawn_blocking(Synapse::start).await.unwrap();
    let mut mx = start_on(Some(own), json!({}), &[]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "hi").await;
    assert!(eventually(WAIT, || !mx.person.messages(&room, &mx.bot).is_empty()).await, "{}", mx.stderr());
    let mut ids = ductor::transport::matrix::ingress::RoomIds::default();
    let chat = ids.chat_id(room.room_id().as_str()).0;
    let Server::Own(synapse) = &mut mx.server else { unreachable!() };
    let down = std::time::Instant::now();
    synapse.stop();
    let body = json!({"origin": "cron", "chat_id": chat, "transport": "mx", "result_text": "nightly backup done",
        "status": "success", "metadata": {"title": "Backup"}});
    let (code, answer) =
        crate::support::binary::request(mx.port, "POST", "/interagent/envelopes", Some(&body.to_string())).unwrap();
    assert_eq!(code, 200, "{answer}");
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down.elapsed())).await;
    let Server::Own(synapse) = &mut mx.server else { unreachable!() };
    tokio::task::block_in_place(|| synapse.resume());
    let arrived = mx.person.wait_for(&room, &mx.bot, "nightly backup done", Duration::from_secs(90)).await;
    assert!(arrived.is_some(), "{}", mx.stderr());
    assert!(arrived.unwrap().body.starts_with("TASK: Backup"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let copies = mx.person.messages(&room, &mx.bot).iter().filter(|s| s.body.contains("nightly backup")).count();
    assert_eq!(copies, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_after_the_inbox_write_before_the_sync_token_answers_the_message_once() {
    let mut mx = start(json!({"streaming": {"enabled": false}}), &[]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "first").await;
    assert!(eventually(WAIT, || !mx.person.messages(&room, &mx.bot).is_empty()).await, "{}", mx.stderr());
    mx.stop().await;
    let normal_env = mx.env.clone();
    mx.env.push(("DUCTOR_TEST_CRASH_BEFORE_CONFIRM".into(), "1".into()));
    mx.launch().await;
    mx.person.say(&room, "the one that crashes").await;
    let mut crashed = mx.service.take().unwrap();
    let (status, _) = tokio::task::spawn_blocking(move || crashed.wait_exit(Duration::from_secs(30))).await.unwrap();
    assert!(!status.success(), "the process died at the seam");
    mx.env = normal_env;
    mx.launch().await;
    // Answered by the replayed inbox entry, or — when its turn had started — reported as cut;
    // never both, never twice.
    let answered = |mx: &Mx| {
        mx.person
            .messages(&room, &mx.bot)
            .iter()
            .filter(|s| s.body.contains("FAKE[") || s.body.contains("Interrupted"))
            .count()
    };
    assert!(eventually(WAIT, || answered(&mx) >= 2).await, "{:?}\n{}", mx.person.messages(&room, &mx.bot), mx.stderr());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(answered(&mx), 2, "{:?}", mx.person.messages(&room, &mx.bot));
    let runs = mx.prompts().iter().filter(|p| p.contains("the one that crashes")).count();
    assert!(runs <= 2, "{:?}", mx.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_starts_a_named_background_session_whose_result_comes_to_the_room() {
    let mx = start(json!({}), &[("FAKE_CLI_HOLD_MS", "300")]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "!session Say hello").await;
    let started = mx.bot_says(&room, "started").await;
    let name =
        started.split_whitespace().nth(1).unwrap_or_default().trim_matches(|c: char| !c.is_alphanumeric()).to_owned();
    let result = mx.bot_says(&room, "Complete").await;
    assert!(result.contains("FAKE[text]"), "{result}");
    assert!(result.contains(&name), "{name} / {result}");
    let named: Value =
        serde_json::from_str(&std::fs::read_to_string(mx.home.join("named_sessions.json")).unwrap()).unwrap();
    assert_eq!(named["sessions"][0]["name"], json!(name), "a real named session, not a turn: {named}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_matrix_login_names_user_and_server_and_telegram_keeps_working() {
    let synapse = tokio::task::spawn_blocking(crate::support::synapse::shared).await.unwrap();
    let bot = synapse.register(&unique("bot"), PASSWORD);
    let api = crate::support::fake_bot_api::FakeBotApi::start("123456:TEST-TOKEN").await.unwrap();
    let (_dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = crate::support::fake_cli::install(&root);
    let port = free_port();
    let config = json!({
        "transports": ["telegram", "matrix"],
        "telegram_token": "123456:TEST-TOKEN",
        "allowed_user_ids": [7],
        "matrix": {"homeserver": synapse.url(), "user_id": bot, "password": "wrong", "allowed_users": ["@x:localhost"]},
        "interagent_port": port,
        "model": "opus",
    });
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::write(home.join("config/config.json"), config.to_string()).unwrap();
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    let record = root.join("record.jsonl").to_string();
    let base = api.base_url();
    let service = tokio::task::spawn_blocking(move || {
        Service::start(
            &home,
            port,
            &[("DUCTOR_TELEGRAM_API_BASE", &base), ("PATH", &path), ("FAKE_CLI_RECORD", &record)],
        )
    })
    .await
    .unwrap();
    let named = format!("Matrix login of {bot} at {} failed", synapse.url());
    assert!(eventually(WAIT, || service.stderr().contains(&named)).await, "{}", service.stderr());
    api.send_text(7, 7, "Say hello");
    let answered = api.wait_until(WAIT, |_| !api.bot_messages(7).is_empty()).await;
    assert!(answered, "Telegram answers while Matrix cannot log in: {}", service.stderr());
    let (_, tree) = crate::support::binary::get(port, "/interagent/actors").unwrap();
    assert!(tree.contains("\"matrix\""), "{tree}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_comes_back_and_says_so_in_the_room() {
    let mut mx = start(json!({}), &[]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "!restart").await;
    mx.bot_says(&room, "Restarting").await;
    // Exit 42; in the foreground ductor starts itself again and reports back in this room.
    mx.bot_says(&room, "Restart complete").await;
    assert!(!mx.home.join("restart-sentinel.json").exists(), "the sentinel is consumed");
    mx.service.take();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joined_room_gets_the_join_notification_pinned() {
    let mx = start(json!({}), &[]).await;
    std::fs::write(mx.home.join("workspace/JOIN_NOTIFICATION.md"), "**Welcome!** Ask me anything.").unwrap();
    // The bot may pin only where it has the power to (a moderator here).
    let room = mx.person.create_room_as_moderator(&mx.bot).await;
    let notice = mx.person.wait_for(&room, &mx.bot, "Welcome!", WAIT).await.expect("the join notification");
    let pinned = eventually(WAIT, || {
        let token = mx.credentials()["access_token"].as_str().unwrap().to_owned();
        let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.pinned_events/", room.room_id());
        crate::support::synapse::request(mx.server.get().port, "GET", &path, Some(&token), None)
            .is_some_and(|(code, body)| code == 200 && body["pinned"][0] == json!(notice.event_id.as_str()))
    })
    .await;
    assert!(pinned, "the notification is pinned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broadcasts_and_cron_results_for_unknown_rooms_reach_the_last_active_room() {
    let mx = start(json!({}), &[]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "hi").await;
    assert!(eventually(WAIT, || !mx.person.messages(&room, &mx.bot).is_empty()).await, "{}", mx.stderr());
    let post = |body: Value| {
        let (code, answer) =
            crate::support::binary::request(mx.port, "POST", "/interagent/envelopes", Some(&body.to_string())).unwrap();
        assert_eq!(code, 200, "{answer}");
    };
    post(json!({"origin": "cron", "delivery": "broadcast", "transport": "mx", "result_text": "to every room",
        "status": "success", "metadata": {"title": "All"}}));
    mx.bot_says(&room, "to every room").await;
    post(json!({"origin": "cron", "chat_id": 12345u64, "transport": "mx", "result_text": "for a room I do not know",
        "status": "success", "metadata": {"title": "Lost"}}));
    mx.bot_says(&room, "for a room I do not know").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn help_lists_the_commands_with_their_bang() {
    let mx = start(json!({}), &[]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "!help").await;
    let help = mx.bot_says(&room, "ductor commands").await;
    for command in ["!new — Start a new session", "!stop_all — Stop every agent", "!agents", "!showfiles", "!restart"]
    {
        assert!(help.contains(command), "{command} missing: {help}");
    }
    assert!(mx.prompts().is_empty(), "answered by the transport itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_right_after_the_answer_neither_repeats_it_nor_runs_the_message_again() {
    let mut mx = start(json!({"streaming": {"enabled": false}}), &[("DUCTOR_TEST_CRASH_AFTER_ANSWER", "1")]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "Say hello").await;
    let mut crashed = mx.service.take().unwrap();
    let (status, _) = tokio::task::spawn_blocking(move || crashed.wait_exit(Duration::from_secs(30))).await.unwrap();
    assert!(!status.success(), "the process died at the seam");
    mx.env.retain(|(k, _)| k != "DUCTOR_TEST_CRASH_AFTER_ANSWER");
    mx.launch().await;
    // The recorded answer is sent again at start with the same transaction ids: the homeserver
    // keeps the one it has.
    let inbox = mx.home.join("inbox.jsonl");
    let settled =
        eventually(WAIT, || std::fs::read_to_string(&inbox).unwrap_or_default().contains("\"op\":\"done\"")).await;
    assert!(settled, "the entry is done: {}", std::fs::read_to_string(&inbox).unwrap_or_default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answers: Vec<String> = mx.person.messages(&room, &mx.bot).into_iter().map(|s| s.body).collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].contains("FAKE[text]"), "{answers:?}");
    assert_eq!(mx.prompts().len(), 1, "not run again: {:?}", mx.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_both_transports_each_cron_result_goes_only_to_its_own() {
    let api = crate::support::fake_bot_api::FakeBotApi::start("123456:TEST-TOKEN").await.unwrap();
    let mut mx = start(
        json!({"transports": ["telegram", "matrix"], "telegram_token": "123456:TEST-TOKEN", "allowed_user_ids": [7],
            "scene": {"seen_reaction": true}}),
        &[],
    )
    .await;
    mx.stop().await;
    mx.env.push(("DUCTOR_TELEGRAM_API_BASE".into(), api.base_url()));
    mx.launch().await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    let said = mx.person.say(&room, "hi from Matrix").await;
    assert!(eventually(WAIT, || !mx.person.messages(&room, &mx.bot).is_empty()).await, "{}", mx.stderr());
    // Seen: the bot's read marker is on the message.
    let token = mx.credentials()["access_token"].as_str().unwrap().to_owned();
    let marker = format!("/_matrix/client/v3/user/{}/rooms/{}/account_data/m.fully_read", mx.bot, room.room_id());
    let read = eventually(WAIT, || {
        crate::support::synapse::request(mx.server.get().port, "GET", &marker, Some(&token), None)
            .is_some_and(|(code, body)| code == 200 && body["event_id"] == json!(said.as_str()))
    })
    .await;
    assert!(read, "the read marker is set");
    let mut ids = ductor::transport::matrix::ingress::RoomIds::default();
    let chat = ids.chat_id(room.room_id().as_str()).0;
    let post = |body: Value| {
        let (code, answer) =
            crate::support::binary::request(mx.port, "POST", "/interagent/envelopes", Some(&body.to_string())).unwrap();
        assert_eq!(code, 200, "{answer}");
    };
    post(json!({"origin": "cron", "chat_id": chat, "transport": "mx", "result_text": "for Matrix only",
        "status": "success", "metadata": {"title": "M"}}));
    post(json!({"origin": "cron", "chat_id": 7, "transport": "tg", "result_text": "for Telegram only",
        "status": "success", "metadata": {"title": "T"}}));
    mx.bot_says(&room, "for Matrix only").await;
    let telegram =
        api.wait_until(WAIT, |_| api.bot_messages(7).iter().any(|m| m.visible.contains("for Telegram only"))).await;
    assert!(telegram, "{}", mx.stderr());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!api.bot_messages(7).iter().any(|m| m.visible.contains("for Matrix only")));
    assert!(!mx.person.messages(&room, &mx.bot).iter().any(|s| s.body.contains("for Telegram only")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_sync_token_is_moved_aside_and_the_bot_keeps_answering() {
    let mut mx = start(json!({}), &[]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.person.say(&room, "hi").await;
    assert!(eventually(WAIT, || !mx.person.messages(&room, &mx.bot).is_empty()).await, "{}", mx.stderr());
    mx.stop().await;
    std::fs::write(mx.home.join("matrix_store/next_batch"), "not-a-token\n").unwrap();
    mx.launch().await;
    mx.person.say(&room, "still there?").await;
    assert!(eventually(WAIT, || mx.prompts().iter().any(|p| p.contains("still there?"))).await, "{}", mx.stderr());
    let kept = std::fs::read_dir(mx.home.join("matrix_store"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("next_batch.corrupt-"));
    assert!(kept, "the refused token is kept aside");
}

/// Messages sent while ductor is stopped — in a direct room and in an encrypted one — are
/// answered when it starts (the encrypted one decrypted); a first start on a fresh store
/// skips the history instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_sent_while_stopped_are_answered_at_start_and_a_fresh_store_skips_history() {
    let mut mx = start(json!({"streaming": {"enabled": false}}), &[]).await;
    let plain = mx.person.room_with(&mx.bot, false, true).await;
    let secret = mx.person.room_with(&mx.bot, true, true).await;
    mx.person.say(&secret, "Hello in the encrypted room").await;
    mx.bot_says(&secret, "FAKE[").await;
    let answers = |mx: &Mx, room: &matrix_sdk::Room| {
        mx.person.messages(room, &mx.bot).iter().filter(|m| m.body.contains("FAKE[")).count()
    };
    let ran = |mx: &Mx, text: &str| mx.prompts().iter().position(|p| p.contains(text));

    mx.stop().await;
    mx.person.say(&plain, "First while you were away").await;
    mx.person.say(&plain, "Second while you were away").await;
    mx.person.say(&secret, "Encrypted while you were away").await;
    mx.launch().await;
    let all = eventually(WAIT, || answers(&mx, &plain) == 2 && answers(&mx, &secret) == 2).await;
    assert!(all, "all three answered: {:?}\n{}", mx.prompts(), mx.stderr());
    let (first, second) = (ran(&mx, "First while you were away"), ran(&mx, "Second while you were away"));
    assert!(first.is_some() && first < second, "in their order: {:?}", mx.prompts());
    assert!(ran(&mx, "Encrypted while you were away").is_some(), "decrypted: {:?}", mx.prompts());

    // A fresh store (a first start ever): history is skipped, new messages are answered.
    mx.stop().await;
    mx.person.say(&plain, "Written before the fresh start").await;
    std::fs::remove_dir_all(mx.home.join("matrix_store")).unwrap();
    mx.launch().await;
    mx.person.say(&plain, "After the fresh start").await;
    assert!(eventually(WAIT, || answers(&mx, &plain) == 3).await, "{:?}\n{}", mx.prompts(), mx.stderr());
    assert!(ran(&mx, "After the fresh start").is_some(), "{:?}", mx.prompts());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(ran(&mx, "Written before the fresh start").is_none(), "history is skipped: {:?}", mx.prompts());
    assert_eq!(answers(&mx, &plain), 3, "nothing else answered");
}

/// A homeserver that is down when ductor starts is waited for (`reconnecting`, no crash), and
/// what the person sent before is answered once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_homeserver_down_at_start_is_waited_for_and_what_was_sent_before_is_answered() {
    let own = tokio::task::spawn_blocking(Synapse::start).await.unwrap();
    let mut mx = start_on(Some(own), json!({"streaming": {"enabled": false}}), &[]).await;
    let room = mx.person.room_with(&mx.bot, false, true).await;
    mx.stop().await;
    mx.person.say(&room, "Sent before the outage").await;
    let Server::Own(synapse) = &mut mx.server else { unreachable!() };
    tokio::task::block_in_place(|| synapse.stop());
    let (home, port, env) = (mx.home.clone(), mx.port, mx.env.clone());
    let service = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Service::start(&home, port, &env)
    })
    .await
    .unwrap();
    mx.service = Some(service);
    let reconnecting = eventually(WAIT, || {
        let out = crate::support::binary::run(&mx.home, &["status"]).1;
        out.lines().any(|l| l.contains("matrix (") && l.contains("reconnecting") && !l.contains("restarts"))
    })
    .await;
    assert!(
        reconnecting,
        "matrix reconnects without crashing: {}",
        crate::support::binary::run(&mx.home, &["status"]).1
    );
    let Server::Own(synapse) = &mut mx.server else { unreachable!() };
    tokio::task::block_in_place(|| synapse.resume());
    let answered = eventually(Duration::from_secs(90), || {
        mx.prompts().iter().any(|p| p.contains("Sent before the outage"))
            && mx.person.messages(&room, &mx.bot).iter().any(|m| m.body.contains("FAKE["))
    })
    .await;
    assert!(answered, "answered once the homeserver is back: {:?}\n{}", mx.prompts(), mx.stderr());
}

//! Matrix end to end: the real `ductor` binary with matrix-sdk inside, a real Synapse on
//! loopback (installed from PyPI on first use), a person who is a matrix-sdk client too (so
//! encrypted rooms are tested as people use them), and the fake provider CLIs. Each test is
//! what a person in the room would see (transports spec §3 acceptance checks).

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![recursion_limit = "256"]

#[path = "support/mx_person.rs"]
mod mx_person;
mod support;
#[path = "support/synapse.rs"]
mod synapse;

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use mx_person::{Person, eventually};
use serde_json::{Value, json};
use support::binary::{Service, free_port};
use support::fake_cli::{assistant_text, assistant_tool, custom_fixture};
use synapse::{Synapse, unique};

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
        None => Server::Shared(tokio::task::spawn_blocking(synapse::shared).await.unwrap()),
    };
    let synapse = server.get();
    let bot = synapse.register(&unique("bot"), PASSWORD);
    let person_name = unique("alice");
    let person_id = synapse.register(&person_name, PASSWORD);
    let person = Person::login(&synapse.url(), &person_name, PASSWORD).await;
    let (dir, home) = support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = support::fake_cli::install(&root);
    let port = free_port();
    let mut config = json!({
        "transport": "matrix",
        "transports": ["matrix"],
        "matrix": {"homeserver": synapse.url(), "user_id": bot, "password": PASSWORD, "allowed_users": [person_id]},
        "interagent_port": port,
        "model": "opus",
    });
    merge(&mut config, &extra);
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::write(home.join("config/config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
    // The recorded argv has a system prompt: the memory file gives one.
    std::fs::create_dir_all(home.join("workspace/memory_system")).unwrap();
    std::fs::write(
        home.join("workspace/memory_system/MAINMEMORY.md"),
        "# MAINMEMORY\nThe user likes short answers. (fake memory for tests)",
    )
    .unwrap();
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

    async fn kill(&mut self) {
        let mut service = self.service.take().unwrap();
        service.signal(nix::sys::signal::Signal::SIGKILL);
        tokio::task::spawn_blocking(move || service.wait_exit(Duration::from_secs(10))).await.unwrap();
    }

    fn stderr(&self) -> String {
        self.service.as_ref().map(Service::stderr).unwrap_or_default()
    }

    /// The prompts the fake CLIs were started with, in order.
    fn prompts(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("record.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["event"] == "start")
            .map(|r| r["argv"].as_array().unwrap().last().unwrap().as_str().unwrap().to_owned())
            .collect()
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

fn fixture(root: &Utf8Path, name: &str, events: &[Value], result: &str) -> Utf8PathBuf {
    custom_fixture(root, name, events, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_message_is_answered_and_a_restart_keeps_the_device_and_skips_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let answer = "Hello from the **agent**";
    let fixtures = fixture(&root, "hello", &[assistant_text(answer)], answer);
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
    let mut ids = ductor::core::matrix_ingress::RoomIds::default();
    assert_eq!(map[room.room_id().as_str()], json!(ids.chat_id(room.room_id().as_str()).0));
    let devices = mx.devices();

    // Check 2 and the restart: what arrives while ductor is down is not answered; the same
    // device comes back without a new login.
    mx.stop().await;
    mx.person.say(&room, "Written while you were away").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    mx.launch().await;
    mx.person.say(&room, "Are you back?").await;
    assert!(eventually(WAIT, || mx.prompts().len() == 2).await, "{:?}\n{}", mx.prompts(), mx.stderr());
    assert!(mx.prompts()[1].contains("Are you back?"), "{:?}", mx.prompts());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mx.prompts().len(), 2, "the backlog is not answered: {:?}", mx.prompts());
    assert_eq!(mx.credentials(), credentials, "no new login");
    assert_eq!(mx.devices(), devices, "no new device");
    assert!(!mx.stderr().contains("Logged in with the password"), "{}", mx.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_direct_message_is_answered_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let answer = "A secret answer";
    let fixtures = fixture(&root, "secret", &[assistant_text(answer)], answer);
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
    let fixtures = fixture(&root, "tools", &events, "Let me look. All done.");
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

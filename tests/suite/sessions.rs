//! Chats through the Orchestrator with real child processes (the fake CLIs): per-chat FIFO under
//! load, parallel chats, `/stop` and `/interrupt` acting at once, resume ids from
//! `sessions.json`, `/new`, `.env` secrets reaching the CLI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use ductor::chat::orchestrator::{Orchestrator, OrchestratorArgs, OrchestratorHandle};
use ductor::chat::session::SessionOutput;
use ductor::core::config::Config;
use ductor::core::health::ActorKind;
use ductor::core::session_key::SessionKey;
use ductor::core::state::sessions::Sessions;
use ductor::runtime::bus::{Bus, BusArgs, BusHandle};
use ductor::runtime::health_board::HealthBoard;
use ductor::store::atomic::Loaded;
use ductor::store::paths::DuctorPaths;
use ductor::store::state_files::StateFile;
use ractor::Actor;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

struct Chat {
    _dir: tempfile::TempDir,
    paths: DuctorPaths,
    record: Utf8PathBuf,
    handle: OrchestratorHandle,
    board: HealthBoard,
}

/// An orchestrator on a temp home whose `.env` configures the fake CLI.
async fn chat(fake_env: &[(&str, &str)]) -> Chat {
    chat_with(fake_env, Config { model: "opus".into(), ..Config::default() }, None).await
}

/// The same with a config and a `sessions.json` written before the orchestrator starts.
async fn chat_with(fake_env: &[(&str, &str)], config: Config, sessions: Option<Value>) -> Chat {
    let (dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = crate::support::fake_cli::install(&root);
    let paths = DuctorPaths::at(home.clone());
    paths.ensure_dirs().unwrap();
    let record = root.join("record.jsonl");
    let mut dotenv = format!("FAKE_CLI_RECORD={record}\nMY_SECRET=\"from # dotenv\"\n");
    for (k, v) in fake_env {
        dotenv.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(home.join(".env"), dotenv).unwrap();
    std::fs::write(paths.main_memory(), "# MAINMEMORY\nThe user likes short answers.").unwrap();
    if let Some(sessions) = sessions {
        std::fs::write(paths.sessions(), serde_json::to_string_pretty(&sessions).unwrap()).unwrap();
    }
    let board = HealthBoard::new();
    let handle = spawn_orchestrator_with(&paths, &bin, &board, None, config).await.1;
    Chat { _dir: dir, paths, record, handle, board }
}

/// An Orchestrator on `paths` finding the fake CLIs in `bin`.
async fn spawn_orchestrator(
    paths: &DuctorPaths,
    bin: &Utf8PathBuf,
    board: &HealthBoard,
    bus: Option<ductor::runtime::bus::BusHandle>,
) -> (ractor::ActorRef<ductor::chat::orchestrator::OrchestratorMsg>, OrchestratorHandle) {
    spawn_orchestrator_with(paths, bin, board, bus, Config { model: "opus".into(), ..Config::default() }).await
}

async fn spawn_orchestrator_with(
    paths: &DuctorPaths,
    bin: &Utf8PathBuf,
    board: &HealthBoard,
    bus: Option<ductor::runtime::bus::BusHandle>,
    config: Config,
) -> (ractor::ActorRef<ductor::chat::orchestrator::OrchestratorMsg>, OrchestratorHandle) {
    board.register("root/main/orchestrator", "orchestrator", ActorKind::Observer);
    let handle = OrchestratorHandle::new();
    let args = OrchestratorArgs {
        agent: "main".into(),
        paths: paths.clone(),
        config: Arc::new(config),
        board_path: "root/main/orchestrator".into(),
        board: board.clone(),
        cli_path: vec![bin.clone()],
        bus,
        catalog: ductor::chat::model_catalog::ModelCatalog::default(),
        cli_env: Vec::new(),
        agent_control: None,
    };
    let (orchestrator, _) = Actor::spawn(None, Orchestrator, args).await.unwrap();
    handle.slot().set(orchestrator.clone());
    (orchestrator, handle)
}

impl Chat {
    fn records(&self, event: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event"] == event)
            .collect()
    }

    fn prompts(&self) -> Vec<String> {
        self.records("start")
            .iter()
            .map(|r| r["argv"].as_array().unwrap().last().unwrap().as_str().unwrap().to_owned())
            .collect()
    }
}

/// Waits for the last output of a message.
async fn last(mut outputs: UnboundedReceiver<SessionOutput>) -> Vec<SessionOutput> {
    let mut all = Vec::new();
    while let Some(output) = tokio::time::timeout(Duration::from_secs(30), outputs.recv()).await.expect("outputs end") {
        all.push(output);
    }
    all
}

fn finished_text(outputs: &[SessionOutput]) -> Option<String> {
    outputs.iter().find_map(|o| if let SessionOutput::Finished { text, .. } = o { Some(text.clone()) } else { None })
}

fn notice(outputs: &[SessionOutput]) -> String {
    outputs
        .iter()
        .find_map(|o| if let SessionOutput::Notice(text) = o { Some(text.clone()) } else { None })
        .unwrap_or_default()
}

fn key(chat: i64) -> SessionKey {
    SessionKey::new("tg", chat, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_messages_to_one_chat_run_one_at_a_time_in_order() {
    let c = chat(&[("FAKE_CLI_LINE_DELAY_MS", "2")]).await;
    let receivers: Vec<_> = (0..50).map(|i| c.handle.message(key(1001), &format!("message {i}"))).collect();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, rx) in receivers.into_iter().enumerate() {
        let order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            let outputs = last(rx).await;
            assert!(finished_text(&outputs).is_some_and(|t| t.starts_with("FAKE[")), "message {i}: {outputs:?}");
            if i > 0 {
                assert!(matches!(outputs[0], SessionOutput::Queued { .. }), "message {i} waited: {:?}", outputs[0]);
            }
            order.lock().unwrap().push(i);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..50).collect::<Vec<_>>(), "answers in the order sent");
    let expected: Vec<String> = (0..50).map(|i| format!("message {i}")).collect();
    let prompts = c.prompts();
    assert_eq!(prompts.len(), 50);
    for (i, p) in prompts.iter().enumerate() {
        assert!(p.starts_with(&expected[i]), "CLI {i} got {p:?}");
    }
    let starts = c.records("start");
    let exits = c.records("exit");
    for i in 1..50 {
        assert!(starts[i]["t"].as_u64() >= exits[i - 1]["t"].as_u64(), "turn {i} started before turn {} ended", i - 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_chats_run_side_by_side_each_in_order() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "100")]).await;
    let mut receivers = Vec::new();
    for round in 0..5 {
        for chat_id in 0..20 {
            receivers.push((
                chat_id,
                round,
                c.handle.message(key(2000 + chat_id), &format!("chat {chat_id} round {round}")),
            ));
        }
    }
    let started = Instant::now();
    for (chat_id, round, rx) in receivers {
        let outputs = last(rx).await;
        assert!(finished_text(&outputs).is_some(), "chat {chat_id} round {round}: {outputs:?}");
    }
    let starts = c.records("start");
    assert_eq!(starts.len(), 100);
    for chat_id in 0..20 {
        let rounds: Vec<String> = starts
            .iter()
            .filter_map(|r| r["argv"].as_array().unwrap().last().unwrap().as_str().map(str::to_owned))
            .filter(|p| p.starts_with(&format!("chat {chat_id} round")))
            .collect();
        let expected: Vec<String> = (0..5).map(|r| format!("chat {chat_id} round {r}")).collect();
        assert_eq!(rounds.iter().map(|p| p.lines().next().unwrap().to_owned()).collect::<Vec<_>>(), expected);
    }
    // 100 turns of ≥100 ms each in well under 100 × 100 ms: chats ran in parallel.
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_the_running_turn_at_once_discards_the_queue_and_the_next_message_runs() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "60000"), ("FAKE_CLI_GRANDCHILD", "1")]).await;
    let first = c.handle.message(key(7), "long job");
    let queued = c.handle.message(key(7), "waiting job");
    for _ in 0..200 {
        if !c.records("start").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = c.records("start")[0]["pid"].as_i64().unwrap() as i32;
    let grandchild = c.records("start")[0]["grandchild"].as_i64().unwrap() as i32;
    let started = Instant::now();
    let stop = last(c.handle.message(key(7), "/stop")).await;
    assert!(notice(&stop).contains("Stopped") && notice(&stop).contains("1 queued"), "{stop:?}");
    let first = last(first).await;
    assert!(started.elapsed() < Duration::from_secs(3), "stopped in {:?}", started.elapsed());
    assert!(first.contains(&SessionOutput::Stopped), "{first:?}");
    assert!(last(queued).await.contains(&SessionOutput::Discarded));
    assert!(!ductor::store::pid_lock::is_alive(pid));
    for _ in 0..100 {
        if !ductor::store::pid_lock::is_alive(grandchild) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!ductor::store::pid_lock::is_alive(grandchild), "the whole process group is gone");
    assert_eq!(c.records("start").len(), 1, "the discarded message never ran");

    // A fresh turn afterwards (the hold applies again, so stop it too, but it must start).
    let next = c.handle.message(key(7), "after stop");
    for _ in 0..200 {
        if c.records("start").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.prompts().last().unwrap().lines().next(), Some("after stop"));
    last(c.handle.message(key(7), "/stop")).await;
    assert!(last(next).await.contains(&SessionOutput::Stopped));
    assert!(notice(&last(c.handle.message(key(7), "/stop")).await).contains("Nothing is running"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_reaches_every_chat() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "60000")]).await;
    let a = c.handle.message(key(1), "a");
    let b = c.handle.message(key(2), "b");
    for _ in 0..200 {
        if c.records("start").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = last(c.handle.message(key(3), "stop all")).await;
    assert!(notice(&reply).contains("2 running turn(s) in 2 chat(s)"), "{reply:?}");
    assert!(last(a).await.contains(&SessionOutput::Stopped));
    assert!(last(b).await.contains(&SessionOutput::Stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_uses_the_stored_session_id_and_new_starts_over() {
    let c = chat(&[]).await;
    let first = last(c.handle.message(key(1001), "Say hello")).await;
    assert!(finished_text(&first).unwrap().starts_with("FAKE[text]"));
    let Loaded::Found(sessions) = Sessions::load(&c.paths) else { panic!("sessions.json written") };
    let bucket = sessions.get(&key(1001)).unwrap().bucket("claude").unwrap().clone();
    assert_eq!((bucket.session_id.as_str(), bucket.message_count), ("a8c43301-b916-468d-9254-a466e9799860", 1));

    let second = last(c.handle.message(key(1001), "And what did I ask you before?")).await;
    assert!(finished_text(&second).unwrap().starts_with("FAKE[resume]"), "{second:?}");
    let argv = c.records("start")[1]["argv"].clone();
    let argv: Vec<&str> = argv.as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let resume = argv.iter().position(|a| *a == "--resume").expect("--resume passed");
    assert_eq!(argv[resume + 1], "a8c43301-b916-468d-9254-a466e9799860");
    assert!(!argv.contains(&"--append-system-prompt"), "MAINMEMORY only on a new session");
    let first_argv = c.records("start")[0]["argv"].clone();
    assert!(
        first_argv.as_array().unwrap().iter().any(|a| a.as_str().unwrap().contains("The user likes short answers"))
    );

    let new = last(c.handle.message(key(1001), "/new")).await;
    assert!(notice(&new).contains("New session"), "{new:?}");
    last(c.handle.message(key(1001), "Say hello")).await;
    let third = c.records("start")[2]["argv"].clone();
    assert!(!third.as_array().unwrap().iter().any(|a| a == "--resume"), "fresh after /new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_gets_ductor_variables_and_dotenv_secrets() {
    let c = chat(&[]).await;
    last(c.handle.message(SessionKey::new("tg", -100_123i64, Some(7)), "Say hello")).await;
    let env = c.records("start")[0]["env"].clone();
    assert_eq!(env["DUCTOR_CHAT_ID"], "-100123");
    assert_eq!(env["DUCTOR_TOPIC_ID"], "7");
    assert_eq!(env["DUCTOR_TRANSPORT"], "tg");
    assert_eq!(env["DUCTOR_AGENT_NAME"], "main");
    assert_eq!(env["DUCTOR_HOME"], c.paths.home().as_str());
    assert_eq!(c.records("start")[0]["cwd"], c.paths.workspace().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_keeps_the_queue() {
    let _sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
    let c = chat(&[("FAKE_CLI_HOLD_MS", "1500")]).await;
    let first = c.handle.message(key(9), "first");
    let second = c.handle.message(key(9), "second");
    for _ in 0..200 {
        if !c.records("start").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = last(c.handle.message(key(9), "/interrupt")).await;
    assert!(notice(&reply).contains("Interrupted"), "{reply:?}");
    assert!(last(first).await.contains(&SessionOutput::Stopped));
    assert!(finished_text(&last(second).await).is_some(), "the queued message still ran");
    let tree = c.board.tree("root/main/orchestrator").unwrap();
    assert!(tree.find("tg:9").is_some(), "the session shows in the tree by its key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_message_whose_sender_gave_up_never_reaches_the_cli() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "300")]).await;
    let first = c.handle.message(key(43), "first");
    let mut cancelled = c.handle.message(key(43), "cancelled one");
    let third = c.handle.message(key(43), "third");
    let queued = tokio::time::timeout(Duration::from_secs(10), cancelled.recv()).await.unwrap();
    assert!(matches!(queued, Some(SessionOutput::Queued { ahead: 1 })), "{queued:?}");
    drop(cancelled);
    assert!(finished_text(&last(first).await).is_some());
    assert!(finished_text(&last(third).await).is_some());
    let prompts = c.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(prompts[0].starts_with("first") && prompts[1].starts_with("third"), "{prompts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_queued_behind_the_first_resumes_the_session_the_first_created() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "200")]).await;
    let first = c.handle.message(key(42), "Say hello");
    let second = c.handle.message(key(42), "And what did I ask you before?");
    assert!(finished_text(&last(first).await).is_some());
    assert!(finished_text(&last(second).await).unwrap().starts_with("FAKE[resume]"));
    let argv = c.records("start")[1]["argv"].clone();
    let argv: Vec<&str> = argv.as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let at = argv.iter().position(|a| *a == "--resume").expect("the queued turn resumes");
    assert_eq!(argv[at + 1], "a8c43301-b916-468d-9254-a466e9799860");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_cut_by_a_crash_is_reported_once_at_the_next_start() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "60000")]).await;
    let _cut = c.handle.message(key(1002), "a long question that will be cut");
    for _ in 0..200 {
        if !c.records("start").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inflight: Value = serde_json::from_str(&std::fs::read_to_string(c.paths.inflight_turns()).unwrap()).unwrap();
    assert_eq!(inflight["turns"]["1002"]["prompt_preview"], "a long question that will be cut");
    assert_eq!(inflight["turns"]["1002"]["is_recovery"], false);
    // The service dies without cleaning up.
    c.handle.slot().get().unwrap().kill();
    let pid = c.records("start")[0]["pid"].as_i64().unwrap() as i32;
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);

    let bus = spawn_bus(c.paths.outbox(), None).await;
    let (tg, mut delivered) = crate::support::adapters::spawn_recorder("tg", &bus).await;
    let bin = c.record.parent().unwrap().join("fake-bin");
    let board = HealthBoard::new();
    let (restarted, _) = spawn_orchestrator(&c.paths, &bin, &board, Some(bus.clone())).await;
    let notice = tokio::time::timeout(Duration::from_secs(5), delivered.recv()).await.unwrap().unwrap();
    assert_eq!(notice.chat_id, ductor::core::session_key::ChatId(1002));
    assert!(notice.result_text.contains("Interrupted Task") && notice.result_text.contains("a long question"));
    assert!(!c.paths.inflight_turns().exists(), "the record is cleared");
    restarted.stop_and_wait(None, None).await.unwrap();
    let (_again, _) = spawn_orchestrator(&c.paths, &bin, &board, Some(bus.clone())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tg.delivered().len(), 1, "told once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_homes_cut_turn_is_reported_to_chat_1002() {
    let c = chat(&[]).await;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python-home-0.18.2/home/inflight_turns.json");
    // The fixture was written at 16:53 on its day; the notice is for turns younger than
    // 2 × timeouts.normal, so move its start to now.
    let now = ductor::core::state::timestamp_now();
    let text = std::fs::read_to_string(fixture).unwrap().replace("2026-11-24T16:53:26.738445+00:00", &now);
    std::fs::write(c.paths.inflight_turns(), text).unwrap();
    let bus = spawn_bus(c.paths.outbox(), None).await;
    let (_tg, mut delivered) = crate::support::adapters::spawn_recorder("tg", &bus).await;
    let bin = c.record.parent().unwrap().join("fake-bin");
    spawn_orchestrator(&c.paths, &bin, &HealthBoard::new(), Some(bus)).await;
    let notice = tokio::time::timeout(Duration::from_secs(5), delivered.recv()).await.unwrap().unwrap();
    assert_eq!((notice.chat_id, notice.transport.as_str()), (ductor::core::session_key::ChatId(1002), "tg"));
    assert!(notice.result_text.contains("a long question that will be cut"));
    assert!(!c.paths.inflight_turns().exists());
}

/// A Bus on `journal` delivering to the adapters registered on it later.
async fn spawn_bus(
    journal: Utf8PathBuf,
    gate: Option<ductor::runtime::bus::SessionGate>,
) -> ductor::runtime::bus::BusHandle {
    let bus = BusHandle::new();
    let args = BusArgs {
        agent: "main".into(),
        journal,
        served: vec!["tg".into()],
        registry: bus.registry(),
        batch_fsync: true,
        gate,
    };
    let (actor, _) = Actor::spawn(None, Bus, args).await.unwrap();
    bus.slot().set(actor);
    bus
}

/// A Bus whose session gate is the test's Orchestrator, with a recording `tg` adapter.
async fn gated_bus(
    c: &Chat,
) -> (
    ductor::runtime::bus::BusHandle,
    crate::support::adapters::Recorder,
    UnboundedReceiver<ductor::core::envelope::Envelope>,
) {
    let orchestrator = c.handle.clone();
    let gate: ductor::runtime::bus::SessionGate = Arc::new(move |envelope| {
        let orchestrator = orchestrator.clone();
        Box::pin(async move { orchestrator.through_session(envelope).await })
    });
    let bus = spawn_bus(c.paths.outbox(), Some(gate)).await;
    let (recorder, delivered) = crate::support::adapters::spawn_recorder("tg", &bus).await;
    (bus, recorder, delivered)
}

fn task_result(chat: i64, prompt: &str) -> ductor::core::envelope::Envelope {
    use ductor::core::envelope::{Envelope, LockMode, Origin};
    Envelope {
        origin: Origin::TaskResult,
        chat_id: ductor::core::session_key::ChatId::from(chat),
        transport: "tg".into(),
        prompt: prompt.into(),
        lock_mode: LockMode::Required,
        needs_injection: true,
        ..Envelope::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_task_result_waits_for_the_running_turn_then_its_answer_is_delivered() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "700")]).await;
    let (bus, tg, mut delivered) = gated_bus(&c).await;
    let user_turn = c.handle.message(key(5), "Say hello");
    for _ in 0..200 {
        if !c.records("start").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let id = bus.submit(task_result(5, "Summarise the task result for the user")).await.unwrap();
    let envelope = tokio::time::timeout(Duration::from_secs(15), delivered.recv()).await.unwrap().unwrap();
    assert!(finished_text(&last(user_turn).await).is_some());
    assert_eq!(envelope.envelope_id, id);
    assert!(!envelope.is_error);
    assert!(envelope.result_text.starts_with("FAKE[resume]"), "the answer is the text: {}", envelope.result_text);
    assert!(!envelope.needs_injection, "delivered once injected");
    let starts = c.records("start");
    let exits = c.records("exit");
    assert_eq!(starts.len(), 2);
    assert!(
        starts[1]["t"].as_u64() >= exits[0]["t"].as_u64(),
        "the injection ran after the user's turn, not beside it"
    );
    let argv: Vec<String> =
        starts[1]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert!(
        argv.windows(2).any(|w| w[0] == "--resume" && w[1] == "a8c43301-b916-468d-9254-a466e9799860"),
        "in the active session: {argv:?}"
    );
    assert_eq!(tg.delivered().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_injection_delivers_the_error_instead_of_crashing() {
    let c = chat(&[("FAKE_CLI_FIXTURE", "error500")]).await;
    let (bus, _tg, mut delivered) = gated_bus(&c).await;
    bus.submit(task_result(6, "Summarise")).await.unwrap();
    let envelope = tokio::time::timeout(Duration::from_secs(15), delivered.recv()).await.unwrap().unwrap();
    assert!(envelope.is_error);
    assert!(envelope.result_text.contains("API Error: 500"), "{}", envelope.result_text);
    assert_eq!(last(c.handle.message(key(6), "/status")).await.len(), 1, "the orchestrator still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_only_envelope_waits_for_the_turn_without_running_a_cli() {
    use ductor::core::envelope::{Envelope, LockMode, Origin};
    let c = chat(&[("FAKE_CLI_HOLD_MS", "600")]).await;
    let (bus, _tg, mut delivered) = gated_bus(&c).await;
    let turn = c.handle.message(key(8), "Say hello");
    for _ in 0..200 {
        if !c.records("start").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let env = Envelope {
        origin: Origin::Interagent,
        chat_id: ductor::core::session_key::ChatId(8),
        result_text: "answer from another agent".into(),
        lock_mode: LockMode::Required,
        ..Envelope::default()
    };
    bus.submit(env).await.unwrap();
    let envelope = tokio::time::timeout(Duration::from_secs(10), delivered.recv()).await.unwrap().unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let exit_ms = c.records("exit").first().map(|e| e["t"].as_u64().unwrap());
    assert!(exit_ms.is_some_and(|t| t <= now_ms), "delivered after the running turn ended");
    assert_eq!(envelope.result_text, "answer from another agent");
    assert_eq!(c.records("start").len(), 1, "no CLI for a lock-only envelope");
    last(turn).await;
}

fn stored(chat: i64, provider: &str, model: &str, last_active: &str, buckets: Value) -> Value {
    serde_json::json!({
        format!("tg:{chat}"): {
            "transport": "tg", "chat_id": chat, "topic_id": null, "topic_name": null,
            "provider": provider, "model": model,
            "created_at": last_active, "last_active": last_active,
            "provider_sessions": buckets,
        }
    })
}

fn two_buckets() -> Value {
    serde_json::json!({
        "claude": {"session_id": "claude-old", "message_count": 3, "total_cost_usd": 0.5, "total_tokens": 10},
        "codex": {"session_id": "codex-old", "message_count": 2, "total_cost_usd": 0.0, "total_tokens": 7},
    })
}

fn saved(c: &Chat, chat: i64) -> Value {
    let all: Value = serde_json::from_str(&std::fs::read_to_string(c.paths.sessions()).unwrap()).unwrap();
    all[format!("tg:{chat}")].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_drops_the_default_providers_bucket_and_retargets_reset_drops_the_current_one() {
    let now = ductor::core::state::timestamp_now();
    let config = Config { model: "opus".into(), ..Config::default() };
    let c = chat_with(&[], config.clone(), Some(stored(11, "codex", "gpt-5.5", &now, two_buckets()))).await;
    assert!(notice(&last(c.handle.message(key(11), "/new")).await).contains("Claude Code"));
    let record = saved(&c, 11);
    assert!(record["provider_sessions"].get("claude").is_none(), "{record}");
    assert_eq!(record["provider_sessions"]["codex"], two_buckets()["codex"], "the codex session is kept as it was");
    assert_eq!((record["provider"].as_str(), record["model"].as_str()), (Some("claude"), Some("opus")));

    let c = chat_with(&[], config, Some(stored(12, "codex", "gpt-5.5", &now, two_buckets()))).await;
    assert!(notice(&last(c.handle.message(key(12), "/reset")).await).contains("Codex"));
    let record = saved(&c, 12);
    assert!(record["provider_sessions"].get("codex").is_none());
    assert_eq!(record["provider_sessions"]["claude"], two_buckets()["claude"]);
    assert_eq!(record["provider"], "codex", "/reset keeps the provider");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_not_resumed() {
    let old = (chrono::Utc::now() - chrono::Duration::hours(25)).format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let c = chat_with(
        &[],
        Config { model: "opus".into(), ..Config::default() },
        Some(stored(13, "claude", "opus", &old, two_buckets())),
    )
    .await;
    assert!(finished_text(&last(c.handle.message(key(13), "Say hello")).await).is_some());
    let argv = c.records("start")[0]["argv"].clone();
    assert!(!argv.as_array().unwrap().iter().any(|a| a == "--resume"), "25 h idle: a new session");
    let record = saved(&c, 13);
    assert!(record["provider_sessions"].get("codex").is_none(), "a stale record is replaced whole");
    assert_eq!(record["provider_sessions"]["claude"]["message_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_session_starts_over() {
    let now = ductor::core::state::timestamp_now();
    let config = Config { model: "opus".into(), max_session_messages: Some(3), ..Config::default() };
    let c = chat_with(&[], config, Some(stored(14, "claude", "opus", &now, two_buckets()))).await;
    last(c.handle.message(key(14), "Say hello")).await;
    let argv = c.records("start")[0]["argv"].clone();
    assert!(!argv.as_array().unwrap().iter().any(|a| a == "--resume"), "3 of 3 messages used: a new session");
}

/// A chat whose Orchestrator delivers through a Bus to a recording `tg` adapter.
async fn chat_with_bus(
    fake_env: &[(&str, &str)],
) -> (Chat, OrchestratorHandle, crate::support::adapters::Recorder, UnboundedReceiver<ductor::core::envelope::Envelope>)
{
    let c = chat(fake_env).await;
    c.handle.slot().get().unwrap().stop_and_wait(None, None).await.unwrap();
    let bus = spawn_bus(c.paths.outbox(), None).await;
    let (recorder, delivered) = crate::support::adapters::spawn_recorder("tg", &bus).await;
    let bin = c.record.parent().unwrap().join("fake-bin");
    let (_, handle) = spawn_orchestrator(&c.paths, &bin, &c.board, Some(bus)).await;
    (c, handle, recorder, delivered)
}

fn named_file(c: &Chat) -> Value {
    serde_json::from_str(&std::fs::read_to_string(c.paths.named_sessions()).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_session_runs_in_the_background_and_is_continued_with_its_name() {
    let (c, handle, _tg, mut delivered) = chat_with_bus(&[("FAKE_CLI_HOLD_MS", "300")]).await;
    let started = notice(&last(handle.message(key(1001), "/session Say hello")).await);
    assert!(started.contains("started on Claude Code (opus)"), "{started}");
    let name = started.split("**").nth(1).unwrap().to_owned();
    let file = named_file(&c);
    let entry = &file["sessions"][0];
    assert_eq!(
        (entry["name"].as_str(), entry["status"].as_str(), entry["session_id"].as_str()),
        (Some(name.as_str()), Some("running"), Some(""))
    );
    assert_eq!((entry["provider"].as_str(), entry["model"].as_str()), (Some("claude"), Some("opus")));

    let result = tokio::time::timeout(Duration::from_secs(15), delivered.recv()).await.unwrap().unwrap();
    assert_eq!(result.origin, ductor::core::envelope::Origin::Background);
    assert_eq!(result.chat_id, ductor::core::session_key::ChatId(1001));
    assert!(result.result_text.starts_with(&format!("[{name}] Complete")), "{}", result.result_text);
    assert!(result.result_text.contains("FAKE[text]"));
    assert_eq!(result.session_name, name);
    let entry = named_file(&c)["sessions"][0].clone();
    assert_eq!((entry["status"].as_str(), entry["message_count"].as_u64()), (Some("idle"), Some(1)));
    assert_eq!(entry["session_id"], "a8c43301-b916-468d-9254-a466e9799860");

    // A foreground follow-up in the chat: resumed, labelled.
    let follow = last(handle.message(key(1001), &format!("@{name} And what did I ask you before?"))).await;
    let text = finished_text(&follow).unwrap();
    assert!(text.starts_with(&format!("**[{name} | Claude Code]**\nFAKE[resume]")), "{text}");
    let argv = c.records("start")[1]["argv"].clone();
    let argv: Vec<&str> = argv.as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(argv.windows(2).any(|w| w == ["--resume", "a8c43301-b916-468d-9254-a466e9799860"]), "{argv:?}");
    assert_eq!(named_file(&c)["sessions"][0]["message_count"], 2);
    let main = Sessions::load(&c.paths);
    assert!(
        !matches!(main, Loaded::Found(ref s) if s.get(&key(1001)).is_some()),
        "the chat's own session is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_runs_at_most_five_background_jobs_and_stop_cancels_them_and_ends_its_sessions() {
    let (c, handle, _tg, mut delivered) = chat_with_bus(&[("FAKE_CLI_HOLD_MS", "60000")]).await;
    for i in 0..5 {
        assert!(notice(&last(handle.message(key(3), &format!("/session job {i}"))).await).contains("started"));
    }
    let too_many = notice(&last(handle.message(key(3), "/session job 5")).await);
    assert!(too_many.contains("5 background jobs"), "{too_many}");
    last(handle.message(key(3), "/stop")).await;
    for _ in 0..5 {
        let cancelled = tokio::time::timeout(Duration::from_secs(10), delivered.recv()).await.unwrap().unwrap();
        assert!(cancelled.result_text.contains("] Cancelled"), "{}", cancelled.result_text);
    }
    assert!(named_file(&c)["sessions"].as_array().unwrap().is_empty(), "/stop ended the chat's named sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_named_session_is_refused() {
    let (c, handle, _tg, mut delivered) = chat_with_bus(&[]).await;
    for i in 0..10 {
        let reply = notice(&last(handle.message(key(4), &format!("/session job {i}"))).await);
        assert!(reply.contains("started"), "{reply}");
        tokio::time::timeout(Duration::from_secs(10), delivered.recv()).await.unwrap().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = std::fs::read_to_string(c.paths.named_sessions()).unwrap();
    let refused = notice(&last(handle.message(key(4), "/session one more")).await);
    assert!(refused.contains("10 named sessions"), "{refused}");
    assert_eq!(std::fs::read_to_string(c.paths.named_sessions()).unwrap(), before, "file unchanged");
    assert_eq!(named_file(&c)["sessions"].as_array().unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_switch_in_a_dm_updates_the_config_in_a_topic_only_the_topic() {
    let c = chat(&[]).await;
    let config_text = r#"{"model": "opus", "provider": "claude", "telegram_token": "1:x", "mine": {"keep": 1}}"#;
    std::fs::create_dir_all(c.paths.config_dir()).unwrap();
    std::fs::write(c.paths.config_file(), config_text).unwrap();
    let reply = notice(&last(c.handle.message(key(1), "/model sonnet")).await);
    assert!(reply.contains("opus -> sonnet"), "{reply}");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(c.paths.config_file()).unwrap()).unwrap();
    assert_eq!((config["model"].as_str(), config["provider"].as_str()), (Some("sonnet"), Some("claude")));
    assert_eq!(config["mine"]["keep"], 1, "other keys untouched");

    let before = std::fs::read_to_string(c.paths.config_file()).unwrap();
    let topic = SessionKey::new("tg", -1005i64, Some(3));
    last(c.handle.message(topic.clone(), "Say hello")).await;
    let reply = notice(&last(c.handle.message(topic.clone(), "/model gpt-5.4")).await);
    assert!(reply.contains("-> gpt-5.4 (Codex)"), "{reply}");
    assert_eq!(
        std::fs::read_to_string(c.paths.config_file()).unwrap(),
        before,
        "a topic switch leaves config.json alone"
    );
    let all: Value = serde_json::from_str(&std::fs::read_to_string(c.paths.sessions()).unwrap()).unwrap();
    assert_eq!(
        (all["tg:-1005:3"]["provider"].as_str(), all["tg:-1005:3"]["model"].as_str()),
        (Some("codex"), Some("gpt-5.4"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_the_running_model_changes_nothing() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "800")]).await;
    let running = c.handle.message(key(2), "Say hello");
    for _ in 0..200 {
        if !c.records("start").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reply = notice(&last(c.handle.message(key(2), "/model opus")).await);
    assert!(reply.contains("already running"), "{reply}");
    assert!(finished_text(&last(running).await).is_some(), "the turn was not stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_session_that_was_running_is_resumed_at_the_next_start() {
    let (c, _handle, _tg, mut delivered) = chat_with_bus(&[]).await;
    // named_sessions.json as the service left it when killed mid-job.
    let file = serde_json::json!({"sessions": [{
        "name": "keenhawk", "chat_id": 1001, "provider": "claude", "model": "opus",
        "session_id": "a8c43301-b916-468d-9254-a466e9799860", "prompt_preview": "research",
        "status": "running", "created_at": 1.0, "message_count": 1,
        "last_prompt": "And what did I ask you before?", "transport": "tg"
    }]});
    std::fs::write(c.paths.named_sessions(), file.to_string()).unwrap();
    let bus_handle = spawn_bus(c.paths.home().join("outbox-2.jsonl"), None).await;
    let (_tg2, mut delivered2) = crate::support::adapters::spawn_recorder("tg", &bus_handle).await;
    let bin = c.record.parent().unwrap().join("fake-bin");
    spawn_orchestrator(&c.paths, &bin, &HealthBoard::new(), Some(bus_handle)).await;
    let first = tokio::time::timeout(Duration::from_secs(10), delivered2.recv()).await.unwrap().unwrap();
    assert!(
        first.result_text.contains("Auto-Recovery") && first.result_text.contains("keenhawk"),
        "{}",
        first.result_text
    );
    let result = tokio::time::timeout(Duration::from_secs(10), delivered2.recv()).await.unwrap().unwrap();
    assert!(result.result_text.starts_with("[keenhawk] Complete"), "{}", result.result_text);
    let argv = c.records("start")[0]["argv"].clone();
    assert!(
        argv.as_array()
            .unwrap()
            .windows(2)
            .any(|w| w[0] == "--resume" && w[1] == "a8c43301-b916-468d-9254-a466e9799860")
    );
    assert!(delivered.try_recv().is_err(), "the first orchestrator did nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_at_once_during_a_turn_and_the_info_commands_answer_from_state() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "3000")]).await;
    last(c.handle.message(key(21), "Say hello")).await;
    let running = c.handle.message(key(21), "And what did I ask you before?");
    for _ in 0..200 {
        if c.records("start").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let status = notice(&last(c.handle.message(key(21), "/status")).await);
    assert!(started.elapsed() < Duration::from_millis(1500), "not queued behind the 3-s turn: {:?}", started.elapsed());
    for part in [
        "**Status**",
        "Session: a8c43301...",
        "Messages: 1",
        "Model: opus",
        "[claude]",
        "[codex]",
        "[gemini]",
        "Stream shows:",
    ] {
        assert!(status.contains(part), "missing {part:?} in {status}");
    }
    assert!(finished_text(&last(running).await).is_some(), "the running turn was not disturbed");
    let forwarded = last(c.handle.message(key(21), "/status please")).await;
    assert!(finished_text(&forwarded).is_some(), "`/status please` goes to the CLI");

    assert!(notice(&last(c.handle.message(key(21), "/memory")).await).contains("The user likes short answers."));
    assert_eq!(menu_of(&last(c.handle.message(key(21), "/cron")).await).text, "No cron jobs.");
    assert_eq!(menu_of(&last(c.handle.message(key(21), "/tasks")).await).text, "No background tasks in this chat.");
    let sessions = last(c.handle.message(key(21), "/sessions")).await;
    let [SessionOutput::Menu(menu)] = sessions.as_slice() else { panic!("{sessions:?}") };
    assert!(menu.text.contains("No topic or named sessions"), "{}", menu.text);
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python-home-0.18.2/home/cron_jobs.json");
    std::fs::copy(fixture, c.paths.cron_jobs()).unwrap();
    let cron = menu_of(&last(c.handle.message(key(21), "/cron")).await).text;
    assert!(
        cron.contains("1. **Daily report** — active · last: never run · next: ")
            && cron.contains(" 09:00 CE")
            && cron.contains("\n   `0 9 * * 1-5` → Chat 1001")
            && cron.contains("2. **Hourly check** — paused"),
        "{cron}"
    );
}

fn menu_of(outputs: &[SessionOutput]) -> ductor::core::selector::Menu {
    let [SessionOutput::Menu(menu)] = outputs else { panic!("{outputs:?}") };
    menu.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cron_selector_toggles_jobs_in_cron_jobs_json_and_refuses_stale_buttons() {
    let c = chat(&[]).await;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python-home-0.18.2/home/cron_jobs.json");
    std::fs::copy(fixture, c.paths.cron_jobs()).unwrap();
    let enabled = |c: &Chat| -> Vec<bool> {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(c.paths.cron_jobs()).unwrap()).unwrap();
        file["jobs"].as_array().unwrap().iter().map(|j| j["enabled"].as_bool().unwrap()).collect()
    };
    let before = enabled(&c);
    let menu = menu_of(&last(c.handle.message(key(22), "/cron")).await);
    // The active weekday job at 09:00 Berlin time shows when it fires next, in its zone.
    let daily = menu.text.lines().find(|l| l.contains("**Daily report**")).unwrap();
    assert!(daily.contains("· next: ") && daily.contains(" 09:00 CE"), "{daily}");
    assert!(!menu.text.lines().find(|l| l.contains("**Hourly check**")).unwrap().contains("next:"), "paused");
    let toggle = menu.buttons[0][0].callback_data.clone();
    assert_eq!(toggle, format!("crn:t:0:0:{}", ductor::core::blake2s::fingerprint32("daily-report")));
    let after = menu_of(&last(c.handle.callback(key(22), &toggle)).await);
    assert!(after.text.starts_with("Paused Daily report.\n\n"), "{}", after.text);
    assert!(after.text.contains("1. **Daily report** — paused"), "{}", after.text);
    let mut expected = before.clone();
    expected[0] = false;
    assert_eq!(enabled(&c), expected, "only the pressed job changed, on disk");
    let saved = std::fs::read_to_string(c.paths.cron_jobs()).unwrap();
    assert!(saved.contains("\"timezone\": \"Europe/Berlin\""), "other keys kept: {saved}");

    // A button for a job that is no longer in that place does nothing but say so.
    let stale = format!("crn:t:0:1:{}", ductor::core::blake2s::fingerprint32("daily-report"));
    let refused = menu_of(&last(c.handle.callback(key(22), &stale)).await);
    assert!(refused.text.starts_with("The job list has changed"), "{}", refused.text);
    assert_eq!(enabled(&c), expected);

    let all_on = menu_of(&last(c.handle.callback(key(22), "crn:ao:0")).await);
    assert!(all_on.text.starts_with("All "), "{}", all_on.text);
    assert!(enabled(&c).iter().all(|on| *on));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_selector_groups_tasks_and_cleans_up_finished_ones_of_this_chat_only() {
    let (dir, home) = crate::support::temp_home();
    let paths = DuctorPaths::at(home.clone());
    paths.ensure_dirs().unwrap();
    let folders = paths.task_folders();
    for id in ["aa000001", "bb000002", "cc000003"] {
        std::fs::create_dir_all(folders.join(id)).unwrap();
    }
    let task = |id: &str, chat: i64, status: &str| {
        serde_json::json!({"task_id": id, "chat_id": chat, "parent_agent": "main", "name": format!("job {id}"),
            "provider": "claude", "model": "sonnet", "status": status, "created_at": 1.0, "completed_at": 2.0,
            "error": "", "tasks_dir": folders.as_str()})
    };
    // A task a restart cut off, as the TaskHub leaves it at start.
    let mut cut = task("aa000001", 5, "failed");
    cut["error"] = "ductor restarted while this task was running.".into();
    let registry = serde_json::json!({"tasks": [cut, task("bb000002", 5, "done"), task("cc000003", 6, "done")]});
    std::fs::write(paths.tasks(), registry.to_string()).unwrap();
    let bin = crate::support::fake_cli::install(&home.parent().unwrap().to_owned());
    let board = HealthBoard::new();
    let config = Config { model: "opus".into(), ..Config::default() };
    let (_, handle) = spawn_orchestrator_with(&paths, &bin, &board, None, config).await;

    let menu = menu_of(&last(handle.message(key(5), "/tasks")).await);
    assert!(menu.text.contains("[FAIL] **job aa000001**"), "{}", menu.text);
    assert!(menu.text.contains("ductor restarted while this task was running."), "{}", menu.text);
    assert!(menu.text.contains("[OK] **job bb000002**"), "{}", menu.text);
    assert!(!menu.text.contains("cc000003"), "another chat's task: {}", menu.text);
    assert!(menu.text.ends_with("Running: 0 · Waiting: 0 · Finished: 2"), "{}", menu.text);
    assert_eq!(
        menu.buttons,
        vec![vec![
            ductor::core::selector::Button::callback("Refresh", "tsc:r"),
            ductor::core::selector::Button::callback("Clean up", "tsc:cleanup"),
        ]]
    );
    let cleaned = menu_of(&last(handle.callback(key(5), "tsc:cleanup")).await);
    assert!(cleaned.text.starts_with("Removed 2 finished task(s).\n\nNo background tasks"), "{}", cleaned.text);
    assert!(!folders.join("aa000001").exists() && !folders.join("bb000002").exists());
    assert!(folders.join("cc000003").exists(), "another chat's folder stays");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(paths.tasks()).unwrap()).unwrap();
    assert_eq!(file["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(file["tasks"][0]["task_id"], "cc000003");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_directive_switches_the_chat_and_sticks_hooks_go_with_the_prompt() {
    let c = chat(&[]).await;
    let info = notice(&last(c.handle.message(key(31), "@sonnet")).await);
    assert!(info.contains("@sonnet <your message>"), "{info}");
    assert!(!c.paths.sessions().exists(), "a lone directive changes nothing");

    assert!(finished_text(&last(c.handle.message(key(31), "@sonnet Say hello")).await).is_some());
    let first: Vec<String> =
        c.records("start")[0]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert!(first.windows(2).any(|w| w == ["--model", "sonnet"]), "{first:?}");
    let prompt = first.last().unwrap();
    assert!(
        prompt.starts_with("Say hello\n\n## BACKGROUND TASKS"),
        "directive stripped, brief appended on a new session: {prompt:?}"
    );
    assert_eq!(saved(&c, 31)["model"], "sonnet");

    last(c.handle.message(key(31), "And what did I ask you before?")).await;
    let second: Vec<String> =
        c.records("start")[1]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert!(second.windows(2).any(|w| w == ["--model", "sonnet"]), "the directive stuck: {second:?}");
    assert_eq!(second.last().unwrap(), "And what did I ask you before?", "no hook on the 2nd message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_in_one_forum_topic_leaves_the_other_topic_running() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "1500")]).await;
    let topic_a = SessionKey::new("tg", -100_200i64, Some(1));
    let topic_b = SessionKey::new("tg", -100_200i64, Some(2));
    let a = c.handle.message(topic_a.clone(), "a");
    let b = c.handle.message(topic_b.clone(), "b");
    for _ in 0..200 {
        if c.records("start").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    last(c.handle.message(topic_a, "/stop")).await;
    assert!(last(a).await.contains(&SessionOutput::Stopped));
    assert!(finished_text(&last(b).await).is_some(), "topic B finished normally");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_gets_memory_through_a_system_prompt_file_that_is_gone_afterwards() {
    let c = chat_with(&[], Config { model: "gemini-2.5-pro".into(), ..Config::default() }, None).await;
    let outputs = last(c.handle.message(key(51), "Say hello")).await;
    assert!(finished_text(&outputs).is_some_and(|t| t.starts_with("FAKE[text]")), "{outputs:?}");
    let start = &c.records("start")[0];
    assert_eq!(start["cli"], "gemini");
    assert!(start["stdin"].as_str().unwrap().starts_with("Say hello"), "prompt on stdin");
    assert!(start["system_md"].as_str().unwrap().contains("The user likes short answers."), "{start}");
    let file = start["env"]["GEMINI_SYSTEM_MD"].as_str().unwrap();
    assert!(!std::path::Path::new(file).exists(), "removed after the run");
    assert_eq!(start["env"]["DUCTOR_CHAT_ID"], "51", "DUCTOR_* variables reach gemini too");
}

/// A fixtures directory where resuming a claude session fails as Claude does for an unknown
/// session id, and a new session works.
fn fixtures_with_unknown_session(root: &Utf8PathBuf, fresh_also_fails: bool) -> Utf8PathBuf {
    let real = Utf8PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers/claude"));
    let dir = root.join("custom-fixtures/claude");
    std::fs::create_dir_all(&dir).unwrap();
    let invalid = |name: &str, argv: &str| {
        let meta = serde_json::json!({"exit_code": 1, "argv": argv, "stdout_file": format!("{name}.jsonl")});
        std::fs::write(dir.join(format!("{name}.meta.json")), meta.to_string()).unwrap();
        std::fs::write(dir.join(format!("{name}.jsonl")), "").unwrap();
        std::fs::write(dir.join(format!("{name}.stderr.txt")), "No conversation found with session ID: stale-id\n")
            .unwrap();
    };
    let resume_argv: Value =
        serde_json::from_str(&std::fs::read_to_string(real.join("resume.meta.json")).unwrap()).unwrap();
    invalid("resume", resume_argv["argv"].as_str().unwrap());
    for file in ["text.meta.json", "text.jsonl", "text.stderr.txt"] {
        std::fs::copy(real.join(file), dir.join(file)).unwrap();
    }
    if fresh_also_fails {
        let text_argv: Value =
            serde_json::from_str(&std::fs::read_to_string(real.join("text.meta.json")).unwrap()).unwrap();
        invalid("text", text_argv["argv"].as_str().unwrap());
    }
    root.join("custom-fixtures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_cli_no_longer_knows_is_retried_once_fresh() {
    let (dir, _) = crate::support::temp_home();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let fixtures = fixtures_with_unknown_session(&root, false);
    let now = ductor::core::state::timestamp_now();
    let buckets = serde_json::json!({"claude": {"session_id": "stale-id", "message_count": 4, "total_cost_usd": 0.1, "total_tokens": 9}});
    let c = chat_with(
        &[("FAKE_CLI_FIXTURES", fixtures.as_str())],
        Config { model: "opus".into(), ..Config::default() },
        Some(stored(61, "claude", "opus", &now, buckets)),
    )
    .await;
    let outputs = last(c.handle.message(key(61), "Say hello")).await;
    let text = finished_text(&outputs).unwrap();
    assert!(text.starts_with("_The previous session could not be resumed"), "{text}");
    assert!(text.contains("FAKE[text]"), "{text}");
    let starts = c.records("start");
    assert_eq!(starts.len(), 2, "one retry");
    assert!(starts[0]["argv"].as_array().unwrap().iter().any(|a| a == "stale-id"));
    assert!(!starts[1]["argv"].as_array().unwrap().iter().any(|a| a == "--resume"), "the retry starts fresh");
    assert_eq!(saved(&c, 61)["provider_sessions"]["claude"]["session_id"], "a8c43301-b916-468d-9254-a466e9799860");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_fresh_retry_fails_too_the_user_is_told_once() {
    let (dir, _) = crate::support::temp_home();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let fixtures = fixtures_with_unknown_session(&root, true);
    let now = ductor::core::state::timestamp_now();
    let buckets = serde_json::json!({"claude": {"session_id": "stale-id", "message_count": 4, "total_cost_usd": 0.1, "total_tokens": 9}});
    let c = chat_with(
        &[("FAKE_CLI_FIXTURES", fixtures.as_str())],
        Config { model: "opus".into(), ..Config::default() },
        Some(stored(62, "claude", "opus", &now, buckets)),
    )
    .await;
    let text = finished_text(&last(c.handle.message(key(62), "Say hello")).await).unwrap();
    assert!(text.contains("could not be resumed, and a new one failed too"), "{text}");
    assert_eq!(c.records("start").len(), 2, "no retry loop");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_selector_buttons_switch_and_navigate() {
    let c = chat(&[]).await;
    let outputs = last(c.handle.callback(key(71), "ms:p:claude")).await;
    let [SessionOutput::Menu(menu)] = outputs.as_slice() else { panic!("{outputs:?}") };
    assert!(menu.text.starts_with("**Model Selector**\nCurrent: opus"), "{}", menu.text);
    let data: Vec<&str> = menu.buttons[0].iter().map(|b| b.callback_data.as_str()).collect();
    assert_eq!(data, ["ms:m:haiku", "ms:m:sonnet", "ms:m:sonnet[1m]", "ms:m:opus", "ms:m:opus[1m]", "ms:m:fable"]);
    assert_eq!(menu.buttons[1][0].callback_data, "ms:b:root");

    let switched = notice(&last(c.handle.callback(key(71), "ms:m:sonnet")).await);
    assert!(switched.contains("opus -> sonnet"), "{switched}");
    let effort = last(c.handle.callback(key(71), "ms:m:gpt-5.4")).await;
    let [SessionOutput::Menu(menu)] = effort.as_slice() else { panic!("{effort:?}") };
    assert_eq!(menu.buttons[0].iter().map(|b| b.text.as_str()).collect::<Vec<_>>(), ["Low", "Medium", "High", "XHigh"]);
    let refused = notice(&last(c.handle.callback(key(71), "ms:r:xhigh:gpt-5.1-codex-mini")).await);
    assert_eq!(refused, "gpt-5.1-codex-mini does not support reasoning effort xhigh; it supports: medium, high.");
    assert_eq!(notice(&last(c.handle.callback(key(71), "ms:what")).await), "Unknown selector action.");
    assert_eq!(notice(&last(c.handle.callback(key(71), "zz:1")).await), "Unknown selector action.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_selector_lists_and_ends_named_sessions() {
    let (c, handle, _tg, mut delivered) = chat_with_bus(&[]).await;
    let started = notice(&last(handle.message(key(81), "/session Say hello")).await);
    let name = started.split("**").nth(1).unwrap().to_owned();
    tokio::time::timeout(Duration::from_secs(10), delivered.recv()).await.unwrap().unwrap();
    let outputs = last(handle.message(key(81), "/sessions")).await;
    let [SessionOutput::Menu(menu)] = outputs.as_slice() else { panic!("{outputs:?}") };
    assert!(menu.text.contains(&format!("**{name}** — claude/opus · idle · 1 messages")), "{}", menu.text);
    assert_eq!(menu.buttons[0][0].callback_data, format!("nsc:end:{name}"));
    let outputs = last(handle.callback(key(81), &format!("nsc:end:{name}"))).await;
    let [SessionOutput::Menu(menu)] = outputs.as_slice() else { panic!("{outputs:?}") };
    assert!(menu.text.starts_with(&format!("Ended session {name}.")), "{}", menu.text);
    assert!(named_file(&c)["sessions"].as_array().unwrap().is_empty());
    let outputs = last(handle.callback(key(81), "nsc:endall")).await;
    let [SessionOutput::Menu(menu)] = outputs.as_slice() else { panic!("{outputs:?}") };
    assert!(menu.text.starts_with("There were no sessions to end."), "{}", menu.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_shows_version_models_and_the_end_of_the_log() {
    let c = chat(&[]).await;
    std::fs::create_dir_all(c.paths.logs_dir()).unwrap();
    let lines: String = (0..60).map(|i| format!("2026-11-24 10:00:{i:02} [INFO] ductor: line {i}\n")).collect();
    std::fs::write(c.paths.log_file(), lines).unwrap();
    let text = notice(&last(c.handle.message(key(91), "/diagnose")).await);
    assert!(text.contains(&format!("ductor {}", env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(text.contains("Configured: opus"), "{text}");
    assert!(
        text.contains("line 59") && text.contains("line 10") && !text.contains("line 9\n"),
        "last 50 lines: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_capabilities_answer_from_what_exists() {
    let c = chat(&[]).await;
    assert_eq!(notice(&last(c.handle.message(key(92), "/agents")).await), "Only the main agent is running.");
    assert_eq!(
        notice(&last(c.handle.message(key(92), "/agent_start helper")).await),
        "Agents are started and stopped from the main agent's chat.",
        "an Orchestrator without the multi-agent control (a sub-agent's) cannot start agents"
    );
    let upgrade = notice(&last(c.handle.message(key(92), "/upgrade")).await);
    assert!(upgrade.contains(env!("CARGO_PKG_VERSION")), "{upgrade}");
    assert!(c.records("start").is_empty(), "no CLI ran for any of them");
}

/// Fixtures where claude compacts its context during a new session's turn.
fn fixtures_with_compaction(root: &Utf8PathBuf) -> Utf8PathBuf {
    let real = Utf8PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers/claude"));
    let dir = root.join("compact-fixtures/claude");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["text.meta.json", "text.stderr.txt", "resume.meta.json", "resume.jsonl", "resume.stderr.txt"] {
        std::fs::copy(real.join(file), dir.join(file)).unwrap();
    }
    let text = std::fs::read_to_string(real.join("text.jsonl")).unwrap();
    let boundary =
        r#"{"type":"system","subtype":"compact_boundary","compact_metadata":{"trigger":"auto","pre_tokens":151234}}"#;
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(1, boundary);
    std::fs::write(dir.join("text.jsonl"), lines.join("\n") + "\n").unwrap();
    root.join("compact-fixtures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_compaction_the_memory_is_flushed_silently_then_compacted_when_long() {
    let (dir, _) = crate::support::temp_home();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let fixtures = fixtures_with_compaction(&root);
    let c = chat(&[("FAKE_CLI_FIXTURES", fixtures.as_str())]).await;
    let long_memory: String = (0..80).map(|i| format!("- fact {i}\n")).collect();
    std::fs::write(c.paths.main_memory(), format!("# MAINMEMORY\nThe user likes short answers.\n{long_memory}"))
        .unwrap();
    let outputs = last(c.handle.message(key(101), "Say hello")).await;
    assert!(finished_text(&outputs).is_some_and(|t| t.starts_with("FAKE[text]")), "{outputs:?}");
    for _ in 0..300 {
        if c.records("exit").len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let prompts = c.prompts();
    assert_eq!(prompts.len(), 3, "{prompts:?}");
    assert!(prompts[1].starts_with("## PRE-COMPACTION MEMORY FLUSH"), "{}", prompts[1]);
    assert!(
        prompts[2].starts_with("## MEMORY COMPACTION") && prompts[2].contains("roughly 40 lines"),
        "{}",
        prompts[2]
    );
    assert!(!prompts[2].contains("{target_lines}"));
    let flush_argv = c.records("start")[1]["argv"].clone();
    assert!(
        flush_argv.as_array().unwrap().iter().any(|a| a == "a8c43301-b916-468d-9254-a466e9799860"),
        "resumes the chat's session"
    );
    assert_eq!(saved(&c, 101)["provider_sessions"]["claude"]["message_count"], 1, "silent turns are not counted");
    assert!(!c.paths.inflight_turns().exists());

    // Within dedup_seconds a second compaction does not flush again.
    last(c.handle.message(key(101), "/new")).await;
    last(c.handle.message(key(101), "Say hello")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.prompts().len(), 4, "no second flush within 300 s");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_session_with_an_invalid_model_is_refused() {
    let c = chat_with(&[], Config { model: "claude-opus-4-7".into(), ..Config::default() }, None).await;
    let reply = notice(&last(c.handle.message(key(111), "/session write a poem")).await);
    assert_eq!(reply, "Model 'claude-opus-4-7' is not a known claude model.");
    assert!(!c.paths.named_sessions().exists(), "nothing created");
    let reply = notice(&last(c.handle.message(key(111), "/session @codex write a poem")).await);
    assert!(reply.contains("started on Codex (gpt-5.3-codex)"), "the cache's default model: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_alerts_only_from_an_idle_default_session_and_stays_quiet_on_the_ack() {
    let old = (chrono::Utc::now() - chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let buckets = serde_json::json!({"claude": {"session_id": "a8c43301-b916-468d-9254-a466e9799860", "message_count": 3, "total_cost_usd": 0.0, "total_tokens": 0}});
    let c = chat_with(
        &[],
        Config { model: "opus".into(), ..Config::default() },
        Some(stored(121, "claude", "sonnet", &old, buckets)),
    )
    .await;
    let outputs = last(c.handle.heartbeat(key(121), "Anything to tell?", "HEARTBEAT_OK")).await;
    let alert = notice(&outputs);
    assert!(alert.starts_with("FAKE[resume]"), "{outputs:?}");
    let argv = c.records("start")[0]["argv"].clone();
    assert!(
        argv.as_array().unwrap().windows(2).any(|w| w[0] == "--model" && w[1] == "opus"),
        "synced to the configured model"
    );
    assert_eq!(saved(&c, 121)["provider_sessions"]["claude"]["message_count"], 4, "an alert counts");

    // The whole answer as the ack token: nothing to say, nothing counted.
    let answer = alert.clone();
    let old = (chrono::Utc::now() - chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let buckets = serde_json::json!({"claude": {"session_id": "a8c43301-b916-468d-9254-a466e9799860", "message_count": 3, "total_cost_usd": 0.0, "total_tokens": 0}});
    let c = chat_with(
        &[],
        Config { model: "opus".into(), ..Config::default() },
        Some(stored(122, "claude", "opus", &old, buckets)),
    )
    .await;
    let outputs = last(c.handle.heartbeat(key(122), "Anything to tell?", &answer)).await;
    assert_eq!(outputs.last(), Some(&SessionOutput::Stopped), "{outputs:?}");
    assert_eq!(saved(&c, 122)["provider_sessions"]["claude"]["message_count"], 3);

    // No session (or a busy one within the cooldown): skipped without running a CLI.
    let c = chat(&[]).await;
    assert_eq!(last(c.handle.heartbeat(key(123), "Anything?", "HEARTBEAT_OK")).await, [SessionOutput::Stopped]);
    assert!(c.records("start").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_past_its_deadline_is_stopped_and_the_user_told_in_minutes() {
    let mut config = Config { model: "opus".into(), ..Config::default() };
    config.timeouts.normal = 1.0;
    config.timeouts.extend_on_activity = false;
    let c = chat_with(&[("FAKE_CLI_HOLD_MS", "60000")], config, None).await;
    let started = Instant::now();
    let text = finished_text(&last(c.handle.message(key(131), "Say hello")).await).unwrap();
    assert_eq!(text, "opus did not finish within 1 min and was stopped.");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(saved(&c, 131)["provider_sessions"]["claude"]["message_count"], 1, "a timed-out turn counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_learns_the_other_running_agents() {
    let c = chat(&[]).await;
    c.board.register("root/main", "main", ActorKind::Agent);
    last(c.handle.message(key(1201), "Say hello")).await;
    let alone = c.records("start")[0]["argv"].to_string();
    assert!(alone.contains("The user likes short answers") && !alone.contains("Active Agent Roster"), "{alone}");

    c.board.register("root/research", "research", ActorKind::Subagent);
    last(c.handle.message(key(1202), "Say hello")).await;
    let argv = c.records("start")[1]["argv"].clone();
    let argv: Vec<&str> = argv.as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let at = argv.iter().position(|a| *a == "--append-system-prompt").expect("system prompt addition");
    let text = argv[at + 1];
    assert!(text.starts_with("# MAINMEMORY\nThe user likes short answers.\n\n## Active Agent Roster"), "{text}");
    assert!(text.contains("You are the agent **main**.") && text.contains("- `research`"), "{text}");
}

/// The start hook (where a transport records the turn's start in its inbox) runs before the
/// CLI is started, and only for the message whose turn it is — once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_hook_runs_before_the_cli_starts() {
    let c = chat(&[("FAKE_CLI_HOLD_MS", "300")]).await;
    let hooked: std::sync::Arc<std::sync::Mutex<Vec<(String, f64)>>> = Default::default();
    let hook = |name: &str| {
        let (hooked, name) = (std::sync::Arc::clone(&hooked), name.to_owned());
        Some(ductor::chat::session::StartHook::new(move || {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as f64;
            hooked.lock().unwrap().push((name, now));
        }))
    };
    let first = c.handle.message_with_start(key(5), "first", hook("first"));
    let second = c.handle.message_with_start(key(5), "second", hook("second"));
    last(first).await;
    last(second).await;
    let starts: Vec<f64> = c.records("start").iter().map(|r| r["t_us"].as_f64().unwrap()).collect();
    let seen = hooked.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(starts.len(), 2);
    assert!(seen[0].1 < starts[0] && seen[1].1 < starts[1], "{seen:?} / {starts:?}");
    assert!(seen[1].1 > starts[0], "the second hook runs when its own turn starts");
    let status = c.handle.message_with_start(key(5), "/status", hook("status"));
    last(status).await;
    assert_eq!(hooked.lock().unwrap().len(), 2, "a command is no turn: its hook never runs");
}

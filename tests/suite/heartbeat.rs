//! The heartbeat observer with a real Orchestrator, the fake CLI and a recording `tg` adapter on
//! a real Bus: the ack token sends nothing and leaves the session as it was, an alert reaches the
//! chat once, no session means no CLI run, quiet hours in the user's zone skip the tick, a
//! heartbeat waits behind a running turn, group targets with their own interval run with their
//! own prompt, and disabled or chat-less targets never run. Intervals are shortened by the
//! observer's `minute`; the time of day comes from a clock the test sets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::adapters::{Recorder, spawn_recorder};
use crate::support::fake_cli::{assistant_text, custom_fixture_from};
use camino::Utf8PathBuf;
use chrono::{DateTime, TimeZone, Utc};
use ductor::chat::orchestrator::{Orchestrator, OrchestratorArgs, OrchestratorHandle};
use ductor::chat::session::SessionOutput;
use ductor::core::config::Config;
use ductor::core::config::model::HeartbeatTarget;
use ductor::core::envelope::{DeliveryMode, Envelope, Origin};
use ductor::core::health::ActorKind;
use ductor::core::session_key::{ChatId, SessionKey};
use ductor::observer::heartbeat::{Heartbeat, HeartbeatArgs, HeartbeatMsg, HeartbeatStats};
use ductor::runtime::bus::{Bus, BusArgs, BusHandle};
use ductor::runtime::health_board::HealthBoard;
use ductor::store::paths::DuctorPaths;
use ractor::{Actor, ActorRef};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

/// The session id of the recorded `resume` fixture (the CLI answers with it).
const SESSION: &str = "a8c43301-b916-468d-9254-a466e9799860";
const PROMPT: &str = "Anything worth saying?";

struct Setup {
    _dir: tempfile::TempDir,
    paths: DuctorPaths,
    record: Utf8PathBuf,
    orchestrator: OrchestratorHandle,
    bus: BusHandle,
    tg: Recorder,
    delivered: UnboundedReceiver<Envelope>,
    clock: Arc<Mutex<DateTime<Utc>>>,
    heartbeat: ActorRef<HeartbeatMsg>,
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

/// Heartbeats on for `users`, in UTC, quiet 21–8, cooldown 5 minutes.
fn config(users: &[i64], targets: Vec<HeartbeatTarget>) -> Config {
    let mut config = Config { model: "opus".into(), user_timezone: "UTC".into(), ..Config::default() };
    config.allowed_user_ids = users.to_vec();
    config.heartbeat.enabled = true;
    config.heartbeat.prompt = PROMPT.into();
    config.heartbeat.group_targets = targets;
    config
}

/// A stored Claude session for a chat, last active 10 minutes ago.
fn session(chat: i64, session_id: &str) -> (String, Value) {
    let old = (Utc::now() - chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    (
        format!("tg:{chat}"),
        json!({
            "transport": "tg", "chat_id": chat, "topic_id": null, "topic_name": null,
            "provider": "claude", "model": "opus", "created_at": old, "last_active": old,
            "provider_sessions": {"claude": {"session_id": session_id, "message_count": 3, "total_cost_usd": 0.0, "total_tokens": 0}},
        }),
    )
}

/// A home with `sessions`, the fake CLI answering `reply` (resuming), an Orchestrator, a Bus
/// with a recording `tg` adapter and the heartbeat observer whose minute lasts `minute`.
async fn setup(
    config: Config,
    sessions: &[(String, Value)],
    reply: &str,
    fake_env: &[(&str, &str)],
    minute: Duration,
) -> Setup {
    let (dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = crate::support::fake_cli::install(&root);
    let paths = DuctorPaths::at(home.clone());
    paths.ensure_dirs().unwrap();
    let fixtures = custom_fixture_from(&root, "resume", "heartbeat", &[assistant_text(reply)], reply);
    let record = root.join("record.jsonl");
    let mut dotenv = format!("FAKE_CLI_RECORD={record}\nFAKE_CLI_FIXTURES={fixtures}\nFAKE_CLI_FIXTURE=heartbeat\n");
    for (k, v) in fake_env {
        dotenv.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(home.join(".env"), dotenv).unwrap();
    std::fs::write(paths.main_memory(), "# MAINMEMORY\nThe user likes short answers.").unwrap();
    if !sessions.is_empty() {
        let all: serde_json::Map<String, Value> = sessions.iter().cloned().collect();
        std::fs::write(paths.sessions(), serde_json::to_string_pretty(&all).unwrap()).unwrap();
    }
    let config = Arc::new(config);

    let bus = BusHandle::new();
    let bus_args = BusArgs {
        agent: "main".into(),
        journal: paths.outbox(),
        served: vec!["tg".into()],
        registry: bus.registry(),
        batch_fsync: true,
        gate: None,
    };
    let (bus_actor, _) = Actor::spawn(None, Bus, bus_args).await.unwrap();
    bus.slot().set(bus_actor);
    let (tg, delivered) = spawn_recorder("tg", &bus).await;

    let board = HealthBoard::new();
    board.register("root/main/orchestrator", "orchestrator", ActorKind::Observer);
    let orchestrator = OrchestratorHandle::new();
    let args = OrchestratorArgs {
        agent: "main".into(),
        paths: paths.clone(),
        config: Arc::clone(&config),
        board_path: "root/main/orchestrator".into(),
        board,
        cli_path: vec![bin],
        bus: Some(bus.clone()),
        catalog: ductor::chat::model_catalog::ModelCatalog::default(),
        cli_env: Vec::new(),
        agent_control: None,
    };
    let (orchestrator_actor, _) = Actor::spawn(None, Orchestrator, args).await.unwrap();
    orchestrator.slot().set(orchestrator_actor);

    let clock = Arc::new(Mutex::new(noon()));
    let now = Arc::clone(&clock);
    let args = HeartbeatArgs {
        config,
        orchestrator: orchestrator.clone(),
        bus: bus.clone(),
        minute,
        clock: Arc::new(move || *now.lock().unwrap()),
    };
    let (heartbeat, _) = Actor::spawn(None, Heartbeat, args).await.unwrap();
    Setup { _dir: dir, paths, record, orchestrator, bus, tg, delivered, clock, heartbeat }
}

/// A minute long enough that no timer fires during a test (ticks come from `TickNow`).
const NO_TIMER: Duration = Duration::from_secs(3600);

impl Setup {
    fn records(&self, event: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event"] == event)
            .collect()
    }

    /// The (prompt, resumed session id) of each CLI start.
    fn starts(&self) -> Vec<(String, String)> {
        self.records("start")
            .iter()
            .map(|r| {
                let argv: Vec<String> =
                    r["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
                let resumed = argv.windows(2).find(|w| w[0] == "--resume").map(|w| w[1].clone()).unwrap_or_default();
                (argv.last().unwrap().clone(), resumed)
            })
            .collect()
    }

    async fn stats(&self) -> HeartbeatStats {
        ractor::call!(self.heartbeat, HeartbeatMsg::Stats).unwrap()
    }

    /// Waits until the observer's counters satisfy `done`.
    async fn wait_stats(&self, done: impl Fn(&HeartbeatStats) -> bool) -> HeartbeatStats {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stats = self.stats().await;
            if done(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "heartbeat counters never got there: {stats:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stored(&self, chat: i64) -> Value {
        let all: Value = serde_json::from_str(&std::fs::read_to_string(self.paths.sessions()).unwrap()).unwrap();
        all[format!("tg:{chat}")].clone()
    }

    fn set_clock(&self, at: DateTime<Utc>) {
        *self.clock.lock().unwrap() = at;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_reply_sends_nothing_and_leaves_the_session_as_it_was() {
    let s = setup(config(&[501], vec![]), &[session(501, SESSION)], "HEARTBEAT_OK", &[], NO_TIMER).await;
    let before = s.stored(501);
    s.heartbeat.cast(HeartbeatMsg::TickNow).unwrap();
    let stats = s.wait_stats(|st| st.finished == 1).await;
    assert_eq!((stats.started, stats.alerts), (1, 0), "{stats:?}");
    assert_eq!(s.starts(), [(PROMPT.to_owned(), SESSION.to_owned())], "the heartbeat resumed the chat's session");
    assert!(s.tg.delivered().is_empty(), "nothing was delivered: {:?}", s.tg.delivered());
    assert_eq!(s.bus.stats().await.unwrap().accepted, 0, "nothing was submitted to the Bus");
    let after = s.stored(501);
    assert_eq!(after["last_active"], before["last_active"], "last_active unchanged");
    assert_eq!(after["provider_sessions"]["claude"]["message_count"], 3, "nothing counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_after_the_ack_token_reaches_the_chat_once_as_a_heartbeat_envelope() {
    let mut s =
        setup(config(&[502], vec![]), &[session(502, SESSION)], "HEARTBEAT_OK Here is an idea", &[], NO_TIMER).await;
    s.heartbeat.cast(HeartbeatMsg::TickNow).unwrap();
    let envelope = tokio::time::timeout(Duration::from_secs(30), s.delivered.recv()).await.unwrap().unwrap();
    assert_eq!(envelope.result_text, "Here is an idea");
    assert_eq!(envelope.origin, Origin::Heartbeat);
    assert_eq!((envelope.chat_id, envelope.topic_id), (ChatId::from(502_i64), None));
    assert_eq!(envelope.transport, "tg");
    let stats = s.wait_stats(|st| st.finished == 1).await;
    assert_eq!(stats.alerts, 1);
    let delivered = s.tg.delivered();
    assert_eq!(delivered.len(), 1, "delivered once: {delivered:?}");
    assert_eq!(delivered[0].1, DeliveryMode::Unicast);
    assert_eq!(s.bus.stats().await.unwrap().accepted, 1);
    assert_eq!(s.stored(502)["provider_sessions"]["claude"]["message_count"], 4, "an alert counts as a turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_prior_session_no_cli_runs_at_all() {
    let s = setup(config(&[503], vec![]), &[], "HEARTBEAT_OK Hello", &[], NO_TIMER).await;
    s.heartbeat.cast(HeartbeatMsg::TickNow).unwrap();
    let stats = s.wait_stats(|st| st.finished == 1).await;
    assert_eq!((stats.started, stats.alerts), (1, 0));
    assert!(s.records("start").is_empty(), "no CLI was started: {:?}", s.records("start"));
    assert!(s.tg.delivered().is_empty());
    assert!(!s.paths.sessions().exists() || s.stored(503).is_null(), "no session was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_in_the_users_zone_skip_the_tick_and_daytime_runs_it() {
    // Tokyo is UTC+9 all year: 14:00 UTC is 23:00 there (quiet 21–8), 01:00 UTC is 10:00.
    let mut cfg = config(&[504], vec![]);
    cfg.user_timezone = "Asia/Tokyo".into();
    let s = setup(cfg, &[session(504, SESSION)], "HEARTBEAT_OK", &[], NO_TIMER).await;
    s.set_clock(Utc.with_ymd_and_hms(2026, 3, 10, 14, 0, 0).unwrap());
    s.heartbeat.cast(HeartbeatMsg::TickNow).unwrap();
    let stats = s.stats().await;
    assert_eq!((stats.ticks, stats.quiet_ticks, stats.started), (1, 1, 0), "23:00 local is quiet: {stats:?}");

    s.set_clock(Utc.with_ymd_and_hms(2026, 3, 11, 1, 0, 0).unwrap());
    s.heartbeat.cast(HeartbeatMsg::TickNow).unwrap();
    let stats = s.wait_stats(|st| st.finished == 1).await;
    assert_eq!((stats.ticks, stats.quiet_ticks, stats.started), (2, 1, 1), "10:00 local runs: {stats:?}");
    assert_eq!(s.starts().len(), 1, "one CLI run, at 10:00 only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_waits_behind_the_running_turn_of_its_chat() {
    let mut cfg = config(&[505], vec![]);
    cfg.heartbeat.cooldown_minutes = 0;
    let s = setup(cfg, &[session(505, SESSION)], "HEARTBEAT_OK", &[("FAKE_CLI_HOLD_MS", "1500")], NO_TIMER).await;
    let turn = s.orchestrator.message(SessionKey::new("tg", 505_i64, None), "a long job");
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.records("start").is_empty() {
        assert!(Instant::now() < deadline, "the person's turn never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.heartbeat.cast(HeartbeatMsg::TickNow).unwrap();
    let stats = s.wait_stats(|st| st.finished == 1).await;
    assert_eq!(stats.started, 1);
    let mut outputs = Vec::new();
    let mut turn = turn;
    while let Some(output) = turn.recv().await {
        outputs.push(output);
    }
    assert!(outputs.iter().any(|o| matches!(o, SessionOutput::Finished { .. })), "the person's turn ended normally");
    let prompts: Vec<String> = s.starts().into_iter().map(|(p, _)| p).collect();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(prompts[0].starts_with("a long job") && prompts[1] == PROMPT, "{prompts:?}");
    let starts = s.records("start");
    let exits = s.records("exit");
    let turn_exit = exits.iter().find(|e| e["pid"] == starts[0]["pid"]).unwrap();
    assert!(
        starts[1]["t"].as_u64().unwrap() >= turn_exit["t"].as_u64().unwrap(),
        "the heartbeat CLI started only after the person's turn ended: {starts:?} / {exits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_target_with_its_own_interval_runs_with_its_own_prompt() {
    let other = "deadbeef-0000-4000-8000-000000000000";
    let own = HeartbeatTarget {
        chat_id: Some(-100_777),
        prompt: Some("check".into()),
        interval_minutes: Some(1),
        ..HeartbeatTarget::default()
    };
    let disabled =
        HeartbeatTarget { enabled: false, chat_id: Some(-100_778), interval_minutes: Some(1), ..own.clone() };
    let no_chat = HeartbeatTarget { chat_id: None, ..own.clone() };
    let mut cfg = config(&[], vec![own, disabled, no_chat]);
    // The global tick (1000 minutes of 100 ms) never comes during the test.
    cfg.heartbeat.interval_minutes = 1000;
    let sessions = [session(-100_777, SESSION), session(-100_778, other)];
    let s = setup(cfg, &sessions, "HEARTBEAT_OK", &[], Duration::from_millis(100)).await;
    let stats = s.wait_stats(|st| st.finished >= 2).await;
    assert_eq!(stats.ticks, 0, "the global tick did not run: {stats:?}");
    assert!(stats.target_ticks >= 2, "{stats:?}");
    let starts = s.starts();
    assert!(starts.len() >= 2, "{starts:?}");
    assert!(
        starts.iter().all(|(prompt, resumed)| prompt == "check" && resumed == SESSION),
        "only the enabled target ran, with its own prompt, in its group's session: {starts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_targets_and_targets_without_chat_never_run_in_the_global_tick() {
    let disabled = HeartbeatTarget { enabled: false, chat_id: Some(-100_779), ..HeartbeatTarget::default() };
    let no_chat = HeartbeatTarget { chat_id: None, prompt: Some("nobody".into()), ..HeartbeatTarget::default() };
    let placeholder = Config::default().heartbeat.group_targets[0].clone();
    let s = setup(
        config(&[], vec![disabled, no_chat, placeholder]),
        &[session(-100_779, SESSION)],
        "HEARTBEAT_OK Psst",
        &[],
        NO_TIMER,
    )
    .await;
    s.heartbeat.cast(HeartbeatMsg::TickNow).unwrap();
    let stats = s.stats().await;
    assert_eq!((stats.ticks, stats.started), (1, 0), "{stats:?}");
    assert!(s.records("start").is_empty());
    assert!(s.tg.delivered().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_ticks_first_one_interval_after_start_then_again() {
    // 10 minutes of 100 ms: the first tick comes after a second, then every second.
    let mut cfg = config(&[506], vec![]);
    cfg.heartbeat.interval_minutes = 10;
    let started = Instant::now();
    let s = setup(cfg, &[session(506, SESSION)], "HEARTBEAT_OK", &[], Duration::from_millis(100)).await;
    let first = s.stats().await;
    assert_eq!(first.ticks, 0, "no tick at start: {first:?}");
    let stats = s.wait_stats(|st| st.ticks >= 2 && st.finished >= 2).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "two intervals passed first: {:?}", started.elapsed());
    assert_eq!(stats.started + stats.busy_skips, stats.ticks, "each tick asked for the chat's heartbeat: {stats:?}");
    assert!(s.starts().iter().all(|(p, r)| p == PROMPT && r == SESSION));
}

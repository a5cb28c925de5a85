//! A home written by the Python original (0.18.2) is read with every fact of its FIXTURE.md,
//! and what we write back keeps every key.

use camino::Utf8PathBuf;
use ductor::core::session_key::{ChatId, SessionKey};
use ductor::core::state::agents::SubAgents;
use ductor::core::state::chat_activity::ChatActivity;
use ductor::core::state::cron_jobs::CronJobs;
use ductor::core::state::inflight_turns::InflightTurns;
use ductor::core::state::named_sessions::NamedSessions;
use ductor::core::state::sessions::Sessions;
use ductor::core::state::startup_state::StartupState;
use ductor::core::state::tasks::TaskRegistry;
use ductor::core::state::webhooks::Webhooks;
use ductor::store::atomic::Loaded;
use ductor::store::paths::DuctorPaths;
use ductor::store::state_files::{FileCheck, StateFile, check_all};
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python-home-0.18.2/home");

fn python_home() -> (tempfile::TempDir, DuctorPaths) {
    let (dir, home) = crate::support::temp_home();
    crate::support::binary::copy_tree(&Utf8PathBuf::from(FIXTURE), &home);
    (dir, DuctorPaths::at(home))
}

fn load<T: StateFile + std::fmt::Debug>(paths: &DuctorPaths) -> T {
    match T::load(paths) {
        Loaded::Found(value) => value,
        other => panic!("{} did not load: {other:?}", T::path(paths)),
    }
}

#[test]
fn sessions_with_buckets() {
    let (_d, paths) = python_home();
    let sessions: Sessions = load(&paths);
    assert!(sessions.warnings.is_empty(), "{:?}", sessions.warnings);
    let facts = [
        ("tg:1001", SessionKey::new("tg", 1001i64, None), "codex", "codex", "477e23e1-8fe7-4581-b0b3-c30f1f40e76d", 2),
        (
            "tg:1002",
            SessionKey::new("tg", 1002i64, None),
            "claude",
            "sonnet",
            "78e41e67-1207-43d5-958e-5bfd6a1693d6",
            1,
        ),
        (
            "tg:-1001234567890:7",
            SessionKey::new("tg", -1_001_234_567_890i64, Some(7)),
            "claude",
            "sonnet",
            "7d37cb6d-4936-4106-a8e7-6d60053b0de8",
            1,
        ),
        (
            "tg:-1001234567890",
            SessionKey::new("tg", -1_001_234_567_890i64, None),
            "claude",
            "sonnet",
            "c7f5b0ee-d758-4b0b-8978-0dc70e9d9133",
            1,
        ),
    ];
    assert_eq!(sessions.records.len(), facts.len());
    for (stored, key, provider, model, claude_session, messages) in facts {
        assert_eq!(SessionKey::parse(stored).unwrap(), key);
        let record = sessions.get(&key).unwrap_or_else(|| panic!("{stored}"));
        assert_eq!((record.provider.as_str(), record.model.as_str()), (provider, model), "{stored}");
        let bucket = record.bucket("claude").unwrap();
        assert_eq!((bucket.session_id.as_str(), bucket.message_count), (claude_session, messages), "{stored}");
    }
}

#[test]
fn named_session_task_inflight_activity_startup() {
    let (_d, paths) = python_home();
    let named: NamedSessions = load(&paths);
    let keenhawk = named.sessions.iter().find(|s| s.name == "keenhawk").unwrap();
    assert_eq!(keenhawk.chat_id, ChatId(1001));
    assert_eq!((keenhawk.provider.as_str(), keenhawk.model.as_str()), ("claude", "sonnet"));
    assert_eq!(keenhawk.session_id, "5d022959-dd02-4196-b21e-da5bbd83e3b7");
    assert_eq!((keenhawk.status.as_str(), keenhawk.message_count, keenhawk.transport.as_str()), ("idle", 1, "tg"));

    let tasks: TaskRegistry = load(&paths);
    let task = tasks.tasks.iter().find(|t| t.task_id == "ae3fbaf2").unwrap();
    assert_eq!((task.name.as_str(), task.chat_id, task.parent_agent.as_str()), ("Flight search", ChatId(1001), "main"));
    assert_eq!((task.status.as_str(), task.provider.as_str()), ("done", "claude"));
    assert!(task.folder().ends_with("workspace/tasks/ae3fbaf2"));

    let inflight: InflightTurns = load(&paths);
    let turn = &inflight.turns["1002"];
    assert_eq!((turn.chat_id, turn.provider.as_str()), (ChatId(1002), "claude"));
    assert_eq!(turn.session_id, "78e41e67-1207-43d5-958e-5bfd6a1693d6");
    assert_eq!(turn.started_at, "2026-11-24T16:53:26.738445+00:00");
    assert!(!turn.is_recovery);
    assert!(ductor::core::state::parse_timestamp(&turn.started_at).is_some());

    let activity: ChatActivity = load(&paths);
    let group = &activity.records["-1009999999999"];
    assert_eq!((group.status.as_str(), group.allowed, group.rejected_count), ("rejected", false, 1));

    let startup: StartupState = load(&paths);
    assert_eq!(startup.boot_id, "666b4ea9-80ac-4e1d-a237-5a3053d8ac75");
}

#[test]
fn cron_jobs_webhooks_and_sub_agent() {
    let (_d, paths) = python_home();
    let cron: CronJobs = load(&paths);
    let job = |id: &str| cron.jobs.iter().find(|j| j.id == id).unwrap().clone();
    let daily = job("daily-report");
    assert_eq!(
        (daily.schedule.as_str(), daily.timezone.as_deref(), daily.enabled),
        ("0 9 * * 1-5", Some("Europe/Berlin"), true)
    );
    assert_eq!(
        (daily.provider.clone(), daily.model.clone(), daily.quiet_start, daily.dependency.clone()),
        (None, None, None, None)
    );
    assert_eq!((daily.chat_id, daily.transport.as_deref()), (Some(ChatId(1001)), Some("tg")));
    assert_eq!(daily.folder(), "workspace/cron_tasks/daily-report");
    let hourly = job("hourly-check");
    assert_eq!((hourly.schedule.as_str(), hourly.timezone.clone(), hourly.enabled), ("15 * * * *", None, false));
    assert_eq!((hourly.provider.as_deref(), hourly.model.as_deref()), (Some("codex"), Some("gpt-5.5")));
    assert_eq!((hourly.quiet_start, hourly.quiet_end), (Some(22), Some(7)));
    let after = job("after-report");
    assert_eq!(
        (after.schedule.as_str(), after.dependency.as_deref(), after.enabled),
        ("30 9 * * 1-5", Some("daily-report"), true)
    );
    assert_eq!(after.folder(), "workspace/cron_tasks/after-report");

    let hooks: Webhooks = load(&paths);
    let push = hooks.hooks.iter().find(|h| h.id == "gh-push").unwrap();
    assert_eq!((push.mode.as_str(), push.auth_mode.as_str(), push.task_folder.clone()), ("wake", "bearer", None));
    assert!(!push.token.is_empty());
    assert_eq!(push.endpoint(), "/hooks/gh-push");
    let ci = hooks.hooks.iter().find(|h| h.id == "ci-done").unwrap();
    assert_eq!(
        (ci.mode.as_str(), ci.auth_mode.as_str(), ci.task_folder.as_deref()),
        ("cron_task", "hmac", Some("daily-report"))
    );
    assert_eq!(
        (ci.hmac_header.as_str(), ci.hmac_algorithm.as_str(), ci.hmac_sig_prefix.as_str()),
        ("X-Hub-Signature-256", "sha256", "sha256=")
    );
    assert_eq!(ci.endpoint(), "/hooks/ci-done");

    let agents: SubAgents = load(&paths);
    let helper = agents.agents.iter().find(|a| a.name == "helper").unwrap();
    assert_eq!(helper.provider.as_deref(), Some("openai"), "stored text kept");
    assert_eq!(helper.effective_provider(), Some("codex"));
    assert_eq!(helper.model.as_deref(), Some("codex"));
    assert_eq!(helper.allowed_user_ids.as_deref(), Some(&[1001][..]));
    assert_eq!(helper.home_dir(), "agents/helper");
    assert!(paths.sub_agent("helper").home().is_dir());
}

fn value_of(path: &camino::Utf8Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn round_trip<T: StateFile + std::fmt::Debug>(paths: &DuctorPaths) {
    let path = T::path(paths);
    let before = value_of(&path);
    let loaded: T = load(paths);
    loaded.save(paths).unwrap();
    assert_eq!(value_of(&path), before, "{path} changed on load → save");
    let again: T = load(paths);
    again.save(paths).unwrap();
    assert_eq!(value_of(&path), before);
}

#[test]
fn every_state_file_round_trips_without_losing_a_key() {
    let (_d, paths) = python_home();
    round_trip::<Sessions>(&paths);
    round_trip::<NamedSessions>(&paths);
    round_trip::<TaskRegistry>(&paths);
    round_trip::<CronJobs>(&paths);
    round_trip::<Webhooks>(&paths);
    round_trip::<SubAgents>(&paths);
    round_trip::<ChatActivity>(&paths);
    round_trip::<StartupState>(&paths);
    round_trip::<InflightTurns>(&paths);
}

#[test]
fn startup_check_reads_every_file_and_quarantines_a_corrupt_one() {
    let (_d, paths) = python_home();
    assert!(check_all(&paths).iter().all(|(_, c)| *c == FileCheck::Ok), "{:?}", check_all(&paths));
    std::fs::write(paths.sessions(), "{\"tg:1\": ").unwrap();
    let report = check_all(&paths);
    let (_, sessions) = report.iter().find(|(p, _)| *p == paths.sessions()).unwrap();
    let FileCheck::Quarantined(moved) = sessions else { panic!("{sessions:?}") };
    assert_eq!(std::fs::read_to_string(moved).unwrap(), "{\"tg:1\": ");
    assert!(!paths.sessions().exists());
    let Loaded::Missing = Sessions::load(&paths) else { panic!("defaults after quarantine") };
    assert!(report.iter().filter(|(p, _)| *p != paths.sessions()).all(|(_, c)| *c == FileCheck::Ok));
}

#[test]
fn wrong_top_level_type_counts_as_corrupt() {
    let (_d, paths) = python_home();
    std::fs::write(paths.sessions(), "[]").unwrap();
    assert!(matches!(Sessions::load(&paths), Loaded::Quarantined { .. }));
    std::fs::write(paths.agents(), "{}").unwrap();
    assert!(matches!(SubAgents::load(&paths), Loaded::Quarantined { .. }));
}

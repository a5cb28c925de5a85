//! The cron observer inside one process, with a real Bus and a recording transport: the exact
//! fire instants over a simulated week (paused time, DST included), quiet hours, no catch-up,
//! a real one-shot run through the fake CLI reaching its chat once, the dependency queue
//! keeping runs apart, runs cut by a crash reported once and never run again, and a broken
//! `cron_jobs.json` keeping the jobs last loaded.

use std::sync::Arc;
use std::time::Duration;

use crate::support::adapters::{Recorder, spawn_recorder};
use camino::{Utf8Path, Utf8PathBuf};
use chrono::{DateTime, TimeZone, Utc};
use ductor::chat::model_catalog::ModelCatalog;
use ductor::core::config::Config;
use ductor::core::envelope::Envelope;
use ductor::core::outbox::delivery_key;
use ductor::core::run_journal::{RunRecord, RunSource};
use ductor::observer::WallClock;
use ductor::observer::cron::{Cron, CronArgs, CronMsg};
use ductor::observer::unattended::RunContext;
use ductor::runtime::bus::{Bus, BusArgs, BusHandle};
use ductor::runtime::dependency_queue::DependencyQueue;
use ductor::store::paths::DuctorPaths;
use ductor::store::run_journal::SharedRunJournal;
use ractor::{Actor, ActorRef};
use serde_json::{Value, json};

struct World {
    _dir: tempfile::TempDir,
    home: Utf8PathBuf,
    bus: BusHandle,
    tg: Recorder,
    ctx: RunContext,
}

async fn world(cli_path: Vec<Utf8PathBuf>, extra_env: Vec<(String, String)>) -> World {
    let (dir, home) = crate::support::temp_home();
    let paths = DuctorPaths::at(home.clone());
    let bus = BusHandle::new();
    let args = BusArgs {
        agent: "main".into(),
        journal: paths.outbox(),
        served: vec!["tg".into()],
        registry: bus.registry(),
        batch_fsync: true,
        gate: None,
    };
    let (actor, _) = Actor::spawn(None, Bus, args).await.unwrap();
    bus.slot().set(actor);
    let (tg, _rx) = spawn_recorder("tg", &bus).await;
    let config = Config {
        provider: "claude".into(),
        model: "opus".into(),
        permission_mode: "bypassPermissions".into(),
        allowed_user_ids: vec![1001],
        ..Config::default()
    };
    let ctx = RunContext {
        agent: "main".into(),
        paths: paths.clone(),
        config: Arc::new(config),
        bus: bus.clone(),
        journal: SharedRunJournal::open(&paths.run_journal()).unwrap(),
        queue: DependencyQueue::new(),
        catalog: ModelCatalog::default(),
        cli_path,
        extra_env,
    };
    World { _dir: dir, home, bus, tg, ctx }
}

fn job(id: &str, schedule: &str, extra: Value) -> Value {
    let mut job = json!({
        "id": id, "title": format!("Job {id}"), "description": "", "schedule": schedule,
        "task_folder": id, "agent_instruction": "Say hello from cron", "enabled": true,
        "created_at": "2026-01-01T00:00:00+00:00", "last_run_at": null, "last_run_status": null,
        "chat_id": 1001, "transport": "tg"
    });
    for (key, value) in extra.as_object().unwrap() {
        job[key] = value.clone();
    }
    job
}

fn write_jobs(home: &Utf8Path, jobs: &[Value]) {
    for job in jobs {
        std::fs::create_dir_all(home.join("workspace/cron_tasks").join(job["task_folder"].as_str().unwrap())).unwrap();
    }
    std::fs::write(home.join("cron_jobs.json"), serde_json::to_string_pretty(&json!({ "jobs": jobs })).unwrap())
        .unwrap();
}

/// A wall clock that moves with tokio's (paused) clock from `start`.
fn paused_clock(start: DateTime<Utc>) -> WallClock {
    let origin = tokio::time::Instant::now();
    Arc::new(move || start + chrono::Duration::from_std(origin.elapsed()).unwrap())
}

/// The real clock shifted so that the next minute starts `lead` from now.
fn clock_before_next_minute(lead: Duration) -> WallClock {
    let now = Utc::now();
    let into_minute = chrono::Duration::seconds(i64::from(now.timestamp() as u32 % 60))
        + chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
    let offset = chrono::Duration::seconds(60) - into_minute - chrono::Duration::from_std(lead).unwrap();
    Arc::new(move || Utc::now() + offset)
}

async fn start_cron(ctx: &RunContext, clock: WallClock) -> ActorRef<CronMsg> {
    let args = CronArgs { ctx: ctx.clone(), clock, watch_file: false };
    Actor::spawn(None, Cron, args).await.unwrap().0
}

/// `(job, slot)` of every delivered cron result, from the run ids they carry.
fn fired(tg: &Recorder) -> Vec<(String, DateTime<Utc>)> {
    tg.delivered()
        .iter()
        .filter_map(|(envelope, _)| {
            let key = delivery_key(envelope)?.to_owned();
            let mut parts = key.splitn(3, ':');
            let (_, job, slot) = (parts.next()?, parts.next()?, parts.next()?);
            Some((job.to_owned(), Utc.timestamp_opt(slot.parse().ok()?, 0).single()?))
        })
        .collect()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

async fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

#[tokio::test(start_paused = true)]
async fn a_simulated_week_fires_at_the_exact_instants_with_quiet_hours_and_dst() {
    // No CLI on the path: every run ends at once as "[claude CLI not found]" (reported once per
    // fire), so only the timer is measured.
    let w = world(vec![Utf8PathBuf::from("/nonexistent")], vec![]).await;
    write_jobs(
        &w.home,
        &[
            job("berlin", "0 9 * * mon-fri", json!({"timezone": "Europe/Berlin"})),
            job("six", "0 */6 * * *", json!({"timezone": "UTC", "quiet_start": 0, "quiet_end": 7})),
            job("off", "* * * * *", json!({"enabled": false})),
        ],
    );
    // Thursday 2026-03-26 00:00 UTC to Thursday 2026-04-02 08:00; Berlin moves to summer time on
    // Sunday 2026-03-29.
    let cron = start_cron(&w.ctx, paused_clock(at("2026-03-26T00:00:00Z"))).await;
    tokio::time::sleep(Duration::from_secs(7 * 24 * 3600 + 8 * 3600)).await;
    let fired = fired(&w.tg);
    let berlin: Vec<DateTime<Utc>> = fired.iter().filter(|(j, _)| j == "berlin").map(|(_, t)| *t).collect();
    assert_eq!(
        berlin,
        [
            at("2026-03-26T08:00:00Z"), // Thu, CET
            at("2026-03-27T08:00:00Z"), // Fri
            at("2026-03-30T07:00:00Z"), // Mon, CEST
            at("2026-03-31T07:00:00Z"),
            at("2026-04-01T07:00:00Z"),
            at("2026-04-02T07:00:00Z"), // Thu
        ]
    );
    let six: Vec<DateTime<Utc>> = fired.iter().filter(|(j, _)| j == "six").map(|(_, t)| *t).collect();
    assert_eq!(six.len(), 14, "12:00 and 18:00 each day; 00:00 and 06:00 are quiet: {six:?}");
    assert!(six.iter().all(|t| t.format("%H:%M").to_string() == "12:00" || t.format("%H:%M").to_string() == "18:00"));
    assert!(fired.iter().all(|(j, _)| j != "off"), "a disabled job never fires");
    let texts: Vec<String> = w.tg.delivered().iter().map(|(e, _)| e.result_text.clone()).collect();
    assert!(texts.iter().all(|t| t.ends_with("[claude CLI not found]")), "{texts:?}");
    let jobs: Value = serde_json::from_str(&std::fs::read_to_string(w.home.join("cron_jobs.json")).unwrap()).unwrap();
    assert_eq!(jobs["jobs"][0]["last_run_status"], "error:cli_not_found_claude");
    // One wake-up per slot (the 6 Berlin ones and the 29 six-hourly ones, quiet ones included),
    // none in between.
    let stats = ractor::call!(cron, |reply| CronMsg::Stats { reply }).unwrap();
    assert_eq!((stats.wakeups, stats.runs), (35, 20), "{stats:?}");
    cron.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_slot_missed_across_a_suspend_is_not_caught_up() {
    let w = world(vec![Utf8PathBuf::from("/nonexistent")], vec![]).await;
    write_jobs(&w.home, &[job("hourly", "0 * * * *", json!({"timezone": "UTC"}))]);
    // The wall clock jumps 3 h 10 min ahead of the monotonic one (a laptop asleep) while the
    // timer waits for 11:00; it wakes at 14:10 wall time.
    let origin = tokio::time::Instant::now();
    let start = at("2026-05-05T10:30:00Z");
    let jumped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&jumped);
    let clock: WallClock = Arc::new(move || {
        let base = start + chrono::Duration::from_std(origin.elapsed()).unwrap();
        if flag.load(std::sync::atomic::Ordering::SeqCst) { base + chrono::Duration::minutes(190) } else { base }
    });
    let cron = start_cron(&w.ctx, clock).await;
    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
    jumped.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    let slots: Vec<DateTime<Utc>> = fired(&w.tg).into_iter().map(|(_, t)| t).collect();
    assert_eq!(slots.first(), Some(&at("2026-05-05T15:00:00Z")), "11:00 (slept through) is skipped: {slots:?}");
    cron.stop(None);
}

#[tokio::test]
async fn a_fired_job_runs_the_cli_once_and_its_result_reaches_its_chat_once() {
    let root = tempfile::tempdir().unwrap();
    let root_path = Utf8PathBuf::from_path_buf(root.path().to_path_buf()).unwrap();
    let bin = crate::support::fake_cli::install(&root_path);
    let record = root_path.join("record.jsonl");
    let env = vec![("FAKE_CLI_FIXTURE".into(), "cron_oneshot".into()), ("FAKE_CLI_RECORD".into(), record.to_string())];
    let w = world(vec![bin], env).await;
    write_jobs(&w.home, &[job("daily", "* * * * *", json!({"topic_id": 7}))]);
    let cron = start_cron(&w.ctx, clock_before_next_minute(Duration::from_millis(800))).await;
    assert!(wait_for(Duration::from_secs(15), || !w.tg.delivered().is_empty()).await, "no result arrived");
    let (envelope, _): (Envelope, _) = w.tg.delivered()[0].clone();
    let recorded = std::fs::read_to_string(&record).unwrap();
    let starts: Vec<Value> =
        recorded.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|r| r["event"] == "start").collect();
    assert_eq!(starts.len(), 1, "one CLI run");
    assert!(starts[0]["cwd"].as_str().unwrap().ends_with("workspace/cron_tasks/daily"), "{}", starts[0]);
    assert!(envelope.result_text.starts_with("**TASK: Job daily**\n\n"), "{}", envelope.result_text);
    assert!(envelope.result_text.contains("FAKE["), "the model's answer: {}", envelope.result_text);
    assert_eq!((envelope.chat_id.get(), envelope.topic_id), (1001, Some(7)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.tg.delivered().len(), 1, "delivered once");
    let ok = wait_for(Duration::from_secs(5), || {
        let jobs: Value =
            serde_json::from_str(&std::fs::read_to_string(w.home.join("cron_jobs.json")).unwrap()).unwrap();
        jobs["jobs"][0]["last_run_status"] == "success" && jobs["jobs"][0]["last_run_at"].is_string()
    })
    .await;
    assert!(ok, "the job records its last run");
    assert!(w.ctx.journal.open_runs().is_empty(), "the run is finished in the journal");
    cron.stop(None);
}

#[tokio::test]
async fn runs_sharing_a_dependency_never_overlap_and_others_do() {
    let root = tempfile::tempdir().unwrap();
    let root_path = Utf8PathBuf::from_path_buf(root.path().to_path_buf()).unwrap();
    let bin = crate::support::fake_cli::install(&root_path);
    let record = root_path.join("record.jsonl");
    let env = vec![
        ("FAKE_CLI_FIXTURE".into(), "cron_oneshot".into()),
        ("FAKE_CLI_RECORD".into(), record.to_string()),
        ("FAKE_CLI_HOLD_MS".into(), "1200".into()),
    ];
    let w = world(vec![bin], env).await;
    write_jobs(
        &w.home,
        &[
            job("a", "* * * * *", json!({"dependency": "db"})),
            job("b", "* * * * *", json!({"dependency": "db"})),
            job("c", "* * * * *", json!({})),
            job("d", "* * * * *", json!({})),
        ],
    );
    let cron = start_cron(&w.ctx, clock_before_next_minute(Duration::from_millis(500))).await;
    assert!(wait_for(Duration::from_secs(20), || w.tg.delivered().len() == 4).await, "four results");
    let records: Vec<Value> =
        std::fs::read_to_string(&record).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let span = |folder: &str| -> (f64, f64) {
        let start = records
            .iter()
            .find(|r| r["event"] == "start" && r["cwd"].as_str().is_some_and(|c| c.ends_with(folder)))
            .unwrap();
        let exit = records.iter().find(|r| r["event"] == "exit" && r["pid"] == start["pid"]).unwrap();
        (start["t"].as_f64().unwrap(), exit["t"].as_f64().unwrap())
    };
    let (a, b, c, d) = (span("/a"), span("/b"), span("/c"), span("/d"));
    let overlap = |x: (f64, f64), y: (f64, f64)| x.0 < y.1 && y.0 < x.1;
    assert!(!overlap(a, b), "same dependency: one after the other ({a:?} {b:?})");
    assert!(overlap(c, d), "no dependency: side by side ({c:?} {d:?})");
    cron.stop(None);
}

#[tokio::test]
async fn runs_a_crash_left_open_are_reported_once_or_settled_and_never_run_again() {
    let w = world(vec![Utf8PathBuf::from("/nonexistent")], vec![]).await;
    write_jobs(&w.home, &[job("daily", "0 9 * * *", json!({}))]);
    let started = |run: &str| RunRecord::Started {
        run: run.into(),
        source: RunSource::Cron { job: "daily".into() },
        at: "2026-12-04T09:00:00+00:00".into(),
    };
    // One run was cut while its CLI worked; the other's result had reached the Bus.
    w.ctx.journal.record(started("cron:daily:1")).unwrap();
    w.ctx.journal.record(started("cron:daily:2")).unwrap();
    w.bus
        .submit(
            Envelope { result_text: "**TASK: Job daily**\n\ndone".into(), ..Envelope::default() }
                .with_delivery_key("cron:daily:2"),
        )
        .await
        .unwrap();
    let cron = start_cron(&w.ctx, Arc::new(Utc::now)).await;
    assert!(wait_for(Duration::from_secs(5), || w.ctx.journal.open_runs().is_empty()).await, "both settled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let texts: Vec<String> = w.tg.delivered().iter().map(|(e, _)| e.result_text.clone()).collect();
    let cut: Vec<&String> = texts.iter().filter(|t| t.contains("error:interrupted")).collect();
    assert_eq!(cut.len(), 1, "the cut run is reported once: {texts:?}");
    assert!(cut[0].starts_with("**TASK: Job daily**"), "{}", cut[0]);
    assert_eq!(texts.iter().filter(|t| t.ends_with("done")).count(), 1, "the settled result is not sent again");
    cron.stop(None);
}

#[tokio::test]
async fn a_broken_file_keeps_the_jobs_last_loaded_and_an_invalid_schedule_only_its_job() {
    let w = world(vec![Utf8PathBuf::from("/nonexistent")], vec![]).await;
    write_jobs(&w.home, &[job("good", "0 9 * * *", json!({})), job("bad", "61 * * * *", json!({}))]);
    let cron = start_cron(&w.ctx, Arc::new(Utc::now)).await;
    let jobs = ractor::call!(cron, |reply| CronMsg::NextFires { reply }).unwrap();
    let good = jobs.iter().find(|j| j.id == "good").unwrap();
    let bad = jobs.iter().find(|j| j.id == "bad").unwrap();
    assert!(good.next.is_some());
    assert!(bad.next.is_none() && bad.problem.as_deref().is_some_and(|p| p.contains("minute")), "{bad:?}");
    std::fs::write(w.home.join("cron_jobs.json"), "{\"jobs\": [ {\"id\": ").unwrap();
    cron.cast(CronMsg::Reload).unwrap();
    let jobs = ractor::call!(cron, |reply| CronMsg::NextFires { reply }).unwrap();
    assert_eq!(jobs.len(), 2, "the jobs last loaded are kept");
    assert!(jobs.iter().find(|j| j.id == "good").unwrap().next.is_some());
    cron.stop(None);
}

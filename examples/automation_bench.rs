//! Automation benchmark. Prints:
//! - timer wake-ups of the cron observer over a simulated idle hour with 100 jobs (paused
//!   time, in process) against the number of distinct fire instants — the goal is one wake-up
//!   per fire instant and none in between;
//! - fire → CLI spawned latency (p50/p95) of the real `ductor` binary with 100 jobs loaded,
//!   one of them firing every 2 seconds (the fake `claude` records when it starts);
//! - the service's RSS with those 100 jobs after 10 s;
//! - webhook requests answered per second with bearer auth (the webhook server in process, 8
//!   clients, a fresh connection per request; the sink answers at once, so this is the server's
//!   own cost: checks, auth, 202).
//!
//! Run: `cargo build --release --bin ductor --example fake_cli && cargo run --release --example
//! automation_bench`.

#[path = "../tests/suite/support/fake_bot_api.rs"]
mod fake_bot_api;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use camino::Utf8PathBuf;
use chrono::{DateTime, Utc};
use ductor::chat::model_catalog::ModelCatalog;
use ductor::core::config::Config;
use ductor::core::config::model::WebhooksConfig;
use ductor::core::cron_schedule::CronSchedule;
use ductor::core::state::webhooks::Webhooks;
use ductor::observer::cron::{Cron, CronArgs, CronMsg};
use ductor::observer::unattended::RunContext;
use ductor::observer::webhook_server::{ListenAddress, WebhookServer, WebhookServerArgs, WebhookSink, WebhookTable};
use ductor::runtime::bus::{Bus, BusArgs, BusHandle};
use ductor::runtime::dependency_queue::DependencyQueue;
use ductor::store::paths::DuctorPaths;
use ductor::store::run_journal::SharedRunJournal;
use fake_bot_api::FakeBotApi;
use ractor::Actor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "123456:BENCH";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

/// 100 jobs: minute `i % 60` of every hour, a few every 5 or 15 minutes, some daily.
fn hundred_jobs() -> Vec<Value> {
    (0..100)
        .map(|i| {
            let schedule = match i % 10 {
                0 => "*/15 * * * *".to_owned(),
                1 => "*/5 * * * *".to_owned(),
                2 => format!("{} 9 * * *", i % 60),
                _ => format!("{} * * * *", i % 60),
            };
            json!({"id": format!("job-{i:03}"), "title": format!("Job {i}"), "description": "", "schedule": schedule,
                   "task_folder": format!("job-{i:03}"), "agent_instruction": "x", "enabled": true,
                   "created_at": "2026-01-01T00:00:00+00:00", "last_run_at": null, "last_run_status": null,
                   "timezone": "UTC"})
        })
        .collect()
}

/// The simulated idle hour: (wake-ups, runs started, distinct fire instants).
fn simulated_hour() -> anyhow::Result<(u64, u64, usize)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let home = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).map_err(|_| anyhow!("not UTF-8"))?;
        let paths = DuctorPaths::at(home.clone());
        let jobs = hundred_jobs();
        std::fs::write(paths.cron_jobs(), serde_json::to_string(&json!({"jobs": jobs}))?)?;
        let bus = BusHandle::new();
        let args = BusArgs {
            agent: "main".into(),
            journal: paths.outbox(),
            served: vec!["tg".into()],
            registry: bus.registry(),
            batch_fsync: true,
            gate: None,
        };
        let (actor, _) = Actor::spawn(None, Bus, args).await.map_err(|e| anyhow!("{e}"))?;
        bus.slot().set(actor);
        let ctx = RunContext {
            agent: "main".into(),
            paths: paths.clone(),
            config: Arc::new(Config::default()),
            bus,
            journal: SharedRunJournal::open(&paths.run_journal())?,
            queue: DependencyQueue::new(),
            catalog: ModelCatalog::default(),
            // No task folders: every fire ends at once as `error:folder_missing`.
            cli_path: Vec::new(),
            extra_env: Vec::new(),
        };
        let start: DateTime<Utc> = "2026-12-07T10:00:30Z".parse()?;
        let origin = tokio::time::Instant::now();
        let clock = Arc::new(move || start + chrono::Duration::from_std(origin.elapsed()).unwrap_or_default());
        let args = CronArgs { ctx, clock, watch_file: false };
        let (cron, _) = Actor::spawn(None, Cron, args).await.map_err(|e| anyhow!("{e}"))?;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let stats = ractor::call!(cron, |reply| CronMsg::Stats { reply }).map_err(|e| anyhow!("{e}"))?;
        let end = start + chrono::Duration::hours(1);
        let mut instants = BTreeSet::new();
        for job in &jobs {
            let schedule = CronSchedule::parse(job["schedule"].as_str().unwrap_or_default())?;
            let mut at = start;
            while let Some(next) = schedule.next_fire(at, chrono_tz::UTC).filter(|n| *n <= end) {
                instants.insert(next);
                at = next;
            }
        }
        cron.stop(None);
        Ok((stats.wakeups, stats.runs, instants.len()))
    })
}

/// (VmRSS in KiB) of a process.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The real binary with 100 jobs (one firing every 2 s): (fire → spawn latencies in ms, RSS KiB).
async fn real_service() -> anyhow::Result<(Vec<f64>, u64)> {
    let exe = std::env::current_exe()?;
    let examples = exe.parent().context("examples dir")?;
    let fake = examples.join("fake_cli");
    let ductor = examples.parent().context("profile dir")?.join("ductor");
    if !fake.exists() || !ductor.exists() {
        return Err(anyhow!("build first: cargo build --release --bin ductor --example fake_cli"));
    }
    let api = FakeBotApi::start(TOKEN).await?;
    let dir = tempfile::tempdir()?;
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).map_err(|_| anyhow!("not UTF-8"))?;
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(&fake, bin.join("claude"))?;
    let home = root.join("home");
    std::fs::create_dir_all(home.join("config"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = json!({"telegram_token": TOKEN, "allowed_user_ids": [1], "interagent_port": port,
        "provider": "claude", "model": "opus"});
    std::fs::write(home.join("config/config.json"), serde_json::to_string_pretty(&config)?)?;
    let mut jobs = hundred_jobs();
    jobs[0]["schedule"] = json!("*/2 * * * * *");
    jobs[0]["chat_id"] = json!(1);
    for job in &jobs {
        std::fs::create_dir_all(home.join("workspace/cron_tasks").join(job["task_folder"].as_str().unwrap_or("x")))?;
    }
    std::fs::write(home.join("cron_jobs.json"), serde_json::to_string(&json!({"jobs": jobs}))?)?;
    let record = root.join("record.jsonl");
    let mut child = Command::new(&ductor)
        .env("DUCTOR_HOME", home.as_str())
        .env("HOME", root.as_str())
        .env("DUCTOR_TELEGRAM_API_BASE", api.base_url())
        .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()))
        .env("FAKE_CLI_RECORD", record.as_str())
        .env_remove("DUCTOR_SUPERVISOR")
        .env_remove("INVOCATION_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(21)).await;
    let rss = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let mut latencies: Vec<f64> = std::fs::read_to_string(&record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"] == "start")
        .filter_map(|r| r["t_us"].as_f64())
        .map(|t_us| {
            // The slot is the even second the run belongs to.
            let seconds = (t_us / 1e6).floor();
            let slot = seconds - (seconds as i64 % 2) as f64;
            (t_us / 1e3) - slot * 1e3
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, rss))
}

/// Requests per second answered by the webhook server (bearer auth, 202) with 8 clients.
async fn webhook_throughput() -> anyhow::Result<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let home = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).map_err(|_| anyhow!("not UTF-8"))?;
    let table = WebhookTable::new();
    let hooks: Webhooks = serde_json::from_value(json!({"hooks": [{"id": "h", "title": "H", "mode": "wake",
        "prompt_template": "{{x}}", "auth_mode": "bearer", "token": "bench-token"}]}))?;
    table.replace(&hooks);
    let sink: WebhookSink = Arc::new(|_| Box::pin(async { Ok(()) }));
    let listen = ListenAddress::default();
    let config = WebhooksConfig {
        enabled: true,
        host: "127.0.0.1".into(),
        port: 0,
        token: "global".into(),
        rate_limit_per_minute: 100_000_000,
        ..WebhooksConfig::default()
    };
    let args = WebhookServerArgs { config, paths: DuctorPaths::at(home), table, sink, listen: listen.clone() };
    let (server, _) = Actor::spawn(None, WebhookServer, args).await.map_err(|e| anyhow!("{e}"))?;
    let addr = listen.get().context("the server is not listening")?;
    let answered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let answered = Arc::clone(&answered);
        clients.spawn(async move {
            let body = br#"{"x": 1}"#;
            let request = format!(
                "POST /hooks/h HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer bench-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                String::from_utf8_lossy(body)
            );
            while Instant::now() < deadline {
                let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { continue };
                if stream.write_all(request.as_bytes()).await.is_err() {
                    continue;
                }
                let mut answer = Vec::new();
                if stream.read_to_end(&mut answer).await.is_ok() && answer.starts_with(b"HTTP/1.1 202") {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let started = Instant::now();
    while clients.join_next().await.is_some() {}
    let total = answered.load(Ordering::Relaxed);
    server.stop(None);
    Ok((total as f64 / started.elapsed().as_secs_f64(), total))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (wakeups, runs, instants) = tokio::task::spawn_blocking(simulated_hour).await??;
    println!(
        "idle hour, 100 jobs: {wakeups} timer wake-ups for {instants} distinct fire instants ({runs} runs started)"
    );
    let (latencies, rss) = real_service().await?;
    println!(
        "fire → CLI spawned over {} fires: p50 {:.2} ms, p95 {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95)
    );
    println!("RSS with 100 jobs after 21 s: {:.1} MiB", rss as f64 / 1024.0);
    let (per_second, total) = webhook_throughput().await?;
    println!("webhook requests answered (bearer, 202): {per_second:.0}/s ({total} in 5 s, 8 clients)");
    Ok(())
}

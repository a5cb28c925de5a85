//! Telegram benchmark: the real `ductor` binary on a temporary home, the fake Bot API server
//! and the fake `claude` (answering in about 0.2 s). Prints cold start to the first long poll,
//! idle RSS after 10 s, message → CLI spawn latency (p50/p95 over 100 sequential messages), and
//! a burst of 20 chats × 5 messages: wall time, service CPU seconds, peak RSS, lost messages
//! and chats whose answers came out of order.
//!
//! Run: `cargo build --release --bin ductor --example fake_cli && cargo run --release --example
//! telegram_bench`.

#[path = "../tests/suite/support/fake_bot_api.rs"]
mod fake_bot_api;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use camino::Utf8PathBuf;
use fake_bot_api::FakeBotApi;
use serde_json::{Value, json};

const TOKEN: &str = "123456:BENCH";

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

/// (VmRSS, VmHWM) in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// utime + stime of the process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}

fn starts(record: &Utf8PathBuf) -> Vec<Value> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"] == "start")
        .collect()
}

async fn until(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    condition()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
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
    std::fs::create_dir_all(home.join("workspace/memory_system"))?;
    std::fs::write(
        home.join("workspace/memory_system/MAINMEMORY.md"),
        "# MAINMEMORY\nThe user likes short answers. (fake memory for tests)",
    )?;
    let users: Vec<i64> = (1..=20).collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = json!({"telegram_token": TOKEN, "allowed_user_ids": users, "interagent_port": port, "model": "opus",
        "streaming": {"enabled": false}});
    std::fs::write(home.join("config/config.json"), serde_json::to_string_pretty(&config)?)?;
    let record = root.join("record.jsonl");

    let spawn = || {
        Command::new(&ductor)
            .env("DUCTOR_HOME", home.as_str())
            .env("HOME", root.as_str())
            .env("DUCTOR_TELEGRAM_API_BASE", api.base_url())
            .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()))
            .env("FAKE_CLI_RECORD", record.as_str())
            .env("FAKE_CLI_LINE_DELAY_MS", "66")
            .env_remove("DUCTOR_SUPERVISOR")
            .env_remove("INVOCATION_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    let spawned = Instant::now();
    let mut child = spawn()?;
    let pid = child.id();
    let polling =
        api.wait_for_call(Duration::from_secs(30), |c| c.method == "getUpdates" && c.params["timeout"] == json!(10));
    polling.await.context("the service never polled")?;
    let cold = spawned.elapsed();
    println!("cold start → first long poll: {:.1} ms", cold.as_secs_f64() * 1000.0);

    tokio::time::sleep(Duration::from_secs(10)).await;
    let (idle_rss, _) = memory_kib(pid);
    println!("idle RSS after 10 s: {:.1} MiB", idle_rss as f64 / 1024.0);

    // 100 sequential messages in one chat: message → CLI spawn.
    let mut latencies = Vec::new();
    for i in 0..100 {
        let before = starts(&record).len();
        let sent = now_ms();
        api.send_text(1, 1, &format!("message {i}"));
        if !until(Duration::from_secs(30), || starts(&record).len() > before).await {
            return Err(anyhow!("message {i} never reached the CLI"));
        }
        let started = starts(&record).last().and_then(|r| r["t_us"].as_f64()).unwrap_or(0.0) / 1000.0;
        latencies.push(started - sent);
        let answered = |api: &FakeBotApi| api.bot_messages(1).len() > i;
        let waited = until(Duration::from_secs(30), || answered(&api)).await;
        if !waited {
            return Err(anyhow!("message {i} was not answered"));
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "message → CLI spawn over 100 sequential messages: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95)
    );

    // Burst: 20 chats × 5 messages.
    let cpu_before = cpu_seconds(pid);
    let burst_started = Instant::now();
    let mut sent: HashMap<i64, Vec<i64>> = HashMap::new();
    for round in 0..5 {
        for chat in 2..=21i64 {
            let chat = if chat == 21 { 1 } else { chat };
            let message_id = api.send_text(chat, chat as u64, &format!("burst {round}"));
            sent.entry(chat).or_default().push(message_id);
        }
    }
    let expected = |api: &FakeBotApi| {
        sent.iter().all(|(chat, ids)| {
            let answered: Vec<i64> = api.bot_messages(*chat).iter().filter_map(|m| m.reply_to).collect();
            ids.iter().all(|id| answered.contains(id))
        })
    };
    let complete = until(Duration::from_secs(120), || expected(&api)).await;
    let wall = burst_started.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    let (_, peak) = memory_kib(pid);
    let mut lost = 0;
    let mut out_of_order = 0;
    for (chat, ids) in &sent {
        let answered: Vec<i64> =
            api.bot_messages(*chat).iter().filter_map(|m| m.reply_to).filter(|r| ids.contains(r)).collect();
        lost += ids.iter().filter(|id| !answered.contains(id)).count();
        if answered.windows(2).any(|w| w[0] > w[1]) {
            out_of_order += 1;
        }
    }
    println!(
        "burst 20 chats × 5 messages: wall {:.2} s (complete: {complete}), service CPU {:.2} s, peak RSS {:.1} MiB, lost {lost}, chats out of order {out_of_order}",
        wall.as_secs_f64(),
        cpu,
        peak as f64 / 1024.0
    );
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();

    // The inbox's fsyncs during a burst alone: a fresh run that only takes a second burst; the
    // count is logged when the inbox closes at shutdown.
    let mut child = spawn()?;
    let polls = api.calls_of("getUpdates").len();
    let polling = api.wait_for_call(Duration::from_secs(30), |c| c.method == "getUpdates");
    polling.await.context("the service never polled again")?;
    while api.calls_of("getUpdates").len() <= polls {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before: HashMap<i64, usize> = (1..=20).map(|chat| (chat, api.bot_messages(chat).len())).collect();
    let burst_started = Instant::now();
    for round in 0..5 {
        for chat in 1..=20i64 {
            api.send_text(chat, chat as u64, &format!("second burst {round}"));
        }
    }
    let done = |api: &FakeBotApi| (1..=20).all(|chat| api.bot_messages(chat).len() >= before[&chat] + 5);
    let complete = until(Duration::from_secs(120), || done(&api)).await;
    let wall = burst_started.elapsed();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    let log = std::fs::read_to_string(home.join("logs/agent.log")).unwrap_or_default();
    let fsyncs: u64 = log
        .lines()
        .rev()
        .find(|l| l.contains("Inbox closed."))
        .and_then(|l| l.split("fsyncs=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    println!(
        "inbox fsyncs during a 20 chats × 5 messages burst: {fsyncs} for 100 messages in {:.2} s ({:.0} fsyncs/s, {:.1} per message; complete: {complete})",
        wall.as_secs_f64(),
        fsyncs as f64 / wall.as_secs_f64(),
        fsyncs as f64 / 100.0
    );
    Ok(())
}

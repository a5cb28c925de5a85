//! Downtime benchmark: the real `ductor` binary on a temporary home, the fake Bot API server
//! (switched unreachable and back, as in a Telegram or network outage) and the fake `claude`.
//! Prints the time from the server coming back to the first answer to a message sent at that
//! moment (each round after `--down-secs` of outage; median of `--rounds`), and the CPU seconds
//! the service used while Telegram was unreachable for `--outage-secs` (goal: under 0.5 s for
//! 10 minutes), then the time to the answer after that long outage (goal: within 65 s).
//!
//! Run: `cargo build --release --bin ductor --example fake_cli && cargo run --release --example
//! downtime_bench -- [--rounds 5] [--down-secs 15] [--outage-secs 600]`.

#[path = "../tests/suite/support/fake_bot_api.rs"]
mod fake_bot_api;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use camino::Utf8PathBuf;
use fake_bot_api::FakeBotApi;
use serde_json::json;

const TOKEN: &str = "123456:BENCH";
const CHAT: i64 = 1;

/// utime + stime of the process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}

/// Sends a message now and waits for its answer: seconds from now to the answer.
async fn answer_time(api: &FakeBotApi, text: &str) -> anyhow::Result<f64> {
    let before = api.bot_messages(CHAT).len();
    let sent = Instant::now();
    api.send_text(CHAT, CHAT as u64, text);
    let answered = api.wait_until(Duration::from_secs(120), |_| api.bot_messages(CHAT).len() > before).await;
    if !answered {
        return Err(anyhow!("{text:?} was not answered within 120 s"));
    }
    Ok(sent.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (mut rounds, mut down_secs, mut outage_secs) = (5usize, 15u64, 600u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--rounds", Some(value)) => rounds = value.parse()?,
            ("--down-secs", Some(value)) => down_secs = value.parse()?,
            ("--outage-secs", Some(value)) => outage_secs = value.parse()?,
            _ => return Err(anyhow!("usage: downtime_bench [--rounds N] [--down-secs S] [--outage-secs S]")),
        }
    }
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
    let config = json!({"telegram_token": TOKEN, "allowed_user_ids": [CHAT], "interagent_port": port,
        "model": "opus", "streaming": {"enabled": false}});
    std::fs::write(home.join("config/config.json"), serde_json::to_string_pretty(&config)?)?;
    let mut child = Command::new(&ductor)
        .env("DUCTOR_HOME", home.as_str())
        .env("HOME", root.as_str())
        .env("DUCTOR_TELEGRAM_API_BASE", api.base_url())
        .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()))
        .env("FAKE_CLI_RECORD", root.join("record.jsonl").as_str())
        .env_remove("DUCTOR_SUPERVISOR")
        .env_remove("INVOCATION_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let polling =
        api.wait_for_call(Duration::from_secs(30), |c| c.method == "getUpdates" && c.params["timeout"] == json!(10));
    polling.await.context("the service never polled")?;
    answer_time(&api, "warm up").await?;

    let mut times = Vec::new();
    for round in 0..rounds {
        api.set_reachable(false);
        tokio::time::sleep(Duration::from_secs(down_secs)).await;
        api.set_reachable(true);
        let took = answer_time(&api, &format!("back {round}")).await?;
        println!("round {}: server back after {down_secs} s down → first answer in {took:.2} s", round + 1);
        times.push(took);
    }
    times.sort_by(f64::total_cmp);
    if let Some(median) = times.get(times.len() / 2) {
        println!("server back → first answer, median of {rounds}: {median:.2} s");
    }

    api.set_reachable(false);
    let cpu_before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(outage_secs)).await;
    let cpu = cpu_seconds(pid) - cpu_before;
    api.set_reachable(true);
    let took = answer_time(&api, "back after the long outage").await?;
    println!("CPU while Telegram was unreachable for {outage_secs} s: {cpu:.2} s");
    println!("server back after {outage_secs} s down → first answer in {took:.2} s");

    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

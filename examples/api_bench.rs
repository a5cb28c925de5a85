//! Direct API benchmark. In process, on one core: frames sealed and opened per second with
//! protocol v1 (NaCl box) and v2 (secretstream), for a typical `text_delta` frame. Against the
//! real `ductor` binary (fake Bot API, fake `claude` answering at once): message → first
//! `text_delta` latency over loopback (p50/p95 over 50 sequential messages, v2 client), and the
//! service's RSS per idle authenticated connection (500 v2 sockets).
//!
//! Run: `cargo build --release --bin ductor --example fake_cli && cargo run --release --example
//! api_bench`.
//!
//! Measured on the 2-core build machine (release): 137-byte frame, v1 310 000 and v2 745 000
//! frames/s; first `text_delta` p50 9.4 ms, p95 12.6 ms; 135 KiB RSS per idle authenticated
//! socket (most of it the WebSocket's 128 KiB read buffer).

#[path = "../tests/suite/support/fake_bot_api.rs"]
mod fake_bot_api;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use camino::Utf8PathBuf;
use ductor::transport::api::box_v1::{self, BoxV1};
use ductor::transport::api::client::{self, Login};
use ductor::transport::api::stream_v2::{self, Opener, Sealer};
use ductor::transport::api::wire::ascii_json;
use fake_bot_api::FakeBotApi;
use serde_json::json;

const TOKEN: &str = "123456:BENCH";
const API_TOKEN: &str = "bench-api-token";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Frames per second (each sealed by one side and opened by the other), single thread.
fn frames_per_second() -> anyhow::Result<()> {
    let frame = ascii_json(&json!({"type": "text_delta", "data": "The quick brown fox jumps over the lazy dog; \
        a typical streamed piece of an answer, about a hundred bytes."}));
    let n = 200_000u32;
    let server = BoxV1::new(&[1; 32], &box_v1::public_key(&[2; 32]));
    let client = BoxV1::new(&[2; 32], &box_v1::public_key(&[1; 32]));
    let start = Instant::now();
    for i in 0..n {
        let mut nonce = [0u8; 24];
        nonce[..4].copy_from_slice(&i.to_le_bytes());
        let sealed = server.seal(&nonce, frame.as_bytes()).map_err(|e| anyhow!("{e}"))?;
        let opened = client.open(&sealed).map_err(|e| anyhow!("{e}"))?;
        std::hint::black_box(opened);
    }
    let v1 = f64::from(n) / start.elapsed().as_secs_f64();
    let keys = stream_v2::server_session_keys(&[1; 32], &stream_v2::public_key(&[2; 32])?)?;
    let mut sealer = Sealer::new(&keys.tx, [3; 24]);
    let mut opener = Opener::new(&keys.tx);
    let start = Instant::now();
    for _ in 0..n {
        let sealed = sealer.seal_text(&frame)?;
        let opened = opener.open_text(&sealed)?;
        std::hint::black_box(opened);
    }
    let v2 = f64::from(n) / start.elapsed().as_secs_f64();
    println!("frame of {} bytes, sealed + opened (base64 included), one core:", frame.len());
    println!("  v1 (NaCl box):        {v1:>10.0} frames/s");
    println!("  v2 (secretstream):    {v2:>10.0} frames/s");
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    frames_per_second()?;
    let exe = std::env::current_exe()?;
    let examples = exe.parent().context("examples dir")?;
    let fake = examples.join("fake_cli");
    let ductor = examples.parent().context("profile dir")?.join("ductor");
    if !fake.exists() || !ductor.exists() {
        return Err(anyhow!("build first: cargo build --release --bin ductor --example fake_cli"));
    }
    let bot = FakeBotApi::start(TOKEN).await?;
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
    let free = || std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
    let (port, api_port) = (free()?, free()?);
    let config = json!({"telegram_token": TOKEN, "allowed_user_ids": [1], "interagent_port": port, "model": "opus",
        "api": {"enabled": true, "host": "127.0.0.1", "port": api_port, "token": API_TOKEN, "allow_public": true}});
    std::fs::write(home.join("config/config.json"), serde_json::to_string_pretty(&config)?)?;
    let mut child = Command::new(&ductor)
        .env("DUCTOR_HOME", home.as_str())
        .env("HOME", root.as_str())
        .env("DUCTOR_TELEGRAM_API_BASE", bot.base_url())
        .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()))
        .env_remove("DUCTOR_SUPERVISOR")
        .env_remove("INVOCATION_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let url = format!("ws://127.0.0.1:{api_port}/ws");
    let login = Login { token: API_TOKEN.to_owned(), chat_id: None, channel_id: None };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut sender, mut receiver, _) = loop {
        match client::connect(&url, &login).await {
            Ok(connected) => break connected,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(anyhow!("the API never answered: {e}")),
        }
    };
    let mut latencies = Vec::new();
    for i in 0..50 {
        let sent = Instant::now();
        sender.message(&format!("message {i}")).await?;
        let mut first = None;
        loop {
            let frame = receiver.next().await?.context("socket closed")?;
            if first.is_none() && frame["type"] == "text_delta" {
                first = Some(sent.elapsed());
            }
            if frame["type"] == "result" {
                break;
            }
        }
        latencies.push(first.context("no text_delta")?.as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "message → first text_delta (loopback, fake CLI, 50 sequential): p50 {:.1} ms, p95 {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95)
    );
    sender.close().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(pid);
    let count = 500;
    let mut idle = Vec::new();
    for _ in 0..count {
        idle.push(client::connect(&url, &login).await?);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid);
    println!(
        "RSS: {:.1} MiB before, {:.1} MiB with {count} idle authenticated sockets → {:.1} KiB per connection",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / f64::from(count)
    );
    drop(idle);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    Ok(())
}

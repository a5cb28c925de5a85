//! Many-agents benchmark: the real `ductor` binary on a temporary home with the fake `claude`
//! (instant answers) and one fake Bot API server per bot. Prints
//! - the sync ask round trip (`POST /interagent/send`, p50/p95 over 50 asks), the recipient's
//!   instant fake CLI run included (an upper bound of what ductor adds);
//! - RSS added by each idle sub-agent with a Telegram bot (0 vs 10 sub-agents, after 10 s idle);
//! - a burst to 10 agents × 10 chats × 3 messages: lost messages and chats answered out of order.
//!
//! Run: `cargo build --release --bin ductor --example fake_cli && cargo run --release --example
//! agents_bench`.

#[path = "../tests/suite/support/fake_bot_api.rs"]
mod fake_bot_api;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use camino::Utf8PathBuf;
use fake_bot_api::FakeBotApi;
use serde_json::{Value, json};

const MAIN_TOKEN: &str = "100000:MAIN";
const SUB_AGENTS: usize = 10;
const CHATS: i64 = 10;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn until(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

struct Home {
    root: Utf8PathBuf,
    home: Utf8PathBuf,
    port: u16,
    token: String,
    _dir: tempfile::TempDir,
}

fn home(fake: &std::path::Path) -> anyhow::Result<Home> {
    let dir = tempfile::tempdir()?;
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).map_err(|_| anyhow!("not UTF-8"))?;
    std::fs::create_dir_all(root.join("bin"))?;
    std::os::unix::fs::symlink(fake, root.join("bin/claude"))?;
    let home = root.join("home");
    std::fs::create_dir_all(home.join("config"))?;
    std::fs::create_dir_all(home.join("workspace/memory_system"))?;
    std::fs::write(home.join("workspace/memory_system/MAINMEMORY.md"), "# MAINMEMORY\n")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let users: Vec<i64> = (1..=CHATS).collect();
    let config = json!({"telegram_token": MAIN_TOKEN, "allowed_user_ids": users, "interagent_port": port,
        "model": "opus", "streaming": {"enabled": false}});
    std::fs::write(home.join("config/config.json"), serde_json::to_string_pretty(&config)?)?;
    let token = "bench-token".to_owned();
    Ok(Home { root, home, port, token, _dir: dir })
}

fn spawn(ductor: &std::path::Path, home: &Home, main_api: &FakeBotApi) -> anyhow::Result<Child> {
    Ok(Command::new(ductor)
        .env("DUCTOR_HOME", home.home.as_str())
        .env("HOME", home.root.as_str())
        .env("DUCTOR_TELEGRAM_API_BASE", main_api.base_url())
        .env("DUCTOR_INTERAGENT_TOKEN", &home.token)
        .env("PATH", format!("{}:{}", home.root.join("bin"), std::env::var("PATH").unwrap_or_default()))
        .env("FAKE_CLI_RECORD", home.root.join("record.jsonl").as_str())
        .env_remove("DUCTOR_SUPERVISOR")
        .env_remove("INVOCATION_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// A POST to the internal API; the JSON answer.
fn post(home: &Home, path: &str, body: &Value) -> anyhow::Result<Value> {
    use std::io::{Read, Write};
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", home.port))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        home.token,
        body.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (_, body) = raw.split_once("\r\n\r\n").context("an HTTP answer")?;
    Ok(serde_json::from_str(body)?)
}

fn agents_running(home: &Home) -> usize {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", home.port)) else { return 0 };
    let request = format!(
        "GET /interagent/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
        home.token
    );
    let mut raw = String::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_string(&mut raw).is_err() {
        return 0;
    }
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|h| h["agents"].as_object().map(|a| a.values().filter(|v| v["status"] == "running").count()))
        .unwrap_or(0)
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
    let main_api = FakeBotApi::start(MAIN_TOKEN).await?;
    let mut sub_apis = Vec::new();
    for i in 0..SUB_AGENTS {
        sub_apis.push(FakeBotApi::start(&format!("2000{i:02}:SUB")).await?);
    }
    let entries: Vec<Value> = sub_apis
        .iter()
        .enumerate()
        .map(|(i, api)| {
            json!({"name": format!("agent{i}"), "telegram_token": format!("2000{i:02}:SUB"),
                "allowed_user_ids": (1..=CHATS).collect::<Vec<_>>(), "telegram_api_base": api.base_url()})
        })
        .collect();

    // RSS: main alone, then with 10 sub-agents.
    let alone = home(&fake)?;
    let mut child = spawn(&ductor, &alone, &main_api)?;
    until(Duration::from_secs(30), || agents_running(&alone) >= 1).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_alone = rss_kib(child.id());
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();

    let many = home(&fake)?;
    std::fs::write(many.home.join("agents.json"), serde_json::to_string_pretty(&entries)?)?;
    let mut child = spawn(&ductor, &many, &main_api)?;
    let pid = child.id();
    if !until(Duration::from_secs(60), || agents_running(&many) > SUB_AGENTS).await {
        return Err(anyhow!("the sub-agents did not all start"));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_many = rss_kib(pid);
    println!(
        "idle RSS: main alone {:.1} MiB, with {SUB_AGENTS} sub-agents {:.1} MiB → {:.2} MiB per sub-agent",
        rss_alone as f64 / 1024.0,
        rss_many as f64 / 1024.0,
        (rss_many.saturating_sub(rss_alone)) as f64 / 1024.0 / SUB_AGENTS as f64
    );

    // Sync asks main → agent0: the whole round trip, the recipient's (instant) fake CLI run
    // included — an upper bound of what ductor adds.
    let mut round_trips = Vec::new();
    for i in 0..50 {
        let started = Instant::now();
        let answer =
            post(&many, "/interagent/send", &json!({"from": "main", "to": "agent0", "message": format!("q{i}")}))?;
        round_trips.push(started.elapsed().as_secs_f64() * 1000.0);
        if answer["success"] != true {
            return Err(anyhow!("ask {i} failed: {answer}"));
        }
    }
    round_trips.sort_by(f64::total_cmp);
    println!(
        "sync ask over 50 asks, round trip with the recipient's CLI run: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&round_trips, 0.5),
        percentile(&round_trips, 0.95)
    );

    // Burst: every agent's bot gets 3 messages in each of 10 chats.
    let mut apis: Vec<&FakeBotApi> = vec![&main_api];
    apis.extend(sub_apis.iter().take(SUB_AGENTS - 1));
    let mut sent: Vec<HashMap<i64, Vec<i64>>> = vec![HashMap::new(); apis.len()];
    let started = Instant::now();
    for round in 0..3 {
        for (a, api) in apis.iter().enumerate() {
            for chat in 1..=CHATS {
                let id = api.send_text(chat, chat as u64, &format!("burst {round}"));
                sent[a].entry(chat).or_default().push(id);
            }
        }
    }
    // The answers (not the queue notices), in the order the chat shows them.
    let answered = |api: &FakeBotApi, chat: i64, ids: &[i64]| -> Vec<i64> {
        api.bot_messages(chat)
            .iter()
            .filter(|m| m.visible.contains("FAKE["))
            .filter_map(|m| m.reply_to)
            .filter(|r| ids.contains(r))
            .collect()
    };
    let complete = until(Duration::from_secs(300), || {
        apis.iter()
            .zip(&sent)
            .all(|(api, chats)| chats.iter().all(|(chat, ids)| answered(api, *chat, ids).len() >= ids.len()))
    })
    .await;
    let wall = started.elapsed();
    let (mut lost, mut out_of_order) = (0, 0);
    for (api, chats) in apis.iter().zip(&sent) {
        for (chat, ids) in chats {
            let got = answered(api, *chat, ids);
            lost += ids.iter().filter(|id| !got.contains(id)).count();
            if got.windows(2).any(|w| w[0] > w[1]) {
                out_of_order += 1;
                let shown: Vec<(Option<i64>, String)> = api
                    .bot_messages(*chat)
                    .iter()
                    .map(|m| (m.reply_to, m.visible.chars().take(30).collect()))
                    .collect();
                eprintln!("out of order in chat {chat}: sent {ids:?}, shown {shown:?}");
            }
        }
    }
    println!(
        "burst {} agents × {CHATS} chats × 3 messages: wall {:.2} s (complete: {complete}), lost {lost}, chats out of order {out_of_order}",
        apis.len(),
        wall.as_secs_f64()
    );
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    Ok(())
}

//! Setup and reload benchmark: the real `ductor` binary, the fake Bot API and the fake `claude`.
//! Prints (1) the setup wizard in a pty, from its last answer to the bot polling and to the first
//! answer; (2) hot-reload latency: `config.json` written → applied (10 rounds), and whether a
//! message sent right after the write already runs with the new model; (3) wake-ups of the
//! config watch while idle (context switches of the notify thread over 10 s).
//!
//! Run: `cargo build --release --bin ductor --example fake_cli && cargo run --release --example
//! setup_bench`.

#[path = "../tests/suite/support/fake_bot_api.rs"]
mod fake_bot_api;

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use camino::Utf8PathBuf;
use fake_bot_api::FakeBotApi;
use serde_json::{Value, json};

const TOKEN: &str = "12345678:AAEfakeTokenForTheSetupBenchmark_012345";

fn send(p: &mut rexpect::session::PtySession, keys: &str) -> anyhow::Result<()> {
    p.send(keys)?;
    p.flush()?;
    Ok(())
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

fn models(record: &Utf8PathBuf) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"] == "start")
        .filter_map(|r| {
            let argv: Vec<String> =
                r["argv"].as_array()?.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
            argv.iter().position(|a| a == "--model").and_then(|i| argv.get(i + 1).cloned())
        })
        .collect()
}

/// Context switches (voluntary + involuntary) of each service thread whose name contains
/// `name`, by thread id (ascending: the config reloader's watch starts last of the watches).
fn switches(pid: u32, name: &str) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.filter_map(Result::ok) {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        if !status.lines().next().unwrap_or_default().contains(name) {
            continue;
        }
        let count: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        let tid = task.file_name().to_string_lossy().parse().unwrap_or(0);
        out.push((tid, count));
    }
    out.sort_unstable();
    out
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
    std::fs::create_dir_all(root.join(".claude"))?;
    std::fs::write(root.join(".claude/.credentials.json"), "{}")?;
    let home = root.join("home");
    std::fs::create_dir_all(home.join("config"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    std::fs::write(home.join("config/config.json"), json!({"interagent_port": port}).to_string())?;
    let record = root.join("record.jsonl");

    // (1) The wizard: pairing, then the bot.
    let mut cmd = std::process::Command::new(&ductor);
    cmd.env("DUCTOR_HOME", home.as_str())
        .env("HOME", root.as_str())
        .env("DUCTOR_TELEGRAM_API_BASE", api.base_url())
        .env("PATH", format!("{bin}:/usr/bin:/bin"))
        .env("FAKE_CLI_RECORD", record.as_str())
        .env("TZ", "UTC")
        .env("TERM", "xterm")
        .env_remove("DUCTOR_SUPERVISOR")
        .env_remove("INVOCATION_ID");
    let mut p = rexpect::session::spawn_command(cmd, Some(30_000))?;
    p.exp_string("I understand the risk")?;
    p.exp_string("\u{1b}[?25l")?;
    send(&mut p, "y")?;
    p.exp_string("Matrix")?;
    send(&mut p, "\r")?;
    p.exp_string("Bot token from @BotFather")?;
    send(&mut p, &format!("{TOKEN}\r"))?;
    p.exp_string("I type a numeric")?;
    send(&mut p, "\r")?;
    p.exp_string("in a private chat:")?;
    let (_, code) = p.exp_regex(r"[0-9]{6}")?;
    api.send_text(7, 7, &code);
    p.exp_string("Keep it?")?;
    p.exp_string("\u{1b}[?25l")?;
    send(&mut p, "y")?;
    if ["/usr/bin/systemctl", "/bin/systemctl"].iter().any(|s| std::path::Path::new(s).exists()) {
        p.exp_string("Install ductor as a")?;
        p.exp_string("\u{1b}[?25l")?;
        send(&mut p, "n")?;
    }
    p.exp_string("Starting ductor now")?;
    let finished = Instant::now();
    // The wizard's own polls came before; the bot's long poll is a later one.
    let polls_before = api.calls_of("getUpdates").len();
    let bot_polls = || api.calls_of("getUpdates").iter().skip(polls_before).any(|c| c.params["timeout"] == json!(10));
    if !until(Duration::from_secs(30), bot_polls).await {
        return Err(anyhow!("the bot never polled"));
    }
    let to_polling = finished.elapsed();
    api.send_text(7, 7, "Say hello");
    if !until(Duration::from_secs(30), || !api.bot_messages(7).is_empty()).await {
        return Err(anyhow!("no first answer"));
    }
    let to_answer = finished.elapsed();
    println!(
        "wizard finished → bot polling: {:.0} ms; → first answer (message sent when polling began): {:.0} ms",
        to_polling.as_secs_f64() * 1000.0,
        to_answer.as_secs_f64() * 1000.0
    );
    let pid = ductor_pid(&home).context("bot.pid")?;

    // (3) Idle wake-ups of the config watch (the notify thread), 10 s without changes.
    let name = "notify";
    let before = switches(pid, name);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = switches(pid, name);
    if after.is_empty() {
        println!("config watch wake-ups while idle: no thread named {name:?} found");
    }
    let deltas: Vec<u64> =
        after.iter().map(|(tid, n)| n - before.iter().find(|(t, _)| t == tid).map_or(0, |(_, b)| *b)).collect();
    println!(
        "wake-ups while idle for 10 s, per notify thread (one per watch: config/, and the home folder for \
         cron_jobs.json and agents.json, which also sees the service's own writes there): {deltas:?}"
    );

    // (2) Reload latency, 10 rounds: file written → "Config applied." in the log.
    let log = home.join("logs/agent.log");
    let applied = || std::fs::read_to_string(&log).unwrap_or_default().matches("Config applied.").count();
    let mut latencies = Vec::new();
    for round in 0..10 {
        let before = applied();
        let path = home.join("config/config.json");
        let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        config["model"] = json!(if round % 2 == 0 { "sonnet" } else { "opus" });
        let written = Instant::now();
        std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
        if !until(Duration::from_secs(10), || applied() > before).await {
            return Err(anyhow!("round {round}: never applied"));
        }
        latencies.push(written.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "reload latency (file written → applied, 10 rounds, 200 ms debounce included): min {:.0} ms, median {:.0} ms, max {:.0} ms",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    // A message sent right after a write: which model did its turn use?
    let path = home.join("config/config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    config["model"] = json!("haiku");
    let answers = api.bot_messages(7).len();
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
    let written = Instant::now();
    api.send_text(7, 7, "Say hello");
    until(Duration::from_secs(30), || api.bot_messages(7).len() > answers).await;
    println!(
        "message sent right after the write: its turn used {:?} (answered after {:.0} ms)",
        models(&record).last(),
        written.elapsed().as_secs_f64() * 1000.0
    );
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = p.exp_eof();
    Ok(())
}

fn ductor_pid(home: &Utf8PathBuf) -> Option<u32> {
    std::fs::read_to_string(home.join("bot.pid")).ok()?.trim().parse().ok()
}

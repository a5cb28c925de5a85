//! Turn latency through the Orchestrator with real child processes (the fake `claude`):
//! message in → CLI process started, and CLI's last output line → reply handed to the chat,
//! over 100 sequential messages in one chat; p50/p95 in milliseconds.
//!
//! Run: `cargo run --release --example turn_bench` (builds `examples/fake_cli` first:
//! `cargo build --release --example fake_cli`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use camino::Utf8PathBuf;
use ductor::chat::orchestrator::{Orchestrator, OrchestratorArgs, OrchestratorHandle};
use ductor::chat::session::SessionOutput;
use ductor::core::config::Config;
use ductor::core::session_key::SessionKey;
use ductor::runtime::health_board::HealthBoard;
use ductor::store::paths::DuctorPaths;
use ractor::Actor;

fn now_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let fake = exe.parent().map(|d| d.join("fake_cli")).filter(|p| p.exists());
    let fake = fake.ok_or_else(|| anyhow::anyhow!("build examples/fake_cli first"))?;
    let dir = tempfile::tempdir()?;
    let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).map_err(|_| anyhow::anyhow!("not UTF-8"))?;
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(&fake, bin.join("claude"))?;
    let paths = DuctorPaths::at(root.join("home"));
    paths.ensure_dirs()?;
    let record = root.join("record.jsonl");
    std::fs::write(paths.env_file(), format!("FAKE_CLI_RECORD={record}\n"))?;
    std::fs::write(paths.main_memory(), "# MAINMEMORY\nThe user likes short answers.")?;
    let handle = OrchestratorHandle::new();
    let args = OrchestratorArgs {
        agent: "main".into(),
        paths: paths.clone(),
        config: Arc::new(Config { model: "opus".into(), ..Config::default() }),
        board_path: "root/main/orchestrator".into(),
        board: HealthBoard::new(),
        cli_path: vec![bin],
        bus: None,
        catalog: ductor::chat::model_catalog::ModelCatalog::default(),
        cli_env: Vec::new(),
        agent_control: None,
    };
    let (orchestrator, _) = Actor::spawn(None, Orchestrator, args).await?;
    handle.slot().set(orchestrator);
    let key = SessionKey::new("tg", 1001i64, None);
    let mut sent = Vec::new();
    let mut answered = Vec::new();
    for i in 0..100 {
        sent.push(now_us());
        let mut outputs = handle.message(key.clone(), &format!("message {i}"));
        while let Some(output) = outputs.recv().await {
            if let SessionOutput::Finished { result, .. } = output {
                answered.push(now_us());
                if result.is_error {
                    anyhow::bail!("turn {i} failed: {}", result.result);
                }
            }
        }
    }
    let text = std::fs::read_to_string(&record)?;
    let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of = |event: &str| -> Vec<u128> {
        lines.iter().filter(|l| l["event"] == event).filter_map(|l| l["t_us"].as_u64()).map(u128::from).collect()
    };
    let (starts, last_lines) = (of("start"), of("last_line"));
    if answered.len() != sent.len() || last_lines.len() != sent.len() || starts.len() != sent.len() {
        anyhow::bail!(
            "incomplete run: {} sent, {} started, {} last lines, {} answered",
            sent.len(),
            starts.len(),
            last_lines.len(),
            answered.len()
        );
    }
    let mut spawn: Vec<f64> = sent.iter().zip(&starts).map(|(s, t)| (*t as f64 - *s as f64) / 1000.0).collect();
    let mut reply: Vec<f64> = last_lines.iter().zip(&answered).map(|(l, a)| (*a as f64 - *l as f64) / 1000.0).collect();
    spawn.sort_by(f64::total_cmp);
    reply.sort_by(f64::total_cmp);
    println!(
        "turn  message → CLI started:  p50={:.2} ms  p95={:.2} ms  ({} turns)",
        percentile(&spawn, 0.5),
        percentile(&spawn, 0.95),
        spawn.len()
    );
    println!(
        "turn  CLI last line → reply handed to the chat:  p50={:.2} ms  p95={:.2} ms",
        percentile(&reply, 0.5),
        percentile(&reply, 0.95)
    );
    Ok(())
}

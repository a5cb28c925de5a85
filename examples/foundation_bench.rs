//! Benchmarks of the foundation, printed as plain numbers:
//! 1. Bus throughput: envelopes/s through submit → fsynced outbox → a null adapter → confirmed,
//!    with fsync batching (64 concurrent submitters) and without (one fsync per envelope).
//! 2. `ductor` cold start to "ready" (internal API answers) and idle RSS of the running service.
//!
//! Run: `cargo run --release --example foundation_bench` (builds the `ductor` binary first:
//! `cargo build --release`).

use std::time::{Duration, Instant};

use ductor::runtime::adapter::{AdapterHandle, AdapterMsg};
use ductor::runtime::bus::{Bus, BusArgs, BusHandle};
use ractor::{Actor, ActorProcessingErr, ActorRef};

struct NullAdapter;

enum NullMsg {
    Adapter(AdapterMsg),
}
impl From<AdapterMsg> for NullMsg {
    fn from(msg: AdapterMsg) -> Self {
        Self::Adapter(msg)
    }
}
impl From<NullMsg> for AdapterMsg {
    fn from(msg: NullMsg) -> Self {
        let NullMsg::Adapter(inner) = msg;
        inner
    }
}

impl Actor for NullAdapter {
    type Msg = NullMsg;
    type State = ();
    type Arguments = BusHandle;
    async fn pre_start(&self, myself: ActorRef<NullMsg>, bus: BusHandle) -> Result<(), ActorProcessingErr> {
        bus.register_adapter(AdapterHandle::new("tg", &myself));
        Ok(())
    }
    async fn handle(&self, _: ActorRef<NullMsg>, msg: NullMsg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        let NullMsg::Adapter(AdapterMsg::Deliver(delivery)) = msg;
        delivery.receipt.confirm();
        Ok(())
    }
}

async fn bus_throughput(total: usize, submitters: usize, batch_fsync: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let journal = camino::Utf8PathBuf::from_path_buf(dir.path().join("outbox.jsonl"))
        .map_err(|p| anyhow::anyhow!("not UTF-8: {}", p.display()))?;
    let handle = BusHandle::new();
    let args = BusArgs {
        agent: "bench".into(),
        journal,
        served: vec!["tg".into()],
        registry: handle.registry(),
        batch_fsync,
        gate: None,
    };
    let (bus, _) = Actor::spawn(None, Bus, args).await?;
    handle.slot().set(bus.clone());
    let (adapter, _) = Actor::spawn(None, NullAdapter, handle.clone()).await?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..submitters {
        let handle = handle.clone();
        let count = total / submitters;
        tasks.spawn(async move {
            for i in 0..count {
                let envelope = ductor::core::envelope::Envelope {
                    chat_id: ductor::core::session_key::ChatId((s * count + i) as i128),
                    result_text: "benchmark result text".into(),
                    ..Default::default()
                };
                handle.submit(envelope).await?;
            }
            Ok::<_, ductor::runtime::bus::BusError>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let accepted = start.elapsed();
    loop {
        let stats = handle.stats().await.ok_or_else(|| anyhow::anyhow!("bus gone"))?;
        if stats.pending == 0 {
            let delivered = start.elapsed();
            println!(
                "bus  batch_fsync={batch_fsync:<5} submitters={submitters:<3} envelopes={total}  accepted/s={:>9.0}  delivered+confirmed/s={:>9.0}  fsyncs={}",
                total as f64 / accepted.as_secs_f64(),
                total as f64 / delivered.as_secs_f64(),
                stats.fsyncs
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    adapter.stop(None);
    bus.stop_and_wait(None, None).await?;
    Ok(())
}

fn startup(binary: &std::path::Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("config"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = serde_json::json!({"telegram_token": "1:BENCH", "allowed_user_ids": [1], "interagent_port": port});
    std::fs::write(home.join("config/config.json"), config.to_string())?;
    let mut samples = Vec::new();
    let mut rss_kib = 0;
    for round in 0..5 {
        let start = Instant::now();
        let mut child = std::process::Command::new(binary)
            .env("DUCTOR_HOME", &home)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("ductor did not start");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        samples.push(start.elapsed());
        if round == 0 {
            std::thread::sleep(Duration::from_secs(10));
            let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
            rss_kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)?;
        child.wait()?;
    }
    samples.sort();
    println!(
        "startup  cold start to ready (internal API accepting): median={:.1} ms  min={:.1} ms  max={:.1} ms  (5 runs)",
        samples[2].as_secs_f64() * 1000.0,
        samples[0].as_secs_f64() * 1000.0,
        samples[4].as_secs_f64() * 1000.0
    );
    println!("startup  idle RSS after 10 s: {:.1} MiB", rss_kib as f64 / 1024.0);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    bus_throughput(20_000, 64, true).await?;
    bus_throughput(2_000, 64, false).await?;
    bus_throughput(2_000, 1, true).await?;
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("ductor"))
        .filter(|p| p.exists())
        .ok_or_else(|| anyhow::anyhow!("build the ductor binary first (cargo build --release)"))?;
    tokio::task::spawn_blocking(move || startup(&binary)).await??;
    Ok(())
}

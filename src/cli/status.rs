//! `ductor status [--json]`: the status panel of the home, and the live actor tree asked from
//! the running service over the internal API (`GET /interagent/actors`, 2 s timeout).

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::cli::http::get_local;
use crate::core::cron_schedule::next_fire_label;
use crate::core::health::ActorNode;
use crate::core::state::cron_jobs::CronJobs;
use crate::core::status_view::{self, CronRow, Running, StatusPaths, StatusView, SubAgentRow};
use crate::core::zone::configured_zone_name;
use crate::store::host_zone::local_zone;
use crate::store::interagent_token::client_token;
use crate::store::locked_state::read_strict;
use crate::store::paths::DuctorPaths;
use crate::store::pid_lock::{is_alive, read_pid};

/// How long status waits for the running service.
const API_TIMEOUT: Duration = Duration::from_secs(2);

/// Default internal API port.
const DEFAULT_PORT: u16 = 8799;

/// Runs the status command; returns the exit status (always 0).
pub async fn run(paths: &DuctorPaths, json: bool) -> i32 {
    let mut raw = read_raw(paths);
    if raw.is_none() && paths.config_file().exists() && running(paths).is_some() {
        // Broken while the service runs on the config it applied: show the running service
        // (the panel says the file is not applied, and why).
        raw = Some(Value::Object(serde_json::Map::new()));
    }
    let missing = match &raw {
        Some(Value::Object(map)) if map.is_empty() && running(paths).is_some() => Vec::new(),
        Some(raw) => crate::core::config::configured_problems(raw),
        None => vec![format!("{} does not exist or is not valid JSON", paths.config_file())],
    };
    if !missing.is_empty() {
        if json {
            let body = serde_json::json!({"configured": false, "home": paths.home(), "missing": missing});
            println!("{body:#}");
        } else {
            print!(
                "{}",
                status_view::render_not_configured(paths.home().as_str(), paths.config_file().as_str(), &missing)
            );
        }
        return 0;
    }
    let raw = raw.unwrap_or(Value::Null);
    let view = gather(paths, &raw).await;
    if json {
        let mut body = serde_json::to_value(&view).unwrap_or(Value::Null);
        if let Some(map) = body.as_object_mut() {
            map.insert("configured".into(), Value::Bool(true));
        }
        println!("{body:#}");
    } else {
        print!("{}", status_view::render(&view));
    }
    0
}

fn read_raw(paths: &DuctorPaths) -> Option<Value> {
    let bytes = std::fs::read(paths.config_file()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn text_at(raw: &Value, key: &str, default: &str) -> String {
    raw.get(key).and_then(Value::as_str).unwrap_or(default).to_owned()
}

async fn gather(paths: &DuctorPaths, raw: &Value) -> StatusView {
    let port =
        raw.get("interagent_port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(DEFAULT_PORT);
    let running = running(paths);
    let (actors, actors_error, health) = if running.is_some() {
        let token = client_token(paths);
        let actors = match get_local(port, "/interagent/actors", token.as_deref(), API_TIMEOUT).await {
            Ok(body) => parse_tree(&body).map_err(|e| format!("bad answer: {e}")),
            Err(e) => Err(e.to_string()),
        };
        let health = get_local(port, "/interagent/health", token.as_deref(), API_TIMEOUT)
            .await
            .ok()
            .and_then(|body| serde_json::from_str::<Value>(&body).ok());
        match actors {
            Ok(root) => (Some(root), None, health),
            Err(e) => (None, Some(e), health),
        }
    } else {
        (None, None, None)
    };
    let docker = raw
        .get("docker")
        .filter(|d| d.get("enabled").and_then(Value::as_bool) == Some(true))
        .map(|d| d.get("container_name").and_then(Value::as_str).unwrap_or("ductor-sandbox").to_owned());
    StatusView {
        agent: "main".to_owned(),
        running,
        provider: text_at(raw, "provider", "claude"),
        model: text_at(raw, "model", "opus"),
        docker,
        errors: count_errors(paths),
        inbox: std::fs::read_to_string(paths.inbox())
            .map_or(0, |text| crate::core::inbox::Inbox::replay(&text).0.len()),
        paths: StatusPaths {
            home: paths.home().to_string(),
            config: paths.config_file().to_string(),
            workspace: paths.workspace().to_string(),
            logs: paths.logs_dir().to_string(),
            sessions: paths.sessions().to_string(),
        },
        sub_agents: sub_agents(paths, health.as_ref()),
        cron_jobs: cron_jobs(paths, &text_at(raw, "user_timezone", "")),
        actors,
        actors_error,
        config_applied: crate::store::config_applied::read(paths),
    }
}

fn parse_tree(body: &str) -> Result<ActorNode, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Tree {
        root: ActorNode,
    }
    serde_json::from_str::<Tree>(body).map(|t| t.root)
}

fn running(paths: &DuctorPaths) -> Option<Running> {
    let pid_file = paths.pid_file();
    let pid = read_pid(&pid_file).filter(|pid| is_alive(*pid))?;
    let uptime_s = std::fs::metadata(&pid_file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0, |d| d.as_secs());
    Some(Running { pid, uptime_s })
}

/// Lines of `logs/agent.log` with the `[ERROR]` marker (0.18.2 always printed 0; fixed).
fn count_errors(paths: &DuctorPaths) -> usize {
    std::fs::read(paths.log_file())
        .map(|bytes| String::from_utf8_lossy(&bytes).lines().filter(|l| l.contains("[ERROR]")).count())
        .unwrap_or(0)
}

/// The jobs of `cron_jobs.json` with their next fire (nothing when the file is missing or broken).
fn cron_jobs(paths: &DuctorPaths, user_timezone: &str) -> Vec<CronRow> {
    let Ok(file) = read_strict::<CronJobs>(&paths.cron_jobs()) else { return Vec::new() };
    let now = chrono::Utc::now();
    file.jobs
        .iter()
        .map(|job| CronRow {
            id: job.id.clone(),
            state: if job.enabled { "active" } else { "paused" }.to_owned(),
            schedule: job.schedule.clone(),
            next: if job.enabled {
                let zone = local_zone(configured_zone_name(job.timezone.as_deref(), user_timezone));
                next_fire_label(&job.schedule, zone, now)
            } else {
                "—".to_owned()
            },
        })
        .collect()
}

fn sub_agents(paths: &DuctorPaths, health: Option<&Value>) -> Vec<SubAgentRow> {
    let Some(Value::Array(entries)) = std::fs::read(paths.agents()).ok().and_then(|b| serde_json::from_slice(&b).ok())
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let name = entry.get("name")?.as_str()?.to_owned();
            let live = health.and_then(|h| h.get("agents")).and_then(|a| a.get(&name));
            let status = live.and_then(|l| l.get("status")).and_then(Value::as_str).unwrap_or("—").to_owned();
            let uptime = live.and_then(|l| l.get("uptime")).and_then(Value::as_str).unwrap_or("—").to_owned();
            Some(SubAgentRow {
                name,
                status,
                uptime,
                provider: text_at(entry, "provider", "inherited"),
                model: text_at(entry, "model", "inherited"),
            })
        })
        .collect()
}

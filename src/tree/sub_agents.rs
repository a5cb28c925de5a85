//! Building a sub-agent (core spec §9.1): from its `agents.json` entry, the effective config
//! (main's config with the entry's overrides, its own bot and allow-lists; `core::sub_agent`),
//! its home `agents/<name>/`, and the `AgentArgs` of its subtree — with its own Bus,
//! Orchestrator, transports, observers and inbox, sharing the process's dependency queue, CLI
//! path and timings. The Root starts, stops and rebuilds them.

use std::sync::Arc;

use camino::Utf8PathBuf;

use crate::chat::agent_directory::AgentEntry;
use crate::chat::orchestrator::OrchestratorHandle;
use crate::core::state::agents::SubAgentEntry;
use crate::core::sub_agent::effective_config;
use crate::runtime::bus::BusHandle;
use crate::runtime::dependency_queue::DependencyQueue;
use crate::runtime::health_board::HealthBoard;
use crate::store::config_file::read_raw_config;
use crate::store::paths::DuctorPaths;
use crate::tree::agent::{AgentArgs, ObserverTiming};

/// What every sub-agent shares with main.
#[derive(Clone)]
pub struct SubAgentContext {
    /// Main's home (sub-agents live under `agents/`).
    pub main: DuctorPaths,
    /// The health board.
    pub board: HealthBoard,
    /// Directories put in front of `PATH` for the CLIs.
    pub cli_path: Vec<Utf8PathBuf>,
    /// The observers' timers.
    pub timing: ObserverTiming,
    /// The process-wide dependency queue.
    pub queue: DependencyQueue,
    /// Environment every CLI gets (the internal API token, `DUCTOR_BIN`).
    pub cli_env: Vec<(String, String)>,
    /// How often to look for the restart marker.
    pub restart_marker_poll: std::time::Duration,
}

impl std::fmt::Debug for SubAgentContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubAgentContext").field("main", &self.main).finish_non_exhaustive()
    }
}

/// A sub-agent ready to start: its Agent arguments and its directory entry.
#[derive(Debug, Clone)]
pub struct BuiltSubAgent {
    /// The Agent's arguments.
    pub args: AgentArgs,
    /// How others reach it.
    pub entry: AgentEntry,
}

/// Builds a sub-agent from its entry: reads main's config file again (so a change of main's
/// config reaches a sub-agent started later), lays the entry over it, validates, and prepares
/// the home. A config that does not validate is an error naming the agent.
pub fn build(ctx: &SubAgentContext, entry: &SubAgentEntry) -> Result<BuiltSubAgent, String> {
    let paths = ctx.main.sub_agent(&entry.name);
    let main_config = read_raw_config(&ctx.main.config_file()).map_err(|e| e.to_string())?;
    let effective = effective_config(&main_config, entry, paths.home().as_str());
    let resolved = crate::core::config::resolve(effective)
        .map_err(|problem| format!("agent '{}': invalid config: {problem}", entry.name))?;
    let config = Arc::new(resolved.config);
    paths.ensure_dirs().map_err(|e| format!("agent '{}': {e}", entry.name))?;
    // Its own config file carries the model it runs with (ops spec §2.9).
    let keys = [
        ("provider", serde_json::Value::from(config.provider.clone())),
        ("model", config.model.clone().into()),
        ("reasoning_effort", config.reasoning_effort.clone().into()),
    ];
    let written = if paths.config_file().exists() {
        crate::store::config_file::update_config_keys(&paths, &keys).map(drop).map_err(|e| e.to_string())
    } else {
        let object: serde_json::Map<String, serde_json::Value> =
            keys.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        crate::store::atomic::write_json_atomic(&paths.config_file(), &object).map_err(|e| e.to_string())
    };
    if let Err(e) = written {
        tracing::warn!(agent = %entry.name, error = %e, "Could not write the sub-agent's config file.");
    }
    let served: Vec<String> =
        config.transports.iter().map(|t| if t == "matrix" { "mx".to_owned() } else { "tg".to_owned() }).collect();
    let telegram = served.iter().any(|t| t == "tg") && !config.telegram_token.trim().is_empty();
    let matrix = served.iter().any(|t| t == "mx") && !config.matrix.homeserver.trim().is_empty();
    // Its own Bot API server when the entry names one (a local Bot API server per bot),
    // else the process's.
    let own_api = entry.extra.get("telegram_api_base").and_then(serde_json::Value::as_str);
    let telegram_api = telegram.then(|| {
        let env = std::env::var("DUCTOR_TELEGRAM_API_BASE").ok();
        crate::transport::telegram::api_base(own_api.or(env.as_deref()), config.telegram_api_base.as_deref())
    });
    let bus = BusHandle::new();
    let orchestrator = OrchestratorHandle::new();
    let args = AgentArgs {
        name: entry.name.clone(),
        paths: paths.clone(),
        board_path: format!("root/{}", entry.name),
        board: ctx.board.clone(),
        bus: bus.clone(),
        served,
        batch_fsync: true,
        spool: None,
        restart_marker_poll: ctx.restart_marker_poll,
        extra_children: Vec::new(),
        config: Arc::clone(&config),
        orchestrator: orchestrator.clone(),
        cli_path: ctx.cli_path.clone(),
        telegram_api,
        matrix,
        queue: ctx.queue.clone(),
        timing: ctx.timing.clone(),
        cli_env: ctx.cli_env.clone(),
        agent_control: None,
    };
    let entry = AgentEntry { name: entry.name.clone(), paths, config, bus, orchestrator };
    Ok(BuiltSubAgent { args, entry })
}

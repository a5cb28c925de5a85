//! Starting and stopping the whole actor tree: the entry point the `ductor` command runs.
//!
//! [`Service::start`] builds Root → (InternalApi, Agent "main" → Bus, observers) and returns once
//! everything is up ("ready"). [`Service::run_until`] waits for the main agent to end or for the
//! shutdown future (SIGTERM/SIGINT in the binary), stops the tree within the deadline, and gives
//! the process exit status (0 clean, 42 restart requested, 1 fatal).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use camino::Utf8PathBuf;
use ractor::{Actor, ActorRef};
use tokio::sync::mpsc;

use crate::chat::agent_control::{AgentControl, ControlFn, StopOthersFn};
use crate::chat::agent_directory::{AgentDirectory, AgentEntry, MAIN_AGENT};
use crate::chat::orchestrator::OrchestratorHandle;
use crate::core::config::Config;
use crate::core::supervision::SHUTDOWN_REASON;
use crate::runtime::bus::BusHandle;
use crate::runtime::dependency_queue::DependencyQueue;
use crate::runtime::health_board::HealthBoard;
use crate::runtime::supervision::ChildSpec;
use crate::store::paths::DuctorPaths;
use crate::tasks::hub::{TaskHubArgs, TaskHubHandle};
use crate::tasks::inter_agent::InterAgent;
use crate::transport::internal_api::InternalApiArgs;
use crate::tree::agent::{AgentArgs, ObserverTiming};
use crate::tree::root::{Root, RootArgs, RootMsg};
use crate::tree::sub_agents::SubAgentContext;

/// Total time the tree gets to stop after SIGTERM/SIGINT.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Everything the runtime needs to start.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The main agent's home.
    pub paths: DuctorPaths,
    /// Internal API port on 127.0.0.1 (0 = any free port).
    pub interagent_port: u16,
    /// Transport short names the main agent serves, primary first.
    pub served: Vec<String>,
    /// `DUCTOR_SPOOL`: a JSONL file receiving every delivered envelope.
    pub spool: Option<Utf8PathBuf>,
    /// Batch journal fsyncs across concurrent submissions.
    pub batch_fsync: bool,
    /// How often to look for the restart marker.
    pub restart_marker_poll: Duration,
    /// Extra children of the main agent (tests, later layers).
    pub extra_children: Vec<ChildSpec>,
    /// The main agent's config.
    pub config: Arc<Config>,
    /// Directories put in front of `PATH` for the CLIs.
    pub cli_path: Vec<Utf8PathBuf>,
    /// Bot API base URL when the Telegram transport runs (`None`: no Telegram).
    pub telegram_api: Option<String>,
    /// Whether the Matrix transport runs.
    pub matrix: bool,
    /// The observers' timers (tests shorten them).
    pub timing: ObserverTiming,
}

impl ServiceSettings {
    /// Settings with the standard timings.
    pub fn new(paths: DuctorPaths, config: Arc<Config>, served: Vec<String>) -> Self {
        Self {
            paths,
            interagent_port: config.interagent_port,
            config,
            cli_path: Vec::new(),
            telegram_api: None,
            matrix: false,
            timing: ObserverTiming::default(),
            served,
            spool: None,
            batch_fsync: true,
            restart_marker_poll: Duration::from_secs(2),
            extra_children: Vec::new(),
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The actor tree failed to start (e.g. the internal API port is taken).
    #[error("the service could not start: {0}")]
    Start(String),
}

/// The running service.
#[derive(Debug)]
pub struct Service {
    root: ActorRef<RootMsg>,
    exit: mpsc::UnboundedReceiver<i32>,
    board: HealthBoard,
    main_bus: BusHandle,
    orchestrator: OrchestratorHandle,
}

/// What the main agent's `/agent_*` and `/stop_all` do to the other agents: the Root starts,
/// stops or rebuilds a sub-agent; every other agent stops its runs, the async asks end and the
/// background tasks are cancelled.
fn agent_control(
    root: Arc<std::sync::OnceLock<ActorRef<RootMsg>>>,
    agents: AgentDirectory,
    inter_agent: InterAgent,
    tasks: TaskHubHandle,
) -> AgentControl {
    let control: ControlFn = Arc::new(move |action, name| {
        let root = root.get().cloned();
        Box::pin(async move {
            let Some(root) = root else { return "ductor is still starting; try again in a moment.".to_owned() };
            ractor::call!(root, |reply| RootMsg::Control { command: action, name, reply })
                .unwrap_or_else(|e| format!("The agent could not be changed: {e}"))
        })
    });
    let stop_others: StopOthersFn = Arc::new(move || {
        let (agents, inter_agent, tasks) = (agents.clone(), inter_agent.clone(), tasks.clone());
        Box::pin(async move {
            let mut stopped = inter_agent.cancel_all();
            for task in tasks.list(None).await.unwrap_or_default().iter().filter(|t| !t.is_finished()) {
                if tasks.cancel(task.text("task_id").to_owned(), None).await.unwrap_or(false) {
                    stopped += 1;
                }
            }
            for agent in agents.all().into_iter().filter(|a| a.name != MAIN_AGENT) {
                stopped += agent.orchestrator.stop_everything().await;
            }
            stopped
        })
    });
    AgentControl { control, stop_others }
}

impl Service {
    /// Starts the tree; returns when it is ready.
    pub async fn start(settings: ServiceSettings) -> Result<Self, ServiceError> {
        tracing::debug!(actor = "root", home = %settings.paths.home(), port = settings.interagent_port,
            served = ?settings.served, spool = ?settings.spool, "Starting the actor tree.");
        let board = HealthBoard::new();
        let main_bus = BusHandle::new();
        let orchestrator = OrchestratorHandle::new();
        let (exit_tx, exit_rx) = mpsc::unbounded_channel();
        let mut served = settings.served.clone();
        if settings.spool.is_some() {
            served.push(crate::transport::spool::SPOOL_TRANSPORT.to_owned());
        }
        let token = crate::store::interagent_token::service_token(&settings.paths)
            .map_err(|e| ServiceError::Start(format!("the internal API token: {e}")))?;
        // What every CLI ductor starts gets besides its agent's own variables: the binary for the
        // workspace's tool scripts and the token for the internal API.
        let mut cli_env = vec![(crate::store::interagent_token::TOKEN_ENV.to_owned(), token.clone())];
        if let Ok(exe) = std::env::current_exe() {
            cli_env.push(("DUCTOR_BIN".to_owned(), exe.display().to_string()));
        }
        let agents = AgentDirectory::new();
        agents.register(AgentEntry {
            name: MAIN_AGENT.to_owned(),
            paths: settings.paths.clone(),
            config: Arc::clone(&settings.config),
            bus: main_bus.clone(),
            orchestrator: orchestrator.clone(),
        });
        let queue = DependencyQueue::new();
        let inter_agent = InterAgent::new(agents.clone());
        // The Root is known once it runs; a person's `/agent_*` before that is told to wait.
        let root_slot: Arc<std::sync::OnceLock<ActorRef<RootMsg>>> = Arc::default();
        let tasks = TaskHubHandle::new();
        let agent_control = agent_control(Arc::clone(&root_slot), agents.clone(), inter_agent.clone(), tasks.clone());
        let main = AgentArgs {
            name: MAIN_AGENT.to_owned(),
            paths: settings.paths.clone(),
            board_path: "root/main".to_owned(),
            board: board.clone(),
            bus: main_bus.clone(),
            served,
            batch_fsync: settings.batch_fsync,
            spool: settings.spool.clone(),
            restart_marker_poll: settings.restart_marker_poll,
            extra_children: settings.extra_children.clone(),
            config: Arc::clone(&settings.config),
            orchestrator: orchestrator.clone(),
            cli_path: settings.cli_path.clone(),
            telegram_api: settings.telegram_api.clone(),
            matrix: settings.matrix,
            queue: queue.clone(),
            timing: settings.timing.clone(),
            cli_env: cli_env.clone(),
            agent_control: Some(agent_control),
        };
        let sub_agents = SubAgentContext {
            main: settings.paths.clone(),
            board: board.clone(),
            cli_path: settings.cli_path.clone(),
            timing: settings.timing.clone(),
            queue,
            cli_env,
            restart_marker_poll: settings.restart_marker_poll,
        };
        let hub_args = TaskHubArgs {
            main: settings.paths.clone(),
            agents: agents.clone(),
            cli_path: settings.cli_path.clone(),
            cli_env: sub_agents.cli_env.clone(),
            board: board.clone(),
        };
        let api = InternalApiArgs {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, settings.interagent_port)),
            board: board.clone(),
            agents: agents.clone(),
            inter_agent,
            token,
            on_state_change: None,
            tasks: tasks.clone(),
        };
        let args = RootArgs {
            board: board.clone(),
            api,
            main,
            exit: exit_tx,
            agents,
            sub_agents: Some(sub_agents),
            tasks: Some((hub_args, tasks)),
        };
        let (root, _join) = Actor::spawn(None, Root, args).await.map_err(|e| ServiceError::Start(root_cause(&e)))?;
        let _ = root_slot.set(root.clone());
        tracing::info!(actor = "root", home = %settings.paths.home(), "Ductor is ready.");
        Ok(Self { root, exit: exit_rx, board, main_bus, orchestrator })
    }

    /// The health board (the live tree).
    pub fn board(&self) -> &HealthBoard {
        &self.board
    }

    /// The main agent's Bus.
    pub fn main_bus(&self) -> &BusHandle {
        &self.main_bus
    }

    /// The main agent's Orchestrator (where transports send chat messages).
    pub fn orchestrator(&self) -> &OrchestratorHandle {
        &self.orchestrator
    }

    /// Runs until the main agent ends or `shutdown` completes, then stops the tree. Returns the
    /// process exit status.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> i32 {
        let code = tokio::select! {
            code = self.exit.recv() => code.unwrap_or(1),
            () = shutdown => {
                tracing::info!(actor = "root", "Shutdown requested.");
                0
            }
        };
        self.stop().await;
        code
    }

    /// Stops the tree within [`SHUTDOWN_DEADLINE`].
    pub async fn stop(&self) {
        let stopped = self.root.stop_and_wait(Some(SHUTDOWN_REASON.to_owned()), Some(SHUTDOWN_DEADLINE)).await;
        if let Err(e) = stopped {
            tracing::warn!(actor = "root", error = %e, "The actor tree did not stop in time; killing it.");
            self.root.kill();
        }
        tracing::info!(actor = "root", "Ductor stopped.");
    }
}

fn root_cause(error: &ractor::SpawnErr) -> String {
    match error {
        ractor::SpawnErr::StartupFailed(inner) => {
            let mut text = inner.to_string();
            let mut source = std::error::Error::source(inner.as_ref());
            while let Some(cause) = source {
                text = cause.to_string();
                source = cause.source();
            }
            text
        }
        other => other.to_string(),
    }
}

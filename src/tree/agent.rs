//! The Agent actor: one per agent (today "main"; sub-agents will have the same shape). It is
//! the composition point: it wires and supervises the agent's children — the Bus, the
//! Orchestrator (with its Sessions), the model-cache observer, the configured transports
//! (Telegram, Matrix, the spool) and the restart marker — hands each the handles it needs,
//! applies the restart contract to them, and sends a `[Supervisor]` notice through its Bus when
//! it gives up on a child.
//!
//! Asking the Agent to restart (`AgentMsg::RequestRestart`, e.g. from the restart marker) stops
//! it with the stop reason `restart`; for the main agent the Root turns that into exit code 42.

use std::sync::Arc;
use std::time::Duration;

use camino::Utf8PathBuf;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::chat::model_catalog::ModelCatalog;
use crate::chat::orchestrator::{Orchestrator, OrchestratorArgs, OrchestratorHandle};
use crate::core::config::Config;
use crate::core::envelope::Envelope;
use crate::core::health::ActorKind;
use crate::core::supervision::{self, RESTART_REASON};
use crate::observer::model_cache::{ModelCache, ModelCacheArgs};
use crate::observer::restart_marker::{RestartMarker, RestartMarkerArgs};
use crate::runtime::bus::{Bus, BusArgs, BusHandle};
use crate::runtime::health_board::HealthBoard;
use crate::runtime::supervision::{ChildSet, ChildSpec, Reaction, RestartRequest};
use crate::store::inbox_journal::SharedInbox;
use crate::store::paths::DuctorPaths;
use crate::transport::matrix::{Matrix, MatrixArgs};
use crate::transport::spool::{Spool, SpoolArgs};
use crate::transport::telegram::{Telegram, TelegramArgs};

/// How long the Agent waits for each child to stop at shutdown.
const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages of the Agent.
#[derive(Debug)]
pub enum AgentMsg {
    /// Rebuild a crashed child (sent to itself after the backoff delay).
    Respawn {
        /// The child's name.
        child: String,
    },
    /// Restart the whole agent (code 42).
    RequestRestart {
        /// Why, for the log.
        why: String,
    },
}

/// Construction arguments of an Agent.
#[derive(Debug, Clone)]
pub struct AgentArgs {
    /// The agent's name (`main`).
    pub name: String,
    /// Its home.
    pub paths: DuctorPaths,
    /// Its path on the health board (`root/main`).
    pub board_path: String,
    /// The health board.
    pub board: HealthBoard,
    /// Its Bus handle (survives Bus restarts; given out to transports and the internal API).
    pub bus: BusHandle,
    /// Transport short names it serves, primary first.
    pub served: Vec<String>,
    /// Batch journal fsyncs across concurrent submissions.
    pub batch_fsync: bool,
    /// A JSONL file that receives every delivered envelope (`DUCTOR_SPOOL`), if set.
    pub spool: Option<Utf8PathBuf>,
    /// How often to look for the restart marker.
    pub restart_marker_poll: Duration,
    /// The agent's config.
    pub config: Arc<Config>,
    /// Its Orchestrator handle (survives Orchestrator restarts; given out to transports).
    pub orchestrator: OrchestratorHandle,
    /// Directories put in front of `PATH` for the CLIs.
    pub cli_path: Vec<Utf8PathBuf>,
    /// Extra children (tests and later layers), started after the built-in ones.
    pub extra_children: Vec<ChildSpec>,
    /// Bot API base URL when this agent serves Telegram.
    pub telegram_api: Option<String>,
    /// Whether this agent serves Matrix.
    pub matrix: bool,
}

/// The Agent actor.
#[derive(Debug, Default)]
pub struct Agent;

/// State of a running Agent.
#[derive(Debug)]
pub struct AgentState {
    args: AgentArgs,
    children: ChildSet,
}

impl Actor for Agent {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(&self, myself: ActorRef<AgentMsg>, args: AgentArgs) -> Result<AgentState, ActorProcessingErr> {
        let mut children = ChildSet::new(&args.board_path, args.board.clone());
        let bus_args = BusArgs {
            agent: args.name.clone(),
            journal: args.paths.outbox(),
            served: args.served.clone(),
            registry: args.bus.registry(),
            batch_fsync: args.batch_fsync,
            gate: Some({
                let orchestrator = args.orchestrator.clone();
                Arc::new(move |envelope| {
                    let orchestrator = orchestrator.clone();
                    Box::pin(async move { orchestrator.through_session(envelope).await })
                })
            }),
        };
        children.add(ChildSpec::actor("bus", ActorKind::Bus, Some(args.bus.slot()), move || (Bus, bus_args.clone())));
        let catalog = ModelCatalog::default();
        // One inbox per agent, written by all of its transports.
        let inbox = SharedInbox::open(&args.paths.inbox());
        let mut cli_env = Vec::new();
        if !args.cli_path.is_empty() {
            cli_env.push(("PATH".to_owned(), crate::provider::search_path(&args.cli_path)));
        }
        let cache_args = ModelCacheArgs {
            paths: args.paths.clone(),
            catalog: catalog.clone(),
            program: "codex".to_owned(),
            env: cli_env,
            every: Duration::from_secs(3600),
        };
        children
            .add(ChildSpec::actor("codex_models", ActorKind::Observer, None, move || (ModelCache, cache_args.clone())));
        let orchestrator_args = OrchestratorArgs {
            agent: args.name.clone(),
            paths: args.paths.clone(),
            config: Arc::clone(&args.config),
            board_path: format!("{}/orchestrator", args.board_path),
            board: args.board.clone(),
            cli_path: args.cli_path.clone(),
            bus: Some(args.bus.clone()),
            catalog: catalog.clone(),
        };
        children.add(ChildSpec::actor(
            "orchestrator",
            ActorKind::Supervisor,
            Some(args.orchestrator.slot()),
            move || (Orchestrator, orchestrator_args.clone()),
        ));
        if let Some(path) = &args.spool {
            let spool_args = SpoolArgs { path: path.clone(), bus: args.bus.clone() };
            children.add(ChildSpec::actor("spool", ActorKind::Transport, None, move || (Spool, spool_args.clone())));
        }
        let agent = myself.clone();
        let restart: RestartRequest = Arc::new(move |why| {
            let _ = agent.cast(AgentMsg::RequestRestart { why });
        });
        if let Some(api_base) = &args.telegram_api {
            let telegram_args = TelegramArgs {
                paths: args.paths.clone(),
                config: Arc::clone(&args.config),
                api_base: api_base.clone(),
                orchestrator: args.orchestrator.clone(),
                bus: args.bus.clone(),
                restart: Arc::clone(&restart),
                inbox: inbox.clone(),
            };
            children.add(ChildSpec::actor("telegram", ActorKind::Transport, None, move || {
                (Telegram, telegram_args.clone())
            }));
        }
        if args.matrix {
            let matrix_args = MatrixArgs {
                paths: args.paths.clone(),
                config: Arc::clone(&args.config),
                orchestrator: args.orchestrator.clone(),
                bus: args.bus.clone(),
                restart: Arc::clone(&restart),
                inbox: inbox.clone(),
            };
            children.add(ChildSpec::actor("matrix", ActorKind::Transport, None, move || (Matrix, matrix_args.clone())));
        }
        let marker_args =
            RestartMarkerArgs { marker: args.paths.restart_marker(), poll: args.restart_marker_poll, restart };
        children.add(ChildSpec::actor("restart_marker", ActorKind::Observer, None, move || {
            (RestartMarker, marker_args.clone())
        }));
        for spec in &args.extra_children {
            children.add(spec.clone());
        }
        children.start_all(&myself.get_cell()).await?;
        tracing::info!(actor = %args.board_path, "Agent started.");
        Ok(AgentState { args, children })
    }

    async fn post_stop(&self, _myself: ActorRef<AgentMsg>, state: &mut AgentState) -> Result<(), ActorProcessingErr> {
        state.children.stop_all(CHILD_STOP_TIMEOUT).await;
        tracing::info!(actor = %state.args.board_path, "Agent stopped.");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentMsg::Respawn { child } => {
                let reaction = state.children.restart(&child, &myself.get_cell()).await;
                state.react(&myself, reaction).await;
            }
            AgentMsg::RequestRestart { why } => {
                tracing::info!(actor = %state.args.board_path, why = %why, "Agent restart requested.");
                myself.stop(Some(RESTART_REASON.to_owned()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<AgentMsg>,
        event: SupervisionEvent,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        let reaction = state.children.on_event(&event);
        state.react(&myself, reaction).await;
        Ok(())
    }
}

impl AgentState {
    async fn react(&mut self, myself: &ActorRef<AgentMsg>, reaction: Reaction) {
        let respawn = |child| AgentMsg::Respawn { child };
        if let Some(Reaction::GaveUp { child, crashes, error }) =
            self.children.carry_out(myself, reaction, respawn).await
        {
            let text = supervision::give_up_notice(&self.args.name, &child, crashes, &error);
            self.args.bus.submit_detached(Envelope::supervisor_notice(&text));
        }
    }
}

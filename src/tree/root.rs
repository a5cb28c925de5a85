//! The Root supervisor: the top of the actor tree. Starts the InternalApi, the TaskHub, then the main
//! Agent, then the sub-agents of `agents.json` (each an Agent subtree of its own, core spec
//! §9.2), and maps how the main agent ends to the process exit status: restart requested → 42,
//! normal stop → 0, given up after repeated crashes → 1. A sub-agent asking for a restart is
//! rebuilt in place; one that keeps crashing backs off (5, 10, 20, 40, 80 s) while the others
//! answer, and after the sixth crash main's users are told. `agents.json` is watched: an added
//! agent starts, a removed one stops and leaves the tree, one whose account changed is rebuilt;
//! a file that does not parse keeps the running set (logged).

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::mpsc;

use crate::chat::agent_control::AgentAction;
use crate::chat::agent_directory::AgentDirectory;
use crate::core::state::agents::{SubAgentEntry, SubAgents};
use crate::core::sub_agent::plan;
use crate::observer::shared_memory::{SharedMemory, SharedMemoryArgs, SharedMemoryMsg};
use crate::runtime::file_watch::FileWatch;
use crate::store::locked_state::read_strict;
use crate::tree::sub_agents::{SubAgentContext, build};

use crate::core::envelope::Envelope;
use crate::core::health::ActorKind;
use crate::core::supervision::{self, EXIT_RESTART};
use crate::runtime::bus::BusHandle;
use crate::runtime::health_board::HealthBoard;
use crate::runtime::supervision::{ChildSet, ChildSpec, Reaction};
use crate::tasks::hub::{TaskHub, TaskHubArgs, TaskHubHandle};
use crate::transport::internal_api::{InternalApi, InternalApiArgs};
use crate::tree::agent::{Agent, AgentArgs};

/// Path of the Root on the health board.
pub const ROOT_PATH: &str = "root";

/// How long the Root waits for each child to stop at shutdown.
const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(4);

/// The shared-memory observer's name.
const SHARED_MEMORY: &str = "shared_memory";

/// How long an `agents.json` change must settle before it is applied.
const AGENTS_DEBOUNCE: Duration = Duration::from_millis(250);

/// Messages of the Root.
#[derive(Debug)]
pub enum RootMsg {
    /// Rebuild a crashed child (sent to itself after the backoff delay).
    Respawn {
        /// The child's name.
        child: String,
    },
    /// `agents.json` changed (its file watch): start, stop or rebuild sub-agents.
    AgentsChanged,
    /// A person's command for one sub-agent (`/agent_start`, `/agent_stop`, `/agent_restart`).
    Control {
        /// What to do.
        command: AgentAction,
        /// The sub-agent's name.
        name: String,
        /// What to tell the person.
        reply: RpcReplyPort<String>,
    },
}

/// Construction arguments of the Root.
#[derive(Debug, Clone)]
pub struct RootArgs {
    /// The health board.
    pub board: HealthBoard,
    /// The internal API.
    pub api: InternalApiArgs,
    /// The main agent.
    pub main: AgentArgs,
    /// Where the process exit status goes when the main agent ends.
    pub exit: mpsc::UnboundedSender<i32>,
    /// The agents of this process (the Root adds and removes sub-agents).
    pub agents: AgentDirectory,
    /// What sub-agents share with main; `None`: no sub-agents (tests).
    pub sub_agents: Option<SubAgentContext>,
    /// The TaskHub (started before the main agent) and the handle the internal API serves.
    pub tasks: Option<(TaskHubArgs, TaskHubHandle)>,
}

/// The Root supervisor actor.
#[derive(Debug, Default)]
pub struct Root;

/// State of the Root.
#[derive(Debug)]
pub struct RootState {
    children: ChildSet,
    main_name: String,
    main_bus: BusHandle,
    exit: mpsc::UnboundedSender<i32>,
    agents: AgentDirectory,
    sub_agents: Option<SubAgentContext>,
    /// The entries of the sub-agents running (as last applied).
    running: Vec<SubAgentEntry>,
    _agents_watch: Option<FileWatch>,
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(&self, myself: ActorRef<RootMsg>, args: RootArgs) -> Result<RootState, ActorProcessingErr> {
        args.board.register(ROOT_PATH, ROOT_PATH, ActorKind::Supervisor);
        let mut children = ChildSet::new(ROOT_PATH, args.board.clone());
        let api = args.api.clone();
        children.add(ChildSpec::actor("internal_api", ActorKind::Transport, None, move || (InternalApi, api.clone())));
        // The TaskHub before the agents: it answers the tool scripts as soon as they can run.
        if let Some((hub_args, hub)) = args.tasks.clone() {
            children
                .add(ChildSpec::actor("tasks", ActorKind::Task, Some(hub.slot()), move || (TaskHub, hub_args.clone())));
        }
        let main = args.main.clone();
        let main_name = main.name.clone();
        children.add(ChildSpec::actor(&main_name, ActorKind::Agent, None, move || (Agent, main.clone())));
        if let Some(ctx) = &args.sub_agents {
            let shared = SharedMemoryArgs { main: ctx.main.clone(), agents: args.agents.clone() };
            children.add(ChildSpec::actor(SHARED_MEMORY, ActorKind::Observer, None, move || {
                (SharedMemory, shared.clone())
            }));
        }
        children.start_all(&myself.get_cell()).await?;
        args.board.running(ROOT_PATH);
        let agents_watch = args.sub_agents.as_ref().and_then(|ctx| {
            let root = myself.clone();
            FileWatch::start(&ctx.main.agents(), AGENTS_DEBOUNCE, move || {
                let _ = root.cast(RootMsg::AgentsChanged);
            })
            .map_err(
                |e| tracing::warn!(actor = ROOT_PATH, error = %e, "Cannot watch agents.json; changes need a restart."),
            )
            .ok()
        });
        let mut state = RootState {
            children,
            main_name,
            main_bus: args.main.bus.clone(),
            exit: args.exit,
            agents: args.agents,
            sub_agents: args.sub_agents,
            running: Vec::new(),
            _agents_watch: agents_watch,
        };
        state.apply_agents_file(&myself).await;
        Ok(state)
    }

    async fn post_stop(&self, _myself: ActorRef<RootMsg>, state: &mut RootState) -> Result<(), ActorProcessingErr> {
        state.children.stop_all(CHILD_STOP_TIMEOUT).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Respawn { child } => {
                let reaction = state.children.restart(&child, &myself.get_cell()).await;
                state.react(&myself, reaction).await;
            }
            RootMsg::AgentsChanged => state.apply_agents_file(&myself).await,
            RootMsg::Control { command, name, reply } => {
                let answer = state.control(&myself, command, &name).await;
                let _ = reply.send(answer);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let reaction = state.children.on_event(&event);
        state.react(&myself, reaction).await;
        Ok(())
    }
}

impl RootState {
    async fn react(&mut self, myself: &ActorRef<RootMsg>, reaction: Reaction) {
        if matches!(&reaction, Reaction::RestartNow { child } if *child == self.main_name) {
            tracing::info!(actor = ROOT_PATH, "Main agent asked for a restart; exiting with 42.");
            let _ = self.exit.send(EXIT_RESTART);
            return;
        }
        let respawn = |child| RootMsg::Respawn { child };
        match self.children.carry_out(myself, reaction, respawn).await {
            Some(Reaction::GaveUp { child, crashes, error }) if child == self.main_name => {
                tracing::error!(actor = ROOT_PATH, crashes, error = %error, "Main agent keeps crashing; exiting with 1.");
                let _ = self.exit.send(1);
            }
            Some(Reaction::Stopped { child }) if child == self.main_name => {
                let _ = self.exit.send(0);
            }
            Some(Reaction::GaveUp { child, crashes, error }) => {
                // A sub-agent (or the internal API) that keeps crashing: main's users are told.
                let agent = if self.running.iter().any(|e| e.name == child) { &child } else { &self.main_name };
                let text = supervision::give_up_notice(agent, &child, crashes, &error);
                self.main_bus.submit_detached(Envelope::supervisor_notice(&text));
            }
            _ => {}
        }
    }

    /// Reads `agents.json` and brings the running sub-agents in line with it; a file that does
    /// not parse keeps the running set.
    async fn apply_agents_file(&mut self, myself: &ActorRef<RootMsg>) {
        let Some(ctx) = self.sub_agents.clone() else { return };
        let file = match read_strict::<SubAgents>(&ctx.main.agents()) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(actor = ROOT_PATH, error = %e, running = self.running.len(),
                    "agents.json could not be read; keeping the running sub-agents.");
                return;
            }
        };
        for warning in &file.warnings {
            tracing::warn!(actor = ROOT_PATH, warning = %warning, "agents.json entry not usable.");
        }
        let plan = plan(&self.running, &file.agents);
        for name in &plan.stop {
            self.stop_agent(name).await;
        }
        for entry in &plan.restart {
            self.stop_agent(&entry.name).await;
            self.start_agent(myself, &ctx, entry).await;
        }
        for entry in &plan.start {
            self.start_agent(myself, &ctx, entry).await;
        }
        for name in &plan.changed {
            if let (Some(running), Some(wanted)) =
                (self.running.iter_mut().find(|e| e.name == *name), file.agents.iter().find(|e| e.name == *name))
            {
                *running = wanted.clone();
            }
            tracing::info!(actor = ROOT_PATH, agent = %name, "Sub-agent settings changed; they apply at its next start.");
        }
    }

    async fn start_agent(&mut self, myself: &ActorRef<RootMsg>, ctx: &SubAgentContext, entry: &SubAgentEntry) {
        let built = match build(ctx, entry) {
            Ok(built) => built,
            Err(e) => {
                tracing::error!(actor = ROOT_PATH, agent = %entry.name, error = %e, "Sub-agent not started.");
                return;
            }
        };
        self.agents.register(built.entry);
        self.running.retain(|e| e.name != entry.name);
        self.running.push(entry.clone());
        let args = built.args;
        let spec = ChildSpec::actor(&entry.name, ActorKind::Subagent, None, move || (Agent, args.clone()));
        tracing::info!(actor = ROOT_PATH, agent = %entry.name, "Starting sub-agent.");
        let reaction = self.children.add_and_start(spec, &myself.get_cell()).await;
        self.react(myself, reaction).await;
        // Its memory gets the shared knowledge (its workspace exists now).
        if let Some(observer) = self.children.cell(SHARED_MEMORY) {
            let _ = observer.send_message(SharedMemoryMsg::Sync);
        }
    }

    async fn stop_agent(&mut self, name: &str) {
        tracing::info!(actor = ROOT_PATH, agent = %name, "Stopping sub-agent.");
        self.children.remove(name, CHILD_STOP_TIMEOUT).await;
        self.agents.remove(name);
        self.running.retain(|e| e.name != name);
    }

    async fn control(&mut self, myself: &ActorRef<RootMsg>, command: AgentAction, name: &str) -> String {
        let Some(ctx) = self.sub_agents.clone() else { return "Sub-agents are not available.".to_owned() };
        let known = || {
            read_strict::<SubAgents>(&ctx.main.agents())
                .ok()
                .and_then(|f| f.agents.into_iter().find(|e| e.name == name))
        };
        let running = self.running.iter().any(|e| e.name == name) && self.children.cell(name).is_some();
        match command {
            AgentAction::Start if running => format!("Agent '{name}' is already running."),
            AgentAction::Start | AgentAction::Restart => match known() {
                Some(entry) => {
                    self.stop_agent(name).await;
                    self.start_agent(myself, &ctx, &entry).await;
                    format!("Agent '{name}' started.")
                }
                None => format!("No agent '{name}' in agents.json."),
            },
            AgentAction::Stop if running => {
                self.stop_agent(name).await;
                format!("Agent '{name}' stopped.")
            }
            AgentAction::Stop => format!("Agent '{name}' is not running."),
        }
    }
}

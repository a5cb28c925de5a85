//! The Root supervisor: the top of the actor tree. Starts the InternalApi, then the main
//! Agent, and maps how the main agent ends to the process exit status:
//! restart requested → 42, normal stop → 0, given up after repeated crashes → 1.
//! Other children follow the restart contract; a give-up is reported through the main Bus.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::mpsc;

use crate::core::envelope::Envelope;
use crate::core::health::ActorKind;
use crate::core::supervision::{self, EXIT_RESTART};
use crate::runtime::bus::BusHandle;
use crate::runtime::health_board::HealthBoard;
use crate::runtime::supervision::{ChildSet, ChildSpec, Reaction};
use crate::transport::internal_api::{InternalApi, InternalApiArgs};
use crate::tree::agent::{Agent, AgentArgs};

/// Path of the Root on the health board.
pub const ROOT_PATH: &str = "root";

/// How long the Root waits for each child to stop at shutdown.
const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(4);

/// Messages of the Root.
#[derive(Debug)]
pub enum RootMsg {
    /// Rebuild a crashed child (sent to itself after the backoff delay).
    Respawn {
        /// The child's name.
        child: String,
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
        let main = args.main.clone();
        let main_name = main.name.clone();
        children.add(ChildSpec::actor(&main_name, ActorKind::Agent, None, move || (Agent, main.clone())));
        children.start_all(&myself.get_cell()).await?;
        args.board.running(ROOT_PATH);
        Ok(RootState { children, main_name, main_bus: args.main.bus.clone(), exit: args.exit })
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
                let text = supervision::give_up_notice(&self.main_name, &child, crashes, &error);
                self.main_bus.submit_detached(Envelope::supervisor_notice(&text));
            }
            _ => {}
        }
    }
}

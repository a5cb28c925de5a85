//! The restart-marker observer: when `<home>/restart-requested` appears (any content), it is
//! deleted and the agent is asked to restart (ops spec §11.4). Lets tools and people request a
//! restart by creating a file.

use std::time::Duration;

use camino::Utf8PathBuf;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::runtime::supervision::RestartRequest;

/// Messages of the restart-marker observer.
#[derive(Debug)]
pub enum RestartMarkerMsg {
    /// Look for the marker now.
    Check,
}

/// Construction arguments.
#[derive(Clone)]
pub struct RestartMarkerArgs {
    /// The marker file.
    pub marker: Utf8PathBuf,
    /// How often to look.
    pub poll: Duration,
    /// Asks the agent to restart.
    pub restart: RestartRequest,
}

impl std::fmt::Debug for RestartMarkerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestartMarkerArgs")
            .field("marker", &self.marker)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct RestartMarker;

/// Its state.
#[derive(Debug)]
pub struct RestartMarkerState {
    args: RestartMarkerArgs,
}

impl Actor for RestartMarker {
    type Msg = RestartMarkerMsg;
    type State = RestartMarkerState;
    type Arguments = RestartMarkerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RestartMarkerMsg>,
        args: RestartMarkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(args.poll, || RestartMarkerMsg::Check);
        Ok(RestartMarkerState { args })
    }

    async fn handle(
        &self,
        _myself: ActorRef<RestartMarkerMsg>,
        msg: RestartMarkerMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RestartMarkerMsg::Check => {
                let marker = &state.args.marker;
                if !marker.exists() {
                    return Ok(());
                }
                match std::fs::remove_file(marker) {
                    Ok(()) => {
                        tracing::info!(actor = "restart_marker", path = %marker, "Restart marker found; restarting.");
                        (state.args.restart)("restart marker".to_owned());
                    }
                    Err(e) => {
                        tracing::warn!(actor = "restart_marker", path = %marker, error = %e,
                            "Restart marker found but could not be removed; ignoring it.");
                    }
                }
            }
        }
        Ok(())
    }
}

//! The shared-memory observer (core spec §9.6): seeds `<main home>/SHAREDMEMORY.md` when it is
//! missing, and copies it into every running agent's `MAINMEMORY.md` at start, whenever the file
//! changes (notify, debounced — no poll) and when asked (a sub-agent started). It writes only the
//! agents' memory files, never the file it watches, so there is no write loop.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::chat::agent_directory::AgentDirectory;
use crate::runtime::file_watch::FileWatch;
use crate::store::paths::DuctorPaths;
use crate::store::shared_memory::{ensure_seed, sync_into};

/// How long a change must settle before it is copied.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Messages of the observer.
#[derive(Debug)]
pub enum SharedMemoryMsg {
    /// Copy the shared text into every agent's memory now.
    Sync,
}

/// Construction arguments.
#[derive(Debug, Clone)]
pub struct SharedMemoryArgs {
    /// The main home (where `SHAREDMEMORY.md` lives).
    pub main: DuctorPaths,
    /// The agents to keep in sync.
    pub agents: AgentDirectory,
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct SharedMemory;

/// Its state.
#[derive(Debug)]
pub struct SharedMemoryState {
    args: SharedMemoryArgs,
    _watch: Option<FileWatch>,
}

impl Actor for SharedMemory {
    type Msg = SharedMemoryMsg;
    type State = SharedMemoryState;
    type Arguments = SharedMemoryArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SharedMemoryMsg>,
        args: SharedMemoryArgs,
    ) -> Result<SharedMemoryState, ActorProcessingErr> {
        if let Err(e) = ensure_seed(&args.main) {
            tracing::warn!(actor = "shared_memory", error = %e, "SHAREDMEMORY.md could not be created.");
        }
        let me = myself.clone();
        let watch = FileWatch::start(&args.main.shared_memory(), DEBOUNCE, move || {
            let _ = me.cast(SharedMemoryMsg::Sync);
        })
        .map_err(|e| tracing::warn!(actor = "shared_memory", error = %e, "Cannot watch SHAREDMEMORY.md; it is copied at start only."))
        .ok();
        let _ = myself.cast(SharedMemoryMsg::Sync);
        Ok(SharedMemoryState { args, _watch: watch })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SharedMemoryMsg>,
        msg: SharedMemoryMsg,
        state: &mut SharedMemoryState,
    ) -> Result<(), ActorProcessingErr> {
        let SharedMemoryMsg::Sync = msg;
        let main = state.args.main.clone();
        let agents: Vec<(String, DuctorPaths)> =
            state.args.agents.all().into_iter().map(|a| (a.name, a.paths)).collect();
        let run = tokio::task::spawn_blocking(move || {
            for (name, paths) in agents {
                match sync_into(&main, &paths) {
                    Ok(true) => {
                        tracing::info!(actor = "shared_memory", agent = %name, "Shared knowledge copied into MAINMEMORY.md.")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(actor = "shared_memory", agent = %name, error = %e, "Shared knowledge not copied.")
                    }
                }
            }
        });
        if let Err(e) = run.await {
            tracing::warn!(actor = "shared_memory", error = %e, "Shared knowledge sync failed; trying again at the next change.");
        }
        Ok(())
    }
}

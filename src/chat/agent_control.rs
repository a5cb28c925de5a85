//! What the main agent's chat commands do to the other agents of the process: `/agent_start`,
//! `/agent_stop`, `/agent_restart` (carried out by the Root) and the cross-agent part of
//! `/stop_all` (every other agent's turns, the async asks between agents). Handed down by the
//! composition as callbacks; only the main agent gets one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A person's command for one sub-agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAction {
    /// Start it (it must be in `agents.json`).
    Start,
    /// Stop it (it stays in `agents.json`; it starts again at the next start of ductor).
    Stop,
    /// Rebuild it.
    Restart,
}

impl AgentAction {
    /// The action of a command word (`agent_start` …).
    pub fn from_command(word: &str) -> Option<Self> {
        match word {
            "agent_start" => Some(Self::Start),
            "agent_stop" => Some(Self::Stop),
            "agent_restart" => Some(Self::Restart),
            _ => None,
        }
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Carries out an action on a named sub-agent; answers the text for the person.
pub type ControlFn = Arc<dyn Fn(AgentAction, String) -> Boxed<String> + Send + Sync>;

/// Stops what every other agent is doing; answers how many runs were stopped.
pub type StopOthersFn = Arc<dyn Fn() -> Boxed<usize> + Send + Sync>;

/// The main agent's reach into the others.
#[derive(Clone)]
pub struct AgentControl {
    /// `/agent_start|stop|restart`.
    pub control: ControlFn,
    /// The rest of `/stop_all`.
    pub stop_others: StopOthersFn,
}

impl std::fmt::Debug for AgentControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentControl")
    }
}

//! The chat layer: the Orchestrator (routing chat messages and button presses, commands, menus,
//! model choice, turn planning, named sessions and background runs, memory and heartbeat
//! turns) and the Session actors that run one chat's turns in order, one CLI process at a time.
//! Transports and observers reach it through [`orchestrator::OrchestratorHandle`]; the agents
//! of the process are listed in [`agent_directory`], and the main agent reaches the others
//! through [`agent_control`].

pub mod agent_control;
pub mod agent_directory;
pub mod model_catalog;
pub mod orchestrator;
pub mod session;

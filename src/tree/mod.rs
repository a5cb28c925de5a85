//! The composition at the top of the actor tree: the Root supervisor (the TaskHub, the shared
//! knowledge and the sub-agents of `agents.json` under it), the Agent (the one place that knows
//! every kind of child and wires them: Bus, Orchestrator, transports, observers), the building
//! of a sub-agent and the service run loop the `ductor` command starts. `actors.md` draws the
//! whole tree.
//!
//! ```text
//! root (supervisor)
//! ├── internal_api        transport/internal_api/
//! ├── tasks               tasks/hub.rs
//! ├── shared_memory       observer/shared_memory.rs
//! ├── <sub-agent>         the same subtree as main (sub_agents.rs)
//! └── main (agent)
//!     ├── bus             runtime/bus.rs
//!     ├── orchestrator    chat/orchestrator/ → sessions → provider runs
//!     ├── telegram | matrix | api    transport/
//!     └── observers       observer/ (cron, webhooks, heartbeat, cleanup, config reload, …)
//! ```

pub mod agent;
pub mod root;
pub mod service;
pub mod sub_agents;

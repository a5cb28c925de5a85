//! The composition at the top of the actor tree: the Root supervisor, the Agent (the one place
//! that knows every kind of child and wires them: Bus, Orchestrator, transports, observers) and
//! the service run loop the `ductor` command starts.
//!
//! ```text
//! root (supervisor)
//! ├── internal_api        transport/internal_api.rs
//! └── main (agent)
//!     ├── bus             runtime/bus.rs
//!     ├── orchestrator    chat/orchestrator/ → sessions → provider runs
//!     ├── codex_models    observer/model_cache.rs
//!     ├── telegram        transport/telegram/
//!     ├── matrix          transport/matrix/
//!     ├── spool           transport/spool.rs
//!     └── restart_marker  observer/restart_marker.rs
//! ```

pub mod agent;
pub mod root;
pub mod service;
pub mod sub_agents;

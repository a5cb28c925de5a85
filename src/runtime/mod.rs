//! The actor runtime: supervisors, the agent, the Envelope bus and the internal API.
//!
//! ```text
//! Root (supervisor)
//! ├── internal_api      warp on 127.0.0.1:<interagent_port>
//! └── main (agent)
//!     ├── bus           outbox journal → transport adapters
//!     ├── spool         optional adapter (DUCTOR_SPOOL)
//!     └── restart_marker
//! ```

pub mod adapter;
pub mod agent;
pub mod bus;
pub mod health_board;
pub mod internal_api;
pub mod matrix;
pub mod matrix_turn;
pub mod model_cache;
pub mod orchestrator;
pub mod restart_marker;
pub mod root;
pub mod service;
pub mod session;
pub mod spool;
pub mod supervision;
pub mod telegram;
pub mod telegram_api;
pub mod telegram_turn;

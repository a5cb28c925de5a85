//! The network edges, each an actor that registers a delivery adapter on its agent's Bus and
//! hands chat messages to the Orchestrator: Telegram, Matrix, the direct WebSocket API, the
//! loopback internal API and the spool (a file adapter for scripts and tests). Each transport's folder holds the actor,
//! its answer tasks and its pure parts (rendering, ingress rules) beside it. Transports never
//! import each other; what they share (the inbox guard, which files may be sent) is here.

pub mod api;
pub mod file_access;
pub mod inbox_entry;
pub mod internal_api;
pub mod matrix;
pub mod spool;
pub mod telegram;

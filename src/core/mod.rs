//! Pure domain logic: types and decisions with no I/O, no tokio and no actors.

pub mod config;
pub mod session_key;
pub mod state;

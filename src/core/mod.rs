//! Pure domain logic: types and decisions with no I/O, no tokio and no actors.

pub mod blake2s;
pub mod bus_route;
pub mod chat_status;
pub mod cli_args;
pub mod command;
pub mod config;
pub mod cron_selector;
pub mod directive;
pub mod envelope;
pub mod health;
pub mod model_cache;
pub mod named;
pub mod outbox;
pub mod prompt_hooks;
pub mod recovery;
pub mod resolve;
pub mod selector;
pub mod session_key;
pub mod state;
pub mod status_view;
pub mod stream_event;
pub mod supervision;
pub mod task_selector;
pub mod text;
pub mod turn_outcome;

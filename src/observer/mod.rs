//! Observers: actors driven by timers, watchers and outside events rather than by chat
//! messages: the cron jobs (and the unattended runs they share with webhook tasks), the webhook
//! server and its dispatch, the heartbeat, the daily cleanup, the model caches, the restart
//! marker, the rule-file and skill sync of the workspace, and the shared knowledge of all agents; each delivers what it has to say through its agent (the Bus, a restart request, a
//! shared catalog, the webhook sink) or works on the home's files alone.

pub mod cleanup;
pub mod config_reloader;
pub mod cron;
pub mod heartbeat;
pub mod model_cache;
pub mod restart_marker;
pub mod rule_sync;
pub mod shared_memory;
pub mod skill_sync;
pub mod unattended;
pub mod webhook_dispatch;
pub mod webhook_server;

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The wall clock an observer reads for local hours and dates (the system clock in production;
/// tests set the time of day).
pub type WallClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system's wall clock.
pub fn system_clock() -> WallClock {
    Arc::new(Utc::now)
}

//! The integration tests, one module per area, linked into one test binary (one link of the
//! whole dependency tree instead of one per file: a fraction of the disk and the build time).
//! Shared helpers live in `support/`; fixtures in `tests/fixtures/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![recursion_limit = "256"]

mod support;

mod agents;
mod api;
mod automation;
mod bus;
mod cleanup;
mod command_line;
mod config_load;
mod config_reload;
mod config_samples;
mod cron;
mod cron_golden;
mod downtime;
mod fake_bot_api;
mod heartbeat;
mod layout;
mod matrix;
mod model_cache;
mod oneshot;
mod provider_fixtures;
mod python_home_compat;
mod runner;
mod service;
mod sessions;
mod supervision;
mod system_service;
mod tasks;
mod telegram;
mod tool_commands;
mod webhook_server;
mod wizard;
mod workspace;

//! ductor — talk, from Telegram, Matrix rooms or an encrypted WebSocket API, to the official
//! coding-agent CLIs (`claude`, `codex`, `gemini`) running on your own machine.
//!
//! # Module map
//!
//! The folders are the kinds of the actor tree (see `actors.md`), from the bottom up:
//!
//! | module        | what it holds                                                           |
//! |---------------|-------------------------------------------------------------------------|
//! | [`core`]      | pure domain: config model and deep merge, state-file models, Envelope,  |
//! |               | supervision policy, bus routing, inbox and outbox records, command      |
//! |               | parsing, selectors, status views. No tokio, no I/O, no actors.          |
//! | [`store`]     | the home on disk: `DuctorPaths`, atomic JSON writes, corrupt-file       |
//! |               | quarantine, the PID lock, the inbox and outbox journals, the log file,  |
//! |               | the workspace (template tree, rule files, cron task folders, skills).   |
//! | [`provider`]  | the `claude` / `codex` / `gemini` CLIs: argv builders, stream parsers   |
//! |               | into provider-neutral events, the process runner, auth probes.          |
//! | [`runtime`]   | generic actor machinery: the supervision helper (code-42 contract), the |
//! |               | health board, the Bus and the adapter protocol of its deliveries.       |
//! | [`chat`]      | the Orchestrator and its Sessions: routing, commands, menus, turn       |
//! |               | planning, named sessions, memory and heartbeat turns; the model catalog.|
//! | [`tasks`]     | work handed between agents and to the background: inter-agent asks      |
//! |               | (sync and async, answers as Envelopes on the sender's Bus) and the      |
//! |               | TaskHub (`tasks.json`, task folders, workers).                          |
//! | [`observer`]  | timers and watchers, each an actor: cron, webhooks, heartbeat, cleanup, |
//! |               | config reload, model caches, the restart marker, the workspace's rule   |
//! |               | and skill sync, the shared knowledge of all agents.                     |
//! | [`transport`] | the network edges, each an actor: `telegram/`, `matrix/`, `api/` (the   |
//! |               | actor, its answer tasks and its pure parts beside it), the internal     |
//! |               | API, the spool.                                                         |
//! | [`tree`]      | the composition: Root, Agent, sub-agents and the service run loop — the |
//! |               | only place that knows every kind of child and wires them.               |
//! | [`cli`]       | the `ductor` command line: run, status, stop, restart, the setup wizard,|
//! |               | `service`, `api`, `chat`, and the tool commands (cron, webhook, agent,  |
//! |               | task).                                                                  |
//!
//! # Dependency direction
//!
//! ```text
//! core ← store, provider ← runtime ← chat ← tasks ← observer, transport ← tree ← cli ← main
//! ```
//!
//! A module imports only from the layers to its left (`store` and `provider` do not import each
//! other; nor do `observer` and `transport`); `core` imports nothing of ours. Transports never
//! import each other: they reach the chat layer through [`chat::orchestrator::OrchestratorHandle`]
//! and each other only through [`core::envelope::Envelope`]s on the Bus. What a lower layer
//! needs from a higher one is handed down by the composition as a value (a handle, a callback
//! such as [`runtime::supervision::RestartRequest`]). `tests/suite/layout.rs` checks the direction.

#![recursion_limit = "512"]

pub mod chat;
pub mod cli;
pub mod core;
pub mod observer;
pub mod provider;
pub mod runtime;
pub mod store;
pub mod tasks;
pub mod transport;
pub mod tree;

//! ductor — talk, from Telegram, Matrix rooms or an encrypted WebSocket API, to the official
//! coding-agent CLIs (`claude`, `codex`, `gemini`) running on your own machine.
//!
//! # Module map
//!
//! | module       | what it holds                                                            |
//! |--------------|--------------------------------------------------------------------------|
//! | [`core`]     | pure domain: config model and deep merge, state-file models, Envelope,   |
//! |              | supervision policy, bus routing, outbox journal records, status views.   |
//! |              | No tokio, no I/O, no actors — most unit tests live here.                 |
//! | [`provider`] | the `claude` / `codex` / `gemini` CLIs: argv builders and stream parsers   |
//! |              | into provider-neutral events (pure).                                     |
//! | [`store`]    | the home on disk: `DuctorPaths`, atomic JSON writes, corrupt-file        |
//! |              | quarantine, the PID lock, the outbox journal file, the rotating log.     |
//! | [`runtime`]  | the ractor actors: Root supervisor, Agent, Bus, InternalApi, and the     |
//! |              | supervision helper that restarts children with code-42 semantics.        |
//! | [`transport`]| the network edges (Telegram, Matrix, WebSocket API) — each an actor.     |
//! | [`cli`]      | the `ductor` command line: run, status, stop, restart, help.             |
//!
//! # Dependency direction
//!
//! `core` (pure) ← `store` / `provider` ← `runtime` ← `transport` ← `cli` / `main`.
//! `core` depends on nothing of ours; a module never reaches "upwards". Transports never call
//! each other: they talk to the runtime through typed handles and [`core::envelope::Envelope`]s.

#![recursion_limit = "512"]

pub mod cli;
pub mod core;
pub mod provider;
pub mod runtime;
pub mod store;
pub mod transport;

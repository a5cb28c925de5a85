//! The generic actor machinery every layer above builds on: the supervision helper (code-42
//! restart contract, health on the board), the health board `ductor status` reads, the Bus
//! (durable outbox, routing, session gate, delivery) and the adapter protocol transports speak
//! to it, the file watcher observers reload from, the dependency queue unattended runs share, and the
//! way an actor serves HTTP.
//! Knows no transport, no chat and no composition.

pub mod adapter;
pub mod bus;
pub mod dependency_queue;
pub mod file_watch;
pub mod health_board;
pub mod http_server;
pub mod supervision;

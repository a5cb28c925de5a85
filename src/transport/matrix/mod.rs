//! The Matrix transport (transports spec §3): the actor (`matrix` in the tree, Bus transport
//! `mx`), one answer task per message queued per room, the store directory beside matrix-sdk's
//! sqlite stores, and the pure parts — room id ↔ chat id and the ingress rules, Markdown →
//! Matrix HTML events, reaction buttons.

mod actor;
mod commands;
mod delivery;
pub mod ingress;
mod login;
pub mod store;
mod sync;
pub mod text;
pub mod turn;

pub use actor::{Inbound, MATRIX_TRANSPORT, Matrix, MatrixArgs, MatrixMsg, MatrixState};

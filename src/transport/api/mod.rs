//! The direct WebSocket API (transports spec §6; the wire protocol in `docs/api-protocol.md`):
//! the actor and its warp server (`actor.rs`, `http.rs`), one task per socket
//! (`connection.rs`), a protocol-v2 client (`client.rs`); pure: the frames (`wire.rs`), v1 NaCl
//! boxes (`box_v1.rs`) and v2 `crypto_kx` + secretstream (`stream_v2.rs`).

pub mod actor;
pub mod box_v1;
pub mod client;
pub mod connection;
pub mod http;
pub mod stream_v2;
pub mod wire;

pub use actor::{Api, ApiArgs, ApiMsg};
pub use connection::API_TRANSPORT;

//! Work handed between agents and to the background (core spec §8–9): inter-agent asks — a
//! question to another agent of this process, answered at once or later as an Envelope on the
//! sender's Bus — and the TaskHub. Above the chat layer (it drives Orchestrators and Buses),
//! below the transports (the internal API serves it): [`inter_agent`] (sync and async asks) and
//! [`hub`] (the TaskHub).

pub mod hub;
pub mod inter_agent;

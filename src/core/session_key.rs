//! `SessionKey`: the transport-agnostic identity of a conversation (core spec §1).

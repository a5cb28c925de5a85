//! Observers: actors driven by timers, watchers and outside events rather than by chat
//! messages. Today the model-cache observer (Codex and Gemini model lists), the restart marker
//! and the webhook server; each delivers what it has to say through its agent (the Bus, a
//! restart request, a shared catalog, the webhook sink).

pub mod model_cache;
pub mod restart_marker;
pub mod webhook_server;

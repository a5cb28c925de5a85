//! Observers: actors driven by timers and watchers rather than by chat messages. Today the
//! model-cache observer (Codex and Gemini model lists) and the restart marker; each delivers
//! what it has to say through its agent (the Bus, a restart request, a shared catalog).

pub mod model_cache;
pub mod restart_marker;

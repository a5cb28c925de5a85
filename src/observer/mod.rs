//! Observers: actors driven by timers and watchers rather than by chat messages. Today the
//! model-cache observer (Codex and Gemini model lists), the restart marker, the rule-file sync
//! and the skill sync of the workspace; each delivers what it has to say through its agent (the
//! Bus, a restart request, a shared catalog) or works on the home's files alone.

pub mod model_cache;
pub mod restart_marker;
pub mod rule_sync;
pub mod skill_sync;

//! Turns ductor starts on its own in a chat's queue: the memory flush and compaction after the
//! CLI compacted its context (answers discarded), and heartbeat turns (silence on the ack token).

use std::sync::Arc;

use ractor::ActorRef;
use tokio::sync::mpsc;

use crate::chat::session::{MemoryTurn, ReplyTo, SessionMsg, SessionOutput, TurnFlow, TurnRequest};
use crate::core::session_key::SessionKey;
use crate::core::stream_event::TurnResult;

use super::{OrchestratorMsg, OrchestratorState};

/// The alert of a heartbeat turn: its text without the ack token at the start or end; none
/// for an error or when nothing else is left.
pub(super) fn heartbeat_alert(result: &TurnResult, ack_token: &str) -> Option<String> {
    if result.is_error {
        return None;
    }
    let mut text = result.result.trim();
    if !ack_token.is_empty() {
        text = text.strip_prefix(ack_token).unwrap_or(text).trim();
        text = text.strip_suffix(ack_token).unwrap_or(text).trim();
    }
    (!text.is_empty()).then(|| text.to_owned())
}

impl OrchestratorState {
    /// A heartbeat for a chat (core spec §4.6), queued behind the chat's turns. Skipped (no
    /// output but `Stopped`) unless the chat has a CLI session of the configured default
    /// provider that has been idle for `heartbeat.cooldown_minutes`.
    pub(crate) async fn heartbeat(
        &mut self,
        myself: &ActorRef<OrchestratorMsg>,
        key: &SessionKey,
        prompt: String,
        ack_token: String,
        reply: ReplyTo,
    ) {
        let config = Arc::clone(&self.args.config);
        let default = self.provider_of(&config.model);
        let eligible = self.store.get(key).is_some_and(|record| {
            let idle = crate::core::state::parse_timestamp(&record.last_active).is_some_and(|at| {
                chrono::Utc::now() - at >= chrono::Duration::minutes(config.heartbeat.cooldown_minutes)
            });
            record.provider == default.name()
                && record.bucket(default.name()).is_some_and(|b| !b.session_id.is_empty())
                && idle
        });
        if !eligible {
            let _ = reply.send(SessionOutput::Stopped);
            return;
        }
        // The session follows the configured model before it is woken.
        let record = self.record_mut(key);
        record.model = config.model.clone();
        self.save();
        let Some(session) = self.session(myself, key).await else { return };
        let request = TurnRequest { prompt, flow: TurnFlow::Heartbeat { ack_token }, reply, on_start: None };
        let _ = session.cast(SessionMsg::Turn(Box::new(request)));
    }

    /// After the CLI compacted its context: one silent turn asks it to save what matters to
    /// MAINMEMORY.md (at most once per `memory_flush.dedup_seconds`).
    pub(super) async fn maybe_flush_memory(&mut self, myself: &ActorRef<OrchestratorMsg>, key: &SessionKey) {
        let config = Arc::clone(&self.args.config);
        if !config.memory_flush.enabled {
            return;
        }
        let dedup = std::time::Duration::from_secs(u64::try_from(config.memory_flush.dedup_seconds).unwrap_or(0));
        if self.last_flush.get(key).is_some_and(|at| at.elapsed() < dedup) {
            return;
        }
        self.last_flush.insert(key.clone(), std::time::Instant::now());
        self.queue_silent(myself, key, config.memory_flush.flush_prompt.clone(), MemoryTurn::Flush).await;
    }

    /// After a flush: when MAINMEMORY.md has grown past `trigger_lines`, a silent turn asks
    /// for it to be rewritten shorter.
    pub(super) async fn maybe_compact_memory(&mut self, myself: &ActorRef<OrchestratorMsg>, key: &SessionKey) {
        let config = Arc::clone(&self.args.config);
        let compaction = &config.memory_compaction;
        if !compaction.enabled {
            return;
        }
        let lines = std::fs::read_to_string(self.args.paths.main_memory()).map_or(0, |t| t.lines().count());
        if i64::try_from(lines).unwrap_or(i64::MAX) < compaction.trigger_lines {
            return;
        }
        let template = if compaction.prompt.contains("{target_lines}") || compaction.prompt.contains("{preserve_days}")
        {
            compaction.prompt.clone()
        } else {
            crate::core::config::defaults::COMPACTION_PROMPT.to_owned()
        };
        let prompt = template
            .replace("{target_lines}", &compaction.target_lines.to_string())
            .replace("{preserve_days}", &compaction.preserve_recency_days.to_string());
        self.queue_silent(myself, key, prompt, MemoryTurn::Compact).await;
    }

    /// Queues a turn in the chat's session whose output nobody reads.
    pub(super) async fn queue_silent(
        &mut self,
        myself: &ActorRef<OrchestratorMsg>,
        key: &SessionKey,
        prompt: String,
        memory: MemoryTurn,
    ) {
        let Some(session) = self.session(myself, key).await else { return };
        let (reply, _discarded) = mpsc::unbounded_channel();
        let request = TurnRequest { prompt, flow: TurnFlow::Memory(memory), reply, on_start: None };
        if let Err(e) = session.cast(SessionMsg::Turn(Box::new(request))) {
            tracing::warn!(actor = %key, error = %e, "Could not queue the memory turn.");
        }
    }
}

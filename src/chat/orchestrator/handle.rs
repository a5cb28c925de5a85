//! [`OrchestratorHandle`]: how transports, the Bus and observers talk to the Orchestrator — a
//! cloneable handle that survives restarts of the actor.

use tokio::sync::mpsc;

use crate::chat::session::{SessionOutput, StartHook};
use crate::core::envelope::{Envelope, LockMode};
use crate::core::session_key::SessionKey;
use crate::core::text::render;
use crate::runtime::supervision::ActorSlot;

use super::{InterAgentAnswer, InterAgentAsk, OrchestratorMsg};

/// Cloneable handle transports use to talk to an agent's Orchestrator (survives restarts).
#[derive(Debug, Clone, Default)]
pub struct OrchestratorHandle {
    slot: ActorSlot<OrchestratorMsg>,
}

impl OrchestratorHandle {
    /// A handle whose Orchestrator is not started yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The slot the supervisor points at each new Orchestrator.
    pub fn slot(&self) -> ActorSlot<OrchestratorMsg> {
        self.slot.clone()
    }

    /// Runs an envelope through its chat's session (queue and/or injection); returns it ready
    /// to deliver. Without a running Orchestrator it comes back as it was.
    pub async fn through_session(&self, mut envelope: Envelope) -> Envelope {
        let Some(orchestrator) = self.slot.get() else {
            tracing::warn!(actor = "orchestrator", envelope_id = %envelope.envelope_id, "No orchestrator; delivering the envelope as it is.");
            envelope.needs_injection = false;
            envelope.lock_mode = LockMode::None;
            return envelope;
        };
        let (done, back) = tokio::sync::oneshot::channel();
        let original = envelope.clone();
        if orchestrator.cast(OrchestratorMsg::Envelope { envelope: Box::new(envelope), done }).is_err() {
            return Envelope { needs_injection: false, lock_mode: LockMode::None, ..original };
        }
        back.await.unwrap_or(Envelope { needs_injection: false, lock_mode: LockMode::None, ..original })
    }

    /// Another agent's message; `None` when this agent's Orchestrator is not running.
    pub async fn inter_agent(&self, ask: InterAgentAsk) -> Option<InterAgentAnswer> {
        let orchestrator = self.slot.get()?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        orchestrator.cast(OrchestratorMsg::InterAgent { ask: Box::new(ask), reply }).ok()?;
        answer.await.ok()
    }

    /// Stops every turn and background run of this agent; how many (0 when not running).
    pub async fn stop_everything(&self) -> usize {
        let Some(orchestrator) = self.slot.get() else { return 0 };
        let (reply, count) = tokio::sync::oneshot::channel();
        if orchestrator.cast(OrchestratorMsg::StopEverything { reply }).is_err() {
            return 0;
        }
        count.await.unwrap_or(0)
    }

    /// Asks for a heartbeat in a chat; the stream ends with the alert (`Notice`) or `Stopped`.
    pub fn heartbeat(&self, key: SessionKey, prompt: &str, ack_token: &str) -> mpsc::UnboundedReceiver<SessionOutput> {
        let (reply, outputs) = mpsc::unbounded_channel();
        if let Some(orchestrator) = self.slot.get() {
            let message =
                OrchestratorMsg::Heartbeat { key, prompt: prompt.to_owned(), ack_token: ack_token.to_owned(), reply };
            let _ = orchestrator.cast(message);
        }
        outputs
    }

    /// A pressed button's callback data; returns the answer (a menu or a notice).
    pub fn callback(&self, key: SessionKey, data: &str) -> mpsc::UnboundedReceiver<SessionOutput> {
        let (reply, outputs) = mpsc::unbounded_channel();
        match self.slot.get() {
            Some(orchestrator) => {
                let _ = orchestrator.cast(OrchestratorMsg::Callback { key, data: data.to_owned(), reply });
            }
            None => {
                let _ = reply.send(SessionOutput::Notice(render("error.starting", &[])));
            }
        }
        outputs
    }

    /// Hands a hot-reloaded config to the running Orchestrator.
    pub fn reconfigure(&self, config: std::sync::Arc<crate::core::config::Config>) {
        if let Some(orchestrator) = self.slot.get() {
            let _ = orchestrator.cast(OrchestratorMsg::Reconfigure(config));
        }
    }

    /// Sends a chat message; returns the stream of its outputs (closed when nothing more comes).
    pub fn message(&self, key: SessionKey, text: &str) -> mpsc::UnboundedReceiver<SessionOutput> {
        self.message_with_start(key, text, None)
    }

    /// The same; `on_start` runs when the message's turn starts, before its CLI.
    pub fn message_with_start(
        &self,
        key: SessionKey,
        text: &str,
        on_start: Option<StartHook>,
    ) -> mpsc::UnboundedReceiver<SessionOutput> {
        let (reply, outputs) = mpsc::unbounded_channel();
        match self.slot.get() {
            Some(orchestrator) => {
                let message = OrchestratorMsg::Message { key, text: text.to_owned(), reply, on_start };
                let _ = orchestrator.cast(message);
            }
            None => {
                let _ = reply.send(SessionOutput::Notice(render("error.starting", &[])));
            }
        }
        outputs
    }

    /// Stops the whole chat of `key` (as `/stop` outside a topic); `None` without a running
    /// Orchestrator.
    pub async fn stop_chat(&self, key: SessionKey) -> Option<crate::chat::session::StopReport> {
        let orchestrator = self.slot.get()?;
        let (reply, report) = tokio::sync::oneshot::channel();
        orchestrator.cast(OrchestratorMsg::StopChat { key, reply }).ok()?;
        report.await.ok()
    }
}

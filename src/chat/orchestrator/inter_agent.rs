//! A message from another agent, answered by this agent (core spec §9.3): it runs in the named
//! session `ia-<sender>` of the first allowed user's chat, beside the person's own turns (no
//! chat lock), non-streaming, with this agent's current provider and model; the answer goes back
//! to the asker. A provider change since the last message starts the session afresh (with a
//! notice). The CLI learns how deep the chain of asks is (`DUCTOR_INTERAGENT_DEPTH`), so a
//! ping-pong between agents is cut by the asking side.

use std::sync::Arc;

use ractor::ActorRef;
use tokio::sync::{oneshot, watch};

use crate::core::health::ActorKind;
use crate::core::named::NewNamed;
use crate::core::session_key::{ChatId, SessionKey};
use crate::core::stream_event::TurnResult;
use crate::core::turn_outcome::{outcome, reply_text};
use crate::provider::runner::{Control, run_turn};

use super::{OrchestratorMsg, OrchestratorState};

/// The environment variable that tells a CLI how many asks led to its turn (0 or absent: a
/// person's turn).
pub const INTERAGENT_DEPTH_ENV: &str = "DUCTOR_INTERAGENT_DEPTH";

/// A message from another agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterAgentAsk {
    /// The asking agent's name.
    pub sender: String,
    /// The message.
    pub message: String,
    /// End the `ia-<sender>` session first.
    pub new_session: bool,
    /// How many asks led to this one (the asking CLI's depth).
    pub depth: u32,
}

/// This agent's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterAgentAnswer {
    /// The answer text (empty on failure).
    pub text: String,
    /// Whether the CLI answered without error.
    pub success: bool,
    /// What went wrong.
    pub error: Option<String>,
    /// The named session the message ran in (`ia-<sender>`).
    pub session_name: String,
    /// A notice for the asker (the session was started afresh after a provider change).
    pub notice: String,
    /// The CLI that answered.
    pub provider: String,
    /// Its model.
    pub model: String,
}

impl InterAgentAnswer {
    /// A failure before anything ran.
    pub fn failed(error: impl Into<String>) -> Self {
        Self { error: Some(error.into()), ..Self::default() }
    }
}

/// An inter-agent turn that ended (internal).
#[derive(Debug)]
pub struct InterAgentFinished {
    chat: ChatId,
    name: String,
    result: TurnResult,
    answer: InterAgentAnswer,
    reply: oneshot::Sender<InterAgentAnswer>,
}

/// The prompt the recipient's CLI gets.
pub fn inter_agent_prompt(sender: &str, own: &str, message: &str) -> String {
    format!(
        "[INTER-AGENT MESSAGE from '{sender}' to '{own}']\n{message}\n[END INTER-AGENT MESSAGE]\n\n\
         You are '{own}'. Answer the agent '{sender}' directly and concisely; your answer is \
         returned to it as the result of its question."
    )
}

impl OrchestratorState {
    /// The chat an agent's inter-agent sessions live in: its first allowed Telegram user
    /// (0 when there is none, e.g. a Matrix-only agent).
    pub(super) fn inter_agent_chat(&self) -> SessionKey {
        let config = &self.args.config;
        let transport =
            if config.transports.iter().any(|t| t == "telegram") || config.transports.is_empty() { "tg" } else { "mx" };
        let chat = config.allowed_user_ids.first().copied().unwrap_or(0);
        SessionKey { transport: transport.to_owned(), chat_id: ChatId::from(chat), topic_id: None }
    }

    /// Runs another agent's message in `ia-<sender>`; the answer arrives on `reply`.
    pub(super) fn inter_agent(
        &mut self,
        myself: &ActorRef<OrchestratorMsg>,
        ask: InterAgentAsk,
        reply: oneshot::Sender<InterAgentAnswer>,
    ) {
        let key = self.inter_agent_chat();
        let chat = key.chat_id;
        let name = format!("ia-{}", ask.sender);
        let config = Arc::clone(&self.args.config);
        let kind = self.provider_of(&config.model);
        let mut notice = String::new();
        if ask.new_session {
            self.end_named_session(chat, &name);
        }
        if let Some(existing) = self.named.get(chat, &name)
            && existing.provider != kind.name()
        {
            notice = format!(
                "Session '{name}' was started afresh: {own} now runs {new} (it ran {old}).",
                own = self.args.agent,
                new = kind.display_name(),
                old = existing.provider,
            );
            self.end_named_session(chat, &name);
        }
        let prompt = inter_agent_prompt(&ask.sender, &self.args.agent, &ask.message);
        let session = match self.named.get(chat, &name).cloned() {
            Some(_) => self.named.mark_running(chat, &name, &ask.message),
            None => {
                let created_at =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                let new = NewNamed {
                    chat,
                    transport: &key.transport,
                    provider: kind.name(),
                    model: &config.model,
                    prompt: &ask.message,
                    created_at,
                };
                self.named.create_named(&new, &name)
            }
        };
        let session = match session {
            Ok(session) => session,
            Err(e) => {
                // Busy with the message that led here: the ask goes back along its own chain.
                let error = if ask.depth > 0 {
                    format!(
                        "Inter-agent loop: '{own}' is still working on the message from '{sender}' that led \
                         here (session {name}). Answer with what you have instead of asking back.",
                        own = self.args.agent,
                        sender = ask.sender,
                    )
                } else {
                    format!("{}: {e}", self.args.agent)
                };
                let _ = reply.send(InterAgentAnswer { session_name: name.clone(), ..InterAgentAnswer::failed(error) });
                return;
            }
        };
        self.save_named();
        let depth = [(INTERAGENT_DEPTH_ENV.to_owned(), (ask.depth + 1).to_string())];
        let (invocation, settings) = self.named_run(kind, &key, &session, prompt, config.cli_timeout, &depth);
        let (control, control_rx) = watch::channel(Control::Run);
        self.background.insert((chat, name.clone()), control);
        let board_path = format!("{}/{name}", self.args.board_path);
        self.args.board.register(&board_path, kind.name(), ActorKind::Provider);
        self.args.board.running(&board_path);
        let board = self.args.board.clone();
        let me = myself.clone();
        let answer = InterAgentAnswer {
            session_name: name.clone(),
            notice,
            provider: kind.name().to_owned(),
            model: session.model.clone(),
            ..InterAgentAnswer::default()
        };
        tracing::info!(actor = "orchestrator", agent = %self.args.agent, from = %ask.sender, depth = ask.depth,
            "Inter-agent message received.");
        tokio::spawn(async move {
            let mut parser = kind.stream_parser();
            let result = match run_turn(&invocation, parser.as_mut(), &settings, control_rx, |_| {}).await {
                Ok(transcript) => transcript.result,
                Err(e) => TurnResult { is_error: true, result: e.to_string(), ..TurnResult::default() },
            };
            board.remove(&board_path);
            let finished = InterAgentFinished { chat, name, result, answer, reply };
            let _ = me.cast(OrchestratorMsg::InterAgentFinished(Box::new(finished)));
        });
    }

    /// An inter-agent turn ended: the session is updated, the answer goes back.
    pub(super) fn inter_agent_finished(&mut self, finished: InterAgentFinished) {
        let InterAgentFinished { chat, name, result, mut answer, reply } = finished;
        let cancelled = self.background.remove(&(chat, name.clone())).is_none();
        if result.is_error || cancelled {
            self.named.mark_idle(chat, &name);
            answer.error = Some(if cancelled {
                "the request was cancelled".to_owned()
            } else if result.result.trim().is_empty() {
                "the CLI ended with an error".to_owned()
            } else {
                result.result.trim().to_owned()
            });
        } else {
            self.named.update_after_response(chat, &name, result.session_id.as_deref().unwrap_or(""));
            answer.text = reply_text(&outcome(&result), &answer.model);
            answer.success = true;
        }
        self.save_named();
        let _ = reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_both_agents_and_brackets_the_message() {
        let prompt = inter_agent_prompt("main", "ops", "disk usage?");
        assert!(
            prompt.starts_with("[INTER-AGENT MESSAGE from 'main' to 'ops']\ndisk usage?\n[END INTER-AGENT MESSAGE]")
        );
        assert!(prompt.contains("You are 'ops'"));
    }
}

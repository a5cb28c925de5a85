//! Inter-agent asks (core spec §9.4): one agent's question to another agent of this process.
//! A sync ask returns the answer (or a timeout); an async ask returns a task id at once and
//! its answer later reaches the sender (or `reply_to`) as an `interagent` Envelope on that
//! agent's Bus, injected into its chat's session with a delivery key (recorded once, delivered
//! once, also across a crash). An unknown target gets an error listing the agents; a chain of
//! asks deeper than [`MAX_DEPTH`] is refused with a clear message, which ends a ping-pong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::chat::agent_directory::{AgentDirectory, AgentEntry};
use crate::chat::orchestrator::{InterAgentAnswer, InterAgentAsk};
use crate::core::envelope::{Envelope, LockMode, Origin};
use crate::core::session_key::ChatId;

/// How long a sync ask waits for the answer.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(300);

/// How long an async ask may run.
pub const ASYNC_TIMEOUT: Duration = Duration::from_secs(3600);

/// The longest chain of asks (an agent's CLI asking an agent whose CLI asks …).
pub const MAX_DEPTH: u32 = 3;

/// A question from one agent to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The asking agent.
    pub from: String,
    /// The agent asked.
    pub to: String,
    /// The message.
    pub message: String,
    /// Start the recipient's `ia-<from>` session afresh.
    pub new_session: bool,
    /// How many asks led to the asking CLI's turn (its `DUCTOR_INTERAGENT_DEPTH`).
    pub depth: u32,
}

/// Where an async answer goes and how the recipient is told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsyncOptions {
    /// A short summary shown to the recipient's user instead of the message.
    pub summary: Option<String>,
    /// The sender's chat the answer goes to (default: its first allowed user).
    pub chat_id: Option<i64>,
    /// Its topic.
    pub topic_id: Option<i64>,
    /// Its transport (`tg`, `mx`; default: the sender's first).
    pub transport: Option<String>,
    /// The agent the answer goes to instead of the sender.
    pub reply_to: Option<String>,
    /// Do not tell the recipient's user.
    pub silent: bool,
}

/// The answer of a sync ask, as `POST /interagent/send` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The agent that answered (the target).
    pub sender: String,
    /// Its answer.
    pub text: String,
    /// Whether it answered.
    pub success: bool,
    /// What went wrong.
    pub error: Option<String>,
}

/// The inter-agent asks of this process; clones share the running async asks.
#[derive(Debug, Clone)]
pub struct InterAgent {
    agents: AgentDirectory,
    running: Arc<Mutex<HashMap<String, tokio::task::AbortHandle>>>,
    sync_timeout: Duration,
}

impl InterAgent {
    /// Asks between the agents of `agents`.
    pub fn new(agents: AgentDirectory) -> Self {
        Self { agents, running: Arc::default(), sync_timeout: SYNC_TIMEOUT }
    }

    /// The same with another sync timeout (tests).
    pub fn with_sync_timeout(mut self, timeout: Duration) -> Self {
        self.sync_timeout = timeout;
        self
    }

    /// The recipient, or the error the asker sees.
    fn target(&self, ask: &Ask) -> Result<AgentEntry, String> {
        if ask.depth >= MAX_DEPTH {
            return Err(format!(
                "Inter-agent chain too deep: this ask would be number {} in a row (limit {MAX_DEPTH}). \
                 Answer with what you have instead of asking another agent.",
                ask.depth + 1
            ));
        }
        if ask.to == ask.from {
            return Err(format!("Agent '{}' cannot ask itself.", ask.to));
        }
        self.agents
            .get(&ask.to)
            .ok_or_else(|| format!("Unknown agent '{}'. Available agents: {}.", ask.to, self.agents.names().join(", ")))
    }

    /// A sync ask: the recipient's answer, or an error (unknown agent, depth, timeout).
    pub async fn ask(&self, ask: Ask) -> Reply {
        let failed =
            |error: String| Reply { sender: ask.to.clone(), text: String::new(), success: false, error: Some(error) };
        let target = match self.target(&ask) {
            Ok(target) => target,
            Err(e) => {
                tracing::warn!(from = %ask.from, to = %ask.to, error = %e, "Inter-agent ask refused.");
                return failed(e);
            }
        };
        let question = InterAgentAsk {
            sender: ask.from.clone(),
            message: ask.message.clone(),
            new_session: ask.new_session,
            depth: ask.depth,
        };
        match tokio::time::timeout(self.sync_timeout, target.orchestrator.inter_agent(question)).await {
            Ok(Some(answer)) => Reply {
                sender: ask.to.clone(),
                text: with_notice(&answer),
                success: answer.success,
                error: answer.error,
            },
            Ok(None) => failed(format!("Agent '{}' is not running.", ask.to)),
            Err(_) => failed(format!("Agent '{}' did not answer within {} s.", ask.to, self.sync_timeout.as_secs())),
        }
    }

    /// An async ask: its task id at once, or an error (unknown agent, depth). The answer reaches
    /// the sender's (or `reply_to`'s) chat later through its Bus.
    pub fn ask_async(&self, ask: Ask, options: AsyncOptions) -> Result<String, String> {
        let target = self.target(&ask)?;
        let answer_to = options.reply_to.clone().unwrap_or_else(|| ask.from.clone());
        if self.agents.get(&answer_to).is_none() {
            return Err(format!(
                "Unknown agent '{answer_to}' to answer to. Available agents: {}.",
                self.agents.names().join(", ")
            ));
        }
        let task_id = new_task_id();
        let job = AsyncJob { task_id: task_id.clone(), ask, options, target, agents: self.agents.clone() };
        let running = Arc::clone(&self.running);
        let id = task_id.clone();
        // Held while the job is spawned: a job that ends at once removes itself after this
        // insert, never before it.
        let mut jobs = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let handle = tokio::spawn(async move {
            job.run().await;
            running.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        });
        jobs.insert(task_id.clone(), handle.abort_handle());
        Ok(task_id)
    }

    /// Cancels every async ask still running (`/stop_all`); returns how many.
    pub fn cancel_all(&self) -> usize {
        let jobs: Vec<_> = self.running.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        for (_, job) in &jobs {
            job.abort();
        }
        jobs.len()
    }

    /// How many async asks are running.
    pub fn running(&self) -> usize {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The answer text with the recipient's notice in front, if it had one.
fn with_notice(answer: &InterAgentAnswer) -> String {
    if answer.notice.is_empty() { answer.text.clone() } else { format!("{}\n\n{}", answer.notice, answer.text) }
}

/// 12 hex digits.
fn new_task_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Shortens to `limit` characters with an ellipsis.
fn preview(text: &str, limit: usize) -> String {
    let mut short: String = text.chars().take(limit).collect();
    if text.chars().count() > limit {
        short.push('…');
    }
    short
}

/// One running async ask.
struct AsyncJob {
    task_id: String,
    ask: Ask,
    options: AsyncOptions,
    target: AgentEntry,
    agents: AgentDirectory,
}

impl AsyncJob {
    async fn run(self) {
        let started = Instant::now();
        self.tell_recipient().await;
        let question = InterAgentAsk {
            sender: self.ask.from.clone(),
            message: self.ask.message.clone(),
            new_session: self.ask.new_session,
            depth: self.ask.depth,
        };
        let answer = match tokio::time::timeout(ASYNC_TIMEOUT, self.target.orchestrator.inter_agent(question)).await {
            Ok(Some(answer)) => answer,
            Ok(None) => InterAgentAnswer::failed(format!("Agent '{}' is not running.", self.ask.to)),
            Err(_) => InterAgentAnswer::failed(format!("No answer within {} s.", ASYNC_TIMEOUT.as_secs())),
        };
        self.deliver(answer, started.elapsed()).await;
    }

    /// The recipient's user learns that another agent handed it work (unless silent or a
    /// forwarded answer).
    async fn tell_recipient(&self) {
        if self.options.silent || self.options.reply_to.is_some() {
            return;
        }
        let about = self.options.summary.clone().unwrap_or_else(|| preview(&self.ask.message, 200));
        let chat = self.target.config.allowed_user_ids.first().copied().unwrap_or(0);
        let envelope = Envelope {
            origin: Origin::Interagent,
            chat_id: ChatId::from(chat),
            transport: first_transport(&self.target),
            result_text: format!(
                "📨 Task from '{}' (session ia-{}, task {}):\n{about}",
                self.ask.from, self.ask.from, self.task_id
            ),
            status: "ok".to_owned(),
            ..Envelope::default()
        }
        .with_delivery_key(&format!("interagent-received:{}", self.task_id));
        if let Err(e) = self.target.bus.submit(envelope).await {
            tracing::warn!(agent = %self.target.name, task_id = %self.task_id, error = %e, "Could not tell the recipient's user.");
        }
    }

    /// The answer as an Envelope on the Bus of the agent it goes to.
    async fn deliver(&self, answer: InterAgentAnswer, elapsed: Duration) {
        let to = self.options.reply_to.clone().unwrap_or_else(|| self.ask.from.clone());
        let Some(agent) = self.agents.get(&to) else {
            tracing::warn!(agent = %to, task_id = %self.task_id, "The agent the answer goes to is gone; answer dropped.");
            return;
        };
        let chat = self.options.chat_id.or_else(|| agent.config.allowed_user_ids.first().copied()).unwrap_or(0);
        let transport = self.options.transport.clone().unwrap_or_else(|| first_transport(&agent));
        let session =
            if answer.session_name.is_empty() { format!("ia-{}", self.ask.from) } else { answer.session_name.clone() };
        let mut metadata = serde_json::Map::new();
        metadata.insert("task_id".into(), self.task_id.clone().into());
        metadata.insert("recipient".into(), self.ask.to.clone().into());
        if !answer.notice.is_empty() {
            metadata.insert("provider_switch_notice".into(), answer.notice.clone().into());
        }
        let base = Envelope {
            origin: Origin::Interagent,
            chat_id: ChatId::from(chat),
            topic_id: self.options.topic_id,
            thread_id: self.options.topic_id,
            transport,
            elapsed_seconds: elapsed.as_secs_f64(),
            provider: answer.provider.clone(),
            model: answer.model.clone(),
            session_name: session.clone(),
            metadata,
            prompt_preview: preview(&self.ask.message, 60),
            ..Envelope::default()
        };
        let envelope = if answer.success {
            Envelope {
                status: "ok".to_owned(),
                needs_injection: true,
                lock_mode: LockMode::Required,
                prompt: async_answer_prompt(
                    &self.ask.to,
                    &self.task_id,
                    &session,
                    &with_notice(&answer),
                    &self.ask.message,
                ),
                ..base
            }
        } else {
            Envelope {
                status: "error".to_owned(),
                is_error: true,
                result_text: format!(
                    "❌ Async task to '{}' failed (session {session}, task {}): {}\nRequest: {}",
                    self.ask.to,
                    self.task_id,
                    answer.error.as_deref().unwrap_or("no answer"),
                    preview(&self.ask.message, 200)
                ),
                ..base
            }
        }
        .with_delivery_key(&format!("interagent:{}", self.task_id));
        match agent.bus.submit(envelope).await {
            Ok(id) => tracing::info!(agent = %to, task_id = %self.task_id, envelope_id = %id, success = answer.success,
                "Async inter-agent answer handed to the Bus."),
            Err(e) => {
                tracing::error!(agent = %to, task_id = %self.task_id, error = %e, "Async inter-agent answer not accepted by the Bus.")
            }
        }
    }
}

/// The Bus transport an agent answers on first (`tg` unless it only has Matrix).
fn first_transport(agent: &AgentEntry) -> String {
    let transports = &agent.config.transports;
    if transports.is_empty() || transports.iter().any(|t| t == "telegram") { "tg".to_owned() } else { "mx".to_owned() }
}

/// The prompt injected into the sender's session with an async answer.
pub fn async_answer_prompt(recipient: &str, task_id: &str, session: &str, answer: &str, original: &str) -> String {
    format!(
        "[ASYNC INTER-AGENT RESPONSE from '{recipient}' (task {task_id})]\n{answer}\n\
         [END ASYNC INTER-AGENT RESPONSE]\n\n\
         To continue that conversation, ask '{recipient}' again (its side keeps the session \
         {session}; the person can also write `@{session} …` in its chat).\n\
         Your original request was: {original}\n\n\
         Relay the result to the user: what '{recipient}' found or did, in your own words."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_twelve_hex_digits() {
        for _ in 0..100 {
            let id = new_task_id();
            assert_eq!(id.len(), 12);
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn the_answer_prompt_brackets_the_answer_and_names_the_task() {
        let prompt = async_answer_prompt("ops", "0123456789ab", "ia-main", "42 GB free", "disk usage?");
        assert!(
            prompt.starts_with("[ASYNC INTER-AGENT RESPONSE from 'ops' (task 0123456789ab)]\n42 GB free\n[END ASYNC")
        );
        assert!(prompt.contains("disk usage?"));
    }

    #[test]
    fn previews_are_cut_with_an_ellipsis() {
        assert_eq!(preview("abcdef", 3), "abc…");
        assert_eq!(preview("abc", 3), "abc");
    }
}

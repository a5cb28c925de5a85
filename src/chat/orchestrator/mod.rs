//! The Orchestrator actor: routes each chat message to its Session (one per `SessionKey`,
//! spawned on demand, linked), answers the commands that act at once (`/stop`, `/interrupt`,
//! `/stop_all`) without queueing, handles `/new`, `/reset`, `/model`, `/memory` and the
//! commands whose texts or menus live beside it, passes a Bus envelope that must wait for its
//! chat through the Session queue, and owns `sessions.json`.
//!
//! Beside it, one job per file: `planning` (what a turn runs with, what is kept when it ends),
//! `texts` (`/status`, `/diagnose`, `/agents`), `menus` (selectors and button presses),
//! `named` (named sessions and background runs), `inter_agent` (a message from another agent,
//! answered in its `ia-<sender>` session), `memory` (memory and heartbeat turns) and
//! `handle` (the handle the rest of the service uses).

mod handle;
mod inter_agent;
mod memory;
mod menus;
mod named;
mod planning;
mod texts;

pub use handle::OrchestratorHandle;
pub use inter_agent::{INTERAGENT_DEPTH_ENV, InterAgentAnswer, InterAgentAsk, InterAgentFinished};
pub use named::BackgroundFinished;

use std::collections::HashMap;
use std::sync::Arc;

use camino::Utf8PathBuf;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use self::planning::is_known_model;
use crate::chat::agent_control::{AgentAction, AgentControl};
use crate::chat::model_catalog::ModelCatalog;
use crate::chat::session::{
    ReplyTo, Session, SessionArgs, SessionMsg, SessionOutput, StartHook, StopReport, TurnFinished, TurnFlow, TurnPlan,
    TurnRequest, stop_notice,
};
use crate::core::command::{ChatCommand, classify};
use crate::core::config::Config;
use crate::core::directive;
use crate::core::envelope::{Envelope, LockMode};
use crate::core::named::NamedRegistry;
use crate::core::selector::{self};
use crate::core::session_key::ChatId;
use crate::core::session_key::SessionKey;
use crate::core::state::inflight_turns::InflightTurns;
use crate::core::state::named_sessions::NamedSessions;
use crate::core::state::sessions::{SessionRecord, Sessions};
use crate::core::state::timestamp_now;
use crate::core::text::render;
use crate::provider::runner::Control;
use crate::provider::{ProviderKind, provider_for};
use crate::runtime::bus::BusHandle;
use crate::runtime::health_board::HealthBoard;
use crate::store::atomic::Loaded;
use crate::store::config_file::DotEnv;
use crate::store::paths::DuctorPaths;
use crate::store::state_files::StateFile;
use tokio::sync::watch;

/// Messages of the Orchestrator.
#[derive(Debug)]
pub enum OrchestratorMsg {
    /// A chat message from a transport; outputs go to `reply`.
    Message {
        /// The chat.
        key: SessionKey,
        /// Its text.
        text: String,
        /// Where its outputs go.
        reply: ReplyTo,
        /// Run when its turn starts (when it becomes one).
        on_start: Option<StartHook>,
    },
    /// `/stop` of a whole chat (every session of `key`'s chat, its background jobs and named
    /// sessions), answered with what was stopped — the direct API's `abort`.
    StopChat {
        /// Any key of the chat.
        key: SessionKey,
        /// What was stopped.
        reply: tokio::sync::oneshot::Sender<StopReport>,
    },
    /// A button was pressed (callback data of a menu this chat was shown).
    Callback {
        /// The chat.
        key: SessionKey,
        /// The button's callback data (`ms:…`).
        data: String,
        /// Where the answer goes.
        reply: ReplyTo,
    },
    /// A heartbeat check for a chat (sent by the heartbeat observer); the alert, if any,
    /// arrives on `reply` as a `Notice`, otherwise `Stopped`.
    Heartbeat {
        /// The chat.
        key: SessionKey,
        /// The heartbeat prompt.
        prompt: String,
        /// The reply meaning "nothing to say".
        ack_token: String,
        /// Where the outcome goes.
        reply: ReplyTo,
    },
    /// A Session's turn starts: plan it from the current state (internal).
    Plan {
        /// The chat.
        key: SessionKey,
        /// The prompt.
        prompt: String,
        /// The plan.
        /// Which flow the turn belongs to.
        flow: TurnFlow,
        /// Drop the CLI session first (recovery gate).
        fresh: bool,
        /// Its start is recorded in a transport's inbox (no in-flight record then).
        tracked: bool,
        /// The plan.
        reply: ractor::RpcReplyPort<TurnPlan>,
    },
    /// A Session's turn ended (internal).
    TurnFinished(Box<TurnFinished>),
    /// A named session's background turn ended (internal).
    BackgroundFinished(Box<BackgroundFinished>),
    /// An envelope that must go through its chat's session (lock and/or injection); the
    /// envelope comes back on `done`, ready to deliver.
    Envelope {
        /// The envelope.
        envelope: Box<Envelope>,
        /// Where it goes back.
        done: tokio::sync::oneshot::Sender<Envelope>,
    },
    /// What `claude auth status` answered (asked once at start; internal).
    ClaudeAuth(Option<bool>),
    /// A message from another agent of this process; the answer goes to `reply`.
    InterAgent {
        /// The message.
        ask: Box<InterAgentAsk>,
        /// Where the answer goes.
        reply: tokio::sync::oneshot::Sender<InterAgentAnswer>,
    },
    /// An inter-agent turn ended (internal).
    InterAgentFinished(Box<InterAgentFinished>),
    /// Stop every turn and background run of this agent (another agent's `/stop_all`); the
    /// number stopped goes to `reply`.
    StopEverything {
        /// Where the count goes.
        reply: tokio::sync::oneshot::Sender<usize>,
    },
    /// `config.json` was hot-reloaded: the next turns are planned with this config.
    Reconfigure(Arc<Config>),
}

/// Construction arguments.
#[derive(Debug, Clone)]
pub struct OrchestratorArgs {
    /// The agent's name (`main`).
    pub agent: String,
    /// Its home.
    pub paths: DuctorPaths,
    /// Its config.
    pub config: Arc<Config>,
    /// Its path on the health board (`root/main/orchestrator`).
    pub board_path: String,
    /// The health board.
    pub board: HealthBoard,
    /// Directories put in front of `PATH` for the CLIs (where `claude` & co. are found).
    pub cli_path: Vec<Utf8PathBuf>,
    /// The agent's Bus (recovery notices at start).
    pub bus: Option<BusHandle>,
    /// Known models (Codex cache).
    pub catalog: ModelCatalog,
    /// Environment every CLI gets besides its `DUCTOR_*` variables (the internal API token,
    /// `DUCTOR_BIN`).
    pub cli_env: Vec<(String, String)>,
    /// The main agent's reach into the other agents (`/agent_*`, `/stop_all`); `None` for a
    /// sub-agent.
    pub agent_control: Option<AgentControl>,
}

/// The Orchestrator actor.
#[derive(Debug, Default)]
pub struct Orchestrator;

/// Its state.
pub struct OrchestratorState {
    args: OrchestratorArgs,
    sessions: HashMap<SessionKey, ActorRef<SessionMsg>>,
    store: Sessions,
    dotenv: DotEnv,
    inflight: InflightTurns,
    named: NamedRegistry,
    background: HashMap<(ChatId, String), watch::Sender<Control>>,
    last_flush: HashMap<SessionKey, std::time::Instant>,
    claude_cli_logged_in: Option<bool>,
}

impl std::fmt::Debug for OrchestratorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestratorState").field("sessions", &self.sessions.len()).finish()
    }
}

impl Actor for Orchestrator {
    type Msg = OrchestratorMsg;
    type State = OrchestratorState;
    type Arguments = OrchestratorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<OrchestratorMsg>,
        args: OrchestratorArgs,
    ) -> Result<OrchestratorState, ActorProcessingErr> {
        let store = match Sessions::load(&args.paths) {
            Loaded::Found(store) => store,
            Loaded::Missing | Loaded::Quarantined { .. } => Sessions::default(),
        };
        let dotenv = DotEnv::new(&args.paths);
        let inflight = match InflightTurns::load(&args.paths) {
            Loaded::Found(inflight) => inflight,
            Loaded::Missing | Loaded::Quarantined { .. } => InflightTurns::default(),
        };
        let named = match NamedSessions::load(&args.paths) {
            Loaded::Found(file) => NamedRegistry::from_file(file),
            Loaded::Missing | Loaded::Quarantined { .. } => NamedRegistry::default(),
        };
        let mut state = OrchestratorState {
            args,
            sessions: HashMap::new(),
            store,
            dotenv,
            inflight,
            named,
            background: HashMap::new(),
            last_flush: HashMap::new(),
            claude_cli_logged_in: None,
        };
        state.report_interrupted_turns();
        state.resume_named_sessions(&myself);
        state.ask_claude_auth(&myself);
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<OrchestratorMsg>,
        state: &mut OrchestratorState,
    ) -> Result<(), ActorProcessingErr> {
        for (_, session) in state.sessions.drain() {
            let _ = session.stop_and_wait(None, Some(std::time::Duration::from_secs(3))).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<OrchestratorMsg>,
        msg: OrchestratorMsg,
        state: &mut OrchestratorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            OrchestratorMsg::Message { key, text, reply, on_start } => {
                state.message(&myself, key, &text, reply, on_start).await;
            }
            OrchestratorMsg::StopChat { key, reply } => {
                let _ = reply.send(state.stop_chat(&key).await);
            }
            OrchestratorMsg::Callback { key, data, reply } => {
                let output = state.callback(&key, &data).await;
                let _ = reply.send(output);
            }
            OrchestratorMsg::Plan { key, prompt, flow, fresh, tracked, reply } => {
                if fresh {
                    state.forget_cli_session(&key, &flow);
                }
                let plan = state.plan(&key, prompt.clone(), &flow);
                if !tracked && !matches!(flow, TurnFlow::Memory(_) | TurnFlow::Heartbeat { .. }) {
                    state.turn_started(&key, &plan, &prompt);
                }
                let _ = reply.send(plan);
            }
            OrchestratorMsg::TurnFinished(finished) => state.turn_finished(&myself, *finished).await,
            OrchestratorMsg::Envelope { envelope, done } => state.envelope(&myself, *envelope, done).await,
            OrchestratorMsg::BackgroundFinished(finished) => state.background_finished(*finished),
            OrchestratorMsg::InterAgent { ask, reply } => state.inter_agent(&myself, *ask, reply),
            OrchestratorMsg::InterAgentFinished(finished) => state.inter_agent_finished(*finished),
            OrchestratorMsg::StopEverything { reply } => {
                let (stopped, _) = state.stop_everything().await;
                let _ = reply.send(stopped);
            }
            OrchestratorMsg::Heartbeat { key, prompt, ack_token, reply } => {
                state.heartbeat(&myself, &key, prompt, ack_token, reply).await;
            }
            OrchestratorMsg::ClaudeAuth(answer) => state.claude_cli_logged_in = answer,
            OrchestratorMsg::Reconfigure(config) => state.reconfigure(config),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<OrchestratorMsg>,
        event: SupervisionEvent,
        state: &mut OrchestratorState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorTerminated(cell, _, _) | SupervisionEvent::ActorFailed(cell, _) = &event {
            let gone: Vec<SessionKey> =
                state.sessions.iter().filter(|(_, s)| s.get_id() == cell.get_id()).map(|(k, _)| k.clone()).collect();
            for key in gone {
                if let SupervisionEvent::ActorFailed(_, error) = &event {
                    tracing::error!(actor = %key, error = %error, "Session crashed; the next message starts a fresh one.");
                }
                state.sessions.remove(&key);
                state.args.board.remove(&format!("{}/{}", state.args.board_path, key));
            }
        }
        Ok(())
    }
}

impl OrchestratorState {
    async fn message(
        &mut self,
        myself: &ActorRef<OrchestratorMsg>,
        key: SessionKey,
        text: &str,
        reply: ReplyTo,
        on_start: Option<StartHook>,
    ) {
        let notice = |text: String| {
            let _ = reply.send(SessionOutput::Notice(text));
        };
        match classify(text, None) {
            ChatCommand::Interrupt => {
                // Every topic of the chat: SIGINT to each running CLI; queues are kept.
                let mut count = 0;
                for session in self.sessions.iter().filter(|(k, _)| k.chat_id == key.chat_id).map(|(_, s)| s.clone()) {
                    count += ractor::call!(session, |r| SessionMsg::Interrupt { reply: r }).unwrap_or(0);
                }
                notice(render(if count > 0 { "interrupt.done" } else { "interrupt.nothing" }, &[]));
            }
            ChatCommand::Stop => {
                // In a forum topic only that topic; elsewhere every session of the chat, its
                // background jobs and its named sessions.
                let report = if key.topic_id.is_some() { self.stop(&key).await } else { self.stop_chat(&key).await };
                notice(stop_notice(report, self.target(&key).0));
            }
            ChatCommand::StopAll => {
                let (mut stopped, chats) = self.stop_everything().await;
                if let Some(control) = &self.args.agent_control {
                    stopped += (control.stop_others)().await;
                }
                notice(if stopped == 0 {
                    render("abort_all.nothing", &[])
                } else {
                    render("abort_all.done", &[("count", &stopped.to_string()), ("chats", &chats.max(1).to_string())])
                });
            }
            ChatCommand::New => {
                let model = self.args.config.model.clone();
                let default = self.provider_of(&model);
                self.reset_provider_session(&key, default, &model);
                notice(render("new.done", &[("provider", default.display_name())]));
            }
            ChatCommand::Reset => {
                self.stop(&key).await;
                let (current, model) = self.target(&key);
                self.reset_provider_session(&key, current, &model);
                notice(render("reset.done", &[("provider", current.display_name())]));
            }
            ChatCommand::Model(None) => {
                let step = selector::start(&self.selector_context(&key));
                let _ = reply.send(self.model_step(&key, step).await);
            }
            ChatCommand::Model(Some(model)) => {
                let reply = self.switch_model(&key, &model, None).await;
                notice(reply);
            }
            ChatCommand::Status => notice(self.status_text(&key)),
            ChatCommand::Memory => notice(match std::fs::read_to_string(self.args.paths.main_memory()) {
                Ok(text) if !text.trim().is_empty() => format!("{}\n\n{}", render("memory.header", &[]), text.trim()),
                _ => render("memory.empty", &[]),
            }),
            ChatCommand::Sessions => {
                let _ = reply.send(SessionOutput::Menu(self.sessions_menu(&key, None)));
            }
            ChatCommand::Diagnose => notice(self.diagnose_text()),
            ChatCommand::Agents => notice(self.agents_text()),
            ChatCommand::AgentControl(word) => {
                let name = text.split_whitespace().nth(1).unwrap_or("").to_lowercase();
                match (&self.args.agent_control, AgentAction::from_command(&word)) {
                    (None, _) | (_, None) => notice(render("agents.main_only", &[])),
                    (Some(_), Some(_)) if name.is_empty() => {
                        notice(render("agents.name_missing", &[("command", &word)]))
                    }
                    (Some(control), Some(action)) => {
                        // The Root may take seconds to stop or start an agent: answered when done.
                        let control = std::sync::Arc::clone(&control.control);
                        tokio::spawn(async move {
                            let answer = control(action, name).await;
                            let _ = reply.send(SessionOutput::Notice(answer));
                        });
                    }
                }
            }
            ChatCommand::Upgrade => notice(render("upgrade.unavailable", &[("version", env!("CARGO_PKG_VERSION"))])),
            ChatCommand::Cron => {
                let _ = reply.send(SessionOutput::Menu(self.cron_menu(&self.cron_jobs().jobs, 0, None)));
            }
            ChatCommand::Tasks => {
                if !self.args.config.tasks.enabled {
                    notice(render("tasks.disabled", &[]));
                    return;
                }
                let _ = reply.send(SessionOutput::Menu(self.tasks_menu(&key, None)));
            }
            ChatCommand::Session(None) => notice(render("session.help", &[])),
            ChatCommand::Session(Some(text)) => {
                let answer = self.session_command(myself, &key, &text);
                notice(answer);
            }
            ChatCommand::Prompt(text) => {
                let codex: Vec<String> = self.args.catalog.codex().into_iter().map(|m| m.id).collect();
                let parsed = directive::parse(&text, |key| is_known_model(key, &codex));
                let prompt = if parsed.cleaned.is_empty() { text.clone() } else { parsed.cleaned.clone() };
                let named = parsed
                    .raw
                    .first()
                    .map(|(name, _)| name.clone())
                    .filter(|name| self.named.get(key.chat_id, name).is_some());
                let flow = if let Some(name) = named {
                    if let Err(e) = self.named.mark_running(key.chat_id, &name, &prompt) {
                        notice(e.to_string());
                        return;
                    }
                    self.save_named();
                    TurnFlow::Named(name)
                } else if let (Some(model), true) = (&parsed.model, parsed.cleaned.is_empty()) {
                    notice(render("model.directive_only", &[("model", model)]));
                    return;
                } else {
                    TurnFlow::Normal { model: parsed.model.clone() }
                };
                let request = TurnRequest { prompt, flow, reply, on_start };
                match self.session(myself, &key).await {
                    Some(session) => {
                        if let Err(e) = session.cast(SessionMsg::Turn(Box::new(request))) {
                            tracing::error!(actor = %key, error = %e, "Session did not take the turn.");
                        }
                    }
                    None => {
                        let _ = request.reply.send(SessionOutput::Notice(render("error.session_start", &[])));
                    }
                }
            }
        }
    }

    /// Stops every chat's turns and background runs; returns (runs stopped, chats touched).
    async fn stop_everything(&mut self) -> (usize, usize) {
        let keys: Vec<SessionKey> = self.sessions.keys().cloned().collect();
        let mut stopped = 0;
        let mut chats = 0;
        for key in keys {
            let report = self.stop(&key).await;
            if report.stopped > 0 {
                stopped += report.stopped;
                chats += 1;
            }
        }
        let jobs: Vec<(ChatId, String)> = self.background.keys().cloned().collect();
        for job in jobs {
            if let Some(control) = self.background.remove(&job) {
                let _ = control.send(Control::Stop);
                stopped += 1;
            }
        }
        (stopped, chats)
    }

    /// Every session of the chat, its background jobs and its named sessions.
    async fn stop_chat(&mut self, key: &SessionKey) -> StopReport {
        let keys: Vec<SessionKey> = self.sessions.keys().filter(|k| k.chat_id == key.chat_id).cloned().collect();
        let mut total = self.stop(key).await;
        for other in keys.iter().filter(|k| *k != key) {
            let report = self.stop(other).await;
            total.stopped += report.stopped;
            total.discarded += report.discarded;
        }
        self.end_named_sessions(key.chat_id);
        total
    }

    async fn stop(&mut self, key: &SessionKey) -> StopReport {
        let jobs: Vec<(ChatId, String)> =
            self.background.keys().filter(|(chat, _)| *chat == key.chat_id).cloned().collect();
        for job in jobs {
            if let Some(control) = self.background.remove(&job) {
                let _ = control.send(Control::Stop);
            }
        }
        match self.sessions.get(key) {
            Some(session) => ractor::call!(session, |r| SessionMsg::Stop { reply: r }).unwrap_or_default(),
            None => StopReport::default(),
        }
    }

    /// A hot-reloaded config: chats on the old default model (none picked another one with
    /// `/model` or `@model`) follow the new default from their next turn on.
    fn reconfigure(&mut self, config: Arc<Config>) {
        let old = std::mem::replace(&mut self.args.config, config);
        let new_model = self.args.config.model.clone();
        if old.model == new_model {
            return;
        }
        let provider = self.provider_of(&new_model).name().to_owned();
        let mut moved = 0;
        for record in self.store.records.iter_mut().filter(|r| r.model == old.model) {
            record.model = new_model.clone();
            record.provider = provider.clone();
            moved += 1;
        }
        tracing::info!(actor = "orchestrator", from = %old.model, to = %new_model, chats = moved, "Default model changed.");
        if moved > 0 {
            self.save();
        }
    }

    /// The provider and model a chat's next turn uses.
    fn target(&self, key: &SessionKey) -> (ProviderKind, String) {
        match self.store.get(key) {
            Some(record) if !record.model.is_empty() => (self.provider_of(&record.model), record.model.clone()),
            _ => (self.provider_of(&self.args.config.model), self.args.config.model.clone()),
        }
    }

    fn record_mut(&mut self, key: &SessionKey) -> &mut SessionRecord {
        if self.store.get(key).is_none() {
            let now = timestamp_now();
            let kind = self.provider_of(&self.args.config.model);
            self.store.records.push(SessionRecord {
                key: key.clone(),
                topic_name: None,
                provider: kind.name().to_owned(),
                model: self.args.config.model.clone(),
                created_at: now.clone(),
                last_active: now,
                provider_sessions: Vec::new(),
            });
        }
        let index = self.store.records.iter().position(|r| &r.key == key).unwrap_or(0);
        &mut self.store.records[index]
    }

    /// Drops one provider's bucket (other providers' sessions stay) and targets that
    /// provider and model; a chat without a record gets an empty one.
    fn reset_provider_session(&mut self, key: &SessionKey, kind: ProviderKind, model: &str) {
        let now = timestamp_now();
        let record = self.record_mut(key);
        record.provider_sessions.retain(|(p, _)| p != kind.name());
        record.provider = kind.name().to_owned();
        record.model = model.to_owned();
        record.last_active = now;
        self.save();
    }

    fn save(&self) {
        if let Err(e) = self.store.save(&self.args.paths) {
            tracing::error!(actor = "orchestrator", error = %e, "Could not save sessions.json.");
        }
    }

    async fn session(&mut self, myself: &ActorRef<OrchestratorMsg>, key: &SessionKey) -> Option<ActorRef<SessionMsg>> {
        if let Some(session) = self.sessions.get(key) {
            return Some(session.clone());
        }
        let me = myself.clone();
        let planner_ref = myself.clone();
        let args = SessionArgs {
            key: key.clone(),
            board_path: format!("{}/{}", self.args.board_path, key),
            board: self.args.board.clone(),
            planner: Arc::new(move |key, prompt, flow, fresh, tracked| {
                let orchestrator = planner_ref.clone();
                Box::pin(async move {
                    ractor::call!(orchestrator, |reply| OrchestratorMsg::Plan {
                        key,
                        prompt,
                        flow,
                        fresh,
                        tracked,
                        reply
                    })
                    .ok()
                })
            }),
            on_finished: Arc::new(move |finished| {
                let _ = me.cast(OrchestratorMsg::TurnFinished(Box::new(finished)));
            }),
        };
        match Actor::spawn_linked(None, Session, args, myself.get_cell()).await {
            Ok((session, _)) => {
                self.sessions.insert(key.clone(), session.clone());
                Some(session)
            }
            Err(e) => {
                tracing::error!(actor = %key, error = %e, "Could not start the session.");
                None
            }
        }
    }

    /// Queues an envelope behind the chat's turns; with `needs_injection` its prompt runs as a
    /// turn in the chat's active session and the answer becomes its text.
    async fn envelope(
        &mut self,
        myself: &ActorRef<OrchestratorMsg>,
        mut envelope: Envelope,
        done: tokio::sync::oneshot::Sender<Envelope>,
    ) {
        let transport = if envelope.transport.is_empty() { "tg".to_owned() } else { envelope.transport.clone() };
        let key = SessionKey { transport, chat_id: envelope.chat_id, topic_id: envelope.topic_id };
        let Some(session) = self.session(myself, &key).await else {
            envelope.needs_injection = false;
            envelope.lock_mode = LockMode::None;
            let _ = done.send(envelope);
            return;
        };
        if envelope.needs_injection && !envelope.prompt.is_empty() {
            let (reply, mut outputs) = tokio::sync::mpsc::unbounded_channel();
            let model = Some(envelope.model.clone()).filter(|m| !m.is_empty());
            let request = TurnRequest {
                prompt: envelope.prompt.clone(),
                flow: TurnFlow::Injection { model },
                reply,
                on_start: None,
            };
            let _ = session.cast(SessionMsg::Turn(Box::new(request)));
            tokio::spawn(async move {
                let mut answer = None;
                while let Some(output) = outputs.recv().await {
                    if let SessionOutput::Finished { text, result, .. } = output {
                        answer = Some((text, result.is_error));
                    }
                }
                match answer {
                    Some((text, is_error)) => {
                        envelope.result_text = text;
                        envelope.is_error |= is_error;
                    }
                    None => {
                        envelope.is_error = true;
                        if envelope.result_text.is_empty() {
                            envelope.result_text = format!("Error processing {} result", envelope.origin);
                        }
                    }
                }
                envelope.needs_injection = false;
                envelope.lock_mode = LockMode::None;
                let _ = done.send(envelope);
            });
        } else {
            let (barrier, reached) = tokio::sync::oneshot::channel();
            let _ = session.cast(SessionMsg::Barrier { done: barrier });
            tokio::spawn(async move {
                let _ = reached.await;
                envelope.needs_injection = false;
                envelope.lock_mode = LockMode::None;
                let _ = done.send(envelope);
            });
        }
    }

    /// Which CLI serves `model`, knowing the discovered Gemini models.
    fn provider_of(&self, model: &str) -> ProviderKind {
        provider_for(model, &self.args.catalog.gemini())
    }
}

//! The Orchestrator actor: routes each chat message to its Session (one per `SessionKey`,
//! spawned on demand, linked), answers the commands that act at once (`/stop`, `/interrupt`,
//! `/stop_all`) without queueing, handles `/new`, `/reset`, `/model`, `/status`, builds each
//! turn (provider and model, resume id, MAINMEMORY on a new session, CLI environment), and
//! keeps `sessions.json` up to date when turns end.
//!
//! Not yet here (providers issue, later sessions): named sessions and `/session`, freshness
//! rules (§2.2), directives and prompt hooks, selectors and callbacks, `inflight_turns.json`.

use std::collections::HashMap;
use std::sync::Arc;

use camino::Utf8PathBuf;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::mpsc;

use crate::chat::model_catalog::ModelCatalog;
use crate::chat::session::{
    MemoryTurn, ReplyTo, Session, SessionArgs, SessionMsg, SessionOutput, StartHook, StopReport, TurnFinished,
    TurnFlow, TurnPlan, TurnRequest, stop_notice,
};
use crate::core::chat_status::{ChatStatus, SessionSummary, age_text, render_status};
use crate::core::command::{ChatCommand, classify};
use crate::core::config::Config;
use crate::core::config::dotenv::env_for_child;
use crate::core::directive;
use crate::core::envelope::{Envelope, LockMode, Origin};
use crate::core::health::ActorKind;
use crate::core::named::{NamedRegistry, NewNamed, leading_directive};
use crate::core::prompt_hooks;
use crate::core::recovery;
use crate::core::resolve::{Known, resolve_target};
use crate::core::selector::{self, Menu, ModelStep, NamedLine, SelectorContext, SessionsAction, TopicLine};
use crate::core::session_key::ChatId;
use crate::core::session_key::SessionKey;
use crate::core::state::cron_jobs::CronJobs;
use crate::core::state::inflight_turns::{InflightTurn, InflightTurns};
use crate::core::state::named_sessions::{NamedSession, NamedSessions};
use crate::core::state::sessions::{FreshnessRules, ProviderBucket, SessionRecord, Sessions};
use crate::core::state::tasks::{TaskRecord, TaskRegistry};
use crate::core::state::timestamp_now;
use crate::core::stream_event::TurnResult;
use crate::core::text::render;
use crate::core::turn_outcome::{outcome, reply_text};
use crate::core::{cron_selector, task_selector};
use crate::provider::auth::{AuthProbe, AuthStatus, claude_cli_logged_in, find_program};
use crate::provider::runner::RunSettings;
use crate::provider::runner::{Control, Extension, run_turn};
use crate::provider::{Invocation, ProviderKind, TurnSpec, claude, codex, gemini, provider_for, search_path};
use crate::runtime::bus::BusHandle;
use crate::runtime::health_board::HealthBoard;
use crate::runtime::supervision::ActorSlot;
use crate::store::atomic::Loaded;
use crate::store::config_file::{DotEnv, update_config_keys};
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
        state.fail_stale_tasks();
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
            OrchestratorMsg::Heartbeat { key, prompt, ack_token, reply } => {
                state.heartbeat(&myself, &key, prompt, ack_token, reply).await;
            }
            OrchestratorMsg::ClaudeAuth(answer) => state.claude_cli_logged_in = answer,
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
                let report = if key.topic_id.is_some() {
                    self.stop(&key).await
                } else {
                    let keys: Vec<SessionKey> =
                        self.sessions.keys().filter(|k| k.chat_id == key.chat_id).cloned().collect();
                    let mut total = self.stop(&key).await;
                    for other in keys.iter().filter(|k| **k != key) {
                        let report = self.stop(other).await;
                        total.stopped += report.stopped;
                        total.discarded += report.discarded;
                    }
                    self.end_named_sessions(key.chat_id);
                    total
                };
                notice(stop_notice(report, self.target(&key).0));
            }
            ChatCommand::StopAll => {
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
                notice(if stopped == 0 {
                    render("abort_all.nothing", &[])
                } else {
                    render("abort_all.done", &[("count", &stopped.to_string()), ("chats", &chats.to_string())])
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
            ChatCommand::AgentControl(_) => notice(render("agents.not_active", &[])),
            ChatCommand::Upgrade => notice(render("upgrade.unavailable", &[("version", env!("CARGO_PKG_VERSION"))])),
            ChatCommand::Cron => {
                let _ = reply.send(SessionOutput::Menu(cron_selector::menu(&self.cron_jobs().jobs, 0, None)));
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

    /// Drops the CLI session a turn would resume (the recovery gate's fresh start).
    fn forget_cli_session(&mut self, key: &SessionKey, flow: &TurnFlow) {
        match flow {
            TurnFlow::Named(name) => {
                if let Some(stored) = self.named.get_mut_session(key.chat_id, name) {
                    stored.session_id.clear();
                    self.save_named();
                }
            }
            TurnFlow::Normal { .. } | TurnFlow::Injection | TurnFlow::Memory(_) | TurnFlow::Heartbeat { .. } => {
                let (kind, model) = self.target(key);
                self.reset_provider_session(key, kind, &model);
            }
        }
    }

    /// The freshness rules of the config (daily reset in the host's current UTC offset).
    fn freshness(&self) -> FreshnessRules {
        let config = &self.args.config;
        FreshnessRules {
            max_session_messages: config.max_session_messages,
            idle_timeout_minutes: config.idle_timeout_minutes,
            daily_reset: config.daily_reset_enabled.then(|| {
                let hour = u32::try_from(config.daily_reset_hour.clamp(0, 23)).unwrap_or(4);
                (hour, *chrono::Local::now().offset())
            }),
        }
    }

    /// A stale session (core spec §2.2) is replaced by a brand-new record without buckets.
    fn drop_if_stale(&mut self, key: &SessionKey, kind: ProviderKind, model: &str) {
        let rules = self.freshness();
        let stale = self.store.get(key).is_some_and(|r| !r.is_fresh(kind.name(), &rules, chrono::Utc::now()));
        if stale {
            tracing::info!(actor = %key, "Session expired; starting a new one.");
            self.store.records.retain(|r| &r.key != key);
            let record = self.record_mut(key);
            record.provider = kind.name().to_owned();
            record.model = model.to_owned();
            self.save();
        }
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

    /// Builds the turn: provider/model, resume id of the provider's bucket, MAINMEMORY on a
    /// new session, the CLI's environment.
    fn plan(&mut self, key: &SessionKey, prompt: String, flow: &TurnFlow) -> TurnPlan {
        if let TurnFlow::Normal { model: Some(model) } = flow {
            // An `@model` directive retargets the chat's session, sticky until changed.
            let provider = self.provider_of(model).name().to_owned();
            let record = self.record_mut(key);
            record.provider = provider;
            record.model = model.clone();
            self.save();
        }
        let named_session = match flow {
            TurnFlow::Named(name) => self.named.get(key.chat_id, name).cloned(),
            TurnFlow::Normal { .. } | TurnFlow::Injection | TurnFlow::Memory(_) | TurnFlow::Heartbeat { .. } => None,
        };
        let (kind, model, resume) = match &named_session {
            Some(session) => (
                provider_named(&session.provider).unwrap_or_else(|| self.provider_of(&session.model)),
                session.model.clone(),
                Some(session.session_id.clone()).filter(|s| !s.is_empty()),
            ),
            None => {
                let (kind, model) = self.target(key);
                self.drop_if_stale(key, kind, &model);
                let resume = self
                    .store
                    .get(key)
                    .and_then(|r| r.bucket(kind.name()))
                    .map(|b| b.session_id.clone())
                    .filter(|s| !s.is_empty());
                (kind, model, resume)
            }
        };
        let config = Arc::clone(&self.args.config);
        let append = if resume.is_none() { self.system_append() } else { None };
        let prompt = match flow {
            TurnFlow::Normal { .. } => {
                let count = self.store.get(key).and_then(|r| r.bucket(kind.name())).map_or(0, |b| b.message_count);
                let reflection = &config.memory_reflection;
                let reflection =
                    reflection.enabled.then_some((reflection.every_n_messages, reflection.prompt.as_str()));
                prompt_hooks::with_hooks(&prompt, &prompt_hooks::suffixes(count, resume.is_none(), reflection))
            }
            TurnFlow::Named(_) | TurnFlow::Injection | TurnFlow::Memory(_) | TurnFlow::Heartbeat { .. } => prompt,
        };
        let spec = TurnSpec {
            prompt,
            model: model.clone(),
            permission_mode: config.permission_mode.clone(),
            append_system_prompt: append,
            resume,
            max_turns: config.max_turns,
            max_budget_usd: config.max_budget_usd,
            reasoning_effort: config.reasoning_effort.clone(),
            cli_parameters: match kind {
                ProviderKind::Claude => config.cli_parameters.claude.clone(),
                ProviderKind::Codex => config.cli_parameters.codex.clone(),
                ProviderKind::Gemini => config.cli_parameters.gemini.clone(),
            },
            ..TurnSpec::default()
        };
        let invocation = turn_invocation(kind, &spec);
        let mut settings = self.run_settings(key, config.timeouts.normal);
        gemini_system_prompt(kind, &spec, &mut settings);
        TurnPlan { kind, model, invocation, settings }
    }

    /// Where and how a turn of this chat runs: the workspace, the CLI environment, the
    /// deadline (seconds) and its extension on activity.
    fn run_settings(&mut self, key: &SessionKey, timeout_s: f64) -> RunSettings {
        RunSettings {
            cwd: self.args.paths.workspace(),
            env: self.child_env(key),
            timeout: Some(std::time::Duration::from_secs_f64(timeout_s.max(1.0))),
            extension: extension_of(&self.args.config),
            temp_files: Vec::new(),
            warnings: self
                .args
                .config
                .timeouts
                .warning_intervals
                .iter()
                .filter(|s| s.is_finite() && **s > 0.0)
                .map(|s| std::time::Duration::from_secs_f64(*s))
                .collect(),
        }
    }

    /// `DUCTOR_*` variables (core spec §7.7), `.env` secrets ductor's own environment does not
    /// already have, and the CLI search path.
    fn child_env(&mut self, key: &SessionKey) -> Vec<(String, String)> {
        let paths = &self.args.paths;
        let mut env = vec![
            ("DUCTOR_AGENT_NAME".to_owned(), self.args.agent.clone()),
            ("DUCTOR_AGENT_ROLE".to_owned(), if self.args.agent == "main" { "main" } else { "sub" }.to_owned()),
            ("DUCTOR_INTERAGENT_PORT".to_owned(), self.args.config.interagent_port.to_string()),
            ("DUCTOR_TRANSPORT".to_owned(), key.transport.clone()),
            ("DUCTOR_HOME".to_owned(), paths.home().to_string()),
            ("DUCTOR_SHARED_MEMORY_PATH".to_owned(), paths.shared_memory().to_string()),
        ];
        if key.chat_id.get() != 0 {
            env.push(("DUCTOR_CHAT_ID".to_owned(), key.chat_id.to_string()));
        }
        if let Some(topic) = key.topic_id {
            env.push(("DUCTOR_TOPIC_ID".to_owned(), topic.to_string()));
        }
        let transcription = &self.args.config.transcription;
        for (name, value) in [
            ("DUCTOR_TRANSCRIBE_COMMAND", &transcription.audio_command),
            ("DUCTOR_VIDEO_TRANSCRIBE_COMMAND", &transcription.video_command),
        ] {
            if !value.is_empty() {
                env.push((name.to_owned(), value.clone()));
            }
        }
        let secrets = self.dotenv.current().to_vec();
        env.extend(
            env_for_child(&secrets, |k| std::env::var_os(k).is_some()).map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        if !self.args.cli_path.is_empty() {
            env.push(("PATH".to_owned(), search_path(&self.args.cli_path)));
        }
        env
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
            let request =
                TurnRequest { prompt: envelope.prompt.clone(), flow: TurnFlow::Injection, reply, on_start: None };
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

    /// At start: every turn a crash cut off gets one "Interrupted Task" notice through the
    /// Bus; then the record is cleared.
    fn report_interrupted_turns(&self) {
        let path = self.args.paths.inflight_turns();
        if !path.exists() {
            return;
        }
        let notices = recovery::plan(&self.inflight, chrono::Utc::now(), self.args.config.timeouts.normal);
        for notice in notices {
            tracing::info!(actor = "orchestrator", chat = %notice.chat_id, "Reporting a turn cut off by the last stop.");
            match &self.args.bus {
                Some(bus) => bus.submit_detached(Envelope {
                    origin: Origin::Recovery,
                    chat_id: notice.chat_id,
                    topic_id: notice.topic_id,
                    transport: notice.transport,
                    result_text: notice.text,
                    status: "interrupted".to_owned(),
                    ..Envelope::default()
                }),
                None => tracing::warn!(actor = "orchestrator", "No bus to report the interrupted turn."),
            }
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(actor = "orchestrator", path = %path, error = %e, "Could not clear inflight_turns.json.");
        }
    }

    /// At start: named sessions that were working when ductor stopped (and have a CLI session
    /// to resume) are told about and their last prompt is sent again in the background
    /// (ops spec §11.6).
    fn resume_named_sessions(&mut self, myself: &ActorRef<OrchestratorMsg>) {
        for (chat, name) in self.named.take_recovered_running() {
            let Some(session) = self.named.get(chat, &name).cloned() else { continue };
            if session.session_id.is_empty() || session.last_prompt.is_empty() {
                continue;
            }
            let key = SessionKey { transport: session.transport.clone(), chat_id: chat, topic_id: None };
            if let Some(bus) = &self.args.bus {
                bus.submit_detached(Envelope {
                    origin: Origin::Recovery,
                    chat_id: chat,
                    transport: session.transport.clone(),
                    result_text: render("session.auto_recovery", &[("name", &name)]),
                    session_name: name.clone(),
                    ..Envelope::default()
                });
            }
            if let Ok(session) = self.named.mark_running(chat, &name, &session.last_prompt) {
                self.save_named();
                let prompt = session.last_prompt.clone();
                self.start_background(myself, &key, &session, prompt);
            }
        }
    }

    /// Records the turn in `inflight_turns.json` (read back after a crash).
    fn turn_started(&mut self, key: &SessionKey, plan: &TurnPlan, prompt: &str) {
        let resume = self.store.get(key).and_then(|r| r.bucket(plan.kind.name())).map(|b| b.session_id.clone());
        let mut extra = serde_json::Map::new();
        extra.insert("transport".to_owned(), key.transport.clone().into());
        if let Some(topic) = key.topic_id {
            extra.insert("topic_id".to_owned(), topic.into());
        }
        self.inflight.turns.insert(
            key.chat_id.to_string(),
            InflightTurn {
                chat_id: key.chat_id,
                provider: plan.kind.name().to_owned(),
                model: plan.model.clone(),
                session_id: resume.unwrap_or_default(),
                prompt_preview: prompt.chars().take(100).collect(),
                started_at: timestamp_now(),
                is_recovery: false,
                path: "normal".to_owned(),
                extra,
            },
        );
        self.save_inflight();
    }

    fn save_inflight(&self) {
        let path = self.args.paths.inflight_turns();
        let result = if self.inflight.turns.is_empty() {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            }
        } else {
            self.inflight.save(&self.args.paths).map_err(|e| e.to_string())
        };
        if let Err(e) = result {
            tracing::warn!(actor = "orchestrator", error = %e, "Could not update inflight_turns.json.");
        }
    }

    /// Persists what the turn learned, then hands its last output to the chat.
    async fn turn_finished(&mut self, myself: &ActorRef<OrchestratorMsg>, finished: TurnFinished) {
        if self.inflight.turns.remove(&finished.key.chat_id.to_string()).is_some() {
            self.save_inflight();
        }
        let mut output = finished.output.clone();
        if let TurnFlow::Named(name) = &finished.flow {
            let chat = finished.key.chat_id;
            if finished.result.is_error || finished.aborted {
                self.named.mark_idle(chat, name);
            } else {
                self.named.update_after_response(chat, name, finished.result.session_id.as_deref().unwrap_or(""));
            }
            self.save_named();
            if let SessionOutput::Finished { text, result, model } = output {
                let provider = finished.kind.map_or("CLI", ProviderKind::display_name);
                output = SessionOutput::Finished { text: format!("**[{name} | {provider}]**\n{text}"), result, model };
            }
        } else if let TurnFlow::Heartbeat { ack_token } = &finished.flow {
            let alert = heartbeat_alert(&finished.result, ack_token);
            if let (Some(_), Some(kind), Some(session_id)) =
                (&alert, finished.kind, finished.result.session_id.clone().filter(|s| !s.is_empty()))
            {
                self.remember(&finished.key, kind, session_id, &finished);
            }
            output = match alert {
                Some(text) => SessionOutput::Notice(text),
                None => SessionOutput::Stopped,
            };
        } else if let TurnFlow::Memory(memory) = finished.flow {
            if memory == MemoryTurn::Flush && !finished.result.is_error {
                self.maybe_compact_memory(myself, &finished.key).await;
            }
        } else if let (Some(kind), Some(session_id)) =
            (finished.kind, finished.result.session_id.clone().filter(|s| !s.is_empty()))
        {
            self.remember(&finished.key, kind, session_id, &finished);
        }
        if finished.compacted && matches!(finished.flow, TurnFlow::Normal { .. }) && !finished.result.is_error {
            self.maybe_flush_memory(myself, &finished.key).await;
        }
        let _ = finished.reply.send(output);
    }

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
    async fn maybe_flush_memory(&mut self, myself: &ActorRef<OrchestratorMsg>, key: &SessionKey) {
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
    async fn maybe_compact_memory(&mut self, myself: &ActorRef<OrchestratorMsg>, key: &SessionKey) {
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
    async fn queue_silent(
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

    /// What the model selector needs: current and configured model, logged-in CLIs, known models.
    fn selector_context(&self, key: &SessionKey) -> SelectorContext {
        let (_, model) = self.target(key);
        SelectorContext {
            current_model: model,
            configured_model: key.topic_id.is_none().then(|| self.args.config.model.clone()),
            authenticated: self
                .auth_statuses()
                .into_iter()
                .filter(|(_, status)| matches!(status, AuthStatus::Authenticated { .. }))
                .map(|(kind, _)| kind.name().to_owned())
                .collect(),
            codex_models: self
                .args
                .catalog
                .codex()
                .into_iter()
                .map(|m| (m.id, m.display_name, m.supported_efforts))
                .collect(),
            gemini_models: self.args.catalog.gemini(),
        }
    }

    /// A pressed button.
    async fn callback(&mut self, key: &SessionKey, data: &str) -> SessionOutput {
        if data.starts_with("ms:") {
            let step = selector::press(&self.selector_context(key), data);
            self.model_step(key, step).await
        } else if data.starts_with("nsc:") {
            let note = match selector::sessions_action(data) {
                SessionsAction::Refresh => None,
                SessionsAction::End(name) => Some(if self.end_named_session(key.chat_id, &name) {
                    render("sessions.ended_one", &[("name", &name)])
                } else {
                    render("sessions.ended_not_found", &[("name", &name)])
                }),
                SessionsAction::EndAll => {
                    let count = self.named.for_chat(key.chat_id).count();
                    self.end_named_sessions(key.chat_id);
                    Some(if count == 0 {
                        render("sessions.ended_all_none", &[])
                    } else {
                        render("sessions.ended_all", &[("count", &count.to_string())])
                    })
                }
                SessionsAction::Unknown => Some(render("selector.unknown", &[])),
            };
            SessionOutput::Menu(self.sessions_menu(key, note.as_deref()))
        } else if data.starts_with("crn:") {
            SessionOutput::Menu(self.cron_press(data))
        } else if data.starts_with("tsc:") {
            SessionOutput::Menu(self.tasks_press(key, data))
        } else {
            SessionOutput::Notice(render("selector.unknown", &[]))
        }
    }

    async fn model_step(&mut self, key: &SessionKey, step: ModelStep) -> SessionOutput {
        match step {
            ModelStep::Show(menu) => SessionOutput::Menu(menu),
            ModelStep::Say(text) => SessionOutput::Notice(text),
            ModelStep::Switch { model, effort } => {
                SessionOutput::Notice(self.switch_model(key, &model, effort.as_deref()).await)
            }
        }
    }

    /// At start: a logged-in Gemini gets the workspace in its trusted folders (§7.6); when
    /// neither a credential file nor `ANTHROPIC_API_KEY` shows a Claude login (a login kept in
    /// the system keychain), `claude auth status` is asked once, off the actor.
    fn ask_claude_auth(&self, myself: &ActorRef<OrchestratorMsg>) {
        let probe_env = |name: &str| std::env::var(name).ok();
        let search = search_path(&self.args.cli_path);
        let probe = self.auth_probe(&probe_env);
        if matches!(probe.status(ProviderKind::Gemini), AuthStatus::Authenticated { .. }) {
            let base = std::env::var("GEMINI_CLI_HOME").map_or_else(|_| probe.home.clone(), Utf8PathBuf::from);
            match crate::store::gemini_trust::trust_workspace(&base.join(".gemini"), &self.args.paths.workspace()) {
                Ok(true) => tracing::info!(actor = "orchestrator", "Workspace added to Gemini's trusted folders."),
                Ok(false) => {}
                Err(e) => tracing::warn!(actor = "orchestrator", error = %e, "Gemini folder trust not updated."),
            }
        }
        if probe.status(ProviderKind::Claude) != AuthStatus::Installed {
            return;
        }
        let Some(program) = find_program("claude", &search) else { return };
        let env = vec![("PATH".to_owned(), search)];
        let myself = myself.clone();
        tokio::spawn(async move {
            let answer = claude_cli_logged_in(&program, &env).await;
            tracing::debug!(actor = "orchestrator", ?answer, "claude auth status answered.");
            let _ = myself.cast(OrchestratorMsg::ClaudeAuth(answer));
        });
    }

    fn auth_probe<'a>(&self, env: &'a dyn Fn(&str) -> Option<String>) -> AuthProbe<'a> {
        AuthProbe {
            home: Utf8PathBuf::from(std::env::var("HOME").unwrap_or_default()),
            env,
            gemini_api_key: self.args.config.gemini_api_key.clone(),
            search_path: Some(search_path(&self.args.cli_path)),
            claude_cli_logged_in: self.claude_cli_logged_in,
        }
    }

    /// Each CLI's login state (core spec §7.9).
    fn auth_statuses(&self) -> Vec<(ProviderKind, AuthStatus)> {
        let env = |name: &str| std::env::var(name).ok();
        let probe = self.auth_probe(&env);
        [ProviderKind::Claude, ProviderKind::Codex, ProviderKind::Gemini]
            .into_iter()
            .map(|kind| (kind, probe.status(kind)))
            .collect()
    }

    /// The `/agents` reply: every agent with its status, uptime, model and restarts.
    fn agents_text(&self) -> String {
        let agents = self.args.board.agents();
        if agents.len() <= 1 {
            return render("agents.not_active", &[]);
        }
        let lines: Vec<String> = agents
            .into_iter()
            .map(|a| {
                let role = if a.name == self.args.agent { "[main]" } else { "[sub]" };
                let mut line = format!(
                    "{} {role} {} · up {}",
                    a.name,
                    a.status.as_str(),
                    crate::core::health::uptime_text(a.uptime_s)
                );
                if a.restarts > 0 {
                    line.push_str(&format!(" · restarts {}", a.restarts));
                }
                if let Some(error) = a.last_failure {
                    line.push_str(&format!(" · {}", error.chars().take(80).collect::<String>()));
                }
                line
            })
            .collect();
        format!("**Agents**\n{}", lines.join("\n"))
    }

    /// The `/diagnose` reply: version, configured and effective model, the agents' health and
    /// the last 50 lines of `logs/agent.log` (a sub-agent falls back to the main home's log).
    fn diagnose_text(&self) -> String {
        let config = &self.args.config;
        let mut text = format!(
            "**Diagnose**\nductor {}\nConfigured: {} ({})\nEffective default: {} ({})",
            env!("CARGO_PKG_VERSION"),
            config.model,
            config.provider,
            config.model,
            self.provider_of(&config.model).display_name()
        );
        let agents = self.args.board.agents();
        if !agents.is_empty() {
            text.push_str("\n\nAgents:");
            for agent in agents {
                let icon = match agent.status {
                    crate::core::health::ActorStatus::Running => "●",
                    crate::core::health::ActorStatus::Starting | crate::core::health::ActorStatus::Restarting => "◐",
                    crate::core::health::ActorStatus::Crashed => "✖",
                    crate::core::health::ActorStatus::Stopped | crate::core::health::ActorStatus::Reconnecting => "○",
                };
                text.push_str(&format!(
                    "\n{icon} {} {} restarts: {}",
                    agent.name,
                    agent.status.as_str(),
                    agent.restarts
                ));
                if let Some(error) = agent.last_failure {
                    text.push_str(&format!(" — {}", error.chars().take(100).collect::<String>()));
                }
            }
        }
        let mut log = self.args.paths.log_file();
        if !log.exists()
            && let Some(main_home) = self.args.paths.home().parent().and_then(|agents| agents.parent())
        {
            log = main_home.join("logs/agent.log");
        }
        let tail: Vec<String> = std::fs::read(&log)
            .map(|bytes| String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default();
        let start = tail.len().saturating_sub(50);
        text.push_str(&format!("\n\nLog ({}):\n```\n{}\n```", log, tail[start..].join("\n")));
        text
    }

    /// The `/status` reply (core spec §5.4).
    fn status_text(&self, key: &SessionKey) -> String {
        let (kind, model) = self.target(key);
        let record = self.store.get(key);
        let session =
            record.and_then(|r| r.bucket(kind.name())).filter(|b| !b.session_id.is_empty()).map(|b| SessionSummary {
                session_id: b.session_id.clone(),
                messages: b.message_count,
                tokens: b.total_tokens,
                cost_usd: b.total_cost_usd,
            });
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let background = self
            .named
            .for_chat(key.chat_id)
            .filter(|s| self.background.contains_key(&(key.chat_id, s.name.clone())))
            .map(|s| (s.name.clone(), s.last_prompt.clone(), (now - s.created_at).max(0.0) as u64))
            .collect();
        let auth = self
            .auth_statuses()
            .into_iter()
            .map(|(kind, status)| {
                let age = match status {
                    AuthStatus::Authenticated { age_s } => age_s,
                    AuthStatus::Installed | AuthStatus::NotFound => None,
                };
                (kind.name().to_owned(), status.word().to_owned(), age)
            })
            .collect();
        let streaming = &self.args.config.streaming;
        render_status(&ChatStatus {
            topic_name: record.and_then(|r| r.topic_name.clone()),
            session,
            model,
            configured_model: self.args.config.model.clone(),
            background,
            auth,
            streaming: (
                streaming.show_reasoning_stream,
                streaming.show_tool_progress,
                streaming.show_thinking_indicator,
            ),
        })
    }

    /// `/model <id>` (core spec §5.3 `switch_model`): the same model changes nothing; another
    /// one stops the chat's running turns and retargets its session; outside a forum topic it
    /// also becomes the configured model (`config.json`: `model`, and `provider` when it
    /// changes; other keys kept).
    async fn switch_model(&mut self, key: &SessionKey, model: &str, effort: Option<&str>) -> String {
        let in_topic = key.topic_id.is_some();
        let old = match (in_topic, self.store.get(key)) {
            (true, Some(record)) if !record.model.is_empty() => record.model.clone(),
            _ => self.args.config.model.clone(),
        };
        let kind = self.provider_of(model);
        if let Some(effort) = effort
            && let Some(entry) = self.args.catalog.codex().into_iter().find(|m| m.id == model)
            && !entry.supported_efforts.iter().any(|e| e == effort)
        {
            return render(
                "model.effort_unsupported",
                &[("model", model), ("effort", effort), ("supported", &entry.supported_efforts.join(", "))],
            );
        }
        if old == model && self.target(key).1 == model && effort.is_none() {
            return render("model.already", &[("model", model)]);
        }
        let chat_keys: Vec<SessionKey> = self.sessions.keys().filter(|k| k.chat_id == key.chat_id).cloned().collect();
        for chat_key in chat_keys {
            self.stop(&chat_key).await;
        }
        if self.store.get(key).is_some() {
            let record = self.record_mut(key);
            record.provider = kind.name().to_owned();
            record.model = model.to_owned();
            self.save();
        }
        if !in_topic {
            let old_provider = self.provider_of(&self.args.config.model);
            let mut updates = vec![("model", serde_json::Value::String(model.to_owned()))];
            if old_provider != kind {
                updates.push(("provider", serde_json::Value::String(kind.name().to_owned())));
            }
            if let Some(effort) = effort {
                updates.push(("reasoning_effort", serde_json::Value::String(effort.to_owned())));
            }
            match update_config_keys(&self.args.paths, &updates) {
                Ok(_) => {
                    let mut config = (*self.args.config).clone();
                    config.model = model.to_owned();
                    config.provider = kind.name().to_owned();
                    if let Some(effort) = effort {
                        config.reasoning_effort = effort.to_owned();
                    }
                    self.args.config = Arc::new(config);
                }
                Err(e) => {
                    tracing::error!(actor = "orchestrator", error = %e, "Could not save the model to config.json.")
                }
            }
        }
        render("model.switched", &[("old", &old), ("model", model), ("provider", kind.display_name())])
    }

    /// `/stop` outside a forum topic ends the chat's named sessions (they leave the file).
    fn end_named_sessions(&mut self, chat: ChatId) {
        let names: Vec<String> = self.named.for_chat(chat).map(|s| s.name.clone()).collect();
        for name in names {
            self.end_named_session(chat, &name);
        }
    }

    /// Ends one named session: its background job is cancelled and it leaves the file.
    fn end_named_session(&mut self, chat: ChatId, name: &str) -> bool {
        if let Some(control) = self.background.remove(&(chat, name.to_owned())) {
            let _ = control.send(Control::Stop);
        }
        let ended = self.named.end(chat, name);
        if ended {
            self.save_named();
        }
        ended
    }

    /// The session selector of a chat (`nsc:`).
    fn sessions_menu(&self, key: &SessionKey, note: Option<&str>) -> Menu {
        let rules = self.freshness();
        let now = chrono::Utc::now();
        let topics: Vec<TopicLine> = self
            .store
            .records
            .iter()
            .filter(|r| r.key.chat_id == key.chat_id && r.key.topic_id.is_some())
            .filter(|r| r.is_fresh(&r.provider, &rules, now))
            .map(|r| {
                let bucket = r.bucket(&r.provider);
                TopicLine {
                    label: r.topic_name.clone().unwrap_or_else(|| format!("Topic #{}", r.key.topic_id.unwrap_or(0))),
                    target: format!("{}/{}", r.provider, r.model),
                    messages: bucket.map_or(0, |b| b.message_count),
                    cost_usd: bucket.map_or(0.0, |b| b.total_cost_usd),
                }
            })
            .collect();
        let unix_now = unix_now();
        let named: Vec<NamedLine> = self
            .named
            .for_chat(key.chat_id)
            .map(|s| NamedLine {
                name: s.name.clone(),
                target: format!("{}/{}", s.provider, if s.model.is_empty() { "default" } else { &s.model }),
                status: s.status.clone(),
                messages: s.message_count,
                age: age_text((unix_now - s.created_at).max(0.0) as u64),
                preview: s.prompt_preview.clone(),
            })
            .collect();
        selector::sessions_menu(&topics, &named, note)
    }

    /// `cron_jobs.json` as it is now (empty when missing or quarantined).
    fn cron_jobs(&self) -> CronJobs {
        match CronJobs::load(&self.args.paths) {
            Loaded::Found(file) => file,
            Loaded::Missing | Loaded::Quarantined { .. } => CronJobs::default(),
        }
    }

    /// A pressed `crn:` button: toggles are saved to `cron_jobs.json` at once.
    fn cron_press(&self, data: &str) -> Menu {
        let mut file = self.cron_jobs();
        let applied = cron_selector::apply(&mut file.jobs, &cron_selector::action(data));
        if applied.changed {
            // No cron scheduler runs in this build yet; the next one reads the saved file.
            if let Err(e) = file.save(&self.args.paths) {
                tracing::error!(actor = "orchestrator", error = %e, "Could not save cron_jobs.json.");
                return cron_selector::menu(
                    &self.cron_jobs().jobs,
                    applied.page,
                    Some(&render("error.save_failed", &[])),
                );
            }
        }
        cron_selector::menu(&file.jobs, applied.page, applied.note.as_deref())
    }

    /// A new session's system-prompt addition: MAINMEMORY and, with other agents running,
    /// the agent roster.
    fn system_append(&self) -> Option<String> {
        let memory = std::fs::read_to_string(self.args.paths.main_memory()).ok();
        let agents: Vec<String> = self.args.board.agents().into_iter().map(|a| a.name).collect();
        let roster = prompt_hooks::agent_roster(&self.args.agent, &agents);
        prompt_hooks::system_append(memory.as_deref(), roster.as_deref())
    }

    /// Which CLI serves `model`, knowing the discovered Gemini models.
    fn provider_of(&self, model: &str) -> ProviderKind {
        provider_for(model, &self.args.catalog.gemini())
    }

    /// Tasks left `running` by an earlier run are marked failed (core spec §8.1).
    fn fail_stale_tasks(&self) {
        let Loaded::Found(mut registry) = TaskRegistry::load(&self.args.paths) else { return };
        let failed = registry.fail_running(&render("tasks.restarted", &[]), unix_now());
        if failed > 0 {
            tracing::info!(actor = "orchestrator", failed, "Tasks cut by a restart marked failed.");
            if let Err(e) = registry.save(&self.args.paths) {
                tracing::error!(actor = "orchestrator", error = %e, "Could not save tasks.json.");
            }
        }
    }

    fn task_registry(&self) -> TaskRegistry {
        match TaskRegistry::load(&self.args.paths) {
            Loaded::Found(file) => file,
            Loaded::Missing | Loaded::Quarantined { .. } => TaskRegistry::default(),
        }
    }

    /// The task selector of a chat (`tsc:`).
    fn tasks_menu(&self, key: &SessionKey, note: Option<&str>) -> Menu {
        let registry = self.task_registry();
        let chat: Vec<&TaskRecord> = registry.tasks.iter().filter(|t| t.chat_id == key.chat_id).collect();
        task_selector::menu(&chat, unix_now(), note)
    }

    /// A pressed `tsc:` button. Finished tasks' folders are deleted only when they lie inside
    /// this home's `workspace/tasks/` (the path comes from a file anyone could edit).
    fn tasks_press(&self, key: &SessionKey, data: &str) -> Menu {
        let mut registry = self.task_registry();
        let applied = task_selector::apply(&mut registry.tasks, key.chat_id, &task_selector::action(data), unix_now());
        if applied.changed
            && let Err(e) = registry.save(&self.args.paths)
        {
            tracing::error!(actor = "orchestrator", error = %e, "Could not save tasks.json.");
            return self.tasks_menu(key, Some(&render("error.save_failed", &[])));
        }
        let root = std::fs::canonicalize(self.args.paths.task_folders()).ok();
        for folder in &applied.remove_folders {
            let inside = match (std::fs::canonicalize(folder), &root) {
                (Ok(path), Some(root)) => path.starts_with(root) && path != *root,
                _ => false,
            };
            if inside {
                if let Err(e) = std::fs::remove_dir_all(folder) {
                    tracing::warn!(actor = "orchestrator", folder = %folder, error = %e, "Could not delete a task folder.");
                }
            } else {
                tracing::debug!(actor = "orchestrator", folder = %folder, "Task folder not deleted: missing or outside the tasks directory.");
            }
        }
        self.tasks_menu(key, applied.note.as_deref())
    }

    fn save_named(&self) {
        if let Err(e) = self.named.to_file().save(&self.args.paths) {
            tracing::error!(actor = "orchestrator", error = %e, "Could not save named_sessions.json.");
        }
    }

    /// `/session <prompt>`: a new named session, or `/session @name <text>` a background
    /// follow-up of an existing one. Returns the reply.
    fn session_command(&mut self, myself: &ActorRef<OrchestratorMsg>, key: &SessionKey, text: &str) -> String {
        let config = Arc::clone(&self.args.config);
        let mut provider = self.provider_of(&config.model);
        let mut model = config.model.clone();
        let mut prompt = text.to_owned();
        if let Some((word, rest)) = leading_directive(text) {
            if let Some(session) = self.named.get(key.chat_id, word).cloned() {
                if rest.is_empty() {
                    return render("session.help", &[]);
                }
                return match self.named.mark_running(key.chat_id, &session.name, rest) {
                    Ok(session) => {
                        self.save_named();
                        self.start_background(myself, key, &session, rest.to_owned());
                        render("session.followup", &[("name", &session.name)])
                    }
                    Err(e) => e.to_string(),
                };
            }
            if let Some(kind) = provider_named(word) {
                provider = kind;
                model = match kind {
                    ProviderKind::Claude if self.provider_of(&config.model) == ProviderKind::Claude => {
                        config.model.clone()
                    }
                    ProviderKind::Claude => "sonnet".to_owned(),
                    ProviderKind::Codex => {
                        self.args.catalog.codex().into_iter().find(|m| m.is_default).map(|m| m.id).unwrap_or_default()
                    }
                    ProviderKind::Gemini => String::new(),
                };
                prompt = rest.to_owned();
            }
        }
        if !model.is_empty() {
            let codex = self.args.catalog.codex();
            let known = Known { codex: &codex, gemini: &[] };
            if let Err(e) =
                resolve_target((provider.name(), &model, &config.reasoning_effort), (None, None, None), known)
            {
                return e.to_string();
            }
        }
        if prompt.trim().is_empty() {
            return render("session.help", &[]);
        }
        if self.background.keys().filter(|(chat, _)| *chat == key.chat_id).count() >= MAX_BACKGROUND_PER_CHAT {
            return render("tasks.too_many", &[]);
        }
        let created_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let new = NewNamed {
            chat: key.chat_id,
            transport: &key.transport,
            provider: provider.name(),
            model: &model,
            prompt: &prompt,
            created_at,
        };
        let created = self.named.create(&new, |n| rand::random_range(0..n));
        match created {
            Ok(session) => {
                self.save_named();
                self.start_background(myself, key, &session, prompt);
                let shown = if model.is_empty() { "default model".to_owned() } else { model };
                render(
                    "session.started",
                    &[("name", &session.name), ("provider", provider.display_name()), ("model", &shown)],
                )
            }
            Err(e) => e.to_string(),
        }
    }

    /// Runs a named session's turn in the background (beside the chat's own turns).
    fn start_background(
        &mut self,
        myself: &ActorRef<OrchestratorMsg>,
        key: &SessionKey,
        session: &NamedSession,
        prompt: String,
    ) {
        let kind = provider_named(&session.provider).unwrap_or_else(|| self.provider_of(&session.model));
        let config = Arc::clone(&self.args.config);
        let resume = Some(session.session_id.clone()).filter(|s| !s.is_empty());
        let append = if resume.is_none() { self.system_append() } else { None };
        let spec = TurnSpec {
            prompt,
            model: session.model.clone(),
            permission_mode: config.permission_mode.clone(),
            append_system_prompt: append,
            resume,
            reasoning_effort: config.reasoning_effort.clone(),
            ..TurnSpec::default()
        };
        let invocation = turn_invocation(kind, &spec);
        let mut settings = self.run_settings(key, config.timeouts.background);
        gemini_system_prompt(kind, &spec, &mut settings);
        let (control, control_rx) = watch::channel(Control::Run);
        self.background.insert((key.chat_id, session.name.clone()), control);
        let board_path = format!("{}/ns:{}", self.args.board_path, session.name);
        self.args.board.register(&board_path, &format!("ns:{}", session.name), ActorKind::Provider);
        self.args.board.running(&board_path);
        let me = myself.clone();
        let key = key.clone();
        let name = session.name.clone();
        let model = session.model.clone();
        let board = self.args.board.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut parser = kind.stream_parser();
            let result = match run_turn(&invocation, parser.as_mut(), &settings, control_rx, |_| {}).await {
                Ok(transcript) => transcript.result,
                Err(e) => TurnResult { is_error: true, result: e.to_string(), ..TurnResult::default() },
            };
            board.remove(&board_path);
            let finished = BackgroundFinished { key, name, kind, model, result, elapsed: started.elapsed() };
            let _ = me.cast(OrchestratorMsg::BackgroundFinished(Box::new(finished)));
        });
    }

    /// A background turn ended: the named session is updated and the result is delivered to
    /// its chat as a `background` Envelope.
    fn background_finished(&mut self, finished: BackgroundFinished) {
        let BackgroundFinished { key, name, kind, model, result, elapsed } = finished;
        let cancelled = self.background.remove(&(key.chat_id, name.clone())).is_none();
        self.named.update_after_response(key.chat_id, &name, result.session_id.as_deref().unwrap_or(""));
        self.save_named();
        let (word, status) = if cancelled {
            ("Cancelled", "aborted")
        } else if result.is_error {
            ("Failed", "error:cli")
        } else {
            ("Complete", "ok")
        };
        let body = reply_text(&outcome(&result), &model);
        let text = format!("[{name}] {word} ({:.0}s)\n\n{body}", elapsed.as_secs_f64());
        let mut metadata = serde_json::Map::new();
        metadata.insert("session_name".to_owned(), name.clone().into());
        let envelope = Envelope {
            origin: Origin::Background,
            chat_id: key.chat_id,
            topic_id: key.topic_id,
            transport: key.transport.clone(),
            result_text: text,
            status: status.to_owned(),
            is_error: status != "ok",
            metadata,
            elapsed_seconds: elapsed.as_secs_f64(),
            provider: kind.name().to_owned(),
            model,
            session_name: name,
            session_id: result.session_id.unwrap_or_default(),
            ..Envelope::default()
        };
        match &self.args.bus {
            Some(bus) => bus.submit_detached(envelope),
            None => tracing::warn!(actor = "orchestrator", "No bus to deliver a background result."),
        }
    }

    fn remember(&mut self, key: &SessionKey, kind: ProviderKind, session_id: String, finished: &TurnFinished) {
        let now = timestamp_now();
        let record = self.record_mut(key);
        record.last_active = now;
        let provider = kind.name().to_owned();
        let index = match record.provider_sessions.iter().position(|(p, _)| *p == provider) {
            Some(index) => index,
            None => {
                record.provider_sessions.push((provider, ProviderBucket::default()));
                record.provider_sessions.len() - 1
            }
        };
        let bucket = &mut record.provider_sessions[index].1;
        let timed_out = finished.result.result.starts_with("__TIMEOUT__");
        if finished.aborted || (finished.result.is_error && !timed_out) {
            // A stopped or failed turn keeps a newly learned id only when the bucket had none.
            if bucket.session_id.is_empty() {
                bucket.session_id = session_id;
            }
        } else {
            bucket.session_id = session_id;
            bucket.message_count += 1;
            bucket.total_cost_usd += finished.result.total_cost_usd;
            bucket.total_tokens += finished.result.usage.total();
        }
        self.save();
    }
}

/// Gemini has no prompt flags: a system/append prompt goes into a temporary file named by
/// `GEMINI_SYSTEM_MD` (it replaces Gemini's own system prompt), removed after the run.
fn gemini_system_prompt(kind: ProviderKind, spec: &TurnSpec, settings: &mut RunSettings) {
    if kind != ProviderKind::Gemini {
        return;
    }
    let text: Vec<&str> = [spec.system_prompt.as_deref(), spec.append_system_prompt.as_deref()]
        .into_iter()
        .flatten()
        .filter(|t| !t.trim().is_empty())
        .collect();
    if text.is_empty() {
        return;
    }
    let dir = std::env::temp_dir();
    let file = dir.join(format!("gemini_system_{:016x}.md", rand::random::<u64>()));
    let Ok(path) = Utf8PathBuf::from_path_buf(file) else { return };
    match std::fs::write(&path, text.join("\n\n")) {
        Ok(()) => {
            settings.env.push(("GEMINI_SYSTEM_MD".to_owned(), path.to_string()));
            settings.temp_files.push(path);
        }
        Err(e) => tracing::warn!(path = %path, error = %e, "Could not write Gemini's system prompt file."),
    }
}

/// The streaming invocation of a turn for the CLI.
fn turn_invocation(kind: ProviderKind, spec: &TurnSpec) -> Invocation {
    match kind {
        ProviderKind::Claude => claude::turn_invocation(spec, true),
        ProviderKind::Codex => codex::turn_invocation(spec),
        ProviderKind::Gemini => gemini::turn_invocation(spec),
    }
}

/// The deadline extension of the config's `timeouts` (none when `extend_on_activity` is off).
fn extension_of(config: &Config) -> Option<Extension> {
    let timeouts = &config.timeouts;
    timeouts.extend_on_activity.then(|| Extension {
        by: std::time::Duration::from_secs_f64(timeouts.activity_extension.max(0.0)),
        max: u32::try_from(timeouts.max_extensions.max(0)).unwrap_or(0),
    })
}

/// Whether a directive key names a model (Claude aliases, Gemini aliases and ids, the Codex
/// models of the cache).
fn is_known_model(key: &str, codex: &[String]) -> bool {
    use crate::provider::{CLAUDE_MODELS, GEMINI_ALIASES};
    CLAUDE_MODELS.contains(&key)
        || GEMINI_ALIASES.contains(&key)
        || codex.iter().any(|m| m == key)
        || key.starts_with("claude-")
        || key.starts_with("gemini-")
}

/// The alert of a heartbeat turn: its text without the ack token at the start or end; none
/// for an error or when nothing else is left.
fn heartbeat_alert(result: &TurnResult, ack_token: &str) -> Option<String> {
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

/// Background jobs a chat may have at once.
const MAX_BACKGROUND_PER_CHAT: usize = 5;

/// A provider named by its config name (`claude`, `codex` — also `openai` — or `gemini`).
fn provider_named(name: &str) -> Option<ProviderKind> {
    match name {
        "claude" => Some(ProviderKind::Claude),
        "codex" | "openai" => Some(ProviderKind::Codex),
        "gemini" => Some(ProviderKind::Gemini),
        _ => None,
    }
}

/// A named session's background turn that ended.
#[derive(Debug)]
pub struct BackgroundFinished {
    key: SessionKey,
    name: String,
    kind: ProviderKind,
    model: String,
    result: TurnResult,
    elapsed: std::time::Duration,
}

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
}

/// Seconds since the Unix epoch, as the state files store them.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

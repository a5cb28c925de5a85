//! Turn planning: what a turn runs with — provider and model, the CLI session to resume (or a
//! fresh one when the old is stale), MAINMEMORY on a new session, the prompt hooks, the
//! `DUCTOR_*` environment and `.env` secrets, the deadline — and what is kept when it ends
//! (`sessions.json`, `inflight_turns.json`, turns cut by a crash reported at start).

use std::sync::Arc;

use camino::Utf8PathBuf;
use ractor::ActorRef;

use crate::chat::session::{MemoryTurn, SessionOutput, TurnFinished, TurnFlow, TurnPlan};
use crate::core::config::Config;
use crate::core::config::dotenv::env_for_child;
use crate::core::envelope::{Envelope, Origin};
use crate::core::prompt_hooks;
use crate::core::recovery;
use crate::core::session_key::SessionKey;
use crate::core::state::inflight_turns::InflightTurn;
use crate::core::state::sessions::{FreshnessRules, ProviderBucket};
use crate::core::state::timestamp_now;
use crate::provider::runner::Extension;
use crate::provider::runner::RunSettings;
use crate::provider::{Invocation, ProviderKind, TurnSpec, claude, codex, gemini, search_path};
use crate::store::state_files::StateFile;

use super::memory::heartbeat_alert;
use super::{OrchestratorMsg, OrchestratorState};

/// Gemini has no prompt flags: a system/append prompt goes into a temporary file named by
/// `GEMINI_SYSTEM_MD` (it replaces Gemini's own system prompt), removed after the run.
pub(super) fn gemini_system_prompt(kind: ProviderKind, spec: &TurnSpec, settings: &mut RunSettings) {
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
pub(super) fn turn_invocation(kind: ProviderKind, spec: &TurnSpec) -> Invocation {
    match kind {
        ProviderKind::Claude => claude::turn_invocation(spec, true),
        ProviderKind::Codex => codex::turn_invocation(spec),
        ProviderKind::Gemini => gemini::turn_invocation(spec),
    }
}

/// The deadline extension of the config's `timeouts` (none when `extend_on_activity` is off).
pub(super) fn extension_of(config: &Config) -> Option<Extension> {
    let timeouts = &config.timeouts;
    timeouts.extend_on_activity.then(|| Extension {
        by: std::time::Duration::from_secs_f64(timeouts.activity_extension.max(0.0)),
        max: u32::try_from(timeouts.max_extensions.max(0)).unwrap_or(0),
    })
}

/// Seconds since the Unix epoch, as the state files store them.
pub(super) fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl OrchestratorState {
    /// Drops the CLI session a turn would resume (the recovery gate's fresh start).
    pub(super) fn forget_cli_session(&mut self, key: &SessionKey, flow: &TurnFlow) {
        match flow {
            TurnFlow::Named(name) => {
                if let Some(stored) = self.named.get_mut_session(key.chat_id, name) {
                    stored.session_id.clear();
                    self.save_named();
                }
            }
            TurnFlow::Normal { .. } | TurnFlow::Injection { .. } | TurnFlow::Memory(_) | TurnFlow::Heartbeat { .. } => {
                let (kind, model) = self.target(key);
                self.reset_provider_session(key, kind, &model);
            }
        }
    }

    /// The freshness rules of the config (daily reset in the host's current UTC offset).
    pub(super) fn freshness(&self) -> FreshnessRules {
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
    pub(super) fn drop_if_stale(&mut self, key: &SessionKey, kind: ProviderKind, model: &str) {
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

    /// Builds the turn: provider/model, resume id of the provider's bucket, MAINMEMORY on a
    /// new session, the CLI's environment.
    pub(super) fn plan(&mut self, key: &SessionKey, prompt: String, flow: &TurnFlow) -> TurnPlan {
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
            TurnFlow::Normal { .. } | TurnFlow::Injection { .. } | TurnFlow::Memory(_) | TurnFlow::Heartbeat { .. } => {
                None
            }
        };
        let (kind, model, resume) = match &named_session {
            Some(session) => (
                provider_named(&session.provider).unwrap_or_else(|| self.provider_of(&session.model)),
                session.model.clone(),
                Some(session.session_id.clone()).filter(|s| !s.is_empty()),
            ),
            None => {
                let (kind, model) = match flow {
                    TurnFlow::Injection { model: Some(model) } if !model.is_empty() => {
                        (self.provider_of(model), model.clone())
                    }
                    _ => self.target(key),
                };
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
            TurnFlow::Named(_) | TurnFlow::Injection { .. } | TurnFlow::Memory(_) | TurnFlow::Heartbeat { .. } => {
                prompt
            }
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
    pub(super) fn run_settings(&mut self, key: &SessionKey, timeout_s: f64) -> RunSettings {
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
    pub(super) fn child_env(&mut self, key: &SessionKey) -> Vec<(String, String)> {
        let paths = &self.args.paths;
        let mut env = vec![
            ("DUCTOR_AGENT_NAME".to_owned(), self.args.agent.clone()),
            ("DUCTOR_AGENT_ROLE".to_owned(), if self.args.agent == "main" { "main" } else { "sub" }.to_owned()),
            ("DUCTOR_INTERAGENT_PORT".to_owned(), self.args.config.interagent_port.to_string()),
            ("DUCTOR_TRANSPORT".to_owned(), key.transport.clone()),
            ("DUCTOR_HOME".to_owned(), paths.home().to_string()),
            ("DUCTOR_SHARED_MEMORY_PATH".to_owned(), shared_memory_of(&self.args.agent, paths).to_string()),
        ];
        if key.chat_id.get() != 0 {
            env.push(("DUCTOR_CHAT_ID".to_owned(), key.chat_id.to_string()));
        }
        env.extend(self.args.cli_env.iter().cloned());
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

    /// At start: every turn a crash cut off gets one "Interrupted Task" notice through the
    /// Bus; then the record is cleared.
    pub(super) fn report_interrupted_turns(&self) {
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

    /// Records the turn in `inflight_turns.json` (read back after a crash).
    pub(super) fn turn_started(&mut self, key: &SessionKey, plan: &TurnPlan, prompt: &str) {
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

    pub(super) fn save_inflight(&self) {
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
    pub(super) async fn turn_finished(&mut self, myself: &ActorRef<OrchestratorMsg>, finished: TurnFinished) {
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

    /// A new session's system-prompt addition: MAINMEMORY and, with other agents running,
    /// the agent roster.
    pub(super) fn system_append(&self) -> Option<String> {
        let memory = std::fs::read_to_string(self.args.paths.main_memory()).ok();
        let agents: Vec<String> = self.args.board.agents().into_iter().map(|a| a.name).collect();
        let roster = prompt_hooks::agent_roster(&self.args.agent, &agents);
        prompt_hooks::system_append(memory.as_deref(), roster.as_deref())
    }

    pub(super) fn remember(
        &mut self,
        key: &SessionKey,
        kind: ProviderKind,
        session_id: String,
        finished: &TurnFinished,
    ) {
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

/// Whether a directive key names a model (Claude aliases, Gemini aliases and ids, the Codex
/// models of the cache).
pub(super) fn is_known_model(key: &str, codex: &[String]) -> bool {
    use crate::provider::{CLAUDE_MODELS, GEMINI_ALIASES};
    CLAUDE_MODELS.contains(&key)
        || GEMINI_ALIASES.contains(&key)
        || codex.iter().any(|m| m == key)
        || key.starts_with("claude-")
        || key.starts_with("gemini-")
}

/// A provider named by its config name (`claude`, `codex` — also `openai` — or `gemini`).
pub(super) fn provider_named(name: &str) -> Option<ProviderKind> {
    match name {
        "claude" => Some(ProviderKind::Claude),
        "codex" | "openai" => Some(ProviderKind::Codex),
        "gemini" => Some(ProviderKind::Gemini),
        _ => None,
    }
}

/// `SHAREDMEMORY.md` lives in the main home; a sub-agent's home is `<main>/agents/<name>`.
fn shared_memory_of(agent: &str, paths: &crate::store::paths::DuctorPaths) -> camino::Utf8PathBuf {
    let main = (agent != "main").then(|| paths.home().parent().and_then(camino::Utf8Path::parent)).flatten();
    main.map_or_else(|| paths.shared_memory(), |home| home.join("SHAREDMEMORY.md"))
}

//! Named sessions and their background runs (`/session …`, `@name …`): starting, ending, the
//! background turn and its result through the Bus, auto-recovery at start.

use std::sync::Arc;

use ractor::ActorRef;

use crate::core::envelope::{Envelope, Origin};
use crate::core::health::ActorKind;
use crate::core::named::{NewNamed, leading_directive};
use crate::core::resolve::{Known, resolve_target};
use crate::core::session_key::ChatId;
use crate::core::session_key::SessionKey;
use crate::core::state::named_sessions::NamedSession;
use crate::core::stream_event::TurnResult;
use crate::core::text::render;
use crate::core::turn_outcome::{outcome, reply_text};
use crate::provider::runner::{Control, RunSettings, run_turn};
use crate::provider::{Invocation, ProviderKind, TurnSpec};
use crate::store::state_files::StateFile;
use tokio::sync::watch;

use super::planning::{gemini_system_prompt, provider_named, turn_invocation};
use super::{OrchestratorMsg, OrchestratorState};

/// Background jobs a chat may have at once.
pub(super) const MAX_BACKGROUND_PER_CHAT: usize = 5;

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

impl OrchestratorState {
    /// At start: named sessions that were working when ductor stopped (and have a CLI session
    /// to resume) are told about and their last prompt is sent again in the background
    /// (ops spec §11.6).
    pub(super) fn resume_named_sessions(&mut self, myself: &ActorRef<OrchestratorMsg>) {
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

    /// `/stop` outside a forum topic ends the chat's named sessions (they leave the file).
    pub(super) fn end_named_sessions(&mut self, chat: ChatId) {
        let names: Vec<String> = self.named.for_chat(chat).map(|s| s.name.clone()).collect();
        for name in names {
            self.end_named_session(chat, &name);
        }
    }

    /// Ends one named session: its background job is cancelled and it leaves the file.
    pub(super) fn end_named_session(&mut self, chat: ChatId, name: &str) -> bool {
        if let Some(control) = self.background.remove(&(chat, name.to_owned())) {
            let _ = control.send(Control::Stop);
        }
        let ended = self.named.end(chat, name);
        if ended {
            self.save_named();
        }
        ended
    }

    pub(super) fn save_named(&self) {
        if let Err(e) = self.named.to_file().save(&self.args.paths) {
            tracing::error!(actor = "orchestrator", error = %e, "Could not save named_sessions.json.");
        }
    }

    /// `/session <prompt>`: a new named session, or `/session @name <text>` a background
    /// follow-up of an existing one. Returns the reply.
    pub(super) fn session_command(
        &mut self,
        myself: &ActorRef<OrchestratorMsg>,
        key: &SessionKey,
        text: &str,
    ) -> String {
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
    pub(super) fn start_background(
        &mut self,
        myself: &ActorRef<OrchestratorMsg>,
        key: &SessionKey,
        session: &NamedSession,
        prompt: String,
    ) {
        let kind = provider_named(&session.provider).unwrap_or_else(|| self.provider_of(&session.model));
        let timeout = self.args.config.timeouts.background;
        let (invocation, settings) = self.named_run(kind, key, session, prompt, timeout, &[]);
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

    /// What a named session's turn runs: `prompt` resuming its CLI session (the system prompt
    /// only on a fresh one), with the chat's environment plus `extra_env`.
    pub(super) fn named_run(
        &mut self,
        kind: ProviderKind,
        key: &SessionKey,
        session: &NamedSession,
        prompt: String,
        timeout_s: f64,
        extra_env: &[(String, String)],
    ) -> (Invocation, RunSettings) {
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
        let mut settings = self.run_settings(key, timeout_s);
        settings.env.extend_from_slice(extra_env);
        gemini_system_prompt(kind, &spec, &mut settings);
        (invocation, settings)
    }

    /// A background turn ended: the named session is updated and the result is delivered to
    /// its chat as a `background` Envelope.
    pub(super) fn background_finished(&mut self, finished: BackgroundFinished) {
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
}

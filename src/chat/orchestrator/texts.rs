//! The texts of `/status`, `/diagnose` and `/agents`, and the auth probes they show (the CLIs
//! logged in or not).

use camino::Utf8PathBuf;
use ractor::ActorRef;

use crate::core::chat_status::{ChatStatus, SessionSummary, render_status};
use crate::core::session_key::SessionKey;
use crate::core::text::render;
use crate::provider::auth::{AuthProbe, AuthStatus, claude_cli_logged_in, find_program};
use crate::provider::{ProviderKind, search_path};

use super::{OrchestratorMsg, OrchestratorState};

impl OrchestratorState {
    /// At start: a logged-in Gemini gets the workspace in its trusted folders (§7.6); when
    /// neither a credential file nor `ANTHROPIC_API_KEY` shows a Claude login (a login kept in
    /// the system keychain), `claude auth status` is asked once, off the actor.
    pub(super) fn ask_claude_auth(&self, myself: &ActorRef<OrchestratorMsg>) {
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

    pub(super) fn auth_probe<'a>(&self, env: &'a dyn Fn(&str) -> Option<String>) -> AuthProbe<'a> {
        AuthProbe {
            home: Utf8PathBuf::from(std::env::var("HOME").unwrap_or_default()),
            env,
            gemini_api_key: self.args.config.gemini_api_key.clone(),
            search_path: Some(search_path(&self.args.cli_path)),
            claude_cli_logged_in: self.claude_cli_logged_in,
        }
    }

    /// Each CLI's login state (core spec §7.9).
    pub(super) fn auth_statuses(&self) -> Vec<(ProviderKind, AuthStatus)> {
        let env = |name: &str| std::env::var(name).ok();
        let probe = self.auth_probe(&env);
        [ProviderKind::Claude, ProviderKind::Codex, ProviderKind::Gemini]
            .into_iter()
            .map(|kind| (kind, probe.status(kind)))
            .collect()
    }

    /// The `/agents` reply: every agent with its status, uptime, model and restarts.
    pub(super) fn agents_text(&self) -> String {
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
    pub(super) fn diagnose_text(&self) -> String {
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
    pub(super) fn status_text(&self, key: &SessionKey) -> String {
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
}

//! The Agent actor: one per agent (today "main"; sub-agents will have the same shape). It is
//! the composition point: it prepares the agent's workspace (rule files by logged-in CLI,
//! seeded files, skills, the runtime section), then wires and supervises the agent's children —
//! the Bus, the Orchestrator (with its Sessions), the observers (model caches, cron, webhooks,
//! heartbeat, cleanup, rule-file and skill sync, restart marker) and the configured transports
//! (Telegram, Matrix, the spool) — hands each the handles it needs, applies the restart contract
//! to them, and sends a `[Supervisor]` notice through its Bus when it gives up on a child.
//!
//! Asking the Agent to restart (`AgentMsg::RequestRestart`, e.g. from the restart marker) stops
//! it with the stop reason `restart`; for the main agent the Root turns that into exit code 42.

use std::sync::Arc;
use std::time::Duration;

use camino::Utf8PathBuf;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::chat::agent_control::AgentControl;
use crate::chat::model_catalog::ModelCatalog;
use crate::chat::orchestrator::{Orchestrator, OrchestratorArgs, OrchestratorHandle};
use crate::core::config::Config;
use crate::core::envelope::Envelope;
use crate::core::health::ActorKind;
use crate::core::state::webhooks::Webhooks;
use crate::core::supervision::{self, RESTART_REASON};
use crate::core::workspace::skills::SkillSyncMode;
use crate::core::workspace::texts::RuntimeFacts;
use crate::observer::cleanup::{Cleanup, CleanupArgs};
use crate::observer::config_reloader::{ConfigReloader, ConfigReloaderArgs};
use crate::observer::cron::{Cron, CronArgs};
use crate::observer::heartbeat::{Heartbeat, HeartbeatArgs};
use crate::observer::model_cache::{ModelCache, ModelCacheArgs};
use crate::observer::restart_marker::{RestartMarker, RestartMarkerArgs};
use crate::observer::rule_sync::{RuleSync, RuleSyncArgs};
use crate::observer::skill_sync::{SkillSync, SkillSyncArgs};
use crate::observer::unattended::RunContext;
use crate::observer::webhook_dispatch;
use crate::observer::webhook_server::{ListenAddress, WebhookServer, WebhookServerArgs, WebhookTable};
use crate::observer::{WallClock, system_clock};
use crate::provider::ProviderKind;
use crate::provider::auth::{AuthProbe, AuthStatus, claude_cli_logged_in, find_program};
use crate::runtime::bus::{Bus, BusArgs, BusHandle};
use crate::runtime::dependency_queue::DependencyQueue;
use crate::runtime::file_watch::FileWatch;
use crate::runtime::health_board::HealthBoard;
use crate::runtime::health_board::LinkStatus;
use crate::runtime::supervision::{ChildSet, ChildSpec, Reaction, RestartRequest};
use crate::store::inbox_journal::SharedInbox;
use crate::store::paths::DuctorPaths;
use crate::store::run_journal::SharedRunJournal;
use crate::store::state_files::StateFile;
use crate::store::workspace::{self, WorkspaceEnv};
use crate::transport::api::{Api, ApiArgs};
use crate::transport::matrix::{Matrix, MatrixArgs};
use crate::transport::spool::{Spool, SpoolArgs};
use crate::transport::telegram::{Telegram, TelegramArgs};

/// How long the Agent waits for each child to stop at shutdown.
const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages of the Agent.
#[derive(Debug)]
pub enum AgentMsg {
    /// Rebuild a crashed child (sent to itself after the backoff delay).
    Respawn {
        /// The child's name.
        child: String,
    },
    /// Restart the whole agent (code 42).
    RequestRestart {
        /// Why, for the log.
        why: String,
    },
    /// `config.json` changed: run with this config from now on (from the config reloader).
    ConfigReloaded {
        /// The config with the changed hot keys.
        config: Arc<Config>,
        /// The hot keys that changed.
        hot: Vec<String>,
    },
}

/// Construction arguments of an Agent.
#[derive(Debug, Clone)]
pub struct AgentArgs {
    /// The agent's name (`main`).
    pub name: String,
    /// Its home.
    pub paths: DuctorPaths,
    /// Its path on the health board (`root/main`).
    pub board_path: String,
    /// The health board.
    pub board: HealthBoard,
    /// Its Bus handle (survives Bus restarts; given out to transports and the internal API).
    pub bus: BusHandle,
    /// Transport short names it serves, primary first.
    pub served: Vec<String>,
    /// Batch journal fsyncs across concurrent submissions.
    pub batch_fsync: bool,
    /// A JSONL file that receives every delivered envelope (`DUCTOR_SPOOL`), if set.
    pub spool: Option<Utf8PathBuf>,
    /// How often to look for the restart marker.
    pub restart_marker_poll: Duration,
    /// The agent's config.
    pub config: Arc<Config>,
    /// Its Orchestrator handle (survives Orchestrator restarts; given out to transports).
    pub orchestrator: OrchestratorHandle,
    /// Directories put in front of `PATH` for the CLIs.
    pub cli_path: Vec<Utf8PathBuf>,
    /// Extra children (tests and later layers), started after the built-in ones.
    pub extra_children: Vec<ChildSpec>,
    /// Bot API base URL when this agent serves Telegram.
    pub telegram_api: Option<String>,
    /// Whether this agent serves Matrix.
    pub matrix: bool,
    /// The process-wide dependency queue of unattended runs.
    pub queue: DependencyQueue,
    /// Timers of the observers (production values; tests shorten them).
    pub timing: ObserverTiming,
    /// Environment every CLI of this agent gets besides its own `DUCTOR_*` variables (the
    /// internal API token, `DUCTOR_BIN`).
    pub cli_env: Vec<(String, String)>,
    /// The main agent's reach into the other agents; `None` for a sub-agent.
    pub agent_control: Option<AgentControl>,
}

/// How often the observers look (ops spec §0.4, §9, §10); tests shorten these instead of
/// sleeping.
#[derive(Clone)]
pub struct ObserverTiming {
    /// The wall clock (cron fires, quiet hours, the cleanup hour).
    pub clock: WallClock,
    /// How long a configured heartbeat minute lasts.
    pub heartbeat_minute: Duration,
    /// How often the cleanup looks at the clock.
    pub cleanup_every: Duration,
    /// How often rule files are synchronised.
    pub rule_sync_every: Duration,
    /// How often skills are synchronised.
    pub skill_sync_every: Duration,
}

impl Default for ObserverTiming {
    fn default() -> Self {
        Self {
            clock: system_clock(),
            heartbeat_minute: Duration::from_secs(60),
            cleanup_every: Duration::from_secs(3600),
            rule_sync_every: Duration::from_secs(10),
            skill_sync_every: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for ObserverTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverTiming")
            .field("heartbeat_minute", &self.heartbeat_minute)
            .field("cleanup_every", &self.cleanup_every)
            .finish_non_exhaustive()
    }
}

/// The Agent actor.
#[derive(Debug, Default)]
pub struct Agent;

/// State of a running Agent.
#[derive(Debug)]
pub struct AgentState {
    args: AgentArgs,
    children: ChildSet,
    /// Keeps the webhook table in step with `webhooks.json`.
    _webhooks_watch: Option<FileWatch>,
    /// Tells the unattended runs started by the webhook dispatch that the agent stops.
    stop_runs: tokio::sync::watch::Sender<bool>,
    /// The config in force (hot reloads replace it); a rebuilt Orchestrator starts with it.
    live_config: Arc<std::sync::Mutex<Arc<Config>>>,
}

impl Actor for Agent {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(&self, myself: ActorRef<AgentMsg>, args: AgentArgs) -> Result<AgentState, ActorProcessingErr> {
        let workspace_env = prepare_workspace(&args).await;
        let mut children = ChildSet::new(&args.board_path, args.board.clone());
        let bus_args = BusArgs {
            agent: args.name.clone(),
            journal: args.paths.outbox(),
            served: served_with_api(&args),
            registry: args.bus.registry(),
            batch_fsync: args.batch_fsync,
            gate: Some({
                let orchestrator = args.orchestrator.clone();
                Arc::new(move |envelope| {
                    let orchestrator = orchestrator.clone();
                    Box::pin(async move { orchestrator.through_session(envelope).await })
                })
            }),
        };
        children.add(ChildSpec::actor("bus", ActorKind::Bus, Some(args.bus.slot()), move || (Bus, bus_args.clone())));
        let catalog = ModelCatalog::default();
        // One inbox per agent, written by all of its transports.
        let inbox = SharedInbox::open(&args.paths.inbox());
        let mut cli_env = Vec::new();
        if !args.cli_path.is_empty() {
            cli_env.push(("PATH".to_owned(), crate::provider::search_path(&args.cli_path)));
        }
        let cache_args = ModelCacheArgs {
            paths: args.paths.clone(),
            catalog: catalog.clone(),
            program: "codex".to_owned(),
            env: cli_env,
            every: Duration::from_secs(3600),
        };
        children
            .add(ChildSpec::actor("codex_models", ActorKind::Observer, None, move || (ModelCache, cache_args.clone())));
        let live_config = Arc::new(std::sync::Mutex::new(Arc::clone(&args.config)));
        let orchestrator_args = OrchestratorArgs {
            agent: args.name.clone(),
            paths: args.paths.clone(),
            config: Arc::clone(&args.config),
            board_path: format!("{}/orchestrator", args.board_path),
            board: args.board.clone(),
            cli_path: args.cli_path.clone(),
            bus: Some(args.bus.clone()),
            catalog: catalog.clone(),
            cli_env: args.cli_env.clone(),
            agent_control: args.agent_control.clone(),
        };
        children.add(ChildSpec::actor("orchestrator", ActorKind::Supervisor, Some(args.orchestrator.slot()), {
            let live_config = Arc::clone(&live_config);
            move || {
                let mut orchestrator_args = orchestrator_args.clone();
                if let Ok(config) = live_config.lock() {
                    orchestrator_args.config = Arc::clone(&config);
                }
                (Orchestrator, orchestrator_args)
            }
        }));
        if let Some(path) = &args.spool {
            let spool_args = SpoolArgs { path: path.clone(), bus: args.bus.clone() };
            children.add(ChildSpec::actor("spool", ActorKind::Transport, None, move || (Spool, spool_args.clone())));
        }
        let agent = myself.clone();
        let restart: RestartRequest = Arc::new(move |why| {
            let _ = agent.cast(AgentMsg::RequestRestart { why });
        });
        if let Some(api_base) = &args.telegram_api {
            let telegram_args = TelegramArgs {
                paths: args.paths.clone(),
                config: Arc::clone(&args.config),
                api_base: api_base.clone(),
                orchestrator: args.orchestrator.clone(),
                bus: args.bus.clone(),
                restart: Arc::clone(&restart),
                inbox: inbox.clone(),
                link: LinkStatus::new(args.board.clone(), format!("{}/telegram", args.board_path)),
            };
            children.add(ChildSpec::actor("telegram", ActorKind::Transport, None, move || {
                (Telegram, telegram_args.clone())
            }));
        }
        if args.matrix {
            let matrix_args = MatrixArgs {
                paths: args.paths.clone(),
                config: Arc::clone(&args.config),
                orchestrator: args.orchestrator.clone(),
                bus: args.bus.clone(),
                restart: Arc::clone(&restart),
                inbox: inbox.clone(),
                link: LinkStatus::new(args.board.clone(), format!("{}/matrix", args.board_path)),
            };
            children.add(ChildSpec::actor("matrix", ActorKind::Transport, None, move || (Matrix, matrix_args.clone())));
        }
        if api_enabled(&args) {
            let api_args = ApiArgs {
                paths: args.paths.clone(),
                config: Arc::clone(&args.config),
                orchestrator: args.orchestrator.clone(),
                bus: args.bus.clone(),
                inbox: inbox.clone(),
                catalog: catalog.clone(),
            };
            children.add(ChildSpec::actor("api", ActorKind::Transport, None, move || (Api, api_args.clone())));
        }
        let (stop_runs, runs_stopped) = tokio::sync::watch::channel(false);
        let webhooks_watch = add_observers(&args, &mut children, &catalog, workspace_env, runs_stopped);
        let marker_args =
            RestartMarkerArgs { marker: args.paths.restart_marker(), poll: args.restart_marker_poll, restart };
        children.add(ChildSpec::actor("restart_marker", ActorKind::Observer, None, move || {
            (RestartMarker, marker_args.clone())
        }));
        if args.name == "main" {
            let agent = myself.clone();
            let reloader_args = ConfigReloaderArgs {
                paths: args.paths.clone(),
                on_apply: Arc::new(move |config, hot| {
                    let _ = agent.cast(AgentMsg::ConfigReloaded { config, hot });
                }),
            };
            children.add(ChildSpec::actor("config_reloader", ActorKind::Observer, None, move || {
                (ConfigReloader, reloader_args.clone())
            }));
        }
        for spec in &args.extra_children {
            children.add(spec.clone());
        }
        children.start_all(&myself.get_cell()).await?;
        tracing::info!(actor = %args.board_path, "Agent started.");
        Ok(AgentState { args, children, _webhooks_watch: webhooks_watch, stop_runs, live_config })
    }

    async fn post_stop(&self, _myself: ActorRef<AgentMsg>, state: &mut AgentState) -> Result<(), ActorProcessingErr> {
        let _ = state.stop_runs.send(true);
        state.children.stop_all(CHILD_STOP_TIMEOUT).await;
        tracing::info!(actor = %state.args.board_path, "Agent stopped.");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentMsg::Respawn { child } => {
                let reaction = state.children.restart(&child, &myself.get_cell()).await;
                state.react(&myself, reaction).await;
            }
            AgentMsg::RequestRestart { why } => {
                tracing::info!(actor = %state.args.board_path, why = %why, "Agent restart requested.");
                myself.stop(Some(RESTART_REASON.to_owned()));
            }
            AgentMsg::ConfigReloaded { config, hot } => state.apply_config(&myself, config, &hot).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<AgentMsg>,
        event: SupervisionEvent,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        let reaction = state.children.on_event(&event);
        state.react(&myself, reaction).await;
        Ok(())
    }
}

impl AgentState {
    /// A hot reload, applied the way a start applies the config: the Orchestrator plans the next
    /// turns with it; the heartbeat and the cleanup are rebuilt from it (started when now
    /// enabled, stopped when now disabled); Telegram re-reads its allow-lists.
    async fn apply_config(&mut self, myself: &ActorRef<AgentMsg>, config: Arc<Config>, hot: &[String]) {
        if let Ok(mut live) = self.live_config.lock() {
            *live = Arc::clone(&config);
        }
        self.args.config = Arc::clone(&config);
        self.args.orchestrator.reconfigure(Arc::clone(&config));
        let rebuilt: [(&str, bool, ObserverSpec); 2] = [
            ("heartbeat", config.heartbeat.enabled, heartbeat_spec),
            ("cleanup", config.cleanup.enabled, cleanup_spec),
        ];
        for (name, enabled, spec) in rebuilt {
            if !hot.iter().any(|k| k == name) {
                continue;
            }
            self.children.remove(name, CHILD_STOP_TIMEOUT).await;
            if enabled {
                let reaction = self.children.add_and_start(spec(&self.args), &myself.get_cell()).await;
                self.react(myself, reaction).await;
            }
        }
        let allow_lists = ["allowed_user_ids", "allowed_group_ids", "group_mention_only"];
        if hot.iter().any(|k| allow_lists.contains(&k.as_str()))
            && let Some(telegram) = self.children.cell("telegram")
        {
            // At once rather than at the transport's next look at the file.
            let _ = telegram.send_message(crate::transport::telegram::TelegramMsg::ReloadAllowLists);
        }
        tracing::info!(actor = %self.args.board_path, keys = ?hot, "Config applied.");
    }

    async fn react(&mut self, myself: &ActorRef<AgentMsg>, reaction: Reaction) {
        let respawn = |child| AgentMsg::Respawn { child };
        if let Some(Reaction::GaveUp { child, crashes, error }) =
            self.children.carry_out(myself, reaction, respawn).await
        {
            let text = supervision::give_up_notice(&self.args.name, &child, crashes, &error);
            self.args.bus.submit_detached(Envelope::supervisor_notice(&text));
        }
    }
}

/// The workspace at start (ops spec §4): rule files for the logged-in CLIs, seeded files, cron
/// task folders, skills; then the runtime section. Errors are logged, never fatal.
/// The direct API runs in the main agent only (one port), when `api.enabled`.
fn api_enabled(args: &AgentArgs) -> bool {
    args.config.api.enabled && args.name == "main"
}

/// The transports the Bus serves: the configured ones, and `api` when the API runs.
fn served_with_api(args: &AgentArgs) -> Vec<String> {
    let mut served = args.served.clone();
    if api_enabled(args) && !served.iter().any(|t| t == crate::transport::api::API_TRANSPORT) {
        served.push(crate::transport::api::API_TRANSPORT.to_owned());
    }
    served
}

async fn prepare_workspace(args: &AgentArgs) -> WorkspaceEnv {
    let search_path = crate::provider::search_path(&args.cli_path);
    let home = Utf8PathBuf::from(std::env::var("HOME").unwrap_or_default());
    let probe_of = |claude_cli_logged_in: Option<bool>, env: &dyn Fn(&str) -> Option<String>| {
        let probe = AuthProbe {
            home: home.clone(),
            env,
            gemini_api_key: args.config.gemini_api_key.clone(),
            search_path: Some(search_path.clone()),
            claude_cli_logged_in,
        };
        (probe.authenticated_clis(), probe.status(ProviderKind::Claude))
    };
    let (mut clis, claude) = probe_of(None, &|name| std::env::var(name).ok());
    // Installed without a credential file: the login may be in the system keychain, which only
    // `claude auth status` can tell.
    if claude == AuthStatus::Installed
        && let Some(program) = find_program("claude", &search_path)
    {
        let answer = claude_cli_logged_in(&program, &[("PATH".to_owned(), search_path.clone())]).await;
        clis = probe_of(answer, &|name| std::env::var(name).ok()).0;
    }
    let workspace_env = WorkspaceEnv::from_process(clis);
    let report = workspace::init(&args.paths, &args.config, &workspace_env);
    tracing::info!(actor = %args.board_path, ?report, "Workspace prepared.");
    let facts = RuntimeFacts::for_agent(&args.config, &args.name, false);
    workspace::inject_runtime_sections(&args.paths, &facts);
    workspace_env
}

/// The observers of an agent: cron (always), webhooks, heartbeat and cleanup (when enabled),
/// rule-file and skill sync. Returns the watch that keeps the webhook table current.
fn add_observers(
    args: &AgentArgs,
    children: &mut ChildSet,
    catalog: &ModelCatalog,
    workspace_env: WorkspaceEnv,
    runs_stopped: tokio::sync::watch::Receiver<bool>,
) -> Option<FileWatch> {
    let journal = match SharedRunJournal::open(&args.paths.run_journal()) {
        Ok(journal) => Some(journal),
        Err(e) => {
            tracing::error!(actor = %args.board_path, error = %e,
                "The run journal cannot be opened; cron jobs and webhook tasks do not run.");
            None
        }
    };
    let extra_env = args.cli_env.clone();
    let ctx = journal.map(|journal| RunContext {
        agent: args.name.clone(),
        paths: args.paths.clone(),
        config: Arc::clone(&args.config),
        bus: args.bus.clone(),
        journal,
        queue: args.queue.clone(),
        catalog: catalog.clone(),
        cli_path: args.cli_path.clone(),
        extra_env,
    });
    let timing = &args.timing;
    if let Some(ctx) = &ctx {
        let cron_args = CronArgs { ctx: ctx.clone(), clock: Arc::clone(&timing.clock), watch_file: true };
        children.add(ChildSpec::actor("cron", ActorKind::Observer, None, move || (Cron, cron_args.clone())));
    }
    let mut webhooks_watch = None;
    if let (true, Some(ctx)) = (args.config.webhooks.enabled, &ctx) {
        let table = WebhookTable::new();
        table.replace(&Webhooks { hooks: webhook_dispatch::load_hooks(&args.paths) });
        let (reload_table, path) = (table.clone(), Webhooks::path(&args.paths));
        webhooks_watch = FileWatch::start(&path.clone(), Duration::from_millis(250), move || {
            // A half-written or broken file keeps the hooks last loaded.
            match crate::store::locked_state::read_strict::<Webhooks>(&path) {
                Ok(hooks) => {
                    reload_table.replace(&hooks);
                    tracing::info!(hooks = hooks.hooks.len(), "Webhooks reloaded.");
                }
                Err(e) => tracing::warn!(error = %e, "webhooks.json could not be read; keeping the hooks last loaded."),
            }
        })
        .map_err(|e| tracing::warn!(error = %e, "Cannot watch webhooks.json; changes need a restart."))
        .ok();
        let server_args = WebhookServerArgs {
            config: args.config.webhooks.clone(),
            paths: args.paths.clone(),
            table,
            sink: webhook_dispatch::sink(ctx.clone(), runs_stopped),
            listen: ListenAddress::default(),
        };
        children
            .add(ChildSpec::actor("webhooks", ActorKind::Observer, None, move || (WebhookServer, server_args.clone())));
    }
    if args.config.heartbeat.enabled {
        children.add(heartbeat_spec(args));
    }
    if args.config.cleanup.enabled {
        children.add(cleanup_spec(args));
    }
    let rule_args = RuleSyncArgs { paths: args.paths.clone(), every: timing.rule_sync_every };
    children.add(ChildSpec::actor("rule_sync", ActorKind::Observer, None, move || (RuleSync, rule_args.clone())));
    let skill_args = SkillSyncArgs {
        paths: args.paths.clone(),
        env: workspace_env,
        skills: args.config.skills.clone(),
        mode: SkillSyncMode::Link,
        every: timing.skill_sync_every,
    };
    children.add(ChildSpec::actor("skill_sync", ActorKind::Observer, None, move || (SkillSync, skill_args.clone())));
    webhooks_watch
}

/// Builds an observer's spec from the agent's current config.
type ObserverSpec = fn(&AgentArgs) -> ChildSpec;

/// The heartbeat observer of the agent's current config.
fn heartbeat_spec(args: &AgentArgs) -> ChildSpec {
    let heartbeat_args = HeartbeatArgs {
        config: Arc::clone(&args.config),
        orchestrator: args.orchestrator.clone(),
        bus: args.bus.clone(),
        minute: args.timing.heartbeat_minute,
        clock: Arc::clone(&args.timing.clock),
    };
    ChildSpec::actor("heartbeat", ActorKind::Observer, None, move || (Heartbeat, heartbeat_args.clone()))
}

/// The cleanup observer of the agent's current config.
fn cleanup_spec(args: &AgentArgs) -> ChildSpec {
    let cleanup_args = CleanupArgs {
        config: Arc::clone(&args.config),
        workspace: args.paths.workspace(),
        every: args.timing.cleanup_every,
        clock: Arc::clone(&args.timing.clock),
    };
    ChildSpec::actor("cleanup", ActorKind::Observer, None, move || (Cleanup, cleanup_args.clone()))
}

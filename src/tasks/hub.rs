//! The TaskHub actor (core spec §8): one per process, under the Root, shared by every agent.
//! It owns `<main home>/tasks.json` (read-modify-write under the file's lock), creates task
//! folders in the parent agent's workspace, runs workers through the parent agent's CLI
//! (non-interactive, own process group, `tasks.timeout_seconds`, `DUCTOR_TASK_ID` in their
//! environment), keeps at most `tasks.max_parallel` non-interactive workers per chat running and
//! queues the others (ductor-rs: 0.18.2 refused them), and delivers results and questions to
//! the parent's chat as Envelopes on the parent agent's Bus, injected into its session, each
//! with a delivery key (delivered once across crashes).
//!
//! At start, a task a restart cut off (`running`) becomes `failed` and its parent is told once;
//! queued tasks are queued again; entries whose folder is gone are dropped and task folders
//! without an entry are deleted. Folders are found under the parent agent's current home, so a
//! moved home keeps its tasks.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Deserialize;
use tokio::sync::watch;

use crate::chat::agent_directory::{AgentDirectory, AgentEntry, MAIN_AGENT};
use crate::core::config::dotenv::env_for_child;
use crate::core::envelope::{Envelope, LockMode, Origin};
use crate::core::health::ActorKind;
use crate::core::session_key::ChatId;
use crate::core::state::tasks::{TaskRecord, TaskRegistry};
use crate::core::stream_event::TurnResult;
use crate::core::task_run::{
    self, INTERRUPTED_ERROR, PROMPT_PREVIEW_CHARS, QUESTION_PREVIEW_CHARS, RESULT_PREVIEW_CHARS, status,
};
use crate::provider::runner::{Control, RunSettings, run_turn};
use crate::provider::{ProviderKind, TurnSpec, claude, codex, gemini, provider_for, search_path};
use crate::runtime::bus::BusError;
use crate::runtime::file_watch::FileWatch;
use crate::runtime::health_board::HealthBoard;
use crate::runtime::supervision::ActorSlot;
use crate::store::atomic::Loaded;
use crate::store::config_file::DotEnv;
use crate::store::locked_state::{self, LockedStateError};
use crate::store::paths::DuctorPaths;
use crate::store::state_files::StateFile;
use crate::store::task_folders::{self, NewFolder};

/// How long a caller waits for the hub.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the start-up recovery looks again for agents not started yet.
const RECOVERY_RETRY: Duration = Duration::from_secs(1);
/// How many times it looks before it gives up on telling a parent.
const RECOVERY_ATTEMPTS: u32 = 60;
/// The actor's name in logs.
const ACTOR: &str = "tasks";
/// How often a message is offered to a Bus that is not running, and how far apart.
const BUS_ATTEMPTS: u32 = 20;
const BUS_RETRY: Duration = Duration::from_millis(100);
/// The hub's path on the health board.
const BOARD_PATH: &str = "root/tasks";
/// How often task folders without entry are looked for (core spec §8.1).
const ORPHAN_CLEANUP_EVERY: Duration = Duration::from_secs(5 * 3600);
/// How long a change of `tasks.json` must settle before it is looked at.
const REGISTRY_DEBOUNCE: Duration = Duration::from_millis(200);

/// Why a task request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// No such task.
    #[error("unknown task: {0}")]
    NotFound(String),
    /// The task belongs to another agent.
    #[error("task {task} belongs to agent {owner}")]
    NotOwner {
        /// The task.
        task: String,
        /// Its parent agent.
        owner: String,
    },
    /// The task still runs (or waits for a slot).
    #[error("task {0} is still running; cancel it first")]
    Running(String),
    /// The request was refused (limit, disabled, state of the task, ...).
    #[error("{0}")]
    Refused(String),
    /// The hub is not running.
    #[error("the task hub is not running")]
    Unavailable,
}

/// A `POST /tasks/create` body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateRequest {
    /// The parent agent (`main` when missing).
    #[serde(default)]
    pub from: Option<String>,
    /// What the worker is to do.
    pub prompt: String,
    /// A short name (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// Provider override.
    #[serde(default)]
    pub provider: Option<String>,
    /// Model override.
    #[serde(default)]
    pub model: Option<String>,
    /// Stored, unused (as in 0.18.2).
    #[serde(default)]
    pub thinking: Option<String>,
    /// `interactive`, `background` (default) or `batch`.
    #[serde(default)]
    pub priority: Option<String>,
    /// The chat the result goes to (0 or missing: the parent agent's first allowed user).
    #[serde(default)]
    pub chat_id: Option<ChatId>,
    /// The topic / thread.
    #[serde(default)]
    pub topic_id: Option<i64>,
    /// The transport of the chat (`tg`, `mx`; `telegram` and `matrix` accepted; default `tg`).
    #[serde(default)]
    pub transport: Option<String>,
}

/// Messages of the TaskHub.
#[derive(Debug)]
pub enum TaskHubMsg {
    /// Create and start (or queue) a task; answers its id.
    Create(Box<CreateRequest>, RpcReplyPort<Result<String, TaskError>>),
    /// Resume a finished task with a follow-up.
    Resume {
        /// The task.
        task_id: String,
        /// The follow-up.
        prompt: String,
        /// The agent asking (must own it when given).
        from: Option<String>,
        /// Answer: the task id.
        reply: RpcReplyPort<Result<String, TaskError>>,
    },
    /// A worker's question for its parent.
    AskParent {
        /// The task.
        task_id: String,
        /// The question.
        question: String,
        /// Answer: the text for the worker.
        reply: RpcReplyPort<Result<String, TaskError>>,
    },
    /// The tasks (of one agent), newest first.
    List {
        /// Only this agent's tasks.
        from: Option<String>,
        /// Answer.
        reply: RpcReplyPort<Vec<TaskRecord>>,
    },
    /// Cancel a task; answers whether it was running (or queued).
    Cancel {
        /// The task.
        task_id: String,
        /// The agent asking.
        from: Option<String>,
        /// Answer.
        reply: RpcReplyPort<Result<bool, TaskError>>,
    },
    /// Delete a finished task and its folder.
    Delete {
        /// The task.
        task_id: String,
        /// The agent asking.
        from: Option<String>,
        /// Answer.
        reply: RpcReplyPort<Result<(), TaskError>>,
    },
    /// A worker's CLI ended.
    Finished {
        /// The task.
        task_id: String,
        /// What the CLI said.
        result: Box<TurnResult>,
        /// How long it ran.
        elapsed: Duration,
    },
    /// `tasks.json` changed: a running task whose entry someone else marked `cancelled` (the
    /// `/tasks` menu of a chat) is stopped.
    RegistryChanged,
    /// The periodic orphan clean-up (every 5 h).
    CleanOrphans,
    /// Start-up recovery (again for parents not started yet).
    Recover {
        /// How many times it ran before.
        attempt: u32,
    },
}

/// Cloneable handle to the TaskHub (survives restarts of the actor).
#[derive(Debug, Clone, Default)]
pub struct TaskHubHandle {
    slot: ActorSlot<TaskHubMsg>,
}

impl TaskHubHandle {
    /// A handle whose hub is not started yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The slot the supervisor points at each new hub.
    pub fn slot(&self) -> ActorSlot<TaskHubMsg> {
        self.slot.clone()
    }

    async fn call<T: Send + 'static>(&self, make: impl FnOnce(RpcReplyPort<T>) -> TaskHubMsg) -> Result<T, TaskError> {
        let hub = self.slot.get().ok_or(TaskError::Unavailable)?;
        match hub.call(make, Some(CALL_TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success(answer)) => Ok(answer),
            Ok(_) | Err(_) => Err(TaskError::Unavailable),
        }
    }

    /// Creates a task.
    pub async fn create(&self, request: CreateRequest) -> Result<String, TaskError> {
        self.call(|reply| TaskHubMsg::Create(Box::new(request), reply)).await?
    }

    /// Resumes a task.
    pub async fn resume(&self, task_id: String, prompt: String, from: Option<String>) -> Result<String, TaskError> {
        self.call(|reply| TaskHubMsg::Resume { task_id, prompt, from, reply }).await?
    }

    /// Forwards a worker's question.
    pub async fn ask_parent(&self, task_id: String, question: String) -> Result<String, TaskError> {
        self.call(|reply| TaskHubMsg::AskParent { task_id, question, reply }).await?
    }

    /// Lists tasks.
    pub async fn list(&self, from: Option<String>) -> Result<Vec<TaskRecord>, TaskError> {
        self.call(|reply| TaskHubMsg::List { from, reply }).await
    }

    /// Cancels a task.
    pub async fn cancel(&self, task_id: String, from: Option<String>) -> Result<bool, TaskError> {
        self.call(|reply| TaskHubMsg::Cancel { task_id, from, reply }).await?
    }

    /// Deletes a task.
    pub async fn delete(&self, task_id: String, from: Option<String>) -> Result<(), TaskError> {
        self.call(|reply| TaskHubMsg::Delete { task_id, from, reply }).await?
    }
}

/// Construction arguments.
#[derive(Debug, Clone)]
pub struct TaskHubArgs {
    /// The main agent's home (`tasks.json`).
    pub main: DuctorPaths,
    /// The agents (parents of tasks).
    pub agents: AgentDirectory,
    /// Directories put in front of `PATH` for the CLIs.
    pub cli_path: Vec<Utf8PathBuf>,
    /// What every CLI gets besides its agent's variables (token, `DUCTOR_BIN`).
    pub cli_env: Vec<(String, String)>,
    /// The health board: a running worker appears as `task:<id>` under the hub.
    pub board: HealthBoard,
}

/// The TaskHub actor.
#[derive(Debug, Default)]
pub struct TaskHub;

/// A worker under way.
#[derive(Debug)]
struct Run {
    control: watch::Sender<Control>,
    chat_id: ChatId,
    interactive: bool,
    cancelled: bool,
    asked: bool,
}

/// A run waiting for a slot.
#[derive(Debug, Clone)]
struct Pending {
    task_id: String,
    prompt: String,
    resume: Option<String>,
}

/// State of the hub.
#[derive(Debug)]
pub struct TaskHubState {
    args: TaskHubArgs,
    runs: HashMap<String, Run>,
    queue: VecDeque<Pending>,
    /// The periodic orphan clean-up (`None` until the first message opened the registry).
    cleanup: Option<tokio::task::JoinHandle<()>>,
    /// The watch of `tasks.json`, kept alive with the hub.
    _registry_watch: Option<FileWatch>,
}

impl Actor for TaskHub {
    type Msg = TaskHubMsg;
    type State = TaskHubState;
    type Arguments = TaskHubArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<TaskHubMsg>,
        args: TaskHubArgs,
    ) -> Result<TaskHubState, ActorProcessingErr> {
        // Everything else happens in the first message: the agents start without waiting.
        let _ = myself.cast(TaskHubMsg::Recover { attempt: 0 });
        Ok(TaskHubState { args, runs: HashMap::new(), queue: VecDeque::new(), cleanup: None, _registry_watch: None })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TaskHubMsg>,
        state: &mut TaskHubState,
    ) -> Result<(), ActorProcessingErr> {
        // Workers are stopped with the service; their entries stay `running` and are reported
        // as interrupted at the next start.
        for run in state.runs.values() {
            let _ = run.control.send(Control::Stop);
        }
        if let Some(cleanup) = state.cleanup.take() {
            cleanup.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<TaskHubMsg>,
        msg: TaskHubMsg,
        state: &mut TaskHubState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TaskHubMsg::Create(request, reply) => {
                let _ = reply.send(state.create(&myself, *request));
            }
            TaskHubMsg::Resume { task_id, prompt, from, reply } => {
                let _ = reply.send(state.resume(&myself, &task_id, &prompt, from.as_deref()));
            }
            TaskHubMsg::AskParent { task_id, question, reply } => {
                let _ = reply.send(state.ask_parent(&task_id, &question).await);
            }
            TaskHubMsg::List { from, reply } => {
                let _ = reply.send(state.list(from.as_deref()));
            }
            TaskHubMsg::Cancel { task_id, from, reply } => {
                let _ = reply.send(state.cancel(&task_id, from.as_deref()).await);
            }
            TaskHubMsg::Delete { task_id, from, reply } => {
                let _ = reply.send(state.delete(&task_id, from.as_deref()));
            }
            TaskHubMsg::Finished { task_id, result, elapsed } => {
                state.finished(&task_id, &result, elapsed).await;
                state.start_queued(&myself);
            }
            TaskHubMsg::RegistryChanged => state.stop_cancelled_elsewhere(),
            TaskHubMsg::CleanOrphans => state.clean_orphans(),
            TaskHubMsg::Recover { attempt: 0 } if state.cleanup.is_none() => {
                state.open(&myself);
                let _ = myself.cast(TaskHubMsg::Recover { attempt: 0 });
            }
            TaskHubMsg::Recover { attempt } => {
                let waiting = state.recover(attempt, attempt + 1 >= RECOVERY_ATTEMPTS).await;
                if attempt == 0 {
                    state.requeue(&myself);
                }
                if waiting && attempt + 1 < RECOVERY_ATTEMPTS {
                    myself.send_after(RECOVERY_RETRY, move || TaskHubMsg::Recover { attempt: attempt + 1 });
                }
            }
        }
        Ok(())
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn transport_name(given: Option<&str>) -> String {
    match given.map(str::trim) {
        None | Some("" | "telegram") => "tg".to_owned(),
        Some("matrix") => "mx".to_owned(),
        Some(other) => other.to_owned(),
    }
}

fn refused(e: &LockedStateError) -> TaskError {
    tracing::error!(actor = ACTOR, error = %e, "tasks.json could not be changed.");
    TaskError::Refused(format!("tasks.json could not be changed: {e}"))
}

fn owner_check(task: &TaskRecord, from: Option<&str>) -> Result<(), TaskError> {
    match from.map(str::trim).filter(|f| !f.is_empty()) {
        Some(from) if from != task.parent_agent => {
            Err(TaskError::NotOwner { task: task.task_id.clone(), owner: task.parent_agent.clone() })
        }
        _ => Ok(()),
    }
}

impl TaskHubState {
    /// The registry as it is on disk (missing or unreadable → empty).
    fn registry(&self) -> TaskRegistry {
        match locked_state::read_strict::<TaskRegistry>(&TaskRegistry::path(&self.args.main)) {
            Ok(registry) => registry,
            Err(e) => {
                tracing::warn!(actor = ACTOR, error = %e, "tasks.json could not be read.");
                TaskRegistry::default()
            }
        }
    }

    fn task(&self, task_id: &str) -> Result<TaskRecord, TaskError> {
        self.registry()
            .tasks
            .into_iter()
            .find(|t| t.task_id == task_id)
            .ok_or_else(|| TaskError::NotFound(task_id.to_owned()))
    }

    /// Changes one entry under the file's lock; returns it as written.
    fn update(&self, task_id: &str, change: impl FnOnce(&mut TaskRecord)) -> Result<TaskRecord, TaskError> {
        locked_state::update::<TaskRegistry, _>(&self.args.main, |registry| {
            match registry.tasks.iter_mut().find(|t| t.task_id == task_id) {
                Some(task) => {
                    change(task);
                    (true, Some(task.clone()))
                }
                None => (false, None),
            }
        })
        .map_err(|e| refused(&e))?
        .ok_or_else(|| TaskError::NotFound(task_id.to_owned()))
    }

    /// The folder of a task: under its parent agent's current home (a moved home keeps its
    /// tasks), else where the entry says.
    fn folder(&self, task: &TaskRecord) -> Utf8PathBuf {
        match self.args.agents.get(&task.parent_agent) {
            Some(agent) => agent.paths.task_folders().join(&task.task_id),
            None => Utf8PathBuf::from(task.folder()),
        }
    }

    /// At start: a corrupt `tasks.json` is moved aside (with a warning) before anything writes
    /// it; the file is watched; the orphan clean-up is scheduled.
    fn open(&mut self, myself: &ActorRef<TaskHubMsg>) {
        if let Loaded::Quarantined { moved_to, .. } = TaskRegistry::load(&self.args.main) {
            tracing::warn!(actor = ACTOR, moved_to = %moved_to, "tasks.json was corrupt; moved aside, starting empty.");
        }
        let hub = myself.clone();
        self._registry_watch = FileWatch::start(&TaskRegistry::path(&self.args.main), REGISTRY_DEBOUNCE, move || {
            let _ = hub.cast(TaskHubMsg::RegistryChanged);
        })
        .map_err(|e| tracing::warn!(actor = ACTOR, error = %e, "Cannot watch tasks.json; the /tasks menu cannot stop workers."))
        .ok();
        self.cleanup = Some(myself.send_interval(ORPHAN_CLEANUP_EVERY, || TaskHubMsg::CleanOrphans));
    }

    /// Stops the running workers whose entries were marked `cancelled` outside the hub.
    fn stop_cancelled_elsewhere(&mut self) {
        if self.runs.is_empty() {
            return;
        }
        for task in self.registry().tasks {
            if task.status != status::CANCELLED {
                continue;
            }
            if let Some(run) = self.runs.get_mut(&task.task_id).filter(|run| !run.cancelled) {
                run.cancelled = true;
                let _ = run.control.send(Control::Stop);
                tracing::info!(actor = ACTOR, task = %task.task_id, "Task cancelled from a chat; its process group is stopped.");
            }
        }
    }

    fn running_in_chat(&self, chat_id: ChatId) -> usize {
        self.runs.values().filter(|r| r.chat_id == chat_id && !r.interactive).count()
    }

    fn create(&mut self, myself: &ActorRef<TaskHubMsg>, request: CreateRequest) -> Result<String, TaskError> {
        let from = request.from.clone().filter(|f| !f.trim().is_empty()).unwrap_or_else(|| MAIN_AGENT.to_owned());
        let Some(agent) = self.args.agents.get(&from) else {
            return Err(TaskError::Refused(format!("agent {from} is not running")));
        };
        let tasks = &agent.config.tasks;
        if !tasks.enabled {
            return Err(TaskError::Refused("background tasks are disabled (tasks.enabled is false)".to_owned()));
        }
        if request.prompt.trim().is_empty() {
            return Err(TaskError::Refused("the prompt is empty".to_owned()));
        }
        let chat_id = match request.chat_id.filter(|c| c.0 != 0) {
            Some(chat) => chat,
            None => match agent.config.allowed_user_ids.first() {
                Some(user) => ChatId(i128::from(*user)),
                None => return Err(TaskError::Refused("no chat to report to: no chat_id and no allowed user".into())),
            },
        };
        let given_model = request.model.clone().filter(|m| !m.trim().is_empty());
        let mut model = given_model.clone().unwrap_or_else(|| agent.config.model.clone());
        let provider = match request.provider.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(name) => match ProviderKind::from_name(name) {
                Some(kind) => kind,
                None => return Err(TaskError::Refused(format!("unknown provider {name:?} (claude, codex, gemini)"))),
            },
            None => provider_for(&model, &[]),
        };
        if given_model.is_none() && provider_for(&model, &[]) != provider {
            // Another provider than the agent's, without a model: that CLI's default model.
            model = String::new();
        }
        let task_id = loop {
            let id = format!("{:08x}", rand::random::<u32>());
            if self.task(&id).is_err() {
                break id;
            }
        };
        let name = request.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| task_id.clone());
        let priority = task_run::priority(request.priority.as_deref());
        let tasks_dir = agent.paths.task_folders();
        let folder = tasks_dir.join(&task_id);
        let created = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
        let new = NewFolder {
            task_id: &task_id,
            name: &name,
            created: &created,
            provider: provider.name(),
            model: &model,
            prompt: &request.prompt,
        };
        if let Err(e) = task_folders::create(&folder, &new) {
            tracing::error!(actor = ACTOR, folder = %folder, error = %e, "Task folder could not be created.");
            return Err(TaskError::Refused(format!("the task folder could not be created: {e}")));
        }
        let limit = usize::try_from(tasks.max_parallel.max(1)).unwrap_or(1);
        let queued = priority != "interactive" && self.running_in_chat(chat_id) >= limit;
        let mut record = TaskRecord {
            task_id: task_id.clone(),
            chat_id,
            parent_agent: from.clone(),
            name,
            provider: provider.name().to_owned(),
            model,
            status: if queued { status::QUEUED } else { status::RUNNING }.to_owned(),
            session_id: String::new(),
            created_at: unix_now(),
            tasks_dir: tasks_dir.to_string(),
            extra: serde_json::Map::new(),
        };
        record.set("prompt_preview", task_run::preview(&request.prompt, PROMPT_PREVIEW_CHARS));
        record.set("original_prompt", request.prompt.clone());
        record.set("completed_at", 0.0);
        record.set("elapsed_seconds", 0.0);
        record.set("error", "");
        record.set("result_preview", "");
        record.set("question_count", 0);
        record.set("num_turns", 0);
        record.set("last_question", "");
        record.set("thinking", request.thinking.clone().unwrap_or_default());
        record.set("priority", priority);
        if let Some(topic) = request.topic_id {
            record.set("thread_id", topic);
        }
        record.set("transport", transport_name(request.transport.as_deref()));
        locked_state::update::<TaskRegistry, _>(&self.args.main, |registry| {
            registry.tasks.push(record.clone());
            (true, ())
        })
        .map_err(|e| refused(&e))?;
        let memory = task_folders::memory_path(&folder);
        let pending = Pending {
            task_id: task_id.clone(),
            prompt: task_run::worker_prompt(&request.prompt, memory.as_str()),
            resume: None,
        };
        tracing::info!(actor = ACTOR, task = %task_id, agent = %from, queued, "Task created.");
        if queued {
            self.queue.push_back(pending);
        } else {
            self.start(myself, &record, &agent, pending);
        }
        Ok(task_id)
    }

    /// Starts a worker's CLI (the entry is `running` already).
    fn start(&mut self, myself: &ActorRef<TaskHubMsg>, task: &TaskRecord, agent: &AgentEntry, pending: Pending) {
        let config = &agent.config;
        let kind = ProviderKind::from_name(&task.provider).unwrap_or(ProviderKind::Claude);
        let runs = task.number("runs") as i64 + 1;
        let _ = self.update(&task.task_id, |t| t.set("runs", runs));
        // A new worker session knows the agent's memory, as the agent's own new sessions do.
        let memory = std::fs::read_to_string(agent.paths.main_memory()).ok();
        let append = if pending.resume.is_none() {
            crate::core::prompt_hooks::system_append(memory.as_deref(), None)
        } else {
            None
        };
        let spec = TurnSpec {
            prompt: pending.prompt,
            append_system_prompt: append,
            model: task.model.clone(),
            permission_mode: config.permission_mode.clone(),
            resume: pending.resume,
            reasoning_effort: config.reasoning_effort.clone(),
            cli_parameters: match kind {
                ProviderKind::Claude => config.cli_parameters.claude.clone(),
                ProviderKind::Codex => config.cli_parameters.codex.clone(),
                ProviderKind::Gemini => config.cli_parameters.gemini.clone(),
            },
            ..TurnSpec::default()
        };
        let invocation = match kind {
            ProviderKind::Claude => claude::turn_invocation(&spec, true),
            ProviderKind::Codex => codex::turn_invocation(&spec),
            ProviderKind::Gemini => gemini::turn_invocation(&spec),
        };
        let mut env = vec![
            ("DUCTOR_AGENT_NAME".to_owned(), agent.name.clone()),
            ("DUCTOR_AGENT_ROLE".to_owned(), if agent.name == MAIN_AGENT { "main" } else { "sub" }.to_owned()),
            ("DUCTOR_INTERAGENT_PORT".to_owned(), config.interagent_port.to_string()),
            ("DUCTOR_TRANSPORT".to_owned(), task.text("transport").to_owned()),
            ("DUCTOR_HOME".to_owned(), agent.paths.home().to_string()),
            ("DUCTOR_SHARED_MEMORY_PATH".to_owned(), self.args.main.shared_memory().to_string()),
            ("DUCTOR_CHAT_ID".to_owned(), task.chat_id.to_string()),
            ("DUCTOR_TASK_ID".to_owned(), task.task_id.clone()),
        ];
        if let Some(topic) = task.extra.get("thread_id").and_then(serde_json::Value::as_i64) {
            env.push(("DUCTOR_TOPIC_ID".to_owned(), topic.to_string()));
        }
        env.extend(self.args.cli_env.iter().cloned());
        // `.env` secrets ductor's own environment does not already have, as chat turns get them.
        let secrets = DotEnv::new(&agent.paths).current().to_vec();
        env.extend(
            env_for_child(&secrets, |k| std::env::var_os(k).is_some()).map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        if !self.args.cli_path.is_empty() {
            env.push(("PATH".to_owned(), search_path(&self.args.cli_path)));
        }
        let timeout = Duration::from_secs_f64(config.tasks.timeout_seconds.max(1.0));
        let settings = RunSettings {
            cwd: agent.paths.workspace(),
            env,
            timeout: Some(timeout),
            extension: None,
            temp_files: Vec::new(),
            warnings: Vec::new(),
        };
        let (control, control_rx) = watch::channel(Control::Run);
        let interactive = task.text("priority") == "interactive";
        let run = Run { control, chat_id: task.chat_id, interactive, cancelled: false, asked: false };
        self.runs.insert(task.task_id.clone(), run);
        let label = format!("task:{}", task.task_id);
        let board_path = format!("{BOARD_PATH}/{label}");
        self.args.board.register(&board_path, &label, ActorKind::Provider);
        self.args.board.running(&board_path);
        let me = myself.clone();
        let task_id = task.task_id.clone();
        tracing::info!(actor = ACTOR, task = %task_id, provider = kind.name(), model = %task.model, "Task worker started.");
        tokio::spawn(async move {
            let started = Instant::now();
            let mut parser = kind.stream_parser();
            let result = match run_turn(&invocation, parser.as_mut(), &settings, control_rx, |_| {}).await {
                Ok(transcript) => transcript.result,
                Err(e) => TurnResult { is_error: true, result: e.to_string(), ..TurnResult::default() },
            };
            let _ = me.cast(TaskHubMsg::Finished { task_id, result: Box::new(result), elapsed: started.elapsed() });
        });
    }

    /// Starts queued runs while their chats have free slots.
    fn start_queued(&mut self, myself: &ActorRef<TaskHubMsg>) {
        let mut waiting = VecDeque::new();
        while let Some(pending) = self.queue.pop_front() {
            let Ok(task) = self.task(&pending.task_id) else { continue };
            if task.status != status::QUEUED {
                continue;
            }
            let Some(agent) = self.args.agents.get(&task.parent_agent) else {
                waiting.push_back(pending);
                continue;
            };
            let limit = usize::try_from(agent.config.tasks.max_parallel.max(1)).unwrap_or(1);
            if self.running_in_chat(task.chat_id) >= limit {
                waiting.push_back(pending);
                continue;
            }
            match self.update(&task.task_id, |t| t.status = status::RUNNING.to_owned()) {
                Ok(task) => {
                    tracing::info!(actor = ACTOR, task = %task.task_id, "Queued task starts.");
                    self.start(myself, &task, &agent, pending);
                }
                Err(e) => tracing::warn!(actor = ACTOR, task = %task.task_id, error = %e, "Queued task not started."),
            }
        }
        self.queue = waiting;
    }

    /// Queued entries of an earlier run are queued again.
    fn requeue(&mut self, myself: &ActorRef<TaskHubMsg>) {
        for task in self.registry().tasks.into_iter().filter(|t| t.status == status::QUEUED) {
            let memory = task_folders::memory_path(&self.folder(&task));
            let prompt = task_run::worker_prompt(task.text("original_prompt"), memory.as_str());
            self.queue.push_back(Pending { task_id: task.task_id.clone(), prompt, resume: None });
        }
        self.start_queued(myself);
    }

    async fn finished(&mut self, task_id: &str, result: &TurnResult, elapsed: Duration) {
        let Some(run) = self.runs.remove(task_id) else { return };
        self.args.board.remove(&format!("{BOARD_PATH}/task:{task_id}"));
        let Ok(task) = self.task(task_id) else { return };
        let timeout = self.args.agents.get(&task.parent_agent).map_or(3600.0, |a| a.config.tasks.timeout_seconds);
        let classified = task_run::classify(result, run.cancelled, run.asked, timeout);
        let folder = self.folder(&task);
        let memory_path = task_folders::memory_path(&folder);
        let session = result.session_id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| task.session_id.clone());
        let text = task_run::result_text(
            &result.result,
            memory_path.as_str(),
            &task_folders::read_memory(&folder),
            task_id,
            classified.status == status::DONE && !session.is_empty(),
        );
        let elapsed_s = elapsed.as_secs_f64();
        let turns = task.number("num_turns") as u64 + result.num_turns.unwrap_or(1);
        let preview_source = if classified.error.is_empty() { result.result.as_str() } else { &classified.error };
        let preview = task_run::preview(preview_source, RESULT_PREVIEW_CHARS);
        let updated = self.update(task_id, |t| {
            t.status = classified.status.to_owned();
            t.session_id = session.clone();
            t.set("completed_at", unix_now());
            t.set("elapsed_seconds", elapsed_s);
            t.set("error", classified.error.clone());
            t.set("result_preview", preview.clone());
            t.set("num_turns", turns);
        });
        let task = match updated {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(actor = ACTOR, task = %task_id, error = %e, "Task result not recorded.");
                task
            }
        };
        tracing::info!(actor = ACTOR, task = %task_id, status = classified.status, elapsed_s, "Task worker ended.");
        let envelope = match classified.status {
            status::DONE => {
                let prompt = task_run::completed_prompt(&task, &text, elapsed_s);
                Some(self.result_envelope(&task, "done", prompt, "", elapsed_s))
            }
            status::FAILED => {
                let prompt = task_run::failed_prompt(&task, &classified.error);
                Some(self.result_envelope(&task, "failed", prompt, &classified.error, elapsed_s))
            }
            status::CANCELLED => Some(self.result_envelope(&task, "cancelled", String::new(), "", elapsed_s)),
            _ => None,
        };
        if let Some(envelope) = envelope {
            let key = format!("task:{task_id}:r{}:result", task.number("runs"));
            self.deliver(&task, envelope.with_delivery_key(&key)).await;
        }
    }

    /// A `task_result` Envelope to the task's chat; with a prompt it is injected into the
    /// parent's session, without one it is a notice.
    fn result_envelope(&self, task: &TaskRecord, word: &str, prompt: String, error: &str, elapsed: f64) -> Envelope {
        let inject = !prompt.is_empty();
        // The model of an injected envelope is the model of the parent's turn: only the
        // parent's own model is named.
        let parent_model = self.args.agents.get(&task.parent_agent).map(|a| a.config.model.clone());
        let model =
            if parent_model.as_deref() == Some(task.model.as_str()) { task.model.clone() } else { String::new() };
        let mut envelope = Envelope {
            origin: Origin::TaskResult,
            chat_id: task.chat_id,
            topic_id: task.extra.get("thread_id").and_then(serde_json::Value::as_i64),
            transport: Some(task.text("transport")).filter(|t| !t.is_empty()).unwrap_or("tg").to_owned(),
            prompt,
            prompt_preview: task.text("prompt_preview").to_owned(),
            status: word.to_owned(),
            is_error: word == "failed",
            lock_mode: if inject { LockMode::Required } else { LockMode::None },
            needs_injection: inject,
            elapsed_seconds: elapsed,
            provider: task.provider.clone(),
            model,
            created_at: unix_now(),
            ..Envelope::default()
        };
        envelope.metadata.insert("task_id".into(), task.task_id.clone().into());
        let name = if task.name.is_empty() { task.task_id.clone() } else { task.name.clone() };
        envelope.metadata.insert("name".into(), name.into());
        envelope.metadata.insert("error".into(), error.into());
        envelope
    }

    async fn deliver(&self, task: &TaskRecord, envelope: Envelope) -> bool {
        let Some(agent) = self.args.agents.get(&task.parent_agent) else {
            tracing::warn!(actor = ACTOR, task = %task.task_id, agent = %task.parent_agent, "Parent agent not running; task message not delivered.");
            return false;
        };
        // The Bus may be (re)starting: it gets a few moments before the message counts as lost.
        let mut attempts = 0;
        loop {
            match agent.bus.submit(envelope.clone()).await {
                Ok(id) => {
                    tracing::info!(actor = ACTOR, task = %task.task_id, envelope_id = %id, "Task message handed to the Bus.");
                    return true;
                }
                Err(BusError::NotRunning) if attempts < BUS_ATTEMPTS => {
                    attempts += 1;
                    tokio::time::sleep(BUS_RETRY).await;
                }
                Err(e) => {
                    tracing::error!(actor = ACTOR, task = %task.task_id, error = %e, "Task message not accepted by the Bus.");
                    return false;
                }
            }
        }
    }

    fn resume(
        &mut self,
        myself: &ActorRef<TaskHubMsg>,
        task_id: &str,
        follow_up: &str,
        from: Option<&str>,
    ) -> Result<String, TaskError> {
        let task = self.task(task_id)?;
        owner_check(&task, from)?;
        if self.runs.contains_key(task_id) || !task.is_finished() {
            return Err(TaskError::Refused(format!("task {task_id} is still running")));
        }
        if task.session_id.is_empty() || task.provider.is_empty() {
            return Err(TaskError::Refused(format!("task {task_id} has no session to resume")));
        }
        if follow_up.trim().is_empty() {
            return Err(TaskError::Refused("the prompt is empty".to_owned()));
        }
        let Some(agent) = self.args.agents.get(&task.parent_agent) else {
            return Err(TaskError::Refused(format!("agent {} is not running", task.parent_agent)));
        };
        let task = self.update(task_id, |t| {
            t.status = status::RUNNING.to_owned();
            t.set("completed_at", 0.0);
            t.set("error", "");
            t.set("result_preview", "");
            t.set("last_question", "");
        })?;
        let memory = task_folders::memory_path(&self.folder(&task));
        let pending = Pending {
            task_id: task_id.to_owned(),
            prompt: task_run::resume_prompt(follow_up, memory.as_str()),
            resume: Some(task.session_id.clone()),
        };
        tracing::info!(actor = ACTOR, task = %task_id, "Task resumed.");
        self.start(myself, &task, &agent, pending);
        Ok(task_id.to_owned())
    }

    async fn ask_parent(&mut self, task_id: &str, question: &str) -> Result<String, TaskError> {
        let task = self.task(task_id)?;
        if self.args.agents.get(&task.parent_agent).is_none() {
            return Err(TaskError::Refused(format!("Error: agent {} is not running", task.parent_agent)));
        }
        let count = task.number("question_count") as i64 + 1;
        let task = self.update(task_id, |t| {
            t.set("question_count", count);
            t.set("last_question", task_run::preview(question, QUESTION_PREVIEW_CHARS));
        })?;
        if let Some(run) = self.runs.get_mut(task_id) {
            run.asked = true;
        }
        let mut envelope = Envelope {
            origin: Origin::TaskQuestion,
            chat_id: task.chat_id,
            topic_id: task.extra.get("thread_id").and_then(serde_json::Value::as_i64),
            transport: Some(task.text("transport")).filter(|t| !t.is_empty()).unwrap_or("tg").to_owned(),
            prompt: task_run::question_prompt(&task, question),
            prompt_preview: task_run::preview(question, PROMPT_PREVIEW_CHARS),
            status: "question".to_owned(),
            lock_mode: LockMode::Required,
            needs_injection: true,
            created_at: unix_now(),
            ..Envelope::default()
        };
        envelope.metadata.insert("task_id".into(), task_id.into());
        let key = format!("task:{task_id}:q{count}");
        if !self.deliver(&task, envelope.with_delivery_key(&key)).await {
            return Err(TaskError::Refused("Error: the question could not be delivered".to_owned()));
        }
        Ok(task_run::question_ack(task_id))
    }

    fn list(&self, from: Option<&str>) -> Vec<TaskRecord> {
        let mut tasks: Vec<TaskRecord> = self
            .registry()
            .tasks
            .into_iter()
            .filter(|t| from.is_none_or(|f| f.is_empty() || t.parent_agent == f))
            .collect();
        tasks.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
        tasks
    }

    async fn cancel(&mut self, task_id: &str, from: Option<&str>) -> Result<bool, TaskError> {
        let task = self.task(task_id)?;
        owner_check(&task, from)?;
        if let Some(run) = self.runs.get_mut(task_id) {
            // The process group first; the worker's end records `cancelled` and the notice.
            run.cancelled = true;
            let _ = run.control.send(Control::Stop);
            tracing::info!(actor = ACTOR, task = %task_id, "Task cancelled; its process group is stopped.");
            return Ok(true);
        }
        if task.status == status::QUEUED {
            self.queue.retain(|p| p.task_id != task_id);
            let task = self.update(task_id, |t| {
                t.status = status::CANCELLED.to_owned();
                t.set("completed_at", unix_now());
            })?;
            let envelope = self.result_envelope(&task, "cancelled", String::new(), "", 0.0);
            let key = format!("task:{task_id}:queued:cancelled");
            self.deliver(&task, envelope.with_delivery_key(&key)).await;
            return Ok(true);
        }
        Ok(false)
    }

    fn delete(&mut self, task_id: &str, from: Option<&str>) -> Result<(), TaskError> {
        let task = self.task(task_id)?;
        owner_check(&task, from)?;
        if self.runs.contains_key(task_id) || !task.is_finished() {
            return Err(TaskError::Running(task_id.to_owned()));
        }
        let folder = self.folder(&task);
        locked_state::update::<TaskRegistry, _>(&self.args.main, |registry| {
            registry.tasks.retain(|t| t.task_id != task_id);
            (true, ())
        })
        .map_err(|e| refused(&e))?;
        let root = folder.parent().map(camino::Utf8Path::to_path_buf).unwrap_or_default();
        if let Err(e) = task_folders::remove(&folder, &root) {
            tracing::warn!(actor = ACTOR, folder = %folder, error = %e, "Task folder could not be deleted.");
        }
        tracing::info!(actor = ACTOR, task = %task_id, "Task deleted.");
        Ok(())
    }

    /// Start-up: tasks a restart cut off become `failed` and their parents are told once (the
    /// notice first, then the entry: a crash in between tells again under the same delivery
    /// key, which the Bus takes once); entries without folder are dropped and folders without
    /// entry deleted, for every agent running. Returns whether some parent is not running yet.
    async fn recover(&mut self, attempt: u32, last: bool) -> bool {
        let registry = self.registry();
        let mut waiting = false;
        for task in registry.tasks.iter().filter(|t| t.status == status::RUNNING && !self.runs.contains_key(&t.task_id))
        {
            let told = if self.args.agents.get(&task.parent_agent).is_some() {
                let mut notice = self.result_envelope(task, "failed", String::new(), INTERRUPTED_ERROR, 0.0);
                notice.is_error = true;
                let key = format!("task:{}:r{}:interrupted", task.task_id, task.number("runs"));
                self.deliver(task, notice.with_delivery_key(&key)).await
            } else {
                false
            };
            if !told && !last {
                waiting = true;
                continue;
            }
            let _ = self.update(&task.task_id, |t| {
                t.status = status::FAILED.to_owned();
                t.set("error", INTERRUPTED_ERROR);
                t.set("completed_at", unix_now());
            });
            tracing::info!(actor = ACTOR, task = %task.task_id, told, "Task cut by a restart marked failed.");
        }
        if attempt == 0 {
            self.clean_orphans();
        }
        waiting
    }

    /// Entries whose folder is gone are dropped; task folders no entry knows are deleted
    /// (only for agents running: their current homes). Stored `tasks_dir`s follow a moved home.
    fn clean_orphans(&self) {
        let agents = self.args.agents.all();
        let changed = locked_state::update::<TaskRegistry, _>(&self.args.main, |registry| {
            let before = registry.tasks.clone();
            registry.tasks.retain(|t| match agents.iter().find(|a| a.name == t.parent_agent) {
                Some(agent) => agent.paths.task_folders().join(&t.task_id).is_dir(),
                None => true,
            });
            for task in &mut registry.tasks {
                if let Some(agent) = agents.iter().find(|a| a.name == task.parent_agent) {
                    task.tasks_dir = agent.paths.task_folders().to_string();
                }
            }
            let dropped = before.len() - registry.tasks.len();
            (registry.tasks != before, (dropped, registry.tasks.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>()))
        });
        let known = match changed {
            Ok((dropped, known)) => {
                if dropped > 0 {
                    tracing::info!(actor = ACTOR, dropped, "Tasks whose folder is gone were dropped.");
                }
                known
            }
            Err(e) => {
                tracing::warn!(actor = ACTOR, error = %e, "Orphan clean-up skipped: tasks.json could not be changed.");
                return;
            }
        };
        for agent in &agents {
            let root = agent.paths.task_folders();
            for folder in task_folders::orphans(&root, &|id| known.iter().any(|k| k == id)) {
                match task_folders::remove(&folder, &root) {
                    Ok(true) => tracing::info!(actor = ACTOR, folder = %folder, "Task folder without entry deleted."),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(actor = ACTOR, folder = %folder, error = %e, "Orphan task folder not deleted.")
                    }
                }
            }
        }
    }
}

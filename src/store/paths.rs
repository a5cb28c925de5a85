//! `DuctorPaths`: every path of a ductor home (ops spec §1), resolved once.

use camino::{Utf8Path, Utf8PathBuf};

/// Directories created (if missing) at every start, relative to the home.
const REQUIRED_DIRS: &[&str] = &[
    "workspace",
    "workspace/memory_system",
    "workspace/cron_tasks",
    "workspace/tools",
    "workspace/tools/user_tools",
    "workspace/tools/cron_tools",
    "workspace/tools/media_tools",
    "workspace/tools/webhook_tools",
    "workspace/tools/agent_tools",
    "workspace/output_to_user",
    "workspace/tasks",
    "workspace/skills",
    "config",
];

/// Why a home could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    /// Neither `DUCTOR_HOME` nor `HOME` is set.
    #[error("cannot find the ductor home: neither DUCTOR_HOME nor HOME is set")]
    NoHome,
    /// The home path is not valid UTF-8.
    #[error("the ductor home path is not valid UTF-8: {0}")]
    NotUtf8(String),
    /// The current directory could not be read to make a relative home absolute.
    #[error("cannot make {path} absolute: {source}")]
    CurrentDir {
        /// The relative path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// All paths of one ductor home (the main agent's, or a sub-agent's under `agents/<name>/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuctorPaths {
    home: Utf8PathBuf,
}

impl DuctorPaths {
    /// Resolves the home: `explicit` → env `DUCTOR_HOME` → `~/.ductor`; `~` expanded, made
    /// absolute, and symlinks resolved when the directory exists.
    pub fn resolve(explicit: Option<&str>) -> Result<Self, PathsError> {
        let env_home = std::env::var("DUCTOR_HOME").ok().filter(|v| !v.trim().is_empty());
        let user_home = std::env::var("HOME").ok();
        let raw = match (explicit, env_home) {
            (Some(path), _) => path.to_owned(),
            (None, Some(path)) => path,
            (None, None) => "~/.ductor".to_owned(),
        };
        let expanded = expand_tilde(&raw, user_home.as_deref())?;
        let absolute = if expanded.is_absolute() {
            expanded
        } else {
            let cwd = std::env::current_dir()
                .map_err(|source| PathsError::CurrentDir { path: expanded.to_string(), source })?;
            let cwd = Utf8PathBuf::from_path_buf(cwd).map_err(|p| PathsError::NotUtf8(p.display().to_string()))?;
            cwd.join(expanded)
        };
        let home = match absolute.canonicalize_utf8() {
            Ok(resolved) => resolved,
            Err(_) => absolute,
        };
        Ok(Self { home })
    }

    /// Paths for a home at exactly `home` (no resolution).
    pub fn at(home: impl Into<Utf8PathBuf>) -> Self {
        Self { home: home.into() }
    }

    /// The home of sub-agent `name`: `<home>/agents/<name>/`.
    #[must_use]
    pub fn sub_agent(&self, name: &str) -> Self {
        Self { home: self.home.join("agents").join(name) }
    }

    /// Whether this home belongs to a sub-agent (its parent directory is named `agents`).
    pub fn is_sub_agent(&self) -> bool {
        self.home.parent().and_then(Utf8Path::file_name) == Some("agents")
    }

    /// The home directory.
    pub fn home(&self) -> &Utf8Path {
        &self.home
    }
    /// `config/`.
    pub fn config_dir(&self) -> Utf8PathBuf {
        self.home.join("config")
    }
    /// `config/config.json`.
    pub fn config_file(&self) -> Utf8PathBuf {
        self.home.join("config/config.json")
    }
    /// `config/<provider>_models.json` model cache (codex, gemini, antigravity).
    pub fn model_cache(&self, provider: &str) -> Utf8PathBuf {
        self.home.join(format!("config/{provider}_models.json"))
    }
    /// `sessions.json`.
    pub fn sessions(&self) -> Utf8PathBuf {
        self.home.join("sessions.json")
    }
    /// `named_sessions.json`.
    pub fn named_sessions(&self) -> Utf8PathBuf {
        self.home.join("named_sessions.json")
    }
    /// `tasks.json`.
    pub fn tasks(&self) -> Utf8PathBuf {
        self.home.join("tasks.json")
    }
    /// `cron_jobs.json`.
    pub fn cron_jobs(&self) -> Utf8PathBuf {
        self.home.join("cron_jobs.json")
    }
    /// `webhooks.json`.
    pub fn webhooks(&self) -> Utf8PathBuf {
        self.home.join("webhooks.json")
    }
    /// `agents.json`.
    pub fn agents(&self) -> Utf8PathBuf {
        self.home.join("agents.json")
    }
    /// `chat_activity.json`.
    pub fn chat_activity(&self) -> Utf8PathBuf {
        self.home.join("chat_activity.json")
    }
    /// `startup_state.json`.
    pub fn startup_state(&self) -> Utf8PathBuf {
        self.home.join("startup_state.json")
    }
    /// `inflight_turns.json`.
    pub fn inflight_turns(&self) -> Utf8PathBuf {
        self.home.join("inflight_turns.json")
    }
    /// `outbox.jsonl`: the Bus's durable journal of envelopes not yet confirmed (ductor-rs only).
    pub fn outbox(&self) -> Utf8PathBuf {
        self.home.join("outbox.jsonl")
    }
    /// `interagent.token`: the internal API's token (mode 0600).
    pub fn interagent_token(&self) -> Utf8PathBuf {
        self.home.join("interagent.token")
    }
    /// `cron_runs.jsonl`: unattended runs (cron jobs, webhook tasks) not yet finished.
    pub fn run_journal(&self) -> Utf8PathBuf {
        self.home.join("cron_runs.jsonl")
    }
    /// `inbox.jsonl`: messages received and not yet answered.
    pub fn inbox(&self) -> Utf8PathBuf {
        self.home.join("inbox.jsonl")
    }
    /// `bot.pid`.
    pub fn pid_file(&self) -> Utf8PathBuf {
        self.home.join("bot.pid")
    }
    /// `restart-sentinel.json`.
    pub fn restart_sentinel(&self) -> Utf8PathBuf {
        self.home.join("restart-sentinel.json")
    }
    /// `restart-requested`: any content; its presence asks the running service to restart.
    pub fn restart_marker(&self) -> Utf8PathBuf {
        self.home.join("restart-requested")
    }
    /// `upgrade-sentinel.json`.
    pub fn upgrade_sentinel(&self) -> Utf8PathBuf {
        self.home.join("upgrade-sentinel.json")
    }
    /// `.env` (user secrets).
    pub fn env_file(&self) -> Utf8PathBuf {
        self.home.join(".env")
    }
    /// `SHAREDMEMORY.md` (main home only).
    pub fn shared_memory(&self) -> Utf8PathBuf {
        self.home.join("SHAREDMEMORY.md")
    }
    /// `logs/`.
    pub fn logs_dir(&self) -> Utf8PathBuf {
        self.home.join("logs")
    }
    /// `logs/agent.log`.
    pub fn log_file(&self) -> Utf8PathBuf {
        self.home.join("logs/agent.log")
    }
    /// The Matrix store directory: `store_path` relative to the home (absolute kept).
    pub fn matrix_store(&self, store_path: &str) -> Utf8PathBuf {
        self.home.join(store_path)
    }
    /// `workspace/` (cwd of every CLI run).
    pub fn workspace(&self) -> Utf8PathBuf {
        self.home.join("workspace")
    }
    /// `workspace/memory_system/MAINMEMORY.md`.
    pub fn main_memory(&self) -> Utf8PathBuf {
        self.home.join("workspace/memory_system/MAINMEMORY.md")
    }
    /// `workspace/JOIN_NOTIFICATION.md`.
    pub fn join_notification(&self) -> Utf8PathBuf {
        self.home.join("workspace/JOIN_NOTIFICATION.md")
    }
    /// `workspace/cron_tasks/`.
    pub fn cron_tasks(&self) -> Utf8PathBuf {
        self.home.join("workspace/cron_tasks")
    }
    /// `workspace/tools/`.
    pub fn tools(&self) -> Utf8PathBuf {
        self.home.join("workspace/tools")
    }
    /// `workspace/output_to_user/`.
    pub fn output_to_user(&self) -> Utf8PathBuf {
        self.home.join("workspace/output_to_user")
    }
    /// Received media for a transport: `workspace/{telegram,matrix,api}_files/`.
    pub fn media_files(&self, transport_dir: &str) -> Utf8PathBuf {
        self.home.join(format!("workspace/{transport_dir}_files"))
    }
    /// `workspace/tasks/`.
    pub fn task_folders(&self) -> Utf8PathBuf {
        self.home.join("workspace/tasks")
    }
    /// `workspace/skills/`.
    pub fn skills(&self) -> Utf8PathBuf {
        self.home.join("workspace/skills")
    }

    /// Creates every required directory (and `logs/` for the main agent).
    pub fn ensure_dirs(&self) -> Result<(), crate::store::atomic::StoreError> {
        let logs = (!self.is_sub_agent()).then_some("logs");
        for dir in REQUIRED_DIRS.iter().copied().chain(logs) {
            let path = self.home.join(dir);
            std::fs::create_dir_all(&path)
                .map_err(|e| crate::store::atomic::StoreError::io("create directory", &path, e))?;
        }
        Ok(())
    }
}

fn expand_tilde(raw: &str, user_home: Option<&str>) -> Result<Utf8PathBuf, PathsError> {
    let rest = if raw == "~" { Some("") } else { raw.strip_prefix("~/") };
    match rest {
        None => Ok(Utf8PathBuf::from(raw)),
        Some(rest) => {
            let home = user_home.filter(|h| !h.is_empty()).ok_or(PathsError::NoHome)?;
            Ok(Utf8PathBuf::from(home).join(rest))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_original() {
        let paths = DuctorPaths::at("/h");
        assert_eq!(paths.config_file(), "/h/config/config.json");
        assert_eq!(paths.sessions(), "/h/sessions.json");
        assert_eq!(paths.workspace(), "/h/workspace");
        assert_eq!(paths.logs_dir(), "/h/logs");
        assert_eq!(paths.log_file(), "/h/logs/agent.log");
        assert_eq!(paths.pid_file(), "/h/bot.pid");
        assert_eq!(paths.media_files("telegram"), "/h/workspace/telegram_files");
        assert_eq!(paths.matrix_store("matrix_store"), "/h/matrix_store");
        assert_eq!(paths.matrix_store("/abs/store"), "/abs/store");
    }

    #[test]
    fn sub_agent_home_is_under_agents() {
        let main = DuctorPaths::at("/h");
        let helper = main.sub_agent("helper");
        assert_eq!(helper.home(), "/h/agents/helper");
        assert!(helper.is_sub_agent());
        assert!(!main.is_sub_agent());
    }

    #[test]
    fn tilde_is_expanded() {
        assert_eq!(expand_tilde("~/.ductor", Some("/home/a")).unwrap(), "/home/a/.ductor");
        assert_eq!(expand_tilde("/x", None).unwrap(), "/x");
        assert!(expand_tilde("~/x", None).is_err());
    }

    #[test]
    fn ensure_dirs_creates_the_tree_and_no_logs_for_sub_agents() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let main = DuctorPaths::at(root.clone());
        main.ensure_dirs().unwrap();
        for d in REQUIRED_DIRS {
            assert!(root.join(d).is_dir(), "{d}");
        }
        assert!(root.join("logs").is_dir());
        let sub = main.sub_agent("helper");
        sub.ensure_dirs().unwrap();
        assert!(sub.workspace().is_dir());
        assert!(!sub.logs_dir().exists());
    }
}

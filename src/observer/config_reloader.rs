//! The config reloader (ops spec §3): watches `config/config.json` with notify (no polling: it
//! wakes only when the file changes) and, when its content changed, applies the hot keys
//! through the agent (`on_apply`, the same config path as a start), warns once about keys that
//! wait for a restart, and keeps the running config when the file is invalid (saying why). It
//! records what it applied in `config_applied.json` for `ductor status`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::Value;

use crate::core::config::{Config, defaults_json, resolve};
use crate::core::config_reload::{plan, with_hot_keys};
use crate::core::status_view::ConfigApplied;
use crate::runtime::file_watch::FileWatch;
use crate::store::config_file::read_raw_config;
use crate::store::paths::DuctorPaths;

/// How long the file must be quiet before it is read (editors write in several steps).
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Hands a reloaded config to the agent: the new config and the hot keys that changed.
pub type ApplyConfig = Arc<dyn Fn(Arc<Config>, Vec<String>) + Send + Sync>;

/// Messages of the config reloader.
#[derive(Debug)]
pub enum ConfigReloaderMsg {
    /// The file changed (from its watch, after the debounce).
    FileChanged,
}

/// Construction arguments.
#[derive(Clone)]
pub struct ConfigReloaderArgs {
    /// The agent's home (its `config/config.json`).
    pub paths: DuctorPaths,
    /// Applies a reloaded config.
    pub on_apply: ApplyConfig,
}

impl std::fmt::Debug for ConfigReloaderArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigReloaderArgs").field("paths", &self.paths).finish_non_exhaustive()
    }
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct ConfigReloader;

/// Its state.
pub struct ConfigReloaderState {
    args: ConfigReloaderArgs,
    /// The merged config the service runs with.
    running: Value,
    /// Restart keys already warned about, with the value warned about.
    warned: BTreeMap<String, Value>,
    applied: ConfigApplied,
    _watch: Option<FileWatch>,
}

impl std::fmt::Debug for ConfigReloaderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigReloaderState").field("applied", &self.applied).finish_non_exhaustive()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The file's merged JSON, or why it cannot be used.
fn read_merged(paths: &DuctorPaths) -> Result<Value, String> {
    let raw = read_raw_config(&paths.config_file()).map_err(|e| e.to_string())?;
    resolve(raw).map(|r| r.merged).map_err(|problem| problem.to_string())
}

impl Actor for ConfigReloader {
    type Msg = ConfigReloaderMsg;
    type State = ConfigReloaderState;
    type Arguments = ConfigReloaderArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConfigReloaderMsg>,
        args: ConfigReloaderArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // The config the service started with; a change made since then is applied at once.
        let running = crate::store::config_applied::started_with(&args.paths.config_file())
            .or_else(|| read_merged(&args.paths).ok())
            .unwrap_or(Value::Null);
        myself.cast(ConfigReloaderMsg::FileChanged)?;
        let watch = FileWatch::start(&args.paths.config_file(), DEBOUNCE, move || {
            let _ = myself.cast(ConfigReloaderMsg::FileChanged);
        })
        .map_err(|e| tracing::warn!(actor = "config_reloader", error = %e, "Cannot watch config.json; changes need a restart."))
        .ok();
        let applied = ConfigApplied { applied_at: now(), waiting_for_restart: Vec::new(), rejected: None };
        crate::store::config_applied::record(&args.paths, &applied);
        Ok(ConfigReloaderState { args, running, warned: BTreeMap::new(), applied, _watch: watch })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ConfigReloaderMsg>,
        msg: ConfigReloaderMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConfigReloaderMsg::FileChanged => state.reload(),
        }
        Ok(())
    }
}

impl ConfigReloaderState {
    fn reload(&mut self) {
        let file = match read_merged(&self.args.paths) {
            Ok(file) => file,
            Err(why) => {
                if self.applied.rejected.as_ref() != Some(&why) {
                    tracing::warn!(actor = "config_reloader", path = %self.args.paths.config_file(), problem = %why,
                        "config.json changed but cannot be used; the running config stays.");
                    self.applied.rejected = Some(why);
                    crate::store::config_applied::record(&self.args.paths, &self.applied);
                }
                return;
            }
        };
        let was_rejected = self.applied.rejected.take().is_some();
        let changes = plan(&self.running, &file, &defaults_json());
        let mut record = was_rejected;
        if !changes.hot.is_empty() {
            record = true;
            let merged = with_hot_keys(&self.running, &file, &changes.hot);
            match resolve(merged.clone()) {
                Ok(resolved) => {
                    tracing::info!(actor = "config_reloader", keys = ?changes.hot, "Config hot-reloaded.");
                    (self.args.on_apply)(Arc::new(resolved.config), changes.hot.clone());
                    self.running = merged;
                    self.applied.applied_at = now();
                }
                Err(problem) => {
                    tracing::warn!(actor = "config_reloader", problem = %problem, "The changed keys do not make a valid config; the running config stays.");
                    self.applied.rejected = Some(problem.to_string());
                }
            }
        }
        let fresh: Vec<&String> =
            changes.restart.iter().filter(|key| self.warned.get(*key) != file.get(key.as_str())).collect();
        if !fresh.is_empty() {
            let keys: Vec<&str> = fresh.iter().map(|k| k.as_str()).collect();
            tracing::warn!(actor = "config_reloader", keys = %keys.join(", "), "config.json changed keys that only a restart applies (not applied).");
            for key in fresh {
                self.warned.insert(key.clone(), file.get(key.as_str()).cloned().unwrap_or(Value::Null));
            }
        }
        if record || changes.restart != self.applied.waiting_for_restart {
            self.applied.waiting_for_restart = changes.restart;
            crate::store::config_applied::record(&self.args.paths, &self.applied);
        }
    }
}

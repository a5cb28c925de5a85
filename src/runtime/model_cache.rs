//! The CodexModels observer: keeps the Codex model list (core spec §7.10). At start it always
//! asks `codex app-server`; then every hour it reloads `config/codex_models.json` or, when the
//! file is missing, empty or older than a day, asks again. A discovery that finds nothing never
//! replaces a non-empty file; with neither, the built-in fallback list is used (not written).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::core::model_cache::{CodexModel, CodexModelsFile, fallback, needs_refresh};
use crate::core::state::timestamp_now;
use crate::provider::codex_models::{DISCOVERY_TIMEOUT, discover};
use crate::store::atomic::{self, Durability, Loaded};
use crate::store::paths::DuctorPaths;

/// The known Codex models, shared with the Orchestrator.
#[derive(Debug, Clone, Default)]
pub struct ModelCatalog {
    codex: Arc<RwLock<Vec<CodexModel>>>,
}

impl ModelCatalog {
    /// The Codex models (the fallback list until something was discovered or loaded).
    pub fn codex(&self) -> Vec<CodexModel> {
        let models = self.codex.read().unwrap_or_else(PoisonError::into_inner).clone();
        if models.is_empty() { fallback() } else { models }
    }

    fn set_codex(&self, models: Vec<CodexModel>) {
        *self.codex.write().unwrap_or_else(PoisonError::into_inner) = models;
    }
}

/// Messages of the observer.
#[derive(Debug)]
pub enum ModelCacheMsg {
    /// Refresh now (`force`: ask Codex whatever the file says).
    Refresh {
        /// Ask even when the file is fresh.
        force: bool,
    },
}

/// Construction arguments.
#[derive(Debug, Clone)]
pub struct ModelCacheArgs {
    /// The agent's home (the file lives in `config/`).
    pub paths: DuctorPaths,
    /// Where the models go.
    pub catalog: ModelCatalog,
    /// The Codex program (`codex`).
    pub program: String,
    /// Environment for it (e.g. `PATH`).
    pub env: Vec<(String, String)>,
    /// How often to look again.
    pub every: Duration,
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct ModelCache;

impl Actor for ModelCache {
    type Msg = ModelCacheMsg;
    type State = ModelCacheArgs;
    type Arguments = ModelCacheArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ModelCacheMsg>,
        args: ModelCacheArgs,
    ) -> Result<ModelCacheArgs, ActorProcessingErr> {
        let _ = myself.cast(ModelCacheMsg::Refresh { force: true });
        myself.send_interval(args.every, || ModelCacheMsg::Refresh { force: false });
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ModelCacheMsg>,
        msg: ModelCacheMsg,
        state: &mut ModelCacheArgs,
    ) -> Result<(), ActorProcessingErr> {
        let ModelCacheMsg::Refresh { force } = msg;
        let path = state.paths.model_cache("codex");
        let file = atomic::load_json::<CodexModelsFile>(&path).found();
        if !force && !needs_refresh(file.as_ref(), chrono::Utc::now()) {
            if let Some(file) = file {
                state.catalog.set_codex(file.models);
            }
            return Ok(());
        }
        match discover(&state.program, &state.env, DISCOVERY_TIMEOUT).await {
            Ok(models) if !models.is_empty() => {
                tracing::info!(actor = "codex_models", count = models.len(), "Codex models discovered.");
                let file = CodexModelsFile { last_updated: timestamp_now(), models: models.clone() };
                match serde_json::to_string_pretty(&file) {
                    Ok(text) => {
                        if let Err(e) = atomic::write_bytes_atomic(&path, text.as_bytes(), Durability::NoFsync) {
                            tracing::warn!(actor = "codex_models", error = %e, "Could not write the Codex model cache.");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(actor = "codex_models", error = %e, "Could not serialise the Codex model cache.")
                    }
                }
                state.catalog.set_codex(models);
            }
            outcome => {
                if let Err(e) = &outcome {
                    tracing::debug!(actor = "codex_models", error = %e, "No Codex models discovered.");
                }
                if let Some(file) = file.filter(|f| !f.models.is_empty()) {
                    state.catalog.set_codex(file.models);
                }
            }
        }
        Ok(())
    }
}

/// Loads the cache file into a catalog without asking Codex (tests, start-up).
pub fn load_file(paths: &DuctorPaths) -> Option<CodexModelsFile> {
    match atomic::load_json::<CodexModelsFile>(&paths.model_cache("codex")) {
        Loaded::Found(file) => Some(file),
        Loaded::Missing | Loaded::Quarantined { .. } => None,
    }
}

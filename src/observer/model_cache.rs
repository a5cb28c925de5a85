//! The model-cache observer: keeps the Codex and Gemini model lists (core spec §7.10). At start
//! it always asks `codex app-server` and reads the installed Gemini CLI; then every hour it
//! reloads `config/codex_models.json` / `config/gemini_models.json` or, when a file is missing,
//! empty or older than a day, discovers again. A discovery that finds nothing never replaces a
//! non-empty file; with neither, the built-in fallback list is used (not written).

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::chat::model_catalog::ModelCatalog;
use crate::core::model_cache::{CodexModelsFile, GeminiModelsFile, needs_refresh};
use crate::core::state::timestamp_now;
use crate::provider::codex_models::{DISCOVERY_TIMEOUT, discover};
use crate::store::atomic::{self, Durability, Loaded};
use crate::store::paths::DuctorPaths;

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
        refresh_codex(state, force).await;
        refresh_gemini(state, force).await;
        Ok(())
    }
}

fn write_cache<T: serde::Serialize>(path: &camino::Utf8Path, file: &T) {
    match serde_json::to_string_pretty(file) {
        Ok(text) => {
            if let Err(e) = atomic::write_bytes_atomic(path, text.as_bytes(), Durability::NoFsync) {
                tracing::warn!(actor = "model_cache", path = %path, error = %e, "Could not write a model cache.");
            }
        }
        Err(e) => tracing::warn!(actor = "model_cache", path = %path, error = %e, "Could not serialise a model cache."),
    }
}

async fn refresh_gemini(state: &ModelCacheArgs, force: bool) {
    let path = state.paths.model_cache("gemini");
    let file = atomic::load_json::<GeminiModelsFile>(&path).found();
    if !force
        && !needs_refresh(file.as_ref().map(|f| (f.last_updated.as_str(), !f.models.is_empty())), chrono::Utc::now())
    {
        if let Some(file) = file {
            state.catalog.set_gemini(file.models);
        }
        return;
    }
    let search = state
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    match tokio::task::spawn_blocking(move || crate::provider::gemini_models::discover(&search)).await {
        Ok(Ok(models)) => {
            tracing::info!(actor = "model_cache", count = models.len(), "Gemini models discovered.");
            write_cache(&path, &GeminiModelsFile { last_updated: timestamp_now(), models: models.clone() });
            state.catalog.set_gemini(models);
        }
        outcome => {
            tracing::debug!(actor = "model_cache", outcome = ?outcome.map(|r| r.map(|m| m.len())), "No Gemini models discovered.");
            if let Some(file) = file.filter(|f| !f.models.is_empty()) {
                state.catalog.set_gemini(file.models);
            }
        }
    }
}

async fn refresh_codex(state: &ModelCacheArgs, force: bool) {
    let path = state.paths.model_cache("codex");
    let file = atomic::load_json::<CodexModelsFile>(&path).found();
    if !force
        && !needs_refresh(file.as_ref().map(|f| (f.last_updated.as_str(), !f.models.is_empty())), chrono::Utc::now())
    {
        if let Some(file) = file {
            state.catalog.set_codex(file.models);
        }
        return;
    }
    match discover(&state.program, &state.env, DISCOVERY_TIMEOUT).await {
        Ok(models) if !models.is_empty() => {
            tracing::info!(actor = "codex_models", count = models.len(), "Codex models discovered.");
            write_cache(&path, &CodexModelsFile { last_updated: timestamp_now(), models: models.clone() });
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
}

/// Loads the cache file into a catalog without asking Codex (tests, start-up).
pub fn load_file(paths: &DuctorPaths) -> Option<CodexModelsFile> {
    match atomic::load_json::<CodexModelsFile>(&paths.model_cache("codex")) {
        Loaded::Found(file) => Some(file),
        Loaded::Missing | Loaded::Quarantined { .. } => None,
    }
}

//! The model lists the chat layer offers (selector, `@model` directives): Codex models and
//! Gemini ids, filled by the model-cache observer and read by the Orchestrator.

use std::sync::{Arc, PoisonError, RwLock};

use crate::core::model_cache::{CodexModel, fallback, gemini_fallback};

/// The known Codex models, shared with the Orchestrator.
#[derive(Debug, Clone, Default)]
pub struct ModelCatalog {
    codex: Arc<RwLock<Vec<CodexModel>>>,
    gemini: Arc<RwLock<Vec<String>>>,
}

impl ModelCatalog {
    /// The Codex models (the fallback list until something was discovered or loaded).
    pub fn codex(&self) -> Vec<CodexModel> {
        let models = self.codex.read().unwrap_or_else(PoisonError::into_inner).clone();
        if models.is_empty() { fallback() } else { models }
    }

    /// Replaces the Codex models (the model-cache observer).
    pub fn set_codex(&self, models: Vec<CodexModel>) {
        *self.codex.write().unwrap_or_else(PoisonError::into_inner) = models;
    }

    /// The Gemini model ids (the fallback list until something was discovered or loaded).
    pub fn gemini(&self) -> Vec<String> {
        let models = self.gemini.read().unwrap_or_else(PoisonError::into_inner).clone();
        if models.is_empty() { gemini_fallback() } else { models }
    }

    /// Replaces the Gemini model ids (the model-cache observer).
    pub fn set_gemini(&self, models: Vec<String>) {
        *self.gemini.write().unwrap_or_else(PoisonError::into_inner) = models;
    }
}

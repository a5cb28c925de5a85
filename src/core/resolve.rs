//! `resolve_cli_config` (core spec §6.3): the provider, model and reasoning effort a stateless
//! or background run uses, from the config and optional overrides — validated.

use crate::core::model_cache::CodexModel;

/// A validated target for a background / one-shot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// `claude`, `codex` or `gemini`.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Codex reasoning effort (empty when none applies).
    pub reasoning_effort: String,
}

/// Why a target was refused (the text is the reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Not one of claude, codex, gemini.
    #[error("Provider '{0}' is not supported here (use claude, codex or gemini).")]
    UnsupportedProvider(String),
    /// A model the provider does not have.
    #[error("Model '{model}' is not a known {provider} model.")]
    UnknownModel {
        /// The provider.
        provider: String,
        /// The model.
        model: String,
    },
    /// An effort the Codex model does not support.
    #[error("{model} does not support reasoning effort {effort}; it supports: {supported}.")]
    UnsupportedEffort {
        /// The model.
        model: String,
        /// The effort asked for.
        effort: String,
        /// What it supports.
        supported: String,
    },
}

/// What is known to resolve against.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Codex models of the cache.
    pub codex: &'a [CodexModel],
    /// Discovered Gemini models (empty: any `gemini-…` id is accepted).
    pub gemini: &'a [String],
}

/// Resolves `(provider, model, effort)` from overrides over the configured values.
pub fn resolve_target(
    configured: (&str, &str, &str),
    overrides: (Option<&str>, Option<&str>, Option<&str>),
    known: Known<'_>,
) -> Result<ResolvedTarget, ResolveError> {
    let (config_provider, config_model, config_effort) = configured;
    let (provider_override, model_override, effort_override) = overrides;
    let provider = provider_override.unwrap_or(config_provider).to_owned();
    let model = model_override.unwrap_or(config_model).to_owned();
    let unknown = || ResolveError::UnknownModel { provider: provider.clone(), model: model.clone() };
    match provider.as_str() {
        "claude" => {
            if !crate::core::model_cache::CLAUDE_MODELS.contains(&model.as_str()) {
                return Err(unknown());
            }
            Ok(ResolvedTarget { provider, model, reasoning_effort: String::new() })
        }
        "gemini" => {
            let ok = crate::core::model_cache::GEMINI_ALIASES.contains(&model.as_str())
                || if known.gemini.is_empty() {
                    model.starts_with("gemini-") || model.starts_with("auto-gemini-")
                } else {
                    known.gemini.contains(&model)
                };
            if !ok {
                return Err(unknown());
            }
            Ok(ResolvedTarget { provider, model, reasoning_effort: String::new() })
        }
        "codex" => {
            let entry = known.codex.iter().find(|m| m.id == model).ok_or_else(unknown)?;
            let supports = |effort: &str| entry.supported_efforts.iter().any(|e| e == effort);
            let reasoning_effort = match effort_override {
                Some(effort) if supports(effort) => effort.to_owned(),
                Some(effort) => {
                    return Err(ResolveError::UnsupportedEffort {
                        model: model.clone(),
                        effort: effort.to_owned(),
                        supported: entry.supported_efforts.join(", "),
                    });
                }
                None if supports(config_effort) => config_effort.to_owned(),
                None => String::new(),
            };
            Ok(ResolvedTarget { provider, model, reasoning_effort })
        }
        other => Err(ResolveError::UnsupportedProvider(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codex() -> Vec<CodexModel> {
        vec![CodexModel {
            id: "gpt-mini".into(),
            display_name: "mini".into(),
            description: String::new(),
            supported_efforts: vec!["medium".into(), "high".into()],
            default_effort: "medium".into(),
            is_default: false,
        }]
    }

    #[test]
    fn the_spec_checks() {
        let models = codex();
        let known = Known { codex: &models, gemini: &[] };
        let err = resolve_target(("claude", "opus", "medium"), (Some("codex"), Some("x"), None), known).unwrap_err();
        assert_eq!(err, ResolveError::UnknownModel { provider: "codex".into(), model: "x".into() });
        let err = resolve_target(("codex", "gpt-mini", "medium"), (None, None, Some("xhigh")), known).unwrap_err();
        assert!(matches!(err, ResolveError::UnsupportedEffort { .. }));
        let ok = resolve_target(("codex", "gpt-mini", "xhigh"), (None, None, None), known).unwrap();
        assert_eq!(ok.reasoning_effort, "", "an unsupported configured effort is dropped");
        assert!(
            resolve_target(("claude", "claude-opus-4-7", "medium"), (None, None, None), known).is_err(),
            "full ids are refused here"
        );
        assert!(resolve_target(("gemini", "gemini-2.5-pro", ""), (None, None, None), known).is_ok());
        assert!(resolve_target(("antigravity", "x", ""), (None, None, None), known).is_err());
    }
}

//! `resolve_cli_config` (core spec §6.3): the provider, model and reasoning effort a stateless
//! or background run uses, from the config and optional overrides — validated; and the whole
//! execution config of a cron job's or webhook `cron_task`'s one-shot run (ops spec §7.6).

use std::time::Duration;

use crate::core::config::Config;
use crate::core::model_cache::CodexModel;

/// The status a one-shot run records (and delivers) when its execution config is refused.
///
/// Divergence (ops spec §20 item 16): the original only logged such a refusal; ductor-rs reports
/// it as a result with this status and the [`ResolveError`] as its text.
pub const CONFIG_ERROR_STATUS: &str = "error:config";

/// The one-shot timeout when `cli_timeout` is not a positive number of seconds.
pub const DEFAULT_ONESHOT_TIMEOUT: Duration = Duration::from_secs(1800);

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

/// A cron job's or webhook hook's own execution settings; an empty string counts as unset
/// (the original's `job.value or config.value`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskOverrides<'a> {
    /// `provider` of the job.
    pub provider: Option<&'a str>,
    /// `model` of the job.
    pub model: Option<&'a str>,
    /// `reasoning_effort` of the job.
    pub reasoning_effort: Option<&'a str>,
    /// `cli_parameters` of the job (after the configured ones).
    pub cli_parameters: &'a [String],
}

/// How a one-shot run is executed (ops spec §7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionConfig {
    /// Provider, model and (Codex only) reasoning effort, validated.
    pub target: ResolvedTarget,
    /// `config.cli_parameters[provider]` followed by the job's.
    pub cli_parameters: Vec<String>,
    /// The configured permission mode (never per job).
    pub permission_mode: String,
    /// `cli_timeout`.
    pub timeout: Duration,
}

/// Resolves and validates the execution config of a one-shot run from the config and the job's
/// overrides: provider and model as [`resolve_target`] checks them (only claude, codex, gemini;
/// Claude only by alias; Codex only from the model list in `known`), the effort by the
/// job-vs-global rule, CLI parameters configured-then-job, permission mode and timeout global.
pub fn resolve_execution(
    config: &Config,
    overrides: &TaskOverrides<'_>,
    known: Known<'_>,
) -> Result<ExecutionConfig, ResolveError> {
    fn set(value: Option<&str>) -> Option<&str> {
        value.filter(|v| !v.is_empty())
    }
    let target = resolve_target(
        (&config.provider, &config.model, &config.reasoning_effort),
        (set(overrides.provider), set(overrides.model), set(overrides.reasoning_effort)),
        known,
    )?;
    let configured = match target.provider.as_str() {
        "claude" => &config.cli_parameters.claude,
        "codex" => &config.cli_parameters.codex,
        _ => &config.cli_parameters.gemini,
    };
    let cli_parameters = configured.iter().chain(overrides.cli_parameters).cloned().collect();
    let timeout = Duration::try_from_secs_f64(config.cli_timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .unwrap_or(DEFAULT_ONESHOT_TIMEOUT);
    Ok(ExecutionConfig { target, cli_parameters, permission_mode: config.permission_mode.clone(), timeout })
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

    fn config(provider: &str, model: &str) -> Config {
        let mut config = Config { provider: provider.into(), model: model.into(), ..Config::default() };
        config.cli_parameters.claude = vec!["--verbose-cost".into()];
        config.cli_parameters.codex = vec!["-c".into(), "a=1".into()];
        config.cli_parameters.gemini = vec!["--sandbox".into()];
        config
    }

    #[test]
    fn job_overrides_win_and_empty_ones_count_as_unset() {
        let models = codex();
        let known = Known { codex: &models, gemini: &[] };
        let job_params = vec!["--max-turns".to_owned(), "3".to_owned()];
        let overrides = TaskOverrides {
            provider: Some("codex"),
            model: Some("gpt-mini"),
            reasoning_effort: Some("high"),
            cli_parameters: &job_params,
        };
        let exec = resolve_execution(&config("claude", "opus"), &overrides, known).unwrap();
        assert_eq!(
            exec.target,
            ResolvedTarget { provider: "codex".into(), model: "gpt-mini".into(), reasoning_effort: "high".into() }
        );
        assert_eq!(exec.cli_parameters, ["-c", "a=1", "--max-turns", "3"], "configured first, then the job's");
        assert_eq!(exec.permission_mode, "bypassPermissions", "always the configured mode");
        assert_eq!(exec.timeout, Duration::from_secs(1800));

        let empty =
            TaskOverrides { provider: Some(""), model: Some(""), reasoning_effort: Some(""), cli_parameters: &[] };
        let exec = resolve_execution(&config("claude", "sonnet"), &empty, known).unwrap();
        assert_eq!((exec.target.provider.as_str(), exec.target.model.as_str()), ("claude", "sonnet"));
        assert_eq!(exec.target.reasoning_effort, "", "effort is Codex only");
        assert_eq!(exec.cli_parameters, ["--verbose-cost"]);
    }

    #[test]
    fn refusals_name_the_problem() {
        let models = codex();
        let known = Known { codex: &models, gemini: &[] };
        let none = TaskOverrides::default();
        let err = resolve_execution(&config("antigravity", "opus"), &none, known).unwrap_err();
        assert_eq!(err, ResolveError::UnsupportedProvider("antigravity".into()));
        assert_eq!(err.to_string(), "Provider 'antigravity' is not supported here (use claude, codex or gemini).");
        let job = TaskOverrides { provider: Some("openai"), ..TaskOverrides::default() };
        assert!(matches!(
            resolve_execution(&config("claude", "opus"), &job, known),
            Err(ResolveError::UnsupportedProvider(p)) if p == "openai"
        ));
        let job = TaskOverrides { model: Some("claude-opus-4-7"), ..TaskOverrides::default() };
        let err = resolve_execution(&config("claude", "opus"), &job, known).unwrap_err();
        assert_eq!(err.to_string(), "Model 'claude-opus-4-7' is not a known claude model.");
        let job = TaskOverrides { model: Some("gpt-9"), ..TaskOverrides::default() };
        let err = resolve_execution(&config("codex", "gpt-mini"), &job, known).unwrap_err();
        assert_eq!(err, ResolveError::UnknownModel { provider: "codex".into(), model: "gpt-9".into() });
        let no_list = Known { codex: &[], gemini: &[] };
        assert!(
            resolve_execution(&config("codex", "gpt-mini"), &none, no_list).is_err(),
            "no Codex list: nothing valid"
        );
        let job = TaskOverrides { reasoning_effort: Some("xhigh"), ..TaskOverrides::default() };
        let err = resolve_execution(&config("codex", "gpt-mini"), &job, known).unwrap_err();
        assert_eq!(err.to_string(), "gpt-mini does not support reasoning effort xhigh; it supports: medium, high.");
        let mut global_xhigh = config("codex", "gpt-mini");
        global_xhigh.reasoning_effort = "xhigh".into();
        assert_eq!(resolve_execution(&global_xhigh, &none, known).unwrap().target.reasoning_effort, "");
    }

    #[test]
    fn gemini_models_by_alias_list_or_prefix() {
        let none = TaskOverrides::default();
        let listed = vec!["gemini-3-pro".to_owned()];
        let with_list = Known { codex: &[], gemini: &listed };
        let without = Known { codex: &[], gemini: &[] };
        assert!(resolve_execution(&config("gemini", "flash"), &none, with_list).is_ok());
        assert!(resolve_execution(&config("gemini", "gemini-3-pro"), &none, with_list).is_ok());
        assert!(resolve_execution(&config("gemini", "gemini-2.5-pro"), &none, with_list).is_err(), "not listed");
        assert!(resolve_execution(&config("gemini", "gemini-2.5-pro"), &none, without).is_ok());
        assert!(resolve_execution(&config("gemini", "auto-gemini-3"), &none, without).is_ok());
        assert!(resolve_execution(&config("gemini", "palm"), &none, without).is_err());
        let exec = resolve_execution(&config("gemini", "flash"), &none, without).unwrap();
        assert_eq!(exec.cli_parameters, ["--sandbox"]);
    }

    #[test]
    fn timeout_is_cli_timeout() {
        let models = codex();
        let known = Known { codex: &models, gemini: &[] };
        let mut c = config("claude", "opus");
        c.cli_timeout = 90.5;
        assert_eq!(
            resolve_execution(&c, &TaskOverrides::default(), known).unwrap().timeout,
            Duration::from_millis(90_500)
        );
        c.cli_timeout = 0.0;
        assert_eq!(resolve_execution(&c, &TaskOverrides::default(), known).unwrap().timeout, DEFAULT_ONESHOT_TIMEOUT);
        c.cli_timeout = -5.0;
        assert_eq!(resolve_execution(&c, &TaskOverrides::default(), known).unwrap().timeout, DEFAULT_ONESHOT_TIMEOUT);
    }
}

//! Whether each CLI is logged in (core spec §7.9), from credential files and environment
//! variables — shown by `/status`. Informational: calls are never gated on it.

use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::provider::ProviderKind;

/// What is known about one CLI's login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStatus {
    /// Logged in or an API key is set; with the credential file's age when there is one.
    Authenticated {
        /// Seconds since the credential file changed.
        age_s: Option<u64>,
    },
    /// Its config directory exists, but no credentials were found.
    Installed,
    /// No trace of it.
    NotFound,
}

impl AuthStatus {
    /// The word `/status` shows.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Authenticated { .. } => "authenticated",
            Self::Installed => "installed",
            Self::NotFound => "not_found",
        }
    }
}

/// Where to look: the user's home and an environment lookup (injected for tests).
pub struct AuthProbe<'a> {
    /// The user's home directory.
    pub home: Utf8PathBuf,
    /// Reads an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The config's `gemini_api_key`, if set.
    pub gemini_api_key: Option<String>,
}

fn set(value: Option<String>) -> bool {
    value.is_some_and(|v| !crate::core::config::model::is_unset_secret(&v))
}

fn age(path: &Utf8Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    SystemTime::now().duration_since(modified).ok().map(|d| d.as_secs())
}

impl AuthProbe<'_> {
    /// The status of one CLI.
    pub fn status(&self, kind: ProviderKind) -> AuthStatus {
        match kind {
            ProviderKind::Claude => {
                let credentials = self.home.join(".claude/.credentials.json");
                if credentials.exists() {
                    AuthStatus::Authenticated { age_s: age(&credentials) }
                } else if set((self.env)("ANTHROPIC_API_KEY")) {
                    AuthStatus::Authenticated { age_s: None }
                } else if self.home.join(".claude").is_dir() {
                    AuthStatus::Installed
                } else {
                    AuthStatus::NotFound
                }
            }
            ProviderKind::Codex => {
                let dir = (self.env)("CODEX_HOME").map_or_else(|| self.home.join(".codex"), Utf8PathBuf::from);
                let auth = dir.join("auth.json");
                if auth.exists() {
                    AuthStatus::Authenticated { age_s: age(&auth) }
                } else if set((self.env)("OPENAI_API_KEY")) {
                    AuthStatus::Authenticated { age_s: None }
                } else if dir.join("version.json").exists() || dir.join("config.toml").exists() {
                    AuthStatus::Installed
                } else {
                    AuthStatus::NotFound
                }
            }
            ProviderKind::Gemini => {
                let base = (self.env)("GEMINI_CLI_HOME").map_or_else(|| self.home.clone(), Utf8PathBuf::from);
                let oauth = base.join(".gemini/oauth_creds.json");
                if std::fs::metadata(&oauth).is_ok_and(|m| m.len() > 0) {
                    AuthStatus::Authenticated { age_s: age(&oauth) }
                } else if set((self.env)("GEMINI_API_KEY"))
                    || set((self.env)("GOOGLE_API_KEY"))
                    || set(self.gemini_api_key.clone())
                {
                    AuthStatus::Authenticated { age_s: None }
                } else if base.join(".gemini").is_dir() {
                    AuthStatus::Installed
                } else {
                    AuthStatus::NotFound
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let home = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let no_env = |_: &str| None;
        let probe = AuthProbe { home: home.clone(), env: &no_env, gemini_api_key: None };
        assert_eq!(probe.status(ProviderKind::Claude), AuthStatus::NotFound);
        std::fs::create_dir_all(home.join(".claude")).unwrap();
        assert_eq!(probe.status(ProviderKind::Claude), AuthStatus::Installed);
        std::fs::write(home.join(".claude/.credentials.json"), "{}").unwrap();
        assert!(matches!(probe.status(ProviderKind::Claude), AuthStatus::Authenticated { age_s: Some(_) }));
        let key_env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-x".to_owned());
        let probe = AuthProbe { home: home.clone(), env: &key_env, gemini_api_key: Some("null".into()) };
        assert_eq!(probe.status(ProviderKind::Codex), AuthStatus::Authenticated { age_s: None });
        assert_eq!(probe.status(ProviderKind::Gemini), AuthStatus::NotFound, "\"null\" is no key");
    }
}

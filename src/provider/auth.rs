//! Whether each CLI is logged in (core spec §7.9), from credential files and environment
//! variables — shown by `/status`. Informational: calls are never gated on it.

use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::workspace::AuthenticatedClis;
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
    /// The search path for the CLIs (`PATH` syntax); `None` = the process's `PATH`.
    pub search_path: Option<String>,
    /// What `claude auth status` said last (`None` = not asked or no answer).
    pub claude_cli_logged_in: Option<bool>,
}

/// The first executable file called `name` in the `PATH`-style `search_path`.
pub fn find_program(name: &str, search_path: &str) -> Option<Utf8PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    search_path.split(':').filter(|dir| !dir.is_empty()).map(|dir| Utf8Path::new(dir).join(name)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Asks `claude auth status` (10 s at most) whether it is logged in: its JSON answer carries
/// `"loggedIn": true`. `None` when the CLI is missing, fails, times out or says something else.
pub async fn claude_cli_logged_in(program: &Utf8Path, env: &[(String, String)]) -> Option<bool> {
    let mut command = tokio::process::Command::new(program.as_std_path());
    command
        .args(["auth", "status"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(10), command.output()).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text.find('{')?;
    let value: serde_json::Value = serde_json::from_str(text[start..].trim()).ok()?;
    value.get("loggedIn").and_then(serde_json::Value::as_bool)
}

/// `KEY=value` lines of a `.env`-style file (quotes stripped); empty when unreadable.
fn env_file(path: &Utf8Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            (!key.trim().starts_with('#'))
                .then(|| (key.trim().to_owned(), value.trim().trim_matches(|c| c == '"' || c == '\'').to_owned()))
        })
        .collect()
}

/// Gemini's auth choices that need no file of ours to prove a login.
const GEMINI_LOGIN_TYPES: [&str; 4] = ["gemini-api-key", "vertex-ai", "compute-default-credentials", "cloud-shell"];

fn set(value: Option<String>) -> bool {
    value.is_some_and(|v| !crate::core::config::model::is_unset_secret(&v))
}

fn age(path: &Utf8Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    SystemTime::now().duration_since(modified).ok().map(|d| d.as_secs())
}

impl AuthProbe<'_> {
    /// Which CLIs are logged in: what the workspace's rule files follow (ops spec §4.2).
    pub fn authenticated_clis(&self) -> AuthenticatedClis {
        let logged_in = |kind| matches!(self.status(kind), AuthStatus::Authenticated { .. });
        AuthenticatedClis {
            claude: logged_in(ProviderKind::Claude),
            codex: logged_in(ProviderKind::Codex),
            gemini: logged_in(ProviderKind::Gemini),
        }
    }

    /// The status of one CLI.
    pub fn status(&self, kind: ProviderKind) -> AuthStatus {
        match kind {
            ProviderKind::Claude => {
                let credentials = self.home.join(".claude/.credentials.json");
                if credentials.exists() {
                    AuthStatus::Authenticated { age_s: age(&credentials) }
                } else if set((self.env)("ANTHROPIC_API_KEY")) || self.claude_cli_logged_in == Some(true) {
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
            ProviderKind::Gemini => self.gemini(),
        }
    }

    fn gemini(&self) -> AuthStatus {
        let search_path = self.search_path.clone().or_else(|| (self.env)("PATH")).unwrap_or_default();
        if find_program("gemini", &search_path).is_none() {
            return AuthStatus::NotFound;
        }
        let base = (self.env)("GEMINI_CLI_HOME").map_or_else(|| self.home.clone(), Utf8PathBuf::from);
        let dir = base.join(".gemini");
        let oauth = dir.join("oauth_creds.json");
        if std::fs::metadata(&oauth).is_ok_and(|m| m.len() > 0) {
            return AuthStatus::Authenticated { age_s: age(&oauth) };
        }
        let mut files = env_file(&dir.join(".env"));
        files.extend(env_file(&self.home.join(".env")));
        let lookup = |name: &str| {
            (self.env)(name)
                .filter(|v| set(Some(v.clone())))
                .or_else(|| files.iter().find(|(k, v)| k == name && set(Some(v.clone()))).map(|(_, v)| v.clone()))
        };
        let has_key = lookup("GEMINI_API_KEY").is_some() || lookup("GOOGLE_API_KEY").is_some();
        let has_cloud = lookup("GOOGLE_CLOUD_PROJECT").is_some() && lookup("GOOGLE_CLOUD_LOCATION").is_some();
        if has_key || has_cloud || set(self.gemini_api_key.clone()) {
            return AuthStatus::Authenticated { age_s: None };
        }
        let settings: serde_json::Value = std::fs::read_to_string(dir.join("settings.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let selected = settings.pointer("/security/auth/selectedType").and_then(|v| v.as_str()).unwrap_or_default();
        let google_account = || {
            std::fs::read_to_string(dir.join("google_accounts.json"))
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|v| v.get("active").and_then(|a| a.as_str()).map(|a| !a.is_empty()))
                .unwrap_or(false)
        };
        if GEMINI_LOGIN_TYPES.contains(&selected) || (selected == "oauth-personal" && google_account()) {
            AuthStatus::Authenticated { age_s: None }
        } else {
            AuthStatus::Installed
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
        let probe = AuthProbe {
            home: home.clone(),
            env: &no_env,
            gemini_api_key: None,
            search_path: Some(String::new()),
            claude_cli_logged_in: None,
        };
        assert_eq!(probe.status(ProviderKind::Claude), AuthStatus::NotFound);
        std::fs::create_dir_all(home.join(".claude")).unwrap();
        assert_eq!(probe.status(ProviderKind::Claude), AuthStatus::Installed);
        std::fs::write(home.join(".claude/.credentials.json"), "{}").unwrap();
        assert!(matches!(probe.status(ProviderKind::Claude), AuthStatus::Authenticated { age_s: Some(_) }));
        let key_env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-x".to_owned());
        let probe = AuthProbe {
            home: home.clone(),
            env: &key_env,
            gemini_api_key: Some("null".into()),
            search_path: Some(String::new()),
            claude_cli_logged_in: Some(false),
        };
        assert_eq!(probe.status(ProviderKind::Codex), AuthStatus::Authenticated { age_s: None });
        assert_eq!(probe.status(ProviderKind::Gemini), AuthStatus::NotFound, "\"null\" is no key");
        assert_eq!(probe.authenticated_clis(), AuthenticatedClis { claude: true, codex: true, gemini: false });
    }

    fn gemini_home() -> (tempfile::TempDir, Utf8PathBuf, String) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        std::fs::create_dir_all(home.join("bin")).unwrap();
        std::fs::create_dir_all(home.join(".gemini")).unwrap();
        std::fs::write(home.join("bin/gemini"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(home.join("bin/gemini"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = home.join("bin").to_string();
        (dir, home, path)
    }

    #[test]
    fn gemini_needs_its_binary_then_finds_keys_in_env_files_and_settings() {
        let (_dir, home, path) = gemini_home();
        let no_env = |_: &str| None;
        let probe = |search: &str| AuthProbe {
            home: home.clone(),
            env: &no_env,
            gemini_api_key: None,
            search_path: Some(search.to_owned()),
            claude_cli_logged_in: None,
        };
        assert_eq!(probe("").status(ProviderKind::Gemini), AuthStatus::NotFound, "no binary");
        assert_eq!(probe(&path).status(ProviderKind::Gemini), AuthStatus::Installed);
        std::fs::write(home.join(".gemini/.env"), "GOOGLE_CLOUD_PROJECT=p\n").unwrap();
        assert_eq!(probe(&path).status(ProviderKind::Gemini), AuthStatus::Installed, "project alone");
        std::fs::write(home.join(".env"), "export GOOGLE_CLOUD_LOCATION=\"eu\"\n").unwrap();
        assert_eq!(probe(&path).status(ProviderKind::Gemini), AuthStatus::Authenticated { age_s: None });
        std::fs::remove_file(home.join(".env")).unwrap();
        std::fs::write(
            home.join(".gemini/settings.json"),
            r#"{"security":{"auth":{"selectedType":"oauth-personal"}}}"#,
        )
        .unwrap();
        assert_eq!(probe(&path).status(ProviderKind::Gemini), AuthStatus::Installed, "no active account");
        std::fs::write(home.join(".gemini/google_accounts.json"), r#"{"active":"a@b.c","old":[]}"#).unwrap();
        assert_eq!(probe(&path).status(ProviderKind::Gemini), AuthStatus::Authenticated { age_s: None });
        std::fs::write(home.join(".gemini/settings.json"), r#"{"security":{"auth":{"selectedType":"vertex-ai"}}}"#)
            .unwrap();
        std::fs::remove_file(home.join(".gemini/google_accounts.json")).unwrap();
        assert_eq!(probe(&path).status(ProviderKind::Gemini), AuthStatus::Authenticated { age_s: None });
    }

    #[tokio::test]
    async fn claude_auth_status_is_asked_and_its_json_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let script = |body: &str| {
            let program = root.join(format!("claude{}", body.len()));
            std::fs::write(&program, format!("#!/bin/sh\n[ \"$1 $2\" = \"auth status\" ] || exit 3\n{body}\n"))
                .unwrap();
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
            program
        };
        let yes = script(r#"echo '{"loggedIn": true, "authMethod": "claude.ai"}'"#);
        assert_eq!(claude_cli_logged_in(&yes, &[]).await, Some(true));
        let no = script(r#"echo 'Warning: x'; echo '{"loggedIn": false}'"#);
        assert_eq!(claude_cli_logged_in(&no, &[]).await, Some(false));
        let garbage = script("echo not json; exit 1");
        assert_eq!(claude_cli_logged_in(&garbage, &[]).await, None);
        assert_eq!(claude_cli_logged_in(&root.join("missing"), &[]).await, None);
        assert_eq!(find_program("claude0", root.as_str()), None);
        assert_eq!(find_program(yes.file_name().unwrap(), &format!(":{root}")), Some(yes.clone()));
    }
}

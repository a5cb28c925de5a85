//! The internal API's token: a random secret created at the first start in
//! `<home>/interagent.token` (mode 0600) and required on every request to the loopback API, so
//! another local user cannot inject messages or start tasks. The service hands it to the CLIs it
//! starts (and through them to the tool commands) in `DUCTOR_INTERAGENT_TOKEN`; the same variable,
//! when set, is the token a service or a command uses.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use crate::store::atomic::StoreError;
use crate::store::paths::DuctorPaths;

/// The environment variable that carries the token to the CLIs and the tool commands.
pub const TOKEN_ENV: &str = "DUCTOR_INTERAGENT_TOKEN";

/// The token a running service uses: `DUCTOR_INTERAGENT_TOKEN` when set, else the home's token
/// file, created (0600, 32 random bytes as 64 hex digits) when missing or empty. A file readable
/// by others is tightened to 0600.
pub fn service_token(paths: &DuctorPaths) -> Result<String, StoreError> {
    if let Some(token) = env_token() {
        return Ok(token);
    }
    let path = paths.interagent_token();
    if let Some(token) = read_token(paths) {
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o600);
        if mode != 0o600 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::io("restrict", &path, e))?;
        }
        return Ok(token);
    }
    let token: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| StoreError::io("create", &path, e))?;
    file.write_all(token.as_bytes()).map_err(|e| StoreError::io("write", &path, e))?;
    file.sync_all().map_err(|e| StoreError::io("fsync", &path, e))?;
    tracing::info!(path = %path, "Created the internal API token.");
    Ok(token)
}

/// The token a command uses to talk to the running service: `DUCTOR_INTERAGENT_TOKEN`, else the
/// home's token file; `None` when neither exists (no service has started yet).
pub fn client_token(paths: &DuctorPaths) -> Option<String> {
    env_token().or_else(|| read_token(paths))
}

fn env_token() -> Option<String> {
    std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

fn read_token(paths: &DuctorPaths) -> Option<String> {
    let text = std::fs::read_to_string(paths.interagent_token()).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let paths = DuctorPaths::at(camino::Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap());
        // The test process may carry the variable; this test is about the file.
        if env_token().is_some() {
            return;
        }
        let first = service_token(&paths).unwrap();
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(paths.interagent_token()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(service_token(&paths).unwrap(), first, "kept across starts");
        assert_eq!(client_token(&paths), Some(first.clone()));
        std::fs::set_permissions(paths.interagent_token(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(service_token(&paths).unwrap(), first);
        let mode = std::fs::metadata(paths.interagent_token()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "tightened");
    }
}

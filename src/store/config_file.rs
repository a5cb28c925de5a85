//! Loading `config/config.json` (minimal stand-in).

use crate::core::config::Config;
use crate::store::paths::DuctorPaths;

/// Config errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad.
    #[error("config error in {path}: {message}")]
    Bad {
        /// File.
        path: String,
        /// What.
        message: String,
    },
}

/// Loaded.
#[derive(Debug)]
pub struct LoadedConfig {
    /// Config.
    pub config: Config,
    /// Rewritten.
    pub rewritten: bool,
}

/// Load.
pub fn load_config(paths: &DuctorPaths) -> Result<LoadedConfig, ConfigError> {
    let path = paths.config_file();
    let bad = |message: String| ConfigError::Bad { path: path.to_string(), message };
    let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    let config: Config = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    Ok(LoadedConfig { config, rewritten: false })
}

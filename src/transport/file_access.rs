//! Which files an answer may send back to a chat (`file_access` of the config) and where the
//! CLIs' `/ductor/…` paths point — the same rule for every transport.

use std::sync::Arc;

use crate::core::config::model::Config;
use crate::store::paths::DuctorPaths;

/// Which files answers may send (`file_access`) and where `/ductor/…` paths point.
#[derive(Debug, Clone, Default)]
pub struct FileAccess {
    /// The ductor home.
    pub home: camino::Utf8PathBuf,
    /// Allowed roots (`None`: any file).
    pub roots: Option<Vec<camino::Utf8PathBuf>>,
}

impl FileAccess {
    /// From `file_access` of the config: the allowed roots (`$HOME` for `home`), and the home
    /// `/ductor/…` paths map to.
    pub fn from_config(config: &Config, paths: &DuctorPaths) -> Arc<Self> {
        let user_home = camino::Utf8PathBuf::from(std::env::var("HOME").unwrap_or_default());
        let roots = crate::core::file_tags::allowed_roots(&config.file_access, &user_home, &paths.workspace());
        Arc::new(Self { home: paths.home().to_owned(), roots })
    }
}

//! Which files an answer may send back to a chat (`file_access` of the config), whether a path
//! is inside the allowed roots once every symlink is resolved, and where the CLIs' `/ductor/…`
//! paths point — the same rule for every transport.

use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};

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

/// Whether a path may be sent: no NUL or control characters (newline aside), and, after
/// every symlink is resolved, inside one of the roots (`None` = no restriction).
pub fn is_safe(path: &Utf8Path, roots: Option<&[Utf8PathBuf]>) -> bool {
    if path.as_str().chars().any(|c| (c as u32) < 0x20 && c != '\n') {
        return false;
    }
    let Some(roots) = roots else { return true };
    let Ok(resolved) = std::fs::canonicalize(path) else { return false };
    roots.iter().filter_map(|root| std::fs::canonicalize(root).ok()).any(|root| resolved.starts_with(root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::file_tags::allowed_roots;

    #[test]
    fn roots_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let workspace = base.join("workspace");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::write(workspace.join("in.txt"), "x").unwrap();
        std::fs::write(base.join("secret.txt"), "x").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), workspace.join("link.txt")).unwrap();
        let roots = allowed_roots("workspace", &base, &workspace);
        assert!(is_safe(&workspace.join("in.txt"), roots.as_deref()));
        assert!(!is_safe(&workspace.join("link.txt"), roots.as_deref()), "a symlink out of the workspace");
        assert!(!is_safe(&base.join("secret.txt"), roots.as_deref()));
        assert!(is_safe(&base.join("secret.txt"), allowed_roots("all", &base, &workspace).as_deref()));
        assert!(!is_safe(Utf8Path::new("/tmp/a\u{1}b"), None), "control characters");
        assert_eq!(allowed_roots("weird", &base, &workspace), Some(vec![workspace.clone()]));
    }
}

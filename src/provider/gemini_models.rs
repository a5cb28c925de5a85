//! Gemini model discovery (core spec §7.10): finds the installed Gemini CLI's JavaScript from
//! the `gemini` program on the search path and reads its `VALID_GEMINI_MODELS` set — from
//! `gemini-cli-core/dist/src/config/models.js` in older installs, from the bundle's chunks in
//! newer ones. Nothing is executed.

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::model_cache::scan_valid_gemini_models;
use crate::provider::auth::find_program;

/// Why no models were found.
#[derive(Debug, thiserror::Error)]
pub enum GeminiDiscoveryError {
    /// No `gemini` on the search path.
    #[error("the gemini CLI is not on the search path")]
    NotInstalled,
    /// The program was found but no file of its package holds the model set.
    #[error("no VALID_GEMINI_MODELS found in the gemini CLI installed at {0}")]
    NotFound(Utf8PathBuf),
}

/// A chunk bigger than this is not read (the real bundle chunks are a few MiB).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The package root: the nearest ancestor of the resolved program holding `package.json`.
fn package_root(program: &Utf8Path) -> Option<Utf8PathBuf> {
    let resolved = std::fs::canonicalize(program).ok().and_then(|p| Utf8PathBuf::from_path_buf(p).ok())?;
    resolved.ancestors().skip(1).take(6).find(|dir| dir.join("package.json").is_file()).map(Utf8Path::to_owned)
}

/// `.js`/`.mjs`/`.cjs` files directly in `dir`.
fn scripts_in(dir: &Utf8Path) -> Vec<Utf8PathBuf> {
    let Ok(entries) = dir.read_dir_utf8() else { return Vec::new() };
    let mut files: Vec<Utf8PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.into_path())
        .filter(|path| matches!(path.extension(), Some("js" | "mjs" | "cjs")))
        .collect();
    files.sort();
    files
}

/// Reads the model ids of the Gemini CLI found on `search_path`.
pub fn discover(search_path: &str) -> Result<Vec<String>, GeminiDiscoveryError> {
    let program = find_program("gemini", search_path).ok_or(GeminiDiscoveryError::NotInstalled)?;
    let root = package_root(&program).ok_or_else(|| GeminiDiscoveryError::NotFound(program.clone()))?;
    let core_models = "gemini-cli-core/dist/src/config/models.js";
    let mut candidates = vec![
        root.join("node_modules/@google").join(core_models),
        root.parent().map_or_else(|| root.join(core_models), |parent| parent.join(core_models)),
    ];
    for dir in ["bundle", "dist", "bundle/chunks", "dist/chunks"] {
        candidates.extend(scripts_in(&root.join(dir)));
    }
    let texts: Vec<String> = candidates
        .iter()
        .filter(|path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FILE_BYTES))
        .filter_map(|path| std::fs::read(path).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .filter(|text| text.contains("gemini-") || text.contains("VALID_GEMINI_MODELS"))
        .collect();
    let sources: Vec<&str> = texts.iter().map(String::as_str).collect();
    let models = scan_valid_gemini_models(&sources);
    if models.is_empty() { Err(GeminiDiscoveryError::NotFound(root)) } else { Ok(models) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Utf8Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn link_program(root: &Utf8Path, target: &Utf8Path) -> String {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::os::unix::fs::symlink(target, root.join("bin/gemini")).unwrap();
        root.join("bin").to_string()
    }

    #[test]
    fn newer_bundle_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let package = root.join("lib/node_modules/@google/gemini-cli");
        write(&package.join("package.json"), "{}");
        write(&package.join("bundle/gemini.js"), "#!/usr/bin/env node\nimport './chunk-a.js';");
        write(&package.join("bundle/chunk-a.js"), "var VALID_GEMINI_MODELS=new Set([p,q]);");
        write(&package.join("bundle/chunk-b.js"), "var p=\"gemini-3-pro-preview\",q=\"gemini-2.5-flash\";");
        let search = link_program(&root, &package.join("bundle/gemini.js"));
        assert_eq!(discover(&search).unwrap(), ["gemini-3-pro-preview", "gemini-2.5-flash"]);
    }

    #[test]
    fn older_core_package_layout_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        assert!(matches!(discover(root.as_str()), Err(GeminiDiscoveryError::NotInstalled)));
        let package = root.join("lib/node_modules/@google/gemini-cli");
        write(&package.join("package.json"), "{}");
        write(&package.join("dist/index.js"), "#!/usr/bin/env node\n");
        let search = link_program(&root, &package.join("dist/index.js"));
        assert!(matches!(discover(&search), Err(GeminiDiscoveryError::NotFound(_))));
        write(
            &root.join("lib/node_modules/@google/gemini-cli-core/dist/src/config/models.js"),
            "export const DEFAULT_GEMINI_MODEL = 'gemini-2.5-pro';\nexport const VALID_GEMINI_MODELS = new Set([DEFAULT_GEMINI_MODEL, 'gemini-2.5-flash-lite']);",
        );
        assert_eq!(discover(&search).unwrap(), ["gemini-2.5-pro", "gemini-2.5-flash-lite"]);
    }
}

//! Appends the runtime section (ops spec §4.7: Messenger Rules, Multi-Agent Identity, Runtime
//! Environment) to the workspace's `CLAUDE.md`, `AGENTS.md` and `GEMINI.md`. Idempotent: a file
//! that already has the section is left alone, so any number of starts leaves exactly one.

use std::fs;
use std::time::SystemTime;

use camino::Utf8PathBuf;

use crate::core::workspace::RULE_FILE_NAMES;
use crate::core::workspace::texts::{RuntimeFacts, with_runtime_section};
use crate::store::paths::DuctorPaths;
use crate::store::workspace::fs_ops;

/// Appends the runtime section to each existing workspace rule file that lacks it (atomic
/// writes; the files written share one mtime so the rule sync sees them as equal). Returns the
/// files changed; failures are logged and skipped.
pub fn inject_runtime_sections(paths: &DuctorPaths, facts: &RuntimeFacts) -> Vec<Utf8PathBuf> {
    let stamp = SystemTime::now();
    let mut changed = Vec::new();
    for name in RULE_FILE_NAMES {
        let path = paths.workspace().join(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "Rule file not readable; no runtime section added.");
                continue;
            }
        };
        let Some(updated) = with_runtime_section(&text, facts) else { continue };
        match fs_ops::write_with_mtime(&path, updated.as_bytes(), stamp) {
            Ok(()) => changed.push(path),
            Err(e) => tracing::warn!(path = %path, error = %e, "Cannot add the runtime section."),
        }
    }
    if !changed.is_empty() {
        tracing::info!(count = changed.len(), "Runtime section added to the workspace rule files.");
    }
    changed
}

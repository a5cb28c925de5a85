//! The rule-file mtime sync (ops spec §4.4): in the workspace and every folder below it, the
//! newest of the existing `CLAUDE.md` / `AGENTS.md` / `GEMINI.md` is copied (content and mtime)
//! over its older siblings, so an edit to one reaches the CLIs that read the others. Missing
//! siblings are not created here. Also the removal of broken symlinks in the workspace itself.

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::workspace::{RULE_FILE_NAMES, is_skipped_dir, mtime_sync_plan};
use crate::store::workspace::fs_ops;

/// Syncs the rule files of `workspace` and every directory below it (skipped directory names
/// and symlinked directories are not entered; unreadable ones are skipped). Returns the files
/// overwritten.
pub fn sync_rule_files(workspace: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut written = Vec::new();
    sync_dir(workspace, &mut written);
    if !written.is_empty() {
        tracing::info!(count = written.len(), "Rule files synced from their newest sibling.");
    }
    written
}

fn sync_dir(dir: &Utf8Path, written: &mut Vec<Utf8PathBuf>) {
    let entries = match fs_ops::read_dir_sorted(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::debug!(path = %dir, error = %e, "Directory not readable; rule sync skips it.");
            return;
        }
    };
    let mut rule_files = Vec::new();
    for path in &entries {
        let Some(name) = path.file_name() else { continue };
        let Ok(meta) = fs::symlink_metadata(path) else { continue };
        if meta.is_dir() {
            if !is_skipped_dir(name) {
                sync_dir(path, written);
            }
        } else if meta.is_file()
            && let Some(rule) = RULE_FILE_NAMES.iter().find(|n| **n == name)
            && let Ok(modified) = meta.modified()
        {
            rule_files.push((*rule, modified));
        }
    }
    let Some((source, targets)) = mtime_sync_plan(&rule_files) else { return };
    let source_path = dir.join(source);
    let (bytes, stamp) = match (fs::read(&source_path), fs_ops::mtime(&source_path)) {
        (Ok(bytes), Some(stamp)) => (bytes, stamp),
        _ => return,
    };
    for target in targets {
        let path = dir.join(target);
        match fs_ops::write_with_mtime(&path, &bytes, stamp) {
            Ok(()) => written.push(path),
            Err(e) => tracing::warn!(path = %path, error = %e, "Cannot sync a rule file."),
        }
    }
}

/// Removes the broken symlinks directly inside `dir`. Returns them.
pub fn remove_broken_symlinks(dir: &Utf8Path) -> Vec<Utf8PathBuf> {
    let Ok(entries) = fs_ops::read_dir_sorted(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for path in entries.into_iter().filter(|p| fs_ops::is_broken_symlink(p)) {
        match fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path, "Broken symlink removed from the workspace.");
                removed.push(path);
            }
            Err(e) => tracing::warn!(path = %path, error = %e, "Cannot remove a broken symlink."),
        }
    }
    removed
}

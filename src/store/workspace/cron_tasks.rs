//! Cron task folders (`<ws>/cron_tasks/<name>/`, ops spec §4.5), the library the `ductor cron`
//! and `ductor webhook` commands call: create one (mission rule files, `TASK_DESCRIPTION.md`,
//! `<name>_MEMORY.md`, `scripts/`), rename one, delete one (never outside `cron_tasks/`), and
//! the backfill that gives every task folder the rule files of `cron_tasks/` itself.

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::workspace::texts::{cron_task_rules, task_description, task_memory, webhook_task_rules};
use crate::core::workspace::{
    RULE_FILE_NAMES, TaskNameError, backfill_plan, expected_task_rule_files, is_rule_file, sanitize_task_name,
};
use crate::store::atomic::{Durability, StoreError, write_bytes_atomic};
use crate::store::paths::DuctorPaths;
use crate::store::workspace::fs_ops;

/// Why a task folder operation was refused or failed. Nothing was changed unless the variant
/// says so.
#[derive(Debug, thiserror::Error)]
pub enum TaskFolderError {
    /// The name is unusable.
    #[error(transparent)]
    Name(#[from] TaskNameError),
    /// `name` is not one of CLAUDE.md, AGENTS.md, GEMINI.md.
    #[error("{0:?} is not a rule file name (CLAUDE.md, AGENTS.md, GEMINI.md)")]
    NotARuleFile(String),
    /// The target folder already exists.
    #[error("task folder {0} already exists")]
    Exists(Utf8PathBuf),
    /// The folder does not exist.
    #[error("task folder {0} does not exist")]
    NotFound(Utf8PathBuf),
    /// The path resolves outside `cron_tasks/`.
    #[error("{0} is not inside the cron_tasks folder; refused")]
    OutsideCronTasks(Utf8PathBuf),
    /// A file operation failed (the folder may be partly written).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What kind of run a task folder is for (decides its rule files' text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Started by the clock (`ductor cron add`).
    Cron,
    /// Started by a `cron_task` webhook (`ductor webhook add`).
    Webhook,
}

/// A task folder that was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFolder {
    /// The folder (and job) name after sanitizing.
    pub name: String,
    /// The name as asked for.
    pub original_name: String,
    /// Whether sanitizing changed it.
    pub sanitized: bool,
    /// `<ws>/cron_tasks/<name>`.
    pub path: Utf8PathBuf,
    /// The rule files written, in order.
    pub rule_files: Vec<String>,
    /// `<name>_MEMORY.md`.
    pub memory_file: Utf8PathBuf,
}

/// What a rename did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenamedTask {
    /// The new name after sanitizing.
    pub name: String,
    /// Whether sanitizing changed it.
    pub sanitized: bool,
    /// The folder's new path.
    pub path: Utf8PathBuf,
    /// Whether `<old>_MEMORY.md` became `<new>_MEMORY.md`.
    pub memory_file_renamed: bool,
    /// The rule files rewritten for the new name.
    pub rules_rewritten: Vec<String>,
}

/// The rule files a new task folder gets: those present in `<ws>/cron_tasks/`, else `CLAUDE.md`.
pub fn task_rule_files(paths: &DuctorPaths) -> Vec<&'static str> {
    let root = paths.cron_tasks();
    let present: Vec<&str> = RULE_FILE_NAMES.into_iter().filter(|n| root.join(n).is_file()).collect();
    expected_task_rule_files(&present)
}

/// Creates `<ws>/cron_tasks/<name>/` for a cron job: each of `rule_file_names` (empty: those of
/// [`task_rule_files`]) with the mission text, `TASK_DESCRIPTION.md`, `<name>_MEMORY.md` and
/// an empty `scripts/`. The name is sanitized (§4.5); an existing folder is refused.
pub fn create_task_folder(
    paths: &DuctorPaths,
    name: &str,
    title: &str,
    description: &str,
    rule_file_names: &[&str],
) -> Result<TaskFolder, TaskFolderError> {
    create_task_folder_for(paths, TaskKind::Cron, name, title, description, rule_file_names)
}

/// Like [`create_task_folder`], with the rule text for `kind`. Webhook task folders always get
/// `CLAUDE.md` and `AGENTS.md` when `rule_file_names` is empty.
pub fn create_task_folder_for(
    paths: &DuctorPaths,
    kind: TaskKind,
    name: &str,
    title: &str,
    description: &str,
    rule_file_names: &[&str],
) -> Result<TaskFolder, TaskFolderError> {
    let task = sanitize_task_name(name)?;
    if let Some(bad) = rule_file_names.iter().find(|n| !is_rule_file(n)) {
        return Err(TaskFolderError::NotARuleFile((*bad).to_owned()));
    }
    let rule_files: Vec<String> = match (rule_file_names.is_empty(), kind) {
        (false, _) => rule_file_names.iter().map(|n| (*n).to_owned()).collect(),
        (true, TaskKind::Cron) => task_rule_files(paths).into_iter().map(str::to_owned).collect(),
        (true, TaskKind::Webhook) => vec!["CLAUDE.md".to_owned(), "AGENTS.md".to_owned()],
    };
    let path = paths.cron_tasks().join(&task.name);
    if fs_ops::exists_at_all(&path) {
        return Err(TaskFolderError::Exists(path));
    }
    fs::create_dir_all(path.join("scripts")).map_err(|e| StoreError::io("create directory", &path, e))?;
    let rules = rules_text(kind, &task.name);
    let stamp = std::time::SystemTime::now();
    for file in &rule_files {
        write(&path.join(file), &rules)?;
        fs_ops::set_mtime(&path.join(file), stamp)?;
    }
    write(&path.join("TASK_DESCRIPTION.md"), &task_description(title, description))?;
    let memory_file = path.join(format!("{}_MEMORY.md", task.name));
    write(&memory_file, &task_memory(&task.name))?;
    tracing::info!(path = %path, "Task folder created.");
    Ok(TaskFolder {
        name: task.name,
        original_name: name.to_owned(),
        sanitized: task.sanitized,
        path,
        rule_files,
        memory_file,
    })
}

fn rules_text(kind: TaskKind, name: &str) -> String {
    match kind {
        TaskKind::Cron => cron_task_rules(name),
        TaskKind::Webhook => webhook_task_rules(name),
    }
}

fn write(path: &Utf8Path, text: &str) -> Result<(), StoreError> {
    write_bytes_atomic(path, text.as_bytes(), Durability::Fsync)
}

/// Refuses names that are empty or could leave `cron_tasks/`.
fn plain_name(name: &str) -> Result<(), TaskFolderError> {
    if name.is_empty() || name == "." {
        return Err(TaskNameError::Empty(name.to_owned()).into());
    }
    if name.contains("..") || name.contains('/') || name.contains('\\') {
        return Err(TaskNameError::PathLike(name.to_owned()).into());
    }
    Ok(())
}

/// Renames task folder `old` to `new` (sanitized): moves the folder, renames
/// `<old>_MEMORY.md`, and rewrites the rule files for the new name. A rule file that is ductor's
/// text for `old` gets ductor's text for `new`; one that was edited keeps its text, with its
/// mentions of `<old>_MEMORY.md` pointed to the new file.
pub fn rename_task_folder(paths: &DuctorPaths, old: &str, new: &str) -> Result<RenamedTask, TaskFolderError> {
    plain_name(old)?;
    let task = sanitize_task_name(new)?;
    let from = paths.cron_tasks().join(old);
    let to = paths.cron_tasks().join(&task.name);
    if !from.is_dir() || fs_ops::is_symlink(&from) {
        return Err(TaskFolderError::NotFound(from));
    }
    if fs_ops::exists_at_all(&to) {
        return Err(TaskFolderError::Exists(to));
    }
    fs::rename(&from, &to).map_err(|e| StoreError::io("rename", &from, e))?;
    let old_memory = to.join(format!("{old}_MEMORY.md"));
    let new_memory = to.join(format!("{}_MEMORY.md", task.name));
    let memory_file_renamed = old_memory.is_file() && !fs_ops::exists_at_all(&new_memory) && {
        fs::rename(&old_memory, &new_memory).map_err(|e| StoreError::io("rename", &old_memory, e))?;
        true
    };
    let mut rules_rewritten = Vec::new();
    let stamp = std::time::SystemTime::now();
    for file in RULE_FILE_NAMES {
        let path = to.join(file);
        let Ok(text) = fs::read_to_string(&path) else { continue };
        let rewritten = if text == cron_task_rules(old) {
            cron_task_rules(&task.name)
        } else if text == webhook_task_rules(old) {
            webhook_task_rules(&task.name)
        } else {
            text.replace(&format!("{old}_MEMORY.md"), &format!("{}_MEMORY.md", task.name))
        };
        if rewritten != text {
            write(&path, &rewritten)?;
            fs_ops::set_mtime(&path, stamp)?;
            rules_rewritten.push(file.to_owned());
        }
    }
    tracing::info!(from = %from, to = %to, "Task folder renamed.");
    Ok(RenamedTask { name: task.name, sanitized: task.sanitized, path: to, memory_file_renamed, rules_rewritten })
}

/// Deletes task folder `name`. Returns whether something was deleted (`false`: there was no
/// such folder). Anything that resolves outside `cron_tasks/` — or is `cron_tasks/` itself —
/// is refused; a symlink is removed as a link, never followed.
pub fn delete_task_folder(paths: &DuctorPaths, name: &str) -> Result<bool, TaskFolderError> {
    plain_name(name)?;
    let root = paths.cron_tasks();
    let path = root.join(name);
    if !fs_ops::exists_at_all(&path) {
        return Ok(false);
    }
    let resolved_root = root.canonicalize_utf8().map_err(|e| StoreError::io("resolve", &root, e))?;
    let resolved = path.canonicalize_utf8().unwrap_or_else(|_| path.clone());
    if !resolved.starts_with(&resolved_root) || resolved == resolved_root {
        return Err(TaskFolderError::OutsideCronTasks(resolved));
    }
    let result =
        if fs_ops::is_symlink(&path) || !path.is_dir() { fs::remove_file(&path) } else { fs::remove_dir_all(&path) };
    result.map_err(|e| StoreError::io("delete", &path, e))?;
    tracing::info!(path = %path, "Task folder deleted.");
    Ok(true)
}

/// The backfill (§4.5): every task folder that has at least one rule file gets the missing
/// ones of [`task_rule_files`], copied from its first. Never deletes. Returns the files made.
pub fn backfill_task_rules(paths: &DuctorPaths) -> Vec<Utf8PathBuf> {
    let expected = task_rule_files(paths);
    let entries = match fs_ops::read_dir_sorted(&paths.cron_tasks()) {
        Ok(entries) => entries,
        Err(_) => return Vec::new(),
    };
    let mut made = Vec::new();
    for folder in entries {
        if !folder.is_dir() || fs_ops::is_symlink(&folder) {
            continue;
        }
        let existing: Vec<&str> = RULE_FILE_NAMES.into_iter().filter(|n| folder.join(n).is_file()).collect();
        let Some((source, missing)) = backfill_plan(&existing, &expected) else { continue };
        let bytes = match fs::read(folder.join(source)) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(path = %folder.join(source), error = %e, "Cannot read a task rule file to copy it.");
                continue;
            }
        };
        let stamp = fs_ops::mtime(&folder.join(source)).unwrap_or_else(std::time::SystemTime::now);
        for name in missing {
            let target = folder.join(name);
            match fs_ops::write_with_mtime(&target, &bytes, stamp) {
                Ok(()) => made.push(target),
                Err(e) => tracing::warn!(path = %target, error = %e, "Cannot add a task rule file."),
            }
        }
    }
    if !made.is_empty() {
        tracing::info!(count = made.len(), "Cron task folders got the rule files they lacked.");
    }
    made
}

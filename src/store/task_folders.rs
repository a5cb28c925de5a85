//! Background task folders on disk (core spec §8.2): `<agent home>/workspace/tasks/<task_id>/`
//! with `TASKMEMORY.md` (seeded once) and the identical worker rule files `CLAUDE.md`,
//! `AGENTS.md`, `GEMINI.md`; reading the memory back, deleting a folder (only inside the tasks
//! directory) and finding folders no entry of `tasks.json` knows.

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::task_run::{memory_seed, worker_rules};

/// The memory file of a task folder.
pub const MEMORY_FILE: &str = "TASKMEMORY.md";

/// The worker rule files, one per CLI, all with the same text.
pub const RULE_FILES: [&str; 3] = ["CLAUDE.md", "AGENTS.md", "GEMINI.md"];

/// What to write into a new task folder.
#[derive(Debug, Clone)]
pub struct NewFolder<'a> {
    /// The task id.
    pub task_id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// When it was created (text).
    pub created: &'a str,
    /// Provider and model.
    pub provider: &'a str,
    /// The model.
    pub model: &'a str,
    /// The person's prompt.
    pub prompt: &'a str,
}

/// The memory file of the folder.
pub fn memory_path(folder: &Utf8Path) -> Utf8PathBuf {
    folder.join(MEMORY_FILE)
}

/// Creates the folder, seeds `TASKMEMORY.md` when it is not there yet and writes the rule files.
pub fn create(folder: &Utf8Path, new: &NewFolder<'_>) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    let memory = memory_path(folder);
    if !memory.exists() {
        std::fs::write(&memory, memory_seed(new.name, new.created, new.provider, new.model, new.prompt))?;
    }
    let rules = worker_rules(new.task_id, memory.as_str());
    for file in RULE_FILES {
        std::fs::write(folder.join(file), &rules)?;
    }
    Ok(())
}

/// The content of `TASKMEMORY.md` (empty when it cannot be read).
pub fn read_memory(folder: &Utf8Path) -> String {
    std::fs::read_to_string(memory_path(folder)).unwrap_or_default()
}

/// Deletes a task folder when it lies inside `root` (the path could come from an edited file).
pub fn remove(folder: &Utf8Path, root: &Utf8Path) -> std::io::Result<bool> {
    let (Ok(path), Ok(root)) = (std::fs::canonicalize(folder), std::fs::canonicalize(root)) else {
        return Ok(false);
    };
    if !path.starts_with(&root) || path == root {
        return Ok(false);
    }
    std::fs::remove_dir_all(path)?;
    Ok(true)
}

/// Whether `name` has the shape of a task id (8 lowercase hex characters).
pub fn is_task_id(name: &str) -> bool {
    name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The task folders under `root` whose id `known` does not hold.
pub fn orphans(root: &Utf8Path, known: &dyn Fn(&str) -> bool) -> Vec<Utf8PathBuf> {
    let Ok(entries) = root.read_dir_utf8() else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| is_task_id(e.file_name()) && !known(e.file_name()))
        .map(|e| e.path().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_seeded_once_and_orphans_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let folder = root.join("abcd1234");
        let new = NewFolder {
            task_id: "abcd1234",
            name: "n",
            created: "now",
            provider: "claude",
            model: "opus",
            prompt: "p",
        };
        create(&folder, &new).unwrap();
        std::fs::write(memory_path(&folder), "progress").unwrap();
        create(&folder, &new).unwrap();
        assert_eq!(read_memory(&folder), "progress");
        let rules: Vec<String> = RULE_FILES.iter().map(|f| std::fs::read_to_string(folder.join(f)).unwrap()).collect();
        assert!(rules.iter().all(|r| r == &rules[0] && r.contains("TASKMEMORY.md")));
        std::fs::create_dir_all(root.join("00000000")).unwrap();
        std::fs::create_dir_all(root.join("not-a-task")).unwrap();
        assert_eq!(orphans(&root, &|id| id == "abcd1234"), vec![root.join("00000000")]);
        assert!(remove(&root.join("00000000"), &root).unwrap());
        assert!(!remove(&root, &root).unwrap());
    }
}

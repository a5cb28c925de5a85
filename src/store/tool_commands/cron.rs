//! `ductor cron …` on disk: add (job + task folder), edit (a rename moves the folder and its
//! memory file), remove (job + folder), list and time. Writes go through
//! `locked_state::update` on `cron_jobs.json`; a file that does not parse is refused and left
//! as it is.

use crate::core::state::cron_jobs::CronJobs;
use crate::core::state::timestamp_now;
use crate::core::tool_commands::ToolAnswer;
use crate::core::tool_commands::cron::{
    CronAdd, CronEdit, CronOp, CronRemove, FolderRemoval, FolderRename, add_output, edit_output, find_job,
    job_not_found, list_output, new_job, plan_add, plan_edit, remove_output, time_output,
};
use crate::store::locked_state::{self, read_strict};
use crate::store::paths::DuctorPaths;
use crate::store::tool_commands::{Applied, lock_failure, settings};
use crate::store::workspace::cron_tasks::{
    TaskFolderError, create_task_folder, delete_task_folder, rename_task_folder,
};
use crate::store::workspace::fs_ops;

/// Runs a change of `cron_jobs.json`.
pub fn apply(paths: &DuctorPaths, op: &CronOp) -> Applied {
    match op {
        CronOp::Add(request) => add(paths, request),
        CronOp::Edit(request) => edit(paths, request),
        CronOp::Remove(request) => remove(paths, request),
    }
}

fn add(paths: &DuctorPaths, request: &CronAdd) -> Applied {
    let mut made_folder: Option<String> = None;
    let result = locked_state::update::<CronJobs, _>(paths, |jobs| {
        let task = match plan_add(jobs, request) {
            Ok(task) => task,
            Err(message) => return (false, Err(ToolAnswer::error(message))),
        };
        match create_task_folder(paths, &task.name, &request.title, &request.description, &[]) {
            Ok(_) => made_folder = Some(task.name.clone()),
            Err(TaskFolderError::Exists(_)) => {
                return (
                    false,
                    Err(ToolAnswer::error(format!(
                        "Folder '{}' already exists in cron_tasks/; pick another --name (or remove the folder if \
                         nothing uses it)",
                        task.name
                    ))),
                );
            }
            Err(e) => return (false, Err(ToolAnswer::error(format!("could not make the task folder: {e}")))),
        }
        jobs.jobs.push(new_job(request, &task.name, timestamp_now()));
        (true, Ok(task))
    });
    match result {
        Ok(Ok(task)) => {
            tracing::info!(job = %task.name, "Cron job added.");
            let user_timezone = settings(paths).user_timezone;
            Applied { answer: ToolAnswer::success(add_output(request, &task, &user_timezone)), changed: true }
        }
        Ok(Err(answer)) => Applied::unchanged(answer),
        Err(e) => {
            if let Some(name) = made_folder
                && let Err(undo) = delete_task_folder(paths, &name)
            {
                tracing::warn!(folder = %name, error = %undo, "Could not remove the task folder of a job that was not saved.");
            }
            Applied::unchanged(lock_failure(&e))
        }
    }
}

/// Moves the task folder for a rename (refusing a target that exists).
fn rename_folder(paths: &DuctorPaths, old: &str, new: &str) -> Result<FolderRename, ToolAnswer> {
    if fs_ops::exists_at_all(&paths.cron_tasks().join(new)) {
        return Err(ToolAnswer::error(format!("Target folder already exists: cron_tasks/{new}")));
    }
    match rename_task_folder(paths, old, new) {
        Ok(renamed) => {
            let mut notes = Vec::new();
            if !renamed.memory_file_renamed {
                notes.push(format!("There was no {old}_MEMORY.md to rename."));
            }
            if !renamed.rules_rewritten.is_empty() {
                notes.push(format!(
                    "The folder's rule files ({}) now name {new}_MEMORY.md.",
                    renamed.rules_rewritten.join(", ")
                ));
            }
            Ok(FolderRename { folder_renamed: true, memory_file_renamed: renamed.memory_file_renamed, notes })
        }
        Err(TaskFolderError::NotFound(_)) => Ok(FolderRename {
            notes: vec![format!("The task folder cron_tasks/{old} did not exist; only the job entry was renamed.")],
            ..FolderRename::default()
        }),
        Err(e) => Err(ToolAnswer::error(format!("could not rename the task folder: {e}"))),
    }
}

fn edit(paths: &DuctorPaths, request: &CronEdit) -> Applied {
    let result = locked_state::update::<CronJobs, _>(paths, |jobs| {
        let plan = match plan_edit(jobs, request) {
            Ok(plan) => plan,
            Err(answer) => return (false, Applied::unchanged(answer)),
        };
        if plan.updated_fields.is_empty() {
            let answer = ToolAnswer::success(edit_output(request, &plan, &FolderRename::default()));
            return (false, Applied::unchanged(answer));
        }
        let mut folder = FolderRename::default();
        if let Some(task) = &plan.rename {
            match rename_folder(paths, &plan.old_folder, &task.name) {
                Ok(renamed) => folder = renamed,
                Err(answer) => return (false, Applied::unchanged(answer)),
            }
        }
        jobs.jobs[plan.index] = plan.job.clone();
        tracing::info!(job = %plan.job.id, fields = ?plan.updated_fields, "Cron job edited.");
        (true, Applied { answer: ToolAnswer::success(edit_output(request, &plan, &folder)), changed: true })
    });
    result.unwrap_or_else(|e| Applied::unchanged(lock_failure(&e)))
}

fn remove(paths: &DuctorPaths, request: &CronRemove) -> Applied {
    let asked = request.job_id.trim();
    let result = locked_state::update::<CronJobs, _>(paths, |jobs| {
        let Some((index, _)) = find_job(&jobs.jobs, asked) else {
            return (false, Applied::unchanged(job_not_found(asked, &jobs.jobs)));
        };
        let job = jobs.jobs[index].clone();
        jobs.jobs.retain(|other| other.id != job.id);
        let folder = if job.task_folder.is_empty() { job.id.clone() } else { job.task_folder.clone() };
        let path = paths.cron_tasks().join(&folder).to_string();
        let removal = match delete_task_folder(paths, &folder) {
            Ok(deleted) => FolderRemoval { deleted, path, error: None },
            Err(e) => FolderRemoval { deleted: false, path, error: Some(e.to_string()) },
        };
        tracing::info!(job = %job.id, folder_deleted = removal.deleted, "Cron job removed.");
        (true, Applied { answer: ToolAnswer::success(remove_output(asked, &job.id, &removal)), changed: true })
    });
    result.unwrap_or_else(|e| Applied::unchanged(lock_failure(&e)))
}

/// `ductor cron list`: every job, whether its folder exists, and the configured zone. A file
/// that does not parse is an error (not an empty list).
pub fn list(paths: &DuctorPaths) -> ToolAnswer {
    let jobs: CronJobs = match read_strict(&paths.cron_jobs()) {
        Ok(jobs) => jobs,
        Err(e) => return lock_failure(&e),
    };
    let root = paths.cron_tasks();
    let exists = |folder: &str| root.join(folder).is_dir();
    ToolAnswer::success(list_output(&jobs, &exists, &settings(paths).user_timezone))
}

/// `ductor cron time`: now in UTC, in the configured zone and in the asked ones.
pub fn time(paths: &DuctorPaths, zone: Option<&str>, zones: Option<&str>) -> ToolAnswer {
    time_output(chrono::Utc::now(), &settings(paths).user_timezone, zone, zones)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use camino::Utf8PathBuf;
    use serde_json::json;

    use super::*;

    fn home() -> (tempfile::TempDir, DuctorPaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = DuctorPaths::at(Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap());
        (dir, paths)
    }

    fn add_request(name: &str) -> CronAdd {
        CronAdd {
            name: name.into(),
            title: "T".into(),
            description: "D".into(),
            schedule: "0 9 * * *".into(),
            transport: "tg".into(),
            ..CronAdd::default()
        }
    }

    #[test]
    fn add_edit_remove_keep_folder_and_entry_together() {
        let (_dir, paths) = home();
        let added = apply(&paths, &CronOp::Add(add_request("Daily Report!")));
        assert!(added.changed && added.answer.is_success(), "{:?}", added.answer);
        let folder = paths.cron_tasks().join("daily-report");
        assert!(folder.join("TASK_DESCRIPTION.md").is_file() && folder.join("scripts").is_dir());
        std::fs::write(folder.join("scripts/keep.sh"), "echo").unwrap();

        let edit = CronEdit { job_id: "daily-report".into(), name: Some("weekly".into()), ..CronEdit::default() };
        let edited = apply(&paths, &CronOp::Edit(edit));
        assert_eq!(edited.answer.output["folder_renamed"], true, "{:?}", edited.answer);
        assert_eq!(edited.answer.output["memory_file_renamed"], true);
        let moved = paths.cron_tasks().join("weekly");
        assert!(
            !folder.exists() && moved.join("scripts/keep.sh").is_file() && moved.join("weekly_MEMORY.md").is_file()
        );

        let removed = apply(&paths, &CronOp::Remove(CronRemove { job_id: "weekly".into() }));
        assert_eq!(removed.answer.output["folder_deleted"], true);
        assert!(!moved.exists());
        let jobs: CronJobs = read_strict(&paths.cron_jobs()).unwrap();
        assert!(jobs.jobs.is_empty());
    }

    #[test]
    fn an_existing_folder_refuses_the_add_and_writes_nothing() {
        let (_dir, paths) = home();
        std::fs::create_dir_all(paths.cron_tasks().join("taken")).unwrap();
        let answer = apply(&paths, &CronOp::Add(add_request("taken"))).answer;
        assert!(answer.output["error"].as_str().unwrap().contains("already exists in cron_tasks/"));
        assert!(!paths.cron_jobs().exists());
    }

    #[test]
    fn a_rename_onto_an_existing_folder_is_refused_and_nothing_moves() {
        let (_dir, paths) = home();
        apply(&paths, &CronOp::Add(add_request("a")));
        std::fs::create_dir_all(paths.cron_tasks().join("b")).unwrap();
        let before = std::fs::read_to_string(paths.cron_jobs()).unwrap();
        let edit = CronEdit { job_id: "a".into(), name: Some("b".into()), ..CronEdit::default() };
        let applied = apply(&paths, &CronOp::Edit(edit));
        assert!(!applied.changed);
        assert_eq!(applied.answer.output, json!({"error": "Target folder already exists: cron_tasks/b"}));
        assert!(paths.cron_tasks().join("a").is_dir());
        assert_eq!(std::fs::read_to_string(paths.cron_jobs()).unwrap(), before);
    }

    #[test]
    fn a_corrupt_file_is_an_error_for_every_command_and_stays_as_it_is() {
        let (_dir, paths) = home();
        std::fs::write(paths.cron_jobs(), "{\"jobs\": [").unwrap();
        let ops = [
            CronOp::Add(add_request("x")),
            CronOp::Edit(CronEdit { job_id: "x".into(), title: Some("y".into()), ..CronEdit::default() }),
            CronOp::Remove(CronRemove { job_id: "x".into() }),
        ];
        for op in ops {
            let applied = apply(&paths, &op);
            assert!(!applied.changed);
            assert!(applied.answer.output["error"].as_str().unwrap().contains("cron_jobs.json"));
        }
        assert_eq!(list(&paths).exit_code, 1);
        assert!(!paths.cron_tasks().join("x").exists(), "the add made no folder");
        assert_eq!(std::fs::read_to_string(paths.cron_jobs()).unwrap(), "{\"jobs\": [");
    }
}

//! The cleanup observer (ops spec §10): once per local day, at `cleanup.check_hour` in the user's
//! zone, deletes old files from the workspace folders that collect received and produced files
//! (`telegram_files/`, `matrix_files/`, `output_to_user/`, `api_files/`), then removes their
//! empty subfolders bottom-up (each folder itself stays).
//!
//! It looks at the clock every `every` (an hour in production; the first look one interval
//! after start). A run is remembered by its local date only when it completed. Rule files
//! (`CLAUDE.md`, `AGENTS.md`, `GEMINI.md`) and `_index.yaml` are never deleted (§20 item 7);
//! symbolic links are neither followed nor deleted, and a folder that is itself a link is not
//! swept, so nothing outside the four folders is touched. The walk runs on the blocking pool;
//! a file that cannot be read or removed is logged and the run goes on; the counts are logged
//! in one line. File ages are measured against the system time (files carry real times), the
//! check hour and date against the observer's clock.
//!
//! `cleanup.enabled` is checked at every look (the config is the one given at start; a change
//! of the file needs a restart for now).

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use camino::Utf8PathBuf;
use chrono::{NaiveDate, Timelike};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::core::cleanup::{CleanupReport, SweepFolder, is_due, is_expired, is_protected, sweep_folders};
use crate::core::config::Config;
use crate::observer::WallClock;
use crate::store::host_zone::user_zone;

/// Messages of the cleanup observer.
#[derive(Debug)]
pub enum CleanupMsg {
    /// The check timer fired: run when it is the check hour and today has no run yet.
    Check,
    /// The same now; answers with the run's counts, or none when nothing ran.
    CheckNow(RpcReplyPort<Option<CleanupReport>>),
}

/// Construction arguments.
#[derive(Clone)]
pub struct CleanupArgs {
    /// The agent's config (`cleanup.*`, `user_timezone`).
    pub config: Arc<Config>,
    /// The agent's workspace (`<home>/workspace`).
    pub workspace: Utf8PathBuf,
    /// How often to look at the clock: an hour in production; tests shorten it.
    pub every: Duration,
    /// The wall clock for the local hour and date.
    pub clock: WallClock,
}

impl std::fmt::Debug for CleanupArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanupArgs")
            .field("cleanup", &self.config.cleanup)
            .field("workspace", &self.workspace)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct Cleanup;

/// Its state.
#[derive(Debug)]
pub struct CleanupState {
    args: CleanupArgs,
    /// Local date of the last completed run.
    last_run: Option<NaiveDate>,
}

impl Actor for Cleanup {
    type Msg = CleanupMsg;
    type State = CleanupState;
    type Arguments = CleanupArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<CleanupMsg>,
        args: CleanupArgs,
    ) -> Result<CleanupState, ActorProcessingErr> {
        myself.send_interval(args.every, || CleanupMsg::Check);
        tracing::info!(
            actor = "cleanup",
            enabled = args.config.cleanup.enabled,
            check_hour = args.config.cleanup.check_hour,
            "Cleanup observer started."
        );
        Ok(CleanupState { args, last_run: None })
    }

    async fn handle(
        &self,
        _myself: ActorRef<CleanupMsg>,
        msg: CleanupMsg,
        state: &mut CleanupState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CleanupMsg::Check => {
                state.check().await;
            }
            CleanupMsg::CheckNow(reply) => {
                let report = state.check().await;
                let _ = reply.send(report);
            }
        }
        Ok(())
    }
}

impl CleanupState {
    /// Runs the cleanup when it is due; the counts of the run, if one ran.
    async fn check(&mut self) -> Option<CleanupReport> {
        let cleanup = &self.args.config.cleanup;
        if !cleanup.enabled {
            return None;
        }
        let zone = user_zone(&self.args.config.user_timezone);
        let local = (self.args.clock)().with_timezone(&zone);
        let today = local.date_naive();
        if !is_due(local.hour(), today, cleanup.check_hour, self.last_run) {
            return None;
        }
        let workspace = self.args.workspace.clone();
        let folders = sweep_folders(cleanup);
        match tokio::task::spawn_blocking(move || sweep_workspace(workspace.as_std_path(), &folders, SystemTime::now()))
            .await
        {
            Ok(report) => {
                self.last_run = Some(today);
                tracing::info!(actor = "cleanup", date = %today, files_deleted = report.files_deleted,
                    dirs_removed = report.dirs_removed, errors = report.errors, folders = report.folders_swept,
                    "Cleanup done.");
                Some(report)
            }
            Err(e) => {
                tracing::error!(actor = "cleanup", error = %e, "Cleanup run failed; it is tried again at the next check.");
                None
            }
        }
    }
}

/// Sweeps the folders under `workspace` (blocking): deletes regular files older than each
/// folder's limit at `now`, except protected names, then removes empty subfolders bottom-up.
/// Missing folders are skipped; a folder that is a symbolic link is not swept.
pub fn sweep_workspace(workspace: &Path, folders: &[SweepFolder], now: SystemTime) -> CleanupReport {
    let mut report = CleanupReport::default();
    for folder in folders {
        let root = workspace.join(folder.name);
        match std::fs::symlink_metadata(&root) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                report.errors += 1;
                tracing::warn!(actor = "cleanup", path = %root.display(), error = %e, "Cleanup folder unreadable; skipped.");
            }
            Ok(meta) if meta.file_type().is_symlink() => {
                tracing::warn!(actor = "cleanup", path = %root.display(),
                    "Cleanup folder is a symbolic link; not swept (nothing outside the workspace is touched).");
            }
            Ok(meta) if meta.is_dir() => {
                report.folders_swept += 1;
                sweep_dir(&root, folder.days, now, &mut report);
            }
            Ok(_) => {}
        }
    }
    report
}

/// Deletes the expired files under `dir` and removes its subfolders that end up empty.
fn sweep_dir(dir: &Path, days: i64, now: SystemTime, report: &mut CleanupReport) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            report.errors += 1;
            tracing::warn!(actor = "cleanup", path = %dir.display(), error = %e, "Folder unreadable; skipped.");
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                report.errors += 1;
                tracing::warn!(actor = "cleanup", path = %dir.display(), error = %e, "Folder entry unreadable; skipped.");
                continue;
            }
        };
        let path = entry.path();
        // The entry's own type: a symbolic link is a link here, never what it points to.
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(e) => {
                report.errors += 1;
                tracing::warn!(actor = "cleanup", path = %path.display(), error = %e, "Entry unreadable; skipped.");
                continue;
            }
        };
        if file_type.is_dir() {
            sweep_dir(&path, days, now, report);
            remove_if_empty(&path, report);
        } else if file_type.is_file() {
            delete_if_expired(&path, &entry, days, now, report);
        }
    }
}

fn delete_if_expired(path: &Path, entry: &std::fs::DirEntry, days: i64, now: SystemTime, report: &mut CleanupReport) {
    if is_protected(&entry.file_name().to_string_lossy()) {
        return;
    }
    let modified = match entry.metadata().and_then(|m| m.modified()) {
        Ok(modified) => modified,
        Err(e) => {
            report.errors += 1;
            tracing::warn!(actor = "cleanup", path = %path.display(), error = %e, "File age unreadable; kept.");
            return;
        }
    };
    if !is_expired(modified, now, days) {
        return;
    }
    match std::fs::remove_file(path) {
        Ok(()) => report.files_deleted += 1,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            report.errors += 1;
            tracing::warn!(actor = "cleanup", path = %path.display(), error = %e, "Old file could not be deleted.");
        }
    }
}

fn remove_if_empty(dir: &Path, report: &mut CleanupReport) {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => {
            report.errors += 1;
            tracing::warn!(actor = "cleanup", path = %dir.display(), error = %e, "Folder unreadable; kept.");
            return;
        }
    };
    if !empty {
        return;
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => report.dirs_removed += 1,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            report.errors += 1;
            tracing::warn!(actor = "cleanup", path = %dir.display(), error = %e, "Empty folder could not be removed.");
        }
    }
}

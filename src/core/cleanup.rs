//! What the daily cleanup decides (ops spec §10): when a check runs it, which workspace folders
//! it sweeps with which age limit, which files are old enough to go, and which names it never
//! deletes (rule files and `_index.yaml`, §20 item 7).

use std::time::{Duration, SystemTime};

use chrono::NaiveDate;

use crate::core::config::model::CleanupConfig;

/// File names cleanup never deletes, at any depth: the rule files deployed into the workspace
/// folders and the folder index.
pub const PROTECTED_NAMES: [&str; 4] = ["CLAUDE.md", "AGENTS.md", "GEMINI.md", "_index.yaml"];

/// One workspace folder to sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepFolder {
    /// Its name under `workspace/`.
    pub name: &'static str,
    /// Files older than this many days go.
    pub days: i64,
}

/// What one cleanup run did (summed over its folders).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Regular files deleted.
    pub files_deleted: usize,
    /// Empty subfolders removed.
    pub dirs_removed: usize,
    /// Files and folders that could not be read or removed (each logged).
    pub errors: usize,
    /// Folders swept (missing ones are not counted).
    pub folders_swept: usize,
}

impl CleanupReport {
    /// Adds another folder's counts.
    pub fn add(&mut self, other: Self) {
        self.files_deleted += other.files_deleted;
        self.dirs_removed += other.dirs_removed;
        self.errors += other.errors;
        self.folders_swept += other.folders_swept;
    }
}

/// The folders a run sweeps: received media of Telegram and Matrix (`media_files_days`),
/// `output_to_user/` (`output_to_user_days`), `api_files/` (`api_files_days`).
#[must_use]
pub fn sweep_folders(config: &CleanupConfig) -> [SweepFolder; 4] {
    [
        SweepFolder { name: "telegram_files", days: config.media_files_days },
        SweepFolder { name: "matrix_files", days: config.media_files_days },
        SweepFolder { name: "output_to_user", days: config.output_to_user_days },
        SweepFolder { name: "api_files", days: config.api_files_days },
    ]
}

/// Whether a check at local `hour` on local date `today` runs the cleanup: the hour is
/// `check_hour` and no run happened on this date yet.
#[must_use]
pub fn is_due(hour: u32, today: NaiveDate, check_hour: i64, last_run: Option<NaiveDate>) -> bool {
    i64::from(hour) == check_hour && last_run != Some(today)
}

/// Whether a file last modified at `modified` is older than `days` at `now`. A negative day count
/// keeps everything; a file from the future is not old.
#[must_use]
pub fn is_expired(modified: SystemTime, now: SystemTime, days: i64) -> bool {
    let Ok(days) = u64::try_from(days) else { return false };
    let Ok(age) = now.duration_since(modified) else { return false };
    age > Duration::from_secs(days.saturating_mul(86_400))
}

/// Whether a file of this name is never deleted.
#[must_use]
pub fn is_protected(file_name: &str) -> bool {
    PROTECTED_NAMES.contains(&file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    #[test]
    fn a_run_is_due_once_per_local_day_at_the_check_hour() {
        assert!(is_due(3, date(1), 3, None));
        assert!(!is_due(4, date(1), 3, None), "another hour");
        assert!(!is_due(3, date(1), 3, Some(date(1))), "already ran today");
        assert!(is_due(3, date(2), 3, Some(date(1))), "the next day");
        assert!(!is_due(3, date(1), 27, None), "an hour that never comes");
    }

    #[test]
    fn files_older_than_the_limit_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let days_ago = |d: u64| now - Duration::from_secs(d * 86_400);
        assert!(is_expired(days_ago(40), now, 30));
        assert!(!is_expired(days_ago(1), now, 30));
        assert!(!is_expired(days_ago(30), now, 30), "exactly the limit stays");
        assert!(is_expired(days_ago(30) - Duration::from_secs(1), now, 30));
        assert!(is_expired(days_ago(1), now, 0), "0 days: everything older than now");
        assert!(!is_expired(days_ago(90), now, -1), "a negative limit keeps everything");
        assert!(!is_expired(now + Duration::from_secs(60), now, 0), "a file from the future");
    }

    #[test]
    fn rule_files_and_the_index_are_protected() {
        for name in ["CLAUDE.md", "AGENTS.md", "GEMINI.md", "_index.yaml"] {
            assert!(is_protected(name), "{name}");
        }
        for name in ["claude.md", "x.pdf", "CLAUDE.md.bak", "index.yaml"] {
            assert!(!is_protected(name), "{name}");
        }
    }

    #[test]
    fn each_folder_has_its_own_limit() {
        let config = CleanupConfig {
            media_files_days: 7,
            output_to_user_days: 14,
            api_files_days: 21,
            ..CleanupConfig::default()
        };
        let folders: Vec<(&str, i64)> = sweep_folders(&config).iter().map(|f| (f.name, f.days)).collect();
        assert_eq!(folders, [("telegram_files", 7), ("matrix_files", 7), ("output_to_user", 14), ("api_files", 21)]);
    }
}

//! The ductor home on disk: paths, atomic JSON files, quarantine of corrupt files, the PID lock,
//! the outbox journal, the rotating log file, and the agent's workspace (templates, rule files,
//! cron task folders, skills).

pub mod atomic;
pub mod config_file;
pub mod gemini_trust;
pub mod inbox_journal;
pub mod log_file;
pub mod outbox_journal;
pub mod paths;
pub mod pid_lock;
pub mod received_files;
pub mod received_images;
pub mod state_files;
pub mod workspace;

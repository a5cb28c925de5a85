//! The ductor home on disk: paths, atomic JSON files, quarantine of corrupt files, the PID lock,
//! the outbox and run journals, the rotating log file, the host's time zone, locked updates of the
//! files people edit (and the tool commands that make them), and the agent's workspace
//! (templates, rule files, cron task folders, skills).

pub mod atomic;
pub mod config_applied;
pub mod config_file;
pub mod gemini_trust;
pub mod host_zone;
pub mod inbox_journal;
pub mod interagent_token;
pub mod locked_state;
pub mod log_file;
pub mod outbox_journal;
pub mod paths;
pub mod pid_lock;
pub mod received_files;
pub mod received_images;
pub mod run_journal;
pub mod shared_memory;
pub mod state_files;
pub mod task_folders;
pub mod tool_commands;
pub mod workspace;

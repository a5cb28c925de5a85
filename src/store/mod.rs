//! The ductor home on disk: paths, atomic JSON files, quarantine of corrupt files, the PID lock.

pub mod atomic;
pub mod config_file;
pub mod paths;

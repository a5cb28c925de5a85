//! Typed models of the JSON state files a ductor home holds, in the exact shape the Python
//! original writes them (so an existing home loads, and what we write, Python could load).
//! Unknown keys are kept when a file is rewritten (`extra`), except in `sessions.json`, whose
//! unknown fields are dropped with a warning, as in the original.

pub mod agents;
pub mod chat_activity;
pub mod cron_jobs;
pub mod inflight_turns;
pub mod named_sessions;
pub mod sessions;
pub mod startup_state;
pub mod tasks;
pub mod webhooks;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// The state files that people, the tool commands and the service all change while it runs
/// (`cron_jobs.json`, `webhooks.json`). A change the service makes for a tool command is
/// announced with it, so the file's watcher reloads at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateFileKind {
    /// `cron_jobs.json`.
    CronJobs,
    /// `webhooks.json`.
    Webhooks,
}

/// Reads an ISO-8601 timestamp as the original writes it (`2025-06-01T07:00:00.123456+00:00`),
/// also without offset (taken as UTC) and without fractional seconds (ops spec §0.3).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Some(with_offset.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

/// Now, as the original writes timestamps.
pub fn timestamp_now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_and_without_offset_and_fraction() {
        let a = parse_timestamp("2025-06-01T07:00:00.123456+00:00").unwrap();
        let b = parse_timestamp("2025-06-01T07:00:00.123456").unwrap();
        assert_eq!(a, b);
        let c = parse_timestamp("2025-06-01T09:00:00+02:00").unwrap();
        assert_eq!(c, parse_timestamp("2025-06-01T07:00:00").unwrap());
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp(&timestamp_now()).is_some());
    }
}

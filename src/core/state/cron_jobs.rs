//! `cron_jobs.json`: scheduled jobs (ops spec §7.1). Optional keys the tool scripts leave out
//! stay out when the file is written again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::session_key::ChatId;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CronJobs {
    /// The jobs.
    pub jobs: Vec<CronJob>,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronJob {
    /// Id (also the default task folder).
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// 5-field cron expression.
    pub schedule: String,
    /// Folder under `workspace/cron_tasks/`.
    #[serde(default)]
    pub task_folder: String,
    /// Instruction given to the agent.
    #[serde(default)]
    pub agent_instruction: String,
    /// Whether it runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// ISO timestamp.
    #[serde(default)]
    pub created_at: String,
    /// ISO timestamp of the last run.
    #[serde(default)]
    pub last_run_at: Option<String>,
    /// Status of the last run.
    #[serde(default)]
    pub last_run_status: Option<String>,
    /// IANA zone of the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Provider override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Reasoning effort override (Codex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Extra CLI flags, after the configured ones for the provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cli_parameters: Vec<String>,
    /// Quiet hours start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_start: Option<i64>,
    /// Quiet hours end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_end: Option<i64>,
    /// Job that must finish first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
    /// Target chat (0 or absent = broadcast).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<ChatId>,
    /// Target topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<i64>,
    /// Target transport short name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// No message when a run succeeds (errors are always delivered).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent_on_success: bool,
    /// Fields this build does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn yes() -> bool {
    true
}

impl CronJob {
    /// The task folder, relative to the workspace.
    pub fn folder(&self) -> String {
        let folder = if self.task_folder.is_empty() { &self.id } else { &self.task_folder };
        format!("workspace/cron_tasks/{folder}")
    }
}

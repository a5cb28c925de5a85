//! `ductor cron …` (ops spec §6.1), the pure part: the operations that change
//! `cron_jobs.json` ([`CronOp`]: add, edit, remove), their checks, what they do to the model,
//! and the JSON objects `add`, `edit`, `list`, `remove` and `time` print. The task folders are
//! made, renamed and deleted by `store::tool_commands::cron`, which runs these under the file's
//! lock.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ToolAnswer, check_choice, check_not_empty, check_overrides, check_zone, trimmed};
use crate::core::cron_schedule::CronSchedule;
use crate::core::session_key::ChatId;
use crate::core::state::cron_jobs::{CronJob, CronJobs};
use crate::core::workspace::{TaskName, sanitize_task_name};

/// The instruction a new job's agent is given (what to do is in its `TASK_DESCRIPTION.md`).
pub const DEFAULT_AGENT_INSTRUCTION: &str =
    "Read TASK_DESCRIPTION.md in this folder and carry out its assignment thoroughly, without straying from it.";

/// The transports a job can be routed to with `--transport`.
pub const TRANSPORTS: [&str; 2] = ["tg", "mx"];

/// The zones `ductor cron time` shows when none are asked for.
pub const COMMON_ZONES: [&str; 13] = [
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
];

/// An operation that changes `cron_jobs.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CronOp {
    /// `ductor cron add`.
    Add(CronAdd),
    /// `ductor cron edit`.
    Edit(CronEdit),
    /// `ductor cron remove`.
    Remove(CronRemove),
}

impl CronOp {
    /// The command as typed (`cron add`), for logs.
    pub fn command(&self) -> &'static str {
        match self {
            Self::Add(_) => "cron add",
            Self::Edit(_) => "cron edit",
            Self::Remove(_) => "cron remove",
        }
    }
}

/// `ductor cron add`: a new job and its task folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CronAdd {
    /// `--name`: the job id and folder name (sanitized).
    pub name: String,
    /// `--title`.
    pub title: String,
    /// `--description` (also the goal in `TASK_DESCRIPTION.md`).
    pub description: String,
    /// `--schedule`: the cron expression.
    pub schedule: String,
    /// `--timezone`: the job's IANA zone.
    pub timezone: Option<String>,
    /// `--provider`.
    pub provider: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--reasoning-effort`.
    pub reasoning_effort: Option<String>,
    /// `--cli-parameters`, parsed.
    pub cli_parameters: Option<Vec<String>>,
    /// `--quiet-start`.
    pub quiet_start: Option<i64>,
    /// `--quiet-end`.
    pub quiet_end: Option<i64>,
    /// `--dependency`.
    pub dependency: Option<String>,
    /// `--silent-on-success`.
    pub silent_on_success: bool,
    /// The chat the job answers in (`DUCTOR_CHAT_ID` of the calling CLI).
    pub chat_id: Option<ChatId>,
    /// The topic (`DUCTOR_TOPIC_ID`).
    pub topic_id: Option<i64>,
    /// The transport (`DUCTOR_TRANSPORT`, default `tg`).
    pub transport: String,
}

impl CronAdd {
    /// The checks that need no file: required texts, the schedule, the zone, the choices.
    pub fn check(&self) -> Result<(), String> {
        check_not_empty("name", &self.name)?;
        check_not_empty("title", &self.title)?;
        check_schedule(&self.schedule)?;
        if let Some(zone) = trimmed(self.timezone.as_deref()) {
            check_zone("timezone", &zone)?;
        }
        check_overrides(self.provider.as_deref(), self.reasoning_effort.as_deref(), self.quiet_start, self.quiet_end)?;
        if let Some(model) = &self.model {
            check_not_empty("model", model)?;
        }
        Ok(())
    }
}

fn check_schedule(schedule: &str) -> Result<(), String> {
    CronSchedule::parse(schedule)
        .map(|_| ())
        .map_err(|e| format!("--schedule {schedule:?} is not a cron expression ductor can run: {e}"))
}

/// The name a new job gets: the checks of [`CronAdd::check`], the name sanitized (ops spec
/// §4.5), and no job with that id yet.
pub fn plan_add(jobs: &CronJobs, add: &CronAdd) -> Result<TaskName, String> {
    add.check()?;
    let task = sanitize_task_name(add.name.trim()).map_err(|e| e.to_string())?;
    if jobs.jobs.iter().any(|job| job.id == task.name) {
        return Err(format!(
            "a job with id '{}' already exists; pick another --name, or change that job with `ductor cron edit {}`",
            task.name, task.name
        ));
    }
    Ok(task)
}

/// The job `add` creates, named `name`, created at `created_at`.
pub fn new_job(add: &CronAdd, name: &str, created_at: String) -> CronJob {
    CronJob {
        id: name.to_owned(),
        title: add.title.clone(),
        description: add.description.clone(),
        schedule: add.schedule.trim().to_owned(),
        task_folder: name.to_owned(),
        agent_instruction: DEFAULT_AGENT_INSTRUCTION.to_owned(),
        enabled: true,
        created_at,
        last_run_at: None,
        last_run_status: None,
        timezone: trimmed(add.timezone.as_deref()),
        provider: add.provider.clone(),
        model: trimmed(add.model.as_deref()),
        reasoning_effort: add.reasoning_effort.clone(),
        cli_parameters: add.cli_parameters.clone().unwrap_or_default(),
        quiet_start: add.quiet_start,
        quiet_end: add.quiet_end,
        dependency: trimmed(add.dependency.as_deref()),
        chat_id: add.chat_id,
        topic_id: add.topic_id,
        transport: Some(trimmed(Some(&add.transport)).unwrap_or_else(|| "tg".to_owned())),
        silent_on_success: add.silent_on_success,
        extra: Map::new(),
    }
}

/// What `ductor cron add` prints after the job and its folder were made. `user_timezone` is
/// the config's (`""`: not set).
pub fn add_output(add: &CronAdd, task: &TaskName, user_timezone: &str) -> Value {
    let name = &task.name;
    let folder = format!("cron_tasks/{name}");
    let zone = trimmed(add.timezone.as_deref()).or_else(|| trimmed(Some(user_timezone)));
    let mut out = Map::new();
    out.insert("job_id".into(), json!(name));
    out.insert("schedule".into(), json!(add.schedule.trim()));
    out.insert(
        "timezone".into(),
        json!(zone.clone().unwrap_or_else(|| "UTC (no user_timezone configured)".to_owned())),
    );
    out.insert("task_folder".into(), json!(folder));
    out.insert("folder_created".into(), json!(true));
    out.insert("json_entry_created".into(), json!(true));
    out.insert(
        "action_required".into(),
        json!([
            format!("Now fill in the Assignment and Output sections of {folder}/TASK_DESCRIPTION.md."),
            format!(
                "The agent that runs this job starts in {folder}/ with no chat history and no main memory: \
                 TASK_DESCRIPTION.md is all it knows about the task."
            ),
            "Write the Assignment as concrete, technical steps the agent can follow without asking anyone.",
            format!("Put helper scripts in {folder}/scripts/ and name them in TASK_DESCRIPTION.md."),
            format!("For Python packages, create a .venv inside {folder}/ and install them there."),
            format!(
                "The job's memory is {folder}/{name}_MEMORY.md; the folder's rule file already tells the agent to \
                 read and update it."
            ),
            format!("Change title, description, schedule, name or enabled state later with: ductor cron edit {name} …"),
            "Change what the job does by editing TASK_DESCRIPTION.md only; the rule files (CLAUDE.md, AGENTS.md, \
             GEMINI.md) in the folder belong to ductor.",
            format!("Remove the job (and its folder) with: ductor cron remove {name}"),
        ]),
    );
    if zone.is_none() {
        out.insert(
            "timezone_warning".into(),
            json!(
                "No user_timezone is configured, so the schedule runs in UTC — probably not what the user \
                 expects. Ask the user where they are and set user_timezone in config.json (an IANA name such as \
                 \"Europe/Berlin\" or \"America/New_York\"), or give the job --timezone."
            ),
        );
    }
    let original = add.name.trim();
    if task.sanitized {
        out.insert("name_sanitized".into(), json!(true));
        out.insert("original_name".into(), json!(original));
        out.insert(
            "warning".into(),
            json!(format!(
                "The name '{original}' was changed to '{name}' (lowercase letters, digits and '-' only). Use \
                 '{name}' as the job id from now on."
            )),
        );
    }
    Value::Object(out)
}

/// `ductor cron edit`: changes to one job, found by id or task folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CronEdit {
    /// The job's id (or its task folder's name).
    pub job_id: String,
    /// `--name`: rename the job, its folder and its memory file.
    pub name: Option<String>,
    /// `--title`.
    pub title: Option<String>,
    /// `--description`.
    pub description: Option<String>,
    /// `--schedule`.
    pub schedule: Option<String>,
    /// `--timezone` (`""` removes the job's own zone).
    pub timezone: Option<String>,
    /// `--provider`.
    pub provider: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--reasoning-effort`.
    pub reasoning_effort: Option<String>,
    /// `--cli-parameters`, parsed.
    pub cli_parameters: Option<Vec<String>>,
    /// `--quiet-start`.
    pub quiet_start: Option<i64>,
    /// `--quiet-end`.
    pub quiet_end: Option<i64>,
    /// `--dependency`.
    pub dependency: Option<String>,
    /// `--chat-id`.
    pub chat_id: Option<ChatId>,
    /// `--topic-id`.
    pub topic_id: Option<i64>,
    /// `--transport`.
    pub transport: Option<String>,
    /// `--clear-topic-id`.
    pub clear_topic_id: bool,
    /// `--silent-on-success` (true) / `--no-silent-on-success` (false).
    pub silent_on_success: Option<bool>,
    /// `--enable` (true) / `--disable` (false).
    pub enabled: Option<bool>,
    /// `--clear-provider`.
    pub clear_provider: bool,
    /// `--clear-model`.
    pub clear_model: bool,
    /// `--clear-reasoning-effort`.
    pub clear_reasoning_effort: bool,
    /// `--clear-cli-parameters`.
    pub clear_cli_parameters: bool,
    /// `--clear-quiet-hours`.
    pub clear_quiet_hours: bool,
    /// `--clear-dependency`.
    pub clear_dependency: bool,
}

impl CronEdit {
    /// Whether any change was asked for (without one the command shows its usage).
    pub fn asks_for_a_change(&self) -> bool {
        let options = [
            self.name.is_some(),
            self.title.is_some(),
            self.description.is_some(),
            self.schedule.is_some(),
            self.timezone.is_some(),
            self.provider.is_some(),
            self.model.is_some(),
            self.reasoning_effort.is_some(),
            self.cli_parameters.is_some(),
            self.quiet_start.is_some(),
            self.quiet_end.is_some(),
            self.dependency.is_some(),
            self.chat_id.is_some(),
            self.topic_id.is_some(),
            self.transport.is_some(),
            self.silent_on_success.is_some(),
            self.enabled.is_some(),
        ];
        let clears = [
            self.clear_topic_id,
            self.clear_provider,
            self.clear_model,
            self.clear_reasoning_effort,
            self.clear_cli_parameters,
            self.clear_quiet_hours,
            self.clear_dependency,
        ];
        options.into_iter().chain(clears).any(|x| x)
    }
}

/// The job `key` names: the one with that id, else the one whose task folder it is. The flag
/// says it was found by its folder.
pub fn find_job(jobs: &[CronJob], key: &str) -> Option<(usize, bool)> {
    if let Some(index) = jobs.iter().position(|job| job.id == key) {
        return Some((index, false));
    }
    jobs.iter().position(|job| job.task_folder == key).map(|index| (index, true))
}

/// The answer for a job id that names no job.
pub fn job_not_found(key: &str, jobs: &[CronJob]) -> ToolAnswer {
    let available: Vec<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
    ToolAnswer::error_with(
        format!("Job '{key}' not found"),
        json!({"hint": "Use the exact job id that `ductor cron list` shows.", "available_jobs": available}),
    )
}

/// An edit worked out on the model, before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct EditPlan {
    /// Where the job is in the list.
    pub index: usize,
    /// Found by its task folder rather than its id.
    pub matched_via_folder: bool,
    /// The id before the edit.
    pub old_id: String,
    /// The task folder before the edit.
    pub old_folder: String,
    /// The new name, when `--name` renames the job.
    pub rename: Option<TaskName>,
    /// The job after the edit (renamed, if so).
    pub job: CronJob,
    /// What changed, in the order of the options (`id`, `task_folder`, `title`, …).
    pub updated_fields: Vec<String>,
}

/// Works out `edit` on `jobs`: the job, the checks, the new values and what changed. Nothing
/// is written; a refusal is the answer to print.
pub fn plan_edit(jobs: &CronJobs, edit: &CronEdit) -> Result<EditPlan, ToolAnswer> {
    let Some((index, matched_via_folder)) = find_job(&jobs.jobs, edit.job_id.trim()) else {
        return Err(job_not_found(edit.job_id.trim(), &jobs.jobs));
    };
    let current = &jobs.jobs[index];
    let old_id = current.id.clone();
    let old_folder = if current.task_folder.is_empty() { old_id.clone() } else { current.task_folder.clone() };
    let mut job = current.clone();
    let mut updated = Vec::new();
    let mut rename = None;
    if let Some(raw) = &edit.name {
        let task = sanitize_task_name(raw.trim()).map_err(|e| ToolAnswer::error(e.to_string()))?;
        if jobs.jobs.iter().enumerate().any(|(i, other)| i != index && other.id == task.name) {
            return Err(ToolAnswer::error(format!("a job with id '{}' already exists", task.name)));
        }
        if task.name != old_id {
            job.id = task.name.clone();
            job.task_folder = task.name.clone();
            updated.extend(["id".to_owned(), "task_folder".to_owned()]);
            rename = Some(task);
        }
    }
    apply_fields(&mut job, edit, &mut updated).map_err(ToolAnswer::error)?;
    let mut seen = std::collections::HashSet::new();
    updated.retain(|field| seen.insert(field.clone()));
    Ok(EditPlan { index, matched_via_folder, old_id, old_folder, rename, job, updated_fields: updated })
}

fn set<T: PartialEq>(slot: &mut T, value: T, field: &str, updated: &mut Vec<String>) {
    if *slot != value {
        *slot = value;
        updated.push(field.to_owned());
    }
}

fn clear<T>(slot: &mut Option<T>, field: &str, updated: &mut Vec<String>) {
    if slot.take().is_some() {
        updated.push(format!("{field} (cleared)"));
    }
}

/// Applies the options of `edit` (all but `--name`) to `job`, in the order of the usage text:
/// values first, then the clears, then enable/disable.
fn apply_fields(job: &mut CronJob, edit: &CronEdit, updated: &mut Vec<String>) -> Result<(), String> {
    if let Some(title) = &edit.title {
        check_not_empty("title", title)?;
        set(&mut job.title, title.trim().to_owned(), "title", updated);
    }
    if let Some(description) = &edit.description {
        set(&mut job.description, description.clone(), "description", updated);
    }
    if let Some(schedule) = &edit.schedule {
        check_not_empty("schedule", schedule)?;
        check_schedule(schedule)?;
        set(&mut job.schedule, schedule.trim().to_owned(), "schedule", updated);
    }
    if let Some(zone) = &edit.timezone {
        let zone = trimmed(Some(zone));
        if let Some(zone) = &zone {
            check_zone("timezone", zone)?;
        }
        set(&mut job.timezone, zone, "timezone", updated);
    }
    check_overrides(edit.provider.as_deref(), edit.reasoning_effort.as_deref(), edit.quiet_start, edit.quiet_end)?;
    if let Some(provider) = &edit.provider {
        set(&mut job.provider, Some(provider.clone()), "provider", updated);
    }
    if let Some(model) = &edit.model {
        check_not_empty("model", model)?;
        set(&mut job.model, Some(model.trim().to_owned()), "model", updated);
    }
    if let Some(effort) = &edit.reasoning_effort {
        set(&mut job.reasoning_effort, Some(effort.clone()), "reasoning_effort", updated);
    }
    if let Some(parameters) = &edit.cli_parameters {
        set(&mut job.cli_parameters, parameters.clone(), "cli_parameters", updated);
    }
    if let Some(hour) = edit.quiet_start {
        set(&mut job.quiet_start, Some(hour), "quiet_start", updated);
    }
    if let Some(hour) = edit.quiet_end {
        set(&mut job.quiet_end, Some(hour), "quiet_end", updated);
    }
    if let Some(dependency) = &edit.dependency {
        set(&mut job.dependency, trimmed(Some(dependency)), "dependency", updated);
    }
    if let Some(chat) = edit.chat_id {
        set(&mut job.chat_id, Some(chat), "chat_id", updated);
    }
    if let Some(topic) = edit.topic_id {
        set(&mut job.topic_id, Some(topic), "topic_id", updated);
    }
    if let Some(transport) = &edit.transport {
        check_choice("transport", transport, &TRANSPORTS)?;
        set(&mut job.transport, Some(transport.clone()), "transport", updated);
    }
    if edit.clear_topic_id {
        clear(&mut job.topic_id, "topic_id", updated);
    }
    if let Some(silent) = edit.silent_on_success {
        set(&mut job.silent_on_success, silent, "silent_on_success", updated);
    }
    if edit.clear_quiet_hours && (job.quiet_start.is_some() || job.quiet_end.is_some()) {
        job.quiet_start = None;
        job.quiet_end = None;
        updated.push("quiet_hours (cleared)".to_owned());
    }
    if edit.clear_provider {
        clear(&mut job.provider, "provider", updated);
    }
    if edit.clear_model {
        clear(&mut job.model, "model", updated);
    }
    if edit.clear_reasoning_effort {
        clear(&mut job.reasoning_effort, "reasoning_effort", updated);
    }
    if edit.clear_cli_parameters && !job.cli_parameters.is_empty() {
        job.cli_parameters.clear();
        updated.push("cli_parameters (cleared)".to_owned());
    }
    if edit.clear_dependency {
        clear(&mut job.dependency, "dependency", updated);
    }
    if let Some(enabled) = edit.enabled {
        set(&mut job.enabled, enabled, "enabled", updated);
    }
    Ok(())
}

/// What happened to the task folder during an edit's rename.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderRename {
    /// The folder was moved.
    pub folder_renamed: bool,
    /// `<old>_MEMORY.md` became `<new>_MEMORY.md`.
    pub memory_file_renamed: bool,
    /// Notes for the output.
    pub notes: Vec<String>,
}

/// What `ductor cron edit` prints: `{updated: false, message}` when nothing changed, else the
/// job's new state and what changed.
pub fn edit_output(edit: &CronEdit, plan: &EditPlan, folder: &FolderRename) -> Value {
    if plan.updated_fields.is_empty() {
        return json!({
            "job_id": plan.old_id,
            "updated": false,
            "message": "Nothing changed: the job already has these values.",
        });
    }
    let job = &plan.job;
    let mut notes = folder.notes.clone();
    notes.push(
        "What the job does comes from its TASK_DESCRIPTION.md; title and description are only labels.".to_owned(),
    );
    let mut out = Map::new();
    out.insert("job_id".into(), json!(job.id));
    out.insert("updated".into(), json!(true));
    out.insert("updated_fields".into(), json!(plan.updated_fields));
    out.insert("schedule".into(), json!(job.schedule));
    out.insert("enabled".into(), json!(job.enabled));
    out.insert("task_folder".into(), json!(format!("cron_tasks/{}", job.task_folder)));
    out.insert("folder_renamed".into(), json!(folder.folder_renamed));
    out.insert("memory_file_renamed".into(), json!(folder.memory_file_renamed));
    out.insert("notes".into(), json!(notes));
    if plan.matched_via_folder {
        out.insert("matched_via".into(), json!("task_folder"));
    }
    if let Some(raw) = &edit.name {
        out.insert("original_name".into(), json!(plan.old_id));
        out.insert("new_name".into(), json!(job.id));
        if plan.rename.as_ref().is_some_and(|task| task.sanitized) || raw.trim() != job.id {
            out.insert("name_sanitized".into(), json!(true));
        }
    }
    Value::Object(out)
}

/// `ductor cron remove`: the job and its task folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CronRemove {
    /// The job's id (or its task folder's name).
    pub job_id: String,
}

/// What happened to a removed job's folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderRemoval {
    /// It was deleted.
    pub deleted: bool,
    /// Its path (`<ws>/cron_tasks/<folder>`).
    pub path: String,
    /// Why it could not be deleted.
    pub error: Option<String>,
}

/// What `ductor cron remove` prints once the job's entry is gone.
pub fn remove_output(asked: &str, removed_id: &str, folder: &FolderRemoval) -> Value {
    let mut out = Map::new();
    out.insert("job_id".into(), json!(removed_id));
    out.insert("json_entry_removed".into(), json!(true));
    out.insert("folder_deleted".into(), json!(folder.deleted));
    out.insert("folder_path".into(), json!(folder.path));
    if let Some(error) = &folder.error {
        out.insert("folder_error".into(), json!(error));
    } else if !folder.deleted {
        out.insert("folder_note".into(), json!("The task folder did not exist (already deleted, or never made)."));
    }
    if asked != removed_id {
        out.insert("matched_via".into(), json!("task_folder"));
        out.insert(
            "note".into(),
            json!(format!(
                "'{asked}' is the job's folder; its id is '{removed_id}'. Use the id from `ductor cron list`."
            )),
        );
    }
    Value::Object(out)
}

/// What `ductor cron list` prints. `folder_exists` says whether a task folder is there.
pub fn list_output(jobs: &CronJobs, folder_exists: &dyn Fn(&str) -> bool, user_timezone: &str) -> Value {
    let entries: Vec<Value> = jobs
        .jobs
        .iter()
        .map(|job| {
            let mut entry = Map::new();
            entry.insert("id".into(), json!(job.id));
            entry.insert("title".into(), json!(job.title));
            entry.insert("schedule".into(), json!(job.schedule));
            entry.insert("task_folder".into(), json!(job.task_folder));
            entry.insert("enabled".into(), json!(job.enabled));
            entry.insert("last_run_at".into(), json!(job.last_run_at));
            entry.insert("last_run_status".into(), json!(job.last_run_status));
            entry.insert(
                "task_folder_exists".into(),
                json!(!job.task_folder.is_empty() && folder_exists(&job.task_folder)),
            );
            if let Some(zone) = job.timezone.as_deref().filter(|z| !z.is_empty()) {
                entry.insert("timezone".into(), json!(zone));
            }
            Value::Object(entry)
        })
        .collect();
    let zone = trimmed(Some(user_timezone)).unwrap_or_else(|| "NOT SET (schedules run in UTC)".to_owned());
    json!({
        "jobs": entries,
        "count": jobs.jobs.len(),
        "user_timezone": zone,
        "how_to_modify": {
            "change_schedule": "ductor cron edit <job-id> --schedule \"<cron expression>\" — edit the job; never delete and re-create it for this.",
            "change_task_content": "Edit cron_tasks/<name>/TASK_DESCRIPTION.md: it alone decides what the job's agent does.",
            "enable_disable": "ductor cron edit <job-id> --enable (or --disable)",
            "rename_job": "ductor cron edit <job-id> --name <new-name> (moves the folder and the memory file too)",
            "never_do": "Do not edit the rule files (CLAUDE.md, AGENTS.md, GEMINI.md) of a task folder, and do not delete and re-create a job to change its title, description, schedule, name or enabled state.",
        },
        "how_to_create": "ductor cron add --name <name> --title \"…\" --description \"…\" --schedule \"<cron expression>\", then fill in cron_tasks/<name>/TASK_DESCRIPTION.md",
        "how_to_edit": "ductor cron edit <job-id> --title \"…\" --description \"…\" --schedule \"…\"",
    })
}

/// One zone's local time: `{zone, time "HH:MM", date "YYYY-MM-DD", utc_offset "+HHMM"}`.
pub fn zone_time(zone: Tz, now: DateTime<Utc>) -> Value {
    let local = now.with_timezone(&zone);
    json!({
        "zone": zone.name(),
        "time": local.format("%H:%M").to_string(),
        "date": local.format("%Y-%m-%d").to_string(),
        "utc_offset": local.format("%z").to_string(),
    })
}

/// What `ductor cron time` prints at `now`: UTC, the configured zone and its time, and the
/// asked zone (`--zone`; an unknown one is an error), the asked list (`--zones a,b`) or
/// [`COMMON_ZONES`].
pub fn time_output(now: DateTime<Utc>, user_timezone: &str, zone: Option<&str>, zones: Option<&str>) -> ToolAnswer {
    let mut out = Map::new();
    out.insert("utc".into(), json!(now.format("%Y-%m-%d %H:%M:%S UTC").to_string()));
    let configured = trimmed(Some(user_timezone));
    out.insert("user_timezone_configured".into(), json!(configured));
    match configured.as_deref().map(|name| (name, name.parse::<Tz>())) {
        Some((_, Ok(tz))) => {
            out.insert("user_time".into(), zone_time(tz, now));
        }
        Some((name, Err(_))) => {
            out.insert("user_timezone_error".into(), json!(format!("user_timezone {name:?} is not an IANA time zone")));
        }
        None => {
            out.insert(
                "user_timezone_hint".into(),
                json!(
                    "No user_timezone is set in config.json, so cron schedules run in UTC. Ask the user where \
                     they are and set it, e.g. \"user_timezone\": \"Europe/Berlin\"."
                ),
            );
        }
    }
    if let Some(name) = zone.map(str::trim) {
        match name.parse::<Tz>() {
            Ok(tz) => {
                out.insert("requested_zone".into(), zone_time(tz, now));
            }
            Err(_) => {
                out.insert(
                    "error".into(),
                    json!(format!("Unknown time zone: {name} (expected an IANA name such as Europe/Berlin)")),
                );
                return ToolAnswer::failure(Value::Object(out));
            }
        }
    } else if let Some(list) = zones {
        let names: Vec<&str> = list.split(',').map(str::trim).filter(|z| !z.is_empty()).collect();
        let known: Vec<Value> =
            names.iter().filter_map(|name| name.parse::<Tz>().ok()).map(|tz| zone_time(tz, now)).collect();
        let unknown: Vec<&str> = names.iter().filter(|name| name.parse::<Tz>().is_err()).copied().collect();
        out.insert("requested_zones".into(), json!(known));
        if !unknown.is_empty() {
            out.insert("unknown_zones".into(), json!(unknown));
        }
    } else {
        let common: Vec<Value> =
            COMMON_ZONES.iter().filter_map(|name| name.parse::<Tz>().ok()).map(|tz| zone_time(tz, now)).collect();
        out.insert("common_zones".into(), json!(common));
    }
    ToolAnswer::success(Value::Object(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone;

    use super::*;

    fn add(name: &str) -> CronAdd {
        CronAdd {
            name: name.into(),
            title: "Daily report".into(),
            description: "Summarise the inbox".into(),
            schedule: "0 9 * * 1-5".into(),
            transport: "tg".into(),
            ..CronAdd::default()
        }
    }

    fn jobs_with(names: &[&str]) -> CronJobs {
        let mut jobs = CronJobs::default();
        for name in names {
            jobs.jobs.push(new_job(&add(name), name, "2025-01-01T00:00:00+00:00".into()));
        }
        jobs
    }

    #[test]
    fn add_sanitizes_the_name_and_refuses_a_taken_one() {
        let task = plan_add(&jobs_with(&[]), &add("Daily Report!")).unwrap();
        assert_eq!((task.name.as_str(), task.sanitized), ("daily-report", true));
        let task = plan_add(&jobs_with(&[]), &add("weekly")).unwrap();
        assert!(!task.sanitized);
        let err = plan_add(&jobs_with(&["daily-report"]), &add("Daily Report")).unwrap_err();
        assert!(err.contains("'daily-report' already exists"), "{err}");
        assert!(plan_add(&jobs_with(&[]), &add("../x")).unwrap_err().contains(".."));
        assert!(plan_add(&jobs_with(&[]), &add("!!!")).unwrap_err().contains("no letters or digits"));
    }

    #[test]
    fn add_checks_schedule_zone_and_choices() {
        let mut bad = add("x");
        bad.schedule = "61 * * * *".into();
        assert!(plan_add(&jobs_with(&[]), &bad).unwrap_err().contains("--schedule \"61 * * * *\""));
        let mut bad = add("x");
        bad.timezone = Some("Mars/Olympus".into());
        assert!(plan_add(&jobs_with(&[]), &bad).unwrap_err().contains("IANA"));
        let mut bad = add("x");
        bad.provider = Some("antigravity".into());
        assert!(plan_add(&jobs_with(&[]), &bad).unwrap_err().contains("--provider"));
        let mut bad = add("x");
        bad.quiet_end = Some(24);
        assert!(plan_add(&jobs_with(&[]), &bad).unwrap_err().contains("--quiet-end"));
        let mut bad = add("x");
        bad.title = " ".into();
        assert!(plan_add(&jobs_with(&[]), &bad).unwrap_err().contains("--title"));
    }

    #[test]
    fn a_new_job_has_the_fields_the_original_writes() {
        let mut request = add("daily-report");
        request.timezone = Some(" Europe/Berlin ".into());
        request.dependency = Some(" browser ".into());
        request.silent_on_success = true;
        request.chat_id = Some(ChatId::from(1001_i64));
        request.topic_id = Some(7);
        let job = new_job(&request, "daily-report", "2025-01-01T00:00:00+00:00".into());
        let written = serde_json::to_value(&job).unwrap();
        assert_eq!(
            written,
            json!({
                "id": "daily-report", "title": "Daily report", "description": "Summarise the inbox",
                "schedule": "0 9 * * 1-5", "task_folder": "daily-report",
                "agent_instruction": DEFAULT_AGENT_INSTRUCTION, "enabled": true,
                "created_at": "2025-01-01T00:00:00+00:00", "last_run_at": null, "last_run_status": null,
                "timezone": "Europe/Berlin", "dependency": "browser", "chat_id": 1001, "topic_id": 7,
                "transport": "tg", "silent_on_success": true,
            })
        );
        let keys: Vec<&String> = written.as_object().unwrap().keys().collect();
        assert_eq!(keys[..3], ["id", "title", "description"]);
    }

    #[test]
    fn add_output_names_the_folder_the_zone_and_the_sanitizing() {
        let request = add("Daily Report!");
        let task = plan_add(&jobs_with(&[]), &request).unwrap();
        let out = add_output(&request, &task, "");
        assert_eq!(out["job_id"], "daily-report");
        assert_eq!(out["task_folder"], "cron_tasks/daily-report");
        assert_eq!(out["timezone"], "UTC (no user_timezone configured)");
        assert!(out["timezone_warning"].is_string());
        assert_eq!((&out["name_sanitized"], &out["original_name"]), (&json!(true), &json!("Daily Report!")));
        assert!(out["action_required"][0].as_str().unwrap().contains("cron_tasks/daily-report/TASK_DESCRIPTION.md"));
        let out = add_output(&add("weekly"), &plan_add(&jobs_with(&[]), &add("weekly")).unwrap(), "Asia/Tokyo");
        assert_eq!(out["timezone"], "Asia/Tokyo");
        assert!(out.get("timezone_warning").is_none() && out.get("name_sanitized").is_none());
    }

    #[test]
    fn edit_finds_by_id_then_folder_and_lists_the_ids_when_neither() {
        let mut jobs = jobs_with(&["a", "b"]);
        jobs.jobs[1].task_folder = "b-folder".into();
        assert_eq!(find_job(&jobs.jobs, "b"), Some((1, false)));
        assert_eq!(find_job(&jobs.jobs, "b-folder"), Some((1, true)));
        let edit = CronEdit { job_id: "zzz".into(), title: Some("T".into()), ..CronEdit::default() };
        let answer = plan_edit(&jobs, &edit).unwrap_err();
        assert_eq!(answer.exit_code, 1);
        assert_eq!(answer.output["available_jobs"], json!(["a", "b"]));
    }

    #[test]
    fn edit_reports_what_changed_in_order_and_clears() {
        let mut jobs = jobs_with(&["a"]);
        jobs.jobs[0].provider = Some("codex".into());
        jobs.jobs[0].quiet_start = Some(22);
        let edit = CronEdit {
            job_id: "a".into(),
            schedule: Some("*/5 * * * *".into()),
            title: Some("Daily report".into()),
            clear_provider: true,
            clear_quiet_hours: true,
            clear_model: true,
            enabled: Some(false),
            chat_id: Some(ChatId::from(-100_123_i64)),
            ..CronEdit::default()
        };
        let plan = plan_edit(&jobs, &edit).unwrap();
        assert_eq!(
            plan.updated_fields,
            ["schedule", "chat_id", "quiet_hours (cleared)", "provider (cleared)", "enabled"]
        );
        assert_eq!((plan.job.provider.as_deref(), plan.job.quiet_start, plan.job.enabled), (None, None, false));
        let out = edit_output(&edit, &plan, &FolderRename::default());
        assert_eq!(out["updated"], true);
        assert_eq!(out["schedule"], "*/5 * * * *");
        assert_eq!(out["task_folder"], "cron_tasks/a");
        assert!(out.get("matched_via").is_none());
    }

    #[test]
    fn an_edit_that_changes_nothing_says_so() {
        let jobs = jobs_with(&["a"]);
        let edit = CronEdit { job_id: "a".into(), title: Some("Daily report".into()), ..CronEdit::default() };
        let plan = plan_edit(&jobs, &edit).unwrap();
        assert!(plan.updated_fields.is_empty());
        let out = edit_output(&edit, &plan, &FolderRename::default());
        assert_eq!(out["updated"], false);
        assert!(out["message"].is_string());
    }

    #[test]
    fn edit_refuses_bad_values_before_anything_changes() {
        let jobs = jobs_with(&["a"]);
        let cases: Vec<(CronEdit, &str)> = vec![
            (CronEdit { title: Some(" ".into()), ..CronEdit::default() }, "--title"),
            (CronEdit { schedule: Some("".into()), ..CronEdit::default() }, "--schedule"),
            (CronEdit { schedule: Some("* * *".into()), ..CronEdit::default() }, "fields"),
            (CronEdit { model: Some("".into()), ..CronEdit::default() }, "--model"),
            (CronEdit { timezone: Some("Nowhere/City".into()), ..CronEdit::default() }, "IANA"),
            (CronEdit { transport: Some("xx".into()), ..CronEdit::default() }, "--transport"),
            (CronEdit { quiet_start: Some(30), ..CronEdit::default() }, "--quiet-start"),
        ];
        for (mut edit, expected) in cases {
            edit.job_id = "a".into();
            let answer = plan_edit(&jobs, &edit).unwrap_err();
            assert!(answer.output["error"].as_str().unwrap().contains(expected), "{:?}", answer.output);
        }
    }

    #[test]
    fn rename_sanitizes_and_refuses_a_taken_id() {
        let jobs = jobs_with(&["a", "b"]);
        let edit = CronEdit { job_id: "a".into(), name: Some("Weekly Report".into()), ..CronEdit::default() };
        let plan = plan_edit(&jobs, &edit).unwrap();
        assert_eq!(plan.rename.as_ref().map(|t| t.name.as_str()), Some("weekly-report"));
        assert_eq!((plan.job.id.as_str(), plan.job.task_folder.as_str()), ("weekly-report", "weekly-report"));
        assert_eq!(plan.updated_fields, ["id", "task_folder"]);
        let out = edit_output(&edit, &plan, &FolderRename { folder_renamed: true, ..FolderRename::default() });
        assert_eq!((&out["original_name"], &out["new_name"]), (&json!("a"), &json!("weekly-report")));
        assert_eq!(out["name_sanitized"], true);
        let taken = CronEdit { job_id: "a".into(), name: Some("B".into()), ..CronEdit::default() };
        assert!(plan_edit(&jobs, &taken).unwrap_err().output["error"].as_str().unwrap().contains("'b' already exists"));
        let same = CronEdit { job_id: "a".into(), name: Some("a".into()), ..CronEdit::default() };
        assert!(plan_edit(&jobs, &same).unwrap().rename.is_none());
    }

    #[test]
    fn an_edit_without_options_asks_for_nothing() {
        assert!(!CronEdit { job_id: "a".into(), ..CronEdit::default() }.asks_for_a_change());
        assert!(CronEdit { clear_dependency: true, ..CronEdit::default() }.asks_for_a_change());
        assert!(CronEdit { enabled: Some(true), ..CronEdit::default() }.asks_for_a_change());
    }

    #[test]
    fn remove_output_tells_how_the_job_was_found() {
        let folder = FolderRemoval { deleted: true, path: "/h/workspace/cron_tasks/a".into(), error: None };
        let out = remove_output("a", "a", &folder);
        assert_eq!(out["json_entry_removed"], true);
        assert!(out.get("matched_via").is_none() && out.get("folder_note").is_none());
        let out = remove_output("a-folder", "a", &FolderRemoval { deleted: false, ..folder });
        assert_eq!(out["matched_via"], "task_folder");
        assert!(out["folder_note"].is_string());
    }

    #[test]
    fn list_shows_each_job_and_the_zone() {
        let mut jobs = jobs_with(&["a", "b"]);
        jobs.jobs[1].timezone = Some("Asia/Tokyo".into());
        let out = list_output(&jobs, &|folder| folder == "a", "");
        assert_eq!(out["count"], 2);
        assert_eq!(out["jobs"][0]["task_folder_exists"], true);
        assert_eq!(out["jobs"][1]["task_folder_exists"], false);
        assert!(out["jobs"][0].get("timezone").is_none());
        assert_eq!(out["jobs"][1]["timezone"], "Asia/Tokyo");
        assert!(out["user_timezone"].as_str().unwrap().starts_with("NOT SET"));
        assert_eq!(list_output(&jobs, &|_| true, "Europe/Berlin")["user_timezone"], "Europe/Berlin");
    }

    #[test]
    fn time_shows_utc_the_user_zone_and_the_asked_zones() {
        let now = Utc.with_ymd_and_hms(2025, 7, 1, 22, 30, 0).unwrap();
        let answer = time_output(now, "Asia/Tokyo", None, None);
        assert!(answer.is_success());
        assert_eq!(answer.output["utc"], "2025-07-01 22:30:00 UTC");
        assert_eq!(
            answer.output["user_time"],
            json!({"zone": "Asia/Tokyo", "time": "07:30", "date": "2025-07-02", "utc_offset": "+0900"})
        );
        assert_eq!(answer.output["common_zones"].as_array().unwrap().len(), COMMON_ZONES.len());
        let answer = time_output(now, "", Some("America/New_York"), None);
        assert_eq!(answer.output["requested_zone"]["utc_offset"], "-0400");
        assert!(answer.output["user_timezone_hint"].is_string());
        assert!(answer.output["user_timezone_configured"].is_null());
        let answer = time_output(now, "", None, Some("Europe/Berlin, Nowhere/X"));
        assert_eq!(answer.output["requested_zones"][0]["time"], "00:30");
        assert_eq!(answer.output["unknown_zones"], json!(["Nowhere/X"]));
        let answer = time_output(now, "Bad/Zone", Some("Nowhere/X"), None);
        assert_eq!(answer.exit_code, 1);
        assert!(answer.output["error"].as_str().unwrap().contains("Nowhere/X"));
        assert!(answer.output["user_timezone_error"].is_string());
    }
}

//! `ductor cron add|edit|list|remove|time` (ops spec §6.1): the flags, the usage texts, and
//! the answer printed as one JSON object (exit 1 with `{"error": …}` when refused). Changes go
//! through the running service when there is one (`cli::tool_command`); the work is in
//! `store::tool_commands::cron`, the rules in `core::tool_commands::cron`.

use clap::ArgMatches;

use crate::cli::tool_command::{
    Outcome, chat_id, choice_arg, cli_parameters, command, deliver, flag, flag_arg, hour, hour_arg, integer, matches,
    missing, missing_argument, positional, text, text_arg, usage_for_missing,
};
use crate::core::session_key::ChatId;
use crate::core::tool_commands::cron::{CronAdd, CronEdit, CronOp, CronRemove, TRANSPORTS};
use crate::core::tool_commands::{PROVIDERS, REASONING_EFFORTS, ToolAnswer};
use crate::store::paths::DuctorPaths;
use crate::store::tool_commands;

/// The internal API route that takes cron changes.
pub const SERVICE_ROUTE: &str = "/interagent/cron";

const GROUP_HELP: &str = "\
ductor cron — scheduled jobs (cron_jobs.json and cron_tasks/<name>/). Each prints one JSON object.

  ductor cron add      new job with its task folder      (ductor cron add --help)
  ductor cron edit     change a job in place (also rename)
  ductor cron list     all jobs, their folders and last runs
  ductor cron remove   delete a job and its task folder
  ductor cron time     current time in UTC, the configured zone and other zones
";

const ADD_USAGE: &str = r#"ductor cron add — schedule a job. Makes its task folder cron_tasks/<name>/ (rule file,
TASK_DESCRIPTION.md, <name>_MEMORY.md, scripts/) and adds it to cron_jobs.json; a running
ductor schedules it at once.

Required:
  --name NAME            job id and folder name; lowercased, anything but a-z 0-9 - becomes -
  --title TITLE          short title, shown above every result
  --description TEXT     what the job is for (the Goal in TASK_DESCRIPTION.md)
  --schedule "M H D M W" cron expression: minute hour day-of-month month day-of-week

Optional:
  --timezone IANA        the job's zone (e.g. Europe/Berlin); default: user_timezone, else UTC
  --provider P           claude | codex | gemini (default: the configured provider)
  --model M              a model of that provider (e.g. sonnet, gpt-5.4, flash)
  --reasoning-effort E   low | medium | high | xhigh (codex)
  --cli-parameters JSON  extra CLI flags as a JSON array, e.g. '["--chrome"]'
  --quiet-start H        no run from this hour (0-23) ...
  --quiet-end H          ... until this hour (exclusive; 22 and 7 = 22:00-06:59)
  --dependency NAME      jobs with the same dependency never run at the same time
  --silent-on-success    deliver only failures

The job answers in the chat it was created from (DUCTOR_CHAT_ID, DUCTOR_TOPIC_ID,
DUCTOR_TRANSPORT); without a chat it goes to every allowed user.

Schedules: "0 9 * * *" daily 09:00 · "*/15 * * * *" every 15 minutes · "0 9 * * 1-5"
weekdays 09:00 · "30 7 1 * *" the 1st at 07:30 · "0 18 * * fri" Fridays 18:00.
Check the time first: ductor cron time.

Example:
  ductor cron add --name weather --title "Morning weather" \
      --description "Summarise today's weather for Berlin" --schedule "0 7 * * *"

Then write the assignment into cron_tasks/<name>/TASK_DESCRIPTION.md: the job's agent starts
in that folder with nothing else to go on.
"#;

const EDIT_USAGE: &str = r#"ductor cron edit JOB_ID [changes] — change a job in place (never delete and re-create).

  --name NEW               rename the job, its folder and its memory file
  --title T  --description D  --schedule "M H D M W"  --timezone IANA ("" removes it)
  --provider P  --model M  --reasoning-effort E  --cli-parameters JSON
  --quiet-start H  --quiet-end H  --dependency NAME
  --chat-id ID  --topic-id ID  --transport tg|mx  --clear-topic-id
  --enable | --disable
  --silent-on-success | --no-silent-on-success
  --clear-provider  --clear-model  --clear-reasoning-effort  --clear-cli-parameters
  --clear-quiet-hours  --clear-dependency

JOB_ID is the id from `ductor cron list` (the folder name works too).

Examples:
  ductor cron edit weather --schedule "30 7 * * *"
  ductor cron edit weather --name weather-berlin
  ductor cron edit weather --disable
"#;

const REMOVE_USAGE: &str = r#"ductor cron remove JOB_ID — remove a job AND delete its folder cron_tasks/<folder>/ with
everything in it. JOB_ID is the id from `ductor cron list`. Ask the user first.
"#;

const LIST_USAGE: &str =
    "ductor cron list — every job with its schedule, state, last run and whether its folder exists.\n";

const TIME_USAGE: &str = r#"ductor cron time [--zone IANA | --zones A,B,...] — the time now in UTC, in the configured
user_timezone, and in the given zones (default: a set of common ones). An unknown --zone is an error.
"#;

/// Runs `ductor cron <args>`; returns the exit status.
pub fn run(paths: &DuctorPaths, args: &[String]) -> i32 {
    let Some((sub, rest)) = args.split_first() else {
        print!("{GROUP_HELP}");
        return 0;
    };
    let result = match sub.as_str() {
        "add" => add(paths, rest),
        "edit" => edit(paths, rest),
        "remove" => remove(paths, rest),
        "list" => list(paths, rest),
        "time" => time(paths, rest),
        "help" | "-h" | "--help" => {
            print!("{GROUP_HELP}");
            return 0;
        }
        other => {
            print!("{GROUP_HELP}");
            println!("\nUnknown command: ductor cron {other}");
            return 1;
        }
    };
    result.exit()
}

fn override_args(cmd: clap::Command) -> clap::Command {
    cmd.arg(choice_arg("provider", &PROVIDERS))
        .arg(text_arg("model"))
        .arg(choice_arg("reasoning-effort", &REASONING_EFFORTS))
        .arg(text_arg("cli-parameters"))
        .arg(hour_arg("quiet-start"))
        .arg(hour_arg("quiet-end"))
        .arg(text_arg("dependency"))
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn add(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let cmd = override_args(command("ductor cron add"))
        .arg(text_arg("name"))
        .arg(text_arg("title"))
        .arg(text_arg("description"))
        .arg(text_arg("schedule"))
        .arg(text_arg("timezone"))
        .arg(flag_arg("silent-on-success"));
    let m = match matches(cmd, args, ADD_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let absent = missing(&m, &["name", "title", "description", "schedule"]);
    if !absent.is_empty() {
        return Outcome::Printed(usage_for_missing(ADD_USAGE, &absent));
    }
    let request = match add_request(&m) {
        Ok(request) => request,
        Err(answer) => return answer.into(),
    };
    deliver(paths, SERVICE_ROUTE, &CronOp::Add(request), tool_commands::cron::apply).into()
}

fn add_request(m: &ArgMatches) -> Result<CronAdd, ToolAnswer> {
    let chat_id = env_value("DUCTOR_CHAT_ID")
        .map(|raw| {
            raw.parse::<ChatId>().map_err(|_| ToolAnswer::error(format!("DUCTOR_CHAT_ID is not a chat id: {raw:?}")))
        })
        .transpose()?;
    let topic_id = env_value("DUCTOR_TOPIC_ID")
        .map(|raw| {
            raw.parse::<i64>().map_err(|_| ToolAnswer::error(format!("DUCTOR_TOPIC_ID is not a topic id: {raw:?}")))
        })
        .transpose()?;
    Ok(CronAdd {
        name: text(m, "name").unwrap_or_default(),
        title: text(m, "title").unwrap_or_default(),
        description: text(m, "description").unwrap_or_default(),
        schedule: text(m, "schedule").unwrap_or_default(),
        timezone: text(m, "timezone"),
        provider: text(m, "provider"),
        model: text(m, "model"),
        reasoning_effort: text(m, "reasoning-effort"),
        cli_parameters: cli_parameters(m)?,
        quiet_start: hour(m, "quiet-start"),
        quiet_end: hour(m, "quiet-end"),
        dependency: text(m, "dependency"),
        silent_on_success: flag(m, "silent-on-success"),
        chat_id,
        topic_id,
        transport: env_value("DUCTOR_TRANSPORT").unwrap_or_else(|| "tg".to_owned()),
    })
}

fn edit(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let mut cmd = override_args(command("ductor cron edit"))
        .arg(positional("job-id", 1))
        .arg(text_arg("name"))
        .arg(text_arg("title"))
        .arg(text_arg("description"))
        .arg(text_arg("schedule"))
        .arg(text_arg("timezone"))
        .arg(text_arg("chat-id"))
        .arg(text_arg("topic-id"))
        .arg(choice_arg("transport", &TRANSPORTS))
        .arg(flag_arg("enable").conflicts_with("disable"))
        .arg(flag_arg("disable"))
        .arg(flag_arg("silent-on-success").conflicts_with("no-silent-on-success"))
        .arg(flag_arg("no-silent-on-success"));
    for clear in [
        "clear-topic-id",
        "clear-provider",
        "clear-model",
        "clear-reasoning-effort",
        "clear-cli-parameters",
        "clear-quiet-hours",
        "clear-dependency",
    ] {
        cmd = cmd.arg(flag_arg(clear));
    }
    let m = match matches(cmd, args, EDIT_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let Some(job_id) = text(&m, "job-id").filter(|id| !id.trim().is_empty()) else {
        return missing_argument(EDIT_USAGE, "JOB_ID");
    };
    let request = match edit_request(&m, job_id) {
        Ok(request) => request,
        Err(answer) => return answer.into(),
    };
    if !request.asks_for_a_change() {
        return missing_argument(EDIT_USAGE, "at least one change (e.g. --schedule, --title, --name, --disable)");
    }
    deliver(paths, SERVICE_ROUTE, &CronOp::Edit(request), tool_commands::cron::apply).into()
}

fn choose(m: &ArgMatches, yes: &str, no: &str) -> Option<bool> {
    if flag(m, yes) {
        Some(true)
    } else if flag(m, no) {
        Some(false)
    } else {
        None
    }
}

fn edit_request(m: &ArgMatches, job_id: String) -> Result<CronEdit, ToolAnswer> {
    Ok(CronEdit {
        job_id,
        name: text(m, "name"),
        title: text(m, "title"),
        description: text(m, "description"),
        schedule: text(m, "schedule"),
        timezone: text(m, "timezone"),
        provider: text(m, "provider"),
        model: text(m, "model"),
        reasoning_effort: text(m, "reasoning-effort"),
        cli_parameters: cli_parameters(m)?,
        quiet_start: hour(m, "quiet-start"),
        quiet_end: hour(m, "quiet-end"),
        dependency: text(m, "dependency"),
        chat_id: chat_id(m, "chat-id")?,
        topic_id: integer(m, "topic-id")?,
        transport: text(m, "transport"),
        clear_topic_id: flag(m, "clear-topic-id"),
        silent_on_success: choose(m, "silent-on-success", "no-silent-on-success"),
        enabled: choose(m, "enable", "disable"),
        clear_provider: flag(m, "clear-provider"),
        clear_model: flag(m, "clear-model"),
        clear_reasoning_effort: flag(m, "clear-reasoning-effort"),
        clear_cli_parameters: flag(m, "clear-cli-parameters"),
        clear_quiet_hours: flag(m, "clear-quiet-hours"),
        clear_dependency: flag(m, "clear-dependency"),
    })
}

fn remove(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let m = match matches(command("ductor cron remove").arg(positional("job-id", 1)), args, REMOVE_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let Some(job_id) = text(&m, "job-id").filter(|id| !id.trim().is_empty()) else {
        return missing_argument(REMOVE_USAGE, "JOB_ID");
    };
    let op = CronOp::Remove(CronRemove { job_id });
    deliver(paths, SERVICE_ROUTE, &op, tool_commands::cron::apply).into()
}

fn list(paths: &DuctorPaths, args: &[String]) -> Outcome {
    match matches(command("ductor cron list"), args, LIST_USAGE) {
        Ok(_) => tool_commands::cron::list(paths).into(),
        Err(outcome) => outcome,
    }
}

fn time(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let cmd = command("ductor cron time").arg(text_arg("zone").conflicts_with("zones")).arg(text_arg("zones"));
    match matches(cmd, args, TIME_USAGE) {
        Ok(m) => tool_commands::cron::time(paths, text(&m, "zone").as_deref(), text(&m, "zones").as_deref()).into(),
        Err(outcome) => outcome,
    }
}

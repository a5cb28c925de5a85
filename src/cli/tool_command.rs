//! What `ductor cron` and `ductor webhook` share: the flag builders (clap), the usage and error
//! output, and the one-writer path — while ductor runs for the home (its PID lock is held by a
//! live process), a change is sent to the service (`POST /interagent/cron` or
//! `/interagent/webhooks` on `interagent_port`), which runs the same library function and
//! reloads what changed; when no service runs, or it does not answer within
//! [`SERVICE_TIMEOUT`], the command makes the change itself under the file's lock. The printed
//! JSON says which with `"via": "service"` or `"via": "local"`.

use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde::Serialize;

use crate::cli::http::post_local_json;
use crate::core::session_key::ChatId;
use crate::core::tool_commands::{ServiceRequest, ToolAnswer, VIA_LOCAL, VIA_SERVICE, parse_cli_parameters};
use crate::store::interagent_token::client_token;
use crate::store::paths::DuctorPaths;
use crate::store::pid_lock::{is_alive, read_pid};
use crate::store::tool_commands::{Applied, settings};

/// How long a command waits for the running service before it writes the file itself.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(5);

/// A sub-command's parser: no program name, our own `--help`, no `--version`.
pub fn command(name: &'static str) -> Command {
    Command::new(name)
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(Arg::new("help").long("help").short('h').action(ArgAction::SetTrue))
}

/// `--<long> VALUE` (a value may start with `-`).
pub fn text_arg(long: &'static str) -> Arg {
    Arg::new(long).long(long).num_args(1).allow_hyphen_values(true).action(ArgAction::Set)
}

/// `--<long>` without a value.
pub fn flag_arg(long: &'static str) -> Arg {
    Arg::new(long).long(long).action(ArgAction::SetTrue)
}

/// `--<long> HOUR` (0–23).
pub fn hour_arg(long: &'static str) -> Arg {
    Arg::new(long).long(long).num_args(1).action(ArgAction::Set).value_parser(clap::value_parser!(i64).range(0..=23))
}

/// `--<long> VALUE` restricted to `values`.
pub fn choice_arg(long: &'static str, values: &'static [&'static str]) -> Arg {
    Arg::new(long)
        .long(long)
        .num_args(1)
        .action(ArgAction::Set)
        .value_parser(clap::builder::PossibleValuesParser::new(values.iter().copied()))
}

/// A positional argument at `index` (1-based).
pub fn positional(id: &'static str, index: usize) -> Arg {
    Arg::new(id).index(index).num_args(1).action(ArgAction::Set)
}

/// Parses a sub-command's arguments; a clap error becomes `{"error": …}` (exit 1).
pub fn parse(command: Command, args: &[String]) -> Result<ArgMatches, ToolAnswer> {
    let name = command.get_name().to_owned();
    command.try_get_matches_from(args).map_err(|e| {
        let text = e.to_string();
        let message: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .map(|l| l.strip_prefix("error: ").unwrap_or(l))
            .collect();
        ToolAnswer::error_with(message.join(" "), serde_json::json!({ "usage": format!("{name} --help") }))
    })
}

/// The value of a text option, if given.
pub fn text(matches: &ArgMatches, id: &str) -> Option<String> {
    matches.get_one::<String>(id).cloned()
}

/// The value of an hour option, if given.
pub fn hour(matches: &ArgMatches, id: &str) -> Option<i64> {
    matches.get_one::<i64>(id).copied()
}

/// Whether a flag was given.
pub fn flag(matches: &ArgMatches, id: &str) -> bool {
    matches.get_flag(id)
}

/// `--help` was asked for.
pub fn wants_help(matches: &ArgMatches) -> bool {
    matches.get_flag("help")
}

/// `--cli-parameters`, parsed (an unusable value is the answer to print).
pub fn cli_parameters(matches: &ArgMatches) -> Result<Option<Vec<String>>, ToolAnswer> {
    text(matches, "cli-parameters").map(|raw| parse_cli_parameters(&raw).map_err(ToolAnswer::error)).transpose()
}

/// A chat id option (`--chat-id`; negative for groups).
pub fn chat_id(matches: &ArgMatches, id: &str) -> Result<Option<ChatId>, ToolAnswer> {
    text(matches, id)
        .map(|raw| {
            raw.trim()
                .parse::<ChatId>()
                .map_err(|_| ToolAnswer::error(format!("--{id} must be an integer chat id; got {raw:?}")))
        })
        .transpose()
}

/// An integer option (`--topic-id`).
pub fn integer(matches: &ArgMatches, id: &str) -> Result<Option<i64>, ToolAnswer> {
    text(matches, id)
        .map(|raw| {
            raw.trim().parse::<i64>().map_err(|_| ToolAnswer::error(format!("--{id} must be an integer; got {raw:?}")))
        })
        .transpose()
}

/// The names of the required options that are missing or empty.
pub fn missing<'a>(matches: &ArgMatches, required: &[&'a str]) -> Vec<&'a str> {
    required.iter().copied().filter(|id| text(matches, id).is_none_or(|v| v.trim().is_empty())).collect()
}

/// Prints a usage text and, when given, the missing options; returns exit status 1.
pub fn usage_for_missing(usage: &str, missing: &[&str]) -> i32 {
    print!("{usage}");
    if !missing.is_empty() {
        let flags: Vec<String> = missing.iter().map(|m| format!("--{m}")).collect();
        println!("\nMissing: {}", flags.join(", "));
    }
    1
}

/// What a sub-command ended with.
#[derive(Debug)]
pub enum Outcome {
    /// A usage text was printed; the exit status.
    Printed(i32),
    /// The answer to print.
    Answer(ToolAnswer),
}

impl From<ToolAnswer> for Outcome {
    fn from(answer: ToolAnswer) -> Self {
        Self::Answer(answer)
    }
}

impl Outcome {
    /// Prints the answer (a usage text is printed already); returns the exit status.
    pub fn exit(self) -> i32 {
        match self {
            Self::Printed(code) => code,
            Self::Answer(answer) => print_answer(&answer),
        }
    }
}

/// Parses a sub-command's flags; `--help` prints `usage` (exit 0), a bad flag is an answer.
pub fn matches(cmd: Command, args: &[String], usage: &str) -> Result<ArgMatches, Outcome> {
    let matches = parse(cmd, args).map_err(Outcome::Answer)?;
    if wants_help(&matches) {
        print!("{usage}");
        return Err(Outcome::Printed(0));
    }
    Ok(matches)
}

/// Prints `usage` and what is missing; exit status 1.
pub fn missing_argument(usage: &str, what: &str) -> Outcome {
    print!("{usage}");
    println!("\nMissing: {what}");
    Outcome::Printed(1)
}

/// Prints the answer's JSON object on stdout (one line); returns its exit status.
pub fn print_answer(answer: &ToolAnswer) -> i32 {
    match serde_json::to_string(&answer.output) {
        Ok(line) => println!("{line}"),
        Err(e) => println!("{{\"error\": \"could not write the answer: {e}\"}}"),
    }
    answer.exit_code
}

/// Runs a change: through the running service when there is one for this home, else here with
/// `local`. The answer carries `via`.
pub fn deliver<Op: Serialize>(
    paths: &DuctorPaths,
    route: &str,
    op: &Op,
    local: impl FnOnce(&DuctorPaths, &Op) -> Applied,
) -> ToolAnswer {
    if let Some(answer) = through_service(paths, route, op) {
        return answer.with_via(VIA_SERVICE);
    }
    local(paths, op).answer.with_via(VIA_LOCAL)
}

/// The service's answer, or `None` when no service runs for the home or it did not answer.
fn through_service<Op: Serialize>(paths: &DuctorPaths, route: &str, op: &Op) -> Option<ToolAnswer> {
    let pid = read_pid(&paths.pid_file()).filter(|pid| is_alive(*pid))?;
    let port = settings(paths).interagent_port;
    let request = ServiceRequest { home: paths.home().to_string(), op };
    let body = serde_json::to_vec(&request).ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let fallback = |why: String| {
        eprintln!("note: ductor (pid {pid}) runs for this home but {why}; making the change here instead.");
        None
    };
    let token = client_token(paths);
    match runtime.block_on(post_local_json(port, route, &body, token.as_deref(), SERVICE_TIMEOUT)) {
        Ok(response) if response.status == 200 => match serde_json::from_str::<ToolAnswer>(&response.body) {
            Ok(answer) => Some(answer),
            Err(e) => fallback(format!("its answer could not be read ({e})")),
        },
        Ok(response) => {
            fallback(format!("its internal API answered HTTP {}: {}", response.status, response.body.trim()))
        }
        Err(e) => fallback(format!("its internal API on port {port} did not answer ({e})")),
    }
}

//! The `ductor` command line: permissive dispatch (ops spec §18.1) onto run, status, stop,
//! restart, help and the tool commands `cron` and `webhook`. clap captures the arguments; the dispatch rule of the original (first
//! known word wins, flags anywhere) is [`crate::core::cli_args::parse`].

pub mod api;
pub mod chat;
pub mod cron;
pub mod help;
pub mod http;
pub mod logging;
pub mod run;
pub mod status;
pub mod stop;
pub mod tool_command;
pub mod webhook;

use anyhow::Context;

use crate::core::cli_args::{self, CommandWord};
use crate::store::paths::DuctorPaths;

fn clap_command() -> clap::Command {
    clap::Command::new("ductor").disable_help_flag(true).disable_version_flag(true).arg(
        clap::Arg::new("words")
            .num_args(0..)
            .trailing_var_arg(true)
            .allow_hyphen_values(true)
            .value_parser(clap::value_parser!(String)),
    )
}

/// Runs the command line; returns the process exit status.
pub fn main_with_args(argv: Vec<String>) -> anyhow::Result<i32> {
    let matches = clap_command().try_get_matches_from(argv).context("reading the command line")?;
    let args: Vec<String> = matches.get_many::<String>("words").map(|w| w.cloned().collect()).unwrap_or_default();
    let invocation = cli_args::parse(&args);
    if invocation.version {
        println!("ductor {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    let paths = match DuctorPaths::resolve(None) {
        Ok(paths) => paths,
        Err(e) if matches!(invocation.command, CommandWord::Cron | CommandWord::Webhook) => {
            let answer = crate::core::tool_commands::ToolAnswer::error(format!("cannot find the ductor home: {e}"));
            return Ok(tool_command::print_answer(&answer));
        }
        Err(e) => return Err(e.into()),
    };
    match invocation.command {
        CommandWord::Cron => Ok(cron::run(&paths, &invocation.tool_args)),
        CommandWord::Webhook => Ok(webhook::run(&paths, &invocation.tool_args)),
        CommandWord::Api => Ok(api::run(&paths, &invocation.rest)),
        CommandWord::Chat => Ok(small_runtime()?.block_on(chat::run(&paths, &invocation.tool_args))),
        CommandWord::Run => run::run(&paths, invocation.verbose, &args),
        CommandWord::Status => Ok(small_runtime()?.block_on(status::run(&paths, invocation.json))),
        CommandWord::Stop => {
            stop::stop(&paths);
            Ok(0)
        }
        CommandWord::Restart => {
            stop::stop(&paths);
            let keep: Vec<String> = args.iter().filter(|a| matches!(a.as_str(), "-v" | "--verbose")).cloned().collect();
            let pid = stop::spawn_detached(&keep, stop::Console::Detach).context("starting ductor")?;
            println!("Started ductor (pid={pid}).");
            Ok(0)
        }
        CommandWord::Help => {
            print!("{}", help::text());
            Ok(small_runtime()?.block_on(status::run(&paths, false)))
        }
        other => {
            eprintln!("`ductor {}` is not available in this build yet. See `ductor help`.", other.as_str());
            Ok(2)
        }
    }
}

fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

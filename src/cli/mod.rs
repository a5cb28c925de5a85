//! The `ductor` command line: permissive dispatch (ops spec §18.1) onto run, status, stop,
//! restart, help and the tool commands `cron`, `webhook`, `task` and `agent` (`agents` for people). clap captures the arguments; the dispatch rule of the original (first
//! known word wins, flags anywhere) is [`crate::core::cli_args::parse`].

pub mod agent;
pub mod api;
pub mod chat;
pub mod command_tree;
pub mod cron;
pub mod help;
pub mod http;
pub mod logging;
pub mod onboarding;
pub mod pipe;
pub mod run;
pub mod service;
pub mod status;
pub mod stop;
pub mod task;
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
    if invocation.help && !matches!(invocation.command, CommandWord::Help | CommandWord::Run) {
        let words: Vec<&str> =
            std::iter::once(invocation.command.as_str()).chain(invocation.rest.iter().map(String::as_str)).collect();
        // The deepest known command of the words (`service install --help`, `service nope --help`).
        let text = (1..=words.len()).rev().find_map(|n| command_tree::help_of(&words[..n]));
        print!("{}", text.unwrap_or_default());
        return Ok(0);
    }
    if invocation.command == CommandWord::Completions {
        let shell = invocation.rest.first().map_or("", String::as_str);
        return Ok(match command_tree::completions(shell) {
            Some(script) => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                if out.write_all(&script).and_then(|()| out.flush()).is_err() {
                    return Ok(0);
                }
                0
            }
            None => {
                eprintln!("usage: ductor completions bash|zsh|fish");
                2
            }
        });
    }
    let paths = match DuctorPaths::resolve(None) {
        Ok(paths) => paths,
        Err(e)
            if matches!(
                invocation.command,
                CommandWord::Cron | CommandWord::Webhook | CommandWord::Task | CommandWord::Agent | CommandWord::Agents
            ) =>
        {
            let answer = crate::core::tool_commands::ToolAnswer::error(format!("cannot find the ductor home: {e}"));
            return Ok(tool_command::print_answer(&answer));
        }
        Err(e) => return Err(e.into()),
    };
    match invocation.command {
        CommandWord::Cron => Ok(cron::run(&paths, &invocation.tool_args)),
        CommandWord::Webhook => Ok(webhook::run(&paths, &invocation.tool_args)),
        CommandWord::Agent | CommandWord::Agents => Ok(agent::run(&paths, &invocation.tool_args)),
        CommandWord::Task => Ok(task::run(&paths, &invocation.tool_args)),
        CommandWord::Api => Ok(api::run(&paths, &invocation.rest)),
        CommandWord::Chat => Ok(small_runtime()?.block_on(chat::run(&paths, &invocation.tool_args))),
        CommandWord::Run => run::run(&paths, invocation.verbose, &args),
        CommandWord::Status => Ok(small_runtime()?.block_on(status::run(&paths, invocation.json))),
        CommandWord::Stop => {
            service::stop_if_active();
            stop::stop(&paths);
            Ok(0)
        }
        CommandWord::Service => Ok(service::run(&paths, invocation.rest.first().map(String::as_str))),
        CommandWord::Onboarding => onboarding::run(&paths, &args, invocation.verbose),
        CommandWord::Restart => {
            if service::restart_if_active() {
                return Ok(0);
            }
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

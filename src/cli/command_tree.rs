//! The commands of `ductor` as a clap command tree: the source of `--help` for every command and
//! group and of the shell completions (`ductor completions bash|zsh|fish`). The dispatch itself
//! stays the permissive word rule of the original (`core::cli_args`); this tree only describes.

use clap::{Arg, ArgAction, Command};

/// The exit statuses of `ductor`, shown in every `--help` and in the README.
pub const EXIT_CODES: &str = "\
Exit status:
  0   done (also: the service stopped on SIGTERM/SIGINT, or a closed output pipe)
  1   error (bad config value, invalid config.json, a second instance, a fatal start error)
  2   a command this build does not have
  42  the service asked to be restarted (a service manager restarts it)
  78  not configured and no terminal to ask on (EX_CONFIG)";

fn flag(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name).long(name).action(ArgAction::SetTrue).help(help)
}

fn value(name: &'static str, placeholder: &'static str, help: &'static str) -> Arg {
    Arg::new(name).long(name).value_name(placeholder).help(help)
}

fn service_group() -> Command {
    Command::new("service")
        .about("Run ductor as a service that starts at boot and restarts on exit 42 or a crash")
        .long_about(
            "Run ductor as a service: a systemd user unit (~/.config/systemd/user/ductor.service) on \
             Linux, a launch agent (~/Library/LaunchAgents/dev.ductor.plist) on macOS.",
        )
        .subcommand(Command::new("install").about("Write the unit, enable and start it (enables linger on Linux)"))
        .subcommand(Command::new("status").about("The service manager's view of the service"))
        .subcommand(Command::new("start").about("Start the installed service"))
        .subcommand(Command::new("stop").about("Stop the installed service"))
        .subcommand(Command::new("logs").about("Follow the service's log"))
        .subcommand(Command::new("uninstall").about("Stop and disable the service and remove its unit"))
}

fn onboarding(name: &'static str, about: &'static str) -> Command {
    Command::new(name)
        .about(about)
        .long_about(
            "The setup wizard on a terminal: CLI detection, the risk confirmation, the bot token \
             (checked with Telegram), pairing (send the shown code to your bot, no numeric id \
             needed), time zone, the service offer. Ctrl-C writes nothing. With --telegram-token \
             and --allowed-user it asks nothing and writes the config at once.",
        )
        .arg(value("telegram-token", "TOKEN", "The bot token from @BotFather (no prompts)"))
        .arg(
            value("allowed-user", "ID", "A Telegram user id allowed to talk to the bot (repeatable)")
                .action(ArgAction::Append),
        )
        .arg(value("timezone", "ZONE", "IANA time zone, e.g. Europe/Berlin (default: the system's)"))
        .arg(flag("no-service", "Do not install the service"))
}

/// The whole tree.
pub fn command() -> Command {
    Command::new("ductor")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Talk to the coding-agent CLIs (claude, codex, gemini) from Telegram and Matrix")
        .long_about(
            "Without a command: start the service in the foreground; on a terminal with no usable \
             config the setup wizard runs first.",
        )
        .after_help(EXIT_CODES)
        .arg(flag("verbose", "Debug logging").short('v').global(true))
        .subcommand(Command::new("status").about("Status panel and the live actor tree").arg(flag("json", "As JSON")))
        .subcommand(Command::new("stop").about("Stop the running bot (and the service first, so it does not respawn)"))
        .subcommand(Command::new("restart").about("Stop the running bot and start it again in the background"))
        .subcommand(onboarding("onboarding", "Set up (again): the setup wizard"))
        .subcommand(onboarding("reset", "The same as onboarding"))
        .subcommand(service_group())
        .subcommand(
            Command::new("completions")
                .about("Print the shell completion script")
                .arg(Arg::new("shell").required(true).value_parser(["bash", "zsh", "fish"])),
        )
        .subcommand(
            Command::new("cron")
                .about("Scheduled jobs: add, edit, list, remove, time (JSON output)")
                .disable_help_flag(true)
                .arg(Arg::new("args").num_args(0..).trailing_var_arg(true).allow_hyphen_values(true)),
        )
        .subcommand(
            Command::new("webhook")
                .about("Webhooks: add, edit, list, remove, rotate-token, test (JSON output)")
                .disable_help_flag(true)
                .arg(Arg::new("args").num_args(0..).trailing_var_arg(true).allow_hyphen_values(true)),
        )
}

/// The `--help` text of a command or group (`path` = the words after `ductor`, e.g.
/// `["service", "install"]`); `None` when the tree does not know the path.
pub fn help_of(path: &[&str]) -> Option<String> {
    let mut root = command();
    root.build();
    let mut current = &mut root;
    for word in path {
        current = current.find_subcommand_mut(word)?;
    }
    let mut text = current.render_long_help().to_string();
    if !path.is_empty() {
        text.push('\n');
        text.push_str(EXIT_CODES);
        text.push('\n');
    }
    Some(text)
}

/// The completion script for `shell` (`bash`, `zsh`, `fish`).
pub fn completions(shell: &str) -> Option<Vec<u8>> {
    use clap_complete::Shell;
    let shell = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        _ => return None,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "ductor", &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_group_has_help_with_the_exit_codes() {
        command().debug_assert();
        for path in [&["status"][..], &["service"], &["service", "install"], &["onboarding"], &["completions"]] {
            let text = help_of(path).unwrap_or_default();
            assert!(text.contains("Usage: ductor"), "{path:?}: {text}");
            assert!(text.contains("78  not configured"), "{path:?}: {text}");
        }
        assert!(help_of(&["nope"]).is_none());
    }

    #[test]
    fn completions_name_the_commands() {
        for shell in ["bash", "zsh", "fish"] {
            let script = String::from_utf8(completions(shell).unwrap_or_default()).unwrap_or_default();
            assert!(script.contains("onboarding") && script.contains("uninstall"), "{shell}");
        }
        assert!(completions("tcsh").is_none());
    }
}

//! The setup wizard (ops spec §19) and `ductor onboarding` / `ductor reset`: on a terminal,
//! dialoguer prompts — CLI detection, the risk confirmation, transport, the bot token checked
//! with `getMe`, pairing (the person sends a one-time code to the bot; no numeric id to look
//! up), time zone, the service offer, the summary. Nothing is written before the summary:
//! Ctrl-C anywhere leaves the home as it was. With `--telegram-token` and `--allowed-user` it
//! asks nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use dialoguer::{Confirm, Input, Select};
use serde_json::Value;
use teloxide::prelude::Requester;
use teloxide::types::UpdateKind;

use crate::cli::service::Backend;
use crate::core::onboarding::{PAIRING_VALID_FOR, WizardAnswers, config_with, pairing_code, pairs, token_shape_ok};
use crate::provider::ProviderKind;
use crate::provider::auth::{AuthProbe, AuthStatus};
use crate::store::paths::DuctorPaths;

/// Whether ductor can ask: stdin and stdout are terminals.
pub fn on_a_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// How the wizard ended.
enum Outcome {
    /// Config written; the service was installed (it runs ductor) or not.
    Configured { service_installed: bool },
    /// Cancelled or stopped early; nothing written.
    NothingWritten,
}

/// `ductor` on a terminal with no usable config: the wizard, then the bot in the foreground
/// (unless a service was installed, which runs it).
pub fn wizard_then_run(paths: &DuctorPaths, verbose: bool) -> anyhow::Result<i32> {
    match wizard(paths)? {
        Outcome::Configured { service_installed: true } | Outcome::NothingWritten => Ok(0),
        Outcome::Configured { service_installed: false } => {
            let keep: Vec<String> = if verbose { vec!["-v".to_owned()] } else { Vec::new() };
            crate::cli::run::run(paths, verbose, &keep)
        }
    }
}

/// `ductor onboarding` / `ductor reset` with the words after it.
pub fn run(paths: &DuctorPaths, args: &[String], verbose: bool) -> anyhow::Result<i32> {
    let words = args.iter().skip_while(|a| !matches!(a.as_str(), "onboarding" | "reset")).skip(1);
    let matches = crate::cli::command_tree::command()
        .find_subcommand("onboarding")
        .cloned()
        .context("the onboarding command")?
        .no_binary_name(true)
        .try_get_matches_from(words.filter(|a| !matches!(a.as_str(), "-v" | "--verbose")))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(token) = matches.get_one::<String>("telegram-token") {
        let users: Vec<&String> = matches.get_many::<String>("allowed-user").map(|u| u.collect()).unwrap_or_default();
        return non_interactive(
            paths,
            token,
            &users,
            matches.get_one::<String>("timezone"),
            matches.get_flag("no-service"),
        );
    }
    if !on_a_terminal() {
        eprintln!(
            "ductor onboarding needs a terminal to ask on. Without one:\n  \
             ductor onboarding --telegram-token <TOKEN> --allowed-user <ID> [--timezone <ZONE>] [--no-service]"
        );
        return Ok(crate::cli::run::EXIT_NOT_CONFIGURED);
    }
    let configured = std::fs::read(paths.config_file())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|raw| crate::core::config::configured_problems(&raw).is_empty());
    if configured {
        let prompt = "ductor is set up already. Set it up again? (the token, allowed users and time zone are \
                      replaced; every other setting and all state are kept)";
        if answered(Confirm::new().with_prompt(prompt).default(false).interact_opt()) != Some(true) {
            println!("Nothing changed.");
            return Ok(0);
        }
    }
    crate::cli::service::stop_if_active();
    crate::cli::stop::stop(paths);
    wizard_then_run(paths, verbose)
}

fn non_interactive(
    paths: &DuctorPaths,
    token: &str,
    users: &[&String],
    timezone: Option<&String>,
    no_service: bool,
) -> anyhow::Result<i32> {
    if !token_shape_ok(token) {
        eprintln!("error: --telegram-token does not look like a bot token (<digits>:<30+ characters>)");
        return Ok(2);
    }
    let ids: Result<Vec<i64>, _> = users.iter().map(|u| u.trim().parse::<i64>()).collect();
    let ids = match ids {
        Ok(ids) if !ids.is_empty() && ids.iter().all(|id| *id > 0) => ids,
        _ => {
            eprintln!("error: give at least one --allowed-user with a positive numeric Telegram user id");
            return Ok(2);
        }
    };
    let zone = match timezone {
        Some(zone) if zone.parse::<chrono_tz::Tz>().is_err() => {
            eprintln!("error: --timezone {zone:?} is not an IANA time zone (e.g. Europe/Berlin)");
            return Ok(2);
        }
        Some(zone) => zone.clone(),
        None => detected_zone(),
    };
    write_config(
        paths,
        &WizardAnswers { telegram_token: token.to_owned(), allowed_user_ids: ids, user_timezone: zone },
    )?;
    println!("Wrote {}.", paths.config_file());
    if !no_service && let Some(backend) = Backend::detect() {
        if let Err(e) = crate::cli::service::install(paths, &backend) {
            eprintln!("error: the service could not be installed: {e}");
            return Ok(1);
        }
        return Ok(0);
    }
    println!("Start it with `ductor` (or `ductor service install`).");
    Ok(0)
}

fn detected_zone() -> String {
    crate::store::host_zone::local_zone(None).name().to_owned()
}

fn write_config(paths: &DuctorPaths, answers: &WizardAnswers) -> anyhow::Result<()> {
    let existing: Option<Value> =
        std::fs::read(paths.config_file()).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let user = config_with(existing, answers);
    let resolved = crate::core::config::resolve(user).map_err(|p| anyhow::anyhow!("the new config is invalid: {p}"))?;
    paths.ensure_dirs().with_context(|| format!("preparing {}", paths.home()))?;
    crate::store::atomic::write_json_atomic(&paths.config_file(), &resolved.merged)
        .with_context(|| format!("writing {}", paths.config_file()))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(paths.config_file(), std::fs::Permissions::from_mode(0o600));
    Ok(())
}

/// A prompt's answer; `None` when cancelled (Ctrl-C, Esc).
fn answered<T>(result: dialoguer::Result<Option<T>>) -> Option<T> {
    result.ok().flatten()
}

fn cancelled() -> anyhow::Result<Outcome> {
    println!("Setup cancelled. Nothing was written.");
    Ok(Outcome::NothingWritten)
}

fn wizard(paths: &DuctorPaths) -> anyhow::Result<Outcome> {
    println!("\nductor {} — setup\n", env!("CARGO_PKG_VERSION"));
    if !detect_clis() {
        return Ok(Outcome::NothingWritten);
    }
    println!(
        "\nductor lets the people you allow run a coding agent on this machine, with your files and \
         your CLI accounts, without asking before each command."
    );
    let Some(accepted) = answered(Confirm::new().with_prompt("I understand the risk").default(false).interact_opt())
    else {
        return cancelled();
    };
    if !accepted {
        return cancelled();
    }
    let Some(transport) =
        answered(Select::new().with_prompt("Transport").items(["Telegram", "Matrix"]).default(0).interact_opt())
    else {
        return cancelled();
    };
    if transport == 1 {
        println!(
            "The wizard sets up Telegram. For Matrix, write {} from config-samples/config.matrix.json.",
            paths.config_file()
        );
        return Ok(Outcome::NothingWritten);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let api_base =
        crate::transport::telegram::api_base(std::env::var(crate::cli::run::TELEGRAM_API_ENV).ok().as_deref(), None);
    let (token, bot, name) = loop {
        let Some(token) = answered(
            Input::<String>::new()
                .with_prompt("Bot token from @BotFather")
                .validate_with(|t: &String| {
                    if token_shape_ok(t) {
                        Ok(())
                    } else {
                        Err("a token looks like 123456789:AAE… (digits, colon, 30+ characters)")
                    }
                })
                .interact_text()
                .map(Some),
        ) else {
            return cancelled();
        };
        let url = api_base.parse().with_context(|| format!("the Bot API address {api_base:?}"))?;
        let bot = teloxide::Bot::new(token.trim()).set_api_url(url);
        match runtime.block_on(async { bot.get_me().await }) {
            Ok(me) => {
                let name = me.username.clone().unwrap_or_else(|| me.first_name.clone());
                println!("Token OK: this is @{name}.");
                break (token.trim().to_owned(), bot, name);
            }
            Err(e) => println!("Telegram did not accept this token ({e}). Try again."),
        }
    };
    let Some(how) = answered(
        Select::new()
            .with_prompt("Who may talk to the bot?")
            .items(["Me: I send a code to the bot (no id needed)", "I type a numeric Telegram user id"])
            .default(0)
            .interact_opt(),
    ) else {
        return cancelled();
    };
    let user_id = if how == 0 {
        let code = pairing_code(rand::random::<u32>());
        println!(
            "\nSend this code to @{name} in a private chat:\n\n    {code}\n\n(valid for 10 minutes; Ctrl-C cancels)"
        );
        match runtime.block_on(wait_for_pairing(&bot, &code)) {
            Some((id, who)) => {
                println!("Paired with {who} (user id {id}).");
                id
            }
            None => {
                println!("The code expired. Run `ductor onboarding` again.");
                return Ok(Outcome::NothingWritten);
            }
        }
    } else {
        let Some(id) = answered(
            Input::<i64>::new()
                .with_prompt("Your Telegram user id")
                .validate_with(|id: &i64| if *id > 0 { Ok(()) } else { Err("a user id is a positive number") })
                .interact_text()
                .map(Some),
        ) else {
            return cancelled();
        };
        id
    };
    let detected = detected_zone();
    let Some(keep_zone) =
        answered(Confirm::new().with_prompt(format!("Time zone: {detected}. Keep it?")).default(true).interact_opt())
    else {
        return cancelled();
    };
    let zone = if keep_zone {
        detected
    } else {
        let Some(zone) = answered(
            Input::<String>::new()
                .with_prompt("Time zone (IANA, e.g. Europe/Berlin)")
                .validate_with(|z: &String| {
                    z.trim().parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| "not an IANA zone")
                })
                .interact_text()
                .map(Some),
        ) else {
            return cancelled();
        };
        zone.trim().to_owned()
    };
    let mut install = None;
    if let Some(backend) = Backend::detect() {
        let prompt = format!("Install ductor as a {} so it keeps running?", backend.mechanism());
        let Some(yes) = answered(Confirm::new().with_prompt(prompt).default(true).interact_opt()) else {
            return cancelled();
        };
        if yes {
            install = Some(backend);
        }
    }
    let answers = WizardAnswers { telegram_token: token, allowed_user_ids: vec![user_id], user_timezone: zone };
    write_config(paths, &answers)?;
    println!("\nDone.");
    println!("  Home:      {}", paths.home());
    println!("  Config:    {}", paths.config_file());
    println!("  Workspace: {}", paths.workspace());
    println!("  Logs:      {}", paths.logs_dir());
    if let Some(backend) = install {
        println!("Installing the service…");
        match crate::cli::service::install(paths, &backend) {
            Ok(()) => return Ok(Outcome::Configured { service_installed: true }),
            Err(e) => println!("The service could not be installed ({e}); starting in the foreground."),
        }
    }
    println!("Starting ductor now. Write to @{name}.");
    Ok(Outcome::Configured { service_installed: false })
}

/// Shows each CLI's login; false (with how to log in) when none is logged in.
fn detect_clis() -> bool {
    let home = camino::Utf8PathBuf::from(std::env::var("HOME").unwrap_or_default());
    let env = |name: &str| std::env::var(name).ok();
    let probe = AuthProbe { home, env: &env, gemini_api_key: None, search_path: None, claude_cli_logged_in: None };
    let mut any = false;
    println!("Coding-agent CLIs:");
    for kind in [ProviderKind::Claude, ProviderKind::Codex, ProviderKind::Gemini] {
        let word = match probe.status(kind) {
            AuthStatus::Authenticated { .. } => {
                any = true;
                "logged in"
            }
            AuthStatus::Installed => "installed, not logged in",
            AuthStatus::NotFound => "not found",
        };
        println!("  {:<8}{word}", kind.name());
    }
    if !any {
        println!(
            "\nNo CLI is logged in, so ductor would have nothing to talk to. Log in first:\n  \
             claude   (then /login)\n  codex login\n  gemini   (choose a login)\nthen run `ductor` again. Nothing was written."
        );
    }
    any
}

/// Polls the bot until someone sends `code` in a private chat (then confirms the updates read);
/// other messages are ignored and not answered. `None` when the code expired.
async fn wait_for_pairing(bot: &teloxide::Bot, code: &str) -> Option<(i64, String)> {
    use teloxide::payloads::GetUpdatesSetters;
    let shown = Instant::now();
    let mut offset: Option<i32> = None;
    while shown.elapsed() < PAIRING_VALID_FOR {
        let mut request = bot.get_updates().timeout(10);
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        let updates = match request.await {
            Ok(updates) => updates,
            Err(e) => {
                tracing::debug!(error = %e, "getUpdates failed while pairing; retrying.");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for update in updates {
            offset = Some(i32::try_from(update.id.0).unwrap_or(i32::MAX).saturating_add(1));
            let UpdateKind::Message(message) = update.kind else { continue };
            let (Some(text), Some(from)) = (message.text(), message.from.as_ref()) else { continue };
            if pairs(code, text, message.chat.is_private(), shown.elapsed()) {
                let Ok(id) = i64::try_from(from.id.0) else { continue };
                // Confirm what was read, so the bot does not see the code again at its start.
                if let Some(offset) = offset {
                    let _ = bot.get_updates().offset(offset).timeout(0).await;
                }
                let who = from.username.as_ref().map_or_else(|| from.first_name.clone(), |u| format!("@{u}"));
                return Some((id, who));
            }
        }
    }
    None
}

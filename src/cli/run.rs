//! `ductor` (default action): run the service in the foreground.
//!
//! Not configured → on a terminal the setup wizard; without one, say what is missing, the file,
//! the two keys and the sample (exit 78, EX_CONFIG). Otherwise: load the
//! config (§2.1), set up logging, take the PID lock, start the actor tree, run until SIGTERM /
//! SIGINT (exit 0) or until the main agent ends (42 = restart requested, 1 = fatal). On 42
//! outside a service manager (no `DUCTOR_SUPERVISOR` / `INVOCATION_ID`) a fresh copy of ductor
//! is started and this one exits 0 (ops spec §11.2).

use std::time::Duration;

use anyhow::Context;
use camino::Utf8PathBuf;

use crate::cli::logging;
use crate::cli::stop::{Console, spawn_detached};
use crate::core::status_view::render_not_configured;
use crate::core::supervision::EXIT_RESTART;
use crate::store::config_file::load_config;
use crate::store::log_file::RotatingLog;
use crate::store::paths::DuctorPaths;
use crate::store::pid_lock::PidLock;
use crate::tree::service::{Service, ServiceSettings};

/// Env var overriding the Telegram Bot API server (`telegram_api_base`).
pub const TELEGRAM_API_ENV: &str = "DUCTOR_TELEGRAM_API_BASE";
/// Env var naming a JSONL file that receives every delivered envelope (the spool adapter).
pub const SPOOL_ENV: &str = "DUCTOR_SPOOL";

/// Exit status when the home is not configured and there is no terminal to ask on (EX_CONFIG).
pub const EXIT_NOT_CONFIGURED: i32 = 78;

/// Runs the service; returns the process exit status.
pub fn run(paths: &DuctorPaths, verbose: bool, args: &[String]) -> anyhow::Result<i32> {
    let raw = std::fs::read(paths.config_file()).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let missing = match &raw {
        Some(raw) => crate::core::config::configured_problems(raw),
        None if paths.config_file().exists() => Vec::new(),
        None => vec![format!("{} does not exist", paths.config_file())],
    };
    if !missing.is_empty() {
        if crate::cli::onboarding::on_a_terminal() {
            return crate::cli::onboarding::wizard_then_run(paths, verbose);
        }
        eprint!("{}", render_not_configured(paths.home().as_str(), paths.config_file().as_str(), &missing));
        return Ok(EXIT_NOT_CONFIGURED);
    }
    let loaded = load_config(paths)?;
    crate::store::config_applied::remember_started(&paths.config_file(), loaded.raw.clone());
    let config = loaded.config;
    let start_problems = crate::core::config::start_problems(&config);
    if !start_problems.is_empty() {
        for problem in &start_problems {
            eprintln!("error: {problem}");
        }
        eprintln!("Fix {} or run `ductor onboarding`.", paths.config_file());
        return Ok(1);
    }
    paths.ensure_dirs().with_context(|| format!("preparing {}", paths.home()))?;
    let log = RotatingLog::open(&paths.log_file()).with_context(|| format!("opening {}", paths.log_file()))?;
    logging::init(logging::level_for(verbose, Some(&config.log_level)), Some(log));
    if loaded.rewritten {
        tracing::info!(path = %paths.config_file(), "Added new default keys to the config file.");
    }
    let lock = match PidLock::acquire(&paths.pid_file()) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(1);
        }
    };
    for (path, check) in crate::store::state_files::check_all(paths) {
        tracing::debug!(path = %path, result = ?check, "State file checked.");
    }
    let served = config.transport_short_names().into_iter().map(str::to_owned).collect();
    let mut settings = ServiceSettings::new(paths.clone(), std::sync::Arc::new(config), served);
    settings.spool = std::env::var(SPOOL_ENV).ok().filter(|v| !v.is_empty()).map(Utf8PathBuf::from);
    if settings.served.iter().any(|t| t == crate::transport::telegram::TELEGRAM_TRANSPORT)
        && !settings.config.telegram_token.trim().is_empty()
    {
        let env = std::env::var(TELEGRAM_API_ENV).ok();
        settings.telegram_api =
            Some(crate::transport::telegram::api_base(env.as_deref(), settings.config.telegram_api_base.as_deref()));
    }
    settings.matrix = settings.served.iter().any(|t| t == crate::transport::matrix::MATRIX_TRANSPORT)
        && !settings.config.matrix.homeserver.trim().is_empty();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let code = runtime.block_on(async {
        // Installed before the tree starts: a SIGTERM during start-up stops it cleanly once up.
        let stop = termination_signal();
        let service = match Service::start(settings).await {
            Ok(service) => service,
            Err(e) => {
                tracing::error!(error = %e, "Could not start.");
                eprintln!("error: {e}");
                return 1;
            }
        };
        service.run_until(stop).await
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    lock.release();
    drop(lock);
    if code == EXIT_RESTART && !under_service_manager() {
        match spawn_detached(args, Console::Inherit) {
            Ok(pid) => {
                tracing::info!(pid, "Restart requested; started a fresh ductor.");
                return Ok(0);
            }
            Err(e) => {
                eprintln!("error: could not start a fresh ductor: {e}");
                return Ok(EXIT_RESTART);
            }
        }
    }
    Ok(code)
}

/// Whether a service manager restarts us on exit 42.
pub fn under_service_manager() -> bool {
    ["DUCTOR_SUPERVISOR", "INVOCATION_ID"].iter().any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

/// Installs the SIGTERM and SIGINT handlers now (inside the runtime) and completes when one of
/// them arrives — also one that arrived before it was first polled.
fn termination_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::error!("Could not install signal handlers; stop with `ductor stop` will kill the process.");
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "Stopping."),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "Stopping."),
        }
    }
}

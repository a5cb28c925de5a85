//! One unattended run — a cron job's fire or a webhook `cron_task` request — from the
//! dependency queue to the result on the Bus (ops spec §7.4–7.8, §8.6), and what a start does
//! with the runs a crash left open. Shared by the cron observer and the webhook dispatch; not an
//! actor: each run is a task of its observer.
//!
//! Order, so that a run is never started twice and its result is delivered once:
//! the dependency turn → the task folder must exist → the execution config must resolve → the
//! run journal records `started` (fsync) → the CLI runs → the result goes to the Bus as an
//! Envelope keyed by the run id (that write is the run's completion) → the job's
//! `last_run_*` fields → `finished` in the run journal. A crash between `started` and the Bus
//! makes the next start report the run as cut; a crash after it finds the result with the Bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use camino::Utf8PathBuf;
use tokio::sync::watch;

use crate::chat::model_catalog::ModelCatalog;
use crate::core::config::Config;
use crate::core::resolve::{CONFIG_ERROR_STATUS, Known, TaskOverrides, resolve_execution};
use crate::core::run_journal::{OpenRun, Recovery, RunRecord, RunSource, recovery};
use crate::core::state::timestamp_now;
use crate::core::unattended_result::{CronOutcome, CronTarget, cron_result, cut_run, webhook_task_result};
use crate::provider::oneshot::{
    CRON_LABEL, OneshotCommand, OneshotSettings, WEBHOOK_LABEL, compose_prompt, oneshot_env, run_oneshot,
};
use crate::provider::search_path;
use crate::runtime::bus::BusHandle;
use crate::runtime::dependency_queue::DependencyQueue;
use crate::store::config_file::DotEnv;
use crate::store::paths::DuctorPaths;
use crate::store::run_journal::SharedRunJournal;

/// Test seam: `1` makes ductor abort right after a run's result was accepted by the Bus (it is
/// in the outbox) and before the run is recorded finished or the result delivered — the instant
/// a `kill -9` is hardest to hit from outside.
pub const CRASH_AFTER_RUN_ENV: &str = "DUCTOR_TEST_CRASH_AFTER_RUN";

/// Everything a run needs from its agent; clones share it.
#[derive(Clone)]
pub struct RunContext {
    /// The agent's name.
    pub agent: String,
    /// Its home.
    pub paths: DuctorPaths,
    /// Its config.
    pub config: Arc<Config>,
    /// Its Bus.
    pub bus: BusHandle,
    /// Its run journal.
    pub journal: SharedRunJournal,
    /// The process-wide dependency queue.
    pub queue: DependencyQueue,
    /// Known Codex and Gemini models (for validating a job's model).
    pub catalog: ModelCatalog,
    /// Directories put in front of `PATH` when looking for the CLIs.
    pub cli_path: Vec<Utf8PathBuf>,
    /// Extra environment for the CLIs (`DUCTOR_BIN`, ...), after the inherited one.
    pub extra_env: Vec<(String, String)>,
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext").field("agent", &self.agent).finish_non_exhaustive()
    }
}

/// A job's or hook's own execution settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOverrides {
    /// Provider.
    pub provider: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Reasoning effort (Codex).
    pub reasoning_effort: Option<String>,
    /// CLI flags after the configured ones.
    pub cli_parameters: Vec<String>,
}

/// Where a result goes and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunDelivery {
    /// A cron job: its target, silent on success or not.
    Cron {
        /// The job's chat, topic and transport (chat 0: everyone).
        target: CronTarget,
        /// No message on success.
        silent_on_success: bool,
    },
    /// A webhook `cron_task`: to everyone, always.
    Webhook,
}

/// One run to carry out.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The run id (the result's delivery key).
    pub run: String,
    /// What started it.
    pub source: RunSource,
    /// The job's or hook's title.
    pub title: String,
    /// Folder under `workspace/cron_tasks/`.
    pub task_folder: String,
    /// The instruction (the cron job's, or the rendered webhook prompt).
    pub instruction: String,
    /// Execution overrides.
    pub overrides: RunOverrides,
    /// Dependency name: runs with the same one run one at a time.
    pub dependency: Option<String>,
    /// Where its result goes.
    pub delivery: RunDelivery,
}

/// How a run ended, for the job's or hook's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// `success`, `error:exit_3`, `error:folder_missing`, ...
    pub status: String,
    /// Whether a message went to the Bus.
    pub delivered: bool,
}

/// Carries out one run (module docs). `cancel` turning `true` (the observer stopping) kills the
/// CLI; the run then stays open in the journal and the next start reports it as cut.
pub async fn run(ctx: &RunContext, request: RunRequest, mut cancel: watch::Receiver<bool>) -> RunReport {
    let _turn = ctx.queue.turn(request.dependency.as_deref()).await;
    let folder = ctx.paths.workspace().join("cron_tasks").join(&request.task_folder);
    let known_codex = ctx.catalog.codex();
    let known_gemini = ctx.catalog.gemini();
    let overrides = TaskOverrides {
        provider: request.overrides.provider.as_deref(),
        model: request.overrides.model.as_deref(),
        reasoning_effort: request.overrides.reasoning_effort.as_deref(),
        cli_parameters: &request.overrides.cli_parameters,
    };
    let prepared = if request.task_folder.is_empty() {
        Err(("error:no_task_folder".to_owned(), String::new()))
    } else if !folder.is_dir() {
        Err((
            "error:folder_missing".to_owned(),
            format!("The task folder cron_tasks/{} is missing.", request.task_folder),
        ))
    } else {
        resolve_execution(&ctx.config, &overrides, Known { codex: &known_codex, gemini: &known_gemini })
            .map_err(|e| (CONFIG_ERROR_STATUS.to_owned(), e.to_string()))
            .and_then(|execution| {
                let prompt = compose_prompt(&request.instruction, &request.task_folder);
                OneshotCommand::for_execution(&execution, prompt)
                    .map(|command| (command, execution.timeout))
                    .map_err(|e| (CONFIG_ERROR_STATUS.to_owned(), e.to_string()))
            })
    };
    let (command, timeout) = match prepared {
        Ok(ready) => ready,
        Err((status, text)) => {
            tracing::warn!(run = %request.run, status = %status, detail = %text, "Unattended run not started.");
            return finish(ctx, &request, &status, &text).await;
        }
    };
    if let Err(e) = ctx.journal.record(RunRecord::Started {
        run: request.run.clone(),
        source: request.source.clone(),
        at: timestamp_now(),
    }) {
        tracing::error!(run = %request.run, error = %e, "Could not record the run's start; not running it.");
        return RunReport { status: "error:journal".to_owned(), delivered: false };
    }
    let label = match request.delivery {
        RunDelivery::Cron { .. } => CRON_LABEL,
        RunDelivery::Webhook => WEBHOOK_LABEL,
    };
    let settings = OneshotSettings {
        task_folder: folder,
        env: run_env(ctx),
        search_path: search_path(&ctx.cli_path),
        timeout,
        label: label.to_owned(),
    };
    tracing::info!(run = %request.run, provider = %command.provider.name(), "Unattended run started.");
    let cancelled = async move {
        let _ = cancel.wait_for(|stop| *stop).await;
    };
    let outcome = run_oneshot(&command, &settings, cancelled).await;
    let status = outcome.status.to_string();
    tracing::info!(run = %request.run, status = %status, seconds = outcome.elapsed.as_secs_f64(), "Unattended run ended.");
    if status == "error:cancelled" {
        // ductor is stopping: the run stays open and the next start reports it as cut.
        return RunReport { status, delivered: false };
    }
    finish(ctx, &request, &status, &outcome.text).await
}

/// The CLI's environment: ductor's own, the agent's `DUCTOR_*`, `.env` secrets not already set.
fn run_env(ctx: &RunContext) -> Vec<(String, String)> {
    let mut secrets = DotEnv::new(&ctx.paths);
    let mut inherited: HashMap<String, String> = std::env::vars().collect();
    inherited.insert("DUCTOR_AGENT_NAME".to_owned(), ctx.agent.clone());
    inherited.insert("DUCTOR_INTERAGENT_PORT".to_owned(), ctx.config.interagent_port.to_string());
    inherited.extend(ctx.extra_env.iter().cloned());
    if !ctx.cli_path.is_empty() {
        inherited.insert("PATH".to_owned(), search_path(&ctx.cli_path));
    }
    oneshot_env(inherited, ctx.paths.home().as_str(), secrets.current())
}

/// Hands the result to the Bus (keyed by the run id; retried while the Bus restarts) and
/// records the run finished.
async fn finish(ctx: &RunContext, request: &RunRequest, status: &str, text: &str) -> RunReport {
    let envelope = match &request.delivery {
        RunDelivery::Cron { target, silent_on_success } => cron_result(&CronOutcome {
            run: &request.run,
            title: &request.title,
            status,
            text,
            silent_on_success: *silent_on_success,
            target,
        }),
        RunDelivery::Webhook => Some(webhook_task_result(&request.run, &request.title, status, text)),
    };
    let delivered = envelope.is_some();
    if let Some(envelope) = envelope
        && !submit_with_retry(&ctx.bus, envelope, &request.run).await
    {
        // Left open: the next start finds out whether the Bus has it.
        return RunReport { status: status.to_owned(), delivered: false };
    }
    if delivered && std::env::var_os(CRASH_AFTER_RUN_ENV).is_some_and(|v| v == "1") {
        tracing::error!(run = %request.run, "Crashing after the result reached the Bus, before the run is finished ({CRASH_AFTER_RUN_ENV}).");
        std::process::abort();
    }
    if let Err(e) = ctx.journal.record(RunRecord::Finished { run: request.run.clone(), status: status.to_owned() }) {
        tracing::warn!(run = %request.run, error = %e, "Could not record the run finished.");
    }
    RunReport { status: status.to_owned(), delivered }
}

/// Submits, retrying for about a minute while the Bus is down (it restarts under supervision).
async fn submit_with_retry(bus: &BusHandle, envelope: crate::core::envelope::Envelope, run: &str) -> bool {
    let mut wait = Duration::from_millis(250);
    for attempt in 1..=8 {
        match bus.submit(envelope.clone()).await {
            Ok(_) => return true,
            Err(e) if attempt < 8 => {
                tracing::warn!(run = %run, error = %e, attempt, "The Bus did not take a run's result; retrying.");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(15));
            }
            Err(e) => {
                tracing::error!(run = %run, error = %e, "The Bus did not take a run's result; kept for the next start.")
            }
        }
    }
    false
}

/// What [`recover`] did with the open runs of the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Runs whose result the Bus already had.
    pub settled: usize,
    /// Runs reported as cut.
    pub reported_cut: usize,
    /// Accepted requests handed back to be run now (their ids).
    pub to_run: Vec<String>,
}

/// At start, once the Bus runs: every open run is settled (its result is with the Bus),
/// reported once as cut (it started and its result never came), or — an accepted webhook
/// request that never started — returned to be run. `describe` gives the owner's title and, for
/// cron jobs, the target (from the current files; the id when the owner is gone).
pub async fn recover(
    ctx: &RunContext,
    describe: impl Fn(&RunSource) -> (String, Option<CronTarget>),
) -> RecoveryReport {
    let mut report = RecoveryReport::default();
    let open: Vec<(String, OpenRun)> =
        ctx.journal.open_runs().iter().map(|(id, state)| (id.to_owned(), state.clone())).collect();
    for (run, state) in open {
        let with_bus = match ctx.bus.accepted(&run).await {
            Ok(found) => found.is_some(),
            Err(e) => {
                tracing::warn!(run = %run, error = %e, "The Bus is not running; the open run waits for the next start.");
                continue;
            }
        };
        let source = match &state {
            OpenRun::Accepted { source, .. } | OpenRun::Started { source, .. } => source.clone(),
        };
        match recovery(&state, with_bus) {
            Recovery::Settle => {
                report.settled += 1;
                record_finished(ctx, &run, "settled");
            }
            Recovery::ReportCut => {
                let (title, target) = describe(&source);
                let webhook = matches!(source, RunSource::Webhook { .. });
                tracing::warn!(run = %run, "A run was cut while its CLI worked; reporting it once, not running it again.");
                if ctx.bus.submit(cut_run(&run, &title, webhook, target.as_ref())).await.is_ok() {
                    report.reported_cut += 1;
                    record_finished(ctx, &run, crate::core::unattended_result::STATUS_INTERRUPTED);
                }
            }
            Recovery::Run => report.to_run.push(run),
        }
    }
    report
}

fn record_finished(ctx: &RunContext, run: &str, status: &str) {
    if let Err(e) = ctx.journal.record(RunRecord::Finished { run: run.to_owned(), status: status.to_owned() }) {
        tracing::warn!(run = %run, error = %e, "Could not record the run finished.");
    }
}

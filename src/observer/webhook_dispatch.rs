//! What happens to a webhook request once the server accepted it (ops spec §8.6) — the sink the
//! webhook server hands accepted requests to, and which answers (202) only once the request is
//! durable:
//!
//! - **wake**: the rendered prompt goes, for each allowed Telegram user, into the Bus as an
//!   Envelope that runs in that chat's session (queued behind a running turn) — the outbox
//!   write is the durable record; the answer becomes the message. A hook's `model` is honoured
//!   for that turn (0.18.2 ignored overrides in wake mode).
//! - **cron_task**: the request is recorded `accepted` in the run journal (fsync), then runs
//!   like a cron job in its task folder (`observer::unattended`), hook quiet hours and dependency
//!   included; its result goes to everyone as `**WEBHOOK (CRON TASK): <title>**`. After a crash
//!   an accepted request that never started runs at the next start; one cut mid-run is reported.
//!
//! After each request the hook's `trigger_count`, `last_triggered_at` and `last_error` are
//! written back (under the file's lock; nothing else changed).

use std::sync::Arc;

use chrono::Timelike;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::core::envelope::{DeliveryMode, Envelope, LockMode, Origin};
use crate::core::run_journal::{OpenRun, RunRecord, RunSource, webhook_run_id};
use crate::core::session_key::ChatId;
use crate::core::state::timestamp_now;
use crate::core::state::webhooks::{Webhook, Webhooks};
use crate::core::unattended_result::webhook_task_result;
use crate::core::webhook::prompt::webhook_prompt;
use crate::core::zone::cron_job_is_quiet;
use crate::observer::unattended::{RunContext, RunDelivery, RunOverrides, RunRequest, run};
use crate::observer::webhook_server::{AcceptedHook, SinkError, WebhookSink};
use crate::store::host_zone::user_zone;
use crate::store::locked_state::{self, read_strict};
use crate::store::paths::DuctorPaths;
use crate::store::state_files::StateFile;

/// The hooks of `webhooks.json` now (none when it is missing or does not parse).
pub fn load_hooks(paths: &DuctorPaths) -> Vec<Webhook> {
    match read_strict::<Webhooks>(&Webhooks::path(paths)) {
        Ok(file) => file.hooks,
        Err(e) => {
            tracing::warn!(error = %e, "webhooks.json could not be read.");
            Vec::new()
        }
    }
}

/// An optional text of a hook, empty counting as unset.
fn set(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

/// The sink for the webhook server of one agent. `cancel` is the agent's stop signal for the
/// runs it starts.
pub fn sink(ctx: RunContext, cancel: watch::Receiver<bool>) -> WebhookSink {
    Arc::new(move |accepted: AcceptedHook| {
        let ctx = ctx.clone();
        let cancel = cancel.clone();
        Box::pin(async move { accept(&ctx, accepted, cancel).await })
    })
}

async fn accept(ctx: &RunContext, accepted: AcceptedHook, cancel: watch::Receiver<bool>) -> Result<(), SinkError> {
    let hook = accepted.hook;
    let prompt = webhook_prompt(&hook.prompt_template, &accepted.payload);
    match hook.mode.as_str() {
        "wake" => {
            let status = wake(ctx, &hook, &prompt).await?;
            record_trigger(ctx, &hook.id, &status).await;
            Ok(())
        }
        "cron_task" => {
            let run_id = webhook_run_id(&hook.id, rand::random::<u64>());
            let record = RunRecord::Accepted {
                run: run_id.clone(),
                source: RunSource::Webhook { hook: hook.id.clone(), payload: accepted.payload },
                at: timestamp_now(),
            };
            ctx.journal.record(record).map_err(|e| SinkError(format!("could not record the request: {e}")))?;
            run_accepted(ctx, &run_id, cancel);
            Ok(())
        }
        other => {
            let status = format!("error:unknown_mode_{other}");
            tracing::warn!(hook = %hook.id, mode = %other, "Webhook with an unknown mode; nothing runs.");
            record_trigger(ctx, &hook.id, &status).await;
            Ok(())
        }
    }
}

/// Wake mode: one Envelope per allowed Telegram user, run in that chat's session before it is
/// delivered; durable in the outbox before this returns.
async fn wake(ctx: &RunContext, hook: &Webhook, prompt: &str) -> Result<String, SinkError> {
    let users = &ctx.config.allowed_user_ids;
    if users.is_empty() {
        return Ok("error:no_wake_handler".to_owned());
    }
    let model = set(&hook.model);
    if model.is_none() && set(&hook.provider).is_some() {
        tracing::warn!(hook = %hook.id, "A wake hook's provider override needs a model; the chat's model is used.");
    }
    let nonce = rand::random::<u64>();
    for user in users {
        let mut envelope = Envelope {
            origin: Origin::WebhookWake,
            chat_id: ChatId(i128::from(*user)),
            transport: "tg".to_owned(),
            prompt: prompt.to_owned(),
            prompt_preview: hook.title.clone(),
            delivery: DeliveryMode::Unicast,
            lock_mode: LockMode::Required,
            needs_injection: true,
            status: "success".to_owned(),
            model: model.clone().unwrap_or_default(),
            ..Envelope::default()
        };
        envelope.metadata.insert("hook_id".into(), hook.id.clone().into());
        envelope.metadata.insert("title".into(), hook.title.clone().into());
        let envelope = envelope.with_delivery_key(&format!("{}:{user}", webhook_run_id(&hook.id, nonce)));
        ctx.bus.submit(envelope).await.map_err(|e| SinkError(format!("the Bus did not take the request: {e}")))?;
    }
    Ok("success".to_owned())
}

/// Runs an accepted `cron_task` request (now, or at the next start after a crash) in a task.
pub fn run_accepted(ctx: &RunContext, run_id: &str, cancel: watch::Receiver<bool>) {
    let open = ctx.journal.open_runs();
    let Some((hook_id, payload)) = open.iter().find(|(id, _)| *id == run_id).and_then(|(_, state)| match state {
        OpenRun::Accepted { source: RunSource::Webhook { hook, payload }, .. } => Some((hook.clone(), payload.clone())),
        _ => None,
    }) else {
        return;
    };
    let ctx = ctx.clone();
    let run_id = run_id.to_owned();
    tokio::spawn(async move {
        let status = run_task(&ctx, &run_id, &hook_id, &payload, cancel).await;
        if status != "error:cancelled" {
            record_trigger(&ctx, &hook_id, &status).await;
        }
    });
}

async fn run_task(
    ctx: &RunContext,
    run_id: &str,
    hook_id: &str,
    payload: &Map<String, Value>,
    cancel: watch::Receiver<bool>,
) -> String {
    let Some(hook) = load_hooks(&ctx.paths).into_iter().find(|h| h.id == hook_id) else {
        return finish_without_run(ctx, run_id, hook_id, "error:hook_removed").await;
    };
    let hour = chrono::Utc::now().with_timezone(&user_zone(&ctx.config.user_timezone)).hour();
    if cron_job_is_quiet(hour, hook.quiet_start, hook.quiet_end) {
        return finish_without_run(ctx, run_id, &hook.title, "skipped:quiet_hours").await;
    }
    let request = RunRequest {
        run: run_id.to_owned(),
        source: RunSource::Webhook { hook: hook.id.clone(), payload: payload.clone() },
        title: hook.title.clone(),
        task_folder: hook.task_folder.clone().unwrap_or_default(),
        instruction: webhook_prompt(&hook.prompt_template, payload),
        overrides: RunOverrides {
            provider: set(&hook.provider),
            model: set(&hook.model),
            reasoning_effort: set(&hook.reasoning_effort),
            cli_parameters: hook.cli_parameters.clone(),
        },
        dependency: set(&hook.dependency),
        delivery: RunDelivery::Webhook,
    };
    run(ctx, request, cancel).await.status
}

/// A request that does not run (quiet hours, hook removed): its status still reaches everyone.
async fn finish_without_run(ctx: &RunContext, run_id: &str, title: &str, status: &str) -> String {
    if ctx.bus.submit(webhook_task_result(run_id, title, status, "")).await.is_ok()
        && let Err(e) = ctx.journal.record(RunRecord::Finished { run: run_id.to_owned(), status: status.to_owned() })
    {
        tracing::warn!(run = %run_id, error = %e, "Could not record the run finished.");
    }
    status.to_owned()
}

/// `trigger_count += 1`, `last_triggered_at`, `last_error` (null on success) of one hook.
async fn record_trigger(ctx: &RunContext, hook: &str, status: &str) {
    let paths = ctx.paths.clone();
    let (hook, status) = (hook.to_owned(), status.to_owned());
    let outcome = tokio::task::spawn_blocking(move || {
        locked_state::update::<Webhooks, ()>(&paths, |file| {
            let Some(entry) = file.hooks.iter_mut().find(|h| h.id == hook) else { return (false, ()) };
            entry.trigger_count += 1;
            entry.last_triggered_at = Some(timestamp_now());
            entry.last_error = (status != "success").then_some(status);
            (true, ())
        })
    })
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "Could not record the webhook's trigger."),
        Err(e) => tracing::warn!(error = %e, "Could not record the webhook's trigger."),
    }
}

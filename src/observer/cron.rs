//! The cron observer (`cron` in the tree; ops spec §7): keeps the jobs of `cron_jobs.json`
//! scheduled with **one timer** for the earliest next fire of all of them (no polling), each
//! job in its own zone (`timezone`, else `user_timezone`, else `TZ`, the host zone, UTC) with
//! the DST rules of `core::cron_schedule`. At a fire: the wall-clock guard (a slot missed by
//! more than a minute, e.g. across a suspend, is skipped — never caught up), the job's quiet
//! hours, then the run as a task (`observer::unattended`: dependency queue, one-shot CLI, result
//! to the Bus exactly once); the next fire of a job is computed when its run ended, from the
//! time then. A change of `cron_jobs.json` (a tool, a person) is picked up by a file watch within
//! a second; a file that does not parse keeps the jobs last loaded, with a warning. At start the
//! runs a crash left open are settled or reported once (never run again).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;

use crate::core::cron_schedule::{CronSchedule, WakeCheck};
use crate::core::run_journal::{RunSource, cron_run_id};
use crate::core::session_key::ChatId;
use crate::core::state::cron_jobs::{CronJob, CronJobs};
use crate::core::state::timestamp_now;
use crate::core::unattended_result::CronTarget;
use crate::core::zone::{configured_zone_name, cron_job_is_quiet};
use crate::observer::WallClock;
use crate::observer::unattended::{RunContext, RunDelivery, RunOverrides, RunReport, RunRequest, recover, run};
use crate::runtime::file_watch::FileWatch;
use crate::store::host_zone::local_zone;
use crate::store::locked_state::{self, read_strict};
use crate::store::state_files::StateFile;

/// How long a burst of file events must be quiet before `cron_jobs.json` is read again.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(250);

/// Messages of the cron observer.
#[derive(Debug)]
pub enum CronMsg {
    /// Read `cron_jobs.json` again and reschedule (the file watch, a tool through the API).
    Reload,
    /// The timer: run what is due, then arm it for the next fire.
    Fire,
    /// A job's run ended (from its task).
    RunEnded {
        /// The job.
        job: String,
        /// How it ended.
        report: RunReport,
    },
    /// Settle or report the runs a crash left open (sent to itself at start).
    Recover,
    /// The jobs and their next fire times (for `/cron` and `ductor status`).
    NextFires {
        /// Where the answer goes.
        reply: RpcReplyPort<Vec<JobSchedule>>,
    },
    /// How often the timer woke and how many runs started (benchmarks, tests).
    Stats {
        /// Where the answer goes.
        reply: RpcReplyPort<CronStats>,
    },
}

/// The observer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CronStats {
    /// Timer wake-ups (`Fire` handled).
    pub wakeups: u64,
    /// Runs started.
    pub runs: u64,
}

/// A job as the observer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSchedule {
    /// Job id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The next fire (none: disabled, invalid schedule, or running now).
    pub next: Option<DateTime<Utc>>,
    /// Whether it runs right now.
    pub running: bool,
    /// Why it is not scheduled (invalid schedule), if so.
    pub problem: Option<String>,
}

/// Construction arguments.
#[derive(Clone)]
pub struct CronArgs {
    /// What runs need (agent, paths, config, Bus, journal, dependency queue, models, CLI path).
    pub ctx: RunContext,
    /// The wall clock (the system's; tests drive it with paused time).
    pub clock: WallClock,
    /// Watch `cron_jobs.json` for changes (off in tests that send `Reload` themselves).
    pub watch_file: bool,
}

impl std::fmt::Debug for CronArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CronArgs").field("ctx", &self.ctx).field("watch_file", &self.watch_file).finish_non_exhaustive()
    }
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct Cron;

/// A job with a next fire.
#[derive(Debug, Clone)]
struct Scheduled {
    schedule: CronSchedule,
    zone: Tz,
    next: DateTime<Utc>,
}

/// Its state.
pub struct CronState {
    args: CronArgs,
    jobs: Vec<CronJob>,
    scheduled: HashMap<String, Scheduled>,
    problems: HashMap<String, String>,
    running: HashSet<String>,
    stats: CronStats,
    timer: Option<ractor::concurrency::JoinHandle<Result<(), ractor::MessagingErr<CronMsg>>>>,
    stop: watch::Sender<bool>,
    _watch: Option<FileWatch>,
}

impl std::fmt::Debug for CronState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CronState")
            .field("jobs", &self.jobs.len())
            .field("scheduled", &self.scheduled.len())
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Actor for Cron {
    type Msg = CronMsg;
    type State = CronState;
    type Arguments = CronArgs;

    async fn pre_start(&self, myself: ActorRef<CronMsg>, args: CronArgs) -> Result<CronState, ActorProcessingErr> {
        let watch = if args.watch_file {
            let reload = myself.clone();
            match FileWatch::start(&CronJobs::path(&args.ctx.paths), RELOAD_DEBOUNCE, move || {
                let _ = reload.cast(CronMsg::Reload);
            }) {
                Ok(watch) => Some(watch),
                Err(e) => {
                    tracing::warn!(actor = "cron", error = %e, "Cannot watch cron_jobs.json; changes need a restart.");
                    None
                }
            }
        } else {
            None
        };
        let (stop, _) = watch::channel(false);
        let mut state = CronState {
            args,
            jobs: Vec::new(),
            scheduled: HashMap::new(),
            problems: HashMap::new(),
            running: HashSet::new(),
            stats: CronStats::default(),
            timer: None,
            stop,
            _watch: watch,
        };
        state.reload(&myself);
        myself.cast(CronMsg::Recover)?;
        Ok(state)
    }

    async fn post_stop(&self, _myself: ActorRef<CronMsg>, state: &mut CronState) -> Result<(), ActorProcessingErr> {
        // Running CLIs are killed; their runs stay open and the next start reports them as cut.
        let _ = state.stop.send(true);
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<CronMsg>,
        msg: CronMsg,
        state: &mut CronState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CronMsg::Reload => state.reload(&myself),
            CronMsg::Fire => state.fire(&myself),
            CronMsg::RunEnded { job, report } => {
                tracing::info!(actor = "cron", job = %job, status = %report.status, delivered = report.delivered, "Cron run ended.");
                state.running.remove(&job);
                state.schedule_job(&job);
                state.arm(&myself);
            }
            CronMsg::Recover => state.recover().await,
            CronMsg::NextFires { reply } => {
                let _ = reply.send(state.next_fires());
            }
            CronMsg::Stats { reply } => {
                let _ = reply.send(state.stats);
            }
        }
        Ok(())
    }
}

impl CronState {
    fn now(&self) -> DateTime<Utc> {
        (self.args.clock)()
    }

    /// Reads `cron_jobs.json` again; a file that does not parse keeps the jobs last loaded.
    fn reload(&mut self, myself: &ActorRef<CronMsg>) {
        let path = CronJobs::path(&self.args.ctx.paths);
        match read_strict::<CronJobs>(&path) {
            Ok(file) => self.jobs = file.jobs,
            Err(e) => {
                tracing::warn!(actor = "cron", error = %e, kept = self.jobs.len(),
                    "cron_jobs.json could not be read; keeping the jobs last loaded.");
                return;
            }
        }
        self.scheduled.clear();
        self.problems.clear();
        let ids: Vec<String> = self.jobs.iter().map(|j| j.id.clone()).collect();
        for id in &ids {
            self.schedule_job(id);
        }
        tracing::info!(
            actor = "cron",
            jobs = self.jobs.len(),
            scheduled = self.scheduled.len(),
            invalid = self.problems.len(),
            "Cron jobs rescheduled."
        );
        self.arm(myself);
    }

    /// Computes a job's next fire from now (not while it runs; not when disabled or invalid).
    fn schedule_job(&mut self, id: &str) {
        self.scheduled.remove(id);
        if self.running.contains(id) {
            return;
        }
        let Some(job) = self.jobs.iter().find(|j| j.id == id) else { return };
        if !job.enabled {
            return;
        }
        let schedule = match CronSchedule::parse(&job.schedule) {
            Ok(schedule) => schedule,
            Err(e) => {
                tracing::warn!(actor = "cron", job = %id, schedule = %job.schedule, error = %e, "Invalid schedule; job not scheduled.");
                self.problems.insert(id.to_owned(), e.to_string());
                return;
            }
        };
        let zone = local_zone(configured_zone_name(job.timezone.as_deref(), &self.args.ctx.config.user_timezone));
        match schedule.next_fire(self.now(), zone) {
            Some(next) => {
                self.scheduled.insert(id.to_owned(), Scheduled { schedule, zone, next });
            }
            None => {
                self.problems.insert(id.to_owned(), "the schedule has no future match".to_owned());
            }
        }
    }

    /// Arms the one timer for the earliest next fire.
    fn arm(&mut self, myself: &ActorRef<CronMsg>) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        let Some(next) = self.scheduled.values().map(|s| s.next).min() else { return };
        let delay = (next - self.now()).to_std().unwrap_or(Duration::ZERO);
        self.timer = Some(myself.send_after(delay, || CronMsg::Fire));
    }

    /// Runs what is due (module docs), then arms the timer again.
    fn fire(&mut self, myself: &ActorRef<CronMsg>) {
        self.stats.wakeups += 1;
        let now = self.now();
        let due: Vec<(String, Scheduled)> =
            self.scheduled.iter().filter(|(_, s)| s.next <= now).map(|(id, s)| (id.clone(), s.clone())).collect();
        for (id, scheduled) in due {
            match scheduled.schedule.wake_check(now, scheduled.zone) {
                WakeCheck::FireNow => {
                    // On time, the slot is the one the timer waited for; late (a suspend), the
                    // one the guard found.
                    let on_time = scheduled.next > now - chrono::Duration::minutes(1);
                    let slot = if on_time {
                        scheduled.next
                    } else {
                        scheduled
                            .schedule
                            .next_fire(now - chrono::Duration::minutes(1), scheduled.zone)
                            .unwrap_or(scheduled.next)
                    };
                    self.start(myself, &id, &scheduled, slot, now);
                }
                WakeCheck::SleepMore(_) | WakeCheck::Exhausted => {
                    tracing::info!(actor = "cron", job = %id, slot = %scheduled.next, "Missed slot skipped (no catch-up).");
                    self.schedule_job(&id);
                }
            }
        }
        self.arm(myself);
    }

    fn start(
        &mut self,
        myself: &ActorRef<CronMsg>,
        id: &str,
        scheduled: &Scheduled,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let Some(job) = self.jobs.iter().find(|j| j.id == id).cloned() else { return };
        let hour = now.with_timezone(&scheduled.zone).hour();
        if cron_job_is_quiet(hour, job.quiet_start, job.quiet_end) {
            tracing::info!(actor = "cron", job = %id, hour, "Quiet hours; this fire is skipped.");
            self.schedule_job(id);
            return;
        }
        self.scheduled.remove(id);
        self.running.insert(id.to_owned());
        self.stats.runs += 1;
        let request = request_for(&job, cron_run_id(id, slot.timestamp()));
        let ctx = self.args.ctx.clone();
        let cancel = self.stop.subscribe();
        let actor = myself.clone();
        let job_id = id.to_owned();
        tracing::info!(actor = "cron", job = %id, run = %request.run, "Cron job fires.");
        tokio::spawn(async move {
            let report = run(&ctx, request, cancel).await;
            if report.status != "error:cancelled" {
                record_last_run(&ctx, &job_id, &report.status).await;
            }
            let _ = actor.cast(CronMsg::RunEnded { job: job_id, report });
        });
    }

    async fn recover(&mut self) {
        let jobs = self.jobs.clone();
        let hooks = crate::observer::webhook_dispatch::load_hooks(&self.args.ctx.paths);
        let report = recover(&self.args.ctx, |source| match source {
            RunSource::Cron { job } => match jobs.iter().find(|j| j.id == *job) {
                Some(found) => (title_of(found), Some(target_of(found))),
                None => (job.clone(), None),
            },
            RunSource::Webhook { hook, .. } => {
                (hooks.iter().find(|h| h.id == *hook).map_or_else(|| hook.clone(), |h| h.title.clone()), None)
            }
        })
        .await;
        if report != Default::default() {
            tracing::info!(
                actor = "cron",
                settled = report.settled,
                cut = report.reported_cut,
                accepted = report.to_run.len(),
                "Open runs recovered."
            );
        }
        for run in report.to_run {
            crate::observer::webhook_dispatch::run_accepted(&self.args.ctx, &run, self.stop.subscribe());
        }
    }

    fn next_fires(&self) -> Vec<JobSchedule> {
        self.jobs
            .iter()
            .map(|job| JobSchedule {
                id: job.id.clone(),
                title: title_of(job),
                next: self.scheduled.get(&job.id).map(|s| s.next),
                running: self.running.contains(&job.id),
                problem: self.problems.get(&job.id).cloned(),
            })
            .collect()
    }
}

fn title_of(job: &CronJob) -> String {
    if job.title.is_empty() { job.id.clone() } else { job.title.clone() }
}

fn target_of(job: &CronJob) -> CronTarget {
    CronTarget {
        chat_id: job.chat_id.unwrap_or(ChatId(0)),
        topic_id: job.topic_id,
        transport: job.transport.clone().unwrap_or_default(),
    }
}

fn request_for(job: &CronJob, run: String) -> RunRequest {
    RunRequest {
        run,
        source: RunSource::Cron { job: job.id.clone() },
        title: title_of(job),
        task_folder: if job.task_folder.is_empty() { job.id.clone() } else { job.task_folder.clone() },
        instruction: job.agent_instruction.clone(),
        overrides: RunOverrides {
            provider: job.provider.clone(),
            model: job.model.clone(),
            reasoning_effort: job.reasoning_effort.clone(),
            cli_parameters: job.cli_parameters.clone(),
        },
        dependency: job.dependency.clone(),
        delivery: RunDelivery::Cron { target: target_of(job), silent_on_success: job.silent_on_success },
    }
}

/// Writes `last_run_at` / `last_run_status` of one job (under the file's lock, the file read
/// again, nothing else changed); a file that does not parse is left as it is.
async fn record_last_run(ctx: &RunContext, job: &str, status: &str) {
    let paths = ctx.paths.clone();
    let (job, status) = (job.to_owned(), status.to_owned());
    let outcome = tokio::task::spawn_blocking(move || {
        locked_state::update::<CronJobs, ()>(&paths, |file| {
            let Some(entry) = file.jobs.iter_mut().find(|j| j.id == job) else { return (false, ()) };
            entry.last_run_at = Some(timestamp_now());
            entry.last_run_status = Some(status);
            (true, ())
        })
    })
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(actor = "cron", error = %e, "Could not record the job's last run."),
        Err(e) => tracing::warn!(actor = "cron", error = %e, "Could not record the job's last run."),
    }
}

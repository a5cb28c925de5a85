//! The heartbeat observer (ops spec §9): every `heartbeat.interval_minutes` it gives the agent a
//! chance to speak up inside each user's existing session, and in group targets; an alert is
//! delivered through the Bus, the ack token means silence.
//!
//! The global timer fires one interval after start and is re-armed at each tick with the
//! interval read from the config then. A tick in the global quiet hours (in the user's zone,
//! `store::host_zone`) does nothing; otherwise each `allowed_user_ids` chat (no topic) and each
//! active group target without its own interval gets a heartbeat (decisions in
//! `core::heartbeat`). Targets with `interval_minutes` have their own timer, created at start,
//! which applies only their resolved quiet hours.
//!
//! A heartbeat is asked of the Orchestrator (`OrchestratorHandle::heartbeat`), which queues it
//! behind the chat's turns, resumes the chat's session (never creates one) and answers an alert
//! only when the reply is more than the ack token. The wait runs in a task of its own, so the
//! mailbox stays free; a chat whose previous heartbeat has not ended is skipped. An alert becomes
//! an Envelope (origin `heartbeat`, UNICAST to the chat and topic on its transport) submitted to
//! the Bus. Errors are logged and the timers go on. A timer that fires more than twice its wait
//! late by the wall clock is logged as a suspend.
//!
//! Not done here (yet):
//! - the stale-process sweep of §9.1 step 1 (kill CLI processes older than `2 × cli_timeout`):
//!   the chat layer offers no such call; turns end at their own timeout.
//! - the Telegram `getChat` accessibility check of group targets (§9.3): targets are trusted.
//! - hot toggling of `heartbeat.enabled` (§3): the config is the one given at start; a change of
//!   the file needs a restart. The flag is checked at every tick, so a reloaded config will only
//!   have to be handed in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

use crate::chat::orchestrator::OrchestratorHandle;
use crate::chat::session::SessionOutput;
use crate::core::config::Config;
use crate::core::heartbeat::{
    HeartbeatRun, TargetTickPlan, TickPlan, active_targets, alert_envelope, global_interval_minutes, global_tick,
    is_suspend_gap, target_tick,
};
use crate::core::session_key::SessionKey;
use crate::observer::WallClock;
use crate::runtime::bus::BusHandle;
use crate::store::host_zone::user_zone;

/// Messages of the heartbeat observer.
#[derive(Debug)]
pub enum HeartbeatMsg {
    /// The global timer fired: re-arm it, then tick.
    Tick,
    /// The own timer of the group target at this index of `heartbeat.group_targets` fired.
    TargetTick {
        /// Its index.
        index: usize,
    },
    /// Run a global tick now, outside the timer (nothing is re-armed).
    TickNow,
    /// A chat's heartbeat ended (internal).
    Finished {
        /// The chat.
        key: SessionKey,
        /// What came of it.
        outcome: RunOutcome,
    },
    /// The counters.
    Stats(RpcReplyPort<HeartbeatStats>),
}

/// What came of one heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Skipped by the chat layer, or the reply was the ack token: nothing sent.
    Silent,
    /// The alert was accepted by the Bus.
    Alerted,
    /// The alert could not be submitted (logged).
    SubmitFailed,
}

/// Counters of the observer since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatStats {
    /// Global ticks (timer or `TickNow`) while enabled, quiet ones included.
    pub ticks: u64,
    /// Global ticks skipped for the global quiet hours.
    pub quiet_ticks: u64,
    /// Ticks of targets with their own timer (quiet ones included).
    pub target_ticks: u64,
    /// Heartbeats asked of the chat layer.
    pub started: u64,
    /// Heartbeats that ended, whatever came of them.
    pub finished: u64,
    /// Alerts accepted by the Bus.
    pub alerts: u64,
    /// Heartbeats not asked for because the chat's previous one had not ended.
    pub busy_skips: u64,
}

/// Construction arguments.
#[derive(Clone)]
pub struct HeartbeatArgs {
    /// The agent's config (read at every tick; a change needs a restart for now).
    pub config: Arc<Config>,
    /// Runs the heartbeat turns.
    pub orchestrator: OrchestratorHandle,
    /// Where alerts go.
    pub bus: BusHandle,
    /// How long one configured minute lasts: 60 s in production; tests shorten it so the
    /// intervals of the config pass in milliseconds (ops spec §20.21).
    pub minute: Duration,
    /// The wall clock for the local hour and the suspend check.
    pub clock: WallClock,
}

impl std::fmt::Debug for HeartbeatArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeartbeatArgs")
            .field("enabled", &self.config.heartbeat.enabled)
            .field("interval_minutes", &self.config.heartbeat.interval_minutes)
            .field("minute", &self.minute)
            .finish_non_exhaustive()
    }
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct Heartbeat;

/// When a timer was armed (wall clock) and for how long.
#[derive(Debug, Clone, Copy)]
struct Armed {
    at: DateTime<Utc>,
    wait: Duration,
}

/// Its state.
pub struct HeartbeatState {
    args: HeartbeatArgs,
    global: Armed,
    targets: HashMap<usize, Armed>,
    in_flight: HashMap<SessionKey, JoinHandle<()>>,
    stats: HeartbeatStats,
}

impl std::fmt::Debug for HeartbeatState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeartbeatState")
            .field("in_flight", &self.in_flight.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Actor for Heartbeat {
    type Msg = HeartbeatMsg;
    type State = HeartbeatState;
    type Arguments = HeartbeatArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<HeartbeatMsg>,
        args: HeartbeatArgs,
    ) -> Result<HeartbeatState, ActorProcessingErr> {
        let heartbeat = &args.config.heartbeat;
        let global = arm(&myself, &args, global_interval_minutes(heartbeat), || HeartbeatMsg::Tick);
        let mut targets = HashMap::new();
        for target in active_targets(heartbeat) {
            if let Some(minutes) = target.own_interval_minutes {
                let index = target.index;
                targets.insert(index, arm(&myself, &args, minutes, move || HeartbeatMsg::TargetTick { index }));
                tracing::info!(actor = "heartbeat", chat = %target.run.key, interval_minutes = minutes,
                    "Heartbeat target has its own interval.");
            }
        }
        tracing::info!(
            actor = "heartbeat",
            enabled = heartbeat.enabled,
            interval_minutes = heartbeat.interval_minutes,
            users = args.config.allowed_user_ids.len(),
            "Heartbeat observer started."
        );
        Ok(HeartbeatState { args, global, targets, in_flight: HashMap::new(), stats: HeartbeatStats::default() })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<HeartbeatMsg>,
        state: &mut HeartbeatState,
    ) -> Result<(), ActorProcessingErr> {
        for (_, task) in state.in_flight.drain() {
            task.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<HeartbeatMsg>,
        msg: HeartbeatMsg,
        state: &mut HeartbeatState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            HeartbeatMsg::Tick => {
                state.note_gap(state.global, "global");
                let minutes = global_interval_minutes(&state.args.config.heartbeat);
                state.global = arm(&myself, &state.args, minutes, || HeartbeatMsg::Tick);
                state.tick(&myself);
            }
            HeartbeatMsg::TickNow => state.tick(&myself),
            HeartbeatMsg::TargetTick { index } => {
                if let Some(armed) = state.targets.get(&index).copied() {
                    state.note_gap(armed, "target");
                }
                state.target_tick(&myself, index);
            }
            HeartbeatMsg::Finished { key, outcome } => {
                state.in_flight.remove(&key);
                state.stats.finished += 1;
                if outcome == RunOutcome::Alerted {
                    state.stats.alerts += 1;
                }
                tracing::debug!(actor = "heartbeat", chat = %key, outcome = ?outcome, "Heartbeat ended.");
            }
            HeartbeatMsg::Stats(reply) => {
                let _ = reply.send(state.stats);
            }
        }
        Ok(())
    }
}

/// Arms a timer for `minutes` configured minutes; returns when (wall clock) and for how long.
fn arm<F>(myself: &ActorRef<HeartbeatMsg>, args: &HeartbeatArgs, minutes: u32, msg: F) -> Armed
where
    F: FnOnce() -> HeartbeatMsg + Send + 'static,
{
    let wait = args.minute.saturating_mul(minutes);
    myself.send_after(wait, msg);
    Armed { at: (args.clock)(), wait }
}

impl HeartbeatState {
    /// The local hour now, in the user's zone (resolved at every use).
    fn local_hour(&self) -> u32 {
        let zone = user_zone(&self.args.config.user_timezone);
        (self.args.clock)().with_timezone(&zone).hour()
    }

    /// Logs a timer that fired much later than armed by the wall clock (the machine slept).
    fn note_gap(&self, armed: Armed, timer: &str) {
        let gap = (self.args.clock)() - armed.at;
        if is_suspend_gap(armed.wait, gap) {
            tracing::warn!(
                actor = "heartbeat",
                timer,
                expected_s = armed.wait.as_secs(),
                gap_s = gap.num_seconds(),
                "Heartbeat timer fired long after it was due (suspend or clock jump)."
            );
        }
    }

    /// One global tick.
    fn tick(&mut self, myself: &ActorRef<HeartbeatMsg>) {
        let config = Arc::clone(&self.args.config);
        if !config.heartbeat.enabled {
            tracing::debug!(actor = "heartbeat", "Heartbeat disabled; tick skipped.");
            return;
        }
        self.stats.ticks += 1;
        let hour = self.local_hour();
        match global_tick(&config, hour) {
            TickPlan::Quiet => {
                self.stats.quiet_ticks += 1;
                tracing::debug!(actor = "heartbeat", hour, "Quiet hours; heartbeat tick skipped.");
            }
            TickPlan::Run(runs) => {
                tracing::debug!(actor = "heartbeat", hour, chats = runs.len(), "Heartbeat tick.");
                for run in runs {
                    self.start(myself, run);
                }
            }
        }
    }

    /// One tick of a target with its own timer; re-arms it unless the target is gone.
    fn target_tick(&mut self, myself: &ActorRef<HeartbeatMsg>, index: usize) {
        let config = Arc::clone(&self.args.config);
        let plan = target_tick(&config.heartbeat, index, self.local_hour());
        let next = match &plan {
            TargetTickPlan::Gone => None,
            TargetTickPlan::Quiet { next_minutes } | TargetTickPlan::Run { next_minutes, .. } => Some(*next_minutes),
        };
        match next {
            Some(minutes) => {
                let armed = arm(myself, &self.args, minutes, move || HeartbeatMsg::TargetTick { index });
                self.targets.insert(index, armed);
            }
            None => {
                self.targets.remove(&index);
                tracing::info!(actor = "heartbeat", index, "Heartbeat target no longer active; its timer stops.");
            }
        }
        if !config.heartbeat.enabled {
            return;
        }
        match plan {
            TargetTickPlan::Gone => {}
            TargetTickPlan::Quiet { .. } => {
                self.stats.target_ticks += 1;
                tracing::debug!(actor = "heartbeat", index, "Target quiet hours; heartbeat skipped.");
            }
            TargetTickPlan::Run { run, .. } => {
                self.stats.target_ticks += 1;
                self.start(myself, run);
            }
        }
    }

    /// Asks for one heartbeat in a task of its own, unless the chat's previous one is running.
    fn start(&mut self, myself: &ActorRef<HeartbeatMsg>, run: HeartbeatRun) {
        if self.in_flight.get(&run.key).is_some_and(|task| !task.is_finished()) {
            self.stats.busy_skips += 1;
            tracing::debug!(actor = "heartbeat", chat = %run.key, "Previous heartbeat still running; skipped.");
            return;
        }
        self.stats.started += 1;
        let key = run.key.clone();
        let orchestrator = self.args.orchestrator.clone();
        let bus = self.args.bus.clone();
        let me = myself.clone();
        let task = tokio::spawn(async move {
            let outcome = run_heartbeat(&orchestrator, &bus, &run).await;
            let _ = me.cast(HeartbeatMsg::Finished { key: run.key, outcome });
        });
        self.in_flight.insert(key, task);
    }
}

/// Asks the chat layer for a heartbeat, waits for its end and submits an alert to the Bus.
async fn run_heartbeat(orchestrator: &OrchestratorHandle, bus: &BusHandle, run: &HeartbeatRun) -> RunOutcome {
    let mut outputs = orchestrator.heartbeat(run.key.clone(), &run.prompt, &run.ack_token);
    let mut alert = None;
    while let Some(output) = outputs.recv().await {
        match output {
            SessionOutput::Notice(text) => alert = Some(text),
            SessionOutput::Stopped => alert = None,
            _ => {}
        }
    }
    let Some(text) = alert else { return RunOutcome::Silent };
    match bus.submit(alert_envelope(&run.key, &text)).await {
        Ok(id) => {
            tracing::info!(actor = "heartbeat", chat = %run.key, envelope_id = %id, "Heartbeat alert submitted.");
            RunOutcome::Alerted
        }
        Err(e) => {
            tracing::warn!(actor = "heartbeat", chat = %run.key, error = %e, "Heartbeat alert could not be submitted.");
            RunOutcome::SubmitFailed
        }
    }
}

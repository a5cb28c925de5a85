//! What the heartbeat observer does at a tick (ops spec §9): which chats get a heartbeat with
//! which prompt and ack token, the effective settings of group targets (§9.3), how long to wait
//! between ticks, when a wall-clock gap means the machine slept, and the Envelope an alert
//! becomes (§0.7).

use std::time::Duration;

use crate::core::config::Config;
use crate::core::config::model::{HeartbeatConfig, HeartbeatTarget};
use crate::core::envelope::{DeliveryMode, Envelope, LockMode, Origin};
use crate::core::session_key::SessionKey;
use crate::core::zone::is_quiet;

/// Transport of `allowed_user_ids` chats and of targets that name none.
pub const DEFAULT_TRANSPORT: &str = "tg";

/// A quiet window in local hours (ops spec §0.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// First quiet hour.
    pub start: i64,
    /// First hour that is no longer quiet.
    pub end: i64,
}

impl QuietHours {
    /// Whether the local `hour` is quiet.
    #[must_use]
    pub fn covers(self, hour: u32) -> bool {
        is_quiet(hour, self.start, self.end)
    }
}

/// One heartbeat to ask for: the chat, the prompt, the reply that means silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRun {
    /// The chat (transport, chat id, topic).
    pub key: SessionKey,
    /// The heartbeat prompt.
    pub prompt: String,
    /// The reply meaning "nothing to say".
    pub ack_token: String,
}

/// An active group target with its effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTarget {
    /// Its place in `heartbeat.group_targets`.
    pub index: usize,
    /// The heartbeat it asks for.
    pub run: HeartbeatRun,
    /// Its quiet hours (its own values, else the global ones).
    pub quiet: QuietHours,
    /// Minutes of its own loop; none when it runs inside the global tick.
    pub own_interval_minutes: Option<u32>,
}

/// What the global tick does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickPlan {
    /// Global quiet hours: nothing runs.
    Quiet,
    /// These heartbeats run, in this order.
    Run(Vec<HeartbeatRun>),
}

/// What the tick of a target with its own loop does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetTickPlan {
    /// The target is no longer active or no longer has its own loop: the loop ends.
    Gone,
    /// The target's quiet hours: nothing runs this time; the next tick comes after
    /// `next_minutes`.
    Quiet {
        /// Minutes to the next tick.
        next_minutes: u32,
    },
    /// This heartbeat runs; the next tick comes after `next_minutes`.
    Run {
        /// The heartbeat.
        run: HeartbeatRun,
        /// Minutes to the next tick.
        next_minutes: u32,
    },
}

/// Minutes between global ticks: `heartbeat.interval_minutes`, at least 1.
#[must_use]
pub fn global_interval_minutes(heartbeat: &HeartbeatConfig) -> u32 {
    clamp_minutes(heartbeat.interval_minutes).unwrap_or(1)
}

/// A group target's effective settings, or none when it is not active (disabled or no chat id).
#[must_use]
pub fn resolve_target(heartbeat: &HeartbeatConfig, index: usize, target: &HeartbeatTarget) -> Option<GroupTarget> {
    let chat_id = target.chat_id.filter(|_| target.enabled)?;
    let prompt = non_empty(target.prompt.as_deref()).unwrap_or(&heartbeat.prompt);
    let ack_token = non_empty(target.ack_token.as_deref()).unwrap_or(&heartbeat.ack_token);
    let quiet = QuietHours {
        start: target.quiet_start.unwrap_or(heartbeat.quiet_start),
        end: target.quiet_end.unwrap_or(heartbeat.quiet_end),
    };
    // A configured interval of 0 (or less) falls back to the global interval.
    let own_interval_minutes = target
        .interval_minutes
        .map(|minutes| clamp_minutes(minutes).unwrap_or_else(|| global_interval_minutes(heartbeat)));
    let key = SessionKey::new(&transport_short_name(&target.transport), chat_id, target.topic_id);
    Some(GroupTarget {
        index,
        run: HeartbeatRun { key, prompt: prompt.to_owned(), ack_token: ack_token.to_owned() },
        quiet,
        own_interval_minutes,
    })
}

/// Every active group target, in file order.
#[must_use]
pub fn active_targets(heartbeat: &HeartbeatConfig) -> Vec<GroupTarget> {
    heartbeat.group_targets.iter().enumerate().filter_map(|(i, t)| resolve_target(heartbeat, i, t)).collect()
}

/// The global tick at local `hour`: nothing in the global quiet hours; otherwise each
/// `allowed_user_ids` chat (no topic, global prompt and ack token), then each active group target
/// without its own loop whose own quiet hours do not cover `hour`. A chat listed twice runs once.
#[must_use]
pub fn global_tick(config: &Config, hour: u32) -> TickPlan {
    let heartbeat = &config.heartbeat;
    if (QuietHours { start: heartbeat.quiet_start, end: heartbeat.quiet_end }).covers(hour) {
        return TickPlan::Quiet;
    }
    let users = config.allowed_user_ids.iter().map(|&user| HeartbeatRun {
        key: SessionKey::new(DEFAULT_TRANSPORT, user, None),
        prompt: heartbeat.prompt.clone(),
        ack_token: heartbeat.ack_token.clone(),
    });
    let targets = active_targets(heartbeat)
        .into_iter()
        .filter(|t| t.own_interval_minutes.is_none() && !t.quiet.covers(hour))
        .map(|t| t.run);
    let mut runs: Vec<HeartbeatRun> = Vec::new();
    for run in users.chain(targets) {
        if !runs.iter().any(|r| r.key == run.key) {
            runs.push(run);
        }
    }
    TickPlan::Run(runs)
}

/// The tick of the target at `index` with its own loop, at local `hour`: only its own resolved
/// quiet hours apply (not the global check).
#[must_use]
pub fn target_tick(heartbeat: &HeartbeatConfig, index: usize, hour: u32) -> TargetTickPlan {
    let Some(target) = heartbeat.group_targets.get(index).and_then(|t| resolve_target(heartbeat, index, t)) else {
        return TargetTickPlan::Gone;
    };
    let Some(next_minutes) = target.own_interval_minutes else { return TargetTickPlan::Gone };
    if target.quiet.covers(hour) {
        return TargetTickPlan::Quiet { next_minutes };
    }
    TargetTickPlan::Run { run: target.run, next_minutes }
}

/// Whether a wall-clock gap between arming a timer and its firing means the machine was
/// suspended: more than twice the expected wait.
#[must_use]
pub fn is_suspend_gap(expected: Duration, wall_gap: chrono::TimeDelta) -> bool {
    let Ok(expected) = chrono::TimeDelta::from_std(expected) else { return false };
    wall_gap > expected * 2
}

/// The Envelope an alert becomes: origin `heartbeat`, UNICAST to the chat and topic on the
/// chat's transport, status `success`, the text as it is.
#[must_use]
pub fn alert_envelope(key: &SessionKey, text: &str) -> Envelope {
    Envelope {
        origin: Origin::Heartbeat,
        chat_id: key.chat_id,
        topic_id: key.topic_id,
        transport: key.transport.clone(),
        result_text: text.to_owned(),
        status: "success".to_owned(),
        is_error: false,
        delivery: DeliveryMode::Unicast,
        lock_mode: LockMode::None,
        needs_injection: false,
        ..Envelope::default()
    }
}

/// The short transport name of a target (`telegram` → `tg`, `matrix` → `mx`; empty → `tg`).
fn transport_short_name(transport: &str) -> String {
    match transport.trim() {
        "" | "telegram" => DEFAULT_TRANSPORT.to_owned(),
        "matrix" => "mx".to_owned(),
        other => other.to_owned(),
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn clamp_minutes(minutes: i64) -> Option<u32> {
    (minutes > 0).then(|| u32::try_from(minutes).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::session_key::ChatId;

    fn config(users: &[i64], targets: Vec<HeartbeatTarget>) -> Config {
        let mut config = Config { allowed_user_ids: users.to_vec(), ..Config::default() };
        config.heartbeat.enabled = true;
        config.heartbeat.prompt = "global prompt".into();
        config.heartbeat.group_targets = targets;
        config
    }

    fn target(chat: Option<i64>) -> HeartbeatTarget {
        HeartbeatTarget { chat_id: chat, ..HeartbeatTarget::default() }
    }

    fn keys(plan: &TickPlan) -> Vec<String> {
        match plan {
            TickPlan::Quiet => vec!["quiet".to_owned()],
            TickPlan::Run(runs) => runs.iter().map(|r| r.key.storage_key()).collect(),
        }
    }

    #[test]
    fn the_global_tick_wakes_each_user_then_each_target_without_own_loop() {
        let own = HeartbeatTarget { interval_minutes: Some(5), ..target(Some(-300)) };
        let topic = HeartbeatTarget { topic_id: Some(7), ..target(Some(-200)) };
        let c = config(&[11, 12], vec![target(Some(-100)), own, topic]);
        let plan = global_tick(&c, 12);
        assert_eq!(keys(&plan), ["tg:11", "tg:12", "tg:-100", "tg:-200:7"]);
        let TickPlan::Run(runs) = plan else { unreachable!() };
        assert!(runs.iter().all(|r| r.prompt == "global prompt" && r.ack_token == "HEARTBEAT_OK"));
    }

    #[test]
    fn global_quiet_hours_skip_the_whole_tick() {
        let c = config(&[11], vec![target(Some(-100))]);
        assert_eq!(global_tick(&c, 23), TickPlan::Quiet, "21–8 covers 23:00");
        assert_eq!(global_tick(&c, 3), TickPlan::Quiet);
        assert_eq!(keys(&global_tick(&c, 10)), ["tg:11", "tg:-100"], "10:00 runs");
    }

    #[test]
    fn disabled_targets_and_targets_without_chat_never_run() {
        let disabled = HeartbeatTarget { enabled: false, ..target(Some(-100)) };
        let disabled_own = HeartbeatTarget { enabled: false, interval_minutes: Some(1), ..target(Some(-101)) };
        let c = config(
            &[],
            vec![disabled, disabled_own, target(None), Config::default().heartbeat.group_targets[0].clone()],
        );
        assert_eq!(global_tick(&c, 12), TickPlan::Run(vec![]));
        assert!(active_targets(&c.heartbeat).is_empty());
        for index in 0..4 {
            assert_eq!(target_tick(&c.heartbeat, index, 12), TargetTickPlan::Gone, "target {index}");
        }
    }

    #[test]
    fn a_target_overrides_prompt_ack_and_quiet_hours_and_falls_back_when_empty() {
        let c = config(&[], vec![]);
        let own = HeartbeatTarget {
            prompt: Some("check".into()),
            ack_token: Some("QUIET".into()),
            quiet_start: Some(9),
            transport: "mx".into(),
            ..target(Some(5))
        };
        let resolved = resolve_target(&c.heartbeat, 0, &own).unwrap();
        assert_eq!(resolved.run.key, SessionKey::new("mx", 5_i64, None));
        assert_eq!((resolved.run.prompt.as_str(), resolved.run.ack_token.as_str()), ("check", "QUIET"));
        assert_eq!(resolved.quiet, QuietHours { start: 9, end: 8 });

        let empty = HeartbeatTarget { prompt: Some(String::new()), ack_token: None, ..target(Some(5)) };
        let resolved = resolve_target(&c.heartbeat, 0, &empty).unwrap();
        assert_eq!((resolved.run.prompt.as_str(), resolved.run.ack_token.as_str()), ("global prompt", "HEARTBEAT_OK"));
        assert_eq!(resolved.quiet, QuietHours { start: 21, end: 8 });
        assert_eq!(resolved.run.key.transport, "tg");
    }

    #[test]
    fn a_target_in_its_own_quiet_hours_is_left_out_of_the_global_tick() {
        let sleepy = HeartbeatTarget { quiet_start: Some(10), quiet_end: Some(14), ..target(Some(-100)) };
        let c = config(&[11], vec![sleepy]);
        assert_eq!(keys(&global_tick(&c, 12)), ["tg:11"]);
        assert_eq!(keys(&global_tick(&c, 15)), ["tg:11", "tg:-100"]);
    }

    #[test]
    fn an_own_loop_applies_only_its_own_quiet_hours() {
        let own =
            HeartbeatTarget { interval_minutes: Some(1), quiet_start: Some(0), quiet_end: Some(0), ..target(Some(-1)) };
        let c = config(&[], vec![own]);
        // Global quiet (21–8) does not stop it; its own window (0–0) is never quiet.
        let TargetTickPlan::Run { run, next_minutes } = target_tick(&c.heartbeat, 0, 23) else { panic!("runs") };
        assert_eq!((run.key.chat_id, next_minutes), (ChatId::from(-1_i64), 1));

        let quiet = HeartbeatTarget { interval_minutes: Some(1), ..target(Some(-1)) };
        let c = config(&[], vec![quiet]);
        assert_eq!(
            target_tick(&c.heartbeat, 0, 23),
            TargetTickPlan::Quiet { next_minutes: 1 },
            "global values resolved as its own"
        );
        assert_eq!(target_tick(&c.heartbeat, 3, 12), TargetTickPlan::Gone, "no such target");
    }

    #[test]
    fn intervals_are_at_least_a_minute_and_zero_means_the_global_one() {
        let mut c = config(&[], vec![HeartbeatTarget { interval_minutes: Some(0), ..target(Some(1)) }]);
        c.heartbeat.interval_minutes = 45;
        assert_eq!(global_interval_minutes(&c.heartbeat), 45);
        assert_eq!(active_targets(&c.heartbeat)[0].own_interval_minutes, Some(45));
        c.heartbeat.interval_minutes = 0;
        assert_eq!(global_interval_minutes(&c.heartbeat), 1);
        c.heartbeat.group_targets[0].interval_minutes = Some(7);
        assert_eq!(active_targets(&c.heartbeat)[0].own_interval_minutes, Some(7));
    }

    #[test]
    fn a_user_also_listed_as_target_runs_once() {
        let c = config(&[11], vec![target(Some(11))]);
        assert_eq!(keys(&global_tick(&c, 12)), ["tg:11"]);
    }

    #[test]
    fn a_gap_over_twice_the_interval_is_a_suspend() {
        let minute = Duration::from_secs(60);
        assert!(!is_suspend_gap(minute, chrono::TimeDelta::seconds(61)));
        assert!(!is_suspend_gap(minute, chrono::TimeDelta::seconds(120)));
        assert!(is_suspend_gap(minute, chrono::TimeDelta::seconds(121)));
        assert!(!is_suspend_gap(minute, chrono::TimeDelta::seconds(-3600)), "a clock set back is no suspend");
    }

    #[test]
    fn an_alert_is_a_unicast_heartbeat_envelope_to_the_chat() {
        let envelope = alert_envelope(&SessionKey::new("mx", -5_i64, Some(3)), "Here is an idea");
        assert_eq!(envelope.origin, Origin::Heartbeat);
        assert_eq!(envelope.delivery, DeliveryMode::Unicast);
        assert_eq!((envelope.chat_id, envelope.topic_id), (ChatId::from(-5_i64), Some(3)));
        assert_eq!(envelope.transport, "mx");
        assert_eq!(envelope.result_text, "Here is an idea");
        assert_eq!(envelope.status, "success");
        assert!(!envelope.needs_session(), "delivered as it is, not through the session");
    }
}

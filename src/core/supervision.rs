//! The restart contract ("code 42 semantics") as a pure decision: how a supervisor reacts to
//! the way one of its children ended.
//!
//! | child ends with                         | decision                                        |
//! |-----------------------------------------|-------------------------------------------------|
//! | stop reason [`RESTART_REASON`]          | rebuild at once, crash counter reset            |
//! | a crash (panic or handler error)        | restart after 5, 10, 20, 40, 80 s; the 6th      |
//! |                                         | crash in a row gives up                         |
//! | a normal stop                           | stays stopped                                   |
//!
//! A child that ran for [`HEALTHY_RUN`] before crashing starts counting afresh (the original
//! never resets the counter; ops spec §11.2 asks for this).

use std::time::Duration;

/// The stop reason an actor gives to ask its supervisor for an immediate rebuild (exit 42).
pub const RESTART_REASON: &str = "restart";

/// The stop reason used while the whole service shuts down.
pub const SHUTDOWN_REASON: &str = "shutdown";

/// The process exit status that asks the service manager (or the foreground loop) to start
/// ductor again.
pub const EXIT_RESTART: i32 = 42;

/// Crashes in a row that are restarted; the next one gives up.
pub const MAX_RESTARTS: u32 = 5;

/// The delay before the first restart; it doubles with every crash in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);

/// A run this long counts as healthy: the next crash is counted as the first.
pub const HEALTHY_RUN: Duration = Duration::from_secs(600);

/// How a child actor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildExit {
    /// It stopped and asked to be rebuilt (code 42).
    RestartRequested,
    /// It panicked or its handler returned an error.
    Crashed {
        /// The error text.
        error: String,
    },
    /// It stopped normally (any other stop reason, or none).
    Stopped {
        /// The stop reason, if any.
        reason: Option<String>,
    },
}

impl ChildExit {
    /// Classifies a ractor termination reason.
    pub fn from_stop_reason(reason: Option<&str>) -> Self {
        match reason {
            Some(RESTART_REASON) => Self::RestartRequested,
            other => Self::Stopped { reason: other.map(str::to_owned) },
        }
    }
}

/// What the supervisor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Rebuild the child now.
    RestartNow,
    /// Rebuild the child after this delay.
    RestartAfter(Duration),
    /// Stop trying: tell the users, leave the child stopped.
    GiveUp {
        /// Crashes in a row, including this one.
        crashes: u32,
        /// The last error.
        error: String,
    },
    /// Leave the child stopped.
    LeaveStopped,
}

/// Per-child crash bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashCounter {
    crashes_in_a_row: u32,
}

impl CrashCounter {
    /// Crashes in a row so far.
    pub fn crashes(&self) -> u32 {
        self.crashes_in_a_row
    }

    /// Decides what to do after `exit`, given how long the child ran since its last start.
    pub fn decide(&mut self, exit: &ChildExit, ran_for: Duration) -> Decision {
        match exit {
            ChildExit::RestartRequested => {
                self.crashes_in_a_row = 0;
                Decision::RestartNow
            }
            ChildExit::Stopped { .. } => Decision::LeaveStopped,
            ChildExit::Crashed { error } => {
                if ran_for >= HEALTHY_RUN {
                    self.crashes_in_a_row = 0;
                }
                self.crashes_in_a_row += 1;
                if self.crashes_in_a_row > MAX_RESTARTS {
                    Decision::GiveUp { crashes: self.crashes_in_a_row, error: error.clone() }
                } else {
                    Decision::RestartAfter(backoff(self.crashes_in_a_row))
                }
            }
        }
    }
}

/// `5 × 2^(n−1)` seconds for the n-th crash in a row.
pub fn backoff(crash: u32) -> Duration {
    FIRST_BACKOFF * 2u32.saturating_pow(crash.saturating_sub(1).min(16))
}

/// The `[Supervisor]` notice text when a child is given up.
pub fn give_up_notice(agent: &str, child: &str, crashes: u32, error: &str) -> String {
    if agent == child {
        format!("Agent '{agent}' stopped after {crashes} crashes in a row. Last error: {error}")
    } else {
        format!("'{child}' of agent '{agent}' stopped after {crashes} crashes in a row. Last error: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash() -> ChildExit {
        ChildExit::Crashed { error: "boom".into() }
    }

    #[test]
    fn crashes_back_off_5_10_20_40_80_then_give_up() {
        let mut counter = CrashCounter::default();
        let delays: Vec<Decision> = (0..6).map(|_| counter.decide(&crash(), Duration::from_secs(1))).collect();
        assert_eq!(
            delays,
            vec![
                Decision::RestartAfter(Duration::from_secs(5)),
                Decision::RestartAfter(Duration::from_secs(10)),
                Decision::RestartAfter(Duration::from_secs(20)),
                Decision::RestartAfter(Duration::from_secs(40)),
                Decision::RestartAfter(Duration::from_secs(80)),
                Decision::GiveUp { crashes: 6, error: "boom".into() },
            ]
        );
    }

    #[test]
    fn restart_request_rebuilds_at_once_and_resets() {
        let mut counter = CrashCounter::default();
        counter.decide(&crash(), Duration::ZERO);
        counter.decide(&crash(), Duration::ZERO);
        assert_eq!(counter.decide(&ChildExit::RestartRequested, Duration::ZERO), Decision::RestartNow);
        assert_eq!(counter.crashes(), 0);
        assert_eq!(counter.decide(&crash(), Duration::ZERO), Decision::RestartAfter(Duration::from_secs(5)));
    }

    #[test]
    fn normal_stop_stays_stopped() {
        let mut counter = CrashCounter::default();
        let exit = ChildExit::from_stop_reason(None);
        assert_eq!(counter.decide(&exit, Duration::ZERO), Decision::LeaveStopped);
        let exit = ChildExit::from_stop_reason(Some("done"));
        assert_eq!(counter.decide(&exit, Duration::ZERO), Decision::LeaveStopped);
        assert_eq!(ChildExit::from_stop_reason(Some("restart")), ChildExit::RestartRequested);
    }

    #[test]
    fn a_healthy_run_resets_the_count() {
        let mut counter = CrashCounter::default();
        for _ in 0..4 {
            counter.decide(&crash(), Duration::from_secs(1));
        }
        assert_eq!(counter.decide(&crash(), HEALTHY_RUN), Decision::RestartAfter(Duration::from_secs(5)));
    }

    #[test]
    fn notice_names_agent_child_and_error() {
        let text = give_up_notice("main", "bus", 6, "disk full");
        assert!(text.contains("'bus'") && text.contains("'main'") && text.contains("disk full"));
    }
}

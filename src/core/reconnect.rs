//! Reconnecting after network trouble ("network trouble is not a crash"): the capped, jittered
//! backoff a transport waits between attempts to reach its server — 1 s, doubling, never more
//! than 60 s — instead of crashing into the supervisor's give-up limit.

use std::time::Duration;

/// The first wait.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);

/// The longest wait.
pub const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// The waits between attempts to reach a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconnect {
    failures: u32,
}

impl Reconnect {
    /// No failure yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One more failed attempt: how long to wait before the next one. `jitter` (0 ≤ j < 1, a
    /// random number) takes up to a fifth off the wait, so many clients do not come back in step;
    /// the wait never exceeds [`LONGEST_WAIT`].
    pub fn failed(&mut self, jitter: f64) -> Duration {
        let doubled = FIRST_WAIT.saturating_mul(1 << self.failures.min(6));
        self.failures = self.failures.saturating_add(1);
        doubled.min(LONGEST_WAIT).mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
    }

    /// An attempt succeeded: the next failure starts from [`FIRST_WAIT`] again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_one_second_up_to_a_minute_and_start_over_after_a_success() {
        let mut reconnect = Reconnect::new();
        let waits: Vec<u64> = (0..9).map(|_| reconnect.failed(0.0).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(reconnect.failures(), 9);
        reconnect.succeeded();
        assert_eq!(reconnect.failed(0.0), FIRST_WAIT);
    }

    #[test]
    fn jitter_only_shortens_the_wait() {
        let mut reconnect = Reconnect::new();
        for _ in 0..10 {
            reconnect.failed(0.0);
        }
        assert_eq!(reconnect.clone().failed(1.0), Duration::from_secs(48));
        assert_eq!(reconnect.clone().failed(0.5), Duration::from_secs(54));
        assert_eq!(reconnect.failed(0.0), LONGEST_WAIT);
    }
}

//! The webhook server's rate limit (ops spec §8.5) — one sliding 60-second window for the
//! whole server — and the tally that keeps a flood of rejected requests out of the log: at most
//! one line per minute for each kind of rejection, with the count.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The length of the sliding window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The global sliding-window limiter: a request is allowed while fewer than `per_minute`
/// allowed requests lie within the last 60 s; each allowed request is recorded at once, so
/// requests refused by a later check still use up the quota. A limit of zero or less allows
/// nothing (as in the original).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_minute: usize,
    allowed: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter with nothing recorded yet.
    pub fn new(per_minute: i64) -> Self {
        Self { per_minute: usize::try_from(per_minute).unwrap_or(0), allowed: VecDeque::new() }
    }

    /// Whether a request arriving at `now` is allowed (and if so, records it).
    pub fn allow(&mut self, now: Instant) -> bool {
        while self.allowed.front().is_some_and(|&t| now.saturating_duration_since(t) >= WINDOW) {
            self.allowed.pop_front();
        }
        if self.allowed.len() < self.per_minute {
            self.allowed.push_back(now);
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone)]
struct KindTally {
    last_line: Instant,
    unlogged: u64,
}

/// Counts rejections per kind so the log gets at most one line per kind and minute: the first
/// rejection of a kind is logged at once; later ones are counted and reported together once a
/// minute has passed since that kind's last line (by the next rejection of the kind or by
/// [`RejectionTally::due`], which a timer calls).
#[derive(Debug, Clone, Default)]
pub struct RejectionTally {
    kinds: BTreeMap<&'static str, KindTally>,
}

impl RejectionTally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes one rejection of `kind` at `now`; `Some(count)` when a line is to be logged now
    /// (for `count` rejections, this one included).
    pub fn note(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(kind) {
            None => {
                self.kinds.insert(kind, KindTally { last_line: now, unlogged: 0 });
                Some(1)
            }
            Some(tally) if now.saturating_duration_since(tally.last_line) >= WINDOW => {
                let count = tally.unlogged + 1;
                *tally = KindTally { last_line: now, unlogged: 0 };
                Some(count)
            }
            Some(tally) => {
                tally.unlogged += 1;
                None
            }
        }
    }

    /// The kinds whose counted rejections are due for their line at `now` (a minute after the
    /// kind's last line), with their counts; they count afresh from here.
    pub fn due(&mut self, now: Instant) -> Vec<(&'static str, u64)> {
        let mut lines = Vec::new();
        for (kind, tally) in &mut self.kinds {
            if tally.unlogged > 0 && now.saturating_duration_since(tally.last_line) >= WINDOW {
                lines.push((*kind, tally.unlogged));
                *tally = KindTally { last_line: now, unlogged: 0 };
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(3);
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(limiter.allow(at(0)));
        assert!(limiter.allow(at(10)));
        assert!(limiter.allow(at(20)));
        assert!(!limiter.allow(at(30)), "4th within a minute");
        assert!(!limiter.allow(at(59)));
        assert!(limiter.allow(at(60)), "the first left the window");
        assert!(!limiter.allow(at(61)));
        assert!(limiter.allow(at(70)));
        assert!(limiter.allow(at(80)));
        assert!(!limiter.allow(at(81)));
    }

    #[test]
    fn refused_requests_do_not_extend_the_window() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1);
        assert!(limiter.allow(start));
        for s in 1..60 {
            assert!(!limiter.allow(start + Duration::from_secs(s)));
        }
        assert!(limiter.allow(start + Duration::from_secs(60)));
    }

    #[test]
    fn a_limit_of_zero_allows_nothing() {
        let mut limiter = RateLimiter::new(0);
        assert!(!limiter.allow(Instant::now()));
        let mut negative = RateLimiter::new(-4);
        assert!(!negative.allow(Instant::now()));
    }

    #[test]
    fn a_flood_gives_one_line_per_kind_and_minute() {
        let start = Instant::now();
        let mut tally = RejectionTally::new();
        let mut lines = Vec::new();
        for i in 0..1000u64 {
            let now = start + Duration::from_millis(i * 100);
            for kind in ["unauthorized", "invalid_json"] {
                if let Some(count) = tally.note(kind, now) {
                    lines.push((kind, count));
                }
            }
            if i % 150 == 0 {
                lines.extend(tally.due(now));
            }
        }
        lines.extend(tally.due(start + Duration::from_secs(1000)));
        // 100 s of rejections: a line at 0 s, at 60 s, and the rest once the flood is over.
        let unauthorized: Vec<u64> = lines.iter().filter(|(k, _)| *k == "unauthorized").map(|(_, c)| *c).collect();
        assert!(unauthorized.len() <= 3, "{unauthorized:?}");
        assert_eq!(unauthorized.iter().sum::<u64>(), 1000, "every rejection is counted once");
        let json: u64 = lines.iter().filter(|(k, _)| *k == "invalid_json").map(|(_, c)| *c).sum();
        assert_eq!(json, 1000);
    }

    #[test]
    fn counted_rejections_are_reported_by_the_timer_a_minute_after_the_last_line() {
        let start = Instant::now();
        let mut tally = RejectionTally::new();
        assert_eq!(tally.note("hook_not_found", start), Some(1));
        assert_eq!(tally.note("hook_not_found", start + Duration::from_secs(1)), None);
        assert_eq!(tally.note("hook_not_found", start + Duration::from_secs(2)), None);
        assert!(tally.due(start + Duration::from_secs(59)).is_empty());
        assert_eq!(tally.due(start + Duration::from_secs(60)), vec![("hook_not_found", 2)]);
        assert!(tally.due(start + Duration::from_secs(200)).is_empty(), "nothing new");
        assert_eq!(tally.note("hook_not_found", start + Duration::from_secs(200)), Some(1));
    }
}

//! The duplicate filter of the transports' ingress: a message id seen again within a short time
//! (Telegram redelivering an update, Matrix a sync event) is not taken twice.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Duplicate filter: a key seen within `ttl` is a duplicate (a hit refreshes its time);
/// at most `capacity` keys, the oldest evicted.
#[derive(Debug, Clone)]
pub struct Dedup {
    ttl: Duration,
    capacity: usize,
    seen: HashMap<String, Instant>,
    order: VecDeque<String>,
}

impl Default for Dedup {
    fn default() -> Self {
        Self::new(Duration::from_secs(30), 200)
    }
}

impl Dedup {
    /// A filter with this time-to-live and capacity.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, seen: HashMap::new(), order: VecDeque::new() }
    }

    /// Records `key` at `now`; `true` when it was seen within the TTL (a duplicate).
    pub fn seen_before(&mut self, key: &str, now: Instant) -> bool {
        let duplicate = self.seen.get(key).is_some_and(|at| now.duration_since(*at) <= self.ttl);
        if !self.seen.contains_key(key) {
            self.order.push_back(key.to_owned());
        }
        self.seen.insert(key.to_owned(), now);
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        duplicate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_within_thirty_seconds() {
        let mut dedup = Dedup::default();
        let t0 = Instant::now();
        assert!(!dedup.seen_before("1:5", t0));
        assert!(dedup.seen_before("1:5", t0 + Duration::from_secs(10)));
        assert!(dedup.seen_before("1:5", t0 + Duration::from_secs(39)), "a hit refreshes");
        assert!(!dedup.seen_before("1:5", t0 + Duration::from_secs(80)));
        let mut small = Dedup::new(Duration::from_secs(30), 2);
        for key in ["a", "b", "c"] {
            small.seen_before(key, t0);
        }
        assert!(!small.seen_before("a", t0), "evicted");
    }
}

//! The dependency queue (ops spec §7.5): unattended runs — cron jobs and webhook `cron_task`
//! requests, of every agent — that name the same `dependency` run strictly one at a time, in the
//! order they asked; runs without one, or with different ones, run side by side. One queue per
//! process, made by the composition and handed to every agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

/// The process-wide queue; clones share it.
#[derive(Debug, Clone, Default)]
pub struct DependencyQueue {
    keys: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// A run's turn for its dependency; the next run of that dependency starts when it is dropped.
#[derive(Debug)]
pub struct DependencyTurn {
    _turn: OwnedMutexGuard<()>,
}

impl DependencyQueue {
    /// A new, empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for the turn of `dependency` (first come, first served); `None` or an empty name
    /// runs at once without a turn.
    pub async fn turn(&self, dependency: Option<&str>) -> Option<DependencyTurn> {
        let key = dependency.map(str::trim).filter(|d| !d.is_empty())?;
        let lock = {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(keys.entry(key.to_owned()).or_default())
        };
        // tokio's mutex is fair: waiters get it in the order they asked.
        Some(DependencyTurn { _turn: lock.lock_owned().await })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_dependency_runs_one_at_a_time_in_arrival_order() {
        let queue = DependencyQueue::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..3 {
            let (queue, order) = (queue.clone(), Arc::clone(&order));
            tasks.spawn(async move {
                let _turn = queue.turn(Some("db")).await;
                order.lock().unwrap().push(format!("start {n}"));
                tokio::time::sleep(Duration::from_secs(5)).await;
                order.lock().unwrap().push(format!("end {n}"));
            });
            tokio::task::yield_now().await;
        }
        while tasks.join_next().await.is_some() {}
        assert_eq!(*order.lock().unwrap(), ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_or_different_dependencies_run_side_by_side() {
        let queue = DependencyQueue::new();
        let started = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for dependency in [None, None, Some("a"), Some("b"), Some(" ")] {
            let queue = queue.clone();
            tasks.spawn(async move {
                let _turn = queue.turn(dependency).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
        while tasks.join_next().await.is_some() {}
        assert_eq!(started.elapsed(), Duration::from_secs(5), "all five overlapped");
    }
}

//! The health board: every actor's health (status, start time, restarts, last failure), kept
//! by its supervisor and read by the internal API to draw the live actor tree.
//!
//! Supervisors write it when a child starts, fails or stops; readers never wait on an actor's
//! mailbox, so a busy actor still shows up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use crate::core::health::{ActorKind, ActorNode, ActorStatus};

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: ActorKind,
    status: ActorStatus,
    started_at: Option<Instant>,
    restarts: u32,
    last_failure: Option<String>,
    order: u64,
}

#[derive(Debug, Default)]
struct Board {
    entries: BTreeMap<String, Entry>,
    next_order: u64,
}

/// Shared, cloneable health board. Paths are `/`-separated: `root`, `root/main`, `root/main/bus`.
#[derive(Debug, Clone, Default)]
pub struct HealthBoard {
    inner: Arc<Mutex<Board>>,
}

/// The health of one agent, as `/interagent/health` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentHealth {
    /// Agent name.
    pub name: String,
    /// Its status.
    pub status: ActorStatus,
    /// Seconds since its last start.
    pub uptime_s: f64,
    /// Restarts so far.
    pub restarts: u32,
    /// Last failure text.
    pub last_failure: Option<String>,
}

impl HealthBoard {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Board) -> R) -> R {
        let mut board = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut board)
    }

    /// Adds (or keeps) an actor in `starting` state.
    pub fn register(&self, path: &str, name: &str, kind: ActorKind) {
        self.with(|board| {
            if board.entries.contains_key(path) {
                return;
            }
            let order = board.next_order;
            board.next_order += 1;
            board.entries.insert(
                path.to_owned(),
                Entry {
                    name: name.to_owned(),
                    kind,
                    status: ActorStatus::Starting,
                    started_at: None,
                    restarts: 0,
                    last_failure: None,
                    order,
                },
            );
        });
    }

    fn update(&self, path: &str, f: impl FnOnce(&mut Entry)) {
        self.with(|board| {
            if let Some(entry) = board.entries.get_mut(path) {
                f(entry);
            }
        });
    }

    /// The actor is up.
    pub fn running(&self, path: &str) {
        self.update(path, |e| {
            e.status = ActorStatus::Running;
            e.started_at = Some(Instant::now());
        });
    }

    /// Sets a status without touching the rest (e.g. `reconnecting`).
    pub fn set_status(&self, path: &str, status: ActorStatus) {
        self.update(path, |e| e.status = status);
    }

    /// The actor crashed; `status` is `restarting` or `crashed`.
    pub fn failed(&self, path: &str, error: &str, status: ActorStatus) {
        self.update(path, |e| {
            e.status = status;
            e.started_at = None;
            e.last_failure = Some(error.to_owned());
        });
    }

    /// The actor is being rebuilt (counts a restart).
    pub fn restarting(&self, path: &str) {
        self.update(path, |e| {
            e.status = ActorStatus::Starting;
            e.restarts += 1;
        });
    }

    /// The actor stopped.
    pub fn stopped(&self, path: &str) {
        self.update(path, |e| {
            e.status = ActorStatus::Stopped;
            e.started_at = None;
        });
    }

    /// Removes an actor and everything under it (short-lived actors such as provider runs).
    pub fn remove(&self, path: &str) {
        let prefix = format!("{path}/");
        self.with(|board| board.entries.retain(|p, _| p != path && !p.starts_with(&prefix)));
    }

    /// The status of one actor.
    pub fn status(&self, path: &str) -> Option<ActorStatus> {
        self.with(|board| board.entries.get(path).map(|e| e.status))
    }

    /// The tree under `path` (usually `root`).
    pub fn tree(&self, path: &str) -> Option<ActorNode> {
        let now = Instant::now();
        self.with(|board| build_node(&board.entries, path, now))
    }

    /// Every agent's health, for `/interagent/health`.
    pub fn agents(&self) -> Vec<AgentHealth> {
        let now = Instant::now();
        self.with(|board| {
            let mut agents: Vec<(u64, AgentHealth)> = board
                .entries
                .values()
                .filter(|e| matches!(e.kind, ActorKind::Agent | ActorKind::Subagent))
                .map(|e| {
                    (
                        e.order,
                        AgentHealth {
                            name: e.name.clone(),
                            status: e.status,
                            uptime_s: uptime(e, now),
                            restarts: e.restarts,
                            last_failure: e.last_failure.clone(),
                        },
                    )
                })
                .collect();
            agents.sort_by_key(|(order, _)| *order);
            agents.into_iter().map(|(_, a)| a).collect()
        })
    }
}

/// An actor's own report of its link to its server (a transport): `reconnecting` while it
/// cannot reach it — network trouble is not a crash, so its supervisor never hears of it — and
/// `running` again once it can.
#[derive(Debug, Clone, Default)]
pub struct LinkStatus {
    board: Option<HealthBoard>,
    path: String,
}

impl LinkStatus {
    /// The link of the actor at `path` on `board`.
    pub fn new(board: HealthBoard, path: String) -> Self {
        Self { board: Some(board), path }
    }

    /// The server cannot be reached (`why` shows as the last failure).
    pub fn reconnecting(&self, why: &str) {
        if let Some(board) = &self.board {
            board.update(&self.path, |e| {
                e.status = ActorStatus::Reconnecting;
                e.last_failure = Some(why.to_owned());
            });
        }
    }

    /// The server answers again.
    pub fn connected(&self) {
        if let Some(board) = &self.board {
            board.update(&self.path, |e| {
                if e.status == ActorStatus::Reconnecting {
                    e.status = ActorStatus::Running;
                }
            });
        }
    }
}

fn uptime(entry: &Entry, now: Instant) -> f64 {
    entry.started_at.map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64())
}

fn build_node(entries: &BTreeMap<String, Entry>, path: &str, now: Instant) -> Option<ActorNode> {
    let entry = entries.get(path)?;
    let prefix = format!("{path}/");
    let mut children: Vec<(u64, &String)> = entries
        .iter()
        .filter(|(p, _)| p.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('/')))
        .map(|(p, e)| (e.order, p))
        .collect();
    children.sort_by_key(|(order, _)| *order);
    Some(ActorNode {
        name: entry.name.clone(),
        kind: entry.kind,
        status: entry.status,
        restarts: entry.restarts,
        uptime_s: uptime(entry, now),
        last_failure: entry.last_failure.clone(),
        children: children.into_iter().filter_map(|(_, p)| build_node(entries, p, now)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_follows_paths_in_registration_order() {
        let board = HealthBoard::new();
        board.register("root", "root", ActorKind::Supervisor);
        board.register("root/main", "main", ActorKind::Agent);
        board.register("root/internal_api", "internal_api", ActorKind::Transport);
        board.register("root/main/bus", "bus", ActorKind::Bus);
        board.running("root/main/bus");
        board.failed("root/main/bus", "boom", ActorStatus::Restarting);
        board.restarting("root/main/bus");
        board.running("root/main/bus");
        let tree = board.tree("root").unwrap();
        let names: Vec<_> = tree.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["main", "internal_api"]);
        let bus = tree.find("bus").unwrap();
        assert_eq!(bus.restarts, 1);
        assert_eq!(bus.status, ActorStatus::Running);
        assert_eq!(bus.last_failure.as_deref(), Some("boom"));
        assert_eq!(board.agents().len(), 1);
        board.remove("root/main");
        assert!(board.tree("root").unwrap().find("bus").is_none());
    }
}

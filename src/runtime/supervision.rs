//! Supervision helper shared by every supervising actor: the child specs, their health on the
//! board, and the restart contract of [`crate::core::supervision`] applied to ractor's
//! supervision events.
//!
//! The parent actor owns a [`ChildSet`]; in `handle_supervisor_evt` it calls
//! [`ChildSet::on_event`] and carries out the returned [`Reaction`] (restart now, schedule a
//! restart with `send_after`, report a give-up, or nothing).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef, SpawnErr, SupervisionEvent};
use tokio::time::Instant;

use crate::core::health::{ActorKind, ActorStatus};
use crate::core::supervision::{ChildExit, CrashCounter, Decision, SHUTDOWN_REASON};
use crate::runtime::health_board::HealthBoard;

/// Asks the agent to restart with a reason (exit code 42 for the main agent): handed by the
/// composition to the children that may ask (a transport's `/restart`, the restart marker).
pub type RestartRequest = Arc<dyn Fn(String) + Send + Sync>;

/// The future that spawns one child linked to its supervisor.
pub type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>;

/// Builds and spawns a child, linked to the given supervisor cell.
pub type StartFn = Arc<dyn Fn(ActorCell) -> StartFuture + Send + Sync>;

/// A place that always holds the current `ActorRef` of a restartable actor, so handles given
/// out before a restart keep working after it.
#[derive(Debug)]
pub struct ActorSlot<M: ractor::Message> {
    current: Arc<Mutex<Option<ActorRef<M>>>>,
}

impl<M: ractor::Message> Clone for ActorSlot<M> {
    fn clone(&self) -> Self {
        Self { current: Arc::clone(&self.current) }
    }
}

impl<M: ractor::Message> Default for ActorSlot<M> {
    fn default() -> Self {
        Self { current: Arc::new(Mutex::new(None)) }
    }
}

impl<M: ractor::Message> ActorSlot<M> {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }
    /// Stores the actor now serving this slot.
    pub fn set(&self, actor: ActorRef<M>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(actor);
    }
    /// The actor now serving this slot, if any.
    pub fn get(&self) -> Option<ActorRef<M>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// One supervised child: a readable name, its kind, and how to build it.
#[derive(Clone)]
pub struct ChildSpec {
    /// Name shown in the tree (`bus`, `internal_api`, `main`, ...).
    pub name: String,
    /// Kind shown in the tree.
    pub kind: ActorKind,
    /// Builds and spawns it.
    pub start: StartFn,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec").field("name", &self.name).field("kind", &self.kind).finish()
    }
}

impl ChildSpec {
    /// A child built from an actor and fresh arguments on every (re)start; `slot`, if given,
    /// is pointed at each new incarnation.
    pub fn actor<A, F>(name: &str, kind: ActorKind, slot: Option<ActorSlot<A::Msg>>, make: F) -> Self
    where
        A: Actor,
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let start: StartFn = Arc::new(move |supervisor: ActorCell| {
            let make = Arc::clone(&make);
            let slot = slot.clone();
            Box::pin(async move {
                let (actor, args) = make();
                let (actor_ref, _join) = Actor::spawn_linked(None, actor, args, supervisor).await?;
                if let Some(slot) = slot {
                    slot.set(actor_ref.clone());
                }
                Ok(actor_ref.get_cell())
            })
        });
        Self { name: name.to_owned(), kind, start }
    }
}

struct Child {
    spec: ChildSpec,
    path: String,
    cell: Option<ActorCell>,
    counter: CrashCounter,
    started_at: Instant,
}

/// What the supervising actor must do after a child event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Nothing (an event for an unknown actor, a start, or shutdown in progress).
    None,
    /// The child asked for a rebuild (code 42): rebuild it now.
    RestartNow {
        /// The child's name.
        child: String,
    },
    /// The child crashed: send yourself a respawn message after `delay`.
    RestartAfter {
        /// The child's name.
        child: String,
        /// How long to wait.
        delay: Duration,
    },
    /// The child crashed once too often: tell the users.
    GaveUp {
        /// The child's name.
        child: String,
        /// Crashes in a row.
        crashes: u32,
        /// The last error.
        error: String,
    },
    /// The child stopped normally and stays stopped.
    Stopped {
        /// The child's name.
        child: String,
    },
}

/// The supervised children of one actor.
pub struct ChildSet {
    parent_path: String,
    board: HealthBoard,
    children: Vec<Child>,
    shutting_down: bool,
}

impl std::fmt::Debug for ChildSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.children.iter().map(|c| c.spec.name.as_str()).collect();
        f.debug_struct("ChildSet").field("parent", &self.parent_path).field("children", &names).finish()
    }
}

impl ChildSet {
    /// An empty set for the actor at `parent_path` on the board.
    pub fn new(parent_path: &str, board: HealthBoard) -> Self {
        Self { parent_path: parent_path.to_owned(), board, children: Vec::new(), shutting_down: false }
    }

    /// Adds a child (not started yet); it appears on the board as `starting`.
    pub fn add(&mut self, spec: ChildSpec) {
        let path = format!("{}/{}", self.parent_path, spec.name);
        self.board.register(&path, &spec.name, spec.kind);
        self.children.push(Child {
            spec,
            path,
            cell: None,
            counter: CrashCounter::default(),
            started_at: Instant::now(),
        });
    }

    /// Starts every child in order; the first failure is returned (the parent fails to start).
    pub async fn start_all(&mut self, supervisor: &ActorCell) -> Result<(), SpawnErr> {
        for index in 0..self.children.len() {
            self.spawn(index, supervisor).await?;
        }
        Ok(())
    }

    /// Adds a child while the parent runs and starts it; a failure to start counts as a crash
    /// (the returned reaction says what to do next).
    pub async fn add_and_start(&mut self, spec: ChildSpec, supervisor: &ActorCell) -> Reaction {
        self.add(spec);
        let index = self.children.len() - 1;
        match self.spawn(index, supervisor).await {
            Ok(()) => Reaction::None,
            Err(e) => self.crashed(index, format!("could not start: {e}")),
        }
    }

    /// Stops a child (waiting up to `timeout`) and forgets it: it leaves the board, and its end
    /// is not a supervision event for the parent any more.
    pub async fn remove(&mut self, name: &str, timeout: Duration) {
        let Some(index) = self.children.iter().position(|c| c.spec.name == name) else { return };
        let child = self.children.remove(index);
        if let Some(cell) = child.cell
            && let Err(e) = cell.stop_and_wait(Some(SHUTDOWN_REASON.to_owned()), Some(timeout)).await
        {
            tracing::warn!(actor = %child.path, error = %e, "Actor did not stop in time; killing it.");
            cell.kill();
        }
        self.board.remove(&child.path);
        tracing::info!(actor = %child.path, "Actor removed.");
    }

    /// Rebuilds the named child. A failure to start counts as a crash; the returned reaction
    /// says what to do next.
    pub async fn restart(&mut self, name: &str, supervisor: &ActorCell) -> Reaction {
        if self.shutting_down {
            return Reaction::None;
        }
        let Some(index) = self.children.iter().position(|c| c.spec.name == name) else {
            return Reaction::None;
        };
        if self.children[index].cell.is_some() {
            return Reaction::None;
        }
        self.board.restarting(&self.children[index].path);
        match self.spawn(index, supervisor).await {
            Ok(()) => Reaction::None,
            Err(e) => self.crashed(index, format!("could not start: {e}")),
        }
    }

    async fn spawn(&mut self, index: usize, supervisor: &ActorCell) -> Result<(), SpawnErr> {
        let child = &mut self.children[index];
        let cell = (child.spec.start)(supervisor.clone()).await?;
        tracing::info!(actor = %child.path, id = %cell.get_id(), "Actor started.");
        child.cell = Some(cell);
        child.started_at = Instant::now();
        self.board.running(&child.path);
        Ok(())
    }

    /// Applies a supervision event; returns what the parent must do.
    pub fn on_event(&mut self, event: &SupervisionEvent) -> Reaction {
        let (cell, exit) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, ChildExit::Crashed { error: error.to_string() }),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, ChildExit::from_stop_reason(reason.as_deref()))
            }
            _ => return Reaction::None,
        };
        let Some(index) =
            self.children.iter().position(|c| c.cell.as_ref().is_some_and(|own| own.get_id() == cell.get_id()))
        else {
            return Reaction::None;
        };
        self.children[index].cell = None;
        match exit {
            ChildExit::Crashed { error } => self.crashed(index, error),
            other => {
                let child = &mut self.children[index];
                let ran_for = child.started_at.elapsed();
                if self.shutting_down {
                    self.board.stopped(&child.path);
                    return Reaction::None;
                }
                match child.counter.decide(&other, ran_for) {
                    Decision::RestartNow => {
                        tracing::info!(actor = %child.path, "Actor asked to be rebuilt (restart).");
                        Reaction::RestartNow { child: child.spec.name.clone() }
                    }
                    _ => {
                        tracing::info!(actor = %child.path, reason = ?other, "Actor stopped.");
                        self.board.stopped(&child.path);
                        Reaction::Stopped { child: child.spec.name.clone() }
                    }
                }
            }
        }
    }

    fn crashed(&mut self, index: usize, error: String) -> Reaction {
        let child = &mut self.children[index];
        let ran_for = child.started_at.elapsed();
        if self.shutting_down {
            self.board.failed(&child.path, &error, ActorStatus::Stopped);
            return Reaction::None;
        }
        match child.counter.decide(&ChildExit::Crashed { error: error.clone() }, ran_for) {
            Decision::RestartAfter(delay) => {
                tracing::error!(actor = %child.path, error = %error, crashes = child.counter.crashes(),
                    delay_s = delay.as_secs(), "Actor crashed; restarting after a delay.");
                self.board.failed(&child.path, &error, ActorStatus::Restarting);
                Reaction::RestartAfter { child: child.spec.name.clone(), delay }
            }
            Decision::GiveUp { crashes, error } => {
                tracing::error!(actor = %child.path, error = %error, crashes, "Actor crashed too often; giving up.");
                self.board.failed(&child.path, &error, ActorStatus::Crashed);
                Reaction::GaveUp { child: child.spec.name.clone(), crashes, error }
            }
            Decision::RestartNow | Decision::LeaveStopped => Reaction::None,
        }
    }

    /// Carries out restarts — now, or after the backoff by sending `respawn(child)` to
    /// `myself` — and returns what the supervisor must handle itself (a give-up or a stop).
    pub async fn carry_out<M: ractor::Message>(
        &mut self,
        myself: &ActorRef<M>,
        mut reaction: Reaction,
        respawn: fn(String) -> M,
    ) -> Option<Reaction> {
        loop {
            reaction = match reaction {
                Reaction::RestartNow { child } => self.restart(&child, &myself.get_cell()).await,
                Reaction::RestartAfter { child, delay } => {
                    myself.send_after(delay, move || respawn(child));
                    return None;
                }
                Reaction::None => return None,
                settled @ (Reaction::GaveUp { .. } | Reaction::Stopped { .. }) => return Some(settled),
            }
        }
    }

    /// Stops every running child, last started first, waiting up to `timeout` for each.
    pub async fn stop_all(&mut self, timeout: Duration) {
        self.shutting_down = true;
        for child in self.children.iter_mut().rev() {
            if let Some(cell) = child.cell.take() {
                if let Err(e) = cell.stop_and_wait(Some(SHUTDOWN_REASON.to_owned()), Some(timeout)).await {
                    tracing::warn!(actor = %child.path, error = %e, "Actor did not stop in time; killing it.");
                    cell.kill();
                }
                self.board.stopped(&child.path);
            }
        }
    }

    /// The running cell of a child.
    pub fn cell(&self, name: &str) -> Option<&ActorCell> {
        self.children.iter().find(|c| c.spec.name == name).and_then(|c| c.cell.as_ref())
    }
}

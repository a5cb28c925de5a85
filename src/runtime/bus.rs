//! The Bus actor: every asynchronous delivery of an agent goes through it.
//!
//! submit → envelope id → `put` record in the durable outbox journal (fsynced, batched across
//! concurrent submissions) → handed to the registered transport adapters → removed from the
//! outbox only when every target adapter confirmed. Failed deliveries are retried with a capped
//! backoff (1 s doubling to 60 s); permanent refusals are recorded and not retried. Pending
//! envelopes are delivered again after a restart of the Bus or of the process.
//!
//! Delivery is at-least-once across crashes: an adapter that delivered but whose confirmation
//! did not reach the journal before a crash sees the envelope again (same `envelope_id`).
//!
//! Session gate: an envelope with `lock_mode = required` or `needs_injection` first goes
//! through its chat's Session (queued behind the chat's turns; with injection its prompt runs in
//! the chat's active session and the answer becomes its text), then to the adapters. The
//! gated envelope replaces the original in the journal, so a restart does not run it twice.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use camino::Utf8PathBuf;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::core::bus_route::{self, Route, Target};
use crate::core::envelope::{Envelope, EnvelopeId};
use crate::core::outbox::{JournalRecord, Outbox, Settled, delivery_key};
use crate::runtime::adapter::{AdapterHandle, AdapterRegistry, Delivery, DeliveryError, Receipt};
use crate::runtime::supervision::ActorSlot;
use crate::store::atomic::StoreError;
use crate::store::outbox_journal::OutboxJournal;

/// Whether a flush also hands the flushed envelopes to the adapters (not while stopping: the
/// next Bus delivers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dispatch {
    Now,
    Later,
}

/// Longest wait between two attempts to deliver to a failing adapter.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Why a submission was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The outbox could not be written; the envelope was not accepted.
    #[error("the outbox could not be written: {0}")]
    Outbox(String),
    /// The Bus is not running (starting, restarting or stopped).
    #[error("the bus is not running")]
    NotRunning,
}

/// Counters for status and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Envelopes accepted by this incarnation.
    pub accepted: u64,
    /// Envelopes that reached all their targets.
    pub delivered: u64,
    /// Envelopes still in the outbox.
    pub pending: usize,
    /// fsyncs of the journal.
    pub fsyncs: u64,
}

/// Messages of the Bus.
#[derive(Debug)]
pub enum BusMsg {
    /// Accept an envelope; answers with its id once it is durable.
    Submit {
        /// The envelope (id assigned if empty).
        envelope: Box<Envelope>,
        /// Where the id goes.
        reply: RpcReplyPort<Result<EnvelopeId, BusError>>,
    },
    /// Whether an envelope with this delivery key was accepted (pending or delivered).
    Accepted {
        /// The producer's delivery key.
        key: String,
        /// The envelope accepted with it, if any.
        reply: RpcReplyPort<Option<EnvelopeId>>,
    },
    /// Write queued journal records with one fsync and answer the waiting submitters.
    Flush,
    /// An adapter for `transport` was registered: deliver what waits for it.
    AdapterRegistered {
        /// The transport.
        transport: String,
    },
    /// An adapter answered a delivery.
    Outcome {
        /// The envelope.
        id: EnvelopeId,
        /// The adapter.
        transport: String,
        /// Delivered, or why not.
        result: Result<(), DeliveryError>,
    },
    /// Try a failed delivery again.
    Retry {
        /// The envelope.
        id: EnvelopeId,
        /// The adapter.
        transport: String,
    },
    /// An envelope came back from its chat's session, ready to deliver.
    Gated {
        /// The envelope (same id; lock and injection done).
        envelope: Box<Envelope>,
    },
    /// Report counters.
    Stats {
        /// Where they go.
        reply: RpcReplyPort<BusStats>,
    },
}

/// Construction arguments of the Bus.
#[derive(Clone)]
pub struct BusArgs {
    /// The agent this Bus belongs to (for logs).
    pub agent: String,
    /// The outbox journal file.
    pub journal: Utf8PathBuf,
    /// Transport short names this agent serves, primary first.
    pub served: Vec<String>,
    /// Registered adapters (outlives Bus restarts).
    pub registry: AdapterRegistry,
    /// Batch the fsyncs of concurrent submissions (true in production).
    pub batch_fsync: bool,
    /// Where envelopes that need the chat's session go first (none: delivered as they are).
    pub gate: Option<SessionGate>,
}

impl std::fmt::Debug for BusArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusArgs").field("agent", &self.agent).field("served", &self.served).finish()
    }
}

/// Runs an envelope through its chat's session and gives it back ready to deliver.
pub type SessionGate = Arc<dyn Fn(Envelope) -> Pin<Box<dyn Future<Output = Envelope> + Send>> + Send + Sync>;

/// The Bus actor.
#[derive(Debug, Default)]
pub struct Bus;

/// State of a running Bus.
#[derive(Debug)]
pub struct BusState {
    args: BusArgs,
    journal: OutboxJournal,
    outbox: Outbox,
    waiting: Vec<(EnvelopeId, RpcReplyPort<Result<EnvelopeId, BusError>>)>,
    flush_scheduled: bool,
    in_flight: HashSet<(EnvelopeId, String)>,
    attempts: HashMap<(EnvelopeId, String), u32>,
    gating: HashSet<EnvelopeId>,
    stats: BusStats,
}

impl Actor for Bus {
    type Msg = BusMsg;
    type State = BusState;
    type Arguments = BusArgs;

    async fn pre_start(&self, myself: ActorRef<BusMsg>, args: BusArgs) -> Result<BusState, ActorProcessingErr> {
        let (journal, outbox, report) = OutboxJournal::open(&args.journal)?;
        tracing::info!(actor = "bus", agent = %args.agent, pending = outbox.len(), records = report.records,
            served = ?args.served, "Bus started.");
        let mut state = BusState {
            args,
            journal,
            outbox,
            waiting: Vec::new(),
            flush_scheduled: false,
            in_flight: HashSet::new(),
            attempts: HashMap::new(),
            gating: HashSet::new(),
            stats: BusStats::default(),
        };
        state.reroute_stale()?;
        state.journal.flush()?;
        let ids: Vec<EnvelopeId> = state.outbox.iter().map(|p| p.envelope.envelope_id.clone()).collect();
        for id in ids {
            state.dispatch(&myself, &id);
        }
        Ok(state)
    }

    async fn post_stop(&self, myself: ActorRef<BusMsg>, state: &mut BusState) -> Result<(), ActorProcessingErr> {
        state.flush(&myself, Dispatch::Later);
        tracing::info!(actor = "bus", agent = %state.args.agent, pending = state.outbox.len(), "Bus stopped.");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<BusMsg>,
        msg: BusMsg,
        state: &mut BusState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BusMsg::Submit { envelope, reply } => state.submit(&myself, *envelope, reply),
            BusMsg::Accepted { key, reply } => {
                let _ = reply.send(state.outbox.accepted_with(&key).cloned());
            }
            BusMsg::Flush => state.flush(&myself, Dispatch::Now),
            BusMsg::AdapterRegistered { transport } => {
                let ids: Vec<EnvelopeId> = state
                    .outbox
                    .iter()
                    .filter(|p| p.remaining.iter().any(|t| t.transport == transport))
                    .map(|p| p.envelope.envelope_id.clone())
                    .collect();
                for id in ids {
                    state.dispatch(&myself, &id);
                }
            }
            BusMsg::Outcome { id, transport, result } => state.outcome(&myself, id, transport, result),
            BusMsg::Retry { id, transport } => {
                state.in_flight.remove(&(id.clone(), transport));
                state.dispatch(&myself, &id);
            }
            BusMsg::Gated { envelope } => {
                let id = envelope.envelope_id.clone();
                state.gating.remove(&id);
                if let Some(remaining) = state.outbox.get(&id).map(|p| p.remaining.clone()) {
                    let record = JournalRecord::Put { envelope: envelope.clone(), targets: remaining.clone() };
                    if let Err(e) = state.journal.append(&record).and_then(|()| state.journal.flush()) {
                        tracing::warn!(actor = "bus", envelope_id = %id, error = %e, "Could not record the gated envelope.");
                    }
                    state.outbox.put(*envelope, remaining);
                    state.dispatch(&myself, &id);
                }
            }
            BusMsg::Stats { reply } => {
                let stats = BusStats { pending: state.outbox.len(), fsyncs: state.journal.fsyncs(), ..state.stats };
                let _ = reply.send(stats);
            }
        }
        Ok(())
    }
}

impl BusState {
    fn submit(
        &mut self,
        myself: &ActorRef<BusMsg>,
        mut envelope: Envelope,
        reply: RpcReplyPort<Result<EnvelopeId, BusError>>,
    ) {
        if let Some(id) = delivery_key(&envelope).and_then(|key| self.outbox.accepted_with(key)).cloned() {
            // Accepted before with this key: not recorded twice. Answer once it is durable.
            tracing::info!(actor = "bus", envelope_id = %id, "Envelope with a known delivery key; not recorded again.");
            if self.waiting.iter().any(|(waiting, _)| *waiting == id) {
                self.waiting.push((id, reply));
            } else {
                let _ = reply.send(Ok(id));
            }
            return;
        }
        if envelope.envelope_id.is_empty() || self.outbox.contains(&envelope.envelope_id) {
            envelope.envelope_id = loop {
                let id = EnvelopeId::random();
                if !self.outbox.contains(&id) {
                    break id;
                }
            };
        }
        if envelope.created_at == 0.0 {
            envelope.created_at = unix_now();
        }
        let (envelope, targets) = self.route(envelope);
        let id = envelope.envelope_id.clone();
        let record = JournalRecord::Put { envelope: Box::new(envelope.clone()), targets: targets.clone() };
        if let Err(e) = self.journal.append(&record) {
            let _ = reply.send(Err(BusError::Outbox(e.to_string())));
            return;
        }
        self.outbox.put(envelope, targets);
        self.stats.accepted += 1;
        self.waiting.push((id, reply));
        if !self.args.batch_fsync {
            self.flush(myself, Dispatch::Now);
        } else if !self.flush_scheduled {
            self.flush_scheduled = true;
            let _ = myself.cast(BusMsg::Flush);
        }
    }

    fn route(&self, envelope: Envelope) -> (Envelope, Vec<Target>) {
        match bus_route::route(&envelope, &self.args.served) {
            Route::Deliver(targets) => (envelope, targets),
            Route::Hold => {
                tracing::warn!(actor = "bus", envelope_id = %envelope.envelope_id,
                    "No transport is configured; holding the envelope in the outbox.");
                (envelope, Vec::new())
            }
            Route::Fallback { envelope: fallback, target } => {
                tracing::warn!(actor = "bus", envelope_id = %envelope.envelope_id, wanted = %envelope.transport,
                    fallback = %target.transport, "Transport not served here; delivering a fallback broadcast.");
                (*fallback, vec![target])
            }
        }
    }

    /// At start: held envelopes and targets of transports no longer served are routed again.
    fn reroute_stale(&mut self) -> Result<(), StoreError> {
        let stale: Vec<Envelope> = self
            .outbox
            .iter()
            .filter(|p| p.remaining.is_empty() || p.remaining.iter().any(|t| !self.args.served.contains(&t.transport)))
            .map(|p| p.envelope.clone())
            .collect();
        for envelope in stale {
            let (envelope, targets) = self.route(envelope);
            if targets.is_empty() {
                continue;
            }
            self.journal
                .append(&JournalRecord::Put { envelope: Box::new(envelope.clone()), targets: targets.clone() })?;
            self.outbox.put(envelope, targets);
        }
        Ok(())
    }

    /// Makes queued records durable, answers the waiting submitters and (unless stopping)
    /// hands their envelopes to the adapters.
    fn flush(&mut self, myself: &ActorRef<BusMsg>, dispatch: Dispatch) {
        self.flush_scheduled = false;
        let result = self.journal.flush();
        let waiting = std::mem::take(&mut self.waiting);
        match result {
            Ok(()) => {
                for (id, reply) in waiting {
                    let _ = reply.send(Ok(id.clone()));
                    if dispatch == Dispatch::Now {
                        self.dispatch(myself, &id);
                    }
                }
                if let Err(e) = self.journal.maybe_compact(&self.outbox) {
                    tracing::warn!(actor = "bus", error = %e, "Could not compact the outbox journal.");
                }
            }
            Err(e) => {
                tracing::error!(actor = "bus", error = %e, refused = waiting.len(), "Outbox write failed; envelopes refused.");
                for (id, reply) in waiting {
                    self.outbox.remove(&id);
                    let _ = reply.send(Err(BusError::Outbox(e.to_string())));
                }
            }
        }
    }

    /// Hands a pending envelope to each target adapter that is registered and not already busy
    /// with it; one that needs its chat's session goes through the session gate first.
    fn dispatch(&mut self, myself: &ActorRef<BusMsg>, id: &EnvelopeId) {
        let Some(pending) = self.outbox.get(id) else {
            return;
        };
        if pending.envelope.needs_session()
            && let Some(gate) = self.args.gate.clone()
        {
            if self.gating.insert(id.clone()) {
                let envelope = pending.envelope.clone();
                let bus = myself.clone();
                tokio::spawn(async move {
                    let gated = gate(envelope).await;
                    let _ = bus.cast(BusMsg::Gated { envelope: Box::new(gated) });
                });
            }
            return;
        }
        let envelope = Arc::new(pending.envelope.clone());
        let targets = pending.remaining.clone();
        for target in targets {
            let key = (id.clone(), target.transport.clone());
            if self.in_flight.contains(&key) {
                continue;
            }
            let Some(adapter) = self.args.registry.get(&target.transport) else {
                continue;
            };
            self.in_flight.insert(key);
            send(&adapter, myself, Arc::clone(&envelope), &target);
        }
    }

    fn outcome(
        &mut self,
        myself: &ActorRef<BusMsg>,
        id: EnvelopeId,
        transport: String,
        result: Result<(), DeliveryError>,
    ) {
        let key = (id.clone(), transport.clone());
        match result {
            Ok(()) => {
                self.in_flight.remove(&key);
                self.attempts.remove(&key);
                self.settle(myself, JournalRecord::Ack { id, transport });
            }
            Err(DeliveryError::Permanent(reason)) => {
                tracing::error!(actor = "bus", envelope_id = %id, transport = %transport, reason = %reason,
                    "Adapter refused the envelope for good; not retrying.");
                self.in_flight.remove(&key);
                self.attempts.remove(&key);
                self.settle(myself, JournalRecord::Drop { id, transport, reason });
            }
            Err(DeliveryError::Retryable(reason)) => {
                if self.outbox.get(&id).is_none() {
                    self.in_flight.remove(&key);
                    return;
                }
                let attempt = self.attempts.entry(key).or_insert(0);
                *attempt += 1;
                let delay = retry_delay(*attempt);
                tracing::warn!(actor = "bus", envelope_id = %id, transport = %transport, reason = %reason,
                    attempt = *attempt, retry_in_s = delay.as_secs_f64(), "Delivery failed; will retry.");
                // Stays in `in_flight` until the retry fires, so nothing else re-sends it meanwhile.
                let msg_id = id.clone();
                myself.send_after(delay, move || BusMsg::Retry { id: msg_id, transport });
            }
        }
    }

    fn settle(&mut self, myself: &ActorRef<BusMsg>, record: JournalRecord) {
        let settled = self.outbox.apply(record.clone());
        if settled == Settled::NotPending {
            return;
        }
        if settled == Settled::Done {
            self.stats.delivered += 1;
        }
        if let Err(e) = self.journal.append(&record) {
            tracing::warn!(actor = "bus", error = %e, "Could not record a delivery confirmation.");
        }
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            let _ = myself.cast(BusMsg::Flush);
        }
    }
}

fn send(adapter: &AdapterHandle, bus: &ActorRef<BusMsg>, envelope: Arc<Envelope>, target: &Target) {
    let receipt = Receipt::new(bus.clone(), envelope.envelope_id.clone(), target.transport.clone());
    adapter.send(Delivery { envelope, mode: target.mode, receipt });
}

/// 1 s, 2 s, 4 s ... capped at 60 s.
fn retry_delay(attempt: u32) -> Duration {
    (Duration::from_secs(1) * 2u32.saturating_pow(attempt.saturating_sub(1).min(10))).min(MAX_RETRY_DELAY)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Cloneable handle to an agent's Bus that survives Bus restarts.
#[derive(Debug, Clone, Default)]
pub struct BusHandle {
    slot: ActorSlot<BusMsg>,
    registry: AdapterRegistry,
}

/// How long a submitter waits for the Bus to accept.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);

impl BusHandle {
    /// A handle whose Bus is not started yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The slot the supervisor points at each new Bus.
    pub fn slot(&self) -> ActorSlot<BusMsg> {
        self.slot.clone()
    }

    /// The adapter registry this Bus delivers to.
    pub fn registry(&self) -> AdapterRegistry {
        self.registry.clone()
    }

    /// Submits an envelope; returns its id once it is durable in the outbox.
    pub async fn submit(&self, envelope: Envelope) -> Result<EnvelopeId, BusError> {
        let bus = self.slot.get().ok_or(BusError::NotRunning)?;
        let envelope = Box::new(envelope);
        match bus.call(|reply| BusMsg::Submit { envelope, reply }, Some(SUBMIT_TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success(result)) => result,
            Ok(_) | Err(_) => Err(BusError::NotRunning),
        }
    }

    /// Whether an envelope with this delivery key was accepted — still pending or already
    /// delivered (see [`crate::core::outbox::DELIVERY_KEY`]).
    pub async fn accepted(&self, key: &str) -> Result<Option<EnvelopeId>, BusError> {
        let bus = self.slot.get().ok_or(BusError::NotRunning)?;
        let key = key.to_owned();
        match bus.call(|reply| BusMsg::Accepted { key, reply }, Some(SUBMIT_TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success(id)) => Ok(id),
            Ok(_) | Err(_) => Err(BusError::NotRunning),
        }
    }

    /// Submits without waiting (used by supervisors, which must not block on their children).
    pub fn submit_detached(&self, envelope: Envelope) {
        let handle = self.clone();
        tokio::spawn(async move {
            if let Err(e) = handle.submit(envelope).await {
                tracing::error!(actor = "bus", error = %e, "Could not submit a notice.");
            }
        });
    }

    /// Registers a transport adapter and delivers what waits for it.
    pub fn register_adapter(&self, adapter: AdapterHandle) {
        let transport = adapter.transport().to_owned();
        self.registry.insert(adapter);
        if let Some(bus) = self.slot.get() {
            let _ = bus.cast(BusMsg::AdapterRegistered { transport });
        }
    }

    /// The Bus's counters.
    pub async fn stats(&self) -> Option<BusStats> {
        let bus = self.slot.get()?;
        match bus.call(|reply| BusMsg::Stats { reply }, Some(SUBMIT_TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success(stats)) => Some(stats),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_to_a_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(6), Duration::from_secs(32));
        assert_eq!(retry_delay(7), Duration::from_secs(60));
        assert_eq!(retry_delay(100), Duration::from_secs(60));
    }
}

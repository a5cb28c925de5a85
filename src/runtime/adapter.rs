//! Delivery adapters: how the Bus hands an envelope to a transport actor, and how the
//! transport answers. A transport's `Msg` implements `From<AdapterMsg>`; the Bus holds an
//! [`AdapterHandle`] (a derived actor ref plus the transport's short name).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use ractor::{ActorRef, DerivedActorRef};

use crate::core::envelope::{DeliveryMode, Envelope, EnvelopeId};
use crate::runtime::bus::BusMsg;

/// Why an adapter could not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later (network down, server error, rate limit).
    #[error("temporary delivery failure: {0}")]
    Retryable(String),
    /// Never deliverable here (chat gone, bot blocked); not retried.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// The one message the Bus sends to an adapter.
#[derive(Debug)]
pub enum AdapterMsg {
    /// Deliver this envelope, then answer through the receipt.
    Deliver(Delivery),
}

/// One envelope to deliver, and the receipt to answer with.
#[derive(Debug)]
pub struct Delivery {
    /// The envelope.
    pub envelope: Arc<Envelope>,
    /// UNICAST to its chat, or BROADCAST to everyone the transport serves.
    pub mode: DeliveryMode,
    /// Answer with `confirm()` only once the transport accepted the message.
    pub receipt: Receipt,
}

/// The adapter's answer to the Bus. Dropping it unanswered counts as a retryable failure, so a
/// delivery lost inside a crashing adapter is tried again.
#[derive(Debug)]
pub struct Receipt {
    bus: ActorRef<BusMsg>,
    id: EnvelopeId,
    transport: String,
    answered: bool,
}

impl Receipt {
    pub(crate) fn new(bus: ActorRef<BusMsg>, id: EnvelopeId, transport: String) -> Self {
        Self { bus, id, transport, answered: false }
    }

    /// The envelope was delivered.
    pub fn confirm(mut self) {
        self.answer(Ok(()));
    }

    /// The envelope was not delivered.
    pub fn fail(mut self, error: DeliveryError) {
        self.answer(Err(error));
    }

    fn answer(&mut self, result: Result<(), DeliveryError>) {
        self.answered = true;
        let msg = BusMsg::Outcome { id: self.id.clone(), transport: self.transport.clone(), result };
        if self.bus.cast(msg).is_err() {
            tracing::debug!(envelope_id = %self.id, "Bus gone before the delivery outcome arrived; it will redeliver.");
        }
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(Err(DeliveryError::Retryable("the adapter dropped the delivery unanswered".to_owned())));
        }
    }
}

/// A registered adapter: the transport's short name and where to send deliveries.
#[derive(Debug, Clone)]
pub struct AdapterHandle {
    transport: String,
    target: DerivedActorRef<AdapterMsg>,
}

impl AdapterHandle {
    /// An adapter for an actor whose message type accepts [`AdapterMsg`].
    pub fn new<M>(transport: &str, actor: &ActorRef<M>) -> Self
    where
        M: ractor::Message + From<AdapterMsg>,
        AdapterMsg: TryFrom<M>,
    {
        Self { transport: transport.to_owned(), target: actor.get_derived() }
    }

    /// The transport short name (`tg`, `mx`, `api`, `spool`).
    pub fn transport(&self) -> &str {
        &self.transport
    }

    /// Hands a delivery over. If the adapter is gone the delivery is dropped here, and its
    /// receipt reports a retryable failure to the Bus.
    pub fn send(&self, delivery: Delivery) {
        if let Err(e) = self.target.send_message(AdapterMsg::Deliver(delivery)) {
            tracing::debug!(transport = %self.transport, error = ?e.map(|_| ()), "Adapter is not running.");
        }
    }
}

/// The adapters registered on one agent's Bus, kept outside the Bus so a rebuilt Bus finds them.
#[derive(Debug, Clone, Default)]
pub struct AdapterRegistry {
    inner: Arc<Mutex<BTreeMap<String, AdapterHandle>>>,
}

impl AdapterRegistry {
    /// Adds or replaces the adapter for its transport.
    pub fn insert(&self, handle: AdapterHandle) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).insert(handle.transport.clone(), handle);
    }
    /// Removes the adapter for a transport.
    pub fn remove(&self, transport: &str) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).remove(transport);
    }
    /// The adapter for a transport.
    pub fn get(&self, transport: &str) -> Option<AdapterHandle> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).get(transport).cloned()
    }
}

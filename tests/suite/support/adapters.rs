//! Test transport adapters: one that records what it is given, and can be told to fail
//! (retryable or permanent) until told otherwise.

use std::sync::{Arc, Mutex};

use ductor::core::envelope::{DeliveryMode, Envelope};
use ductor::runtime::adapter::{AdapterHandle, AdapterMsg, DeliveryError};
use ductor::runtime::bus::BusHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

/// How the adapter answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Deliver,
    FailRetryable,
    FailPermanent,
}

/// Shared view of one recording adapter.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub transport: String,
    behaviour: Arc<Mutex<Behaviour>>,
    delivered: Arc<Mutex<Vec<(Envelope, DeliveryMode)>>>,
    attempts: Arc<Mutex<u32>>,
}

impl Recorder {
    pub fn new(transport: &str) -> Self {
        Self {
            transport: transport.to_owned(),
            behaviour: Arc::new(Mutex::new(Behaviour::Deliver)),
            delivered: Arc::default(),
            attempts: Arc::default(),
        }
    }
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }
    pub fn delivered(&self) -> Vec<(Envelope, DeliveryMode)> {
        self.delivered.lock().unwrap().clone()
    }
    pub fn attempts(&self) -> u32 {
        *self.attempts.lock().unwrap()
    }
}

pub struct RecordingAdapter;

#[derive(Debug)]
pub enum RecordingMsg {
    Adapter(AdapterMsg),
}

impl From<AdapterMsg> for RecordingMsg {
    fn from(msg: AdapterMsg) -> Self {
        Self::Adapter(msg)
    }
}

impl From<RecordingMsg> for AdapterMsg {
    fn from(msg: RecordingMsg) -> Self {
        let RecordingMsg::Adapter(inner) = msg;
        inner
    }
}

pub struct RecordingArgs {
    pub recorder: Recorder,
    pub bus: BusHandle,
    pub notify: Option<mpsc::UnboundedSender<Envelope>>,
}

impl Actor for RecordingAdapter {
    type Msg = RecordingMsg;
    type State = RecordingArgs;
    type Arguments = RecordingArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RecordingMsg>,
        args: RecordingArgs,
    ) -> Result<RecordingArgs, ActorProcessingErr> {
        args.bus.register_adapter(AdapterHandle::new(&args.recorder.transport, &myself));
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RecordingMsg>,
        msg: RecordingMsg,
        state: &mut RecordingArgs,
    ) -> Result<(), ActorProcessingErr> {
        let RecordingMsg::Adapter(AdapterMsg::Deliver(delivery)) = msg;
        *state.recorder.attempts.lock().unwrap() += 1;
        let behaviour = *state.recorder.behaviour.lock().unwrap();
        match behaviour {
            Behaviour::Deliver => {
                state.recorder.delivered.lock().unwrap().push(((*delivery.envelope).clone(), delivery.mode));
                if let Some(notify) = &state.notify {
                    let _ = notify.send((*delivery.envelope).clone());
                }
                delivery.receipt.confirm();
            }
            Behaviour::FailRetryable => delivery.receipt.fail(DeliveryError::Retryable("down on purpose".into())),
            Behaviour::FailPermanent => delivery.receipt.fail(DeliveryError::Permanent("refused on purpose".into())),
        }
        Ok(())
    }
}

/// Spawns a recording adapter registered on `bus`; returns its recorder and a stream of
/// delivered envelopes.
pub async fn spawn_recorder(transport: &str, bus: &BusHandle) -> (Recorder, mpsc::UnboundedReceiver<Envelope>) {
    let recorder = Recorder::new(transport);
    let (tx, rx) = mpsc::unbounded_channel();
    let args = RecordingArgs { recorder: recorder.clone(), bus: bus.clone(), notify: Some(tx) };
    Actor::spawn(None, RecordingAdapter, args).await.unwrap();
    (recorder, rx)
}

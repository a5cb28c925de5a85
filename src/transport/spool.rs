//! The spool adapter (transport `spool`): appends every envelope delivered to it as one JSON line
//! to a file. Enabled with `DUCTOR_SPOOL=<file>`; used to watch the Bus from outside (scripts,
//! the end-to-end tests). While `<file>.hold` exists every delivery fails as retryable, which
//! shows how the Bus keeps and retries what a transport could not take.

use std::fs::OpenOptions;
use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::core::envelope::{DeliveryMode, Envelope};
use crate::runtime::adapter::{AdapterHandle, AdapterMsg, Delivery, DeliveryError};
use crate::runtime::bus::BusHandle;

/// The transport short name of the spool adapter.
pub const SPOOL_TRANSPORT: &str = "spool";

/// Messages of the spool adapter.
#[derive(Debug)]
pub enum SpoolMsg {
    /// A delivery from the Bus.
    Adapter(AdapterMsg),
}

impl From<AdapterMsg> for SpoolMsg {
    fn from(msg: AdapterMsg) -> Self {
        Self::Adapter(msg)
    }
}

impl From<SpoolMsg> for AdapterMsg {
    fn from(msg: SpoolMsg) -> Self {
        match msg {
            SpoolMsg::Adapter(inner) => inner,
        }
    }
}

/// Construction arguments.
#[derive(Debug, Clone)]
pub struct SpoolArgs {
    /// The JSONL file.
    pub path: Utf8PathBuf,
    /// The Bus to register with.
    pub bus: BusHandle,
}

/// The spool adapter actor.
#[derive(Debug, Default)]
pub struct Spool;

/// Its state.
#[derive(Debug)]
pub struct SpoolState {
    path: Utf8PathBuf,
}

impl Actor for Spool {
    type Msg = SpoolMsg;
    type State = SpoolState;
    type Arguments = SpoolArgs;

    async fn pre_start(&self, myself: ActorRef<SpoolMsg>, args: SpoolArgs) -> Result<SpoolState, ActorProcessingErr> {
        args.bus.register_adapter(AdapterHandle::new(SPOOL_TRANSPORT, &myself));
        tracing::info!(actor = "spool", path = %args.path, "Spool adapter registered.");
        Ok(SpoolState { path: args.path })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SpoolMsg>,
        msg: SpoolMsg,
        state: &mut SpoolState,
    ) -> Result<(), ActorProcessingErr> {
        let SpoolMsg::Adapter(AdapterMsg::Deliver(delivery)) = msg;
        let Delivery { envelope, mode, receipt } = delivery;
        if hold_file(&state.path).exists() {
            receipt.fail(DeliveryError::Retryable("the spool is on hold".to_owned()));
            return Ok(());
        }
        let line = match serde_json::to_string(&SpoolLine { mode, envelope: &envelope }) {
            Ok(line) => line,
            Err(e) => {
                receipt.fail(DeliveryError::Permanent(format!("envelope not serialisable: {e}")));
                return Ok(());
            }
        };
        match append_line(&state.path, &line) {
            Ok(()) => receipt.confirm(),
            Err(e) => {
                tracing::warn!(actor = "spool", path = %state.path, error = %e, "Could not write to the spool.");
                receipt.fail(DeliveryError::Retryable(e.to_string()));
            }
        }
        Ok(())
    }
}

/// One line of the spool file.
#[derive(Debug, serde::Serialize)]
struct SpoolLine<'a> {
    mode: DeliveryMode,
    envelope: &'a Envelope,
}

/// `<file>.hold`.
pub fn hold_file(path: &Utf8Path) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("{path}.hold"))
}

fn append_line(path: &Utf8Path, line: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_data()
}

//! The direct API actor (`api` in the tree; Bus transport `api`): at start it makes sure
//! `api.token` is set (a generated one is saved in `config.json`), settles what the API left in
//! the inbox, binds `api.host:api.port` and serves the routes of [`super::http`] with warp. A
//! port that cannot be bound is logged and the API stays off (the actor stays, confirming Bus
//! deliveries it has no socket for; the rest of ductor runs). Bus deliveries for `api` go to the open sockets of their chat as `notification`
//! frames.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{Value, json};

use super::connection::{API_TRANSPORT, Hub};
use crate::chat::model_catalog::ModelCatalog;
use crate::chat::orchestrator::OrchestratorHandle;
use crate::core::config::model::{ApiConfig, Config};
use crate::core::envelope::DeliveryMode;
use crate::core::envelope_text;
use crate::runtime::adapter::{AdapterHandle, AdapterMsg};
use crate::runtime::bus::BusHandle;
use crate::runtime::http_server::{RunningServer, serve};
use crate::store::config_file::{ConfigError, read_raw_config, update_config_keys};
use crate::store::inbox_journal::SharedInbox;
use crate::store::paths::DuctorPaths;
use crate::transport::file_access::FileAccess;

/// Messages of the API actor.
#[derive(Debug)]
pub enum ApiMsg {
    /// A delivery from the Bus.
    Adapter(AdapterMsg),
    /// The HTTP server ended on its own (a crash; the supervisor restarts the actor).
    ServerEnded,
}

impl From<AdapterMsg> for ApiMsg {
    fn from(msg: AdapterMsg) -> Self {
        Self::Adapter(msg)
    }
}

impl TryFrom<ApiMsg> for AdapterMsg {
    type Error = ();

    fn try_from(msg: ApiMsg) -> Result<Self, ()> {
        match msg {
            ApiMsg::Adapter(inner) => Ok(inner),
            ApiMsg::ServerEnded => Err(()),
        }
    }
}

/// Construction arguments.
#[derive(Clone)]
pub struct ApiArgs {
    /// The agent's home.
    pub paths: DuctorPaths,
    /// The agent's config (`api` block).
    pub config: Arc<Config>,
    /// Where messages go.
    pub orchestrator: OrchestratorHandle,
    /// The agent's Bus (this transport registers as `api`).
    pub bus: BusHandle,
    /// The agent's inbox.
    pub inbox: SharedInbox,
    /// Model lists for `auth_ok`.
    pub catalog: ModelCatalog,
}

impl std::fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiArgs").field("host", &self.config.api.host).field("port", &self.config.api.port).finish()
    }
}

/// The API actor.
#[derive(Debug, Default)]
pub struct Api;

/// Its state: the running server (none when the port could not be bound).
#[derive(Debug)]
pub struct ApiState {
    server: Option<RunningServer>,
    hub: Option<Arc<Hub>>,
}

impl Actor for Api {
    type Msg = ApiMsg;
    type State = ApiState;
    type Arguments = ApiArgs;

    async fn pre_start(&self, myself: ActorRef<ApiMsg>, args: ApiArgs) -> Result<ApiState, ActorProcessingErr> {
        let api = &args.config.api;
        let token = if api.token.trim().is_empty() {
            let token = crate::core::webhook::token_from_bytes(&rand::random::<[u8; 32]>());
            match persist_token(&args.paths, api, &token) {
                Ok(_) => tracing::info!(actor = "api", path = %args.paths.config_file(),
                    "Generated the API token (api.token) and saved it in config.json."),
                Err(e) => tracing::error!(actor = "api", error = %e,
                    "Generated an API token but could not save it; it lasts until the next start."),
            }
            token
        } else {
            api.token.trim().to_owned()
        };
        settle_inbox(&args.inbox);
        if !api.allow_public && !tailscale_on_path() {
            tracing::warn!(actor = "api", host = %api.host, port = api.port,
                "The direct API listens without Tailscale on this host and api.allow_public is false: make sure only trusted networks reach it.");
        }
        // Registered even when the port cannot be bound: the Bus serves `api`, and deliveries
        // to it are then confirmed with no socket to show them on (nothing waits for them).
        args.bus.register_adapter(AdapterHandle::new(API_TRANSPORT, &myself));
        let listener = match tokio::net::TcpListener::bind((api.host.as_str(), api.port)).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(actor = "api", host = %api.host, port = api.port, error = %e,
                    "The direct API could not bind its address; it stays off (the rest of ductor runs).");
                return Ok(ApiState { server: None, hub: None });
            }
        };
        let addr = listener.local_addr()?;
        let hub = Arc::new(Hub::new(
            token,
            Arc::clone(&args.config),
            args.paths.clone(),
            args.orchestrator.clone(),
            args.inbox.clone(),
            args.catalog.clone(),
        ));
        let files = FileAccess::from_config(&args.config, &args.paths);
        let routes = super::http::routes(Arc::clone(&hub), files);
        let server = serve(listener, routes, move || {
            let _ = myself.cast(ApiMsg::ServerEnded);
        });
        tracing::info!(actor = "api", addr = %addr, chat = hub.default_chat, "Direct API listening.");
        Ok(ApiState { server: Some(server), hub: Some(hub) })
    }

    async fn post_stop(&self, _myself: ActorRef<ApiMsg>, state: &mut ApiState) -> Result<(), ActorProcessingErr> {
        if let Some(server) = state.server.take() {
            let _ = server.shutdown.send(());
            let mut task = server.task;
            if tokio::time::timeout(Duration::from_secs(1), &mut task).await.is_err() {
                task.abort();
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<ApiMsg>,
        msg: ApiMsg,
        state: &mut ApiState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ApiMsg::ServerEnded if state.server.is_some() => Err("the direct API server ended unexpectedly".into()),
            ApiMsg::ServerEnded => Ok(()),
            ApiMsg::Adapter(AdapterMsg::Deliver(delivery)) => {
                let envelope = &delivery.envelope;
                let (chat, text) = match delivery.mode {
                    DeliveryMode::Unicast => {
                        (i64::try_from(envelope.chat_id.get()).ok(), envelope_text::unicast_text(envelope))
                    }
                    DeliveryMode::Broadcast => (None, envelope_text::broadcast_text(envelope)),
                };
                let reached = match (&state.hub, text) {
                    (Some(hub), Some(text)) => hub.notify(chat, &text),
                    _ => 0,
                };
                tracing::debug!(actor = "api", envelope_id = %envelope.envelope_id, sockets = reached,
                    "Envelope shown on the open API sockets.");
                delivery.receipt.confirm();
                Ok(())
            }
        }
    }
}

/// Entries the API left in the inbox are done: the socket that sent them is gone with the
/// process, and its client (which saw no `result`) asks again.
fn settle_inbox(inbox: &SharedInbox) {
    let plan = inbox.startup_plan(API_TRANSPORT, 0.0, f64::MAX);
    let mut left = 0;
    for entry in plan.cut.iter().chain(plan.rerun.iter()).chain(plan.dropped.iter()) {
        inbox.done(entry.id);
        left += 1;
    }
    for (entry, _) in &plan.redeliver {
        inbox.done(entry.id);
        left += 1;
    }
    for entries in plan.stale.values() {
        entries.iter().for_each(|e| inbox.done(e.id));
        left += entries.len();
    }
    if left > 0 {
        tracing::info!(actor = "api", entries = left, "Messages of API sockets closed by the last stop were let go.");
    }
}

fn tailscale_on_path() -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    crate::provider::auth::find_program("tailscale", &path).is_some()
}

/// Writes `token` into `config.json` as part of the whole `api` object.
pub fn persist_token(paths: &DuctorPaths, config: &ApiConfig, token: &str) -> Result<bool, ConfigError> {
    let raw = read_raw_config(&paths.config_file())?;
    let mut api = match raw.get("api") {
        Some(Value::Object(object)) => object.clone(),
        _ => json!({
            "enabled": config.enabled,
            "host": config.host,
            "port": config.port,
            "token": "",
            "chat_id": config.chat_id,
            "allow_public": config.allow_public,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    };
    api.insert("token".to_owned(), Value::String(token.to_owned()));
    let changed = update_config_keys(paths, &[("api", Value::Object(api))])?;
    crate::store::config_file::restrict_to_owner(&paths.config_file());
    Ok(changed)
}

//! The `webhooks` actor: the webhook HTTP server (warp) on `webhooks.host:webhooks.port`
//! (ops spec §8.2–§8.5). `GET /health` (and `HEAD`) answers `{"status": "ok"}`;
//! `POST /hooks/{id}` goes through the checks of [`crate::core::webhook`] — rate limit, media
//! type, body limit (a body over the limit is never read whole), JSON object, known and enabled
//! hook, authentication — and an accepted request is handed to the sink it was given; 202 is
//! answered only once the sink returned Ok (503 when it failed). Other methods on `/hooks/{id}`
//! are 405, other paths 404. The hooks come from a [`WebhookTable`] that whoever watches
//! `webhooks.json` replaces.
//!
//! At start an empty `webhooks.token` is replaced by a generated one, saved in `config.json`.
//! A port that cannot be bound is logged and the actor stops normally (webhooks stay off, the
//! rest runs). Rejections are logged at most once a minute per kind, with their count (each one
//! also as a debug line), so a flood of bad requests cannot flood the log.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use warp::Filter;
use warp::http::{HeaderMap, Method, StatusCode};

use crate::core::config::model::WebhooksConfig;
use crate::core::state::webhooks::{Webhook, Webhooks};
use crate::core::webhook::{
    HookLoadError, HookTable, RateLimiter, Rejection, RejectionTally, RequestHeaders, Verdict, body_limit,
    check_before_body, check_body, token_from_bytes,
};
use crate::runtime::http_server::serve;
use crate::store::config_file::{ConfigError, read_raw_config, update_config_keys};
use crate::store::paths::DuctorPaths;

/// How often counted rejections are looked at for their summary line.
const SUMMARY_TICK: Duration = Duration::from_secs(15);

/// Messages of the webhook server.
#[derive(Debug)]
pub enum WebhookServerMsg {
    /// The HTTP server ended on its own (a crash; the supervisor restarts the actor).
    ServerEnded,
    /// Log the counted rejections whose summary line is due (timer).
    LogRejections,
}

/// The hooks the server answers for, shared between the server and whoever watches
/// `webhooks.json`: swapping the table is seen by the next request.
#[derive(Debug, Clone, Default)]
pub struct WebhookTable(Arc<RwLock<Arc<HookTable>>>);

impl WebhookTable {
    /// A table with no hooks (every hook id is 404).
    pub fn new() -> Self {
        Self::default()
    }

    /// Compiles `hooks` and makes them the current table. Each hook whose regex cannot be used is
    /// logged (naming the hook and the regex) and returned; such a hook refuses its requests.
    pub fn replace(&self, hooks: &Webhooks) -> Vec<HookLoadError> {
        let (table, errors) = HookTable::compile(hooks);
        for e in &errors {
            tracing::error!(actor = "webhooks", hook = %e.hook, field = e.field, pattern = %e.pattern,
                error = %e.reason, "{e}.");
        }
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
        errors
    }

    /// The current table.
    pub fn current(&self) -> Arc<HookTable> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A request that passed every check, for dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedHook {
    /// The hook as it was when the request was accepted.
    pub hook: Webhook,
    /// The JSON object that was posted.
    pub payload: Map<String, Value>,
}

/// Why the sink could not take an accepted request (the client gets 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Where accepted requests go; the server answers 202 only after the returned future gave Ok.
pub type WebhookSink =
    Arc<dyn Fn(AcceptedHook) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>> + Send + Sync>;

/// Where the server listens once it is bound (tests bind port 0 and read it here).
#[derive(Debug, Clone, Default)]
pub struct ListenAddress(Arc<Mutex<Option<SocketAddr>>>);

impl ListenAddress {
    /// The bound address, if the server is listening (or was).
    pub fn get(&self) -> Option<SocketAddr> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, addr: SocketAddr) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(addr);
    }
}

/// Construction arguments.
#[derive(Clone)]
pub struct WebhookServerArgs {
    /// The `webhooks` block of the config (host, port, token, limits).
    pub config: WebhooksConfig,
    /// The home (`config.json` receives a generated token).
    pub paths: DuctorPaths,
    /// The hooks.
    pub table: WebhookTable,
    /// Where accepted requests go.
    pub sink: WebhookSink,
    /// Filled with the bound address.
    pub listen: ListenAddress,
}

impl std::fmt::Debug for WebhookServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookServerArgs")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

/// The webhook server actor.
#[derive(Debug, Default)]
pub struct WebhookServer;

/// Its state: the running server (none when the port could not be bound).
#[derive(Debug)]
pub struct WebhookServerState {
    running: Option<Running>,
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Running {
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

/// What every request handler reads.
struct Shared {
    addr: SocketAddr,
    table: WebhookTable,
    sink: WebhookSink,
    global_token: String,
    max_body_bytes: usize,
    limiter: Mutex<RateLimiter>,
    tally: Mutex<RejectionTally>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Actor for WebhookServer {
    type Msg = WebhookServerMsg;
    type State = WebhookServerState;
    type Arguments = WebhookServerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<WebhookServerMsg>,
        args: WebhookServerArgs,
    ) -> Result<WebhookServerState, ActorProcessingErr> {
        let global_token = if args.config.token.is_empty() {
            let token = token_from_bytes(&rand::random::<[u8; 32]>());
            match persist_token(&args.paths, &args.config, &token) {
                Ok(_) => tracing::info!(actor = "webhooks", path = %args.paths.config_file(),
                    "Generated the webhook token (webhooks.token) and saved it in config.json."),
                Err(e) => tracing::error!(actor = "webhooks", error = %e,
                    "Generated a webhook token but could not save it in config.json; it lasts until the next start."),
            }
            token
        } else {
            args.config.token.clone()
        };
        let host = args.config.host.clone();
        let port = args.config.port;
        let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(actor = "webhooks", host = %host, port, error = %e,
                    "The webhook server could not bind its address; webhooks stay off (the rest of ductor runs).");
                myself.stop(Some(format!("webhook server could not bind {host}:{port}: {e}")));
                return Ok(WebhookServerState { running: None, shared: None });
            }
        };
        let addr = listener.local_addr()?;
        args.listen.set(addr);
        let shared = Arc::new(Shared {
            addr,
            table: args.table,
            sink: args.sink,
            global_token,
            max_body_bytes: body_limit(args.config.max_body_bytes),
            limiter: Mutex::new(RateLimiter::new(args.config.rate_limit_per_minute)),
            tally: Mutex::new(RejectionTally::new()),
        });
        let server = serve(listener, routes(Arc::clone(&shared)), move || {
            let _ = myself.cast(WebhookServerMsg::ServerEnded);
        });
        tracing::info!(actor = "webhooks", addr = %addr, hooks = shared.table.current().len(),
            "Webhook server listening.");
        Ok(WebhookServerState {
            running: Some(Running { shutdown: Some(server.shutdown), server: server.task }),
            shared: Some(shared),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<WebhookServerMsg>,
        state: &mut WebhookServerState,
    ) -> Result<(), ActorProcessingErr> {
        if state.running.is_some() {
            myself.send_interval(SUMMARY_TICK, || WebhookServerMsg::LogRejections);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WebhookServerMsg>,
        state: &mut WebhookServerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(shared) = &state.shared {
            log_due_rejections(shared, Instant::now());
        }
        if let Some(running) = &mut state.running {
            if let Some(tx) = running.shutdown.take() {
                let _ = tx.send(());
            }
            let server = &mut running.server;
            if tokio::time::timeout(Duration::from_secs(1), &mut *server).await.is_err() {
                server.abort();
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<WebhookServerMsg>,
        msg: WebhookServerMsg,
        state: &mut WebhookServerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WebhookServerMsg::ServerEnded if state.running.as_ref().is_some_and(|r| r.shutdown.is_some()) => {
                Err("webhook server ended unexpectedly".into())
            }
            WebhookServerMsg::ServerEnded => Ok(()),
            WebhookServerMsg::LogRejections => {
                if let Some(shared) = &state.shared {
                    log_due_rejections(shared, Instant::now());
                }
                Ok(())
            }
        }
    }
}

/// Writes `token` into `config.json` as part of the whole `webhooks` object (the file's own
/// object with every key it has, or the loaded values when the file has none).
fn persist_token(paths: &DuctorPaths, config: &WebhooksConfig, token: &str) -> Result<bool, ConfigError> {
    let raw = read_raw_config(&paths.config_file())?;
    let mut webhooks = match raw.get("webhooks") {
        Some(Value::Object(object)) => object.clone(),
        _ => {
            let loaded = json!({
                "enabled": config.enabled,
                "host": config.host,
                "port": config.port,
                "token": "",
                "max_body_bytes": config.max_body_bytes,
                "rate_limit_per_minute": config.rate_limit_per_minute,
            });
            loaded.as_object().cloned().unwrap_or_default()
        }
    };
    webhooks.insert("token".to_owned(), Value::String(token.to_owned()));
    update_config_keys(paths, &[("webhooks", Value::Object(webhooks))])
}

fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let health = warp::path!("health").and(warp::method()).map({
        let shared = Arc::clone(&shared);
        move |method: Method| {
            if method == Method::GET || method == Method::HEAD {
                reply(StatusCode::OK, &json!({"status": "ok"}))
            } else {
                reject(&shared, Rejection::MethodNotAllowed, "/health")
            }
        }
    });
    let hooks = warp::path!("hooks" / String)
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then({
            let shared = Arc::clone(&shared);
            move |hook_id: String, method: Method, headers: HeaderMap, body| {
                let shared = Arc::clone(&shared);
                async move { hook_request(&shared, &hook_id, &method, &headers, body).await }
            }
        });
    let other = warp::path::full()
        .map(move |path: warp::path::FullPath| reject(&shared, Rejection::PathNotFound, path.as_str()));
    health.or(hooks).unify().or(other).unify()
}

async fn hook_request<S, B>(
    shared: &Shared,
    hook_id: &str,
    method: &Method,
    headers: &HeaderMap,
    body: S,
) -> warp::reply::Response
where
    S: warp::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    let request_headers: RequestHeaders =
        headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect();
    let checked = {
        let mut limiter = shared.limiter.lock().unwrap_or_else(PoisonError::into_inner);
        check_before_body(method.as_str(), &request_headers, &mut limiter, Instant::now())
    };
    if let Err(rejection) = checked {
        return reject(shared, rejection, hook_id);
    }
    let declared = headers
        .get(warp::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = match read_limited(body, declared, shared.max_body_bytes).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return reject(shared, Rejection::TooLarge, hook_id),
        Err(BodyError::Read(e)) => {
            tracing::debug!(actor = "webhooks", hook = %hook_id, error = %e, "Webhook request body could not be read.");
            return reply(StatusCode::BAD_REQUEST, &json!({"error": "body_unreadable"}));
        }
    };
    let table = shared.table.current();
    let (hook_id, payload) = match check_body(hook_id, &request_headers, &body, &table, &shared.global_token) {
        Verdict::Reject(rejection) => return reject(shared, rejection, hook_id),
        Verdict::Accept { hook_id, payload } => (hook_id, payload),
    };
    let Some(hook) = table.get(&hook_id).map(|h| h.hook.clone()) else {
        return reject(shared, Rejection::HookNotFound, &hook_id);
    };
    match (shared.sink)(AcceptedHook { hook, payload }).await {
        Ok(()) => {
            tracing::info!(actor = "webhooks", hook = %hook_id, "Webhook request accepted.");
            reply(StatusCode::ACCEPTED, &Verdict::accepted_body(&hook_id))
        }
        Err(e) => {
            tracing::debug!(actor = "webhooks", hook = %hook_id, error = %e, "Webhook request could not be recorded.");
            let count = shared
                .tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .note("dispatch_unavailable", Instant::now());
            if let Some(count) = count {
                tracing::error!(actor = "webhooks", addr = %shared.addr, hook = %hook_id, error = %e, count,
                    "Accepted webhook requests could not be recorded; answered 503.");
            }
            reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": "dispatch_unavailable"}))
        }
    }
}

enum BodyError {
    TooLarge,
    Read(warp::Error),
}

/// Reads the body, but not past `limit`: a declared length over it is refused before anything
/// is read, and a stream that grows past it is refused at the chunk that crosses it.
async fn read_limited<S, B>(body: S, declared: Option<u64>, limit: usize) -> Result<Vec<u8>, BodyError>
where
    S: warp::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    if declared.is_some_and(|len| usize::try_from(len).map_or(true, |len| len > limit)) {
        return Err(BodyError::TooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::with_capacity(declared.map_or(0, |len| usize::try_from(len).unwrap_or(0)));
    while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        let mut chunk = chunk.map_err(BodyError::Read)?;
        if bytes.len() + chunk.remaining() > limit {
            return Err(BodyError::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let len = part.len();
            bytes.extend_from_slice(part);
            chunk.advance(len);
        }
    }
    Ok(bytes)
}

/// Answers a rejection: a debug line always, a warning for the first of its kind in a minute
/// (later ones are counted into the next summary line).
fn reject(shared: &Shared, rejection: Rejection, target: &str) -> warp::reply::Response {
    tracing::debug!(actor = "webhooks", target = %target, status = rejection.status(), reason = ?rejection,
        "Webhook request rejected.");
    let count = shared.tally.lock().unwrap_or_else(PoisonError::into_inner).note(rejection.kind(), Instant::now());
    if let Some(count) = count {
        tracing::warn!(actor = "webhooks", addr = %shared.addr, kind = rejection.kind(), status = rejection.status(),
            count, "Webhook requests rejected (at most one line a minute per kind).");
    }
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    reply(status, &rejection.body())
}

fn log_due_rejections(shared: &Shared, now: Instant) {
    let due = shared.tally.lock().unwrap_or_else(PoisonError::into_inner).due(now);
    for (kind, count) in due {
        tracing::warn!(actor = "webhooks", addr = %shared.addr, kind, count,
            "Webhook requests rejected (at most one line a minute per kind).");
    }
}

fn reply(status: StatusCode, body: &Value) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

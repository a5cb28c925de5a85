//! The InternalApi actor: the loopback HTTP bridge (warp) on `127.0.0.1:<interagent_port>`, for
//! `ductor status`, the tool commands and the tool scripts the CLIs run.
//!
//! Every request must carry the home's token (`store::interagent_token`) as
//! `Authorization: Bearer <token>` or `X-Ductor-Token: <token>`, compared in constant time; one
//! without gets 401, and refusals are logged once a minute with their count, not per request
//! (ductor-rs: 0.18.2 had no authentication). Routes: `status.rs` (health, agents, the actor
//! tree, envelopes), `tools.rs` (the tool commands' one-writer path), `interagent.rs`
//! (sync and async asks between agents) and `tasks.rs` (the TaskHub).

mod interagent;
mod status;
mod tasks;
mod tools;

pub use status::health_json;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use warp::Filter;
use warp::http::StatusCode;

use crate::chat::agent_directory::AgentDirectory;
use crate::core::state::StateFileKind;
use crate::core::tool_commands::cron::CronOp;
use crate::core::tool_commands::webhook::WebhookOp;
use crate::runtime::health_board::HealthBoard;
use crate::runtime::http_server::serve;
use crate::store::tool_commands;
use crate::tasks::hub::TaskHubHandle;
use crate::tasks::inter_agent::InterAgent;

/// Largest request body accepted.
pub(super) const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// How often refused requests are logged (with their count).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Messages of the InternalApi.
#[derive(Debug)]
pub enum InternalApiMsg {
    /// The HTTP server ended on its own (a crash; the supervisor restarts the actor).
    ServerEnded,
}

/// What a [`StateChangeHook`] calls: the agent whose home it is, and which file.
pub type StateChangeFn = dyn Fn(&str, StateFileKind) + Send + Sync;

/// Called after a tool command changed a state file through the service (the file's watcher
/// reloads at once).
#[derive(Clone)]
pub struct StateChangeHook(pub Arc<StateChangeFn>);

impl StateChangeHook {
    /// A hook calling `f`.
    pub fn new(f: impl Fn(&str, StateFileKind) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for StateChangeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateChangeHook")
    }
}

/// Construction arguments.
#[derive(Clone)]
pub struct InternalApiArgs {
    /// Address to bind (127.0.0.1:<interagent_port>).
    pub addr: SocketAddr,
    /// The health board the tree is read from.
    pub board: HealthBoard,
    /// The agents this process runs (their Buses, homes, Orchestrators).
    pub agents: AgentDirectory,
    /// The token every request must carry.
    pub token: String,
    /// Called after a tool command changed `cron_jobs.json` or `webhooks.json`.
    pub on_state_change: Option<StateChangeHook>,
    /// The asks between agents (`/interagent/send`, `/interagent/send_async`).
    pub inter_agent: InterAgent,
    /// The TaskHub the `/tasks/*` routes serve.
    pub tasks: TaskHubHandle,
}

impl std::fmt::Debug for InternalApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalApiArgs").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// The InternalApi actor.
#[derive(Debug, Default)]
pub struct InternalApi;

/// Its state: the running server.
#[derive(Debug)]
pub struct InternalApiState {
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Actor for InternalApi {
    type Msg = InternalApiMsg;
    type State = InternalApiState;
    type Arguments = InternalApiArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<InternalApiMsg>,
        args: InternalApiArgs,
    ) -> Result<InternalApiState, ActorProcessingErr> {
        if !args.addr.ip().is_loopback() {
            return Err(format!("internal API refuses to bind {}: it listens on loopback only", args.addr).into());
        }
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("internal API could not bind {}: {e}", args.addr))?;
        let bound = listener.local_addr()?;
        let server = serve(listener, routes(args), move || {
            let _ = myself.cast(InternalApiMsg::ServerEnded);
        });
        tracing::info!(actor = "internal_api", addr = %bound, "Internal API listening.");
        Ok(InternalApiState { shutdown: Some(server.shutdown), server: server.task })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<InternalApiMsg>,
        state: &mut InternalApiState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(tx) = state.shutdown.take() {
            let _ = tx.send(());
        }
        let server = &mut state.server;
        if tokio::time::timeout(Duration::from_secs(1), &mut *server).await.is_err() {
            server.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<InternalApiMsg>,
        msg: InternalApiMsg,
        state: &mut InternalApiState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            InternalApiMsg::ServerEnded if state.shutdown.is_some() => {
                Err("internal API server ended unexpectedly".into())
            }
            InternalApiMsg::ServerEnded => Ok(()),
        }
    }
}

/// A request without the right token.
#[derive(Debug)]
struct Unauthorized;

impl warp::reject::Reject for Unauthorized {}

/// Counts refused requests and says so at most once a minute.
#[derive(Debug)]
struct RefusalLog {
    since: Instant,
    count: u64,
}

impl RefusalLog {
    fn refused(&mut self) {
        self.count += 1;
        if self.since.elapsed() >= REFUSAL_LOG_EVERY {
            tracing::warn!(
                actor = "internal_api",
                refused = self.count,
                "Requests without the internal API token were refused."
            );
            self.count = 0;
            self.since = Instant::now();
        }
    }
}

/// Passes requests that carry `token` (bearer or `X-Ductor-Token`), rejects the others.
fn authorized(token: String) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    let token = Arc::new(token);
    // The first refusal is logged at once.
    let log = Arc::new(Mutex::new(RefusalLog { since: Instant::now() - REFUSAL_LOG_EVERY, count: 0 }));
    warp::header::optional::<String>("authorization")
        .and(warp::header::optional::<String>("x-ductor-token"))
        .and_then(move |bearer: Option<String>, header: Option<String>| {
            let (token, log) = (Arc::clone(&token), Arc::clone(&log));
            async move {
                let given = bearer.as_deref().and_then(|b| b.strip_prefix("Bearer ")).or(header.as_deref());
                let ok = given.is_some_and(|given| orion::util::secure_cmp(given.as_bytes(), token.as_bytes()).is_ok());
                if ok {
                    Ok(())
                } else {
                    log.lock().unwrap_or_else(PoisonError::into_inner).refused();
                    Err(warp::reject::custom(Unauthorized))
                }
            }
        })
        .untuple_one()
}

fn routes(
    args: InternalApiArgs,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let InternalApiArgs { board, agents, token, on_state_change, inter_agent, tasks, .. } = args;
    let with_board = {
        let board = board.clone();
        warp::any().map(move || board.clone())
    };
    let health = warp::path!("interagent" / "health")
        .and(warp::get())
        .and(with_board.clone())
        .map(|board: HealthBoard| reply(StatusCode::OK, &health_json(&board)));
    let names = {
        let agents = agents.clone();
        warp::path!("interagent" / "agents")
            .and(warp::get())
            .map(move || reply(StatusCode::OK, &json!({ "agents": agents.names() })))
    };
    let actors = warp::path!("interagent" / "actors").and(warp::get()).and(with_board).map(|board: HealthBoard| {
        match board.tree("root") {
            Some(root) => reply(StatusCode::OK, &json!({ "root": root })),
            None => reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"success": false, "error": "no actor tree yet"})),
        }
    });
    let submit = {
        let agents = agents.clone();
        warp::path!("interagent" / "envelopes")
            .and(warp::post())
            .and(warp::query::<std::collections::BTreeMap<String, String>>())
            .and(warp::body::content_length_limit(MAX_BODY_BYTES))
            .and(warp::body::bytes())
            .then(move |query: std::collections::BTreeMap<String, String>, body: warp::hyper::body::Bytes| {
                let agents = agents.clone();
                async move {
                    status::submit_envelope(&agents, query.get("agent").map_or("main", String::as_str), &body).await
                }
            })
    };
    let ask = {
        let inter_agent = inter_agent.clone();
        warp::path!("interagent" / "send")
            .and(warp::post())
            .and(warp::body::content_length_limit(MAX_BODY_BYTES))
            .and(warp::body::bytes())
            .then(move |body: warp::hyper::body::Bytes| {
                let inter_agent = inter_agent.clone();
                async move { interagent::send(&inter_agent, &body).await }
            })
    };
    let ask_async = warp::path!("interagent" / "send_async")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .map(move |body: warp::hyper::body::Bytes| interagent::send_async(&inter_agent, &body));
    let tools = tools::ToolRoutes { agents, on_change: on_state_change };
    let cron = {
        let tools = tools.clone();
        warp::path!("interagent" / "cron")
            .and(warp::post())
            .and(warp::body::content_length_limit(MAX_BODY_BYTES))
            .and(warp::body::bytes())
            .then(move |body: warp::hyper::body::Bytes| {
                let tools = tools.clone();
                async move {
                    tools::run_tool_request::<CronOp>(&tools, &body, StateFileKind::CronJobs, |paths, op| {
                        (op.command(), tool_commands::cron::apply(paths, op))
                    })
                    .await
                }
            })
    };
    let webhooks = warp::path!("interagent" / "webhooks")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .then(move |body: warp::hyper::body::Bytes| {
            let tools = tools.clone();
            async move {
                tools::run_tool_request::<WebhookOp>(&tools, &body, StateFileKind::Webhooks, |paths, op| {
                    (op.command(), tool_commands::webhook::apply(paths, op))
                })
                .await
            }
        });
    authorized(token)
        .and(
            health
                .or(names)
                .unify()
                .or(actors)
                .unify()
                .or(submit)
                .unify()
                .or(cron)
                .unify()
                .or(webhooks)
                .unify()
                .or(ask)
                .unify()
                .or(ask_async)
                .unify()
                .or(tasks::routes(tasks))
                .unify(),
        )
        .recover(|rejection: warp::Rejection| async move {
            let (status, error) = if rejection.find::<Unauthorized>().is_some() {
                (StatusCode::UNAUTHORIZED, "unauthorized: the internal API token is missing or wrong".to_owned())
            } else if rejection.is_not_found() {
                (StatusCode::NOT_FOUND, "not found".to_owned())
            } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large".to_owned())
            } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
                (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".to_owned())
            } else {
                (StatusCode::BAD_REQUEST, format!("{rejection:?}"))
            };
            Ok::<_, Infallible>(reply(status, &json!({"success": false, "error": error})))
        })
        .unify()
}

fn reply(status: StatusCode, body: &Value) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

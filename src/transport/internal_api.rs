//! The InternalApi actor: the loopback HTTP bridge (warp) on `interagent_port`.
//!
//! Routes: `GET /interagent/health` (exact shape of core spec §9.5), `GET /interagent/agents`,
//! `GET /interagent/actors` (the live actor tree, ops spec §18.2),
//! `POST /interagent/envelopes` (submit an Envelope to an agent's Bus; ductor-rs), and the
//! one-writer path of the tool commands (ductor-rs): `POST /interagent/cron` and
//! `POST /interagent/webhooks` take a `ServiceRequest` (the home and the operation), run it with
//! the same library function the command would (`store::tool_commands`), call the state-change
//! callback when the file changed, and answer the `ToolAnswer` to print. No authentication: it
//! binds 127.0.0.1 only.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use warp::Filter;
use warp::http::StatusCode;

use crate::core::envelope::Envelope;
use crate::core::health::uptime_text;
use crate::core::state::StateFileKind;
use crate::core::tool_commands::ServiceRequest;
use crate::core::tool_commands::cron::CronOp;
use crate::core::tool_commands::webhook::WebhookOp;
use crate::runtime::bus::BusHandle;
use crate::runtime::health_board::HealthBoard;
use crate::runtime::http_server::serve;
use crate::store::paths::DuctorPaths;
use crate::store::tool_commands::{self, Applied};

/// Largest request body accepted.
const MAX_BODY_BYTES: u64 = 1024 * 1024;

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
#[derive(Debug, Clone)]
pub struct InternalApiArgs {
    /// Address to bind (127.0.0.1:<interagent_port>).
    pub addr: SocketAddr,
    /// The health board the tree is read from.
    pub board: HealthBoard,
    /// Each agent's Bus, by agent name.
    pub buses: BTreeMap<String, BusHandle>,
    /// Each agent's home, by agent name: the homes whose tool commands this service runs.
    pub homes: BTreeMap<String, DuctorPaths>,
    /// Called after a tool command changed `cron_jobs.json` or `webhooks.json`.
    pub on_state_change: Option<StateChangeHook>,
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
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("internal API could not bind {}: {e}", args.addr))?;
        let bound = listener.local_addr()?;
        let tools = ToolRoutes { homes: Arc::new(args.homes), on_change: args.on_state_change };
        let server = serve(listener, routes(args.board, args.buses, tools), move || {
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
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut *server).await.is_err() {
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

/// What the tool-command routes need.
#[derive(Debug, Clone)]
struct ToolRoutes {
    homes: Arc<BTreeMap<String, DuctorPaths>>,
    on_change: Option<StateChangeHook>,
}

fn routes(
    board: HealthBoard,
    buses: BTreeMap<String, BusHandle>,
    tools: ToolRoutes,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let with_board = {
        let board = board.clone();
        warp::any().map(move || board.clone())
    };
    let health = warp::path!("interagent" / "health")
        .and(warp::get())
        .and(with_board.clone())
        .map(|board: HealthBoard| reply(StatusCode::OK, &health_json(&board)));
    let agents =
        warp::path!("interagent" / "agents").and(warp::get()).and(with_board.clone()).map(|board: HealthBoard| {
            let names: Vec<String> = board.agents().into_iter().map(|a| a.name).collect();
            reply(StatusCode::OK, &json!({ "agents": names }))
        });
    let actors = warp::path!("interagent" / "actors").and(warp::get()).and(with_board).map(|board: HealthBoard| {
        match board.tree("root") {
            Some(root) => reply(StatusCode::OK, &json!({ "root": root })),
            None => reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"success": false, "error": "no actor tree yet"})),
        }
    });
    let buses = std::sync::Arc::new(buses);
    let submit = warp::path!("interagent" / "envelopes")
        .and(warp::post())
        .and(warp::query::<BTreeMap<String, String>>())
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .then(move |query: BTreeMap<String, String>, body: warp::hyper::body::Bytes| {
            let buses = std::sync::Arc::clone(&buses);
            async move { submit_envelope(&buses, query.get("agent").map_or("main", String::as_str), &body).await }
        });
    let cron = {
        let tools = tools.clone();
        warp::path!("interagent" / "cron")
            .and(warp::post())
            .and(warp::body::content_length_limit(MAX_BODY_BYTES))
            .and(warp::body::bytes())
            .then(move |body: warp::hyper::body::Bytes| {
                let tools = tools.clone();
                async move {
                    run_tool_request::<CronOp>(&tools, &body, StateFileKind::CronJobs, |paths, op| {
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
                run_tool_request::<WebhookOp>(&tools, &body, StateFileKind::Webhooks, |paths, op| {
                    (op.command(), tool_commands::webhook::apply(paths, op))
                })
                .await
            }
        });
    health
        .or(agents)
        .unify()
        .or(actors)
        .unify()
        .or(submit)
        .unify()
        .or(cron)
        .unify()
        .or(webhooks)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let (status, error) = if rejection.is_not_found() {
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

async fn submit_envelope(buses: &BTreeMap<String, BusHandle>, agent: &str, body: &[u8]) -> warp::reply::Response {
    let Some(bus) = buses.get(agent) else {
        let known: Vec<&String> = buses.keys().collect();
        let error = format!("unknown agent '{agent}'; available: {known:?}");
        return reply(StatusCode::NOT_FOUND, &json!({"success": false, "error": error}));
    };
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::warn!(actor = "internal_api", error = %e, "Rejected a malformed envelope.");
            return reply(
                StatusCode::BAD_REQUEST,
                &json!({"success": false, "error": format!("invalid envelope: {e}")}),
            );
        }
    };
    match bus.submit(envelope).await {
        Ok(id) => reply(StatusCode::OK, &json!({"success": true, "envelope_id": id})),
        Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"success": false, "error": e.to_string()})),
    }
}

/// The agent whose home is `home` (compared as written, then resolved).
fn agent_of_home<'a>(homes: &'a BTreeMap<String, DuctorPaths>, home: &str) -> Option<&'a str> {
    if let Some((name, _)) = homes.iter().find(|(_, paths)| paths.home().as_str() == home) {
        return Some(name);
    }
    let resolved = std::fs::canonicalize(home).ok()?;
    homes
        .iter()
        .find(|(_, paths)| std::fs::canonicalize(paths.home()).is_ok_and(|own| own == resolved))
        .map(|(name, _)| name.as_str())
}

/// Runs a tool command's operation for the home it names (in a blocking task: it waits for the
/// file lock and touches task folders), then announces a changed file.
async fn run_tool_request<Op>(
    tools: &ToolRoutes,
    body: &[u8],
    kind: StateFileKind,
    run: fn(&DuctorPaths, &Op) -> (&'static str, Applied),
) -> warp::reply::Response
where
    Op: serde::de::DeserializeOwned + Send + 'static,
{
    let request: ServiceRequest<Op> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(actor = "internal_api", error = %e, "Rejected a malformed tool command.");
            return reply(StatusCode::BAD_REQUEST, &json!({"error": format!("invalid tool command: {e}")}));
        }
    };
    let Some(agent) = agent_of_home(&tools.homes, &request.home).map(str::to_owned) else {
        return reply(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("this service does not run the home {}", request.home)}),
        );
    };
    let Some(paths) = tools.homes.get(&agent).cloned() else {
        return reply(StatusCode::NOT_FOUND, &json!({"error": "unknown agent"}));
    };
    let op = request.op;
    let outcome = tokio::task::spawn_blocking(move || run(&paths, &op)).await;
    let (command, applied) = match outcome {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(actor = "internal_api", error = %e, "A tool command failed inside the service.");
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "the tool command failed in the service"}),
            );
        }
    };
    tracing::info!(actor = "internal_api", agent = %agent, command, exit_code = applied.answer.exit_code,
        changed = applied.changed, "Tool command applied by the service.");
    if applied.changed
        && let Some(hook) = &tools.on_change
    {
        (hook.0)(&agent, kind);
    }
    reply(StatusCode::OK, &serde_json::to_value(&applied.answer).unwrap_or(Value::Null))
}

/// `{"agents": {"<name>": {"status", "uptime", "restart_count", "last_crash_error"}}}`.
pub fn health_json(board: &HealthBoard) -> Value {
    let agents: serde_json::Map<String, Value> = board
        .agents()
        .into_iter()
        .map(|a| {
            let entry = json!({
                "status": a.status.as_str(),
                "uptime": uptime_text(a.uptime_s),
                "restart_count": a.restarts,
                "last_crash_error": a.last_failure,
            });
            (a.name, entry)
        })
        .collect();
    json!({ "agents": agents })
}

fn reply(status: StatusCode, body: &Value) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

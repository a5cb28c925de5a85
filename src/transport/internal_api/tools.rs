//! The tool commands' one-writer path (ductor-rs): `POST /interagent/cron` and
//! `POST /interagent/webhooks` take a `ServiceRequest` (the home and the operation), run it with
//! the same library function the command would (`store::tool_commands`) for the agent whose
//! home it is, call the state-change hook when the file changed, and answer the `ToolAnswer` the
//! command prints.

use serde_json::{Value, json};
use warp::http::StatusCode;

use super::{StateChangeHook, reply};
use crate::chat::agent_directory::AgentDirectory;
use crate::core::state::StateFileKind;
use crate::core::tool_commands::ServiceRequest;
use crate::store::paths::DuctorPaths;
use crate::store::tool_commands::Applied;

/// What the tool-command routes need.
#[derive(Debug, Clone)]
pub(super) struct ToolRoutes {
    /// The agents whose homes this service runs.
    pub(super) agents: AgentDirectory,
    /// Called after a change.
    pub(super) on_change: Option<StateChangeHook>,
}

/// Runs a tool command's operation for the home it names (in a blocking task: it waits for the
/// file lock and touches task folders), then announces a changed file.
pub(super) async fn run_tool_request<Op>(
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
    let Some(entry) = tools.agents.by_home(&request.home) else {
        return reply(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("this service does not run the home {}", request.home)}),
        );
    };
    let (agent, paths) = (entry.name, entry.paths);
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

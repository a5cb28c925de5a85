//! What the service tells about itself: `GET /interagent/health` (the exact shape of core
//! spec §9.5), `GET /interagent/agents`, `GET /interagent/actors` (the live actor tree, ops spec
//! §18.2), and `POST /interagent/envelopes` (an Envelope submitted to an agent's Bus; ductor-rs).

use serde_json::{Value, json};
use warp::http::StatusCode;

use super::reply;
use crate::chat::agent_directory::AgentDirectory;
use crate::core::envelope::Envelope;
use crate::core::health::uptime_text;
use crate::runtime::health_board::HealthBoard;

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

pub(super) async fn submit_envelope(agents: &AgentDirectory, agent: &str, body: &[u8]) -> warp::reply::Response {
    let Some(bus) = agents.get(agent).map(|a| a.bus) else {
        let known = agents.names();
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

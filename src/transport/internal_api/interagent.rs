//! Inter-agent routes (core spec §9.5): `POST /interagent/send` (a sync ask; the answer is the
//! response) and `POST /interagent/send_async` (a task id at once; the answer reaches the
//! sender's chat through its Bus). Bodies are the original's; `depth` (ductor-rs) carries the
//! asking CLI's `DUCTOR_INTERAGENT_DEPTH`.

use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;

use crate::tasks::inter_agent::{Ask, AsyncOptions, InterAgent};

use super::reply;

/// The body of both routes.
#[derive(Debug, Deserialize)]
struct SendBody {
    #[serde(default = "main_agent")]
    from: String,
    to: Option<String>,
    message: Option<String>,
    #[serde(default)]
    new_session: bool,
    #[serde(default)]
    depth: u32,
    summary: Option<String>,
    chat_id: Option<i64>,
    topic_id: Option<i64>,
    transport: Option<String>,
    reply_to: Option<String>,
    #[serde(default)]
    silent: bool,
}

fn main_agent() -> String {
    crate::chat::agent_directory::MAIN_AGENT.to_owned()
}

/// The 400 answer.
fn bad_request(error: &str) -> warp::reply::Response {
    reply(StatusCode::BAD_REQUEST, &json!({"success": false, "error": error}))
}

/// The ask and the async options of a body, or why it is a bad request.
fn parse(body: &[u8]) -> Result<(Ask, AsyncOptions), String> {
    let body: SendBody = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let to = body.to.filter(|t| !t.trim().is_empty()).ok_or("missing 'to'")?;
    let message = body.message.filter(|m| !m.trim().is_empty()).ok_or("missing 'message'")?;
    let transport = body.transport.map(|t| match t.as_str() {
        "telegram" => "tg".to_owned(),
        "matrix" => "mx".to_owned(),
        _ => t,
    });
    let ask = Ask { from: body.from, to, message, new_session: body.new_session, depth: body.depth };
    let options = AsyncOptions {
        summary: body.summary.filter(|s| !s.trim().is_empty()),
        chat_id: body.chat_id.filter(|c| *c != 0),
        topic_id: body.topic_id,
        transport,
        reply_to: body.reply_to.filter(|r| !r.trim().is_empty()),
        silent: body.silent,
    };
    Ok((ask, options))
}

/// `POST /interagent/send`.
pub async fn send(inter_agent: &InterAgent, body: &[u8]) -> warp::reply::Response {
    let (ask, _) = match parse(body) {
        Ok(parsed) => parsed,
        Err(error) => return bad_request(&error),
    };
    let answer = inter_agent.ask(ask).await;
    reply(
        StatusCode::OK,
        &json!({"sender": answer.sender, "text": answer.text, "success": answer.success, "error": answer.error}),
    )
}

/// `POST /interagent/send_async`.
pub fn send_async(inter_agent: &InterAgent, body: &[u8]) -> warp::reply::Response {
    let (ask, options) = match parse(body) {
        Ok(parsed) => parsed,
        Err(error) => return bad_request(&error),
    };
    match inter_agent.ask_async(ask, options) {
        Ok(task_id) => reply(StatusCode::OK, &json!({"success": true, "task_id": task_id})),
        Err(error) => reply(StatusCode::OK, &json!({"success": false, "error": error})),
    }
}

//! The TaskHub's routes (core spec §8.4): `POST /tasks/create|resume|ask_parent|cancel|delete`
//! and `GET /tasks/list?from=<agent>`, with the spec's shapes and status codes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::http::StatusCode;

use super::{MAX_BODY_BYTES, reply};
use crate::tasks::hub::{CreateRequest, TaskError, TaskHubHandle};

/// A request naming one task.
#[derive(Debug, Deserialize)]
struct TaskRequest {
    task_id: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    question: Option<String>,
}

fn bad_request(error: impl std::fmt::Display) -> warp::reply::Response {
    reply(StatusCode::BAD_REQUEST, &json!({"success": false, "error": error.to_string()}))
}

/// The HTTP answer of a refused request.
fn refusal(error: &TaskError) -> warp::reply::Response {
    let status = match error {
        TaskError::NotFound(_) => StatusCode::NOT_FOUND,
        TaskError::NotOwner { .. } => StatusCode::FORBIDDEN,
        TaskError::Running(_) => StatusCode::CONFLICT,
        TaskError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        TaskError::Refused(_) => StatusCode::OK,
    };
    reply(status, &json!({"success": false, "error": error.to_string()}))
}

/// The body as `T`, or the 400 answer naming what is wrong.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<warp::reply::Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(bad_request(format!("invalid JSON: {e}"))))
}

async fn answer(hub: TaskHubHandle, action: String, body: Vec<u8>) -> warp::reply::Response {
    if action == "create" {
        let request: CreateRequest = match parse(&body) {
            Ok(request) => request,
            Err(response) => return *response,
        };
        if request.prompt.trim().is_empty() {
            return bad_request("missing prompt");
        }
        return match hub.create(request).await {
            Ok(task_id) => reply(StatusCode::OK, &json!({"success": true, "task_id": task_id})),
            Err(TaskError::NotFound(e)) => refusal(&TaskError::Refused(e)),
            Err(e) => refusal(&e),
        };
    }
    let request = match parse::<TaskRequest>(&body) {
        Ok(request) if !request.task_id.trim().is_empty() => request,
        Ok(_) => return bad_request("missing task_id"),
        Err(response) => return *response,
    };
    let TaskRequest { task_id, from, prompt, question } = request;
    match action.as_str() {
        "resume" => {
            let Some(prompt) = prompt.filter(|p| !p.trim().is_empty()) else { return bad_request("missing prompt") };
            match hub.resume(task_id, prompt, from).await {
                Ok(task_id) => reply(StatusCode::OK, &json!({"success": true, "task_id": task_id})),
                Err(TaskError::NotFound(id)) => refusal(&TaskError::Refused(format!("unknown task: {id}"))),
                Err(e) => refusal(&e),
            }
        }
        "ask_parent" => {
            let Some(question) = question.filter(|q| !q.trim().is_empty()) else {
                return bad_request("missing question");
            };
            match hub.ask_parent(task_id, question).await {
                Ok(ack) => reply(StatusCode::OK, &json!({"success": true, "answer": ack})),
                Err(e) => {
                    let text = e.to_string();
                    let text = if text.starts_with("Error:") { text } else { format!("Error: {text}") };
                    reply(StatusCode::OK, &json!({"success": false, "answer": text, "error": text}))
                }
            }
        }
        "cancel" => match hub.cancel(task_id, from).await {
            Ok(was_running) => reply(StatusCode::OK, &json!({"success": was_running})),
            Err(e) => refusal(&e),
        },
        "delete" => match hub.delete(task_id, from).await {
            Ok(()) => reply(StatusCode::OK, &json!({"success": true})),
            Err(e) => refusal(&e),
        },
        _ => reply(StatusCode::NOT_FOUND, &json!({"success": false, "error": "not found"})),
    }
}

/// The `/tasks/*` routes served by `hub`.
pub(super) fn routes(
    hub: TaskHubHandle,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    let list = {
        let hub = hub.clone();
        warp::path!("tasks" / "list").and(warp::get()).and(warp::query::<BTreeMap<String, String>>()).then(
            move |query: BTreeMap<String, String>| {
                let hub = hub.clone();
                async move {
                    let tasks = hub.list(query.get("from").cloned()).await.unwrap_or_default();
                    let tasks: Vec<Value> = tasks.iter().filter_map(|t| serde_json::to_value(t).ok()).collect();
                    reply(StatusCode::OK, &json!({ "tasks": tasks }))
                }
            },
        )
    };
    let actions = warp::path!("tasks" / String)
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .then(move |action: String, body: warp::hyper::body::Bytes| answer(hub.clone(), action, body.to_vec()));
    list.or(actions).unify()
}

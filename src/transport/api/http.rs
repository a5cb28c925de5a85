//! The HTTP side of the direct API (transports spec §6.2): `GET /health`, `GET /files` and
//! `POST /upload` behind the Bearer token, and `/ws`, whose sockets [`super::connection`]
//! serves. An upload is streamed to `workspace/api_files/<date>/` and refused past 50 MiB
//! (the part written is removed); it does not start a turn — its `prompt` is for the client to
//! send as a message.

use std::convert::Infallible;
use std::sync::Arc;

use camino::Utf8PathBuf;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use warp::http::StatusCode;
use warp::{Buf, Filter, Reply};

use super::connection::{Hub, serve_socket};
use crate::core::incoming_file::{destination, incoming_prompt, mime_for, sanitize_name};
use crate::store::{received_files, received_images};
use crate::transport::file_access::{FileAccess, is_safe};

/// The largest upload.
pub const MAX_UPLOAD: u64 = 50 * 1024 * 1024;
/// The largest WebSocket message.
const MAX_WS_MESSAGE: usize = 1024 * 1024;
/// The largest caption part read.
const MAX_CAPTION: usize = 64 * 1024;

fn reply(status: StatusCode, body: &Value) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

fn error(status: StatusCode, message: &str) -> warp::reply::Response {
    reply(status, &json!({"error": message}))
}

fn bearer_ok(hub: &Hub, header: Option<&str>) -> bool {
    header.and_then(|h| h.strip_prefix("Bearer ")).is_some_and(|token| hub.token_ok(token.trim()))
}

/// Every route of the API server.
pub fn routes(
    hub: Arc<Hub>,
    files: Arc<FileAccess>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let with_hub = {
        let hub = Arc::clone(&hub);
        warp::any().map(move || Arc::clone(&hub))
    };
    let health = warp::path!("health")
        .and(warp::get())
        .and(with_hub.clone())
        .map(|hub: Arc<Hub>| reply(StatusCode::OK, &json!({"status": "ok", "connections": hub.connections()})));
    let fetch = warp::path!("files")
        .and(warp::get())
        .and(with_hub.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(move |hub: Arc<Hub>, auth: Option<String>, query: String| {
            let files = Arc::clone(&files);
            async move { fetch_file(&hub, auth.as_deref(), &query, &files).await }
        });
    let upload = warp::path!("upload")
        .and(warp::post())
        .and(with_hub.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::multipart::form().max_length(None))
        .then(|hub: Arc<Hub>, auth: Option<String>, form: warp::multipart::FormData| async move {
            upload(&hub, auth.as_deref(), form).await
        });
    let not_multipart = warp::path!("upload")
        .and(warp::post())
        .and(with_hub.clone())
        .and(warp::header::optional::<String>("authorization"))
        .map(|hub: Arc<Hub>, auth: Option<String>| {
            if bearer_ok(&hub, auth.as_deref()) {
                error(StatusCode::BAD_REQUEST, "expected multipart/form-data")
            } else {
                hub.refused("upload", "no valid Bearer token");
                error(StatusCode::UNAUTHORIZED, "unauthorized")
            }
        });
    let ws = warp::path!("ws").and(warp::ws()).and(with_hub).map(|ws: warp::ws::Ws, hub: Arc<Hub>| {
        ws.max_message_size(MAX_WS_MESSAGE)
            .max_frame_size(MAX_WS_MESSAGE)
            .on_upgrade(move |socket| serve_socket(socket, hub))
            .into_response()
    });
    let other = warp::path::full().map(|_| error(StatusCode::NOT_FOUND, "not found"));
    health.or(fetch).unify().or(upload).unify().or(not_multipart).unify().or(ws).unify().or(other).unify()
}

async fn fetch_file(hub: &Hub, auth: Option<&str>, query: &str, files: &FileAccess) -> warp::reply::Response {
    if !bearer_ok(hub, auth) {
        hub.refused("files", "no valid Bearer token");
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let path = url_query_value(query, "path");
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "missing path");
    };
    let path = Utf8PathBuf::from(path);
    // A missing file is judged by its folder, so it is a 404 inside the roots, a 403 outside.
    let judged = if path.exists() { path.as_path() } else { path.parent().unwrap_or(&path) };
    if !path.is_absolute() || !is_safe(judged, files.roots.as_deref()) {
        hub.refused("files", "path outside the allowed roots");
        return error(StatusCode::FORBIDDEN, "path outside the allowed roots");
    }
    if !path.is_file() {
        return error(StatusCode::NOT_FOUND, "not a file");
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = warp::reply::Response::new(bytes.into());
            if let Ok(value) = warp::http::HeaderValue::from_str(mime_for(&path)) {
                response.headers_mut().insert(warp::http::header::CONTENT_TYPE, value);
            }
            response
        }
        Err(e) => {
            tracing::warn!(actor = "api", path = %path, error = %e, "Could not read a requested file.");
            error(StatusCode::NOT_FOUND, "not readable")
        }
    }
}

/// The percent-decoded value of `key` in a query string.
fn url_query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn upload(hub: &Hub, auth: Option<&str>, mut form: warp::multipart::FormData) -> warp::reply::Response {
    if !bearer_ok(hub, auth) {
        hub.refused("upload", "no valid Bearer token");
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let part = match form.next().await {
        Some(Ok(part)) if part.name() == "file" => part,
        Some(Ok(_)) => return error(StatusCode::BAD_REQUEST, "the first part must be named file"),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, &format!("not a readable multipart body: {e}")),
        None => return error(StatusCode::BAD_REQUEST, "no file part"),
    };
    let name = match sanitize_name(part.filename().unwrap_or_default()) {
        clean if clean.is_empty() => "upload".to_owned(),
        clean => clean,
    };
    let base = hub.paths.workspace().join("api_files");
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let path = destination(&base, &date, &name, |p| p.exists());
    let written = async {
        if let Some(folder) = path.parent() {
            tokio::fs::create_dir_all(folder).await?;
        }
        let mut file = tokio::fs::File::create(&path).await?;
        let mut size: u64 = 0;
        let mut stream = Box::pin(part.stream());
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk.map_err(std::io::Error::other)?;
            size += chunk.remaining() as u64;
            if size > MAX_UPLOAD {
                // Read the rest without keeping it, so the client gets its answer; a body that
                // goes on and on is cut off.
                if size > 2 * MAX_UPLOAD {
                    break;
                }
                continue;
            }
            while chunk.has_remaining() {
                let piece = chunk.chunk();
                file.write_all(piece).await?;
                let n = piece.len();
                chunk.advance(n);
            }
        }
        file.flush().await?;
        Ok::<u64, std::io::Error>(size)
    }
    .await;
    let size = match written {
        Ok(size) if size <= MAX_UPLOAD => size,
        Ok(_) => {
            let _ = tokio::fs::remove_file(&path).await;
            hub.refused("upload", "over 50 MB");
            return error(StatusCode::PAYLOAD_TOO_LARGE, "file exceeds 50 MB limit");
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            tracing::warn!(actor = "api", error = %e, "An upload could not be stored.");
            return error(StatusCode::BAD_REQUEST, "the upload could not be read");
        }
    };
    let caption = match form.next().await {
        Some(Ok(part)) if part.name() == "caption" => {
            let mut bytes = Vec::new();
            let mut stream = Box::pin(part.stream());
            while let Some(Ok(mut chunk)) = stream.next().await {
                while chunk.has_remaining() && bytes.len() < MAX_CAPTION {
                    let piece = chunk.chunk();
                    let n = piece.len().min(MAX_CAPTION - bytes.len());
                    bytes.extend_from_slice(&piece[..n]);
                    chunk.advance(n);
                }
            }
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    };
    let converting = path.clone();
    let stored = match tokio::task::spawn_blocking(move || received_images::process(&converting)).await {
        Ok(Ok(converted)) => converted,
        _ => path,
    };
    let index_base = base.clone();
    let _ = tokio::task::spawn_blocking(move || received_files::rebuild_index(&index_base)).await;
    let workspace = hub.paths.workspace();
    let shown = stored.strip_prefix(&workspace).map_or_else(|_| stored.to_string(), |p| p.to_string());
    let saved = stored.file_name().unwrap_or(&name).to_owned();
    let size = tokio::fs::metadata(&stored).await.map_or(size, |m| m.len());
    let mime = mime_for(&stored);
    let prompt = incoming_prompt("API", &shown, mime, &saved, caption.as_deref().filter(|c| !c.trim().is_empty()));
    tracing::info!(actor = "api", path = %stored, size, "Received an upload.");
    reply(
        StatusCode::OK,
        &json!({"path": stored.to_string(), "name": saved, "mime": mime, "size": size, "prompt": prompt}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(url_query_value("path=%2Ftmp%2Fa+b.txt&x=1", "path").as_deref(), Some("/tmp/a b.txt"));
        assert_eq!(url_query_value("x=1", "path"), None);
        assert_eq!(url_query_value("path=%zz", "path").as_deref(), Some("%zz"));
    }
}

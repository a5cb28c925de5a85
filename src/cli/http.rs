//! A minimal HTTP/1.1 client with a timeout: GET on the loopback internal API (`ductor
//! status`), POST of a tool command to the running service, and the test request of `ductor
//! webhook test`. Answers are read to the end of the connection (`Connection: close`); a chunked
//! body is decoded.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connection or I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The answer was not HTTP 200 with a body (GET), or not HTTP at all.
    #[error("unexpected answer: {0}")]
    BadResponse(String),
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// One request to `host:port`; `headers` are sent as given (plus `Host`, `Connection: close`
/// and `Content-Length`).
pub async fn send(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    tokio::time::timeout(timeout, async {
        let mut stream = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port)).await?;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(request.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_response(&raw)
    })
    .await
    .map_err(|_| HttpError::Timeout(timeout))?
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, HttpError> {
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| HttpError::BadResponse("no header end".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| HttpError::BadResponse(status_line.to_owned()))?;
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    Ok(HttpResponse { status, body: String::from_utf8_lossy(&body).into_owned() })
}

/// The data of a chunked body (a broken one gives what could be read).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim().to_owned();
        let Ok(size) = usize::from_str_radix(&size_text, 16) else { break };
        raw = &raw[line_end + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
    out
}

/// The headers of a request to the internal API: `extra` and the token, when there is one.
fn local_headers(token: Option<&str>, extra: (&str, &str)) -> Vec<(String, String)> {
    let mut headers = vec![(extra.0.to_owned(), extra.1.to_owned())];
    if let Some(token) = token {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    headers
}

/// GETs `http://127.0.0.1:<port><path>` (with the internal API token) and returns the body of a
/// 200 answer.
pub async fn get_local(port: u16, path: &str, token: Option<&str>, timeout: Duration) -> Result<String, HttpError> {
    let headers = local_headers(token, ("Accept", "application/json"));
    let response = send("127.0.0.1", port, "GET", path, &headers, b"", timeout).await?;
    if response.status != 200 {
        return Err(HttpError::BadResponse(format!("HTTP {}", response.status)));
    }
    Ok(response.body)
}

/// POSTs a JSON body to `http://127.0.0.1:<port><path>` (with the internal API token); any
/// status comes back.
pub async fn post_local_json(
    port: u16,
    path: &str,
    body: &[u8],
    token: Option<&str>,
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    let headers = local_headers(token, ("Content-Type", "application/json"));
    send("127.0.0.1", port, "POST", path, &headers, body, timeout).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn plain_and_chunked_answers() {
        let plain = parse_response(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!(plain, HttpResponse { status: 202, body: "{}".into() });
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, "{\"a\":1}");
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"NOT HTTP\r\n\r\n").is_err());
    }
}

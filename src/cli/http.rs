//! A minimal HTTP/1.1 GET client for the loopback internal API (`ductor status`), with a timeout.

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
    /// The answer was not HTTP 200 with a body.
    #[error("unexpected answer: {0}")]
    BadResponse(String),
}

/// GETs `http://127.0.0.1:<port><path>` and returns the body of a 200 answer.
pub async fn get_local(port: u16, path: &str, timeout: Duration) -> Result<String, HttpError> {
    tokio::time::timeout(timeout, async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| HttpError::BadResponse("no header end".into()))?;
        let status_line = head.lines().next().unwrap_or_default();
        if status_line.split_whitespace().nth(1) != Some("200") {
            return Err(HttpError::BadResponse(status_line.to_owned()));
        }
        Ok(body.to_owned())
    })
    .await
    .map_err(|_| HttpError::Timeout(timeout))?
}

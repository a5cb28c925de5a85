//! A protocol-v2 client of the direct API (what `ductor chat`, the tests and the benchmark use):
//! connects, authenticates with a fresh X25519 key, derives the session keys and seals / opens
//! frames in order. Split in a sending and a receiving half so a terminal can type while the
//! answer streams.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::stream_v2::{self, Opener, Sealer, StreamError};
use super::wire::{ascii_json, decode_key, encode};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why the client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The WebSocket could not be opened or broke.
    #[error("websocket: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server refused the connection (`error` frame instead of `auth_ok`).
    #[error("refused: {code}: {message}")]
    Refused {
        /// The error code.
        code: String,
        /// The server's words.
        message: String,
    },
    /// The server's answer is not what the protocol says.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A frame did not open.
    #[error("crypto: {0}")]
    Crypto(#[from] StreamError),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
}

/// `ws://host:port` with `/ws` added when the URL has no path.
pub fn socket_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') { trimmed.to_owned() } else { format!("{trimmed}/ws") }
}

/// The sending half.
pub struct ApiSender {
    sink: SplitSink<Socket, Message>,
    sealer: Sealer,
}

/// The receiving half.
pub struct ApiReceiver {
    stream: SplitStream<Socket>,
    opener: Opener,
}

impl std::fmt::Debug for ApiSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiSender")
    }
}

impl std::fmt::Debug for ApiReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiReceiver")
    }
}

/// What to authenticate with.
#[derive(Debug, Clone, Default)]
pub struct Login {
    /// The API token.
    pub token: String,
    /// The chat to talk in (the server's default when `None`).
    pub chat_id: Option<i64>,
    /// The channel (a separate session of the chat).
    pub channel_id: Option<i64>,
}

/// Connects and authenticates (protocol v2); returns both halves and the `auth_ok` frame.
pub async fn connect(url: &str, login: &Login) -> Result<(ApiSender, ApiReceiver, Value), ClientError> {
    let (socket, _) = tokio_tungstenite::connect_async(socket_url(url)).await?;
    let (mut sink, mut stream) = socket.split();
    let secret: [u8; 32] = rand::random();
    let mut auth = json!({"type": "auth", "token": login.token, "e2e_pk": encode(&stream_v2::public_key(&secret)?), "protocol": 2});
    if let Some(chat) = login.chat_id {
        auth["chat_id"] = json!(chat);
    }
    if let Some(channel) = login.channel_id {
        auth["channel_id"] = json!(channel);
    }
    sink.send(Message::text(ascii_json(&auth))).await?;
    let answer = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => break text.as_str().to_owned(),
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    };
    let frame: Value = serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))?;
    match frame["type"].as_str() {
        Some("auth_ok") => {}
        Some("error") => {
            return Err(ClientError::Refused {
                code: frame["code"].as_str().unwrap_or_default().to_owned(),
                message: frame["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        _ => return Err(ClientError::Protocol(format!("expected auth_ok, got {answer}"))),
    }
    let server_pk = frame["e2e_pk"]
        .as_str()
        .and_then(decode_key)
        .ok_or_else(|| ClientError::Protocol("auth_ok without a usable e2e_pk".to_owned()))?;
    let keys = stream_v2::client_session_keys(&secret, &server_pk)?;
    let sender = ApiSender { sink, sealer: Sealer::new(&keys.tx, rand::random()) };
    let receiver = ApiReceiver { stream, opener: Opener::new(&keys.rx) };
    Ok((sender, receiver, frame))
}

impl ApiSender {
    /// Seals a frame without sending it (tests replay, drop and swap sealed frames).
    pub fn seal(&mut self, frame: &Value) -> Result<String, ClientError> {
        Ok(self.sealer.seal_text(&ascii_json(frame))?)
    }

    /// Sends a frame's text as it is.
    pub async fn send_raw(&mut self, text: String) -> Result<(), ClientError> {
        Ok(self.sink.send(Message::text(text)).await?)
    }

    /// Seals and sends a frame.
    pub async fn send(&mut self, frame: &Value) -> Result<(), ClientError> {
        let text = self.seal(frame)?;
        self.send_raw(text).await
    }

    /// A `message` frame.
    pub async fn message(&mut self, text: &str) -> Result<(), ClientError> {
        self.send(&json!({"type": "message", "text": text})).await
    }

    /// An `abort` frame.
    pub async fn abort(&mut self) -> Result<(), ClientError> {
        self.send(&json!({"type": "abort"})).await
    }

    /// Closes the socket.
    pub async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
}

impl ApiReceiver {
    /// The next frame, opened; `Ok(None)` when the server closed the socket. A plaintext
    /// `error` the server sends before closing is returned as it is.
    pub async fn next(&mut self) -> Result<Option<Value>, ClientError> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    let plaintext = self.opener.open_text(text.as_str())?;
                    return serde_json::from_slice(&plaintext)
                        .map(Some)
                        .map_err(|e| ClientError::Protocol(e.to_string()));
                }
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::socket_url;

    #[test]
    fn the_ws_path_is_added_when_missing() {
        assert_eq!(socket_url("ws://h:1"), "ws://h:1/ws");
        assert_eq!(socket_url("ws://h:1/"), "ws://h:1/ws");
        assert_eq!(socket_url("ws://h:1/ws"), "ws://h:1/ws");
    }
}

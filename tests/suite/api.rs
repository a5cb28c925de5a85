//! The direct WebSocket API against the real binary (transports spec §6, issue acceptance):
//! the ten API checks for protocol v1 (with the spec's key vector) and v2, v2's refusal of
//! replayed, dropped and swapped frames, an `abort` on the same socket, the per-chat order, a
//! client written with libsodium (PyNaCl), garbage and slow connections while Telegram keeps
//! answering, `ductor chat`, and `ductor api enable|disable`.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ductor::transport::api::box_v1::{self, BoxV1};
use ductor::transport::api::client::{self, ApiReceiver, ApiSender, Login};
use ductor::transport::api::stream_v2::Sealer;
use ductor::transport::api::wire::{ascii_json, encode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::binary::{self, free_port, http};
use crate::support::telegram_service::{self, ALICE, Tg, WAIT};

const API_TOKEN: &str = "test-api-token";
/// What the fake CLI's `text` fixture answers (a first turn).
const ANSWER: &str = "FAKE[text]";
/// What any answer of the fake CLI starts with (`FAKE[resume]` for later turns of a session).
const ANY_ANSWER: &str = "FAKE[";

async fn start(fake_env: &[(&str, &str)]) -> (Tg, u16) {
    let port = free_port();
    let config = json!({
        "api": {"enabled": true, "host": "127.0.0.1", "port": port, "token": API_TOKEN, "allow_public": true},
        "file_access": "workspace",
    });
    let tg = telegram_service::start(config, fake_env).await;
    let up = tokio::task::spawn_blocking(move || {
        binary::eventually(WAIT, || http(port, "GET", "/health", &[], b"").is_some_and(|(code, _)| code == 200))
    })
    .await
    .unwrap();
    assert!(up, "the API answers /health");
    (tg, port)
}

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/ws")
}

async fn login(port: u16, chat_id: Option<i64>, channel_id: Option<i64>) -> (ApiSender, ApiReceiver, Value) {
    let login = Login { token: API_TOKEN.to_owned(), chat_id, channel_id };
    client::connect(&url(port), &login).await.unwrap()
}

/// Frames until (and with) the first `result`.
async fn until_result(receiver: &mut ApiReceiver) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = tokio::time::timeout(WAIT, receiver.next()).await.expect("a frame in time").unwrap();
        let frame = frame.expect("the socket stays open until the result");
        let done = frame["type"] == "result";
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

async fn next_frame(receiver: &mut ApiReceiver) -> Option<Value> {
    tokio::time::timeout(WAIT, receiver.next()).await.expect("a frame in time").unwrap()
}

fn health(port: u16) -> Value {
    let (code, body) = http(port, "GET", "/health", &[], b"").unwrap();
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}

/// A raw socket: sends `first` (when given) and returns what the server answers before closing.
async fn raw_exchange(port: u16, first: Option<Message>) -> Vec<Message> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url(port)).await.unwrap();
    if let Some(first) = first {
        socket.send(first).await.unwrap();
    }
    let mut got = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(15), socket.next()).await {
        let closing = message.is_close();
        got.push(message);
        if closing {
            break;
        }
    }
    got
}

fn error_code(messages: &[Message]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        Message::Text(text) => {
            let value: Value = serde_json::from_str(text.as_str()).ok()?;
            (value["type"] == "error").then(|| value["code"].as_str().unwrap_or_default().to_owned())
        }
        _ => None,
    })
}

/// The protocol-v1 client of the original: NaCl boxes, no `protocol` field; its key is the
/// client key of the spec's test vector (32 bytes of 0x02).
struct V1Client {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    boxed: BoxV1,
}

impl V1Client {
    async fn connect(port: u16) -> (Self, Value) {
        let (mut socket, _) = tokio_tungstenite::connect_async(url(port)).await.unwrap();
        let secret = [2u8; 32];
        assert_eq!(encode(&box_v1::public_key(&secret)), "zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=");
        let auth = json!({"type": "auth", "token": API_TOKEN, "e2e_pk": encode(&box_v1::public_key(&secret))});
        socket.send(Message::text(auth.to_string())).await.unwrap();
        let ok = match socket.next().await {
            Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(text.as_str()).unwrap(),
            other => panic!("no auth_ok: {other:?}"),
        };
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        let server_pk = ductor::transport::api::wire::decode_key(ok["e2e_pk"].as_str().unwrap()).unwrap();
        (Self { socket, boxed: BoxV1::new(&secret, &server_pk) }, ok)
    }

    async fn send(&mut self, frame: &Value) {
        let text = self.boxed.seal(&rand::random(), ascii_json(frame).as_bytes()).unwrap();
        self.socket.send(Message::text(text)).await.unwrap();
    }

    async fn send_raw(&mut self, text: &str) {
        self.socket.send(Message::text(text.to_owned())).await.unwrap();
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.socket.next()).await.expect("a frame in time") {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_slice(&self.boxed.open(text.as_str()).unwrap()).unwrap());
                }
                Some(Ok(Message::Close(_))) | None => return None,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{e}"),
            }
        }
    }

    async fn until_result(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await.expect("open until the result");
            let done = frame["type"] == "result";
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }
}

fn starts(tg: &Tg) -> usize {
    tg.prompts().len()
}

/// Checks 2, 3, 4, 5 and 9 in protocol v2, and v2's refusal of replayed, dropped and swapped
/// frames and of a wrong key: each refused, the connection closed, nothing run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_checks_and_broken_streams() {
    let (tg, port) = start(&[]).await;
    // 2. A wrong token: auth_failed, closed, no turn.
    let bad = json!({"type": "auth", "token": "wrong", "e2e_pk": encode(&[9; 32]), "protocol": 2});
    let answer = raw_exchange(port, Some(Message::text(bad.to_string()))).await;
    assert_eq!(error_code(&answer).as_deref(), Some("auth_failed"));
    assert!(answer.last().is_some_and(Message::is_close), "closed after auth_failed");
    let answer = raw_exchange(port, Some(Message::text("hello"))).await;
    assert_eq!(error_code(&answer).as_deref(), Some("auth_required"));
    // 3. Valid auth, a message: text deltas, then exactly one result.
    let (mut sender, mut receiver, ok) = login(port, None, None).await;
    assert_eq!(ok["e2e_pk"].as_str().unwrap().len(), 44);
    assert_eq!((ok["chat_id"].as_i64(), ok["protocol"].as_i64()), (Some(ALICE), Some(2)));
    assert_eq!((ok["active_provider"].as_str(), ok["active_model"].as_str()), (Some("claude"), Some("opus")));
    assert_eq!(health(port)["connections"], 1, "check 9");
    sender.message("hello over v2").await.unwrap();
    let frames = until_result(&mut receiver).await;
    assert!(frames.iter().any(|f| f["type"] == "text_delta" && f["data"].as_str().unwrap().contains(ANSWER)));
    let result = frames.last().unwrap();
    assert!(result["text"].as_str().unwrap().contains(ANSWER), "{result}");
    assert_eq!(result["stream_fallback"], false);
    // 5. empty and unknown types (and nothing more came for the first message).
    sender.send(&json!({"type": "message", "text": "   "})).await.unwrap();
    assert_eq!(next_frame(&mut receiver).await.unwrap()["code"], "empty");
    sender.send(&json!({"type": "foo"})).await.unwrap();
    assert_eq!(next_frame(&mut receiver).await.unwrap()["code"], "unknown_type");
    assert_eq!(starts(&tg), 1);
    // Replay: the message frame sent again is refused and the connection closed; one turn ran.
    let frame = sender.seal(&json!({"type": "message", "text": "run me once"})).unwrap();
    sender.send_raw(frame.clone()).await.unwrap();
    until_result(&mut receiver).await;
    sender.send_raw(frame).await.unwrap();
    assert_eq!(next_frame(&mut receiver).await.unwrap()["code"], "decrypt_failed");
    assert_eq!(next_frame(&mut receiver).await, None, "closed after a replay");
    assert_eq!(starts(&tg), 2);
    // Dropped: a frame that arrives after a gap is refused.
    let (mut sender, mut receiver, _) = login(port, None, None).await;
    sender.send(&json!({"type": "foo"})).await.unwrap();
    assert_eq!(next_frame(&mut receiver).await.unwrap()["code"], "unknown_type");
    let _dropped = sender.seal(&json!({"type": "message", "text": "dropped"})).unwrap();
    let after_gap = sender.seal(&json!({"type": "message", "text": "after the gap"})).unwrap();
    sender.send_raw(after_gap).await.unwrap();
    assert_eq!(next_frame(&mut receiver).await.unwrap()["code"], "decrypt_failed");
    assert_eq!(next_frame(&mut receiver).await, None, "closed after a gap");
    // Swapped: the later frame first.
    let (mut sender, mut receiver, _) = login(port, None, None).await;
    sender.send(&json!({"type": "foo"})).await.unwrap();
    assert_eq!(next_frame(&mut receiver).await.unwrap()["code"], "unknown_type");
    let first = sender.seal(&json!({"type": "message", "text": "first"})).unwrap();
    let second = sender.seal(&json!({"type": "message", "text": "second"})).unwrap();
    sender.send_raw(second).await.unwrap();
    sender.send_raw(first).await.unwrap();
    assert_eq!(next_frame(&mut receiver).await.unwrap()["code"], "decrypt_failed");
    assert_eq!(next_frame(&mut receiver).await, None, "closed after a swap");
    // 4 (v2). A wrong key: decrypt_failed, closed.
    let (mut sender, mut receiver, _) = login(port, None, None).await;
    let mut stranger = Sealer::new(&[7; 32], [1; 24]);
    sender.send_raw(stranger.seal_text(r#"{"type":"message","text":"x"}"#).unwrap()).await.unwrap();
    assert_eq!(next_frame(&mut receiver).await.unwrap()["code"], "decrypt_failed");
    assert_eq!(next_frame(&mut receiver).await, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(starts(&tg), 2, "no refused frame ran: {:?}", tg.prompts());
    assert_eq!(health(port)["connections"], 0, "check 9: closed sockets are not counted");
}

/// Checks 1–5 and 9 in protocol v1, with the client key of the spec's vector; the spec's
/// literal frame (sealed for another server key) is refused and the socket stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_checks_with_the_spec_vector() {
    let (tg, port) = start(&[]).await;
    // 1. Silence: auth_timeout after 10 s, then the socket closes.
    let silent = tokio::spawn(async move { raw_exchange(port, None).await });
    let (mut v1, ok) = V1Client::connect(port).await;
    // 0.18.2's swap, kept for v1 clients.
    assert_eq!((ok["active_provider"].as_str(), ok["active_model"].as_str()), (Some("opus"), Some("claude")));
    assert!(ok.get("protocol").is_none());
    assert_eq!(ok["e2e_pk"].as_str().unwrap().len(), 44);
    v1.send(&json!({"type": "message", "text": "hello over v1"})).await;
    let frames = v1.until_result().await;
    assert!(frames.iter().any(|f| f["type"] == "text_delta"));
    assert!(frames.last().unwrap()["text"].as_str().unwrap().contains(ANSWER));
    // 4. The spec's vector frame is sealed for the vector's server key, not this one.
    v1.send_raw("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXQQvnPWgOO9KuKrfWmvtabJnt97rqVMQMmzsdtL/9YJ35/16Sxs+/UDtiM0sCbQ==")
        .await;
    assert_eq!(v1.next().await.unwrap()["code"], "decrypt_failed");
    v1.send(&json!({"type": "message", "text": ""})).await;
    assert_eq!(v1.next().await.unwrap()["code"], "empty");
    v1.send(&json!({"type": "foo"})).await;
    assert_eq!(v1.next().await.unwrap()["code"], "unknown_type");
    assert_eq!(health(port)["connections"], 1);
    assert_eq!(starts(&tg), 1);
    let silent = silent.await.unwrap();
    assert_eq!(error_code(&silent).as_deref(), Some("auth_timeout"));
    assert!(silent.last().is_some_and(Message::is_close));
}

/// Checks 7 and 8: `/files` and `/upload`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_uploads() {
    let (tg, port) = start(&[]).await;
    let bearer = format!("Bearer {API_TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let inside = tg.home.join("workspace/hello.txt");
    std::fs::write(&inside, "hi there").unwrap();
    let outside = tg.root.join("secret.txt");
    std::fs::write(&outside, "no").unwrap();
    let (code, body) = http(port, "GET", &format!("/files?path={inside}"), &[], b"").unwrap();
    assert_eq!((code, body.contains("unauthorized")), (401, true));
    assert_eq!(http(port, "GET", &format!("/files?path={outside}"), &auth, b"").unwrap().0, 403);
    assert_eq!(http(port, "GET", "/files", &auth, b"").unwrap().0, 400);
    assert_eq!(http(port, "GET", &format!("/files?path={inside}"), &auth, b"").unwrap(), (200, "hi there".to_owned()));
    assert_eq!(
        http(port, "GET", &format!("/files?path={}", tg.home.join("workspace/none.txt")), &auth, b"").unwrap().0,
        404
    );
    // 51 MiB: 413 and nothing left on disk.
    let multipart = |name: &str, bytes: &[u8]| {
        let mut body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nlook at this\r\n--XyZ--\r\n",
        );
        body
    };
    let big = multipart("big.bin", &vec![7u8; 51 * 1024 * 1024]);
    let (code, body) = tokio::task::spawn_blocking(move || {
        let bearer = format!("Bearer {API_TOKEN}");
        let headers = [("Authorization", bearer.as_str()), ("Content-Type", "multipart/form-data; boundary=XyZ")];
        http(port, "POST", "/upload", &headers, &big).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("file exceeds 50 MB limit"));
    let folder = tg.home.join("workspace/api_files");
    let files = |dir: &camino::Utf8Path| -> Vec<String> {
        walk(dir).into_iter().filter(|p| !p.ends_with("_index.yaml")).collect()
    };
    assert!(files(&folder).is_empty(), "{:?}", files(&folder));
    // A small PNG: stored as WebP, with the prompt to send.
    let png = tiny_png();
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", "multipart/form-data; boundary=XyZ")];
    let (code, body) = http(port, "POST", "/upload", &headers, &multipart("dot.png", &png)).unwrap();
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["mime"], "image/webp");
    assert!(answer["prompt"].as_str().unwrap().starts_with("[INCOMING FILE]"), "{answer}");
    assert!(answer["prompt"].as_str().unwrap().contains("look at this"));
    assert!(std::path::Path::new(answer["path"].as_str().unwrap()).is_file());
    assert_eq!(http(port, "POST", "/upload", &auth, b"plain").unwrap().0, 400, "not multipart");
    assert_eq!(starts(&tg), 0, "an upload starts no turn");
}

fn walk(dir: &camino::Utf8Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = camino::Utf8PathBuf::from_path_buf(entry.path()).unwrap();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path.to_string()) }
    }
    out
}

fn tiny_png() -> Vec<u8> {
    let image = image::RgbImage::from_pixel(4, 4, image::Rgb([200, 10, 10]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// An `abort` on the socket whose turn streams acts at once: `abort_ok` with the process
/// stopped, and the turn ends with a stopped result long before the CLI would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_the_same_socket_acts_at_once() {
    let (tg, port) = start(&[("FAKE_CLI_HOLD_MS", "60000")]).await;
    let (mut sender, mut receiver, _) = login(port, None, None).await;
    sender.message("a long turn").await.unwrap();
    loop {
        if next_frame(&mut receiver).await.unwrap()["type"] == "text_delta" {
            break;
        }
    }
    let asked = std::time::Instant::now();
    sender.abort().await.unwrap();
    let mut abort_ok = None;
    let mut stopped = None;
    while abort_ok.is_none() || stopped.is_none() {
        let frame = next_frame(&mut receiver).await.unwrap();
        match frame["type"].as_str() {
            Some("abort_ok") => abort_ok = Some(frame),
            Some("result") => stopped = Some(frame),
            _ => {}
        }
    }
    assert_eq!(abort_ok.unwrap()["killed"], 1);
    assert_eq!(stopped.unwrap()["stopped"], true);
    assert!(asked.elapsed() < Duration::from_secs(30), "the abort did not wait for the turn");
    assert_eq!(starts(&tg), 1);
}

/// Check 6: two sockets of one chat never run turns at the same time; sockets of channels 1 and
/// 2 are separate sessions (`tg:<chat>:1`, `tg:<chat>:2`) that run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_of_one_chat_do_not_overlap_channels_may() {
    let (tg, port) = start(&[("FAKE_CLI_HOLD_MS", "1500")]).await;
    let run_pair = |a: Option<i64>, b: Option<i64>| async move {
        let (mut s1, mut r1, _) = login(port, None, a).await;
        let (mut s2, mut r2, _) = login(port, None, b).await;
        s1.message("first socket").await.unwrap();
        s2.message("second socket").await.unwrap();
        let (f1, f2) = tokio::join!(until_result(&mut r1), until_result(&mut r2));
        assert!(f1.last().unwrap()["text"].as_str().unwrap().contains(ANY_ANSWER));
        assert!(f2.last().unwrap()["text"].as_str().unwrap().contains(ANY_ANSWER));
    };
    run_pair(None, None).await;
    let same_chat = turn_intervals(&tg);
    assert_eq!(same_chat.len(), 2);
    assert!(same_chat[0].1 <= same_chat[1].0, "turns of one chat overlapped: {same_chat:?}");
    run_pair(Some(1), Some(2)).await;
    let all = turn_intervals(&tg);
    let channels = &all[2..];
    assert!(channels[1].0 < channels[0].1, "channels ran one after the other: {channels:?}");
    let sessions = std::fs::read_to_string(tg.home.join("sessions.json")).unwrap();
    assert!(sessions.contains(&format!("\"tg:{ALICE}:1\"")) && sessions.contains(&format!("\"tg:{ALICE}:2\"")));
}

/// (start, exit) in ms of every CLI run, in start order.
fn turn_intervals(tg: &Tg) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(tg.root.join("record.jsonl")).unwrap_or_default();
    let records: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut intervals: Vec<(u64, u64)> = records
        .iter()
        .filter(|r| r["event"] == "start")
        .map(|start| {
            let exit = records
                .iter()
                .find(|r| r["event"] == "exit" && r["pid"] == start["pid"])
                .and_then(|r| r["t"].as_u64())
                .unwrap_or(u64::MAX);
            (start["t"].as_u64().unwrap(), exit)
        })
        .collect();
    intervals.sort();
    intervals
}

/// A client written with libsodium (PyNaCl) authenticates, sends a message, receives its
/// deltas and result, and aborts a turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libsodium_client_interop() {
    let python = tokio::task::spawn_blocking(crate::support::sodium_client::python).await.unwrap();
    let (tg, port) = start(&[("FAKE_CLI_HOLD_MS", "2000")]).await;
    let output = tokio::process::Command::new(python.as_str())
        .arg(crate::support::sodium_client::script().as_str())
        .args([url(port).as_str(), API_TOKEN])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["provider"], "claude");
    assert!(summary["deltas"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["result"].as_str().unwrap().contains(ANSWER), "{summary}");
    assert_eq!((summary["killed"].as_u64(), summary["stopped"].as_bool()), (Some(1), Some(true)), "{summary}");
    assert_eq!(starts(&tg), 2);
}

/// 1 000 garbage frames (on an authenticated v1 socket and on fresh sockets) and 100 connections
/// that stall mid-request: the service keeps answering Telegram and the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_slow_connections_leave_telegram_answering() {
    let (tg, port) = start(&[]).await;
    let slow: Vec<std::net::TcpStream> = (0..100)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n").unwrap();
            stream
        })
        .collect();
    let (mut v1, _) = V1Client::connect(port).await;
    for i in 0..900 {
        let garbage = if i % 2 == 0 { format!("garbage {i} !!") } else { encode(&rand::random::<[u8; 40]>()) };
        v1.send_raw(&garbage).await;
    }
    for _ in 0..900 {
        assert_eq!(v1.next().await.unwrap()["code"], "decrypt_failed");
    }
    for i in 0..100 {
        let frame = if i % 2 == 0 { Message::text("{not json") } else { Message::binary(vec![0u8; 64]) };
        let answer = raw_exchange(port, Some(frame)).await;
        assert_eq!(error_code(&answer).as_deref(), Some("auth_required"));
    }
    tg.api.send_text(ALICE, ALICE as u64, "are you still there?");
    tg.bot_says(ALICE, ANSWER).await;
    v1.send(&json!({"type": "message", "text": "and the API?"})).await;
    assert!(v1.until_result().await.last().unwrap()["text"].as_str().unwrap().contains(ANY_ANSWER));
    drop(slow);
}

/// `ductor chat` against the running service: a question is answered, `/stop` stops a turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ductor_chat_answers_and_stops() {
    let (tg, port) = start(&[("FAKE_CLI_HOLD_MS", "60000")]).await;
    let elsewhere = tg.root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut child = binary::ductor(&elsewhere)
        .args(["chat", "--url", &format!("ws://127.0.0.1:{port}"), "--token", API_TOKEN])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let shown = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        })
    };
    let wait_for = |needle: &'static str| {
        let shown = Arc::clone(&shown);
        async move {
            telegram_service::eventually(|| shown.lock().unwrap().contains(needle)).await;
            shown.lock().unwrap().clone()
        }
    };
    assert!(wait_for("Connected to chat").await.contains("Connected to chat"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"what do you say?\n").unwrap();
    let text = wait_for(ANSWER).await;
    assert!(text.contains(ANSWER), "{text}");
    stdin.write_all(b"/stop\n").unwrap();
    let text = wait_for("[stopped 1 process(es)]").await;
    assert!(text.contains("[stopped 1 process(es)]"), "{text}");
    assert!(wait_for("[stopped]").await.contains("[stopped]"));
    stdin.write_all(b"/quit\n").unwrap();
    drop(stdin);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success());
    reader.join().unwrap();
    assert_eq!(starts(&tg), 1);
}

/// `ductor api enable` twice keeps one token (config.json 0600); `disable` keeps it.
#[test]
fn api_enable_twice_keeps_the_token() {
    let (_dir, home) = crate::support::temp_home();
    binary::write_config(&home, free_port());
    let token = |home: &camino::Utf8Path| -> String {
        let raw: Value =
            serde_json::from_str(&std::fs::read_to_string(home.join("config/config.json")).unwrap()).unwrap();
        raw["api"]["token"].as_str().unwrap_or_default().to_owned()
    };
    let (status, out, _) = binary::run(&home, &["api"]);
    assert!(status.success() && out.contains("Status: not configured"), "{out}");
    let (status, out, _) = binary::run(&home, &["api", "enable"]);
    assert!(status.success(), "{out}");
    let first = token(&home);
    assert_eq!(first.len(), 43, "32 random bytes, URL-safe base64: {first}");
    assert!(out.contains(&first));
    let (_, out, _) = binary::run(&home, &["api", "enable"]);
    assert_eq!(token(&home), first);
    assert!(out.contains("8741"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("config/config.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (_, out, _) = binary::run(&home, &["api", "disable"]);
    assert!(out.contains("disabled"));
    assert_eq!(token(&home), first);
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(home.join("config/config.json")).unwrap()).unwrap();
    assert_eq!(raw["api"]["enabled"], false);
    assert_eq!(raw["telegram_token"], "123456:TEST-TOKEN", "other keys stay");
    let (_, out, _) = binary::run(&home, &["api"]);
    assert!(out.contains("Status: disabled"));
}

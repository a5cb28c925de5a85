//! The `webhooks` actor over real TCP on 127.0.0.1, spoken to with a small raw HTTP/1.1 client:
//! health, the checks and their answers, 202 only once the sink answered, 503 when it failed,
//! 405/404, a body over the limit refused without being read, a flood of bad requests, the
//! token generated into config.json, and a port that cannot be bound.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ductor::core::config::model::WebhooksConfig;
use ductor::core::state::webhooks::{Webhook, Webhooks};
use ductor::observer::webhook_server::{
    AcceptedHook, ListenAddress, SinkError, WebhookServer, WebhookServerArgs, WebhookSink, WebhookTable,
};
use ductor::store::paths::DuctorPaths;
use ractor::{Actor, ActorRef};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---- the log, captured for the whole test binary ----

#[derive(Clone)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log() -> &'static LogBuffer {
    static LOG: OnceLock<LogBuffer> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = LogBuffer(Arc::new(Mutex::new(Vec::new())));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        buffer
    })
}

fn log_lines(containing: &[&str]) -> Vec<String> {
    let text = String::from_utf8_lossy(&log().0.lock().unwrap()).into_owned();
    text.lines().filter(|l| containing.iter().all(|c| l.contains(c))).map(str::to_owned).collect()
}

// ---- a raw HTTP/1.1 client ----

#[derive(Debug)]
struct Response {
    status: u16,
    body: Value,
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    Response { status, body }
}

async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    raw
}

fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    write!(raw, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n").unwrap();
    for (name, value) in headers {
        write!(raw, "{name}: {value}\r\n").unwrap();
    }
    write!(raw, "Content-Length: {}\r\n\r\n", body.len()).unwrap();
    raw.extend_from_slice(body);
    raw
}

async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&request_bytes(method, path, headers, body)).await.unwrap();
    parse_response(&read_to_end(&mut stream).await)
}

async fn post_json(addr: SocketAddr, hook: &str, token: &str, body: &str) -> Response {
    let auth = format!("Bearer {token}");
    let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
    send(addr, "POST", &format!("/hooks/{hook}"), &headers, body.as_bytes()).await
}

// ---- the server under test ----

fn hook(id: &str, token: &str) -> Webhook {
    serde_json::from_value(json!({
        "id": id, "title": format!("Hook {id}"), "mode": "wake", "prompt_template": "Mail from {{from}}",
        "token": token,
    }))
    .unwrap()
}

fn config(token: &str, rate_limit_per_minute: i64) -> WebhooksConfig {
    WebhooksConfig {
        enabled: true,
        host: "127.0.0.1".into(),
        port: 0,
        token: token.into(),
        max_body_bytes: 1024,
        rate_limit_per_minute,
    }
}

/// A sink that records what it got and answers Ok.
fn recording_sink() -> (WebhookSink, Arc<Mutex<Vec<AcceptedHook>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink_got = Arc::clone(&got);
    let sink: WebhookSink = Arc::new(move |accepted| {
        sink_got.lock().unwrap().push(accepted);
        Box::pin(async { Ok(()) })
    });
    (sink, got)
}

struct Server {
    actor: ActorRef<ductor::observer::webhook_server::WebhookServerMsg>,
    ended: tokio::task::JoinHandle<()>,
    addr: SocketAddr,
    table: WebhookTable,
    paths: DuctorPaths,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn stop(self) {
        self.actor.stop(None);
        tokio::time::timeout(Duration::from_secs(5), self.ended).await.unwrap().unwrap();
    }
}

async fn start_in(dir: tempfile::TempDir, config: WebhooksConfig, hooks: Vec<Webhook>, sink: WebhookSink) -> Server {
    log();
    let home = camino::Utf8PathBuf::from_path_buf(dir.path().join("home")).unwrap();
    let paths = DuctorPaths::at(home);
    let table = WebhookTable::new();
    assert!(table.replace(&Webhooks { hooks }).is_empty());
    let listen = ListenAddress::default();
    let args = WebhookServerArgs { config, paths: paths.clone(), table: table.clone(), sink, listen: listen.clone() };
    let (actor, ended) = Actor::spawn(None, WebhookServer, args).await.unwrap();
    let addr = listen.get().expect("bound once spawned");
    Server { actor, ended, addr, table, paths, _dir: dir }
}

async fn start(config: WebhooksConfig, hooks: Vec<Webhook>, sink: WebhookSink) -> Server {
    start_in(tempfile::tempdir().unwrap(), config, hooks, sink).await
}

// ---- the tests ----

#[tokio::test]
async fn health_answers_ok_without_auth_and_without_using_the_quota() {
    let (sink, _) = recording_sink();
    let server = start(config("global", 1), vec![hook("h", "own")], sink).await;
    for _ in 0..3 {
        let health = send(server.addr, "GET", "/health", &[], b"").await;
        assert_eq!((health.status, health.body), (200, json!({"status": "ok"})));
    }
    assert_eq!(post_json(server.addr, "h", "own", "{}").await.status, 202, "the quota of 1 is still free");
    assert_eq!(send(server.addr, "POST", "/health", &[], b"").await.status, 405);
    assert_eq!(send(server.addr, "DELETE", "/health", &[], b"").await.status, 405);
    server.stop().await;
}

#[tokio::test]
async fn accepted_only_after_the_sink_answered() {
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let got = Arc::new(Mutex::new(Vec::<AcceptedHook>::new()));
    let sink: WebhookSink = {
        let got = Arc::clone(&got);
        Arc::new(move |accepted| {
            let release = release_rx.lock().unwrap().take();
            got.lock().unwrap().push(accepted);
            Box::pin(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
                Ok(())
            })
        })
    };
    let server = start(config("global", 30), vec![hook("mail", "own")], sink).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let headers = [("Content-Type", "application/json; charset=utf-8"), ("Authorization", "Bearer own")];
    let body = br#"{"from": "a", "n": 3}"#;
    stream.write_all(&request_bytes("POST", "/hooks/mail", &headers, body)).await.unwrap();
    for _ in 0..500 {
        if !got.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1, "the sink has the request");
        assert_eq!((got[0].hook.id.as_str(), got[0].hook.title.as_str()), ("mail", "Hook mail"));
        assert_eq!(Value::Object(got[0].payload.clone()), json!({"from": "a", "n": 3}));
    }
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(400), stream.read(&mut first)).await;
    assert!(early.is_err(), "no answer while the sink has not answered: {early:?}");

    release_tx.send(()).unwrap();
    let response = parse_response(&read_to_end(&mut stream).await);
    assert_eq!((response.status, response.body), (202, json!({"accepted": true, "hook_id": "mail"})));
    server.stop().await;
}

#[tokio::test]
async fn a_failing_sink_gives_503_with_a_json_error() {
    let sink: WebhookSink = Arc::new(|_| Box::pin(async { Err(SinkError("journal is full".into())) }));
    let server = start(config("global", 30), vec![hook("h", "own")], sink).await;
    let response = post_json(server.addr, "h", "own", r#"{"a": 1}"#).await;
    assert_eq!(response.status, 503);
    assert!(response.body["error"].is_string(), "{:?}", response.body);
    let lines = log_lines(&[&server.addr.to_string(), "could not be recorded"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    server.stop().await;
}

#[tokio::test]
async fn other_methods_are_405_and_other_paths_404() {
    let (sink, got) = recording_sink();
    let server = start(config("global", 30), vec![hook("h", "own")], sink).await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        assert_eq!(send(server.addr, method, "/hooks/h", &[], b"").await.status, 405, "{method}");
    }
    for path in ["/", "/hooks", "/hooks/h/more", "/nope", "/health/x"] {
        assert_eq!(send(server.addr, "GET", path, &[], b"").await.status, 404, "{path}");
        assert_eq!(send(server.addr, "POST", path, &[], b"{}").await.status, 404, "{path}");
    }
    assert!(got.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn each_check_answers_over_the_wire() {
    let (sink, got) = recording_sink();
    let mut off = hook("off", "own");
    off.enabled = false;
    let hooks = vec![hook("own", "own"), hook("shared", ""), off];
    let server = start(config("global", 100), hooks, sink).await;
    let a = server.addr;
    let text = [("Content-Type", "text/plain"), ("Authorization", "Bearer own")];
    let cases = [
        (send(a, "POST", "/hooks/own", &text, b"{}").await, 415, Some("content_type_must_be_json")),
        (post_json(a, "own", "own", "{").await, 400, Some("invalid_json")),
        (post_json(a, "own", "own", "[]").await, 400, Some("body_must_be_object")),
        (post_json(a, "nope", "own", "{}").await, 404, Some("hook_not_found")),
        (post_json(a, "off", "own", "{}").await, 403, Some("hook_disabled")),
        (post_json(a, "own", "global", "{}").await, 401, Some("unauthorized")),
        (post_json(a, "own", "", "{}").await, 401, Some("unauthorized")),
        (post_json(a, "own", &"x".repeat(2000), &"1".repeat(1025)).await, 413, None),
        (post_json(a, "shared", "global", r#"{"from": "b"}"#).await, 202, None),
        (post_json(a, "own", "own", r#"{"from": "c"}"#).await, 202, None),
    ];
    for (response, status, error) in cases {
        assert_eq!(response.status, status, "{response:?}");
        if let Some(error) = error {
            assert_eq!(response.body, json!({ "error": error }));
        }
    }
    let accepted: Vec<String> = got.lock().unwrap().iter().map(|a| a.hook.id.clone()).collect();
    assert_eq!(accepted, ["shared", "own"]);
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_without_being_read() {
    let (sink, got) = recording_sink();
    let server = start(config("global", 100), vec![hook("h", "own")], sink).await;

    // A declared 100 MB body: the answer comes before a byte of it is sent.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /hooks/h HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
                Authorization: Bearer own\r\nContent-Length: 100000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = parse_response(&read_to_end(&mut stream).await);
    assert_eq!(response.status, 413);

    // A chunked body with no length: refused at the chunk that crosses the limit, before it ends.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /hooks/h HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
                Authorization: Bearer own\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..3 {
        stream.write_all(format!("200\r\n{}\r\n", " ".repeat(0x200)).as_bytes()).await.unwrap();
    }
    let response = parse_response(&read_to_end(&mut stream).await);
    assert_eq!(response.status, 413, "answered while the body was still open");

    // The limit itself is allowed (1024 bytes).
    let body = format!("{{}}{}", " ".repeat(1022));
    assert_eq!(post_json(server.addr, "h", "own", &body).await.status, 202);
    assert_eq!(got.lock().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_fourth_request_in_a_minute_is_429_whatever_it_is() {
    let (sink, _) = recording_sink();
    let server = start(config("global", 3), vec![hook("h", "own")], sink).await;
    assert_eq!(post_json(server.addr, "nope", "x", "{}").await.status, 404);
    assert_eq!(post_json(server.addr, "h", "wrong", "{}").await.status, 401);
    assert_eq!(post_json(server.addr, "h", "own", "{}").await.status, 202);
    let fourth = post_json(server.addr, "h", "own", "{}").await;
    assert_eq!((fourth.status, fourth.body), (429, json!({"error": "rate_limited"})));
    let text = [("Content-Type", "text/plain")];
    assert_eq!(send(server.addr, "POST", "/hooks/h", &text, b"{}").await.status, 429);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_requests_is_answered_and_logged_in_a_few_lines() {
    let (sink, got) = recording_sink();
    let server = start(config("global", 1_000_000), vec![hook("h", "own")], sink).await;
    let addr = server.addr;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..10 {
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..100 {
                let response = match (worker + i) % 5 {
                    0 => post_json(addr, "h", "wrong", "{}").await,
                    1 => post_json(addr, "h", "own", "{not json").await,
                    2 => post_json(addr, "ghost", "own", "{}").await,
                    3 => send(addr, "POST", "/hooks/h", &[("Content-Type", "text/plain")], b"{}").await,
                    _ => send(addr, "GET", "/hooks/h", &[], b"").await,
                };
                statuses.push(response.status);
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    assert_eq!(statuses.len(), 1000);
    for status in [401, 400, 404, 415, 405] {
        assert_eq!(statuses.iter().filter(|s| **s == status).count(), 200, "{status}");
    }
    assert_eq!(post_json(addr, "h", "own", r#"{"from": "after"}"#).await.status, 202);
    assert_eq!(got.lock().unwrap().len(), 1);
    let lines = log_lines(&[&format!("addr={addr}"), "rejected"]);
    assert!(!lines.is_empty() && lines.len() <= 5, "one line per kind in this minute: {lines:#?}");
    eprintln!("flood: 1000 bad requests in {elapsed:?}, {} log lines", lines.len());
    server.stop().await;
}

#[tokio::test]
async fn an_empty_token_is_generated_into_config_json() {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("home/config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let file = json!({
        "provider": "claude",
        "webhooks": {"enabled": true, "host": "127.0.0.1", "port": 0, "token": "", "max_body_bytes": 1024,
                     "rate_limit_per_minute": 30, "x_custom": "kept"},
        "other": {"a": 1},
    });
    std::fs::write(config_dir.join("config.json"), serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let (sink, _) = recording_sink();
    let server = start_in(dir, config("", 30), vec![hook("shared", "")], sink).await;

    let written: Value = serde_json::from_str(&std::fs::read_to_string(server.paths.config_file()).unwrap()).unwrap();
    let token = written["webhooks"]["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "{token}");
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{token}");
    assert_eq!(written["webhooks"]["x_custom"], json!("kept"));
    assert_eq!(written["webhooks"]["max_body_bytes"], json!(1024));
    assert_eq!((&written["provider"], &written["other"]), (&json!("claude"), &json!({"a": 1})));
    assert_eq!(post_json(server.addr, "shared", &token, "{}").await.status, 202, "the server uses it");
    assert_eq!(post_json(server.addr, "shared", "", "{}").await.status, 401);
    assert!(!log_lines(&["Generated the webhook token"]).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_port_in_use_stops_the_actor_normally_with_a_clear_log() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    log();
    let (sink, _) = recording_sink();
    let mut config = config("global", 30);
    config.port = port;
    let dir = tempfile::tempdir().unwrap();
    let args = WebhookServerArgs {
        config,
        paths: DuctorPaths::at(camino::Utf8PathBuf::from_path_buf(dir.path().join("home")).unwrap()),
        table: WebhookTable::new(),
        sink,
        listen: ListenAddress::default(),
    };
    let (actor, ended) = Actor::spawn(None, WebhookServer, args).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), ended).await.unwrap().unwrap();
    assert_eq!(actor.get_status(), ractor::ActorStatus::Stopped);
    let lines = log_lines(&["could not bind", &format!("port={port}"), "host=127.0.0.1"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[tokio::test]
async fn a_replaced_table_is_seen_by_the_next_request() {
    let (sink, _) = recording_sink();
    let server = start(config("global", 100), vec![hook("old", "t")], sink).await;
    assert_eq!(post_json(server.addr, "new", "t", "{}").await.status, 404);
    let mut stripe: Webhook = hook("signed", "");
    stripe.auth_mode = "hmac".into();
    stripe.hmac_sig_regex = "(v1=([0-9a-f]+)".into();
    let errors = server.table.replace(&Webhooks { hooks: vec![hook("new", "t"), stripe] });
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("'signed'"), "{}", errors[0]);
    assert_eq!(post_json(server.addr, "new", "t", "{}").await.status, 202);
    assert_eq!(post_json(server.addr, "old", "t", "{}").await.status, 404);
    assert_eq!(post_json(server.addr, "signed", "t", "{}").await.status, 401, "a broken hook refuses");
    assert_eq!(log_lines(&["hook=signed", "(v1=([0-9a-f]+)"]).len(), 1);
    server.stop().await;
}

//! Runs the real `ductor` binary on a temporary home, and talks HTTP to its internal API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Writes a minimal configured config (Telegram token + one user) with the given API port.
pub fn write_config(home: &Utf8Path, port: u16) {
    std::fs::create_dir_all(home.join("config")).unwrap();
    let config = serde_json::json!({
        "telegram_token": "123456:TEST-TOKEN",
        "allowed_user_ids": [1001],
        "interagent_port": port,
    });
    std::fs::write(home.join("config/config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

/// The internal API token the tests' services use (`DUCTOR_INTERAGENT_TOKEN`).
pub const TEST_TOKEN: &str = "test-interagent-token";

/// The `ductor` command on `home`, with a clean environment for service detection.
pub fn ductor(home: &Utf8Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ductor"));
    cmd.env("DUCTOR_HOME", home.as_str())
        .env("HOME", home.parent().unwrap_or(home).as_str())
        .env_remove("DUCTOR_SUPERVISOR")
        .env_remove("INVOCATION_ID")
        .env_remove("DUCTOR_SPOOL")
        // No test reaches the real Telegram: without a fake server, a closed local port.
        .env("DUCTOR_TELEGRAM_API_BASE", "http://127.0.0.1:9")
        .env("DUCTOR_INTERAGENT_TOKEN", TEST_TOKEN)
        .stdin(Stdio::null());
    cmd
}

/// Runs a `ductor` command to completion (killed after 30 s); returns (status, stdout, stderr).
pub fn run(home: &Utf8Path, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = ductor(home).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("`ductor {}` did not finish: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A running service.
pub struct Service {
    pub child: Child,
    pub port: u16,
    pub stderr_path: PathBuf,
}

impl Service {
    /// Starts `ductor` with extra env and waits until its internal API answers.
    pub fn start(home: &Utf8Path, port: u16, env: &[(&str, &str)]) -> Self {
        let stderr_path =
            home.parent().unwrap_or(home).join(format!("stderr-{}.log", rand_suffix())).into_std_path_buf();
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = ductor(home);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
        let mut service = Self { child, port, stderr_path };
        service.wait_ready();
        service
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ductor exited early with {status}: {}", self.stderr());
            }
            // Ready: the internal API answers and the main agent's subtree is up (the API is
            // the first child to start, so its answer alone comes too early).
            let main_running = get(self.port, "/interagent/health").is_some_and(|(code, body)| {
                code == 200
                    && serde_json::from_str::<serde_json::Value>(&body)
                        .is_ok_and(|health| health["agents"]["main"]["status"] == "running")
            });
            if main_running {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ductor did not become ready: {}", self.stderr());
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Waits for the process to exit; returns its status and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("ductor did not exit within {limit:?}: {}", self.stderr());
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// One HTTP request to the loopback API with the tests' token; `None` when nothing answers.
pub fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let bearer = format!("Bearer {TEST_TOKEN}");
    let headers = [("Content-Type", "application/json"), ("Authorization", bearer.as_str())];
    http(port, method, path, &headers, body.unwrap_or("").as_bytes())
}

/// One HTTP/1.1 request with the given headers (a `Content-Length` is added); `None` when
/// nothing answers.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// GET helper.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request(port, "GET", path, None)
}

/// Polls `check` every 50 ms up to `limit`.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// Copies a directory tree.
pub fn copy_tree(from: &Utf8Path, to: &Utf8Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let src = Utf8PathBuf::from(from).join(&name);
        let dst = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

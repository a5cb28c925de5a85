//! A real Synapse homeserver on loopback for the Matrix tests: installed from PyPI into a
//! cached virtualenv on first use (`.ci/run` does it up front), started on a free port with
//! registration by shared secret, and stopped when the test process ends (a watchdog shell
//! kills it once its parent is gone).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// The Synapse release the tests run.
pub const SYNAPSE_VERSION: &str = "1.163.2";

/// Where the virtualenv lives: `DUCTOR_SYNAPSE_VENV`, else the user's cache directory.
pub fn venv_dir() -> Utf8PathBuf {
    if let Ok(dir) = std::env::var("DUCTOR_SYNAPSE_VENV")
        && !dir.is_empty()
    {
        return Utf8PathBuf::from(dir);
    }
    let cache =
        std::env::var("XDG_CACHE_HOME").ok().filter(|d| !d.is_empty()).map(Utf8PathBuf::from).unwrap_or_else(|| {
            Utf8PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into())).join(".cache")
        });
    cache.join(format!("ductor-tests/synapse-{SYNAPSE_VERSION}"))
}

/// The virtualenv's python, installing Synapse first when it is not there (one installer at a
/// time, across test processes).
pub fn python() -> Utf8PathBuf {
    let venv = venv_dir();
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    if ready.exists() {
        return python;
    }
    let parent = venv.parent().unwrap().to_owned();
    std::fs::create_dir_all(&parent).unwrap();
    let lock = parent.join(format!(".synapse-{SYNAPSE_VERSION}.lock"));
    let start = Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        if ready.exists() {
            return python;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "another process holds {lock} for 10 minutes");
        std::thread::sleep(Duration::from_millis(500));
    }
    if !ready.exists() {
        let run = |program: &str, args: &[&str]| {
            let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let _ = std::fs::remove_dir_all(&venv);
        run("python3", &["-m", "venv", venv.as_str()]);
        run(venv.join("bin/pip").as_str(), &["install", "-q", &format!("matrix-synapse=={SYNAPSE_VERSION}")]);
        std::fs::write(&ready, SYNAPSE_VERSION).unwrap();
    }
    let _ = std::fs::remove_dir(&lock);
    python
}

/// A running Synapse.
pub struct Synapse {
    /// Its client-API port on 127.0.0.1.
    pub port: u16,
    dir: Utf8PathBuf,
    secret: String,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

static SHARED: OnceLock<Synapse> = OnceLock::new();

/// The Synapse shared by the tests of this process (users and rooms are per test).
pub fn shared() -> &'static Synapse {
    SHARED.get_or_init(Synapse::start)
}

impl Synapse {
    /// A fresh Synapse of its own (for tests that stop it).
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Utf8PathBuf::from_path_buf(tmp.path().to_path_buf()).unwrap();
        let port = crate::support::binary::free_port();
        let secret = format!("secret-{}-{port}", std::process::id());
        let template = include_str!("synapse-homeserver.yaml.tmpl");
        let config = template
            .replace("__DATA_DIR__", dir.as_str())
            .replace("__PORT__", &port.to_string())
            .replace("__SHARED_SECRET__", &secret)
            .replace("__MACAROON_SECRET__", &format!("macaroon-{port}"))
            .replace("__FORM_SECRET__", &format!("form-{port}"));
        std::fs::write(dir.join("homeserver.yaml"), config).unwrap();
        let mut synapse = Self { port, dir, secret, child: None, _tmp: Some(tmp) };
        synapse.resume();
        synapse
    }

    /// Starts the server process (again) and waits until it answers.
    pub fn resume(&mut self) {
        let python = python();
        let script = format!(
            "{python} -m synapse.app.homeserver -c {dir}/homeserver.yaml >>{dir}/synapse.log 2>&1 & s=$!; \
             trap 'kill $s 2>/dev/null; wait $s; exit 0' TERM; \
             while kill -0 {parent} 2>/dev/null && kill -0 $s 2>/dev/null; do sleep 0.5; done; \
             kill $s 2>/dev/null; wait $s",
            dir = self.dir,
            parent = std::process::id(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while request(self.port, "GET", "/_matrix/client/versions", None, None).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "Synapse did not start: {}",
                std::fs::read_to_string(self.dir.join("synapse.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server process (the data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
        let start = Instant::now();
        while request(self.port, "GET", "/_matrix/client/versions", None, None).is_some() {
            assert!(start.elapsed() < Duration::from_secs(20), "Synapse did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Registers a user through the shared-secret admin API; returns `@name:localhost`.
    pub fn register(&self, name: &str, password: &str) -> String {
        let (_, nonce) = request(self.port, "GET", "/_synapse/admin/v1/register", None, None).unwrap();
        let nonce = nonce["nonce"].as_str().unwrap().to_owned();
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(format!("{nonce}\0{name}\0{password}\0notadmin").as_bytes());
        let digest: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let body = json!({"nonce": nonce, "username": name, "password": password, "admin": false, "mac": digest});
        let (status, answer) =
            request(self.port, "POST", "/_synapse/admin/v1/register", None, Some(&body.to_string())).unwrap();
        assert_eq!(status, 200, "register {name}: {answer}");
        answer["user_id"].as_str().unwrap().to_owned()
    }

    /// A GET on the client API with an access token.
    pub fn get(&self, path: &str, token: &str) -> Value {
        let (status, body) = request(self.port, "GET", path, Some(token), None).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A unique user name for one test.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One HTTP/1.0 request; `None` when nothing answers.
pub fn request(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = body.unwrap_or("");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let json = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Some((status, serde_json::from_str(json).unwrap_or(Value::Null)))
}

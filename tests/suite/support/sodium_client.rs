//! A client of the direct API written with libsodium itself (PyNaCl's bindings, which bundle
//! libsodium, and the `websockets` package), installed from PyPI into a cached virtualenv on
//! first use (`.ci/run` does it up front) — the interop proof that any libsodium binding can
//! speak protocol v2. The client is `sodium_client.py` beside this file.

use std::process::Command;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

/// What the virtualenv holds.
pub const PYNACL_VERSION: &str = "1.5.0";
pub const WEBSOCKETS_VERSION: &str = "13.1";

/// Where the virtualenv lives: `DUCTOR_SODIUM_VENV`, else the user's cache directory.
pub fn venv_dir() -> Utf8PathBuf {
    if let Ok(dir) = std::env::var("DUCTOR_SODIUM_VENV")
        && !dir.is_empty()
    {
        return Utf8PathBuf::from(dir);
    }
    let cache =
        std::env::var("XDG_CACHE_HOME").ok().filter(|d| !d.is_empty()).map(Utf8PathBuf::from).unwrap_or_else(|| {
            Utf8PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into())).join(".cache")
        });
    cache.join(format!("ductor-tests/pynacl-{PYNACL_VERSION}-websockets-{WEBSOCKETS_VERSION}"))
}

/// The virtualenv's python, installing the packages first when they are not there (one
/// installer at a time, across test processes).
pub fn python() -> Utf8PathBuf {
    let venv = venv_dir();
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    if ready.exists() {
        return python;
    }
    let parent = venv.parent().unwrap().to_owned();
    std::fs::create_dir_all(&parent).unwrap();
    let lock = parent.join(format!(".sodium-{PYNACL_VERSION}.lock"));
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
        run(
            venv.join("bin/pip").as_str(),
            &["install", "-q", &format!("pynacl=={PYNACL_VERSION}"), &format!("websockets=={WEBSOCKETS_VERSION}")],
        );
        std::fs::write(&ready, PYNACL_VERSION).unwrap();
    }
    let _ = std::fs::remove_dir(&lock);
    python
}

/// The client script.
pub fn script() -> Utf8PathBuf {
    Utf8PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/suite/support/sodium_client.py"))
}

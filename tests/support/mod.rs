//! Shared helpers of the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod adapters;
pub mod binary;
pub mod fake_bot_api;
pub mod fake_cli;
pub mod shell_words;

use camino::Utf8PathBuf;

/// A temporary directory; the home is `<dir>/home` so files beside it (logs of the test) stay
/// out of the home.
pub fn temp_home() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = Utf8PathBuf::from_path_buf(dir.path().join("home")).unwrap();
    std::fs::create_dir_all(&path).unwrap();
    (dir, path)
}

//! Shared helpers of the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod adapters;
pub mod binary;
pub mod fake_bot_api;
pub mod fake_cli;
pub mod mx_person;
pub mod shell_words;
pub mod sodium_client;
pub mod synapse;
pub mod telegram_service;

use camino::Utf8PathBuf;

/// A temporary directory; the home is `<dir>/home` so files beside it (logs of the test) stay
/// out of the home.
pub fn temp_home() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = Utf8PathBuf::from_path_buf(dir.path().join("home")).unwrap();
    std::fs::create_dir_all(&path).unwrap();
    (dir, path)
}

/// Writes `config` as the home's `config.json` and a MAINMEMORY.md (the recorded CLI argv have a
/// system prompt, which the memory file gives).
pub fn configure_home(home: &camino::Utf8Path, config: &serde_json::Value) {
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::write(home.join("config/config.json"), serde_json::to_string_pretty(config).unwrap()).unwrap();
    std::fs::create_dir_all(home.join("workspace/memory_system")).unwrap();
    std::fs::write(
        home.join("workspace/memory_system/MAINMEMORY.md"),
        "# MAINMEMORY\nThe user likes short answers. (fake memory for tests)",
    )
    .unwrap();
    // No greeting when the bot joins a room (the seeded cheat-sheet would be the room's first
    // message); the tests of the greeting write their own text.
    std::fs::write(home.join("workspace/JOIN_NOTIFICATION.md"), "").unwrap();
}

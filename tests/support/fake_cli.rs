//! Installs the fake provider CLI (`examples/fake_cli.rs`) as `claude`, `codex` and `gemini` in
//! a temporary directory for tests.

use std::path::PathBuf;

use camino::Utf8PathBuf;

/// The built fake CLI; built on demand when a single test binary runs without the examples.
pub fn fake_cli_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let binary = profile_dir.join("examples/fake_cli");
    if !binary.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "fake_cli"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the fake CLI");
    }
    binary
}

/// A directory holding `claude`, `codex` and `gemini` links to the fake CLI.
pub fn install(dir: &Utf8PathBuf) -> Utf8PathBuf {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = fake_cli_binary();
    for name in ["claude", "codex", "gemini"] {
        let link = bin.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(&fake, &link).unwrap();
        }
    }
    bin
}

/// A turn as the recorded fixtures were made: the prompt, the model, bypassed permissions and
/// medium effort.
pub fn turn_spec(prompt: &str, model: &str) -> ductor::provider::TurnSpec {
    ductor::provider::TurnSpec {
        prompt: prompt.into(),
        model: model.into(),
        permission_mode: "bypassPermissions".into(),
        reasoning_effort: "medium".into(),
        ..ductor::provider::TurnSpec::default()
    }
}

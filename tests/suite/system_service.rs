//! `ductor service …` against a recording fake `systemctl` / `loginctl` on `PATH`: the exact
//! unit file, the calls in order, `uninstall` removing the unit, `ductor stop` stopping an
//! active service first (so systemd does not start ductor again).

use std::os::unix::fs::PermissionsExt;

use camino::{Utf8Path, Utf8PathBuf};

use crate::support::binary::ductor;

/// A fake service manager: `systemctl` and `loginctl` append their argv to `calls.log`;
/// `start`/`stop` flip the state `is-active` reports.
struct FakeManager {
    bin: Utf8PathBuf,
    calls: Utf8PathBuf,
}

impl FakeManager {
    fn install(root: &Utf8Path) -> Self {
        let bin = root.join("fake-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let calls = root.join("calls.log");
        let state = root.join("active");
        let systemctl = format!(
            "#!/bin/sh\necho \"systemctl $*\" >> '{calls}'\ncase \"$2\" in\n  is-active) if [ -f '{state}' ]; then echo active; else echo inactive; exit 3; fi;;\n  start) touch '{state}';;\n  stop) rm -f '{state}';;\n  status) echo 'ductor.service - fake';;\nesac\nexit 0\n"
        );
        let loginctl = format!("#!/bin/sh\necho \"loginctl $*\" >> '{calls}'\nexit 0\n");
        for (name, text) in [("systemctl", systemctl), ("loginctl", loginctl)] {
            let path = bin.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { bin, calls }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.calls).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    fn clear(&self) {
        let _ = std::fs::remove_file(&self.calls);
    }

    fn run(&self, home: &Utf8Path, args: &[&str]) -> (i32, String, String) {
        let out = ductor(home)
            .args(args)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin))
            .env("USER", "root")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn install_writes_the_exact_unit_and_calls_systemctl_in_order_uninstall_removes_it() {
    let (_dir, home) = crate::support::temp_home();
    let user_home = home.parent().unwrap().to_owned();
    let fake = FakeManager::install(&user_home);
    let (code, out, err) = fake.run(&home, &["service", "install"]);
    assert_eq!(code, 0, "{out}{err}");
    let unit_path = user_home.join(".config/systemd/user/ductor.service");
    let expected = format!(
        "[Unit]
Description=ductor - Telegram bot powered by AI CLIs
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={binary}
Restart=on-failure
RestartSec=5
Environment=PATH={user_home}/.local/bin:/usr/local/bin:/usr/bin:/bin
Environment=HOME={user_home}
Environment=DUCTOR_HOME={home}
Environment=DUCTOR_SUPERVISOR=1

[Install]
WantedBy=default.target
",
        binary = env!("CARGO_BIN_EXE_ductor"),
    );
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), expected);
    if let Ok(verify) = std::process::Command::new("systemd-analyze").arg("verify").arg(unit_path.as_str()).output() {
        let complaints = String::from_utf8_lossy(&verify.stderr);
        assert!(verify.status.success() && complaints.trim().is_empty(), "systemd-analyze verify: {complaints}");
    }
    let calls: Vec<String> = fake.calls().into_iter().filter(|c| c.starts_with("systemctl")).collect();
    assert_eq!(
        calls,
        ["systemctl --user daemon-reload", "systemctl --user enable ductor", "systemctl --user start ductor"]
    );
    let linger_on = Utf8Path::new("/var/lib/systemd/linger/root").exists();
    let linger_calls: Vec<String> = fake.calls().into_iter().filter(|c| c.starts_with("loginctl")).collect();
    assert_eq!(linger_calls.is_empty(), linger_on, "linger is enabled only when it is off: {linger_calls:?}");
    if !linger_on {
        assert_eq!(linger_calls, ["loginctl enable-linger root"]);
    }

    fake.clear();
    let (code, out, _) = fake.run(&home, &["service", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("Service: running"), "{out}");

    fake.clear();
    let (code, out, err) = fake.run(&home, &["service", "uninstall"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!unit_path.exists(), "the unit is removed");
    assert_eq!(
        fake.calls(),
        ["systemctl --user stop ductor", "systemctl --user disable ductor", "systemctl --user daemon-reload"]
    );
    let (code, out, _) = fake.run(&home, &["service", "logs"]);
    assert_eq!(code, 1);
    assert!(out.contains("Service not installed"), "{out}");
}

#[test]
fn stop_with_the_service_active_stops_the_service_first() {
    let (_dir, home) = crate::support::temp_home();
    let user_home = home.parent().unwrap().to_owned();
    let fake = FakeManager::install(&user_home);
    let (code, _, err) = fake.run(&home, &["service", "install"]);
    assert_eq!(code, 0, "{err}");
    fake.clear();
    let (code, out, _) = fake.run(&home, &["stop"]);
    assert_eq!(code, 0);
    assert_eq!(fake.calls(), ["systemctl --user is-active ductor", "systemctl --user stop ductor"]);
    assert!(out.contains("Service stopped.") && out.contains("No running bot instance found."), "{out}");
    // Not active any more: `ductor stop` only asks.
    fake.clear();
    fake.run(&home, &["stop"]);
    assert_eq!(fake.calls(), ["systemctl --user is-active ductor"]);
}

#[test]
fn restart_with_the_service_active_restarts_it_through_systemd() {
    let (_dir, home) = crate::support::temp_home();
    let fake = FakeManager::install(home.parent().unwrap());
    let (code, _, err) = fake.run(&home, &["service", "install"]);
    assert_eq!(code, 0, "{err}");
    fake.clear();
    let (code, out, _) = fake.run(&home, &["restart"]);
    assert_eq!(code, 0);
    assert_eq!(fake.calls(), ["systemctl --user is-active ductor", "systemctl --user restart ductor"]);
    assert!(out.contains("Service restarted.") && !out.contains("Started ductor"), "{out}");
}

#[test]
fn service_without_a_sub_command_prints_the_group_help() {
    let (_dir, home) = crate::support::temp_home();
    let fake = FakeManager::install(home.parent().unwrap());
    let (code, out, _) = fake.run(&home, &["service"]);
    assert_eq!(code, 0);
    assert!(out.contains("install") && out.contains("uninstall") && out.contains("Usage: ductor service"), "{out}");
    assert!(fake.calls().is_empty());
}

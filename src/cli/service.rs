//! `ductor service install|status|start|stop|logs|uninstall` (ops spec §16): a systemd user unit
//! on Linux, a launchd agent on macOS, driven through `systemctl --user` / `launchctl` found on
//! `PATH`. `ductor stop` asks [`stop_if_active`] first so the service manager does not respawn
//! what it stops.

use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::service_unit::{self, LAUNCHD_LABEL, SYSTEMD_UNIT, UnitFacts};
use crate::provider::auth::find_program;
use crate::store::atomic::write_text_atomic;
use crate::store::paths::DuctorPaths;

/// The service manager of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// systemd user units (`systemctl --user`).
    Systemd {
        /// The `systemctl` program.
        systemctl: Utf8PathBuf,
    },
    /// launchd agents (`launchctl`).
    Launchd {
        /// The `launchctl` program.
        launchctl: Utf8PathBuf,
    },
}

fn path_var() -> String {
    std::env::var("PATH").unwrap_or_default()
}

fn user_home() -> Utf8PathBuf {
    Utf8PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/".to_owned()))
}

impl Backend {
    /// The backend available here, if any (systemd when `systemctl` is on `PATH`; launchd on
    /// macOS).
    pub fn detect() -> Option<Self> {
        let path = path_var();
        if cfg!(target_os = "macos") {
            return find_program("launchctl", &path).map(|launchctl| Self::Launchd { launchctl });
        }
        find_program("systemctl", &path).map(|systemctl| Self::Systemd { systemctl })
    }

    /// What it is called in texts.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Self::Systemd { .. } => "systemd user service (starts at boot)",
            Self::Launchd { .. } => "launch agent (starts at login)",
        }
    }

    /// Where its definition file lives.
    pub fn unit_file(&self) -> Utf8PathBuf {
        match self {
            Self::Systemd { .. } => user_home().join(format!(".config/systemd/user/{SYSTEMD_UNIT}.service")),
            Self::Launchd { .. } => user_home().join(format!("Library/LaunchAgents/{LAUNCHD_LABEL}.plist")),
        }
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let (program, all): (&Utf8Path, Vec<&str>) = match self {
            Self::Systemd { systemctl } => (systemctl, std::iter::once("--user").chain(args.iter().copied()).collect()),
            Self::Launchd { launchctl } => (launchctl, args.to_vec()),
        };
        tracing::debug!(program = %program, args = ?all, "Service manager call.");
        let out = Command::new(program.as_std_path())
            .args(&all)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program} could not run: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            Err(format!("`{} {}` failed ({}): {err}", program, all.join(" "), out.status))
        }
    }

    /// Whether the service is running now.
    pub fn is_active(&self) -> bool {
        match self {
            Self::Systemd { .. } => self.run(&["is-active", SYSTEMD_UNIT]).is_ok_and(|out| out.trim() == "active"),
            Self::Launchd { .. } => self.run(&["list", LAUNCHD_LABEL]).is_ok_and(|out| out.contains("\"PID\"")),
        }
    }
}

/// The `ductor` binary the service runs: `ductor` on `PATH`, else this executable.
fn ductor_binary() -> Option<Utf8PathBuf> {
    find_program("ductor", &path_var()).or_else(|| {
        std::env::current_exe().ok().and_then(|p| Utf8PathBuf::from_path_buf(p).ok()).filter(|p| p.is_absolute())
    })
}

fn unit_facts(binary: Utf8PathBuf) -> UnitFacts {
    let home = user_home();
    let nvm_bins = std::fs::read_dir(home.join(".nvm/versions/node"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| Utf8PathBuf::from_path_buf(e.path().join("bin")).ok())
                .filter(|p| p.is_dir())
                .map(|p| p.to_string())
                .collect()
        })
        .unwrap_or_default();
    UnitFacts {
        binary: binary.to_string(),
        user_home: home.to_string(),
        nvm_bins,
        ductor_home: std::env::var("DUCTOR_HOME").ok().filter(|h| !h.is_empty()),
    }
}

/// `ductor service <sub>`; returns the exit status.
pub fn run(paths: &DuctorPaths, sub: Option<&str>) -> i32 {
    let Some(sub) = sub.filter(|s| ["install", "status", "start", "stop", "logs", "uninstall"].contains(s)) else {
        print!("{}", crate::cli::command_tree::help_of(&["service"]).unwrap_or_default());
        return 0;
    };
    let Some(backend) = Backend::detect() else {
        eprintln!(
            "No service manager found (systemctl on PATH, or launchctl on macOS); run `ductor` in the foreground instead."
        );
        return 1;
    };
    let installed = backend.unit_file().exists();
    if !installed && sub != "install" {
        println!("Service not installed. Install it with `ductor service install`.");
        return if sub == "uninstall" { 0 } else { 1 };
    }
    let result = match sub {
        "install" => install(paths, &backend),
        "status" => status(&backend),
        "start" => start_stop(&backend, "start"),
        "stop" => start_stop(&backend, "stop"),
        "logs" => logs(paths, &backend),
        _ => uninstall(&backend),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Writes the unit, enables and starts it; linger on Linux so it runs without a login.
pub fn install(paths: &DuctorPaths, backend: &Backend) -> Result<(), String> {
    let binary = ductor_binary().ok_or("could not find the ductor binary")?;
    let facts = unit_facts(binary);
    let file = backend.unit_file();
    if let Some(folder) = file.parent() {
        std::fs::create_dir_all(folder).map_err(|e| format!("cannot create {folder}: {e}"))?;
    }
    match backend {
        Backend::Systemd { .. } => {
            write_text_atomic(&file, &service_unit::systemd_unit(&facts)).map_err(|e| e.to_string())?;
            println!("Wrote {file}.");
            backend.run(&["daemon-reload"])?;
            backend.run(&["enable", SYSTEMD_UNIT])?;
            ensure_linger();
            backend.run(&["start", SYSTEMD_UNIT])?;
        }
        Backend::Launchd { .. } => {
            if file.exists() {
                let _ = backend.run(&["unload", "-w", file.as_str()]);
            }
            let plist = service_unit::launchd_plist(&facts, paths.home().as_str());
            write_text_atomic(&file, &plist).map_err(|e| e.to_string())?;
            println!("Wrote {file}.");
            backend.run(&["load", "-w", file.as_str()])?;
        }
    }
    println!("Service installed and started ({}). Logs: `ductor service logs`.", backend.mechanism());
    Ok(())
}

/// systemd stops user services at logout unless linger is on for the user: when
/// `/var/lib/systemd/linger/<user>` is missing, enable it (`loginctl enable-linger`, through
/// `sudo` unless root), or say how.
fn ensure_linger() {
    let Some(user) = ["USER", "LOGNAME"].iter().find_map(|k| std::env::var(k).ok()).filter(|u| !u.is_empty()) else {
        return;
    };
    if Utf8Path::new("/var/lib/systemd/linger").join(&user).exists() {
        return;
    }
    println!("Linger is off for {user}: the service would stop when you log out. Enabling it…");
    let path = path_var();
    let root = user == "root";
    let mut command = match (root, find_program("sudo", &path)) {
        (true, _) => Command::new("loginctl"),
        (false, Some(sudo)) => {
            let mut c = Command::new(sudo.as_std_path());
            c.arg("loginctl");
            c
        }
        (false, None) => {
            println!("Run `sudo loginctl enable-linger {user}` to keep the service running after logout.");
            return;
        }
    };
    let ok = command.args(["enable-linger", &user]).status().is_ok_and(|s| s.success());
    if !ok {
        println!(
            "Could not enable linger. Run `sudo loginctl enable-linger {user}` to keep the service running after logout."
        );
    }
}

fn status(backend: &Backend) -> Result<(), String> {
    let out = match backend {
        Backend::Systemd { systemctl } => Command::new(systemctl.as_std_path())
            .args(["--user", "status", SYSTEMD_UNIT, "--no-pager"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .map_err(|e| e.to_string())?,
        Backend::Launchd { .. } => backend.run(&["list", LAUNCHD_LABEL]).unwrap_or_default(),
    };
    print!("{out}");
    println!("{}", if backend.is_active() { "Service: running" } else { "Service: not running" });
    Ok(())
}

fn start_stop(backend: &Backend, verb: &str) -> Result<(), String> {
    match backend {
        Backend::Systemd { .. } => backend.run(&[verb, SYSTEMD_UNIT])?,
        Backend::Launchd { .. } => backend.run(&[verb, LAUNCHD_LABEL])?,
    };
    println!("Service {}.", if verb == "start" { "started" } else { "stopped" });
    Ok(())
}

fn logs(paths: &DuctorPaths, backend: &Backend) -> Result<(), String> {
    match backend {
        Backend::Systemd { .. } => {
            let journalctl = find_program("journalctl", &path_var()).ok_or("journalctl is not on PATH")?;
            Command::new(journalctl.as_std_path())
                .args(["--user", "-u", SYSTEMD_UNIT, "-f", "--no-hostname"])
                .status()
                .map_err(|e| e.to_string())?;
        }
        Backend::Launchd { .. } => {
            let log = paths.log_file();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(50)..] {
                println!("{line}");
            }
            println!("{log}");
        }
    }
    Ok(())
}

/// Stops and disables the service and removes its unit (0.18.2 left the unit behind).
pub fn uninstall(backend: &Backend) -> Result<(), String> {
    let file = backend.unit_file();
    match backend {
        Backend::Systemd { .. } => {
            let _ = backend.run(&["stop", SYSTEMD_UNIT]);
            let _ = backend.run(&["disable", SYSTEMD_UNIT]);
            std::fs::remove_file(&file).map_err(|e| format!("cannot remove {file}: {e}"))?;
            backend.run(&["daemon-reload"])?;
        }
        Backend::Launchd { .. } => {
            let _ = backend.run(&["unload", "-w", file.as_str()]);
            std::fs::remove_file(&file).map_err(|e| format!("cannot remove {file}: {e}"))?;
        }
    }
    println!("Service removed ({file}).");
    Ok(())
}

/// For `ductor stop`: when the service is installed and running, stop it through its manager
/// (which would otherwise start ductor again). Returns whether it did.
pub fn stop_if_active() -> bool {
    let Some(backend) = Backend::detect() else { return false };
    if !backend.unit_file().exists() || !backend.is_active() {
        return false;
    }
    match start_stop(&backend, "stop") {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: could not stop the service: {e}");
            false
        }
    }
}

/// For `ductor restart`: when the systemd service is installed and running, restart it through
/// systemd (a copy started beside it would not be supervised). Returns whether it did.
pub fn restart_if_active() -> bool {
    let Some(backend @ Backend::Systemd { .. }) = Backend::detect() else { return false };
    if !backend.unit_file().exists() || !backend.is_active() {
        return false;
    }
    match backend.run(&["restart", SYSTEMD_UNIT]) {
        Ok(_) => {
            println!("Service restarted.");
            true
        }
        Err(e) => {
            eprintln!("error: could not restart the service: {e}");
            false
        }
    }
}

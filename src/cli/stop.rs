//! `ductor stop` and `ductor restart` (ops spec §18.2): stop the instance named by the pid file
//! (SIGTERM, wait up to 5 s polling every 0.2 s, then SIGKILL), then optionally start a new one.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::store::paths::DuctorPaths;
use crate::store::pid_lock::{is_alive, read_pid};

/// What `stop` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// A running instance was stopped.
    Stopped,
    /// Nothing was running (a stale pid file is removed).
    NothingRunning,
}

/// Stops the running instance of this home, printing what happens.
pub fn stop(paths: &DuctorPaths) -> StopOutcome {
    let pid_file = paths.pid_file();
    let Some(pid) = read_pid(&pid_file).filter(|pid| is_alive(*pid) && *pid != std::process::id() as i32) else {
        if pid_file.exists() {
            let _ = std::fs::remove_file(&pid_file);
        }
        println!("No running bot instance found.");
        return StopOutcome::NothingRunning;
    };
    println!("Stopping bot (pid={pid})…");
    let target = Pid::from_raw(pid);
    let _ = kill(target, Signal::SIGTERM);
    if !wait_gone(pid, Duration::from_secs(5)) {
        let _ = kill(target, Signal::SIGKILL);
        wait_gone(pid, Duration::from_secs(5));
    }
    if read_pid(&pid_file) == Some(pid) {
        let _ = std::fs::remove_file(&pid_file);
    }
    println!("Bot stopped.");
    StopOutcome::Stopped
}

fn wait_gone(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    !is_alive(pid)
}

/// Where a detached ductor writes its console output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// The terminal of the process that starts it (the foreground restart on exit 42).
    Inherit,
    /// Nowhere (`ductor restart`: it runs in the background; `logs/agent.log` has everything).
    Detach,
}

/// Starts `ductor` again as a detached process in its own process group, passing `args`.
pub fn spawn_detached(args: &[String], console: Console) -> std::io::Result<u32> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command.args(args).process_group(0).stdin(Stdio::null());
    if console == Console::Detach {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    Ok(command.spawn()?.id())
}

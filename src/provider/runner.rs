//! Runs one turn's CLI as a child process in its own process group and streams its events.
//!
//! - stdin: the invocation's text (then closed), else `/dev/null`; cwd and environment given.
//! - stdout is read line by line (at most [`MAX_LINE`] bytes a line) into the provider's parser;
//!   stderr is drained concurrently and its first [`STDERR_KEEP`] bytes kept.
//! - [`Control::Interrupt`] sends SIGINT to the CLI itself (not its children);
//!   [`Control::Stop`] sends SIGTERM to the whole group, then SIGKILL after 2 s.
//! - A timeout kills the group and ends the turn with a `__TIMEOUT__<seconds>` result.
//! - The CLI is always waited for, so no zombie is left.

use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use camino::Utf8PathBuf;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use crate::core::stream_event::{StreamEvent, TurnResult};
use crate::provider::{ExitInfo, Invocation, StreamParser, TurnTranscript, fold_events};

/// Longest stdout line accepted (4 MiB); a longer one ends the turn with an error.
pub const MAX_LINE: usize = 4 * 1024 * 1024;
/// Bytes of stderr kept.
pub const STDERR_KEEP: usize = 2000;
/// How long stdout is still read after the CLI itself exited.
pub const LEADER_EXIT_GRACE: Duration = Duration::from_millis(300);
/// Grace between SIGTERM and SIGKILL on `/stop`.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// What the owner of a running turn asks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep running.
    Run,
    /// `/interrupt`: SIGINT to the CLI.
    Interrupt,
    /// `/stop`: SIGTERM to the group, SIGKILL after 2 s.
    Stop,
}

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Working directory (the workspace).
    pub cwd: Utf8PathBuf,
    /// Variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Deadline of the turn.
    pub timeout: Option<Duration>,
    /// Extensions of the deadline while the CLI keeps printing (core spec §7.11).
    pub extension: Option<Extension>,
    /// Files that exist only for this run (Gemini's system prompt); removed when it ends.
    pub temp_files: Vec<Utf8PathBuf>,
    /// How long before the deadline a `timeout_warning` status is emitted (once each per
    /// deadline window; `timeouts.warning_intervals`).
    pub warnings: Vec<Duration>,
}

/// The next warning instant of a deadline window: the earliest `deadline - interval` still in
/// the future whose interval has not fired yet (returns the interval's index too).
fn next_warning(
    deadline: tokio::time::Instant,
    warnings: &[Duration],
    fired: &[bool],
    now: tokio::time::Instant,
) -> Option<(tokio::time::Instant, usize)> {
    warnings
        .iter()
        .enumerate()
        .filter(|(i, _)| !fired.get(*i).copied().unwrap_or(true))
        .filter_map(|(i, before)| deadline.checked_sub(*before).map(|at| (at, i)))
        .filter(|(at, _)| *at > now)
        .min_by_key(|(at, _)| *at)
}

fn status_event(status: &str) -> StreamEvent {
    StreamEvent::SystemStatus { status: status.to_owned() }
}

/// Deadline extension on activity: when the deadline passes and the CLI printed something in
/// the last [`ACTIVE_WITHIN`], the deadline moves `by` further, at most `max` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    /// How much each extension adds.
    pub by: Duration,
    /// Extensions at most.
    pub max: u32,
}

/// Output this recent counts as activity.
pub const ACTIVE_WITHIN: Duration = Duration::from_secs(30);

/// Whether a deadline that just passed is extended (never for a CLI that printed nothing).
fn extends(extension: Option<Extension>, used: u32, since_activity: Option<Duration>) -> bool {
    extension.is_some_and(|e| used < e.max && since_activity.is_some_and(|since| since <= ACTIVE_WITHIN))
}

/// Why a turn could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The argv was empty.
    #[error("nothing to run")]
    EmptyArgv,
    /// The CLI could not be started (not installed, not executable, ...).
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// One wake-up of the read loop.
enum Step {
    Read(usize),
    Deadline,
    Warning,
    Control(bool),
    LeaderExited,
    Drained,
}

/// How the stream ended.
enum Ending {
    Eof,
    TooLong,
    TimedOut(Duration),
    Stopped,
}

/// Runs the invocation; every event is also handed to `on_event` as it arrives.
pub async fn run_turn(
    invocation: &Invocation,
    parser: &mut (dyn StreamParser + Send),
    settings: &RunSettings,
    mut control: watch::Receiver<Control>,
    mut on_event: impl FnMut(&StreamEvent),
) -> Result<TurnTranscript, RunError> {
    let (program, args) = invocation.argv.split_first().ok_or(RunError::EmptyArgv)?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(&settings.cwd)
        .envs(settings.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if invocation.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(source) => {
            remove_temp_files(&settings.temp_files);
            return Err(RunError::Spawn { program: program.clone(), source });
        }
    };
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    tracing::debug!(program = %program, pid = ?pid, "Provider process started.");

    if let (Some(text), Some(mut stdin)) = (invocation.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(text.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    let stderr_kept = Arc::new(Mutex::new(Vec::new()));
    let stderr_task = child.stderr.take().map(|stderr| tokio::spawn(drain_stderr(stderr, Arc::clone(&stderr_kept))));
    let mut events = Vec::new();
    let mut ending = Ending::Eof;
    if let Some(stdout) = child.stdout.take() {
        let mut reader = BufReader::new(stdout);
        let mut deadline = settings.timeout.map(|t| (tokio::time::Instant::now() + t, t));
        let mut last_activity: Option<tokio::time::Instant> = None;
        let mut extensions_used = 0u32;
        let mut buffer = Vec::new();
        let mut control_open = true;
        let mut drain_until: Option<tokio::time::Instant> = None;
        let mut warned = vec![false; settings.warnings.len()];
        loop {
            buffer.clear();
            let warning =
                deadline.and_then(|(at, _)| next_warning(at, &settings.warnings, &warned, tokio::time::Instant::now()));
            let warn = async {
                match warning {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let sleep = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let drained = async {
                match drain_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let step = {
                let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
                tokio::select! {
                    read = limited.read_until(b'\n', &mut buffer) => Step::Read(read.unwrap_or(0)),
                    () = sleep => Step::Deadline,
                    () = warn => Step::Warning,
                    () = drained => Step::Drained,
                    _ = async {
                        if drain_until.is_none() { child.wait().await.ok() } else { std::future::pending().await }
                    } => Step::LeaderExited,
                    changed = async {
                        if control_open { control.changed().await.is_ok() } else { std::future::pending().await }
                    } => Step::Control(changed),
                }
            };
            match step {
                Step::Read(0) => break,
                Step::Read(_) if buffer.len() > MAX_LINE && !buffer.ends_with(b"\n") => {
                    ending = Ending::TooLong;
                    break;
                }
                Step::Read(_) => {
                    last_activity = Some(tokio::time::Instant::now());
                    let line = String::from_utf8_lossy(&buffer);
                    for event in parser.line(line.trim_end()) {
                        on_event(&event);
                        events.push(event);
                    }
                }
                Step::Warning => {
                    if let Some((_, index)) = warning {
                        warned[index] = true;
                        // Every interval already passed counts as fired with this one.
                        let now = tokio::time::Instant::now();
                        if let Some((at, _)) = deadline {
                            for (i, before) in settings.warnings.iter().enumerate() {
                                if at.checked_sub(*before).is_some_and(|w| w <= now) {
                                    warned[i] = true;
                                }
                            }
                        }
                        on_event(&status_event("timeout_warning"));
                    }
                }
                Step::Deadline => {
                    if extends(settings.extension, extensions_used, last_activity.map(|at| at.elapsed()))
                        && let (Some(extension), Some((_, total))) = (settings.extension, deadline)
                    {
                        extensions_used += 1;
                        deadline = Some((tokio::time::Instant::now() + extension.by, total + extension.by));
                        warned.iter_mut().for_each(|w| *w = false);
                        tracing::debug!(extensions_used, "The CLI is active; deadline extended.");
                        on_event(&status_event("timeout_extended"));
                        continue;
                    }
                    ending = Ending::TimedOut(deadline.map_or(Duration::ZERO, |(_, t)| t));
                    break;
                }
                Step::Control(false) => control_open = false,
                // The CLI ended but something it started still holds stdout: read what is
                // already there, then stop waiting for an end of file that may never come.
                Step::LeaderExited => drain_until = Some(tokio::time::Instant::now() + LEADER_EXIT_GRACE),
                Step::Drained => break,
                Step::Control(true) => {
                    let wanted = *control.borrow_and_update();
                    match (wanted, pid) {
                        (Control::Interrupt, Some(pid)) => {
                            let _ = kill(pid, Signal::SIGINT);
                        }
                        (Control::Stop, Some(pid)) => {
                            stop_group(pid, &mut child).await;
                            ending = Ending::Stopped;
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    if matches!(ending, Ending::TimedOut(_) | Ending::TooLong)
        && let Some(pid) = pid
    {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    let status = child.wait().await.ok();
    if let Some(task) = stderr_task {
        // Something the CLI started may still hold stderr open: do not wait for it long.
        let abort = task.abort_handle();
        if tokio::time::timeout(LEADER_EXIT_GRACE, task).await.is_err() {
            abort.abort();
        }
    }
    let stderr = String::from_utf8_lossy(&stderr_kept.lock().unwrap_or_else(PoisonError::into_inner)).into_owned();
    let code = status.map(exit_code);
    let exit = ExitInfo { code, stderr };
    let tail: Vec<StreamEvent> = match ending {
        Ending::Eof => parser.finish(&exit),
        Ending::TooLong => vec![StreamEvent::Result(TurnResult {
            is_error: true,
            result: format!(
                "The CLI printed a line longer than {} MiB; the turn was stopped.",
                MAX_LINE / (1024 * 1024)
            ),
            returncode: exit.code,
            ..TurnResult::default()
        })],
        Ending::TimedOut(limit) => vec![StreamEvent::Result(TurnResult {
            is_error: true,
            result: format!("__TIMEOUT__{}", limit.as_secs()),
            returncode: exit.code,
            ..TurnResult::default()
        })],
        Ending::Stopped => Vec::new(),
    };
    for event in tail {
        on_event(&event);
        events.push(event);
    }
    let result = fold_events(&events, &exit);
    remove_temp_files(&settings.temp_files);
    Ok(TurnTranscript { events, result })
}

/// The exit code of a finished process; a process ended by a signal gets minus the signal's
/// number (as Python reports it: SIGKILL → -9).
pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|signal| -signal)).unwrap_or(-1)
}

fn remove_temp_files(files: &[Utf8PathBuf]) {
    for file in files {
        if let Err(e) = std::fs::remove_file(file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %file, error = %e, "Could not remove a temporary file.");
        }
    }
}

/// SIGTERM to the group; SIGKILL to the group if the CLI is still there after the grace time.
pub(crate) async fn stop_group(pid: Pid, child: &mut tokio::process::Child) {
    let _ = killpg(pid, Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        let _ = killpg(pid, Signal::SIGKILL);
    } else {
        // The CLI left; make sure nothing it started survives it.
        let _ = killpg(pid, Signal::SIGKILL);
    }
}

async fn drain_stderr(stderr: tokio::process::ChildStderr, kept: Arc<Mutex<Vec<u8>>>) {
    drain_bounded(stderr, kept, STDERR_KEEP).await;
}

/// Reads `reader` to its end, keeping its first `limit` bytes in `kept` and discarding the rest
/// (so a CLI that prints without end never blocks on a full pipe, nor fills our memory).
/// Returns how many bytes were read in all.
pub(crate) async fn drain_bounded(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    kept: Arc<Mutex<Vec<u8>>>,
    limit: usize,
) -> usize {
    let mut chunk = [0u8; 8192];
    let mut total = 0usize;
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total = total.saturating_add(n);
                let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_needs_budget_and_recent_output() {
        let e = Some(Extension { by: Duration::from_secs(120), max: 3 });
        assert!(extends(e, 0, Some(Duration::from_secs(5))));
        assert!(!extends(e, 3, Some(Duration::from_secs(5))), "budget used up");
        assert!(!extends(e, 0, Some(Duration::from_secs(31))), "silent for too long");
        assert!(!extends(e, 0, None), "nothing printed at all");
        assert!(!extends(None, 0, Some(Duration::ZERO)));
    }
}

//! Logging set-up: tracing to stderr and to the size-rotated `logs/agent.log` (ops spec §13).
//!
//! Console: `HH:MM:SS LEVEL    target: message key=value ...` (level coloured on a TTY).
//! File: `YYYY-MM-DD HH:MM:SS [LEVEL] target: message key=value ...` — the `[ERROR]` marker is
//! what `ductor status` counts. Actors log with an `actor=<name>` field. Other crates are capped
//! at WARN.

use std::fmt;
use std::io::{self, IsTerminal, Write};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::store::log_file::RotatingLog;

/// The level from `-v` and the config's `log_level`.
pub fn level_for(verbose: bool, log_level: Option<&str>) -> Level {
    if verbose {
        return Level::DEBUG;
    }
    match log_level.map(|l| l.trim().to_ascii_uppercase()).as_deref() {
        Some("DEBUG") => Level::DEBUG,
        Some("WARNING" | "WARN") => Level::WARN,
        Some("ERROR" | "CRITICAL") => Level::ERROR,
        _ => Level::INFO,
    }
}

/// Installs the global subscriber: stderr always, the log file when given.
pub fn init(level: Level, log_file: Option<RotatingLog>) {
    let filter = Targets::new().with_default(LevelFilter::WARN).with_target("ductor", level);
    let ansi = io::stderr().is_terminal();
    let console = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(io::stderr)
        .event_format(LineFormat { file_style: false, ansi });
    let file = log_file.map(|log| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(log)
            .event_format(LineFormat { file_style: true, ansi: false })
    });
    let _ = tracing_subscriber::registry().with(filter).with(console).with(file).try_init();
}

struct LineFormat {
    file_style: bool,
    ansi: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let now = chrono::Local::now();
        if self.file_style {
            write!(writer, "{} [{}] {}: ", now.format("%Y-%m-%d %H:%M:%S"), level_name(meta.level()), meta.target())?;
        } else {
            let name = format!("{:<8}", level_name(meta.level()));
            let name = if self.ansi { colour(meta.level(), &name) } else { name };
            write!(writer, "{} {} {}: ", now.format("%H:%M:%S"), name, meta.target())?;
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

fn colour(level: &Level, text: &str) -> String {
    let code = match *level {
        Level::ERROR => "31",
        Level::WARN => "33",
        Level::INFO => "32",
        Level::DEBUG | Level::TRACE => "36",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// One event's bytes, appended to the rotating log when the formatter is done with it.
pub struct LogLine {
    log: RotatingLog,
    buffer: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buffer.is_empty() {
            let _ = self.log.append(&self.buffer);
        }
    }
}

impl<'a> MakeWriter<'a> for RotatingLog {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine { log: self.clone(), buffer: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_wins_over_config() {
        assert_eq!(level_for(true, Some("ERROR")), Level::DEBUG);
        assert_eq!(level_for(false, Some("warning")), Level::WARN);
        assert_eq!(level_for(false, Some("nonsense")), Level::INFO);
        assert_eq!(level_for(false, None), Level::INFO);
    }
}

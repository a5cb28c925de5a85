//! What the user sees at the end of a turn (core spec §4.2 steps 4–7): the answer, or an error
//! reply with a classified cause — an auth hint, a rate-limit hint, a context hint — or the
//! first line of the error detail — and the lines every transport puts in or under an answer:
//! the technical footer and the labels of the CLI's status events.

use crate::core::stream_event::TurnResult;
use crate::core::text::render;

/// Why a turn failed, as far as the user needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCause {
    /// Not logged in / key refused (401, unauthorized, ...).
    Auth,
    /// Rate limit or quota (429, too many requests, ...).
    RateLimit,
    /// The context is full.
    Context,
    /// Something else: the first line of the detail (≤ 200 characters).
    Detail(String),
}

/// The end of a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnOutcome {
    /// The answer text.
    Answer(String),
    /// Success without text.
    Empty,
    /// A failure.
    Failed(ErrorCause),
    /// The CLI ran past its deadline and was stopped.
    TimedOut {
        /// The deadline in seconds.
        seconds: u64,
    },
}

const AUTH: [&str; 7] = [
    "401",
    "unauthorized",
    "authentication",
    "sign in again",
    "token has been",
    "api key not valid",
    "invalid api key",
];
const RATE: [&str; 7] =
    ["429", "rate limit", "too many requests", "quota exceeded", "usage limit", "upgrade to pro", "hit your"];
const CONTEXT: [&str; 4] = ["context length", "token limit", "maximum context", "too long"];

/// Why a failed turn is retried once in a fresh session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The CLI does not know the session it was asked to resume.
    InvalidSession,
    /// The CLI was killed from outside (SIGKILL, e.g. the OOM killer).
    Killed,
}

const INVALID_SESSION: [&str; 5] =
    ["invalid session", "session not found", "no conversation found", "no rollout found", "thread/resume failed"];

/// Whether a failed turn goes through the recovery gate (core spec §4.2 step 2). A timeout is
/// not a kill from outside.
pub fn needs_recovery(result: &TurnResult) -> Option<Recovery> {
    if !result.is_error || result.result.starts_with("__TIMEOUT__") {
        return None;
    }
    let lower = result.result.to_lowercase();
    if INVALID_SESSION.iter().any(|marker| lower.contains(marker)) {
        Some(Recovery::InvalidSession)
    } else if result.returncode == Some(-9) {
        Some(Recovery::Killed)
    } else {
        None
    }
}

/// Classifies an error detail (and the HTTP status the CLI reported, if any).
pub fn classify_error(detail: &str, api_status: Option<u16>) -> ErrorCause {
    let lower = detail.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if matches!(api_status, Some(401 | 403)) || has(&AUTH) {
        ErrorCause::Auth
    } else if api_status == Some(429) || has(&RATE) {
        ErrorCause::RateLimit
    } else if has(&CONTEXT) {
        ErrorCause::Context
    } else {
        let first = detail.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown error");
        ErrorCause::Detail(first.chars().take(200).collect())
    }
}

/// The outcome of a folded turn result.
pub fn outcome(result: &TurnResult) -> TurnOutcome {
    if let Some(seconds) = result.result.strip_prefix("__TIMEOUT__").and_then(|s| s.parse().ok()) {
        return TurnOutcome::TimedOut { seconds };
    }
    if result.is_error {
        TurnOutcome::Failed(classify_error(&result.result, result.api_error_status))
    } else if result.result.trim().is_empty() {
        TurnOutcome::Empty
    } else {
        TurnOutcome::Answer(result.result.clone())
    }
}

/// The reply text for an outcome.
pub fn reply_text(outcome: &TurnOutcome, model: &str) -> String {
    match outcome {
        TurnOutcome::Answer(text) => text.clone(),
        TurnOutcome::Empty => render("session.empty_turn", &[]),
        TurnOutcome::TimedOut { seconds } => {
            render("timeout.error", &[("model", model), ("minutes", &(seconds / 60).max(1).to_string())])
        }
        TurnOutcome::Failed(cause) => {
            let cause = match cause {
                ErrorCause::Auth => render("session.error_auth", &[]),
                ErrorCause::RateLimit => render("session.error_rate", &[]),
                ErrorCause::Context => render("session.error_context", &[]),
                ErrorCause::Detail(line) => line.clone(),
            };
            format!(
                "{}\n{}\n\n{}",
                render("session.error_header", &[]),
                render("session.error_body", &[("model", model)]),
                cause
            )
        }
    }
}

/// The technical footer (`scene.technical_footer`, transports spec §5.9): model, tokens, cost
/// (only when above zero) and time, after a `---` line. `None` without a model.
pub fn technical_footer(model: &str, result: &crate::core::stream_event::TurnResult) -> Option<String> {
    if model.trim().is_empty() {
        return None;
    }
    let total = result.usage.total();
    let input = result.usage.input_tokens;
    let mut parts = vec![model.to_owned()];
    parts.push(crate::core::text::render(
        "footer.tokens",
        &[
            ("total", &total.to_string()),
            ("input", &input.to_string()),
            ("output", &total.saturating_sub(input).to_string()),
        ],
    ));
    if result.total_cost_usd > 0.0 {
        parts.push(format!("${:.4}", result.total_cost_usd));
    }
    if let Some(ms) = result.duration_ms {
        parts.push(format!("{:.1}s", ms as f64 / 1000.0));
    }
    Some(format!("\n---\n{}", parts.join(" | ")))
}

/// The label a system status shows in the stream (`None`: not shown).
pub fn status_label(status: &str, show_thinking: bool) -> Option<&'static str> {
    match status {
        "thinking" if show_thinking => Some("THINKING"),
        "compacting" => Some("COMPACTING"),
        "recovering" => Some("RECOVERING, PLEASE WAIT"),
        "timeout_warning" => Some("TIMEOUT APPROACHING"),
        "timeout_extended" => Some("TIMEOUT EXTENDED"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes() {
        assert_eq!(classify_error("HTTP 429 Too Many Requests", None), ErrorCause::RateLimit);
        assert_eq!(classify_error("You've hit your usage limit", None), ErrorCause::RateLimit);
        assert_eq!(classify_error("Invalid API key · Fix external API key", Some(401)), ErrorCause::Auth);
        assert_eq!(classify_error("prompt is too long: 210000 tokens", None), ErrorCause::Context);
        assert_eq!(classify_error("\nboom\nmore", None), ErrorCause::Detail("boom".into()));
    }

    #[test]
    fn a_timeout_says_so_in_minutes() {
        let result = TurnResult { is_error: true, result: "__TIMEOUT__1800".into(), ..TurnResult::default() };
        assert_eq!(outcome(&result), TurnOutcome::TimedOut { seconds: 1800 });
        assert_eq!(reply_text(&outcome(&result), "opus"), "opus did not finish within 30 min and was stopped.");
    }

    #[test]
    fn reply_contains_header_body_and_hint() {
        let text = reply_text(&TurnOutcome::Failed(ErrorCause::RateLimit), "opus");
        assert!(text.contains("opus could not answer") && text.contains("rate limit"), "{text}");
    }

    #[test]
    fn footer_parts() {
        let mut result = crate::core::stream_event::TurnResult::default();
        result.usage.input_tokens = 120;
        result.usage.output_tokens = 12;
        result.total_cost_usd = 0.00072;
        result.duration_ms = Some(1530);
        let footer = technical_footer("opus", &result).unwrap();
        assert_eq!(
            footer,
            format!(
                "\n---\nopus | {} | $0.0007 | 1.5s",
                crate::core::text::render(
                    "footer.tokens",
                    &[
                        ("total", &result.usage.total().to_string()),
                        ("input", "120"),
                        ("output", &(result.usage.total() - 120).to_string())
                    ]
                )
            )
        );
        result.total_cost_usd = 0.0;
        assert!(!technical_footer("opus", &result).unwrap().contains('$'), "no cost when zero");
        assert_eq!(technical_footer("", &result), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(status_label("thinking", true), Some("THINKING"));
        assert_eq!(status_label("thinking", false), None);
        assert_eq!(status_label("timeout_warning", false), Some("TIMEOUT APPROACHING"));
        assert_eq!(status_label("other", true), None);
    }
}

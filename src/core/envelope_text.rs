//! What a delivered envelope says in a chat (transports spec §2.13, the same on every
//! messenger): the text per origin — named-session results, cron results (sanitised),
//! heartbeats, inter-agent answers, task notes, webhooks — and the `ns:<name>:<label>` buttons
//! of a named session's answer. Pure Markdown; each transport renders it its own way.

use crate::core::buttons::{CALLBACK_DATA_MAX, keyboard_with, truncate_bytes};
use crate::core::envelope::{Envelope, Origin};
use crate::core::selector::ButtonGrid;

/// The separator line between a header and a body.
const SEP: &str = "---";

fn meta<'a>(envelope: &'a Envelope, key: &str) -> &'a str {
    envelope.metadata.get(key).and_then(|v| v.as_str()).unwrap_or_default()
}

/// Drops the lines a cron agent writes about having delivered its own message (§4.5).
pub fn sanitize_cron(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let folded = line.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
            !(folded.contains("message sent successfully") && folded.contains("delivered to telegram"))
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

fn seconds(envelope: &Envelope) -> String {
    format!("{:.0}s", envelope.elapsed_seconds.max(0.0))
}

fn cron_text(envelope: &Envelope, title: &str, header: &str) -> Option<String> {
    let clean = sanitize_cron(&envelope.result_text);
    if clean.is_empty() && !envelope.result_text.trim().is_empty() && envelope.status == "success" {
        return None;
    }
    let body = if clean.is_empty() { format!("_{}_", envelope.status) } else { clean };
    Some(format!("**{header}: {title}**\n\n{body}"))
}

/// The text of a UNICAST envelope; `None` when nothing is to be shown.
pub fn unicast_text(envelope: &Envelope) -> Option<String> {
    let text = envelope.result_text.trim();
    match envelope.origin {
        Origin::Background if !envelope.session_name.is_empty() => {
            let name = &envelope.session_name;
            Some(if envelope.status == "aborted" {
                format!("**[{name}] Cancelled**\n{SEP}\n_{}_", envelope.prompt_preview)
            } else if envelope.is_error {
                let cut: String = text.chars().take(2000).collect();
                format!("**[{name}] Failed** ({})\n{SEP}\n{cut}", seconds(envelope))
            } else {
                let body = if text.is_empty() { "_No output._" } else { text };
                format!("**[{name}] Complete** ({})\n{SEP}\n{body}", seconds(envelope))
            })
        }
        Origin::Background => {
            let task = meta(envelope, "task_id");
            let (title, body) = if envelope.status == "aborted" {
                ("Background Task Cancelled".to_owned(), format!("_{}_", envelope.prompt_preview))
            } else if envelope.is_error {
                (format!("Background Task Failed ({})", seconds(envelope)), text.to_owned())
            } else {
                (format!("Background Task Complete ({})", seconds(envelope)), text.to_owned())
            };
            Some(format!("**{title}** `{task}`\n{SEP}\n{body}"))
        }
        Origin::Cron => cron_text(envelope, meta(envelope, "title"), "TASK"),
        Origin::WebhookCron => cron_text(envelope, meta(envelope, "hook_title"), "WEBHOOK (CRON TASK)"),
        Origin::TaskResult => {
            let name = meta(envelope, "name");
            let note = match envelope.status.as_str() {
                "timeout" => return None,
                "cancelled" => format!("**Task `{name}` cancelled**"),
                "failed" => format!("**Task `{name}` failed**: {}", meta(envelope, "error")),
                _ => format!(
                    "**Task `{name}` completed** ({}, {}/{})",
                    seconds(envelope),
                    envelope.provider,
                    envelope.model
                ),
            };
            Some(if text.is_empty() { note } else { format!("{note}\n\n{text}") })
        }
        Origin::TaskQuestion => {
            let question = format!("**Task `{}` has a question:**\n{}", meta(envelope, "task_id"), envelope.prompt);
            Some(if text.is_empty() { question } else { format!("{question}\n\n{text}") })
        }
        Origin::Interagent if envelope.is_error => Some(format!(
            "**Inter-Agent Request Failed**\nAgent: {}\nError: {}\nRequest: {}",
            meta(envelope, "recipient"),
            if meta(envelope, "error").is_empty() { text } else { meta(envelope, "error") },
            envelope.prompt_preview
        )),
        Origin::Interagent => {
            let notice = meta(envelope, "provider_switch_notice");
            Some(if notice.is_empty() {
                text.to_owned()
            } else {
                format!("**Provider Switch Detected**\n{notice}\n\n{text}")
            })
        }
        _ if text.is_empty() => None,
        _ => Some(text.to_owned()),
    }
}

/// The text of a BROADCAST envelope; `None` for origins that have no broadcast form.
pub fn broadcast_text(envelope: &Envelope) -> Option<String> {
    match envelope.origin {
        Origin::Cron => cron_text(envelope, meta(envelope, "title"), "TASK"),
        Origin::WebhookCron => cron_text(envelope, meta(envelope, "hook_title"), "WEBHOOK (CRON TASK)"),
        Origin::Supervisor | Origin::Recovery => unicast_text(envelope),
        _ => None,
    }
}

/// The keyboard of an envelope's text: a named session's `[button:…]` markers become
/// `ns:<name>:<label>` follow-up buttons; others keep the label as data.
pub fn keyboard(envelope: &Envelope, text: &str) -> ButtonGrid {
    if envelope.origin == Origin::Background && !envelope.session_name.is_empty() {
        let name = envelope.session_name.clone();
        keyboard_with(text, move |label| truncate_bytes(&format!("ns:{name}:{label}"), CALLBACK_DATA_MAX).to_owned())
    } else {
        crate::core::buttons::keyboard(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::session_key::ChatId;

    fn envelope(origin: Origin, status: &str, text: &str) -> Envelope {
        Envelope {
            origin,
            chat_id: ChatId(5),
            result_text: text.to_owned(),
            status: status.to_owned(),
            elapsed_seconds: 12.4,
            ..Envelope::default()
        }
    }

    #[test]
    fn cron_results_are_headed_and_self_reports_dropped() {
        let mut e =
            envelope(Origin::Cron, "success", "Report ready.\nMessage sent   SUCCESSFULLY and delivered to Telegram.");
        e.metadata.insert("title".into(), "Daily".into());
        assert_eq!(unicast_text(&e).unwrap(), "**TASK: Daily**\n\nReport ready.");
        assert_eq!(broadcast_text(&e), unicast_text(&e));
        e.result_text = "message sent successfully, delivered to telegram".into();
        assert_eq!(unicast_text(&e), None, "only the self-report: nothing to send");
        e.result_text = String::new();
        e.status = "error: timeout".into();
        assert_eq!(unicast_text(&e).unwrap(), "**TASK: Daily**\n\n_error: timeout_");
    }

    #[test]
    fn named_session_results_and_their_buttons() {
        let mut e = envelope(Origin::Background, "success", "Done.\n[button:Again]");
        e.session_name = "redowl".into();
        assert_eq!(unicast_text(&e).unwrap(), "**[redowl] Complete** (12s)\n---\nDone.\n[button:Again]");
        assert_eq!(keyboard(&e, &e.result_text)[0][0].callback_data, "ns:redowl:Again");
        e.is_error = true;
        assert!(unicast_text(&e).unwrap().starts_with("**[redowl] Failed** (12s)"));
        assert_eq!(broadcast_text(&e), None, "no broadcast form");
    }

    #[test]
    fn task_notes() {
        let mut e = envelope(Origin::TaskResult, "done", "Summary for you.");
        e.metadata.insert("name".into(), "flights".into());
        e.provider = "claude".into();
        e.model = "sonnet".into();
        assert_eq!(unicast_text(&e).unwrap(), "**Task `flights` completed** (12s, claude/sonnet)\n\nSummary for you.");
        e.status = "timeout".into();
        assert_eq!(unicast_text(&e), None);
    }
}

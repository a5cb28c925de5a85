//! What a chat receives from an unattended run (ops spec §7.8, §8.6): the cron result
//! (`**TASK: <title>**` and the cleaned text, or the status when there is none; nothing for a
//! silent success or an answer that only confirmed a delivery), the webhook `cron_task` result
//! (`**WEBHOOK (CRON TASK): <title>**`), and the notice for a run cut by a crash or a stop —
//! each as the Envelope that goes to the Bus, with the run's id as its delivery key.

use crate::core::envelope::{DeliveryMode, Envelope, Origin};
use crate::core::session_key::ChatId;

/// The status of a run cut while its CLI ran (a crash, a kill, a stop of ductor).
pub const STATUS_INTERRUPTED: &str = "error:interrupted";

/// Where a cron result goes: one chat (a topic of it) on a transport, or everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronTarget {
    /// Target chat; 0 = every allowed user of every transport.
    pub chat_id: ChatId,
    /// Forum topic.
    pub topic_id: Option<i64>,
    /// Transport short name (`tg` when unset).
    pub transport: String,
}

/// A finished cron run, as far as its delivery goes.
#[derive(Debug, Clone, PartialEq)]
pub struct CronOutcome<'a> {
    /// The run id (the delivery key).
    pub run: &'a str,
    /// The job's title (its id when it was removed meanwhile).
    pub title: &'a str,
    /// `success`, `error:exit_3`, ...
    pub status: &'a str,
    /// The CLI's answer.
    pub text: &'a str,
    /// The job asked for no message on success.
    pub silent_on_success: bool,
    /// Where it goes.
    pub target: &'a CronTarget,
}

/// Whether a line only confirms a delivery (the agent telling us it sent a message).
fn is_delivery_ack(line: &str) -> bool {
    let folded = line.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    folded.contains("message sent successfully") && folded.contains("delivered to telegram")
}

/// The answer without the lines that only confirm a delivery.
pub fn without_delivery_acks(text: &str) -> String {
    text.lines().filter(|line| !is_delivery_ack(line)).collect::<Vec<_>>().join("\n").trim().to_owned()
}

/// The Envelope of a finished cron run; `None` when nothing is to be sent (a silent success,
/// or a successful answer that only confirmed a delivery).
pub fn cron_result(outcome: &CronOutcome<'_>) -> Option<Envelope> {
    let success = outcome.status == "success";
    if success && outcome.silent_on_success {
        return None;
    }
    let clean = without_delivery_acks(outcome.text);
    if success && clean.is_empty() && !outcome.text.trim().is_empty() {
        return None;
    }
    let body = if clean.is_empty() { format!("_{}_", outcome.status) } else { clean };
    let text = format!("**TASK: {}**\n\n{body}", outcome.title);
    Some(envelope(Origin::Cron, outcome.run, outcome.title, outcome.status, text, Some(outcome.target)))
}

/// The Envelope of a finished webhook `cron_task` run: always sent, to everyone.
pub fn webhook_task_result(run: &str, title: &str, status: &str, text: &str) -> Envelope {
    let text = text.trim();
    let body = if text.is_empty() { format!("_{status}_") } else { text.to_owned() };
    let text = format!("**WEBHOOK (CRON TASK): {title}**\n\n{body}");
    envelope(Origin::WebhookCron, run, title, status, text, None)
}

/// The Envelope saying a run was cut while its CLI ran (it is not run again); cron runs go to
/// the job's target, webhook runs to everyone.
pub fn cut_run(run: &str, title: &str, webhook: bool, target: Option<&CronTarget>) -> Envelope {
    let header = if webhook { "WEBHOOK (CRON TASK)" } else { "TASK" };
    let text = format!(
        "**{header}: {title}**\n\n_{STATUS_INTERRUPTED}_ — ductor stopped while this run was working; it was not run again."
    );
    let origin = if webhook { Origin::WebhookCron } else { Origin::Cron };
    envelope(origin, run, title, STATUS_INTERRUPTED, text, target.filter(|_| !webhook))
}

fn envelope(
    origin: Origin,
    run: &str,
    title: &str,
    status: &str,
    text: String,
    target: Option<&CronTarget>,
) -> Envelope {
    let mut envelope = Envelope {
        origin,
        result_text: text,
        status: status.to_owned(),
        is_error: status != "success",
        ..Envelope::default()
    };
    envelope.metadata.insert("title".into(), title.into());
    match target.filter(|t| t.chat_id.get() != 0) {
        Some(target) => {
            envelope.delivery = DeliveryMode::Unicast;
            envelope.chat_id = target.chat_id;
            envelope.topic_id = target.topic_id;
            envelope.transport = if target.transport.is_empty() { "tg".to_owned() } else { target.transport.clone() };
        }
        None => {
            envelope.delivery = DeliveryMode::Broadcast;
            envelope.transport = String::new();
        }
    }
    envelope.with_delivery_key(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::outbox::delivery_key;

    fn target(chat: i128, topic: Option<i64>) -> CronTarget {
        CronTarget { chat_id: ChatId(chat), topic_id: topic, transport: "tg".into() }
    }

    fn outcome<'a>(status: &'a str, text: &'a str, silent: bool, target: &'a CronTarget) -> CronOutcome<'a> {
        CronOutcome { run: "cron:t:1", title: "t", status, text, silent_on_success: silent, target }
    }

    #[test]
    fn a_result_goes_to_its_chat_and_topic_with_its_title() {
        let to = target(1001, Some(7));
        let envelope = cron_result(&outcome("success", "hi", false, &to)).unwrap();
        assert_eq!(envelope.result_text, "**TASK: t**\n\nhi");
        assert_eq!(
            (envelope.delivery, envelope.chat_id, envelope.topic_id),
            (DeliveryMode::Unicast, ChatId(1001), Some(7))
        );
        assert_eq!(envelope.origin, Origin::Cron);
        assert_eq!(delivery_key(&envelope), Some("cron:t:1"));
        assert!(!envelope.is_error);
    }

    #[test]
    fn chat_zero_is_everyone_and_an_empty_failure_shows_its_status() {
        let to = target(0, None);
        let envelope = cron_result(&outcome("error:exit_3", "", false, &to)).unwrap();
        assert_eq!(envelope.result_text, "**TASK: t**\n\n_error:exit_3_");
        assert_eq!((envelope.delivery, envelope.transport.as_str()), (DeliveryMode::Broadcast, ""));
        assert!(envelope.is_error);
    }

    #[test]
    fn silence_on_success_and_answers_that_only_confirm_a_delivery() {
        let to = target(1, None);
        assert_eq!(cron_result(&outcome("success", "hi", true, &to)), None);
        assert!(cron_result(&outcome("error:exit_1", "boom", true, &to)).is_some(), "errors always go");
        let ack = "Message sent  successfully, DELIVERED to Telegram";
        assert_eq!(cron_result(&outcome("success", ack, false, &to)), None);
        let mixed = format!("Report: 3 new\n{ack}");
        assert_eq!(
            cron_result(&outcome("success", &mixed, false, &to)).unwrap().result_text,
            "**TASK: t**\n\nReport: 3 new"
        );
    }

    #[test]
    fn webhook_results_and_cut_runs() {
        let envelope = webhook_task_result("hook:gh:1", "Push", "skipped:quiet_hours", "");
        assert_eq!(envelope.result_text, "**WEBHOOK (CRON TASK): Push**\n\n_skipped:quiet_hours_");
        assert_eq!((envelope.origin, envelope.delivery), (Origin::WebhookCron, DeliveryMode::Broadcast));
        let to = target(5, None);
        let cut = cut_run("cron:t:1", "t", false, Some(&to));
        assert!(cut.result_text.starts_with("**TASK: t**\n\n_error:interrupted_"), "{}", cut.result_text);
        assert_eq!((cut.chat_id, cut.status.as_str()), (ChatId(5), STATUS_INTERRUPTED));
        assert_eq!(delivery_key(&cut), Some("cron:t:1"), "the cut notice takes the result's place");
    }
}

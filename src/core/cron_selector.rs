//! The cron selector (`/cron`, callback prefix `crn:`, core spec §5.3): six jobs per page, a
//! toggle button per job that carries a fingerprint of the job id so a press on a stale menu
//! cannot toggle the wrong job, page navigation, refresh, all on and all off. Pure: the caller
//! loads and saves `cron_jobs.json`.

use crate::core::blake2s::fingerprint32;
use crate::core::selector::{Button, ButtonGrid, Menu};
use crate::core::state::cron_jobs::CronJob;
use crate::core::text::render;

/// Jobs per page.
pub const PAGE_SIZE: usize = 6;

/// A pressed `crn:` button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronAction {
    /// Toggle the job at `slot` of `page`, if its id still has fingerprint `fingerprint`.
    Toggle {
        /// Page shown when pressed.
        page: usize,
        /// Position on that page.
        slot: usize,
        /// `fingerprint32` of the job id.
        fingerprint: String,
    },
    /// Show a page (previous, next or refresh).
    Show(usize),
    /// Enable every job, then show the page.
    AllOn(usize),
    /// Disable every job, then show the page.
    AllOff(usize),
    /// Not a `crn:` action this build knows.
    Unknown,
}

/// Parses `crn:` callback data.
pub fn action(data: &str) -> CronAction {
    let Some(rest) = data.strip_prefix("crn:") else { return CronAction::Unknown };
    let parts: Vec<&str> = rest.split(':').collect();
    let page = |text: &str| text.parse::<usize>().ok();
    match parts.as_slice() {
        ["t", p, s, fp] => match (page(p), page(s)) {
            (Some(page), Some(slot)) => CronAction::Toggle { page, slot, fingerprint: (*fp).to_owned() },
            _ => CronAction::Unknown,
        },
        ["p" | "n" | "r", p] => page(p).map_or(CronAction::Unknown, CronAction::Show),
        ["ao", p] => page(p).map_or(CronAction::Unknown, CronAction::AllOn),
        ["af", p] => page(p).map_or(CronAction::Unknown, CronAction::AllOff),
        _ => CronAction::Unknown,
    }
}

/// What pressing a button did to the job list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The page to show now.
    pub page: usize,
    /// A line above the list saying what happened.
    pub note: Option<String>,
    /// Whether `cron_jobs.json` must be saved (and the schedule rebuilt).
    pub changed: bool,
}

/// Carries out `action` on `jobs`.
pub fn apply(jobs: &mut [CronJob], action: &CronAction) -> Applied {
    let show = |page, note: Option<String>, changed| Applied { page, note, changed };
    match action {
        CronAction::Toggle { page, slot, fingerprint } => {
            let index = page * PAGE_SIZE + slot;
            match jobs.get_mut(index).filter(|job| *slot < PAGE_SIZE && fingerprint32(&job.id) == *fingerprint) {
                Some(job) => {
                    job.enabled = !job.enabled;
                    let key = if job.enabled { "cron.resumed" } else { "cron.paused" };
                    show(*page, Some(render(key, &[("title", title(job))])), true)
                }
                None => show(*page, Some(render("cron.list_changed", &[])), false),
            }
        }
        CronAction::Show(page) => show(*page, None, false),
        CronAction::AllOn(page) | CronAction::AllOff(page) => {
            let on = matches!(action, CronAction::AllOn(_));
            let changed = jobs.iter().any(|job| job.enabled != on);
            jobs.iter_mut().for_each(|job| job.enabled = on);
            let key = if on { "cron.all_on" } else { "cron.all_off" };
            show(*page, Some(render(key, &[("count", &jobs.len().to_string())])), changed)
        }
        CronAction::Unknown => show(0, Some(render("selector.unknown", &[])), false),
    }
}

fn title(job: &CronJob) -> &str {
    if job.title.trim().is_empty() { &job.id } else { &job.title }
}

fn pages(jobs: &[CronJob]) -> usize {
    jobs.len().div_ceil(PAGE_SIZE).max(1)
}

/// The menu for `page` (clamped to the last page); `next_fire` gives the text of a job's next
/// fire (`Fri 05 Dec 09:00 CET`), or why it has none.
pub fn menu(jobs: &[CronJob], page: usize, note: Option<&str>, next_fire: &dyn Fn(&CronJob) -> Option<String>) -> Menu {
    let page = page.min(pages(jobs) - 1);
    let mut text = String::new();
    if let Some(note) = note {
        text.push_str(note);
        text.push_str("\n\n");
    }
    if jobs.is_empty() {
        text.push_str(&render("cron.none", &[]));
        return Menu { text, buttons: vec![vec![button("Refresh", "crn:r:0".to_owned())]] };
    }
    text.push_str(&render("cron.header", &[]));
    let first = page * PAGE_SIZE;
    let shown = &jobs[first..(first + PAGE_SIZE).min(jobs.len())];
    let mut toggles: Vec<Button> = Vec::new();
    for (slot, job) in shown.iter().enumerate() {
        let number = first + slot + 1;
        let state = if job.enabled { "active" } else { "paused" };
        let last = job.last_run_status.as_deref().unwrap_or("never run");
        text.push_str(&format!("\n{number}. **{}** — {state} · last: {last}", title(job)));
        if let Some(next) = next_fire(job).filter(|_| job.enabled) {
            text.push_str(&format!(" · next: {next}"));
        }
        text.push_str(&format!("\n   `{}`", job.schedule));
        if let Some(chat) = job.chat_id.filter(|chat| chat.0 != 0) {
            text.push_str(&format!(" → Chat {chat}"));
            if let Some(topic) = job.topic_id {
                text.push_str(&format!(" / Topic {topic}"));
            }
        }
        let label = format!("{number} {}", if job.enabled { "pause" } else { "resume" });
        toggles.push(button(&label, format!("crn:t:{page}:{slot}:{}", fingerprint32(&job.id))));
    }
    if pages(jobs) > 1 {
        text.push_str(&format!("\n\nPage {}/{}", page + 1, pages(jobs)));
    }
    let mut buttons: ButtonGrid = toggles.chunks(3).map(<[Button]>::to_vec).collect();
    let mut navigation = Vec::new();
    if page > 0 {
        navigation.push(button("« Prev", format!("crn:p:{}", page - 1)));
    }
    navigation.push(button("Refresh", format!("crn:r:{page}")));
    if page + 1 < pages(jobs) {
        navigation.push(button("Next »", format!("crn:n:{}", page + 1)));
    }
    buttons.push(navigation);
    buttons.push(vec![button("All on", format!("crn:ao:{page}")), button("All off", format!("crn:af:{page}"))]);
    Menu { text, buttons }
}

fn button(text: &str, callback_data: String) -> Button {
    Button::callback(text, callback_data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::session_key::ChatId;

    fn job(id: &str, enabled: bool) -> CronJob {
        serde_json::from_value(
            serde_json::json!({"id": id, "title": id.to_uppercase(), "schedule": "0 9 * * *", "enabled": enabled}),
        )
        .unwrap()
    }

    fn data(menu: &Menu) -> Vec<Vec<String>> {
        menu.buttons.iter().map(|row| row.iter().map(|b| b.callback_data.clone()).collect()).collect()
    }

    #[test]
    fn parses_every_action_and_refuses_garbage() {
        assert_eq!(
            action("crn:t:1:2:34e9b89b"),
            CronAction::Toggle { page: 1, slot: 2, fingerprint: "34e9b89b".into() }
        );
        assert_eq!(action("crn:p:0"), CronAction::Show(0));
        assert_eq!(action("crn:n:3"), CronAction::Show(3));
        assert_eq!(action("crn:r:2"), CronAction::Show(2));
        assert_eq!(action("crn:ao:1"), CronAction::AllOn(1));
        assert_eq!(action("crn:af:0"), CronAction::AllOff(0));
        for bad in ["crn:t:x:1:ab", "crn:p:-1", "crn:zz:1", "crn:", "nsc:r", "crn:t:1:1"] {
            assert_eq!(action(bad), CronAction::Unknown, "{bad}");
        }
    }

    #[test]
    fn pages_of_six_with_navigation_and_routing() {
        let mut jobs: Vec<CronJob> = (0..8).map(|i| job(&format!("job{i}"), i % 2 == 0)).collect();
        jobs[0].chat_id = Some(ChatId(-100123));
        jobs[0].topic_id = Some(7);
        jobs[1].last_run_status = Some("success".into());
        let first = menu(&jobs, 0, None, &|_| None);
        assert!(first.text.starts_with("**Cron jobs**\n1. **JOB0** — active · last: never run"), "{}", first.text);
        assert!(first.text.contains("`0 9 * * *` → Chat -100123 / Topic 7"));
        assert!(first.text.contains("2. **JOB1** — paused · last: success"));
        assert!(first.text.ends_with("Page 1/2"));
        let rows = data(&first);
        assert_eq!(rows[0][0], format!("crn:t:0:0:{}", fingerprint32("job0")));
        assert_eq!(rows[1].len(), 3, "six toggles in rows of three");
        assert_eq!(rows[2], ["crn:r:0", "crn:n:1"]);
        assert_eq!(rows[3], ["crn:ao:0", "crn:af:0"]);
        let second = menu(&jobs, 1, Some("note"), &|_| None);
        assert!(second.text.starts_with("note\n\n**Cron jobs**\n7. **JOB6**"));
        assert_eq!(
            data(&second)[0],
            [format!("crn:t:1:0:{}", fingerprint32("job6")), format!("crn:t:1:1:{}", fingerprint32("job7"))]
        );
        assert_eq!(data(&second)[1], ["crn:p:0", "crn:r:1"]);
        assert_eq!(menu(&jobs, 9, None, &|_| None).text, second.text.trim_start_matches("note\n\n"), "page clamped");
        assert!(menu(&[], 0, None, &|_| None).text.contains("No cron jobs."));
    }

    #[test]
    fn active_jobs_show_their_next_fire() {
        let jobs = vec![job("on", true), job("off", false)];
        let text = menu(&jobs, 0, None, &|job| Some(format!("soon for {}", job.id))).text;
        assert!(text.contains("1. **ON** — active · last: never run · next: soon for on\n"), "{text}");
        assert!(text.contains("2. **OFF** — paused · last: never run\n"), "a paused job has no next fire: {text}");
    }

    #[test]
    fn toggles_only_the_fingerprinted_job() {
        let mut jobs = vec![job("a", true), job("b", true)];
        let pressed = action(&format!("crn:t:0:1:{}", fingerprint32("b")));
        let applied = apply(&mut jobs, &pressed);
        assert!(applied.changed);
        assert!(!jobs[1].enabled && jobs[0].enabled);
        assert_eq!(applied.note.as_deref(), Some("Paused B."));
        // The list changed under the menu: the same slot now holds another job.
        jobs.remove(0);
        jobs.push(job("c", true));
        let stale = apply(&mut jobs, &action(&format!("crn:t:0:1:{}", fingerprint32("b"))));
        assert!(!stale.changed);
        assert!(jobs[1].enabled, "job c untouched");
        assert_eq!(stale.note.as_deref(), Some(render("cron.list_changed", &[]).as_str()));
        assert!(!apply(&mut jobs, &action("crn:t:0:9:00000000")).changed);
    }

    #[test]
    fn all_on_and_all_off() {
        let mut jobs = vec![job("a", true), job("b", false)];
        assert!(apply(&mut jobs, &CronAction::AllOff(0)).changed);
        assert!(jobs.iter().all(|j| !j.enabled));
        assert!(!apply(&mut jobs, &CronAction::AllOff(0)).changed, "nothing to change");
        assert!(apply(&mut jobs, &CronAction::AllOn(0)).changed);
        assert!(jobs.iter().all(|j| j.enabled));
    }
}

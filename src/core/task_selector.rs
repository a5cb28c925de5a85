//! The task selector (`/tasks`, callback prefix `tsc:`, core spec §5.3): a chat's background
//! tasks grouped as running, waiting and finished, with cancel, cancel-all, refresh and
//! clean-up buttons. Pure: the caller loads and saves `tasks.json` and deletes the folders
//! `apply` names.

use crate::core::chat_status::age_text;
use crate::core::selector::{Button, ButtonGrid, Menu};
use crate::core::state::tasks::TaskRecord;
use crate::core::text::render;

/// A pressed `tsc:` button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskAction {
    /// Cancel one running task.
    Cancel(String),
    /// Cancel every running task of the chat.
    CancelAll,
    /// Show the list again.
    Refresh,
    /// Delete the chat's finished tasks and their folders.
    Cleanup,
    /// Not a `tsc:` action this build knows.
    Unknown,
}

/// Parses `tsc:` callback data.
pub fn action(data: &str) -> TaskAction {
    match data.strip_prefix("tsc:") {
        Some("r") => TaskAction::Refresh,
        Some("cancelall") => TaskAction::CancelAll,
        Some("cleanup") => TaskAction::Cleanup,
        Some(rest) => match rest.strip_prefix("cancel:") {
            Some(id) if !id.is_empty() => TaskAction::Cancel(id.to_owned()),
            _ => TaskAction::Unknown,
        },
        None => TaskAction::Unknown,
    }
}

fn text_field<'a>(task: &'a TaskRecord, key: &str) -> &'a str {
    task.extra.get(key).and_then(|v| v.as_str()).unwrap_or_default()
}

fn number_field(task: &TaskRecord, key: &str) -> Option<f64> {
    task.extra.get(key).and_then(serde_json::Value::as_f64)
}

fn is_finished(task: &TaskRecord) -> bool {
    matches!(task.status.as_str(), "done" | "failed" | "cancelled")
}

fn shorten(text: &str, limit: usize) -> String {
    let text = text.trim().replace('\n', " ");
    if text.chars().count() <= limit {
        return text;
    }
    let cut: String = text.chars().take(limit.saturating_sub(3)).collect();
    format!("{cut}...")
}

fn seconds(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 { value as u64 } else { 0 }
}

fn line(task: &TaskRecord, now: f64) -> String {
    let icon = match task.status.as_str() {
        "running" => "[...]",
        "done" => "[OK]",
        "failed" => "[FAIL]",
        "cancelled" => "[X]",
        _ => "[?]",
    };
    let name = if task.name.is_empty() { &task.task_id } else { &task.name };
    let when = if task.status == "running" {
        format!("running {}", age_text(seconds(now - task.created_at)))
    } else {
        let since = number_field(task, "completed_at").filter(|t| *t > 0.0).unwrap_or(task.created_at);
        format!("{} {} ago", task.status, age_text(seconds(now - since)))
    };
    let mut line = format!("{icon} **{name}** — {}/{} · {when}", task.provider, task.model);
    let error = text_field(task, "error");
    if !error.trim().is_empty() {
        line.push_str(&format!("\n   {}", shorten(error, 80)));
    }
    if task.status == "waiting" {
        let question = text_field(task, "last_question");
        if !question.trim().is_empty() {
            line.push_str(&format!("\n   Q: {}", shorten(question, 80)));
        }
    }
    line
}

/// The menu of `tasks` (the chat's tasks) at unix time `now`; `note` goes first.
pub fn menu(tasks: &[&TaskRecord], now: f64, note: Option<&str>) -> Menu {
    let mut text = String::new();
    if let Some(note) = note {
        text.push_str(note);
        text.push_str("\n\n");
    }
    let running: Vec<&&TaskRecord> = tasks.iter().filter(|t| t.status == "running").collect();
    let finished: Vec<&&TaskRecord> = tasks.iter().filter(|t| is_finished(t)).collect();
    let waiting: Vec<&&TaskRecord> = tasks.iter().filter(|t| t.status != "running" && !is_finished(t)).collect();
    if tasks.is_empty() {
        text.push_str(&render("tasks.none", &[]));
    } else {
        text.push_str(&render("tasks.header", &[]));
        for (title, group) in [("Running", &running), ("Waiting", &waiting), ("Finished", &finished)] {
            if group.is_empty() {
                continue;
            }
            text.push_str(&format!("\n\n__{title}__"));
            for task in group.iter() {
                text.push('\n');
                text.push_str(&line(task, now));
            }
        }
        text.push_str(&format!(
            "\n\nRunning: {} · Waiting: {} · Finished: {}",
            running.len(),
            waiting.len(),
            finished.len()
        ));
    }
    let mut buttons: ButtonGrid = running
        .iter()
        .map(|t| {
            let name = if t.name.is_empty() { &t.task_id } else { &t.name };
            vec![button(&format!("Cancel {name}"), format!("tsc:cancel:{}", t.task_id))]
        })
        .collect();
    let mut last_row = Vec::new();
    if running.len() > 1 {
        last_row.push(button("Cancel all", "tsc:cancelall".to_owned()));
    }
    last_row.push(button("Refresh", "tsc:r".to_owned()));
    if !finished.is_empty() {
        last_row.push(button("Clean up", "tsc:cleanup".to_owned()));
    }
    buttons.push(last_row);
    Menu { text, buttons }
}

/// What pressing a button did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// A line above the list saying what happened.
    pub note: Option<String>,
    /// Whether `tasks.json` must be saved.
    pub changed: bool,
    /// Ids of running tasks to stop.
    pub cancelled: Vec<String>,
    /// Task folders to delete.
    pub remove_folders: Vec<String>,
}

/// Carries out `action` on the registry for `chat` (tasks of other chats are never touched).
/// A cancelled task is marked `cancelled` with `completed_at = now`.
pub fn apply(
    tasks: &mut Vec<TaskRecord>,
    chat: crate::core::session_key::ChatId,
    action: &TaskAction,
    now: f64,
) -> Applied {
    let mut applied = Applied::default();
    let mut cancel = |task: &mut TaskRecord| {
        task.status = "cancelled".to_owned();
        task.extra.insert("completed_at".to_owned(), serde_json::json!(now));
        applied.cancelled.push(task.task_id.clone());
    };
    match action {
        TaskAction::Cancel(id) => {
            match tasks.iter_mut().find(|t| t.chat_id == chat && t.task_id == *id && t.status == "running") {
                Some(task) => cancel(task),
                None => applied.note = Some(render("tasks.not_running", &[("id", id)])),
            }
        }
        TaskAction::CancelAll => {
            tasks.iter_mut().filter(|t| t.chat_id == chat && t.status == "running").for_each(cancel)
        }
        TaskAction::Cleanup => {
            let before = tasks.len();
            tasks.retain(|t| {
                let drop = t.chat_id == chat && is_finished(t);
                if drop {
                    applied.remove_folders.push(t.folder());
                }
                !drop
            });
            applied.changed = tasks.len() != before;
            applied.note = Some(render("tasks.cleaned", &[("count", &(before - tasks.len()).to_string())]));
        }
        TaskAction::Refresh => {}
        TaskAction::Unknown => applied.note = Some(render("selector.unknown", &[])),
    }
    if !applied.cancelled.is_empty() {
        applied.changed = true;
        applied.note = Some(render("tasks.cancelled", &[("count", &applied.cancelled.len().to_string())]));
    }
    applied
}

fn button(text: &str, callback_data: String) -> Button {
    Button::callback(text, callback_data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::session_key::ChatId;

    fn task(id: &str, chat: i64, status: &str, extra: serde_json::Value) -> TaskRecord {
        let mut value = serde_json::json!({"task_id": id, "chat_id": chat, "name": format!("n{id}"), "provider": "claude",
            "model": "sonnet", "status": status, "created_at": 1000.0, "tasks_dir": "/h/workspace/tasks"});
        if let (Some(map), Some(more)) = (value.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn parses_actions() {
        assert_eq!(action("tsc:cancel:ab12cd34"), TaskAction::Cancel("ab12cd34".into()));
        assert_eq!(action("tsc:cancelall"), TaskAction::CancelAll);
        assert_eq!(action("tsc:r"), TaskAction::Refresh);
        assert_eq!(action("tsc:cleanup"), TaskAction::Cleanup);
        for bad in ["tsc:cancel:", "tsc:x", "nsc:r", "tsc:"] {
            assert_eq!(action(bad), TaskAction::Unknown, "{bad}");
        }
    }

    #[test]
    fn groups_lines_buttons_and_summary() {
        let long_error = "e".repeat(200);
        let tasks = [
            task("a1", 1, "running", serde_json::json!({})),
            task("b2", 1, "running", serde_json::json!({})),
            task("c3", 1, "waiting", serde_json::json!({"last_question": "Which airport?"})),
            task("d4", 1, "failed", serde_json::json!({"error": long_error, "completed_at": 1100.0})),
            task("e5", 1, "done", serde_json::json!({"completed_at": 4600.0})),
        ];
        let refs: Vec<&TaskRecord> = tasks.iter().collect();
        let menu = menu(&refs, 1090.0, None);
        assert!(
            menu.text.starts_with("**Background tasks**\n\n__Running__\n[...] **na1** — claude/sonnet · running 1m")
        );
        assert!(menu.text.contains("__Waiting__\n[?] **nc3** — claude/sonnet · waiting 1m ago\n   Q: Which airport?"));
        assert!(menu.text.contains("[FAIL] **nd4**"));
        assert!(menu.text.contains(&format!("   {}...\n", "e".repeat(77))), "error cut at 80");
        assert!(menu.text.ends_with("Running: 2 · Waiting: 1 · Finished: 2"));
        let data: Vec<Vec<&str>> =
            menu.buttons.iter().map(|r| r.iter().map(|b| b.callback_data.as_str()).collect()).collect();
        assert_eq!(
            data,
            vec![vec!["tsc:cancel:a1"], vec!["tsc:cancel:b2"], vec!["tsc:cancelall", "tsc:r", "tsc:cleanup"]]
        );
        let empty = super::menu(&[], 0.0, Some("note"));
        assert_eq!(empty.text, format!("note\n\n{}", render("tasks.none", &[])));
        assert_eq!(empty.buttons, vec![vec![button("Refresh", "tsc:r".into())]]);
    }

    #[test]
    fn cancel_and_cleanup_touch_only_this_chat() {
        let mut tasks = vec![
            task("a1", 1, "running", serde_json::json!({})),
            task("b2", 2, "running", serde_json::json!({})),
            task("c3", 1, "done", serde_json::json!({})),
            task("d4", 2, "done", serde_json::json!({})),
        ];
        let other = apply(&mut tasks, ChatId(1), &TaskAction::Cancel("b2".into()), 5.0);
        assert!(!other.changed && other.cancelled.is_empty(), "another chat's task");
        let all = apply(&mut tasks, ChatId(1), &TaskAction::CancelAll, 5.0);
        assert_eq!(all.cancelled, ["a1"]);
        assert_eq!(tasks[0].status, "cancelled");
        assert_eq!(tasks[1].status, "running");
        let cleaned = apply(&mut tasks, ChatId(1), &TaskAction::Cleanup, 6.0);
        assert_eq!(cleaned.remove_folders, ["/h/workspace/tasks/a1", "/h/workspace/tasks/c3"]);
        let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
        assert_eq!(ids, ["b2", "d4"]);
    }
}

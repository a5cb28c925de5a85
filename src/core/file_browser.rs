//! The file browser of `/showfiles` (transports spec §2.11), rooted at the ductor home: the
//! listing of one folder (folders first, hidden names skipped), a button per folder
//! (`sf:<path>`), a back button, and "send me a file from this folder" (`sf!<path>`). Pure:
//! the caller reads the folder.

use crate::core::buttons::{CALLBACK_DATA_MAX, truncate_bytes};
use crate::core::selector::{Button, ButtonGrid, Menu};
use crate::core::text::render;

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// A folder.
    pub is_dir: bool,
}

/// A pressed `sf:` / `sf!` button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserAction {
    /// Show this folder (relative to the home; empty = the home).
    Open(String),
    /// Ask the agent to send a file from this folder.
    SendFrom(String),
}

/// Parses `sf:<rel>` and `sf!<rel>`.
pub fn action(data: &str) -> Option<BrowserAction> {
    if let Some(rel) = data.strip_prefix("sf:") {
        Some(BrowserAction::Open(rel.trim_matches('/').to_owned()))
    } else {
        data.strip_prefix("sf!").map(|rel| BrowserAction::SendFrom(rel.trim_matches('/').to_owned()))
    }
}

/// Whether a relative path stays inside the home (no `..`, not absolute).
pub fn is_inside(rel: &str) -> bool {
    !rel.starts_with('/') && !rel.split('/').any(|part| part == "..")
}

fn shown(entry: &Entry) -> bool {
    !entry.name.starts_with('.') && entry.name != "__pycache__"
}

/// The menu of folder `rel` with `entries`.
pub fn menu(rel: &str, entries: &[Entry]) -> Menu {
    let mut visible: Vec<&Entry> = entries.iter().filter(|e| shown(e)).collect();
    visible.sort_by_key(|e| (!e.is_dir, e.name.to_lowercase()));
    let display = if rel.is_empty() { "~/.ductor/".to_owned() } else { format!("~/.ductor/{rel}/") };
    let mut text = format!("**File browser**\n---\n`{display}`\n");
    if visible.is_empty() {
        text.push_str(&format!("\n  {}", render("file_browser.empty", &[])));
    }
    for entry in &visible {
        text.push_str(&format!("\n  {}{}", entry.name, if entry.is_dir { "/" } else { "" }));
    }
    text.push_str("\n---");
    let join = |name: &str| if rel.is_empty() { name.to_owned() } else { format!("{rel}/{name}") };
    let folders: Vec<Button> = visible
        .iter()
        .filter(|e| e.is_dir)
        .map(|e| {
            Button::callback(
                &format!("{}/", e.name),
                truncate_bytes(&format!("sf:{}", join(&e.name)), CALLBACK_DATA_MAX),
            )
        })
        .collect();
    let mut buttons: ButtonGrid = folders.chunks(3).map(<[Button]>::to_vec).collect();
    if !rel.is_empty() {
        let parent = rel.rsplit_once('/').map_or("", |(parent, _)| parent);
        buttons.push(vec![Button::callback("« Back", format!("sf:{parent}"))]);
    }
    buttons.push(vec![Button::callback(
        &render("file_browser.send_button", &[]),
        truncate_bytes(&format!("sf!{rel}"), CALLBACK_DATA_MAX),
    )]);
    Menu { text, buttons }
}

/// The answer for a folder that does not exist or lies outside the home.
pub fn not_found() -> Menu {
    Menu { text: render("file_browser.not_found", &[]), buttons: vec![vec![Button::callback("« Back", "sf:")]] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, is_dir: bool) -> Entry {
        Entry { name: name.to_owned(), is_dir }
    }

    #[test]
    fn folders_first_hidden_skipped_and_buttons() {
        let entries = [
            entry("b.txt", false),
            entry("Workspace", true),
            entry(".git", true),
            entry("a.md", false),
            entry("logs", true),
        ];
        let m = menu("", &entries);
        assert!(m.text.contains("`~/.ductor/`\n\n  logs/\n  Workspace/\n  a.md\n  b.txt\n---"), "{}", m.text);
        let data: Vec<Vec<&str>> =
            m.buttons.iter().map(|r| r.iter().map(|b| b.callback_data.as_str()).collect()).collect();
        assert_eq!(data, vec![vec!["sf:logs", "sf:Workspace"], vec!["sf!"]], "no back button at the root");
        let inner = menu("workspace/tasks", &[]);
        assert!(inner.text.contains("`~/.ductor/workspace/tasks/`"));
        let data: Vec<Vec<&str>> =
            inner.buttons.iter().map(|r| r.iter().map(|b| b.callback_data.as_str()).collect()).collect();
        assert_eq!(data, vec![vec!["sf:workspace"], vec!["sf!workspace/tasks"]]);
    }

    #[test]
    fn actions_and_escapes() {
        assert_eq!(action("sf:workspace/"), Some(BrowserAction::Open("workspace".into())));
        assert_eq!(action("sf!logs"), Some(BrowserAction::SendFrom("logs".into())));
        assert_eq!(action("ms:x"), None);
        assert!(is_inside("workspace/a"));
        assert!(!is_inside("../etc") && !is_inside("a/../../b") && !is_inside("/etc"));
    }
}

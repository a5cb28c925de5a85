//! `SHAREDMEMORY.md` (core spec §9.6): the knowledge every agent shares, kept as one marked block
//! at the end of each agent's `MAINMEMORY.md`. Pure: what an agent's memory file becomes.

/// The block's first line.
pub const START: &str = "--- SHARED KNOWLEDGE START ---";
/// The block's last line.
pub const END: &str = "--- SHARED KNOWLEDGE END ---";
/// The markers the original used before.
const LEGACY_START: &str = "<!-- SHARED:START -->";
const LEGACY_END: &str = "<!-- SHARED:END -->";

/// What a new `SHAREDMEMORY.md` holds.
pub const SEED: &str = "# Shared knowledge\n\n\
Facts every agent of this ductor should know (the person, their preferences, common \
conventions). Kept short: it is copied into each agent's memory.\n";

/// The memory file with the shared block put in (replacing an existing block, legacy markers
/// included, or appended after the text); `None` when the shared text is blank or nothing
/// would change.
pub fn merged(memory: &str, shared: &str) -> Option<String> {
    let shared = shared.trim();
    if shared.is_empty() {
        return None;
    }
    let block = format!("{START}\n{shared}\n{END}");
    let found = [(START, END), (LEGACY_START, LEGACY_END)].into_iter().find_map(|(start, end)| {
        let from = memory.find(start)?;
        let to = memory[from..].find(end).map_or(memory.len(), |at| from + at + end.len());
        Some((from, to))
    });
    let new = match found {
        Some((from, to)) => format!("{}{block}{}", &memory[..from], &memory[to..]),
        None => format!("{}\n\n{block}\n", memory.trim_end()),
    };
    (new != memory).then_some(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_once_then_replaced_in_place() {
        let first = merged("# Memory\nlikes tea\n\n", "All agents answer in German.").unwrap();
        assert_eq!(first, format!("# Memory\nlikes tea\n\n{START}\nAll agents answer in German.\n{END}\n"));
        assert_eq!(merged(&first, "All agents answer in German.\n"), None, "no write when nothing changes");
        let second = merged(&format!("{first}later notes\n"), "Answer in French.").unwrap();
        assert_eq!(second, format!("# Memory\nlikes tea\n\n{START}\nAnswer in French.\n{END}\nlater notes\n"));
    }

    #[test]
    fn legacy_markers_are_migrated_and_blank_text_changes_nothing() {
        let old = format!("notes\n{LEGACY_START}\nold\n{LEGACY_END}\ntail");
        assert_eq!(merged(&old, "new").unwrap(), format!("notes\n{START}\nnew\n{END}\ntail"));
        assert_eq!(merged("notes", "  \n"), None);
    }
}

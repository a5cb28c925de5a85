//! Button markers in answers (transports spec §5.3): `[button:Label]` outside code becomes an
//! inline button whose callback data is the label (at most 64 UTF-8 bytes, never a split
//! character); markers on one line form one row. Also the code-span scanner the Markdown
//! converters share, so "outside code" means the same everywhere.

use crate::core::selector::{Button, ButtonGrid};

/// Telegram's limit for callback data, in bytes.
pub const CALLBACK_DATA_MAX: usize = 64;

/// `text` cut to at most `max` UTF-8 bytes at a character boundary.
pub fn truncate_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A stretch of Markdown: code (fenced block or inline span) or prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stretch<'a> {
    /// Prose.
    Prose(&'a str),
    /// A fenced block (with its fences) or an inline code span (with its backticks).
    Code(&'a str),
}

/// Splits Markdown into prose and code: ```` ``` ```` fences (to the next ```` ``` ```` or the
/// end) and single-line `` `inline` `` spans.
pub fn stretches(text: &str) -> Vec<Stretch<'_>> {
    let mut out = Vec::new();
    let mut prose_start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if text[i..].starts_with("```") {
            let end = text[i + 3..].find("```").map_or(text.len(), |at| i + 3 + at + 3);
            if prose_start < i {
                out.push(Stretch::Prose(&text[prose_start..i]));
            }
            out.push(Stretch::Code(&text[i..end]));
            i = end;
            prose_start = end;
        } else if bytes[i] == b'`' {
            match text[i + 1..].find(['`', '\n']) {
                Some(at) if bytes[i + 1 + at] == b'`' && at > 0 => {
                    let end = i + 1 + at + 1;
                    if prose_start < i {
                        out.push(Stretch::Prose(&text[prose_start..i]));
                    }
                    out.push(Stretch::Code(&text[i..end]));
                    i = end;
                    prose_start = end;
                }
                _ => i += 1,
            }
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if prose_start < text.len() {
        out.push(Stretch::Prose(&text[prose_start..]));
    }
    out
}

/// Finds `[button:<label>]` markers in a piece of prose: (start, end, trimmed label).
fn markers(prose: &str) -> Vec<(usize, usize, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = prose[from..].find("[button:") {
        let start = from + at;
        let label_start = start + "[button:".len();
        match prose[label_start..].find(']') {
            Some(len) => {
                let label = prose[label_start..label_start + len].trim();
                let end = label_start + len + 1;
                if !label.is_empty() {
                    found.push((start, end, label));
                }
                from = end;
            }
            None => break,
        }
    }
    found
}

/// Removes the markers outside code, keeping everything else as it is.
pub fn remove_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for stretch in stretches(text) {
        match stretch {
            Stretch::Code(code) => out.push_str(code),
            Stretch::Prose(prose) => {
                let mut last = 0;
                for (start, end, _) in markers(prose) {
                    out.push_str(&prose[last..start]);
                    last = end;
                }
                out.push_str(&prose[last..]);
            }
        }
    }
    out
}

/// The keyboard the markers outside code describe: one row per line holding markers.
pub fn keyboard(text: &str) -> ButtonGrid {
    keyboard_with(text, |label| truncate_bytes(label, CALLBACK_DATA_MAX).to_owned())
}

/// The same, with callback data made from each label by `data`.
pub fn keyboard_with(text: &str, data: impl Fn(&str) -> String) -> ButtonGrid {
    let mut rows: ButtonGrid = Vec::new();
    let mut row: Vec<Button> = Vec::new();
    for stretch in stretches(text) {
        let Stretch::Prose(prose) = stretch else { continue };
        let mut last = 0;
        for (start, end, label) in markers(prose) {
            if prose[last..start].contains('\n') && !row.is_empty() {
                rows.push(std::mem::take(&mut row));
            }
            row.push(Button::callback(label, data(label)));
            last = end;
        }
        if prose[last..].contains('\n') && !row.is_empty() {
            rows.push(std::mem::take(&mut row));
        }
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows
}

/// Collapses runs of three or more newlines to two.
pub fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut newlines = 0;
    for c in text.chars() {
        if c == '\n' {
            newlines += 1;
            if newlines > 2 {
                continue;
            }
        } else {
            newlines = 0;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(grid: &ButtonGrid) -> Vec<Vec<&str>> {
        grid.iter().map(|row| row.iter().map(|b| b.callback_data.as_str()).collect()).collect()
    }

    #[test]
    fn spec_example_rows_and_removal() {
        let text = "Pick:\n[button:Yes] [button:No]\n[button:Later]";
        assert_eq!(data(&keyboard(text)), vec![vec!["Yes", "No"], vec!["Later"]]);
        assert_eq!(collapse_blank_lines(remove_markers(text).trim()), "Pick:");
        assert_eq!(remove_markers("a [button: Go ] b"), "a  b");
        assert_eq!(data(&keyboard("a [button: Go ] b")), vec![vec!["Go"]]);
    }

    #[test]
    fn markers_in_code_stay_and_make_no_button() {
        let text = "End `[button:keep]`\n```\n[button:block]\n```\n[button:real]";
        assert_eq!(data(&keyboard(text)), vec![vec!["real"]]);
        assert_eq!(remove_markers(text), "End `[button:keep]`\n```\n[button:block]\n```\n");
        assert!(keyboard("[button:] [button:   ] [button:open").is_empty());
    }

    #[test]
    fn callback_data_is_cut_at_64_bytes_on_a_character_boundary() {
        let label = "ä".repeat(40);
        let grid = keyboard(&format!("[button:{label}]"));
        assert_eq!(grid[0][0].callback_data, "ä".repeat(32));
        assert_eq!(grid[0][0].text, label);
        assert_eq!(truncate_bytes("abc€", 5), "abc");
    }

    #[test]
    fn stretches_cover_the_text() {
        let text = "a `b` c ```x\ny``` d ` e";
        let joined: String = stretches(text)
            .iter()
            .map(|s| match s {
                Stretch::Prose(p) | Stretch::Code(p) => *p,
            })
            .collect();
        assert_eq!(joined, text);
        assert_eq!(stretches("x ``` open").last(), Some(&Stretch::Code("``` open")));
    }
}

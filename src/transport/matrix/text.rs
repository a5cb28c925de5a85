//! Matrix message text (transports spec §5.1b, §3.7, §3.8): Markdown → (plain `body`,
//! `formatted_body` HTML), answers cut into events that stay under the event size limit even
//! when encrypted, and the numbered reaction-button lists that stand in for inline keyboards.

use crate::core::buttons::{Stretch, stretches};
use crate::core::html::{escape, unescape};

/// How many bytes of `body` + `formatted_body` one event carries at most. Matrix refuses events
/// over 65 536 bytes, and an encrypted event is the plaintext JSON in base64 (× 4/3) plus
/// headers — so the two texts together stay well under half of that. (0.18.2 budgeted 60 000
/// bytes on the plain text alone, and its HTML could exceed the limit.)
pub const EVENT_TEXT_BUDGET: usize = 30_000;

/// The keycap emojis of reaction buttons 1–10.
pub const KEYCAPS: [&str; 10] = [
    "1\u{fe0f}\u{20e3}",
    "2\u{fe0f}\u{20e3}",
    "3\u{fe0f}\u{20e3}",
    "4\u{fe0f}\u{20e3}",
    "5\u{fe0f}\u{20e3}",
    "6\u{fe0f}\u{20e3}",
    "7\u{fe0f}\u{20e3}",
    "8\u{fe0f}\u{20e3}",
    "9\u{fe0f}\u{20e3}",
    "\u{1f51f}",
];

/// The plain text of our HTML: tags removed, entities unescaped.
pub fn plain_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
}

/// Removes every `[button:…]` marker, inside code too.
fn without_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("[button:") {
        match rest[at..].find(']') {
            Some(end) if !rest[at..at + end].contains('\n') => {
                out.push_str(&rest[..at]);
                rest = &rest[at + end + 1..];
            }
            _ => {
                out.push_str(&rest[..at + 1]);
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Markdown → (`body`, `formatted_body`) as §5.1b describes.
pub fn to_matrix(markdown: &str) -> (String, String) {
    let text = without_markers(markdown);
    let text = text.trim_end();
    let mut lines = Vec::new();
    let mut in_code = false;
    for line in text.split('\n') {
        if let Some(lang) = line.strip_prefix("```") {
            if in_code {
                lines.push("</code></pre>".to_owned());
            } else if lang.trim().is_empty() {
                lines.push("<pre><code>".to_owned());
            } else {
                lines.push(format!("<pre><code class=\"language-{}\">", escape(lang.trim())));
            }
            in_code = !in_code;
        } else if in_code {
            lines.push(escape(line));
        } else if let Some((level, title)) = heading(line) {
            lines.push(format!("<h{level}>{}</h{level}>", inline(title)));
        } else if line.len() >= 3 && line.chars().all(|c| c == '-') {
            lines.push("<hr>".to_owned());
        } else if line.trim().is_empty() {
            lines.push("<br>".to_owned());
        } else {
            lines.push(format!("{}<br>", inline(line)));
        }
    }
    if in_code {
        lines.push("</code></pre>".to_owned());
    }
    let html = lines.join("\n");
    (plain_of(&html), html)
}

/// `# Title` … `###### Title`.
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    let rest = &line[level..];
    ((1..=6).contains(&level) && rest.starts_with([' ', '\t'])).then(|| (level, rest.trim()))
}

/// Inline Markdown of one line, escaped first (the rules also apply inside code spans, as in
/// 0.18.2).
fn inline(line: &str) -> String {
    let text = escape(line);
    let text = pairs(&text, "`", "<code>", "</code>", false);
    let text = pairs(&text, "**", "<strong>", "</strong>", false);
    let text = pairs(&text, "__", "<strong>", "</strong>", true);
    let text = pairs(&text, "~~", "<del>", "</del>", false);
    let text = pairs(&text, "*", "<em>", "</em>", false);
    let text = pairs(&text, "_", "<em>", "</em>", true);
    links(&text)
}

/// Replaces `<delim>x<delim>` (x non-empty) by `open x close`; `word_bounded`: the delimiters
/// may not touch a letter or digit on their outer side.
fn pairs(text: &str, delim: &str, open: &str, close: &str, word_bounded: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let outer_ok = |c: Option<char>| !word_bounded || c.is_none_or(|c| !c.is_alphanumeric());
    let mut before: Option<char> = None;
    while let Some(start) = rest.find(delim) {
        let prev = rest[..start].chars().next_back().or(before);
        let after_open = &rest[start + delim.len()..];
        let close_at = after_open.find(delim).filter(|&end| end > 0);
        match close_at {
            Some(end)
                if outer_ok(prev)
                    && outer_ok(after_open[end + delim.len()..].chars().next())
                    && !after_open[..end].starts_with(delim.chars().next().unwrap_or(' ')) =>
            {
                out.push_str(&rest[..start]);
                out.push_str(open);
                out.push_str(&after_open[..end]);
                out.push_str(close);
                rest = &after_open[end + delim.len()..];
                before = close.chars().next_back();
            }
            _ => {
                let step = start + delim.len();
                out.push_str(&rest[..step]);
                before = rest[..step].chars().next_back();
                rest = &rest[step..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `[text](url)` → `<a href="url">text</a>`.
fn links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let found = rest[open..].find("](").and_then(|mid| {
            let url_start = open + mid + 2;
            rest[url_start..].find(')').map(|end| (open + mid, url_start, url_start + end))
        });
        match found {
            Some((mid, url_start, url_end)) if mid > open + 1 && !rest[url_start..url_end].contains(' ') => {
                out.push_str(&rest[..open]);
                out.push_str(&format!("<a href=\"{}\">{}</a>", &rest[url_start..url_end], &rest[open + 1..mid]));
                rest = &rest[url_end + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One event's worth of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventText {
    /// `body`.
    pub plain: String,
    /// `formatted_body`.
    pub html: String,
}

impl EventText {
    fn of(markdown: &str) -> Self {
        let (plain, html) = to_matrix(markdown);
        Self { plain, html }
    }

    fn size(&self) -> usize {
        self.plain.len() + self.html.len()
    }
}

/// An answer cut into events of at most `budget` bytes (`body` + `formatted_body`), in source
/// order, at line boundaries where possible; a code block cut in two is closed and reopened so
/// both halves keep their formatting. Empty answers give no event.
pub fn events(markdown: &str, budget: usize) -> Vec<EventText> {
    let whole = EventText::of(markdown);
    if whole.plain.trim().is_empty() && whole.html.replace("<br>", "").trim().is_empty() {
        return Vec::new();
    }
    if whole.size() <= budget {
        return vec![whole];
    }
    // A piece's size is about the sum of its lines' sizes, each converted on its own; a line
    // longer than an eighth of the budget is cut (escaping can multiply its bytes by 7).
    let limit = budget.saturating_sub(64).max(1);
    let mut out = Vec::new();
    let mut piece = String::new();
    let mut cost = 0;
    let mut fence: Option<String> = None;
    for line in markdown.split('\n') {
        let parts = chunks(line, (budget / 8).max(1));
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let part_cost = if fence.is_some() { 2 * escape(part).len() + 2 } else { EventText::of(part).size() + 8 };
            if cost + part_cost > limit && !piece.trim().is_empty() {
                match &fence {
                    Some(open) => {
                        piece.push_str("```\n");
                        out.push(EventText::of(&piece));
                        piece = format!("{open}\n");
                        cost = open.len() + 30;
                    }
                    None => {
                        out.push(EventText::of(&piece));
                        piece.clear();
                        cost = 0;
                    }
                }
            }
            piece.push_str(part);
            if i == last {
                piece.push('\n');
            }
            cost += part_cost;
        }
        if line.starts_with("```") {
            fence = if fence.is_some() { None } else { Some(line.to_owned()) };
        }
    }
    if !piece.trim().is_empty() && fence.as_ref().is_none_or(|open| piece.trim() != open.trim()) {
        out.push(EventText::of(&piece));
    }
    out.retain(|event| !event.plain.trim().is_empty());
    out
}

/// `line` cut into parts of at most `max` bytes at character boundaries.
fn chunks(line: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = line;
    while rest.len() > max {
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        parts.push(&rest[..end]);
        rest = &rest[end..];
    }
    parts.push(rest);
    parts
}

/// The numbered list of buttons appended to a message: a blank line, then `  1️⃣ Label` … `  🔟
/// Label`, then `  11. Label` onwards.
pub fn numbered_buttons(labels: &[String]) -> String {
    let mut out = String::from("\n");
    for (i, label) in labels.iter().enumerate() {
        match KEYCAPS.get(i) {
            Some(emoji) => out.push_str(&format!("\n  {emoji} {label}")),
            None => out.push_str(&format!("\n  {}. {label}", i + 1)),
        }
    }
    out
}

/// Which button (0-based) a reaction key picks.
pub fn reaction_choice(key: &str) -> Option<usize> {
    let key = key.trim();
    KEYCAPS.iter().position(|emoji| {
        *emoji == key || emoji.trim_end_matches('\u{20e3}').replace('\u{fe0f}', "") + "\u{20e3}" == key
    })
}

/// Which button (0-based) a typed number picks, when it is one of `count`.
pub fn typed_choice(text: &str, count: usize) -> Option<usize> {
    let n: usize = text.trim().parse().ok()?;
    (1..=count).contains(&n).then(|| n - 1)
}

/// Whether the answer text has any button markers outside code.
pub fn has_markers(text: &str) -> bool {
    stretches(text).iter().any(|s| matches!(s, Stretch::Prose(p) if p.contains("[button:")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_examples_of_the_spec() {
        let (plain, html) = to_matrix("# Title\n**b** and __c__ and `x*y*z`");
        assert_eq!(plain, "Title\nb and c and xyz");
        assert_eq!(html, "<h1>Title</h1>\n<strong>b</strong> and <strong>c</strong> and <code>x<em>y</em>z</code><br>");
        let (plain, html) = to_matrix("```\ncode <x>\n```\n---\ntext [button:A]");
        assert_eq!(plain, "\ncode <x>\n\n\ntext");
        assert_eq!(html, "<pre><code>\ncode &lt;x&gt;\n</code></pre>\n<hr>\ntext<br>");
    }

    #[test]
    fn inline_rules() {
        assert_eq!(to_matrix("a ~~b~~ *c* d_e_f _g_").1, "a <del>b</del> <em>c</em> d_e_f <em>g</em><br>");
        assert_eq!(
            to_matrix("see [docs](https://x.org/a?b=1&c=2)").1,
            "see <a href=\"https://x.org/a?b=1&amp;c=2\">docs</a><br>"
        );
        assert_eq!(to_matrix("```rust\nfn x() {}").1, "<pre><code class=\"language-rust\">\nfn x() {}\n</code></pre>");
        assert_eq!(to_matrix("a\n\nb").1, "a<br>\n<br>\nb<br>");
        assert_eq!(to_matrix("#hashtag").1, "#hashtag<br>", "a heading needs a space");
        assert_eq!(to_matrix("2 * 3 = 6").1, "2 * 3 = 6<br>");
    }

    #[test]
    fn a_long_answer_is_cut_under_the_budget_in_order() {
        let line = "word **bold** & <tag> ".repeat(40);
        let text: String = (0..400).map(|i| format!("{i:04} {line}\n")).collect();
        let events = events(&text, EVENT_TEXT_BUDGET);
        assert!(events.len() > 3, "{}", events.len());
        assert!(
            events.iter().all(|e| e.size() <= EVENT_TEXT_BUDGET),
            "{:?}",
            events.iter().map(EventText::size).collect::<Vec<_>>()
        );
        let joined: String = events.iter().map(|e| e.plain.clone()).collect::<Vec<_>>().join("\n");
        let numbers: Vec<usize> = joined.lines().filter_map(|l| l.get(..4)).filter_map(|n| n.parse().ok()).collect();
        assert_eq!(numbers, (0..400).collect::<Vec<_>>());
    }

    #[test]
    fn a_code_block_cut_in_two_stays_code_on_both_sides() {
        let body: String = (0..3000).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("intro\n```rust\n{body}```\noutro");
        let events = events(&text, 20_000);
        assert!(events.len() >= 3);
        for event in &events {
            assert_eq!(event.html.matches("<pre>").count(), event.html.matches("</pre>").count());
            assert!(event.size() <= 20_000);
        }
        assert!(events[1].html.starts_with("<pre><code class=\"language-rust\">"));
        assert!(events.last().is_some_and(|e| e.plain.ends_with("outro")));
    }

    #[test]
    fn one_huge_line_is_cut_too() {
        let events = events(&"é".repeat(50_000), EVENT_TEXT_BUDGET);
        assert!(events.len() >= 4);
        assert!(events.iter().all(|e| e.size() <= EVENT_TEXT_BUDGET));
        assert_eq!(events.iter().map(|e| e.plain.trim_end().chars().count()).sum::<usize>(), 50_000);
    }

    #[test]
    fn buttons_are_numbered_with_keycaps_then_numbers() {
        let labels: Vec<String> = (1..=12).map(|i| format!("L{i}")).collect();
        let list = numbered_buttons(&labels);
        assert!(list.starts_with("\n\n  1\u{fe0f}\u{20e3} L1\n  2\u{fe0f}\u{20e3} L2"));
        assert!(list.contains("\n  \u{1f51f} L10\n  11. L11\n  12. L12"));
        assert_eq!(reaction_choice("2\u{fe0f}\u{20e3}"), Some(1));
        assert_eq!(reaction_choice("2\u{20e3}"), Some(1), "keycap without the variation selector");
        assert_eq!(reaction_choice("\u{1f51f}"), Some(9));
        assert_eq!(reaction_choice("👍"), None);
        assert_eq!(typed_choice(" 2 ", 2), Some(1));
        assert_eq!(typed_choice("3", 2), None);
        assert_eq!(typed_choice("0", 2), None);
        assert_eq!(typed_choice("two", 2), None);
        assert!(has_markers("pick [button:A]"));
        assert!(!has_markers("`[button:A]`"));
    }
}

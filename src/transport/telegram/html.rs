//! Markdown → Telegram HTML (transports spec §5.1), the plain-text fallback used when Telegram
//! rejects the HTML, and splitting into messages of at most 4096 UTF-16 units without cutting
//! a tag (§5.2; unlike the original, chunks keep source order and every chunk is well formed).

use crate::core::buttons::{collapse_blank_lines, remove_markers};
use crate::core::html::{escape, unescape};

/// Telegram's message length limit.
pub const MESSAGE_LIMIT: usize = 4096;

const MARK: char = '\u{0}';

/// The plain-text fallback: tags (`<[^>]+>`) removed, entities decoded.
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        match rest[at + 1..].find('>') {
            Some(end) if end > 0 => rest = &rest[at + 1 + end + 1..],
            _ => {
                out.push('<');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    unescape(&out)
}

fn placeholder(kind: char, index: usize) -> String {
    format!("{MARK}{kind}{index}{MARK}")
}

/// Lifts fenced blocks: ```` ```lang\n…``` ```` → placeholders; returns the rendered blocks.
fn lift_fences(text: &str, blocks: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("```") else { break };
        out.push_str(&rest[..start]);
        let inner = &after[..end];
        let (lang, body) = match inner.split_once('\n') {
            Some((lang, body)) if lang.chars().all(|c| c.is_alphanumeric() || c == '_') => (lang, body),
            _ if inner.chars().all(|c| c.is_alphanumeric() || c == '_') => (inner, ""),
            _ => ("", inner),
        };
        let html = if lang.is_empty() {
            format!("<pre>{}</pre>", escape(body))
        } else {
            format!("<pre><code class=\"language-{lang}\">{}</code></pre>", escape(body))
        };
        out.push_str(&placeholder('B', blocks.len()));
        blocks.push(html);
        rest = &after[end + 3..];
    }
    out.push_str(rest);
    out
}

fn is_table_line(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 2 && t.starts_with('|') && t.ends_with('|')
}

fn cells(line: &str) -> Vec<String> {
    let t = line.trim();
    let inner = &t[1..t.len() - 1];
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

fn is_separator(cells: &[String]) -> bool {
    cells.iter().all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
}

fn render_table(lines: &[&str]) -> String {
    let rows: Vec<Vec<String>> = lines.iter().map(|l| cells(l)).filter(|c| !is_separator(c)).collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |col: usize| rows.iter().map(|r| r.get(col).map_or(0, |c| c.chars().count())).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let line = |row: &Vec<String>| -> String {
        (0..columns)
            .map(|col| {
                let cell = row.get(col).map_or("", String::as_str);
                format!("{cell:<w$}", w = widths[col])
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out: Vec<String> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        out.push(line(row));
        if i == 0 && rows.len() >= 2 {
            out.push(widths.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>().join("  "));
        }
    }
    format!("<pre>{}</pre>", escape(&out.join("\n")))
}

/// Lifts runs of two or more table lines.
fn lift_tables(text: &str, tables: &mut Vec<String>) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..].iter().take_while(|l| is_table_line(l)).count();
        if run >= 2 {
            out.push(placeholder('T', tables.len()));
            tables.push(render_table(&lines[i..i + run]));
            i += run;
        } else {
            out.push(lines[i].to_owned());
            i += 1;
        }
    }
    out.join("\n")
}

/// Lifts single-line inline code spans.
fn lift_inline_code(text: &str, spans: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        match after.find(['`', '\n']) {
            Some(end) if end > 0 && after.as_bytes()[end] == b'`' => {
                out.push_str(&rest[..start]);
                out.push_str(&placeholder('C', spans.len()));
                spans.push(format!("<code>{}</code>", escape(&after[..end])));
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Replaces `open x close` pairs (non-greedy, `x` non-empty; within one line unless
/// `multiline`) by `<tag>x</tag>`. `ok(before, after_close)` vets the characters around.
fn pairs(
    text: &str,
    delimiter: &str,
    tag: &str,
    multiline: bool,
    ok_open: impl Fn(Option<char>, Option<char>) -> bool,
    ok_close: impl Fn(Option<char>, Option<char>) -> bool,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while let Some(at) = text[i..].find(delimiter) {
        let open = i + at;
        let before = text[..open].chars().next_back();
        let content_start = open + delimiter.len();
        let first = text[content_start..].chars().next();
        if !ok_open(before, first) {
            i = open + delimiter.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let mut search = content_start;
        let mut found = None;
        while let Some(at) = text[search..].find(delimiter) {
            let close = search + at;
            if close == content_start {
                search = close + 1;
                continue;
            }
            if !multiline && text[content_start..close].contains('\n') {
                break;
            }
            let last = text[..close].chars().next_back();
            let after = text[close + delimiter.len()..].chars().next();
            if ok_close(last, after) {
                found = Some(close);
                break;
            }
            search = close + 1;
        }
        match found {
            Some(close) => {
                out.push_str(&text[copied..open]);
                out.push_str(&format!("<{tag}>{}</{tag}>", &text[content_start..close]));
                i = close + delimiter.len();
                copied = i;
            }
            None => i = open + delimiter.len(),
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn any(_: Option<char>, _: Option<char>) -> bool {
    true
}

/// `[t](u)` → `<a href="u">t</a>`.
fn links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        let after = &rest[start + 1..];
        let parsed = after.find(']').filter(|end| *end > 0 && !after[..*end].contains('[')).and_then(|end| {
            let url_part = after[end + 1..].strip_prefix('(')?;
            let close = url_part.find(')').filter(|c| *c > 0)?;
            Some((&after[..end], &url_part[..close], end + 1 + 1 + close + 1))
        });
        match parsed {
            Some((label, url, used)) => {
                out.push_str(&rest[..start]);
                out.push_str(&format!("<a href=\"{url}\">{label}</a>"));
                rest = &after[used..];
            }
            None => {
                out.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn line_rules(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut quote: Vec<&str> = Vec::new();
    let flush = |quote: &mut Vec<&str>, out: &mut Vec<String>| {
        if !quote.is_empty() {
            out.push(format!("<blockquote>{}</blockquote>", quote.join("\n")));
            quote.clear();
        }
    };
    for line in text.split('\n') {
        if let Some(rest) = line.strip_prefix("&gt; ") {
            quote.push(rest);
            continue;
        }
        flush(&mut quote, &mut out);
        let trimmed = line.trim();
        if trimmed.len() >= 3 && (trimmed.chars().all(|c| c == '-') || trimmed.chars().all(|c| c == '*')) {
            out.push("———".to_owned());
        } else if let Some(item) = line.strip_prefix("- ") {
            out.push(format!("• {item}"));
        } else {
            out.push(line.to_owned());
        }
    }
    flush(&mut quote, &mut out);
    out.join("\n")
}

fn restore(text: &str, blocks: &[String], tables: &[String], spans: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARK) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MARK.len_utf8()..];
        let parsed = after.find(MARK).and_then(|end| {
            let token = &after[..end];
            let kind = token.chars().next()?;
            let index: usize = token[kind.len_utf8()..].parse().ok()?;
            let list = match kind {
                'B' => blocks,
                'T' => tables,
                'C' => spans,
                _ => return None,
            };
            Some((list.get(index)?, end + MARK.len_utf8()))
        });
        match parsed {
            Some((html, used)) => {
                out.push_str(html);
                rest = &after[used..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// Converts an answer's Markdown to the HTML subset Telegram accepts (§5.1).
pub fn markdown_to_html(markdown: &str) -> String {
    let text: String = markdown.chars().filter(|c| *c != MARK).collect();
    let text = collapse_blank_lines(&remove_markers(&text));
    let text = text.trim();
    let (mut blocks, mut tables, mut spans) = (Vec::new(), Vec::new(), Vec::new());
    let text = lift_fences(text, &mut blocks);
    let text = lift_tables(&text, &mut tables);
    let text = lift_inline_code(&text, &mut spans);
    let text = escape(&text);
    // Headings first so `#` lines are not taken for anything else; then inline styles.
    let text = headings_only(&text);
    let text = pairs(&text, "**", "b", true, any, any);
    let lone_star_open = |_: Option<char>, first: Option<char>| first != Some('*');
    let lone_star_close = |last: Option<char>, after: Option<char>| last != Some('*') && after != Some('*');
    let text = pairs_lone_star(&text, lone_star_open, lone_star_close);
    let text = pairs(&text, "_", "i", false, |before, _| !is_word(before), |_, after| !is_word(after));
    let text = pairs(&text, "~~", "s", false, any, any);
    let text = links(&text);
    let text = line_rules(&text);
    restore(&text, &blocks, &tables, &spans)
}

/// `#`-headings → `<b>` (the rest of [`line_rules`] runs after the inline styles).
fn headings_only(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            let heading = line.trim_start_matches('#');
            let level = line.len() - heading.len();
            if (1..=6).contains(&level) && heading.starts_with([' ', '\t']) && !heading.trim().is_empty() {
                format!("<b>{}</b>", heading.trim())
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lone `*x*` (not part of `**`) → `<i>x</i>`.
fn pairs_lone_star(
    text: &str,
    ok_open: impl Fn(Option<char>, Option<char>) -> bool,
    ok_close: impl Fn(Option<char>, Option<char>) -> bool,
) -> String {
    let guarded = |before: Option<char>, first: Option<char>| before != Some('*') && ok_open(before, first);
    pairs(text, "*", "i", false, guarded, ok_close)
}

/// A tag as met while scanning HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Open { raw: &'a str, name: &'a str },
    Close { raw: &'a str },
    Text(&'a str),
}

fn pieces(html: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with('<')
            && let Some(end) = rest.find('>')
        {
            let raw = &rest[..=end];
            let inner = &raw[1..raw.len() - 1];
            if let Some(name) = inner.strip_prefix('/') {
                if !name.is_empty() {
                    out.push(Piece::Close { raw });
                    i += raw.len();
                    continue;
                }
            } else {
                let name = inner.split([' ', '\t', '\n']).next().unwrap_or_default();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    out.push(Piece::Open { raw, name });
                    i += raw.len();
                    continue;
                }
            }
        }
        // One unit of text: an entity, or one character.
        let len = if rest.starts_with('&') {
            rest.find(';').filter(|e| *e <= 10 && !rest[1..*e].contains(['&', '<', ' '])).map_or(1, |e| e + 1)
        } else {
            rest.chars().next().map_or(1, char::len_utf8)
        };
        out.push(Piece::Text(&rest[..len]));
        i += len;
    }
    out
}

/// UTF-16 length (what Telegram counts).
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn closers(stack: &[(&str, &str)]) -> String {
    stack.iter().rev().map(|(_, name)| format!("</{name}>")).collect()
}

fn openers(stack: &[(&str, &str)]) -> String {
    stack.iter().map(|(raw, _)| *raw).collect()
}

/// Splits HTML into chunks of at most `limit` UTF-16 units (tags included), preferring to cut
/// at a blank line, then at a line end, then anywhere between characters — never inside a tag
/// or an entity. Tags open at a cut are closed at the end of the chunk and opened again at the
/// start of the next. The newlines at a cut are dropped; nothing else is lost, order is kept.
pub fn split_html(html: &str, limit: usize) -> Vec<String> {
    if utf16_len(html) <= limit {
        return if html.trim().is_empty() { Vec::new() } else { vec![html.to_owned()] };
    }
    let pieces = pieces(html);
    let mut chunks = Vec::new();
    let mut stack: Vec<(&str, &str)> = Vec::new();
    let mut start = 0;
    while start < pieces.len() {
        // Skip the newlines a cut leaves at the start of a chunk.
        while matches!(pieces.get(start), Some(Piece::Text("\n"))) {
            start += 1;
        }
        if start >= pieces.len() {
            break;
        }
        let prefix = openers(&stack);
        let mut used = utf16_len(&prefix);
        let mut local = stack.clone();
        // Where a cut may go, by preference: [anywhere, at a line end, at a blank line].
        let mut best: [Option<usize>; 3] = [None, None, None];
        let mut end = start;
        let mut fits_all = true;
        while end < pieces.len() {
            let piece = &pieces[end];
            let mut next = local.clone();
            let text = match piece {
                Piece::Open { raw, name } => {
                    next.push((raw, name));
                    *raw
                }
                Piece::Close { raw } => {
                    next.pop();
                    *raw
                }
                Piece::Text(text) => *text,
            };
            let cost = utf16_len(text);
            if used + cost + utf16_len(&closers(&next)) > limit {
                fits_all = false;
                break;
            }
            used += cost;
            local = next;
            end += 1;
            let is_newline = matches!(piece, Piece::Text("\n"));
            let next_is_newline = matches!(pieces.get(end), Some(Piece::Text("\n")));
            if is_newline && end >= 2 && matches!(pieces[end - 2], Piece::Text("\n")) {
                best[2] = Some(end - 2);
            }
            if next_is_newline && !matches!(piece, Piece::Open { .. }) {
                best[1] = Some(end);
            }
            if matches!(piece, Piece::Text(_) | Piece::Close { .. }) {
                best[0] = Some(end);
            }
        }
        let cut = if fits_all {
            pieces.len()
        } else {
            match best.iter().rev().flatten().next() {
                Some(cut) if *cut > start => *cut,
                // Not even one piece fits with the tags around it: emit it alone.
                _ => start + 1,
            }
        };
        let mut chunk = prefix;
        for piece in &pieces[start..cut] {
            chunk.push_str(match piece {
                Piece::Open { raw, .. } | Piece::Close { raw } => raw,
                Piece::Text(text) => text,
            });
        }
        let mut at_cut = stack.clone();
        for piece in &pieces[start..cut] {
            match piece {
                Piece::Open { raw, name } => at_cut.push((raw, name)),
                Piece::Close { .. } => {
                    at_cut.pop();
                }
                Piece::Text(_) => {}
            }
        }
        chunk.push_str(&closers(&at_cut));
        let trimmed = chunk.trim_end_matches('\n');
        if !strip_tags(trimmed).trim().is_empty() {
            chunks.push(trimmed.to_owned());
        }
        stack = at_cut;
        start = cut;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_examples_of_the_spec() {
        let cases = [
            (
                "# Title\n**bold** and *it* and _it2_ and ~~s~~ and `a<b>` [x](http://e.com?a=1&b=2)",
                "<b>Title</b>\n<b>bold</b> and <i>it</i> and <i>it2</i> and <s>s</s> and <code>a&lt;b&gt;</code> <a href=\"http://e.com?a=1&amp;b=2\">x</a>",
            ),
            (
                "- one\n- two\n---\n> quote1\n> quote2\nafter",
                "• one\n• two\n———\n<blockquote>quote1\nquote2</blockquote>\nafter",
            ),
            (
                "```python\nif a < b:\n    print('x')\n```",
                "<pre><code class=\"language-python\">if a &lt; b:\n    print(&#x27;x&#x27;)\n</code></pre>",
            ),
            ("| a | bb |\n|---|---|\n| 1 | 2 |", "<pre>a  bb\n─  ──\n1  2 </pre>"),
            (
                "Pick:\n[button:Yes] [button:No]\n[button:Later]\n\n\n\nEnd `[button:keep]`",
                "Pick:\n \n\nEnd <code>[button:keep]</code>",
            ),
            ("snake_case_name and 5 * 3 * 2", "snake_case_name and 5 <i> 3 </i> 2"),
        ];
        for (markdown, html) in cases {
            assert_eq!(markdown_to_html(markdown), html, "{markdown:?}");
        }
    }

    #[test]
    fn more_shapes() {
        assert_eq!(markdown_to_html("```\nplain <x>\n```"), "<pre>plain &lt;x&gt;\n</pre>");
        assert_eq!(markdown_to_html("**two\nlines**"), "<b>two\nlines</b>");
        assert_eq!(markdown_to_html("#not heading"), "#not heading");
        assert_eq!(markdown_to_html("a ``` never closed"), "a ``` never closed");
        assert_eq!(markdown_to_html("x\u{0}B0\u{0}y"), "xB0y", "placeholder marks in input are dropped");
    }

    #[test]
    fn fallback_strips_tags_and_decodes() {
        assert_eq!(strip_tags("<b>a &lt; b</b> &amp; <i>c</i> &#x27;q&#39;"), "a < b & c 'q'");
        assert_eq!(strip_tags("<a href=\"u\">link</a> <> x"), "link <> x");
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split_html("<b>hi</b>", 4096), vec!["<b>hi</b>"]);
        assert!(split_html("  ", 4096).is_empty());
    }

    #[test]
    fn ten_thousand_chars_without_blank_lines_make_three_chunks_in_order() {
        let text: String = (0..10_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let chunks = split_html(&text, 4096);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| utf16_len(c) <= 4096));
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn paragraphs_are_kept_whole_and_in_order() {
        let para = |c: char, n: usize| c.to_string().repeat(n);
        let text = format!("{}\n\n{}\n\n{}\n\n{}", para('a', 3000), para('b', 3000), para('c', 5000), para('d', 10));
        let chunks = split_html(&text, 4096);
        assert_eq!(chunks[0], para('a', 3000));
        assert_eq!(chunks[1], para('b', 3000));
        assert!(chunks[2].starts_with('c') && chunks.last().unwrap().ends_with(&para('d', 10)));
        let rejoined: String = chunks.concat().chars().filter(|c| *c != '\n').collect();
        assert_eq!(rejoined, text.replace('\n', ""), "nothing lost but the separators, order kept");
    }

    #[test]
    fn tags_open_at_a_cut_are_closed_and_reopened() {
        let code = "x".repeat(5000);
        let html = format!("intro\n\n<pre><code class=\"language-rust\">{code}</code></pre>");
        let chunks = split_html(&html, 4096);
        assert!(chunks.len() >= 2);
        for chunk in &chunks {
            assert!(utf16_len(chunk) <= 4096);
            assert_eq!(chunk.matches("<pre>").count(), chunk.matches("</pre>").count(), "{chunk:.60}");
        }
        assert!(chunks[1].starts_with("<pre><code class=\"language-rust\">"));
        assert!(!chunks.iter().any(|c| c.contains("&am") && !c.contains("&amp;")));
    }

    #[test]
    fn utf16_units_count_emoji_twice() {
        let text = "😀".repeat(3000);
        let chunks = split_html(&text, 4096);
        assert!(chunks.iter().all(|c| utf16_len(c) <= 4096));
        assert_eq!(chunks.concat(), text);
        assert_eq!(chunks.len(), 2);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_markdown_converts_and_splits_within_the_limit(text in "[a-z *_`#>|\\-\\[\\]()\n😀<&]{0,3000}") {
            let html = markdown_to_html(&text);
            for chunk in split_html(&html, 500) {
                prop_assert!(utf16_len(&chunk) <= 500, "{}", chunk);
            }
            let _ = strip_tags(&html);
        }
    }
}

//! Streamed answers (transports spec §2.7, core spec §7.12): the coalescer that turns text
//! deltas into readable chunks, and the live message of edit mode — text segments, tool and
//! status lines (`[TOOL: Shell] x3`), rendering, overflow into a new message, and the final
//! text without the indicator lines. Pure: the transport owns time and the API calls.

use crate::core::html::escape;
use crate::transport::telegram::html::{MESSAGE_LIMIT, markdown_to_html, split_html, utf16_len};
use crate::transport::telegram::ingress::display_tool_name;

/// Coalescer settings (`streaming.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalescerSettings {
    /// `min_chars`.
    pub min_chars: usize,
    /// `max_chars`.
    pub max_chars: usize,
    /// `sentence_break`.
    pub sentence_break: bool,
}

/// Buffers text deltas into chunks.
#[derive(Debug, Clone)]
pub struct Coalescer {
    settings: CoalescerSettings,
    buffer: String,
}

/// What a feed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fed {
    /// Text to show now.
    pub chunk: Option<String>,
    /// Arm the idle timer (flush everything when no delta comes for `idle_ms`).
    pub arm_idle: bool,
}

impl Coalescer {
    /// An empty coalescer.
    pub fn new(settings: CoalescerSettings) -> Self {
        Self { settings, buffer: String::new() }
    }

    /// Adds a delta (the caller cancels its idle timer first).
    pub fn feed(&mut self, delta: &str) -> Fed {
        self.buffer.push_str(delta);
        let len = self.buffer.chars().count();
        if len >= self.settings.max_chars {
            return Fed { chunk: self.take_all(), arm_idle: false };
        }
        if len < self.settings.min_chars {
            return Fed { chunk: None, arm_idle: false };
        }
        if let Some(at) = self.buffer.rfind("\n\n") {
            return Fed { chunk: Some(self.take_to(at + 2)), arm_idle: false };
        }
        if self.settings.sentence_break
            && let Some(end) = last_sentence_end(&self.buffer)
        {
            return Fed { chunk: Some(self.take_to(end)), arm_idle: false };
        }
        Fed { chunk: None, arm_idle: true }
    }

    /// Everything buffered (idle timer, tool events, end of turn).
    pub fn take_all(&mut self) -> Option<String> {
        (!self.buffer.is_empty()).then(|| std::mem::take(&mut self.buffer))
    }

    fn take_to(&mut self, end: usize) -> String {
        let rest = self.buffer.split_off(end);
        std::mem::replace(&mut self.buffer, rest)
    }
}

/// End (byte index) of the last `[.!?]` followed by whitespace, including that whitespace.
fn last_sentence_end(text: &str) -> Option<usize> {
    let mut found = None;
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?')
            && let Some(&(at, next)) = chars.peek()
            && next.is_whitespace()
        {
            found = Some(at + next.len_utf8());
        }
    }
    found
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    html: String,
    indicator: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TrackedLine {
    name: String,
    system: bool,
    count: u32,
}

impl TrackedLine {
    fn render(&self) -> String {
        let name = escape(&self.name);
        let times = if self.count > 1 { format!(" x{}", self.count) } else { String::new() };
        if self.system { format!("<i>[{name}]{times}</i>") } else { format!("<b>[TOOL: {name}]{times}</b>") }
    }
}

/// The message being edited in place while an answer streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveMessage {
    segments: Vec<Segment>,
    pending: String,
    tracker: Vec<TrackedLine>,
}

impl LiveMessage {
    /// A text chunk: closes the tool block, adds the text.
    pub fn add_text(&mut self, chunk: &str) {
        self.close_tools();
        self.pending.push_str(chunk);
    }

    /// A tool call (`Bash` is shown as `Shell`); repeats collapse to a count.
    pub fn add_tool(&mut self, name: &str) {
        self.add_line(display_tool_name(name), false);
    }

    /// A status line (`THINKING`, `TIMEOUT APPROACHING`, …).
    pub fn add_system(&mut self, label: &str) {
        self.add_line(label.to_owned(), true);
    }

    fn add_line(&mut self, name: String, system: bool) {
        self.close_text();
        match self.tracker.last_mut() {
            Some(last) if last.name == name && last.system == system => last.count += 1,
            _ => self.tracker.push(TrackedLine { name, system, count: 1 }),
        }
    }

    fn close_text(&mut self) {
        if !self.pending.trim().is_empty() {
            self.segments.push(Segment { html: markdown_to_html(&self.pending), indicator: false });
        }
        self.pending.clear();
    }

    fn close_tools(&mut self) {
        if !self.tracker.is_empty() {
            let html = self.tracker.iter().map(TrackedLine::render).collect::<Vec<_>>().join("\n");
            self.segments.push(Segment { html, indicator: true });
            self.tracker.clear();
        }
    }

    /// Whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.pending.trim().is_empty() && self.tracker.is_empty()
    }

    /// What the message shows now.
    pub fn render(&self) -> String {
        let mut parts: Vec<String> = self.segments.iter().map(|s| s.html.clone()).collect();
        if !self.pending.trim().is_empty() {
            parts.push(markdown_to_html(&self.pending));
        }
        if !self.tracker.is_empty() {
            parts.push(self.tracker.iter().map(TrackedLine::render).collect::<Vec<_>>().join("\n"));
        }
        parts.join("\n\n")
    }

    /// The final text: the answer without tool and status lines.
    pub fn render_final(&self) -> String {
        let mut parts: Vec<String> = self.segments.iter().filter(|s| !s.indicator).map(|s| s.html.clone()).collect();
        if !self.pending.trim().is_empty() {
            parts.push(markdown_to_html(&self.pending));
        }
        parts.join("\n\n")
    }

    /// When the render no longer fits one message: the part that fills the current message
    /// (which is then sealed); what is left stays here as the start of the next message.
    pub fn take_overflow(&mut self) -> Option<String> {
        let rendered = self.render();
        if utf16_len(&rendered) <= MESSAGE_LIMIT {
            return None;
        }
        let mut chunks = split_html(&rendered, MESSAGE_LIMIT).into_iter();
        let first = chunks.next()?;
        let rest: Vec<String> = chunks.collect();
        self.segments = vec![Segment { html: rest.join("\n\n"), indicator: false }];
        self.pending.clear();
        self.tracker.clear();
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coalescer(min: usize, max: usize) -> Coalescer {
        Coalescer::new(CoalescerSettings { min_chars: min, max_chars: max, sentence_break: true })
    }

    #[test]
    fn coalescer_rules_in_order() {
        let mut c = coalescer(10, 40);
        assert_eq!(c.feed("short"), Fed { chunk: None, arm_idle: false }, "below min waits without a timer");
        assert_eq!(c.feed(" text\n\nnext"), Fed { chunk: Some("short text\n\n".into()), arm_idle: false });
        assert_eq!(c.feed(" part. and more"), Fed { chunk: Some("next part. ".into()), arm_idle: false });
        assert_eq!(c.feed(" words"), Fed { chunk: None, arm_idle: true }, "long enough, no break: idle timer");
        assert_eq!(c.take_all(), Some("and more words".into()));
        assert_eq!(c.feed(&"x".repeat(45)).chunk.map(|s| s.len()), Some(45), "max flushes all");
        assert_eq!(c.take_all(), None);
    }

    #[test]
    fn tools_collapse_and_vanish_from_the_final_text() {
        let mut m = LiveMessage::default();
        m.add_text("Looking.");
        m.add_tool("Bash");
        m.add_tool("bash");
        m.add_tool("Bash");
        assert_eq!(m.render(), "Looking.\n\n<b>[TOOL: Shell] x3</b>");
        m.add_system("THINKING");
        m.add_text("**Done**");
        assert_eq!(m.render(), "Looking.\n\n<b>[TOOL: Shell] x3</b>\n<i>[THINKING]</i>\n\n<b>Done</b>");
        assert_eq!(m.render_final(), "Looking.\n\n<b>Done</b>");
    }

    #[test]
    fn overflow_seals_the_first_part_and_keeps_the_rest() {
        let mut m = LiveMessage::default();
        m.add_text(&format!("{}\n\n{}", "a".repeat(3000), "b".repeat(3000)));
        let first = m.take_overflow().unwrap();
        assert_eq!(first, "a".repeat(3000));
        assert_eq!(m.render(), "b".repeat(3000));
        assert_eq!(m.take_overflow(), None);
    }
}

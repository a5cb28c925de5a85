//! The `/status` reply (core spec §5.4): session block, background jobs, CLI logins and what the
//! stream shows, as text from plain data.

use crate::core::text::render;

/// What `/status` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatStatus {
    /// Forum topic name, if any.
    pub topic_name: Option<String>,
    /// The session, if there is one.
    pub session: Option<SessionSummary>,
    /// The model the next turn uses.
    pub model: String,
    /// The configured model.
    pub configured_model: String,
    /// Named sessions working in the background: (name, prompt preview, seconds running).
    pub background: Vec<(String, String, u64)>,
    /// `(provider, status word, credential age in seconds)` for every CLI.
    pub auth: Vec<(String, String, Option<u64>)>,
    /// Streaming shows: reasoning, tool progress, thinking indicator.
    pub streaming: (bool, bool, bool),
}

/// The session part of `/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    /// CLI session id.
    pub session_id: String,
    /// Messages so far.
    pub messages: u64,
    /// Tokens so far.
    pub tokens: u64,
    /// Cost so far.
    pub cost_usd: f64,
}

const SEP: &str = "───";

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `45s`, `12m`, `3h`, `2d` ago.
pub fn age_text(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Renders the blocks joined by the separator.
pub fn render_status(status: &ChatStatus) -> String {
    let mut blocks = vec!["**Status**".to_owned()];
    let model_line = if status.model == status.configured_model {
        format!("Model: {}", status.model)
    } else {
        format!("Model: {} (configured: {})", status.model, status.configured_model)
    };
    let mut session_block = Vec::new();
    if let Some(topic) = &status.topic_name {
        session_block.push(format!("Topic: {topic}"));
    }
    match &status.session {
        Some(s) => {
            let short: String = s.session_id.chars().take(8).collect();
            session_block.push(format!("Session: {short}..."));
            session_block.push(format!("Messages: {}", s.messages));
            session_block.push(format!("Tokens: {}", thousands(s.tokens)));
            session_block.push(format!("Cost: ${:.4}", s.cost_usd));
        }
        None => session_block.push(render("status.no_session", &[])),
    }
    session_block.push(model_line);
    blocks.push(session_block.join("\n"));
    if !status.background.is_empty() {
        let lines: Vec<String> = status
            .background
            .iter()
            .map(|(name, prompt, age)| {
                let short: String = prompt.chars().take(40).collect();
                format!("{name} {short}... ({age}s)")
            })
            .collect();
        blocks.push(format!("Background:\n{}", lines.join("\n")));
    }
    let auth: Vec<String> = status
        .auth
        .iter()
        .map(|(provider, word, age)| match age {
            Some(age) => format!("  [{provider}] {word} ({} ago)", age_text(*age)),
            None => format!("  [{provider}] {word}"),
        })
        .collect();
    blocks.push(format!("CLIs:\n{}", auth.join("\n")));
    let on = |b: bool| if b { "on" } else { "off" };
    let (reasoning, tools, thinking) = status.streaming;
    blocks.push(format!(
        "Stream shows: reasoning {}, tool progress {}, thinking indicator {}",
        on(reasoning),
        on(tools),
        on(thinking)
    ));
    blocks.join(&format!("\n{SEP}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let status = ChatStatus {
            topic_name: Some("Topic #7".into()),
            session: Some(SessionSummary {
                session_id: "a8c43301-b916".into(),
                messages: 3,
                tokens: 1_234_567,
                cost_usd: 0.00144,
            }),
            model: "sonnet".into(),
            configured_model: "opus".into(),
            background: vec![("redowl".into(), "research the weather".into(), 12)],
            auth: vec![
                ("claude".into(), "authenticated".into(), Some(7200)),
                ("codex".into(), "not_found".into(), None),
            ],
            streaming: (false, true, true),
        };
        let text = render_status(&status);
        for part in [
            "Topic: Topic #7",
            "Session: a8c43301...",
            "Tokens: 1,234,567",
            "Cost: $0.0014",
            "Model: sonnet (configured: opus)",
            "redowl research the weather... (12s)",
            "  [claude] authenticated (2h ago)",
            "  [codex] not_found",
            "reasoning off, tool progress on",
        ] {
            assert!(text.contains(part), "missing {part:?} in\n{text}");
        }
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}

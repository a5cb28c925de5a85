//! Button menus and their callback data (core spec §5.3). The callback strings are a wire
//! contract: a button press comes back as exactly that text. Pure: the caller supplies which
//! CLIs are logged in and carries out the switch.

use crate::core::text::render;

/// One button: its label and the callback data it sends (or the address it opens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// What the user sees.
    pub text: String,
    /// What comes back when pressed (empty for a link).
    pub callback_data: String,
    /// A link button opens this address instead.
    pub url: Option<String>,
}

impl Button {
    /// A button whose press comes back as `data`.
    pub fn callback(text: &str, data: impl Into<String>) -> Self {
        Self { text: text.to_owned(), callback_data: data.into(), url: None }
    }

    /// A button that opens `url`.
    pub fn link(text: &str, url: &str) -> Self {
        Self { text: text.to_owned(), callback_data: String::new(), url: Some(url.to_owned()) }
    }
}

/// Rows of buttons.
pub type ButtonGrid = Vec<Vec<Button>>;

/// A menu: text and buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// The text above the buttons.
    pub text: String,
    /// The buttons.
    pub buttons: ButtonGrid,
}

fn button(text: &str, data: String) -> Button {
    Button::callback(text, data)
}

/// What a model-selector step leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStep {
    /// Show this menu (editing the selector message in place).
    Show(Menu),
    /// Switch to this model (with a reasoning effort for Codex).
    Switch {
        /// The model id.
        model: String,
        /// Codex reasoning effort.
        effort: Option<String>,
    },
    /// A text answer (nothing to choose from, or an unknown action).
    Say(String),
}

/// The CLIs in the selector's fixed order.
const PROVIDERS: [&str; 3] = ["claude", "codex", "gemini"];
const CLAUDE: [&str; 6] = ["haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]", "fable"];
const GEMINI: [&str; 4] = ["auto", "pro", "flash", "flash-lite"];
const EFFORTS: [(&str, &str); 4] = [("low", "Low"), ("medium", "Medium"), ("high", "High"), ("xhigh", "XHigh")];

/// What the selector needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorContext {
    /// The chat's current model.
    pub current_model: String,
    /// The configured model (shown in the main chat when it differs).
    pub configured_model: Option<String>,
    /// Logged-in CLIs (`claude`, `codex`, `gemini`).
    pub authenticated: Vec<String>,
    /// Codex models known from the cache: (id, display name, supported efforts).
    pub codex_models: Vec<(String, String, Vec<String>)>,
    /// Gemini models discovered beyond the aliases.
    pub gemini_models: Vec<String>,
}

fn header(ctx: &SelectorContext) -> String {
    let mut text = format!("**Model Selector**\nCurrent: {}", ctx.current_model);
    if let Some(configured) = ctx.configured_model.as_ref().filter(|c| **c != ctx.current_model) {
        text.push_str(&format!("\nConfigured default: {configured}"));
    }
    text
}

fn back(to: &str) -> Vec<Button> {
    vec![button("« Back", format!("ms:b:{to}"))]
}

/// The first step of `/model`.
pub fn start(ctx: &SelectorContext) -> ModelStep {
    let available: Vec<&str> = PROVIDERS.iter().copied().filter(|p| ctx.authenticated.iter().any(|a| a == p)).collect();
    match available.as_slice() {
        [] => ModelStep::Say(render("model.no_auth", &[])),
        [only] => provider_step(ctx, only, false),
        several => {
            let buttons: ButtonGrid = several
                .chunks(2)
                .map(|row| row.iter().map(|p| button(&p.to_uppercase(), format!("ms:p:{p}"))).collect())
                .collect();
            ModelStep::Show(Menu { text: header(ctx), buttons })
        }
    }
}

fn provider_step(ctx: &SelectorContext, provider: &str, with_back: bool) -> ModelStep {
    let mut buttons: ButtonGrid = match provider {
        "claude" => vec![CLAUDE.iter().map(|m| button(&m.to_uppercase(), format!("ms:m:{m}"))).collect()],
        "gemini" => {
            let mut models: Vec<String> = GEMINI.iter().map(|m| (*m).to_owned()).collect();
            let mut discovered = ctx.gemini_models.clone();
            discovered.sort_by_key(|m| (m.contains("preview"), m.clone()));
            models.extend(discovered);
            models
                .chunks(3)
                .map(|row| {
                    row.iter()
                        .map(|m| {
                            let label = m.strip_prefix("gemini-").or_else(|| m.strip_prefix("auto-")).unwrap_or(m);
                            button(label, format!("ms:m:{m}"))
                        })
                        .collect()
                })
                .collect()
        }
        "codex" if ctx.codex_models.is_empty() => {
            return ModelStep::Say(render("model.no_codex", &[]));
        }
        "codex" => ctx.codex_models.iter().map(|(id, name, _)| vec![button(name, format!("ms:m:{id}"))]).collect(),
        _ => return ModelStep::Say(unknown()),
    };
    if with_back {
        buttons.push(back("root"));
    }
    ModelStep::Show(Menu { text: header(ctx), buttons })
}

fn unknown() -> String {
    render("selector.unknown", &[])
}

/// Handles a pressed `ms:` button.
pub fn press(ctx: &SelectorContext, data: &str) -> ModelStep {
    let Some(action) = data.strip_prefix("ms:") else { return ModelStep::Say(unknown()) };
    let parts: Vec<&str> = action.splitn(3, ':').collect();
    match parts.as_slice() {
        ["b", "root"] => start(ctx),
        ["p" | "b", provider] => provider_step(ctx, provider, true),
        ["m", model] => {
            if let Some((_, _, supported)) = ctx.codex_models.iter().find(|(id, _, _)| id == model) {
                let row: Vec<Button> = EFFORTS
                    .iter()
                    .filter(|(effort, _)| supported.is_empty() || supported.iter().any(|s| s == effort))
                    .map(|(effort, label)| button(label, format!("ms:r:{effort}:{model}")))
                    .collect();
                let buttons = vec![row, back("codex")];
                ModelStep::Show(Menu { text: format!("{}\nReasoning effort for {model}:", header(ctx)), buttons })
            } else {
                ModelStep::Switch { model: (*model).to_owned(), effort: None }
            }
        }
        ["r", effort, model] => ModelStep::Switch { model: (*model).to_owned(), effort: Some((*effort).to_owned()) },
        _ => ModelStep::Say(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(authenticated: &[&str]) -> SelectorContext {
        SelectorContext {
            current_model: "opus".into(),
            configured_model: Some("opus".into()),
            authenticated: authenticated.iter().map(|s| (*s).to_owned()).collect(),
            codex_models: vec![
                ("gpt-5.4".into(), "GPT-5.4".into(), vec![]),
                ("gpt-mini".into(), "mini".into(), vec!["medium".into(), "high".into()]),
            ],
            gemini_models: vec!["gemini-3-pro-preview".into(), "gemini-2.5-pro".into()],
        }
    }

    fn data(step: &ModelStep) -> Vec<Vec<String>> {
        let ModelStep::Show(menu) = step else { panic!("{step:?}") };
        menu.buttons.iter().map(|row| row.iter().map(|b| b.callback_data.clone()).collect()).collect()
    }

    #[test]
    fn only_claude_logged_in_opens_its_row_directly() {
        let step = start(&ctx(&["claude"]));
        assert_eq!(data(&step)[0][0], "ms:m:haiku");
        assert_eq!(data(&step)[0].len(), 6);
    }

    #[test]
    fn several_providers_two_per_row_in_fixed_order() {
        assert_eq!(
            data(&start(&ctx(&["gemini", "claude", "codex"]))),
            vec![vec!["ms:p:claude", "ms:p:codex"], vec!["ms:p:gemini"]]
        );
        assert!(matches!(start(&ctx(&[])), ModelStep::Say(_)));
    }

    #[test]
    fn steps_and_switches() {
        let c = ctx(&["claude", "codex", "gemini"]);
        let gemini = data(&press(&c, "ms:p:gemini"));
        assert_eq!(gemini[0], ["ms:m:auto", "ms:m:pro", "ms:m:flash"]);
        assert_eq!(gemini[1], ["ms:m:flash-lite", "ms:m:gemini-2.5-pro", "ms:m:gemini-3-pro-preview"], "preview last");
        assert_eq!(gemini.last().unwrap(), &["ms:b:root"]);
        assert_eq!(press(&c, "ms:m:sonnet"), ModelStep::Switch { model: "sonnet".into(), effort: None });
        assert_eq!(data(&press(&c, "ms:m:gpt-5.4"))[0][3], "ms:r:xhigh:gpt-5.4");
        assert_eq!(
            data(&press(&c, "ms:m:gpt-mini"))[0],
            ["ms:r:medium:gpt-mini", "ms:r:high:gpt-mini"],
            "the model's own efforts"
        );
        assert_eq!(
            press(&c, "ms:r:high:gpt-5.4"),
            ModelStep::Switch { model: "gpt-5.4".into(), effort: Some("high".into()) }
        );
        assert!(matches!(press(&c, "ms:zz"), ModelStep::Say(_)));
        assert!(matches!(press(&c, "nsc:x"), ModelStep::Say(_)));
    }
}

/// A topic session of the chat in the session selector.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicLine {
    /// Topic name or `Topic #<id>`.
    pub label: String,
    /// Provider/model.
    pub target: String,
    /// Messages.
    pub messages: u64,
    /// Cost.
    pub cost_usd: f64,
}

/// A named session in the session selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedLine {
    /// Its name.
    pub name: String,
    /// Provider/model.
    pub target: String,
    /// `idle` / `running`.
    pub status: String,
    /// Messages.
    pub messages: u64,
    /// Age text (`45s`, `2m`, …).
    pub age: String,
    /// First prompt, shortened.
    pub preview: String,
}

/// The session selector (`nsc:`): the chat's topic sessions and named sessions, an end button
/// per named session, refresh, and end-all when there are several; `note` goes first.
pub fn sessions_menu(topics: &[TopicLine], named: &[NamedLine], note: Option<&str>) -> Menu {
    let mut text = String::new();
    if let Some(note) = note {
        text.push_str(note);
        text.push_str("\n\n");
    }
    text.push_str("**Sessions**");
    if topics.is_empty() && named.is_empty() {
        text.push_str("\nNo topic or named sessions in this chat.");
    }
    for topic in topics {
        text.push_str(&format!(
            "\n• {} — {} · {} messages · ${:.4}",
            topic.label, topic.target, topic.messages, topic.cost_usd
        ));
    }
    for session in named {
        text.push_str(&format!(
            "\n• **{}** — {} · {} · {} messages · {} · {}",
            session.name, session.target, session.status, session.messages, session.age, session.preview
        ));
    }
    let mut buttons: ButtonGrid =
        named.iter().map(|s| vec![button(&format!("End {}", s.name), format!("nsc:end:{}", s.name))]).collect();
    let mut last_row = vec![button("Refresh", "nsc:r".to_owned())];
    if named.len() > 1 {
        last_row.push(button("End all", "nsc:endall".to_owned()));
    }
    buttons.push(last_row);
    Menu { text, buttons }
}

/// A pressed `nsc:` button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsAction {
    /// End one named session.
    End(String),
    /// End all of the chat's named sessions.
    EndAll,
    /// Show the list again.
    Refresh,
    /// Not an `nsc:` action this build knows.
    Unknown,
}

/// Parses `nsc:` callback data.
pub fn sessions_action(data: &str) -> SessionsAction {
    match data.strip_prefix("nsc:") {
        Some("r") => SessionsAction::Refresh,
        Some("endall") => SessionsAction::EndAll,
        Some(rest) => match rest.strip_prefix("end:") {
            Some(name) if !name.is_empty() => SessionsAction::End(name.to_owned()),
            _ => SessionsAction::Unknown,
        },
        None => SessionsAction::Unknown,
    }
}

#[cfg(test)]
mod sessions_tests {
    use super::*;

    #[test]
    fn menu_and_actions() {
        let named = vec![
            NamedLine {
                name: "redowl".into(),
                target: "claude/opus".into(),
                status: "idle".into(),
                messages: 2,
                age: "3m".into(),
                preview: "poem".into(),
            },
            NamedLine {
                name: "calmfox".into(),
                target: "codex/gpt-5.4".into(),
                status: "running".into(),
                messages: 0,
                age: "5s".into(),
                preview: "fix".into(),
            },
        ];
        let topics =
            vec![TopicLine { label: "Topic #7".into(), target: "claude/sonnet".into(), messages: 1, cost_usd: 0.0012 }];
        let menu = sessions_menu(&topics, &named, Some("Ended redowl."));
        assert!(menu.text.starts_with("Ended redowl.\n\n**Sessions**"));
        assert!(menu.text.contains("Topic #7 — claude/sonnet · 1 messages · $0.0012"));
        let data: Vec<Vec<&str>> =
            menu.buttons.iter().map(|r| r.iter().map(|b| b.callback_data.as_str()).collect()).collect();
        assert_eq!(data, vec![vec!["nsc:end:redowl"], vec!["nsc:end:calmfox"], vec!["nsc:r", "nsc:endall"]]);
        assert_eq!(sessions_action("nsc:end:redowl"), SessionsAction::End("redowl".into()));
        assert_eq!(sessions_action("nsc:endall"), SessionsAction::EndAll);
        assert_eq!(sessions_action("nsc:r"), SessionsAction::Refresh);
        assert_eq!(sessions_action("nsc:end:"), SessionsAction::Unknown);
        assert_eq!(sessions_action("ms:r"), SessionsAction::Unknown);
    }
}

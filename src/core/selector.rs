//! Button menus and their callback data (core spec §5.3). The callback strings are a wire
//! contract: a button press comes back as exactly that text. Pure: the caller supplies which
//! CLIs are logged in and carries out the switch.

/// One button: its label and the callback data it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// What the user sees.
    pub text: String,
    /// What comes back when pressed.
    pub callback_data: String,
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
    Button { text: text.to_owned(), callback_data: data }
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
    /// Codex models known from the cache: (id, display name).
    pub codex_models: Vec<(String, String)>,
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
        [] => {
            ModelStep::Say("No CLI is logged in. Log in to claude, codex or gemini on this machine first.".to_owned())
        }
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
            return ModelStep::Say("No Codex models are known yet (the model list has not been read).".to_owned());
        }
        "codex" => ctx.codex_models.iter().map(|(id, name)| vec![button(name, format!("ms:m:{id}"))]).collect(),
        _ => return ModelStep::Say(unknown()),
    };
    if with_back {
        buttons.push(back("root"));
    }
    ModelStep::Show(Menu { text: header(ctx), buttons })
}

fn unknown() -> String {
    "Unknown selector action.".to_owned()
}

/// Handles a pressed `ms:` button.
pub fn press(ctx: &SelectorContext, data: &str) -> ModelStep {
    let Some(action) = data.strip_prefix("ms:") else { return ModelStep::Say(unknown()) };
    let parts: Vec<&str> = action.splitn(3, ':').collect();
    match parts.as_slice() {
        ["b", "root"] => start(ctx),
        ["p" | "b", provider] => provider_step(ctx, provider, true),
        ["m", model] => {
            let is_codex = ctx.codex_models.iter().any(|(id, _)| id == model);
            if is_codex {
                let row: Vec<Button> =
                    EFFORTS.iter().map(|(effort, label)| button(label, format!("ms:r:{effort}:{model}"))).collect();
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
            codex_models: vec![("gpt-5.4".into(), "GPT-5.4".into())],
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
            press(&c, "ms:r:high:gpt-5.4"),
            ModelStep::Switch { model: "gpt-5.4".into(), effort: Some("high".into()) }
        );
        assert!(matches!(press(&c, "ms:zz"), ModelStep::Say(_)));
        assert!(matches!(press(&c, "nsc:x"), ModelStep::Say(_)));
    }
}

//! Leading `@` directives of a message (core spec §4.3): `@sonnet fix the bug` picks a model,
//! `@redowl more please` addresses a named session. Only directives at the very start count.

/// What the directives of a message say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// The first directive that is a known model.
    pub model: Option<String>,
    /// Every other directive in order (lowercased key, optional `=value`).
    pub raw: Vec<(String, Option<String>)>,
    /// The text after the last directive, trimmed (the whole text when there is none).
    pub cleaned: String,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Parses the leading directives; `is_known_model` says which keys are models.
pub fn parse(text: &str, is_known_model: impl Fn(&str) -> bool) -> Directives {
    let mut directives = Directives::default();
    let mut rest = text.trim_start();
    while let Some(after_at) = rest.strip_prefix('@') {
        if !after_at.starts_with(|c: char| c.is_ascii_alphabetic()) {
            break;
        }
        let key_end = after_at.find(|c: char| !is_key_char(c)).unwrap_or(after_at.len());
        let key = after_at[..key_end].to_lowercase();
        let mut remainder = &after_at[key_end..];
        let mut value = None;
        if let Some(after_eq) = remainder.strip_prefix('=') {
            let value_end = after_eq.find(char::is_whitespace).unwrap_or(after_eq.len());
            if value_end > 0 {
                value = Some(after_eq[..value_end].to_owned());
                remainder = &after_eq[value_end..];
            }
        }
        if directives.model.is_none() && is_known_model(&key) {
            directives.model = Some(key);
        } else {
            directives.raw.push((key, value));
        }
        let trimmed = remainder.trim_start();
        let separated = trimmed.len() < remainder.len();
        rest = trimmed;
        if !separated {
            break;
        }
    }
    directives.cleaned = rest.trim().to_owned();
    directives
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(key: &str) -> bool {
        matches!(key, "opus" | "sonnet" | "gpt-5.4")
    }

    #[test]
    fn models_sessions_and_the_rest() {
        let d = parse("@sonnet fix the bug", known);
        assert_eq!((d.model.as_deref(), d.cleaned.as_str()), (Some("sonnet"), "fix the bug"));
        let d = parse("@redowl @Opus more please", known);
        assert_eq!(d.raw, vec![("redowl".to_owned(), None)]);
        assert_eq!(d.model.as_deref(), Some("opus"));
        assert_eq!(d.cleaned, "more please");
        let d = parse("email me @opus", known);
        assert_eq!((d.model, d.cleaned.as_str()), (None, "email me @opus"));
        let d = parse("@opus[1m] hi", known);
        assert_eq!((d.model.as_deref(), d.cleaned.as_str()), (Some("opus"), "[1m] hi"));
        let d = parse("@foo=bar hello", known);
        assert_eq!((d.raw, d.cleaned.as_str()), (vec![("foo".to_owned(), Some("bar".to_owned()))], "hello"));
        let d = parse("@sonnet", known);
        assert_eq!((d.model.as_deref(), d.cleaned.as_str()), (Some("sonnet"), ""));
    }
}

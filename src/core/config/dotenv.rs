//! `.env` secrets (ops spec §12): parsing, and which of them a CLI process gets.

/// Parses `.env` text: `KEY=VALUE` per line; blank lines and `#` comments skipped; optional
/// `export ` prefix; key and value trimmed; a value in matching single or double quotes loses
/// the quotes (no escapes, `#` kept); an unquoted value ends at the first `#`. Lines without
/// `=` or with an empty key are ignored. Later duplicates win.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        let value = value.trim();
        let quoted = value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"')) || (value.starts_with('\'') && value.ends_with('\'')));
        let value = if quoted {
            value[1..value.len() - 1].to_owned()
        } else {
            value.split('#').next().unwrap_or("").trim().to_owned()
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_owned(), value));
    }
    out
}

/// The secrets a child process gets: only those not already in ductor's own environment.
pub fn env_for_child(
    secrets: &[(String, String)],
    own_env: impl Fn(&str) -> bool,
) -> impl Iterator<Item = (&str, &str)> {
    secrets.iter().filter(move |(k, _)| !own_env(k)).map(|(k, v)| (k.as_str(), v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_comments_and_export() {
        let text = "# secrets\nexport FOO=\"a # b\"\nBAR=x # c\n\nnoequals\n=empty\nQ='single'\nBAR=y\n";
        let parsed = parse_dotenv(text);
        assert_eq!(
            parsed,
            vec![("FOO".into(), "a # b".into()), ("Q".into(), "single".into()), ("BAR".into(), "y".into())]
        );
    }

    #[test]
    fn own_environment_wins() {
        let secrets = parse_dotenv("FOO=file\nBAR=file\n");
        let child: Vec<_> = env_for_child(&secrets, |k| k == "FOO").collect();
        assert_eq!(child, vec![("BAR", "file")]);
    }
}

//! `ductor api [enable|disable]` (ops spec §18.2): switches the direct WebSocket API in
//! `config.json`, keeping every other key. `enable` sets `api.enabled`, generates `api.token` at
//! the first enable (32 random bytes, URL-safe; a placeholder such as `YOUR_…` counts as none),
//! fills the missing keys with their defaults and leaves `config.json` readable by its owner
//! only; `disable` keeps the token. Without a sub-command: the commands and the status.

use serde_json::{Map, Value, json};

use crate::core::config::model::ApiConfig;
use crate::store::config_file::{read_raw_config, restrict_to_owner, update_config_keys};
use crate::store::paths::DuctorPaths;

const HELP: &str = "\
  ductor api enable     Turn the direct WebSocket API on (creates its token)
  ductor api disable    Turn it off (the token is kept)
";

/// Runs `ductor api …`; `rest` are the words after `api`. Returns the exit status.
pub fn run(paths: &DuctorPaths, rest: &[String]) -> i32 {
    let path = paths.config_file();
    if !path.exists() {
        eprintln!("config not found: {path} (run `ductor` for the setup wizard)");
        return 1;
    }
    let raw = match read_raw_config(&path) {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("could not read config: {e}");
            return 1;
        }
    };
    let api = raw.get("api").and_then(Value::as_object).cloned();
    match rest.first().map(String::as_str) {
        Some("enable") => enable(paths, api.unwrap_or_default()),
        Some("disable") => disable(paths, api),
        _ => {
            print!("{HELP}");
            let status = match &api {
                None => "not configured".to_owned(),
                Some(api) if api.get("enabled").and_then(Value::as_bool) == Some(true) => {
                    format!("enabled (port {})", api.get("port").and_then(Value::as_u64).unwrap_or(8741))
                }
                Some(_) => "disabled".to_owned(),
            };
            println!("\nStatus: {status}");
            0
        }
    }
}

fn is_placeholder(token: &str) -> bool {
    let token = token.trim();
    token.is_empty() || token.starts_with("YOUR_")
}

fn enable(paths: &DuctorPaths, mut api: Map<String, Value>) -> i32 {
    let defaults = ApiConfig::default();
    api.insert("enabled".into(), json!(true));
    let token = match api.get("token").and_then(Value::as_str) {
        Some(token) if !is_placeholder(token) => token.trim().to_owned(),
        _ => crate::core::webhook::token_from_bytes(&rand::random::<[u8; 32]>()),
    };
    api.insert("token".into(), json!(token));
    for (key, value) in [
        ("host", json!(defaults.host)),
        ("port", json!(defaults.port)),
        ("chat_id", json!(defaults.chat_id)),
        ("allow_public", json!(defaults.allow_public)),
    ] {
        api.entry(key).or_insert(value);
    }
    let host = api.get("host").and_then(Value::as_str).unwrap_or(&defaults.host).to_owned();
    let port = api.get("port").and_then(Value::as_u64).unwrap_or(u64::from(defaults.port));
    if let Err(e) = update_config_keys(paths, &[("api", Value::Object(api))]) {
        eprintln!("could not write config: {e}");
        return 1;
    }
    restrict_to_owner(&paths.config_file());
    println!("Direct API enabled.");
    println!("  Host:  {host}");
    println!("  Port:  {port}");
    println!("  Token: {token}");
    println!("Restart ductor to apply (`ductor restart`).");
    0
}

fn disable(paths: &DuctorPaths, api: Option<Map<String, Value>>) -> i32 {
    let Some(mut api) = api else {
        println!("The direct API is not configured.");
        return 0;
    };
    api.insert("enabled".into(), json!(false));
    if let Err(e) = update_config_keys(paths, &[("api", Value::Object(api))]) {
        eprintln!("could not write config: {e}");
        return 1;
    }
    println!("Direct API disabled (its token is kept). Restart ductor to apply (`ductor restart`).");
    0
}

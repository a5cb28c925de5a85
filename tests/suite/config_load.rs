//! The config load algorithm against files on disk (ops spec §2.10 acceptance checks).

use std::time::Duration;

use ductor::store::config_file::{ConfigError, load_config};
use ductor::store::paths::DuctorPaths;
use serde_json::{Value, json};

fn home_with(config: &str) -> (tempfile::TempDir, DuctorPaths) {
    let (dir, home) = crate::support::temp_home();
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::write(home.join("config/config.json"), config).unwrap();
    (dir, DuctorPaths::at(home))
}

fn file(paths: &DuctorPaths) -> Value {
    serde_json::from_str(&std::fs::read_to_string(paths.config_file()).unwrap()).unwrap()
}

#[test]
fn minimal_file_gains_every_default_and_keeps_user_values() {
    let (_d, paths) = home_with(r#"{"telegram_token": "1:x", "allowed_user_ids": [7], "mine": {"keep": true}}"#);
    let loaded = load_config(&paths).unwrap();
    assert!(loaded.rewritten);
    let written = file(&paths);
    for key in ductor::core::config::defaults_json().as_object().unwrap().keys() {
        assert!(written.get(key).is_some(), "{key} added");
    }
    assert_eq!(written["gemini_api_key"], "null");
    assert!(written["_comment"].is_string());
    assert_eq!(written["telegram_token"], "1:x");
    assert_eq!(written["allowed_user_ids"], json!([7]));
    assert_eq!(written["mine"], json!({"keep": true}), "unknown user keys kept");
    assert_eq!(written["cli_timeout"], json!(1800.0));
    assert_eq!(written["timeouts"]["normal"], json!(1800.0));
    assert!(std::fs::read_to_string(paths.config_file()).unwrap().contains("\"cli_timeout\": 1800.0"));
}

#[test]
fn nested_user_object_keeps_unknown_keys_and_gains_defaults() {
    let (_d, paths) = home_with(r#"{"streaming": {"enabled": false, "bogus": 1}, "heartbeat": {"group_targets": []}}"#);
    let loaded = load_config(&paths).unwrap();
    let written = file(&paths);
    assert_eq!(written["streaming"]["enabled"], false);
    assert_eq!(written["streaming"]["bogus"], 1);
    assert_eq!(written["streaming"]["min_chars"], 200);
    assert_eq!(written["heartbeat"]["group_targets"], json!([]), "arrays are not merged");
    assert!(!loaded.config.streaming.enabled);
    assert!(loaded.config.heartbeat.group_targets.is_empty());
}

#[test]
fn complete_file_is_not_rewritten() {
    let (_d, paths) = home_with(r#"{"telegram_token": "1:x", "allowed_user_ids": [7]}"#);
    load_config(&paths).unwrap();
    let before = std::fs::read(paths.config_file()).unwrap();
    let mtime = std::fs::metadata(paths.config_file()).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let loaded = load_config(&paths).unwrap();
    assert!(!loaded.rewritten);
    assert_eq!(std::fs::read(paths.config_file()).unwrap(), before);
    assert_eq!(std::fs::metadata(paths.config_file()).unwrap().modified().unwrap(), mtime);
}

#[test]
fn invalid_json_is_an_error_naming_file_and_position_and_the_file_is_untouched() {
    let text = "{\n  \"telegram_token\": \"1:x\",,\n}";
    let (_d, paths) = home_with(text);
    let err = load_config(&paths).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidJson { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("config/config.json"), "{err}");
    assert_eq!(std::fs::read_to_string(paths.config_file()).unwrap(), text);
}

#[test]
fn wrong_type_is_an_error_naming_the_key_and_the_file_is_untouched() {
    let text = r#"{"streaming": true}"#;
    let (_d, paths) = home_with(text);
    let err = load_config(&paths).unwrap_err().to_string();
    assert!(
        err.contains("config/config.json") && err.contains("key 'streaming'") && err.contains("expected an object"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(paths.config_file()).unwrap(), text);
}

#[test]
fn compaction_target_above_trigger_aborts() {
    let (_d, paths) = home_with(r#"{"memory_compaction": {"trigger_lines": 10, "target_lines": 11}}"#);
    let err = load_config(&paths).unwrap_err().to_string();
    assert!(err.contains("memory_compaction.target_lines"), "{err}");
}

#[test]
fn cli_timeout_900_with_normal_600_means_900() {
    let (_d, paths) = home_with(r#"{"cli_timeout": 900, "timeouts": {"normal": 600}}"#);
    assert_eq!(load_config(&paths).unwrap().config.timeouts.normal, 900.0);
}

#[test]
fn matrix_transport_is_authoritative_and_written_back() {
    let (_d, paths) = home_with(r#"{"transport": "matrix", "transports": ["telegram"]}"#);
    let loaded = load_config(&paths).unwrap();
    assert_eq!(loaded.config.transports, ["matrix", "telegram"]);
    assert_eq!(file(&paths)["transports"], json!(["matrix", "telegram"]));
    let (_d, paths) = home_with(r#"{"transport": "matrix"}"#);
    assert_eq!(load_config(&paths).unwrap().config.transports, ["matrix"]);
}

#[test]
fn gemini_key_none_is_unset() {
    let (_d, paths) = home_with(r#"{"gemini_api_key": " None "}"#);
    assert_eq!(load_config(&paths).unwrap().config.gemini_api_key, None);
}

#[test]
fn missing_file_is_reported_not_created() {
    let (_d, home) = crate::support::temp_home();
    let paths = DuctorPaths::at(home);
    assert!(matches!(load_config(&paths), Err(ConfigError::Missing { .. })));
    assert!(!paths.config_file().exists());
}

#[test]
fn python_written_config_loads_without_adding_or_dropping_anything() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python-home-0.18.2/home/config/config.json");
    let text = std::fs::read_to_string(fixture).unwrap();
    let (_d, paths) = home_with(&text);
    let loaded = load_config(&paths).unwrap();
    assert!(!loaded.rewritten, "nothing to add");
    assert_eq!(std::fs::read_to_string(paths.config_file()).unwrap(), text, "file untouched");
    assert_eq!(file(&paths).as_object().unwrap().len(), 46);
    let config = loaded.config;
    assert_eq!(config.allowed_user_ids, [1001, 1002]);
    assert_eq!(config.allowed_group_ids, [-1_001_234_567_890]);
    assert_eq!(config.user_timezone, "Europe/Berlin");
    assert!(!config.group_mention_only);
    assert_eq!(config.interagent_port, 18555);
    assert_eq!(config.provider, "codex");
    assert_eq!(config.transport_short_names(), ["tg"]);
    assert_eq!(config.timeouts.normal, 1800.0);
}

#[test]
fn dotenv_is_reread_when_it_changes() {
    let (_d, home) = crate::support::temp_home();
    let paths = DuctorPaths::at(home.clone());
    let mut env = ductor::store::config_file::DotEnv::new(&paths);
    assert!(env.current().is_empty());
    std::fs::write(home.join(".env"), "FOO=\"a # b\"\nBAR=x # c\n").unwrap();
    assert_eq!(env.current(), [("FOO".to_owned(), "a # b".to_owned()), ("BAR".to_owned(), "x".to_owned())]);
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(home.join(".env"), "FOO=new\n").unwrap();
    assert_eq!(env.current(), [("FOO".to_owned(), "new".to_owned())]);
    std::fs::remove_file(home.join(".env")).unwrap();
    assert!(env.current().is_empty());
}

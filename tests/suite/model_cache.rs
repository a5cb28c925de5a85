//! The model caches: the fake `codex app-server` (a real child process) answers
//! `model/list`; the list lands in `config/codex_models.json` and the catalog; a failing
//! discovery keeps what the file had; nothing at all gives the fallback list. Gemini models are
//! read from an installed CLI package laid out like the real one.

use std::time::Duration;

use ductor::chat::model_catalog::ModelCatalog;
use ductor::observer::model_cache::{ModelCache, ModelCacheArgs, load_file};
use ductor::store::paths::DuctorPaths;
use ractor::Actor;

async fn run_cache(paths: &DuctorPaths, program: &str, path_env: Option<String>) -> ModelCatalog {
    let catalog = ModelCatalog::default();
    let args = ModelCacheArgs {
        paths: paths.clone(),
        catalog: catalog.clone(),
        program: program.to_owned(),
        env: path_env.map(|p| vec![("PATH".to_owned(), p)]).unwrap_or_default(),
        every: Duration::from_secs(3600),
    };
    let (actor, _) = Actor::spawn(None, ModelCache, args).await.unwrap();
    // The first refresh runs right after start; a stop waits for it to finish.
    tokio::time::sleep(Duration::from_millis(50)).await;
    actor.drain_and_wait(Some(Duration::from_secs(30))).await.unwrap();
    catalog
}

#[tokio::test]
async fn discovered_models_are_cached_and_kept_when_discovery_fails() {
    let (dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = crate::support::fake_cli::install(&root);
    let paths = DuctorPaths::at(home);
    paths.ensure_dirs().unwrap();
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());

    let catalog = run_cache(&paths, "codex", Some(path)).await;
    let ids: Vec<String> = catalog.codex().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["gpt-5.5", "gpt-5.5-mini"]);
    let file = load_file(&paths).unwrap();
    assert_eq!(file.models[0].display_name, "GPT-5.5");
    assert_eq!(file.models[0].supported_efforts, ["medium", "high"]);
    assert!(file.models[0].is_default);

    let catalog = run_cache(&paths, "/nonexistent/codex", None).await;
    assert_eq!(catalog.codex().len(), 2, "the file's models are kept");
    assert_eq!(load_file(&paths).unwrap().models.len(), 2, "a failed discovery does not overwrite the file");
    drop(dir);
}

#[tokio::test]
async fn nothing_known_gives_the_fallback_list() {
    let (_dir, home) = crate::support::temp_home();
    let paths = DuctorPaths::at(home);
    paths.ensure_dirs().unwrap();
    let catalog = run_cache(&paths, "/nonexistent/codex", None).await;
    let models = catalog.codex();
    assert_eq!(models.iter().find(|m| m.is_default).map(|m| m.id.as_str()), Some("gpt-5.3-codex"));
    assert!(load_file(&paths).is_none(), "the fallback is not written");
}

/// A Gemini CLI installed the newer way: `bin/gemini` → the bundle, model set in a chunk.
fn install_gemini_bundle(root: &camino::Utf8Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let package = root.join("lib/node_modules/@google/gemini-cli");
    std::fs::create_dir_all(package.join("bundle")).unwrap();
    std::fs::write(package.join("package.json"), r#"{"name": "@google/gemini-cli"}"#).unwrap();
    std::fs::write(package.join("bundle/gemini.js"), "#!/usr/bin/env node\n").unwrap();
    std::fs::set_permissions(package.join("bundle/gemini.js"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        package.join("bundle/chunk-7.js"),
        r#"var m1="gemini-3-pro-preview",m2="gemini-2.5-pro";var VALID_GEMINI_MODELS=new Set([m1,m2,"gemini-2.5-flash"]);"#,
    )
    .unwrap();
    std::fs::create_dir_all(root.join("gbin")).unwrap();
    std::os::unix::fs::symlink(package.join("bundle/gemini.js"), root.join("gbin/gemini")).unwrap();
    root.join("gbin").to_string()
}

#[tokio::test]
async fn gemini_models_are_read_from_the_installed_cli_and_kept_when_it_is_gone() {
    let (dir, home) = crate::support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let gbin = install_gemini_bundle(&root);
    let paths = DuctorPaths::at(home);
    paths.ensure_dirs().unwrap();
    let expected = ["gemini-3-pro-preview", "gemini-2.5-pro", "gemini-2.5-flash"];

    let catalog = run_cache(&paths, "/nonexistent/codex", Some(gbin)).await;
    assert_eq!(catalog.gemini(), expected);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(paths.model_cache("gemini")).unwrap()).unwrap();
    assert_eq!(file["models"], serde_json::json!(expected));
    assert!(file["last_updated"].as_str().unwrap().starts_with("20"));

    let catalog = run_cache(&paths, "/nonexistent/codex", Some("/nonexistent".into())).await;
    assert_eq!(catalog.gemini(), expected, "the file's models are kept");
    drop(dir);

    let (_dir, home) = crate::support::temp_home();
    let paths = DuctorPaths::at(home);
    paths.ensure_dirs().unwrap();
    let catalog = run_cache(&paths, "/nonexistent/codex", Some("/nonexistent".into())).await;
    assert_eq!(catalog.gemini(), ["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro"], "fallback");
    assert!(!paths.model_cache("gemini").exists(), "the fallback is not written");
}

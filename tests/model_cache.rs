//! The Codex model cache with a real child process: the fake `codex app-server` answers
//! `model/list`; the list lands in `config/codex_models.json` and the catalog; a failing
//! discovery keeps what the file had; nothing at all gives the fallback list.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use ductor::runtime::model_cache::{ModelCache, ModelCacheArgs, ModelCatalog, load_file};
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
    let (dir, home) = support::temp_home();
    let root = home.parent().unwrap().to_owned();
    let bin = support::fake_cli::install(&root);
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
    let (_dir, home) = support::temp_home();
    let paths = DuctorPaths::at(home);
    paths.ensure_dirs().unwrap();
    let catalog = run_cache(&paths, "/nonexistent/codex", None).await;
    let models = catalog.codex();
    assert_eq!(models.iter().find(|m| m.is_default).map(|m| m.id.as_str()), Some("gpt-5.3-codex"));
    assert!(load_file(&paths).is_none(), "the fallback is not written");
}

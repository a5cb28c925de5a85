//! Every sample in `config-samples/` loads the way a user would use it.

use ductor::core::config::dotenv::parse_dotenv;
use ductor::core::state::agents::SubAgents;
use ductor::core::state::cron_jobs::CronJobs;
use ductor::core::state::webhooks::Webhooks;
use ductor::store::atomic::Loaded;
use ductor::store::config_file::load_config;
use ductor::store::paths::DuctorPaths;
use ductor::store::state_files::StateFile;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config-samples");

fn home_with(file: &str, target: &str) -> (tempfile::TempDir, DuctorPaths) {
    let (dir, home) = crate::support::temp_home();
    let to = home.join(target);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(format!("{SAMPLES}/{file}"), &to).unwrap();
    (dir, DuctorPaths::at(home))
}

#[test]
fn telegram_sample_loads_and_is_configured() {
    let (_d, paths) = home_with("config.json", "config/config.json");
    let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(paths.config_file()).unwrap()).unwrap();
    assert!(ductor::core::config::configured_problems(&raw).is_empty());
    let config = load_config(&paths).unwrap().config;
    assert_eq!(config.allowed_user_ids, [123_456_789]);
    assert_eq!(config.transport_short_names(), ["tg"]);
    assert!(config.group_mention_only);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(paths.config_file()).unwrap()).unwrap();
    assert!(written["streaming"]["_comment"].is_string(), "notes are kept");
}

#[test]
fn matrix_sample_loads_and_passes_the_start_check() {
    let (_d, paths) = home_with("config.matrix.json", "config/config.json");
    let config = load_config(&paths).unwrap().config;
    assert_eq!(config.transport_short_names(), ["mx"]);
    assert!(ductor::core::config::start_problems(&config).is_empty());
}

#[test]
fn state_samples_load() {
    let (_d, paths) = home_with("agents.json", "agents.json");
    let Loaded::Found(agents) = SubAgents::load(&paths) else { panic!("agents.json") };
    assert_eq!(agents.agents[0].name, "research");
    assert!(agents.warnings.is_empty());

    let (_d, paths) = home_with("cron_jobs.json", "cron_jobs.json");
    let Loaded::Found(cron) = CronJobs::load(&paths) else { panic!("cron_jobs.json") };
    assert_eq!(cron.jobs.len(), 2);
    assert_eq!(cron.jobs[1].dependency.as_deref(), Some("daily-report"));

    let (_d, paths) = home_with("webhooks.json", "webhooks.json");
    let Loaded::Found(hooks) = Webhooks::load(&paths) else { panic!("webhooks.json") };
    assert_eq!(hooks.hooks.iter().map(|h| h.auth_mode.as_str()).collect::<Vec<_>>(), ["bearer", "hmac"]);
}

#[test]
fn dotenv_sample_parses() {
    let text = std::fs::read_to_string(format!("{SAMPLES}/.env")).unwrap();
    let secrets = parse_dotenv(&text);
    assert_eq!(
        secrets,
        [
            ("GITHUB_TOKEN".to_owned(), "ghp_replace_me".to_owned()),
            ("MY_SERVICE_KEY".to_owned(), "abc#def".to_owned()),
            ("OPENAI_BASE_URL".to_owned(), "http://127.0.0.1:8080".to_owned()),
        ]
    );
}

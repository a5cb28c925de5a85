//! The tool commands as an agent's CLI runs them — the real `ductor` binary on a temporary home:
//! `ductor cron …` and `ductor webhook …` (their JSON keys, task folders, refusals, usage), the
//! python wrapper scripts deployed into the workspace (same output as the binary), the one-writer
//! path through a running service, `webhook test` against the real webhook server, and ten
//! concurrent adds beside a writer of run statuses losing nothing.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::binary::{Service, free_port, write_config};
use camino::{Utf8Path, Utf8PathBuf};
use ductor::core::config::Config;
use ductor::core::config::model::WebhooksConfig;
use ductor::core::state::StateFileKind;
use ductor::core::state::cron_jobs::CronJobs;
use ductor::core::state::webhooks::Webhooks;
use ductor::core::workspace::AuthenticatedClis;
use ductor::observer::webhook_server::{
    AcceptedHook, ListenAddress, WebhookServer, WebhookServerArgs, WebhookSink, WebhookTable,
};
use ductor::runtime::health_board::HealthBoard;
use ductor::store::locked_state;
use ductor::store::paths::DuctorPaths;
use ductor::store::workspace::{self, WorkspaceEnv};
use ductor::transport::internal_api::{InternalApi, InternalApiArgs, StateChangeHook};
use nix::sys::signal::Signal;
use ractor::Actor;
use serde_json::{Value, json};

/// What one command printed.
#[derive(Debug, Clone, PartialEq)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!("stdout is not one JSON object ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }

    fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.json()
    }

    fn refused(&self) -> Value {
        assert_eq!(self.code, 1, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        let json = self.json();
        assert!(json["error"].is_string(), "{json}");
        json
    }
}

fn finish(child: std::process::Child, what: &str) -> Ran {
    let out = child.wait_with_output().unwrap();
    let ran = Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(ran.code >= 0, "{what} was killed: {ran:?}");
    ran
}

/// Runs `ductor <args>` on `home` with `env` (and none of the caller's `DUCTOR_*` routing).
fn ductor(home: &Utf8Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = crate::support::binary::ductor(home);
    for name in ["DUCTOR_CHAT_ID", "DUCTOR_TOPIC_ID", "DUCTOR_TRANSPORT", "DUCTOR_BIN"] {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied()).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    finish(cmd.spawn().unwrap(), &format!("ductor {}", args.join(" ")))
}

fn read_jobs(home: &Utf8Path) -> CronJobs {
    serde_json::from_str(&std::fs::read_to_string(home.join("cron_jobs.json")).unwrap()).unwrap()
}

fn read_raw(path: &Utf8Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn add_job(home: &Utf8Path, name: &str) -> Value {
    ductor(home, &["cron", "add", "--name", name, "--title", "T", "--description", "D", "--schedule", "0 9 * * *"], &[])
        .ok()
}

fn keys(value: &Value) -> Vec<&str> {
    value.as_object().unwrap().keys().map(String::as_str).collect()
}

// ---- cron ----

#[test]
fn cron_add_sanitizes_the_name_and_makes_the_task_folder() {
    let (_dir, home) = crate::support::temp_home();
    let out = ductor(
        &home,
        &[
            "cron",
            "add",
            "--name",
            "Daily Report!",
            "--title",
            "Daily report",
            "--description",
            "Summarise the inbox",
            "--schedule",
            "0 9 * * 1-5",
            "--provider",
            "codex",
            "--model",
            "gpt-5.4",
            "--reasoning-effort",
            "high",
            "--cli-parameters",
            r#"["--search"]"#,
            "--quiet-start",
            "22",
            "--quiet-end",
            "7",
            "--dependency",
            "browser",
            "--silent-on-success",
        ],
        &[("DUCTOR_CHAT_ID", "-1001234567890"), ("DUCTOR_TOPIC_ID", "7"), ("DUCTOR_TRANSPORT", "mx")],
    )
    .ok();
    assert_eq!(
        keys(&out),
        [
            "job_id",
            "schedule",
            "timezone",
            "task_folder",
            "folder_created",
            "json_entry_created",
            "action_required",
            "timezone_warning",
            "name_sanitized",
            "original_name",
            "warning",
            "via",
        ]
    );
    assert_eq!(out["job_id"], "daily-report");
    assert_eq!(out["task_folder"], "cron_tasks/daily-report");
    assert_eq!(out["timezone"], "UTC (no user_timezone configured)");
    assert_eq!((&out["name_sanitized"], &out["original_name"]), (&json!(true), &json!("Daily Report!")));
    assert_eq!(
        (&out["folder_created"], &out["json_entry_created"], &out["via"]),
        (&json!(true), &json!(true), &json!("local"))
    );
    assert!(out["action_required"].as_array().unwrap().len() >= 3);

    let folder = home.join("workspace/cron_tasks/daily-report");
    let description = std::fs::read_to_string(folder.join("TASK_DESCRIPTION.md")).unwrap();
    assert!(description.contains("Daily report") && description.contains("Summarise the inbox"), "{description}");
    assert!(std::fs::read_to_string(folder.join("daily-report_MEMORY.md")).unwrap().contains("daily-report"));
    assert!(folder.join("scripts").is_dir());
    assert!(std::fs::read_to_string(folder.join("CLAUDE.md")).unwrap().contains("daily-report_MEMORY.md"));

    let file = read_raw(&home.join("cron_jobs.json"));
    let job = &file["jobs"][0];
    for (key, value) in [
        ("id", json!("daily-report")),
        ("task_folder", json!("daily-report")),
        ("schedule", json!("0 9 * * 1-5")),
        ("enabled", json!(true)),
        ("last_run_at", Value::Null),
        ("last_run_status", Value::Null),
        ("provider", json!("codex")),
        ("model", json!("gpt-5.4")),
        ("reasoning_effort", json!("high")),
        ("cli_parameters", json!(["--search"])),
        ("quiet_start", json!(22)),
        ("quiet_end", json!(7)),
        ("dependency", json!("browser")),
        ("silent_on_success", json!(true)),
        ("chat_id", json!(-1001234567890_i64)),
        ("topic_id", json!(7)),
        ("transport", json!("mx")),
    ] {
        assert_eq!(job[key], value, "{key} in {job}");
    }
    assert!(job["agent_instruction"].as_str().unwrap().contains("TASK_DESCRIPTION.md"));
    assert!(ductor::core::state::parse_timestamp(job["created_at"].as_str().unwrap()).is_some());
    assert!(job.get("timezone").is_none(), "no zone given: none written");

    let again = ductor(
        &home,
        &["cron", "add", "--name", "daily-report", "--title", "T", "--description", "D", "--schedule", "* * * * *"],
        &[],
    )
    .refused();
    assert!(again["error"].as_str().unwrap().contains("already exists"), "{again}");
    assert_eq!(read_jobs(&home).jobs.len(), 1);
}

#[test]
fn cron_add_uses_the_configured_zone_and_checks_what_it_is_given() {
    let (_dir, home) = crate::support::temp_home();
    crate::support::configure_home(&home, &json!({"user_timezone": "Asia/Tokyo"}));
    let out = add_job(&home, "tokyo");
    assert_eq!(out["timezone"], "Asia/Tokyo");
    assert!(out.get("timezone_warning").is_none() && out.get("name_sanitized").is_none());
    assert_eq!(read_jobs(&home).jobs[0].transport.as_deref(), Some("tg"), "default transport");
    assert_eq!(read_jobs(&home).jobs[0].chat_id, None);

    let base = ["cron", "add", "--name", "x", "--title", "T", "--description", "D"];
    for (extra, expected) in [
        (&["--schedule", "61 * * * *"][..], "--schedule"),
        (&["--schedule", "* * *"][..], "--schedule"),
        (&["--schedule", "* * * * *", "--timezone", "Mars/Olympus"][..], "IANA"),
        (&["--schedule", "* * * * *", "--provider", "antigravity"][..], "--provider"),
        (&["--schedule", "* * * * *", "--quiet-start", "24"][..], "--quiet-start"),
        (&["--schedule", "* * * * *", "--cli-parameters", "--chrome"][..], "--cli-parameters"),
        (&["--schedule", "* * * * *", "--bogus"][..], "--bogus"),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let refused = ductor(&home, &args, &[]).refused();
        assert!(refused["error"].as_str().unwrap().contains(expected), "{extra:?}: {refused}");
    }
    assert_eq!(read_jobs(&home).jobs.len(), 1, "nothing refused was written");
    assert!(!home.join("workspace/cron_tasks/x").exists());
}

#[test]
fn cron_edit_renames_the_job_its_folder_and_its_memory_file() {
    let (_dir, home) = crate::support::temp_home();
    add_job(&home, "Daily Report!");
    let folder = home.join("workspace/cron_tasks/daily-report");
    std::fs::write(folder.join("daily-report_MEMORY.md"), "# daily-report Memory\n- ran once\n").unwrap();
    std::fs::write(folder.join("scripts/fetch.sh"), "echo hi\n").unwrap();

    let out = ductor(&home, &["cron", "edit", "daily-report", "--name", "weekly", "--schedule", "0 9 * * 1"], &[]).ok();
    assert_eq!(
        keys(&out),
        [
            "job_id",
            "updated",
            "updated_fields",
            "schedule",
            "enabled",
            "task_folder",
            "folder_renamed",
            "memory_file_renamed",
            "notes",
            "original_name",
            "new_name",
            "via",
        ]
    );
    assert_eq!(out["job_id"], "weekly");
    assert_eq!(out["updated_fields"], json!(["id", "task_folder", "schedule"]));
    assert_eq!((&out["folder_renamed"], &out["memory_file_renamed"]), (&json!(true), &json!(true)));
    assert_eq!(out["task_folder"], "cron_tasks/weekly");
    let moved = home.join("workspace/cron_tasks/weekly");
    assert!(!folder.exists());
    assert_eq!(std::fs::read_to_string(moved.join("weekly_MEMORY.md")).unwrap(), "# daily-report Memory\n- ran once\n");
    assert_eq!(std::fs::read_to_string(moved.join("scripts/fetch.sh")).unwrap(), "echo hi\n");
    let rules = std::fs::read_to_string(moved.join("CLAUDE.md")).unwrap();
    assert!(rules.contains("weekly_MEMORY.md") && !rules.contains("daily-report_MEMORY.md"), "{rules}");
    let job = &read_jobs(&home).jobs[0];
    assert_eq!((job.id.as_str(), job.task_folder.as_str(), job.schedule.as_str()), ("weekly", "weekly", "0 9 * * 1"));

    let out = ductor(
        &home,
        &["cron", "edit", "weekly", "--disable", "--chat-id", "-100", "--topic-id", "3", "--clear-topic-id"],
        &[],
    )
    .ok();
    assert_eq!(out["updated_fields"], json!(["chat_id", "topic_id", "topic_id (cleared)", "enabled"]));
    assert_eq!(out["enabled"], false);
    let job = &read_jobs(&home).jobs[0];
    assert_eq!((job.enabled, job.topic_id, job.chat_id.map(|c| c.get())), (false, None, Some(-100)));

    let same = ductor(&home, &["cron", "edit", "weekly", "--disable"], &[]).ok();
    assert_eq!((&same["updated"], &same["job_id"]), (&json!(false), &json!("weekly")));
    assert!(same["message"].is_string());

    let missing = ductor(&home, &["cron", "edit", "nope", "--enable"], &[]).refused();
    assert_eq!(missing["available_jobs"], json!(["weekly"]));
}

#[test]
fn cron_remove_deletes_the_entry_and_the_folder() {
    let (_dir, home) = crate::support::temp_home();
    add_job(&home, "weekly");
    add_job(&home, "other");
    let out = ductor(&home, &["cron", "remove", "weekly"], &[]).ok();
    assert_eq!(keys(&out), ["job_id", "json_entry_removed", "folder_deleted", "folder_path", "via"]);
    assert_eq!((&out["json_entry_removed"], &out["folder_deleted"]), (&json!(true), &json!(true)));
    assert!(out["folder_path"].as_str().unwrap().ends_with("workspace/cron_tasks/weekly"));
    assert!(!home.join("workspace/cron_tasks/weekly").exists());
    assert!(home.join("workspace/cron_tasks/other").is_dir());
    assert_eq!(read_jobs(&home).jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["other"]);
    let again = ductor(&home, &["cron", "remove", "weekly"], &[]).refused();
    assert_eq!(again["available_jobs"], json!(["other"]));
}

#[test]
fn cron_list_and_time() {
    let (_dir, home) = crate::support::temp_home();
    add_job(&home, "a");
    add_job(&home, "b");
    std::fs::remove_dir_all(home.join("workspace/cron_tasks/b")).unwrap();
    let out = ductor(&home, &["cron", "list"], &[]).ok();
    assert_eq!(keys(&out), ["jobs", "count", "user_timezone", "how_to_modify", "how_to_create", "how_to_edit"]);
    assert_eq!(out["count"], 2);
    assert_eq!(
        keys(&out["jobs"][0]),
        ["id", "title", "schedule", "task_folder", "enabled", "last_run_at", "last_run_status", "task_folder_exists"]
    );
    assert_eq!(
        (&out["jobs"][0]["task_folder_exists"], &out["jobs"][1]["task_folder_exists"]),
        (&json!(true), &json!(false))
    );
    assert!(out["user_timezone"].as_str().unwrap().starts_with("NOT SET"));

    let time = ductor(&home, &["cron", "time"], &[]).ok();
    assert!(time["utc"].as_str().unwrap().ends_with(" UTC"));
    assert_eq!(time["common_zones"].as_array().unwrap().len(), 13);
    assert_eq!(keys(&time["common_zones"][0]), ["zone", "time", "date", "utc_offset"]);
    let tokyo = ductor(&home, &["cron", "time", "--zone", "Asia/Tokyo"], &[]).ok();
    assert_eq!(tokyo["requested_zone"]["utc_offset"], "+0900");
    let some = ductor(&home, &["cron", "time", "--zones", "Europe/Berlin,Asia/Kolkata"], &[]).ok();
    assert_eq!(some["requested_zones"][1]["utc_offset"], "+0530");
    let unknown = ductor(&home, &["cron", "time", "--zone", "Mars/Olympus"], &[]).refused();
    assert!(unknown["error"].as_str().unwrap().contains("Mars/Olympus"));
}

#[test]
fn a_corrupt_cron_jobs_file_is_an_error_and_stays_as_it_is() {
    let (_dir, home) = crate::support::temp_home();
    let corrupt = "{\"jobs\": [{\"id\": \"half";
    std::fs::write(home.join("cron_jobs.json"), corrupt).unwrap();
    for args in [
        &["cron", "add", "--name", "x", "--title", "T", "--description", "D", "--schedule", "* * * * *"][..],
        &["cron", "edit", "x", "--title", "Y"][..],
        &["cron", "remove", "x"][..],
        &["cron", "list"][..],
    ] {
        let refused = ductor(&home, args, &[]).refused();
        assert!(refused["error"].as_str().unwrap().contains("cron_jobs.json"), "{args:?}: {refused}");
    }
    assert_eq!(std::fs::read_to_string(home.join("cron_jobs.json")).unwrap(), corrupt);
    assert!(!home.join("workspace/cron_tasks/x").exists());
}

#[test]
fn missing_arguments_show_the_usage_and_exit_1() {
    let (_dir, home) = crate::support::temp_home();
    for (args, heading, missing) in [
        (&["cron", "add", "--name", "x"][..], "ductor cron add", "Missing: --title, --description, --schedule"),
        (&["cron", "edit"][..], "ductor cron edit", "Missing: JOB_ID"),
        (&["cron", "edit", "x"][..], "ductor cron edit", "Missing: at least one change"),
        (&["cron", "remove"][..], "ductor cron remove", "Missing: JOB_ID"),
        (&["webhook", "add", "--name", "x", "--mode", "wake"][..], "ductor webhook add", "--prompt-template"),
        (&["webhook", "edit"][..], "ductor webhook edit", "Missing: HOOK_ID"),
        (&["webhook", "test"][..], "ductor webhook test", "Missing: HOOK_ID"),
    ] {
        let ran = ductor(&home, args, &[]);
        assert_eq!(ran.code, 1, "{args:?}: {ran:?}");
        assert!(ran.stdout.starts_with(heading) && ran.stdout.contains(missing), "{args:?}:\n{}", ran.stdout);
    }
    let help = ductor(&home, &["cron", "add", "--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--schedule") && !help.stdout.contains("Missing"));
    let group = ductor(&home, &["webhook"], &[]);
    assert_eq!(group.code, 0);
    assert!(group.stdout.contains("ductor webhook rotate-token"));
    let unknown = ductor(&home, &["cron", "frobnicate"], &[]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stdout.contains("Unknown command: ductor cron frobnicate"));
    assert!(!home.join("cron_jobs.json").exists() && !home.join("webhooks.json").exists());
}

// ---- webhooks ----

#[test]
fn webhook_add_edit_rotate_list_and_remove() {
    let (_dir, home) = crate::support::temp_home();
    let base =
        ["webhook", "add", "--title", "CI", "--description", "CI finished", "--prompt-template", "CI {{status}}"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> { base.iter().chain(extra).copied().collect() };

    let refused = ductor(&home, &with(&["--name", "ci", "--mode", "cron_task"]), &[]).refused();
    assert_eq!(refused, json!({"error": "--task-folder is required for mode 'cron_task'", "via": "local"}));
    assert!(!home.join("webhooks.json").exists());

    let out = ductor(&home, &with(&["--name", "Mail Hook", "--mode", "wake"]), &[]).ok();
    assert_eq!(
        keys(&out),
        [
            "hook_id",
            "mode",
            "auth_mode",
            "endpoint",
            "json_entry_created",
            "bearer_token",
            "setup_instructions",
            "server_note",
            "name_sanitized",
            "original_name",
            "via",
        ]
    );
    assert_eq!((&out["hook_id"], &out["endpoint"]), (&json!("mail-hook"), &json!("/hooks/mail-hook")));
    let token = out["bearer_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));

    let out = ductor(&home, &with(&["--name", "ci", "--mode", "cron_task", "--task-folder", "CI Task"]), &[]).ok();
    assert_eq!((&out["task_folder"], &out["folder_created"]), (&json!("cron_tasks/ci-task"), &json!(true)));
    let folder = home.join("workspace/cron_tasks/ci-task");
    for file in ["CLAUDE.md", "AGENTS.md", "TASK_DESCRIPTION.md", "ci-task_MEMORY.md"] {
        assert!(folder.join(file).is_file(), "{file}");
    }

    let hmac = ["--name", "gh", "--mode", "wake", "--auth-mode", "hmac"];
    let refused = ductor(&home, &with(&hmac), &[]).refused();
    assert!(refused["error"].as_str().unwrap().contains("--hmac-secret"));
    let bad_regex =
        [&hmac[..], &["--hmac-secret", "s", "--hmac-header", "X-Sig", "--hmac-sig-regex", "v1=[0-9a-f]+"]].concat();
    let refused = ductor(&home, &with(&bad_regex), &[]).refused();
    assert!(refused["error"].as_str().unwrap().contains("--hmac-sig-regex"), "{refused}");
    let good = [&hmac[..], &["--hmac-secret", "s3cret", "--hmac-header", "X-Hub-Signature-256"]].concat();
    let out = ductor(&home, &with(&good), &[]).ok();
    assert!(out.get("bearer_token").is_none());
    assert!(out["setup_instructions"]["step_3_hmac_signing"].as_str().unwrap().contains("X-Hub-Signature-256"));

    let file = read_raw(&home.join("webhooks.json"));
    let hooks = file["hooks"].as_array().unwrap();
    assert_eq!(hooks.iter().map(|h| h["id"].as_str().unwrap()).collect::<Vec<_>>(), ["mail-hook", "ci", "gh"]);
    assert_eq!(hooks[0]["token"], token.as_str());
    assert_eq!((&hooks[1]["task_folder"], &hooks[1]["mode"]), (&json!("ci-task"), &json!("cron_task")));
    assert_eq!((&hooks[2]["token"], &hooks[2]["hmac_secret"]), (&json!(""), &json!("s3cret")));
    for key in
        ["created_at", "trigger_count", "last_triggered_at", "last_error", "provider", "cli_parameters", "dependency"]
    {
        assert!(hooks[2].get(key).is_some(), "{key} written");
    }

    let edited = ductor(&home, &["webhook", "edit", "mail-hook", "--disable", "--regenerate-token"], &[]).ok();
    assert_eq!(keys(&edited), ["hook_id", "changes", "updated", "action_required", "via"]);
    let new_token = edited["changes"]["new_bearer_token"].as_str().unwrap();
    assert_ne!(new_token, token);
    let refused = ductor(&home, &["webhook", "edit", "gh", "--regenerate-token"], &[]).refused();
    assert!(refused["error"].as_str().unwrap().contains("HMAC"));
    let refused = ductor(&home, &["webhook", "edit", "gh"], &[]).refused();
    assert!(refused["error"].as_str().unwrap().starts_with("No changes"));

    let rotated = ductor(&home, &["webhook", "rotate-token"], &[]).ok();
    assert_eq!(rotated["count"], 2, "both bearer hooks, not the hmac one");
    let refused = ductor(&home, &["webhook", "rotate-token", "gh"], &[]).refused();
    assert!(refused["hint"].is_string());

    let list = ductor(&home, &["webhook", "list"], &[]).ok();
    assert_eq!(list["count"], 3);
    assert_eq!(list["server"], json!({"enabled": false, "host": "127.0.0.1", "port": 8742, "global_token_set": false}));
    let first = &list["hooks"][0];
    assert_eq!(
        (&first["enabled"], &first["token_set"], &first["hmac_configured"]),
        (&json!(false), &json!(true), &json!(false))
    );
    assert_eq!(list["hooks"][1]["task_folder_exists"], true);

    let removed = ductor(&home, &["webhook", "remove", "ci"], &[]).ok();
    assert_eq!(removed["json_entry_removed"], true);
    assert!(folder.is_dir(), "a removed hook's task folder stays");
    let refused = ductor(&home, &["webhook", "remove", "ci"], &[]).refused();
    assert_eq!(refused["available_hooks"], json!(["mail-hook", "gh"]));
}

/// Starts the real webhook server on a free port with the hooks in the home's `webhooks.json`,
/// and writes that port into the home's config.
async fn webhook_server(
    home: &Utf8Path,
    token: &str,
) -> (
    ractor::ActorRef<ductor::observer::webhook_server::WebhookServerMsg>,
    tokio::task::JoinHandle<()>,
    Arc<Mutex<Vec<AcceptedHook>>>,
) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink_got = Arc::clone(&got);
    let sink: WebhookSink = Arc::new(move |accepted| {
        sink_got.lock().unwrap().push(accepted);
        Box::pin(async { Ok(()) })
    });
    let table = WebhookTable::new();
    let hooks: Webhooks = serde_json::from_value(read_raw(&home.join("webhooks.json"))).unwrap();
    assert!(table.replace(&hooks).is_empty());
    let config = WebhooksConfig {
        enabled: true,
        host: "127.0.0.1".into(),
        port: 0,
        token: token.into(),
        max_body_bytes: 4096,
        rate_limit_per_minute: 100,
    };
    let listen = ListenAddress::default();
    let args = WebhookServerArgs { config, paths: DuctorPaths::at(home), table, sink, listen: listen.clone() };
    let (actor, ended) = Actor::spawn(None, WebhookServer, args).await.unwrap();
    let port = listen.get().unwrap().port();
    crate::support::configure_home(
        home,
        &json!({"webhooks": {"enabled": true, "host": "127.0.0.1", "port": port, "token": token}}),
    );
    (actor, ended, got)
}

async fn ductor_async(home: &Utf8Path, args: &[&str]) -> Ran {
    let home = home.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ductor(&home, &args, &[])
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_test_is_accepted_by_the_real_server_with_bearer_and_hmac() {
    let (_dir, home) = crate::support::temp_home();
    let base =
        ["webhook", "add", "--title", "T", "--description", "D", "--prompt-template", "x {{a}}", "--mode", "wake"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> { base.iter().chain(extra).copied().collect() };
    for extra in [
        &["--name", "bearer"][..],
        &["--name", "github", "--auth-mode", "hmac", "--hmac-secret", "s3cret", "--hmac-header", "X-Hub-Signature-256"],
        &[
            "--name",
            "stripe",
            "--auth-mode",
            "hmac",
            "--hmac-secret",
            "whsec",
            "--hmac-header",
            "Stripe-Signature",
            "--hmac-sig-prefix",
            "",
            "--hmac-sig-regex",
            "v1=([0-9a-f]+)",
            "--hmac-payload-prefix-regex",
            r"t=(\d+)",
        ],
        &[
            "--name",
            "shopify",
            "--auth-mode",
            "hmac",
            "--hmac-secret",
            "k",
            "--hmac-header",
            "X-Shopify-Hmac-Sha256",
            "--hmac-encoding",
            "base64",
            "--hmac-sig-prefix",
            "",
            "--hmac-algorithm",
            "sha512",
        ],
    ] {
        ductor_async(&home, &with(extra)).await.ok();
    }
    // A hook without its own token is tested with the server's.
    let mut hooks: Webhooks = serde_json::from_value(read_raw(&home.join("webhooks.json"))).unwrap();
    hooks.hooks[0].token.clear();
    std::fs::write(home.join("webhooks.json"), serde_json::to_string_pretty(&hooks).unwrap()).unwrap();
    let disabled = ductor_async(&home, &["webhook", "test", "bearer"]).await.refused();
    assert!(disabled["error"].as_str().unwrap().contains("not enabled"), "{disabled}");

    let (actor, ended, got) = webhook_server(&home, "global-token").await;
    for id in ["bearer", "github", "stripe", "shopify"] {
        let out = ductor_async(&home, &["webhook", "test", id, "--payload", r#"{"a": "from the test"}"#]).await.ok();
        assert_eq!(out["status"], 202, "{id}: {out}");
        assert_eq!(out["response"], json!({"accepted": true, "hook_id": id}));
        assert_eq!(out["auth_mode"], if id == "bearer" { "bearer" } else { "hmac" });
        assert!(out["url"].as_str().unwrap().ends_with(&format!("/hooks/{id}")));
    }
    let received: Vec<(String, Value)> =
        got.lock().unwrap().iter().map(|a| (a.hook.id.clone(), Value::Object(a.payload.clone()))).collect();
    assert_eq!(received.len(), 4);
    assert!(received.iter().all(|(_, payload)| payload == &json!({"a": "from the test"})));

    // The server refuses a wrong signature: the test shows the 401 and exits 1.
    let mut hooks: Webhooks = serde_json::from_value(read_raw(&home.join("webhooks.json"))).unwrap();
    hooks.hooks.iter_mut().find(|h| h.id == "github").unwrap().hmac_secret = "other".into();
    std::fs::write(home.join("webhooks.json"), serde_json::to_string_pretty(&hooks).unwrap()).unwrap();
    let refused = ductor_async(&home, &["webhook", "test", "github"]).await;
    assert_eq!(refused.code, 1);
    assert_eq!(refused.json()["status"], 401);

    let unknown = ductor_async(&home, &["webhook", "test", "nope"]).await.refused();
    assert_eq!(unknown["available_hooks"].as_array().unwrap().len(), 4);
    actor.stop(None);
    tokio::time::timeout(Duration::from_secs(5), ended).await.unwrap().unwrap();
    let down = ductor_async(&home, &["webhook", "test", "bearer"]).await.refused();
    assert!(down["error"].as_str().unwrap().starts_with("Connection failed"), "{down}");
}

// ---- the python wrappers ----

const WRAPPERS: [(&str, &str, &str); 11] = [
    ("cron_tools/cron_add.py", "cron", "add"),
    ("cron_tools/cron_edit.py", "cron", "edit"),
    ("cron_tools/cron_list.py", "cron", "list"),
    ("cron_tools/cron_remove.py", "cron", "remove"),
    ("cron_tools/cron_time.py", "cron", "time"),
    ("webhook_tools/webhook_add.py", "webhook", "add"),
    ("webhook_tools/webhook_edit.py", "webhook", "edit"),
    ("webhook_tools/webhook_list.py", "webhook", "list"),
    ("webhook_tools/webhook_remove.py", "webhook", "remove"),
    ("webhook_tools/webhook_rotate_token.py", "webhook", "rotate-token"),
    ("webhook_tools/webhook_test.py", "webhook", "test"),
];

/// A home whose workspace ductor deployed (tool scripts included).
fn deployed_home() -> (tempfile::TempDir, Utf8PathBuf) {
    let (dir, home) = crate::support::temp_home();
    let user_home = home.parent().unwrap().to_owned();
    let env = WorkspaceEnv::new(user_home, &|_| None, AuthenticatedClis::CLAUDE_ONLY);
    let report = workspace::init(&DuctorPaths::at(home.clone()), &Config::default(), &env);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    for (script, _, _) in WRAPPERS {
        let path = home.join("workspace/tools").join(script);
        assert!(report.overwritten.contains(&path), "{script} is deployed as Zone 2");
    }
    (dir, home)
}

/// Runs a wrapper script with python3 from the workspace, as an agent's CLI does.
fn wrapper(home: &Utf8Path, script: &str, args: &[&str], env: &[(&str, Option<&str>)]) -> Ran {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(format!("tools/{script}"))
        .args(args)
        .current_dir(home.join("workspace"))
        .env("DUCTOR_HOME", home.as_str())
        .env("HOME", home.parent().unwrap().as_str())
        .env("DUCTOR_BIN", env!("CARGO_BIN_EXE_ductor"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in ["DUCTOR_CHAT_ID", "DUCTOR_TOPIC_ID", "DUCTOR_TRANSPORT"] {
        cmd.env_remove(name);
    }
    for (name, value) in env {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    finish(cmd.spawn().unwrap(), script)
}

/// The output with what differs between two homes made equal: the home path, tokens, the
/// current UTC time.
fn comparable(ran: &Ran, home: &Utf8Path) -> (i32, String, String) {
    let mut stdout = ran.stdout.replace(home.as_str(), "<home>");
    if let Ok(json) = serde_json::from_str::<Value>(stdout.trim()) {
        let mut tokens = Vec::new();
        collect_tokens(&json, &mut tokens);
        for token in tokens {
            stdout = stdout.replace(&token, "<token>");
        }
    }
    if let Ok(mut json) = serde_json::from_str::<Value>(stdout.trim()) {
        mask(&mut json);
        stdout = json.to_string();
    }
    (ran.code, stdout, ran.stderr.replace(home.as_str(), "<home>"))
}

fn collect_tokens(value: &Value, tokens: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("bearer_token" | "new_bearer_token", Value::String(token)) => tokens.push(token.clone()),
                    _ => collect_tokens(inner, tokens),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_tokens(item, tokens)),
        _ => {}
    }
}

fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "utc" {
                    *inner = json!("<varies>");
                } else {
                    mask(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

#[test]
fn every_wrapper_script_prints_what_the_binary_prints() {
    let (_a, by_binary) = deployed_home();
    let (_b, by_script) = deployed_home();
    let steps: Vec<(&str, Vec<&str>)> = vec![
        (
            "cron_tools/cron_add.py",
            vec!["--name", "Daily Report!", "--title", "Daily", "--description", "D", "--schedule", "0 9 * * *"],
        ),
        ("cron_tools/cron_add.py", vec!["--name", "x"]),
        ("cron_tools/cron_edit.py", vec!["daily-report", "--schedule", "*/5 * * * *", "--name", "weekly"]),
        ("cron_tools/cron_list.py", vec![]),
        ("cron_tools/cron_time.py", vec!["--zone", "Nowhere/City"]),
        ("cron_tools/cron_remove.py", vec!["weekly"]),
        (
            "webhook_tools/webhook_add.py",
            vec![
                "--name",
                "mail",
                "--title",
                "M",
                "--description",
                "D",
                "--mode",
                "wake",
                "--prompt-template",
                "from {{from}}",
            ],
        ),
        (
            "webhook_tools/webhook_add.py",
            vec!["--name", "ci", "--title", "C", "--description", "D", "--mode", "cron_task", "--prompt-template", "x"],
        ),
        ("webhook_tools/webhook_edit.py", vec!["mail", "--disable", "--quiet-start", "22"]),
        ("webhook_tools/webhook_rotate_token.py", vec!["mail"]),
        ("webhook_tools/webhook_list.py", vec![]),
        ("webhook_tools/webhook_test.py", vec!["mail", "--payload", "{\"from\": \"me\"}"]),
        ("webhook_tools/webhook_remove.py", vec!["mail"]),
    ];
    for (script, args) in steps {
        let (_, group, sub) = WRAPPERS.iter().find(|(s, _, _)| *s == script).unwrap();
        let direct: Vec<&str> = [*group, *sub].into_iter().chain(args.iter().copied()).collect();
        let expected = ductor(&by_binary, &direct, &[]);
        let got = wrapper(&by_script, script, &args, &[]);
        assert_eq!(comparable(&got, &by_script), comparable(&expected, &by_binary), "{script} {args:?}");
    }
    assert_eq!(
        std::fs::read_to_string(by_binary.join("webhooks.json")).unwrap().lines().count(),
        std::fs::read_to_string(by_script.join("webhooks.json")).unwrap().lines().count()
    );
    for (script, _, _) in WRAPPERS {
        let ran = wrapper(&by_script, script, &["--help"], &[]);
        assert_eq!(ran.code, 0, "{script}: {ran:?}");
        assert!(!ran.stdout.is_empty());
    }
}

#[test]
fn a_wrapper_finds_ductor_on_the_path_or_says_it_cannot() {
    let (_dir, home) = deployed_home();
    let binary_dir = Utf8Path::new(env!("CARGO_BIN_EXE_ductor")).parent().unwrap();
    let path = format!("{binary_dir}:/usr/bin:/bin");
    let found = wrapper(&home, "cron_tools/cron_list.py", &[], &[("DUCTOR_BIN", None), ("PATH", Some(&path))]);
    assert_eq!(found.json()["count"], 0);
    let none = wrapper(&home, "cron_tools/cron_list.py", &[], &[("DUCTOR_BIN", None), ("PATH", Some("/usr/bin:/bin"))]);
    assert_eq!(none.code, 1);
    assert!(none.json()["error"].as_str().unwrap().contains("ductor was not found"), "{none:?}");
    let wrong = wrapper(&home, "webhook_tools/webhook_list.py", &[], &[("DUCTOR_BIN", Some("/nonexistent/ductor"))]);
    assert_eq!(wrong.code, 1);
    assert!(wrong.json()["error"].as_str().unwrap().contains("/nonexistent/ductor"));
}

// ---- one writer while the service runs ----

fn log_text(home: &Utf8Path) -> String {
    std::fs::read_to_string(home.join("logs/agent.log")).unwrap_or_default()
}

#[test]
fn while_the_service_runs_changes_go_through_it() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let mut service = Service::start(&home, port, &[]);

    let out = add_job(&home, "through-service");
    assert_eq!(out["via"], "service", "{out}");
    assert_eq!(out["job_id"], "through-service");
    assert!(home.join("workspace/cron_tasks/through-service/TASK_DESCRIPTION.md").is_file());
    assert_eq!(read_jobs(&home).jobs[0].id, "through-service");
    let edited = ductor(&home, &["cron", "edit", "through-service", "--disable"], &[]).ok();
    assert_eq!((&edited["via"], &edited["enabled"]), (&json!("service"), &json!(false)));
    let hook = ductor(
        &home,
        &[
            "webhook",
            "add",
            "--name",
            "h",
            "--title",
            "T",
            "--description",
            "D",
            "--mode",
            "wake",
            "--prompt-template",
            "p",
        ],
        &[],
    )
    .ok();
    assert_eq!(hook["via"], "service");
    let refused = ductor(&home, &["cron", "remove", "nope"], &[]).refused();
    assert_eq!(refused["via"], "service", "refusals come from the service too");
    assert!(crate::support::binary::eventually(Duration::from_secs(5), || {
        let log = log_text(&home);
        log.contains("Tool command applied by the service") && log.contains("webhook add")
    }));
    let log = log_text(&home);
    assert!(log.contains("command=\"cron add\"") || log.contains("command=cron add"), "{log}");

    service.signal(Signal::SIGTERM);
    service.wait_exit(Duration::from_secs(6));
    let out = ductor(&home, &["cron", "remove", "through-service"], &[]).ok();
    assert_eq!(out["via"], "local");
    assert!(read_jobs(&home).jobs.is_empty());
}

/// The internal API in this test process, running tool commands for `home`.
async fn internal_api(
    port: u16,
    home: &Utf8Path,
    hook: Option<StateChangeHook>,
) -> (ractor::ActorRef<ductor::transport::internal_api::InternalApiMsg>, tokio::task::JoinHandle<()>) {
    let args = InternalApiArgs {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        board: HealthBoard::new(),
        agents: {
            let agents = ductor::chat::agent_directory::AgentDirectory::new();
            agents.register(ductor::chat::agent_directory::AgentEntry {
                name: "main".to_owned(),
                paths: DuctorPaths::at(home),
                config: Arc::new(ductor::core::config::Config::default()),
                bus: ductor::runtime::bus::BusHandle::new(),
                orchestrator: ductor::chat::orchestrator::OrchestratorHandle::new(),
            });
            agents
        },
        token: crate::support::binary::TEST_TOKEN.to_owned(),
        on_state_change: hook,
        inter_agent: ductor::tasks::inter_agent::InterAgent::new(ductor::chat::agent_directory::AgentDirectory::new()),
        tasks: ductor::tasks::hub::TaskHubHandle::new(),
    };
    Actor::spawn(None, InternalApi, args).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_the_operation_for_its_own_home_and_announces_the_change() {
    let (_dir, home) = crate::support::temp_home();
    let home = home.canonicalize_utf8().unwrap();
    let port = free_port();
    crate::support::configure_home(&home, &json!({"interagent_port": port}));
    // This test process plays the running service of the home.
    std::fs::write(home.join("bot.pid"), std::process::id().to_string()).unwrap();
    let changes = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let changes = Arc::clone(&changes);
        StateChangeHook::new(move |agent, kind| changes.lock().unwrap().push((agent.to_owned(), kind)))
    };
    let (api, ended) = internal_api(port, &home, Some(hook)).await;

    let add = ["cron", "add", "--name", "a", "--title", "T", "--description", "D", "--schedule", "0 9 * * *"];
    assert_eq!(ductor_async(&home, &add).await.ok()["via"], "service");
    let hook_add = [
        "webhook",
        "add",
        "--name",
        "h",
        "--title",
        "T",
        "--description",
        "D",
        "--mode",
        "wake",
        "--prompt-template",
        "p",
    ];
    assert_eq!(ductor_async(&home, &hook_add).await.ok()["via"], "service");
    let unchanged = ductor_async(&home, &["cron", "edit", "a", "--enable"]).await.ok();
    assert_eq!((&unchanged["updated"], &unchanged["via"]), (&json!(false), &json!("service")));
    ductor_async(&home, &["cron", "remove", "nope"]).await.refused();
    assert_eq!(
        *changes.lock().unwrap(),
        [("main".to_owned(), StateFileKind::CronJobs), ("main".to_owned(), StateFileKind::Webhooks)],
        "only the changes that wrote a file are announced"
    );
    api.stop(None);
    tokio::time::timeout(Duration::from_secs(5), ended).await.unwrap().unwrap();

    // A service on that port that runs another home does not take the command.
    let (_other_dir, other) = crate::support::temp_home();
    let (api, ended) = internal_api(port, &other, None).await;
    let ran = ductor_async(
        &home,
        &["cron", "add", "--name", "b", "--title", "T", "--description", "D", "--schedule", "0 9 * * *"],
    )
    .await;
    assert_eq!(ran.ok()["via"], "local");
    assert!(ran.stderr.contains("HTTP 404"), "{}", ran.stderr);
    assert!(!other.join("cron_jobs.json").exists());
    assert_eq!(read_jobs(&home).jobs.len(), 2);
    api.stop(None);
    tokio::time::timeout(Duration::from_secs(5), ended).await.unwrap().unwrap();
}

#[test]
fn a_live_pid_that_does_not_answer_makes_the_command_write_itself() {
    let (_dir, home) = crate::support::temp_home();
    write_config(&home, free_port());
    let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(home.join("bot.pid"), other.id().to_string()).unwrap();
    let started = Instant::now();
    let ran = ductor(
        &home,
        &["cron", "add", "--name", "a", "--title", "T", "--description", "D", "--schedule", "0 9 * * *"],
        &[],
    );
    let out = ran.ok();
    assert_eq!(out["via"], "local");
    assert!(ran.stderr.contains("making the change here instead"), "{}", ran.stderr);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(read_jobs(&home).jobs.len(), 1);
    other.kill().unwrap();
    other.wait().unwrap();
}

/// Ten `ductor cron add` at once while another writer keeps setting a job's `last_run_status`
/// through the locked update: every add and the last status survive.
fn concurrent_adds_beside_a_status_writer(home: &Utf8Path, via: &str) -> Duration {
    add_job(home, "status-job");
    let paths = DuctorPaths::at(home.canonicalize_utf8().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, last, paths) = (Arc::clone(&stop), Arc::clone(&last), paths.clone());
        std::thread::spawn(move || {
            let mut n = 0_u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                locked_state::update::<CronJobs, _>(&paths, |jobs| {
                    let job = jobs.jobs.iter_mut().find(|j| j.id == "status-job").unwrap();
                    job.last_run_status = Some(format!("run-{n}"));
                    (true, ())
                })
                .unwrap();
                last.store(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let started = Instant::now();
    let adds: Vec<_> = (0..10)
        .map(|i| {
            let home = home.to_owned();
            std::thread::spawn(move || {
                let name = format!("job-{i}");
                ductor(
                    &home,
                    &["cron", "add", "--name", &name, "--title", "T", "--description", "D", "--schedule", "0 9 * * *"],
                    &[],
                )
            })
        })
        .collect();
    let results: Vec<Ran> = adds.into_iter().map(|t| t.join().unwrap()).collect();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    for ran in &results {
        let out = ran.ok();
        assert_eq!((&out["json_entry_created"], &out["via"]), (&json!(true), &json!(via)), "{out}");
    }
    let jobs = read_jobs(home);
    let mut ids: Vec<&str> = jobs.jobs.iter().map(|j| j.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected: Vec<String> = (0..10).map(|i| format!("job-{i}")).collect();
    expected.push("status-job".to_owned());
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let status = jobs.jobs.iter().find(|j| j.id == "status-job").unwrap().last_run_status.clone();
    let writes = last.load(Ordering::SeqCst);
    assert!(writes > 0);
    assert_eq!(status, Some(format!("run-{writes}")), "the writer's last status is the file's");
    for i in 0..10 {
        assert!(home.join(format!("workspace/cron_tasks/job-{i}/TASK_DESCRIPTION.md")).is_file());
    }
    took
}

#[test]
fn ten_concurrent_adds_and_a_status_writer_lose_nothing() {
    let (_dir, home) = crate::support::temp_home();
    let took = concurrent_adds_beside_a_status_writer(&home, "local");
    eprintln!("10 concurrent `ductor cron add` (written by each command) took {took:?}");
}

#[test]
fn ten_concurrent_adds_through_the_service_and_a_status_writer_lose_nothing() {
    let (_dir, home) = crate::support::temp_home();
    let port = free_port();
    write_config(&home, port);
    let _service = Service::start(&home, port, &[]);
    let took = concurrent_adds_beside_a_status_writer(&home, "service");
    eprintln!("10 concurrent `ductor cron add` (through the service) took {took:?}");
    assert_eq!(add_job(&home, "after")["via"], "service");
}

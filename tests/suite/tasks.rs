//! Background tasks end to end (core spec §8, ops spec §6.4): the real binary with the fake Bot
//! API and the fake CLIs; tasks created, listed, resumed, cancelled and deleted through the
//! workspace's task tool scripts, `ductor task …` and the internal API. Worker runs are held and
//! released through files (`FAKE_CLI_TASK_HOLD_WHILE`, `FAKE_CLI_HOLD_WHILE`), never by timing.

use std::process::Command;
use std::time::Duration;

use camino::Utf8Path;
use serde_json::{Value, json};

use crate::support::binary::{TEST_TOKEN, request};
use crate::support::telegram_service::{ALICE, Tg, eventually, start};

/// A service whose runs can be held: task workers wait while `task.hold` exists (it does at
/// the start), other runs while `parent.hold` exists (it does not at the start).
struct Held {
    tg: Tg,
    holds: tempfile::TempDir,
}

impl Held {
    fn file(&self, name: &str) -> camino::Utf8PathBuf {
        Utf8Path::from_path(self.holds.path()).unwrap().join(name)
    }

    fn release_tasks(&self) {
        std::fs::remove_file(self.file("task.hold")).unwrap();
    }
}

async fn held(config: Value, env: &[(&str, &str)]) -> Held {
    let holds = tempfile::tempdir().unwrap();
    let dir = Utf8Path::from_path(holds.path()).unwrap().to_owned();
    std::fs::write(dir.join("task.hold"), "").unwrap();
    let (task, parent) = (dir.join("task.hold").to_string(), dir.join("parent.hold").to_string());
    let mut all: Vec<(&str, &str)> = vec![("FAKE_CLI_TASK_HOLD_WHILE", &task), ("FAKE_CLI_HOLD_WHILE", &parent)];
    all.extend_from_slice(env);
    let tg = start(config, &all).await;
    Held { tg, holds }
}

/// Runs `ductor task …` as a CLI of chat ALICE would; returns (exit code, JSON printed).
fn task_command(tg: &Tg, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_ductor"))
        .arg("task")
        .args(args)
        .env("DUCTOR_HOME", tg.home.as_str())
        .env("DUCTOR_INTERAGENT_TOKEN", TEST_TOKEN)
        .env("DUCTOR_INTERAGENT_PORT", tg.port.to_string())
        .env("DUCTOR_CHAT_ID", ALICE.to_string())
        .env("DUCTOR_TRANSPORT", "tg")
        .env_remove("DUCTOR_AGENT_NAME")
        .env_remove("DUCTOR_TASK_ID")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| json!({"raw": stdout, "stderr": String::from_utf8_lossy(&out.stderr)}));
    (out.status.code().unwrap_or(-1), value)
}

/// Runs a task tool script of the home's workspace as a CLI of chat ALICE would.
fn tool_script(tg: &Tg, script: &str, args: &[&str]) -> (i32, Value) {
    let out = Command::new("python3")
        .arg(tg.home.join("workspace/tools/task_tools").join(script))
        .args(args)
        .current_dir(tg.home.join("workspace"))
        .env("DUCTOR_BIN", env!("CARGO_BIN_EXE_ductor"))
        .env("DUCTOR_HOME", tg.home.as_str())
        .env("DUCTOR_INTERAGENT_TOKEN", TEST_TOKEN)
        .env("DUCTOR_INTERAGENT_PORT", tg.port.to_string())
        .env("DUCTOR_CHAT_ID", ALICE.to_string())
        .env("DUCTOR_TRANSPORT", "tg")
        .env_remove("DUCTOR_AGENT_NAME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| json!({"raw": stdout, "stderr": String::from_utf8_lossy(&out.stderr)}));
    (out.status.code().unwrap_or(-1), value)
}

fn tasks_json(tg: &Tg) -> Vec<Value> {
    std::fs::read_to_string(tg.home.join("tasks.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["tasks"].as_array().cloned())
        .unwrap_or_default()
}

fn task(tg: &Tg, id: &str) -> Value {
    tasks_json(tg).into_iter().find(|t| t["task_id"] == id).unwrap_or(Value::Null)
}

async fn wait_status(tg: &Tg, id: &str, status: &str) {
    let reached = eventually(|| task(tg, id)["status"] == status).await;
    assert!(reached, "task {id} never became {status}: {}", task(tg, id));
}

/// The fake CLIs' record lines of one kind.
fn records(tg: &Tg, event: &str) -> Vec<Value> {
    std::fs::read_to_string(tg.root.join("record.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"] == event)
        .collect()
}

/// The start records of task workers (runs with `DUCTOR_TASK_ID`).
fn worker_starts(tg: &Tg) -> Vec<Value> {
    records(tg, "start").into_iter().filter(|r| r["env"]["DUCTOR_TASK_ID"].is_string()).collect()
}

fn prompt_of(record: &Value) -> String {
    record["argv"].as_array().and_then(|a| a.last()).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn created_id(answer: &Value) -> String {
    let id = answer["task_id"].as_str().unwrap_or_default().to_owned();
    assert!(id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()), "an 8-hex task id: {answer}");
    id
}

fn is_alive(pid: i32) -> bool {
    // A zombie (not yet reaped by its new parent) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

fn pid_of(record: &Value, key: &str) -> i32 {
    record[key].as_i64().unwrap_or_default() as i32
}

fn injected(tg: &Tg) -> Vec<Value> {
    records(tg, "start").into_iter().filter(|r| prompt_of(r).starts_with("[BACKGROUND TASK")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_runs_in_its_folder_and_its_result_reaches_the_chat_after_the_running_turn() {
    let h = held(json!({}), &[]).await;
    let tg = &h.tg;
    std::fs::write(h.file("parent.hold"), "").unwrap();
    tg.api.send_text(ALICE, ALICE as u64, "Plan the week");
    assert!(eventually(|| records(tg, "last_line").len() == 1).await, "the parent's turn runs and is held");

    let (code, answer) = tool_script(tg, "create_task.py", &["--name", "research", "Find the answer"]);
    assert_eq!(code, 0, "{answer}");
    let id = created_id(&answer);
    let entry = task(tg, &id);
    assert_eq!(entry["status"], "running", "{entry}");
    assert_eq!((entry["parent_agent"].clone(), entry["chat_id"].clone()), (json!("main"), json!(ALICE)));
    assert_eq!(
        (entry["name"].clone(), entry["original_prompt"].clone()),
        (json!("research"), json!("Find the answer"))
    );
    let folder = tg.home.join("workspace/tasks").join(&id);
    for file in ["TASKMEMORY.md", "CLAUDE.md", "AGENTS.md", "GEMINI.md"] {
        assert!(folder.join(file).is_file(), "{file} in the task folder");
    }
    let memory = folder.join("TASKMEMORY.md");
    assert!(std::fs::read_to_string(&memory).unwrap().starts_with("# Task: research"));

    assert!(eventually(|| worker_starts(tg).len() == 1).await, "the worker starts");
    let worker = worker_starts(tg)[0].clone();
    assert_eq!(worker["env"]["DUCTOR_TASK_ID"], id);
    assert_eq!(worker["env"]["DUCTOR_CHAT_ID"], ALICE.to_string());
    assert_eq!(worker["env"]["DUCTOR_AGENT_NAME"], "main");
    assert!(worker["env"]["DUCTOR_INTERAGENT_TOKEN"].is_string(), "the worker can reach the internal API");
    let prompt = prompt_of(&worker);
    assert!(prompt.starts_with("Find the answer\n\n---\nTASK RULES"), "{prompt}");
    assert!(prompt.contains(memory.as_str()), "the rules name the memory file: {prompt}");

    let tree = || request(tg.port, "GET", "/interagent/actors", None).unwrap().1;
    assert!(tree().contains(&format!("\"task:{id}\"")), "the worker shows in the tree: {}", tree());

    // What the worker leaves in its memory comes back with its result.
    std::fs::write(&memory, "# Task: research\n\nFound: 42").unwrap();
    h.release_tasks();
    wait_status(tg, &id, "done").await;
    assert!(!tree().contains(&format!("\"task:{id}\"")), "an ended worker leaves the tree");
    assert!(injected(tg).is_empty(), "the result waits while the parent's turn runs");

    std::fs::remove_file(h.file("parent.hold")).unwrap();
    let note = tg.bot_says(ALICE, "completed").await;
    assert!(note.contains("research"), "{note}");
    let turns = injected(tg);
    assert_eq!(turns.len(), 1, "one injected turn");
    let prompt = prompt_of(&turns[0]);
    assert!(prompt.starts_with(&format!("[BACKGROUND TASK COMPLETED — task_id {id}")), "{prompt}");
    assert!(prompt.contains("Found: 42"), "the TASKMEMORY content: {prompt}");
    let parent = records(tg, "start")[0].clone();
    let parent_exit = records(tg, "exit").into_iter().find(|r| r["pid"] == parent["pid"]).unwrap();
    assert!(turns[0]["t"].as_u64() >= parent_exit["t"].as_u64(), "the injected turn starts after the parent's turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn beyond_the_parallel_limit_a_task_is_queued_and_runs_when_a_slot_frees() {
    let h = held(json!({"tasks": {"max_parallel": 2}}), &[]).await;
    let tg = &h.tg;
    let ids: Vec<String> = (1..=3)
        .map(|n| {
            let (code, answer) =
                task_command(tg, &["create", "--name", &format!("job{n}"), &format!("Job number {n}")]);
            assert_eq!(code, 0, "{answer}");
            created_id(&answer)
        })
        .collect();
    assert!(eventually(|| worker_starts(tg).len() == 2).await, "two workers start");
    let statuses: Vec<Value> = ids.iter().map(|id| task(tg, id)["status"].clone()).collect();
    assert_eq!(statuses, [json!("running"), json!("running"), json!("queued")]);
    let (code, list) = task_command(tg, &["list"]);
    assert_eq!(code, 0, "{list}");
    let listed: Vec<&str> = list["tasks"].as_array().unwrap().iter().filter_map(|t| t["task_id"].as_str()).collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()], "newest first");

    // An interactive task does not count against the limit.
    let (code, answer) = task_command(tg, &["create", "--priority", "interactive", "Answer now"]);
    assert_eq!(code, 0, "{answer}");
    let urgent = created_id(&answer);
    assert!(eventually(|| worker_starts(tg).len() == 3).await, "the interactive task starts at once");
    assert_eq!(task(tg, &ids[2])["status"], "queued");

    h.release_tasks();
    for id in ids.iter().chain([&urgent]) {
        wait_status(tg, id, "done").await;
    }
    let starts = worker_starts(tg);
    assert_eq!(starts.len(), 4);
    assert!(prompt_of(&starts[3]).starts_with("Job number 3"), "the queued task ran last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workers_question_reaches_the_chat_and_the_answer_resumes_it() {
    let ask = "python3 tools/task_tools/ask_parent.py 'Which colour should the logo be?' > ask.out";
    let h = held(json!({}), &[("FAKE_CLI_TASK_COMMAND", ask)]).await;
    let tg = &h.tg;
    h.release_tasks();
    let (code, answer) = task_command(tg, &["create", "--name", "logo", "Design the logo"]);
    assert_eq!(code, 0, "{answer}");
    let id = created_id(&answer);

    let question = tg.bot_says(ALICE, "Which colour should the logo be?").await;
    assert!(question.contains(&id), "the question names its task: {question}");
    wait_status(tg, &id, "waiting").await;
    let entry = task(tg, &id);
    assert_eq!(entry["question_count"], 1);
    assert_eq!(entry["last_question"], "Which colour should the logo be?");
    let ack: Value =
        serde_json::from_str(&std::fs::read_to_string(tg.home.join("workspace/ask.out")).unwrap()).unwrap();
    assert_eq!(ack["success"], true, "{ack}");
    assert!(ack["answer"].as_str().unwrap().contains("resumed"), "{ack}");

    let (code, answer) = task_command(tg, &["resume", &id, "Blue, please"]);
    assert_eq!((code, answer["success"].clone()), (0, json!(true)), "{answer}");
    wait_status(tg, &id, "done").await;
    let starts = worker_starts(tg);
    assert_eq!(starts.len(), 2, "the first run and the resumed one");
    let argv: Vec<&str> = starts[1]["argv"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let at = argv.iter().position(|a| *a == "--resume").expect("the answer resumes the worker's session");
    assert_eq!(argv[at + 1], entry["session_id"].as_str().unwrap());
    assert!(prompt_of(&starts[1]).starts_with("Blue, please"), "{}", prompt_of(&starts[1]));
    tg.bot_says(ALICE, "completed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_task_kills_its_process_group_and_the_chat_gets_only_a_notice() {
    let h = held(json!({}), &[("FAKE_CLI_GRANDCHILD", "1")]).await;
    let tg = &h.tg;
    let (code, answer) = tool_script(tg, "create_task.py", &["--name", "crawl", "Crawl the site"]);
    assert_eq!(code, 0, "{answer}");
    let id = created_id(&answer);
    assert!(eventually(|| records(tg, "last_line").len() == 1).await, "the worker runs and is held");
    let worker = worker_starts(tg)[0].clone();
    let (pid, grandchild) = (pid_of(&worker, "pid"), pid_of(&worker, "grandchild"));
    assert!(is_alive(pid) && is_alive(grandchild));

    let (code, answer) = tool_script(tg, "cancel_task.py", &[&id]);
    assert_eq!((code, answer["success"].clone()), (0, json!(true)), "{answer}");
    wait_status(tg, &id, "cancelled").await;
    assert!(eventually(|| !is_alive(pid) && !is_alive(grandchild)).await, "the worker and its child are gone");
    let notice = tg.bot_says(ALICE, "cancelled").await;
    assert!(notice.contains("crawl"), "{notice}");
    assert!(injected(tg).is_empty(), "a cancelled task is not injected into the parent's session");
    let (code, answer) = task_command(tg, &["cancel", &id]);
    assert_eq!((code, answer["error"].is_string()), (1, true), "not running any more: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cancel_button_of_the_tasks_menu_stops_the_worker() {
    let h = held(json!({}), &[]).await;
    let tg = &h.tg;
    let (code, answer) = task_command(tg, &["create", "--name", "index", "Index the archive"]);
    assert_eq!(code, 0, "{answer}");
    let id = created_id(&answer);
    assert!(eventually(|| records(tg, "last_line").len() == 1).await, "the worker runs and is held");
    let pid = pid_of(&worker_starts(tg)[0], "pid");

    tg.api.send_text(ALICE, ALICE as u64, "/tasks");
    let has_menu = |m: &crate::support::fake_bot_api::StoredMessage| m.reply_markup.to_string().contains("tsc:cancel:");
    assert!(eventually(|| tg.api.bot_messages(ALICE).iter().any(has_menu)).await, "the menu with a cancel button");
    let menu = tg.api.bot_messages(ALICE).into_iter().find(|m| has_menu(m)).unwrap();
    tg.api.press_button(ALICE, ALICE as u64, menu.message_id, &format!("tsc:cancel:{id}"));
    assert!(eventually(|| !is_alive(pid)).await, "the worker is stopped");
    wait_status(tg, &id, "cancelled").await;
    tg.bot_says(ALICE, "cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_cut_by_sigkill_is_failed_at_the_next_start_and_the_parent_told_once() {
    let mut h = held(json!({}), &[]).await;
    let (code, answer) = task_command(&h.tg, &["create", "--name", "migrate", "Migrate the database"]);
    assert_eq!(code, 0, "{answer}");
    let id = created_id(&answer);
    assert!(eventually(|| records(&h.tg, "last_line").len() == 1).await, "the worker runs");
    let worker = pid_of(&worker_starts(&h.tg)[0], "pid");
    let orphan = h.tg.home.join("workspace/tasks/deadbeef");
    std::fs::create_dir_all(&orphan).unwrap();

    h.tg.service.as_ref().unwrap().signal(nix::sys::signal::Signal::SIGKILL);
    let mut killed = h.tg.service.take().unwrap();
    tokio::task::spawn_blocking(move || killed.wait_exit(Duration::from_secs(5))).await.unwrap();
    // The worker has its own process group and outlives the service; the machine going down
    // would end it too.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker), nix::sys::signal::Signal::SIGKILL);
    h.tg.launch().await;

    wait_status(&h.tg, &id, "failed").await;
    assert!(task(&h.tg, &id)["error"].as_str().unwrap().contains("interrupted"), "{}", task(&h.tg, &id));
    let notice = h.tg.bot_says(ALICE, "interrupted").await;
    assert!(notice.contains("migrate"), "{notice}");
    assert!(eventually(|| !orphan.exists()).await, "a task folder without entry is deleted at start");
    assert!(h.tg.home.join("workspace/tasks").join(&id).is_dir(), "the task's own folder stays");

    // Another start (after a clean stop): the task is not reported again. A new task's notice,
    // delivered after anything the start-up could have sent, marks the point to count at.
    h.tg.service.as_ref().unwrap().signal(nix::sys::signal::Signal::SIGTERM);
    let mut stopped = h.tg.service.take().unwrap();
    tokio::task::spawn_blocking(move || stopped.wait_exit(Duration::from_secs(10))).await.unwrap();
    h.tg.launch().await;
    let (code, answer) = task_command(&h.tg, &["create", "--name", "probe", "Probe"]);
    assert_eq!(code, 0, "{answer}");
    let probe = created_id(&answer);
    assert!(eventually(|| worker_starts(&h.tg).len() == 2).await);
    assert_eq!(task_command(&h.tg, &["cancel", &probe]).0, 0);
    h.tg.bot_says(ALICE, "probe").await;
    let told: Vec<_> = h.tg.api.bot_messages(ALICE).into_iter().filter(|m| m.visible.contains("interrupted")).collect();
    assert_eq!(told.len(), 1, "the parent is told once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_waits_for_the_end_of_a_task_and_only_its_owner_may_change_it() {
    let h = held(json!({}), &[]).await;
    let tg = &h.tg;
    let post = |path: &str, body: Value| request(tg.port, "POST", path, Some(&body.to_string())).unwrap();
    let (code, body) = post("/tasks/create", json!({"from": "main", "prompt": "x", "chat_id": ALICE}));
    assert_eq!(code, 200, "{body}");
    let id = created_id(&serde_json::from_str(&body).unwrap());
    assert_eq!(request(tg.port, "POST", "/tasks/create", Some("{")).unwrap().0, 400, "invalid JSON");
    assert_eq!(post("/tasks/create", json!({"from": "main"})).0, 400, "no prompt");

    let (code, body) = post("/tasks/delete", json!({"task_id": id}));
    assert_eq!(code, 409, "a running task is not deleted: {body}");
    h.release_tasks();
    wait_status(tg, &id, "done").await;

    let (code, body) = post("/tasks/resume", json!({"task_id": id, "prompt": "more", "from": "other"}));
    assert_eq!(code, 403, "{body}");
    assert_eq!(post("/tasks/delete", json!({"task_id": id, "from": "other"})).0, 403);
    assert_eq!(post("/tasks/delete", json!({"task_id": "00000000"})).0, 404);
    let (code, body) = post("/tasks/delete", json!({"task_id": id, "from": "main"}));
    assert_eq!((code, serde_json::from_str::<Value>(&body).unwrap()), (200, json!({"success": true})));
    assert!(task(tg, &id).is_null(), "the entry is gone");
    assert!(!tg.home.join("workspace/tasks").join(&id).exists(), "the folder is gone");
    let (code, body) = request(tg.port, "GET", "/tasks/list?from=main", None).unwrap();
    assert_eq!((code, serde_json::from_str::<Value>(&body).unwrap()), (200, json!({"tasks": []})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_tasks_json_is_moved_aside_and_tasks_start_afresh() {
    let mut h = held(json!({}), &[]).await;
    drop(h.tg.service.take());
    std::fs::write(h.tg.home.join("tasks.json"), "{\"tasks\": [ broken").unwrap();
    h.tg.launch().await;
    let moved: Vec<String> = std::fs::read_dir(&h.tg.home)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("tasks.json.corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1, "the corrupt file is kept aside");
    let kept = std::fs::read_to_string(h.tg.home.join(&moved[0])).unwrap();
    assert_eq!(kept, "{\"tasks\": [ broken");
    let (code, answer) = task_command(&h.tg, &["create", "Fresh start"]);
    assert_eq!(code, 0, "{answer}");
    let id = created_id(&answer);
    assert_eq!(task(&h.tg, &id)["status"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_past_its_timeout_fails_and_the_parent_is_asked_to_tell_the_user() {
    let h = held(json!({"tasks": {"timeout_seconds": 1}}), &[]).await;
    let tg = &h.tg;
    let (code, answer) = task_command(tg, &["create", "--name", "slow", "Take your time"]);
    assert_eq!(code, 0, "{answer}");
    let id = created_id(&answer);
    wait_status(tg, &id, "failed").await;
    assert_eq!(task(tg, &id)["error"], "timeout after 1 s");
    let note = tg.bot_says(ALICE, "failed").await;
    assert!(note.contains("slow") && note.contains("timeout"), "{note}");
    let turns = injected(tg);
    assert_eq!(turns.len(), 1);
    assert!(prompt_of(&turns[0]).starts_with(&format!("[BACKGROUND TASK FAILED — task_id {id}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_home_moved_to_another_path_keeps_its_tasks() {
    let mut h = held(json!({}), &[]).await;
    h.release_tasks();
    let (code, answer) = task_command(&h.tg, &["create", "--name", "keep", "Keep me"]);
    assert_eq!(code, 0, "{answer}");
    let id = created_id(&answer);
    wait_status(&h.tg, &id, "done").await;
    h.tg.service.as_ref().unwrap().signal(nix::sys::signal::Signal::SIGTERM);
    let mut stopped = h.tg.service.take().unwrap();
    tokio::task::spawn_blocking(move || stopped.wait_exit(Duration::from_secs(10))).await.unwrap();

    let moved = h.tg.root.join("moved-home");
    std::fs::rename(&h.tg.home, &moved).unwrap();
    h.tg.home = moved.clone();
    h.tg.launch().await;
    // A task created after the start shows the start-up clean-up is over.
    let (code, answer) = task_command(&h.tg, &["create", "Probe"]);
    assert_eq!(code, 0, "{answer}");
    assert!(eventually(|| worker_starts(&h.tg).len() == 2).await);
    let entry = task(&h.tg, &id);
    assert_eq!(entry["status"], "done", "the entry is kept: {entry}");
    assert_eq!(entry["tasks_dir"], moved.join("workspace/tasks").as_str());
    assert!(moved.join("workspace/tasks").join(&id).join("TASKMEMORY.md").is_file(), "its folder is kept");
    let (code, answer) = task_command(&h.tg, &["delete", &id]);
    assert_eq!((code, answer), (0, json!({"success": true})));
}

#[test]
fn without_a_running_service_a_task_command_prints_an_error_and_exits_1() {
    let (_dir, home) = crate::support::temp_home();
    crate::support::binary::write_config(&home, crate::support::binary::free_port());
    let (status, stdout, _) = crate::support::binary::run(&home, &["task", "list"]);
    assert_eq!(status.code(), Some(1));
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(answer["error"].as_str().unwrap().contains("did not answer"), "{answer}");
    let (status, stdout, _) = crate::support::binary::run(&home, &["task", "ask-parent", "Why?"]);
    assert_eq!(status.code(), Some(1));
    assert!(stdout.contains("DUCTOR_TASK_ID"), "{stdout}");
}

#[test]
fn a_task_script_names_the_agent_whose_workspace_holds_it() {
    let (dir, home) = crate::support::temp_home();
    let defaults = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/home_defaults/workspace/tools/task_tools");
    let run = |tools: &Utf8Path, env_agent: Option<&str>| {
        std::fs::create_dir_all(tools).unwrap();
        std::fs::copy(defaults.join("list_tasks.py"), tools.join("list_tasks.py")).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(tools.join("list_tasks.py")).env("DUCTOR_BIN", "/bin/echo").env_remove("DUCTOR_AGENT_NAME");
        if let Some(agent) = env_agent {
            cmd.env("DUCTOR_AGENT_NAME", agent);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap().trim().to_owned()
    };
    let sub = home.join("agents/ops/workspace/tools/task_tools");
    assert_eq!(run(&sub, Some("other")), "task list --from ops", "the location wins");
    let main = home.join("workspace/tools/task_tools");
    assert_eq!(run(&main, Some("research")), "task list --from research");
    assert_eq!(run(&main, None), "task list --from main");
    drop(dir);
}

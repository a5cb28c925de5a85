//! Many agents in one process (core spec §9): sub-agents from `agents.json` started, stopped
//! and backed off while main answers; asks between agents as a CLI makes them — the fake CLI
//! runs `python3 tools/agent_tools/ask_agent.py …` from its workspace like a real CLI's shell
//! tool — with the sync answer as the command's output and the async answer delivered into the
//! asker's chat through its Bus. Real binary, one fake Bot API per bot, fake CLIs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::binary::request;
use crate::support::fake_bot_api::FakeBotApi;
use crate::support::telegram_service::{ALICE, Tg, WAIT, eventually, start};

const OPS_TOKEN: &str = "654321:OPS-TOKEN";

/// `text` quoted for `sh`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What a CLI of agent-to-be-asked runs: ask `target` with `message` (sync).
fn ask(target: &str, message: &str) -> String {
    format!("RUN: python3 tools/agent_tools/ask_agent.py {target} {}", quoted(message))
}

fn write_agents(tg: &Tg, agents: &Value) {
    let path = tg.home.join("agents.json");
    let tmp = tg.home.join("agents.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(agents).unwrap()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

fn ops_entry(ops: &FakeBotApi) -> Value {
    json!({"name": "ops", "telegram_token": OPS_TOKEN, "allowed_user_ids": [ALICE],
        "telegram_api_base": ops.base_url()})
}

fn health(tg: &Tg) -> Value {
    let (_, body) = request(tg.port, "GET", "/interagent/health", None).unwrap();
    serde_json::from_str(&body).unwrap()
}

fn agent_names(tg: &Tg) -> Vec<String> {
    let (_, body) = request(tg.port, "GET", "/interagent/agents", None).unwrap();
    let names: Value = serde_json::from_str(&body).unwrap();
    names["agents"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect()
}

/// Starts main, then adds `ops` with its own bot and waits until that bot polls.
async fn main_and_ops() -> (Tg, FakeBotApi) {
    let tg = start(json!({}), &[]).await;
    let ops = FakeBotApi::start(OPS_TOKEN).await.unwrap();
    write_agents(&tg, &json!([ops_entry(&ops)]));
    assert!(
        ops.wait_until(WAIT, |calls| calls
            .iter()
            .any(|c| c.method == "getUpdates" && c.params["timeout"] == json!(10)))
            .await,
        "the added agent's bot starts polling"
    );
    (tg, ops)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_agent_answers_on_its_own_bot_and_agents_ask_each_other() {
    let (tg, ops) = main_and_ops().await;
    assert_eq!(agent_names(&tg), ["main", "ops"]);
    assert_eq!(health(&tg)["agents"]["ops"]["status"], "running");
    assert!(tg.home.join("agents/ops/workspace/tools/agent_tools/ask_agent.py").is_file(), "its own workspace");

    // The person talks to ops on its own bot.
    ops.send_text(ALICE, ALICE as u64, "hello ops");
    let said = ops.wait_until(WAIT, |_| ops.bot_messages(ALICE).iter().any(|m| m.visible.contains("FAKE["))).await;
    assert!(said, "ops answers on its bot: {:?}", ops.bot_messages(ALICE));

    // main's CLI asks ops with the workspace script; ops' answer is the script's output.
    tg.api.send_text(ALICE, ALICE as u64, &ask("ops", "RUN: echo answer from $DUCTOR_AGENT_NAME"));
    tg.bot_says(ALICE, "answer from ops").await;
    let record = std::fs::read_to_string(tg.root.join("record.jsonl")).unwrap();
    let ops_turn = record
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| {
            r["event"] == "start"
                && r["env"]["DUCTOR_AGENT_NAME"] == "ops"
                && r["argv"].to_string().contains("INTER-AGENT MESSAGE from 'main' to 'ops'")
        })
        .expect("ops ran the message in a CLI turn");
    assert_eq!(ops_turn["env"]["DUCTOR_INTERAGENT_DEPTH"], "1");
    assert!(ops_turn["cwd"].as_str().unwrap().ends_with("agents/ops/workspace"), "{}", ops_turn["cwd"]);
    let named: Value =
        serde_json::from_str(&std::fs::read_to_string(tg.home.join("agents/ops/named_sessions.json")).unwrap())
            .unwrap();
    assert!(named["sessions"].as_array().unwrap().iter().any(|s| s["name"] == "ia-main" && s["chat_id"] == ALICE));

    // An unknown agent: the error lists the agents.
    tg.api.send_text(ALICE, ALICE as u64, &ask("nobody", "hi"));
    tg.bot_says(ALICE, "Unknown agent 'nobody'. Available agents: main, ops.").await;

    // Async: the task id at once, ops' user told with the summary, the answer later injected
    // into main's session through main's Bus.
    let run = format!(
        "RUN: python3 tools/agent_tools/ask_agent_async.py --summary 'disk check' ops {}",
        quoted("RUN: echo async answer from $DUCTOR_AGENT_NAME")
    );
    tg.api.send_text(ALICE, ALICE as u64, &run);
    let accepted = tg.bot_says(ALICE, "task_id").await;
    let task_id: String = accepted
        .split("\"task_id\":")
        .nth(1)
        .map(|rest| rest.trim_start().trim_start_matches('"').chars().take_while(char::is_ascii_hexdigit).collect())
        .unwrap_or_default();
    assert_eq!(task_id.len(), 12, "{accepted}");
    let told = ops
        .wait_until(WAIT, |_| {
            ops.bot_messages(ALICE)
                .iter()
                .any(|m| m.visible.contains("Task from 'main'") && m.visible.contains("disk check"))
        })
        .await;
    assert!(told, "ops' user is told: {:?}", ops.bot_messages(ALICE));
    let injected = eventually(|| {
        tg.prompts().iter().any(|p| {
            p.contains(&format!("[ASYNC INTER-AGENT RESPONSE from 'ops' (task {task_id})]"))
                && p.contains("async answer from ops")
        })
    })
    .await;
    assert!(injected, "the answer runs in main's session: {:?}", tg.prompts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_pong_between_agents_is_cut_with_a_clear_message() {
    let (tg, _ops) = main_and_ops().await;
    // main asks ops, which asks main, which asks ops back: ops is still busy with the first
    // message of the chain, so the third ask is refused and the refusal travels back.
    let third = ask("ops", "ping");
    let second = ask("main", &third);
    tg.api.send_text(ALICE, ALICE as u64, &ask("ops", &second));
    let said = tg.bot_says(ALICE, "Inter-agent loop").await;
    assert!(said.contains("instead of asking back"), "{said}");
    // And a request that says it is that deep is refused by the API itself.
    let body = json!({"from": "main", "to": "ops", "message": "hi", "depth": 3}).to_string();
    let (code, answer) = request(tg.port, "POST", "/interagent/send", Some(&body)).unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!((code, &answer["success"]), (200, &json!(false)));
    assert!(answer["error"].as_str().unwrap().contains("chain too deep"), "{answer}");

    // The endpoints' other shapes (core spec §9.5).
    let post = |path: &str, body: &str| {
        let (code, answer) = request(tg.port, "POST", path, Some(body)).unwrap();
        (code, serde_json::from_str::<Value>(&answer).unwrap())
    };
    let (code, answer) = post("/interagent/send", "{not json");
    assert_eq!((code, &answer["success"]), (400, &json!(false)), "{answer}");
    let (code, answer) = post("/interagent/send", r#"{"from": "main", "message": "hi"}"#);
    assert_eq!(code, 400, "missing to: {answer}");
    let (code, answer) = post("/interagent/send_async", r#"{"from": "main", "to": "nobody", "message": "hi"}"#);
    assert_eq!((code, &answer["success"]), (200, &json!(false)));
    assert!(answer["error"].as_str().unwrap().contains("Available agents: main, ops"), "{answer}");
    let (code, answer) =
        post("/interagent/send", r#"{"from": "ops", "to": "main", "message": "RUN: echo hi from $DUCTOR_AGENT_NAME"}"#);
    assert_eq!(code, 200);
    assert_eq!(answer, json!({"sender": "main", "text": "hi from main", "success": true, "error": null}));
    let wrong = [("Content-Type", "application/json"), ("Authorization", "Bearer wrong")];
    let (code, _) = crate::support::binary::http(tg.port, "POST", "/interagent/send", &wrong, b"{}").unwrap();
    assert_eq!(code, 401, "a wrong token is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_json_edits_start_stop_and_back_off_while_main_answers() {
    let (tg, ops) = main_and_ops().await;
    // A bad file keeps the running set.
    std::fs::write(tg.home.join("agents.json"), "[{not json").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(agent_names(&tg), ["main", "ops"], "a broken agents.json keeps the running agents");

    // An agent whose outbox cannot be opened fails on every start: it backs off, main answers.
    std::fs::create_dir_all(tg.home.join("agents/broken/outbox.jsonl")).unwrap();
    let broken = json!({"name": "broken", "telegram_token": "999:BROKEN", "allowed_user_ids": [ALICE],
        "telegram_api_base": ops.base_url()});
    write_agents(&tg, &json!([ops_entry(&ops), broken]));
    let backing_off = eventually(|| {
        let h = health(&tg);
        h["agents"]["broken"]["restart_count"].as_u64().unwrap_or(0) >= 1
            && h["agents"]["broken"]["last_crash_error"].as_str().is_some_and(|e| e.contains("outbox"))
    })
    .await;
    assert!(backing_off, "the broken agent is retried with its error: {}", health(&tg));
    assert_ne!(health(&tg)["agents"]["broken"]["status"], "running");
    tg.api.send_text(ALICE, ALICE as u64, "still there?");
    tg.bot_says(ALICE, "FAKE[").await;
    assert_eq!(health(&tg)["agents"]["ops"]["status"], "running", "the others keep running");

    // From main's chat: stop and start a sub-agent.
    tg.api.send_text(ALICE, ALICE as u64, "/agent_stop ops");
    tg.bot_says(ALICE, "Agent 'ops' stopped.").await;
    assert!(!agent_names(&tg).contains(&"ops".to_owned()));
    tg.api.send_text(ALICE, ALICE as u64, "/agent_start ops");
    tg.bot_says(ALICE, "Agent 'ops' started.").await;
    assert_eq!(health(&tg)["agents"]["ops"]["status"], "running");
    tg.api.send_text(ALICE, ALICE as u64, "/agent_restart");
    tg.bot_says(ALICE, "Which agent?").await;

    // Removed from the file: it leaves the tree and the agent list.
    write_agents(&tg, &json!([]));
    let gone = eventually(|| {
        let (_, tree) = request(tg.port, "GET", "/interagent/actors", None).unwrap();
        agent_names(&tg) == ["main"] && !tree.contains("\"ops\"") && !tree.contains("\"broken\"")
    })
    .await;
    assert!(gone, "removed agents leave the tree: {:?}", agent_names(&tg));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_knowledge_reaches_every_agents_memory_once_per_change() {
    let (tg, _ops) = main_and_ops().await;
    let shared = tg.home.join("SHAREDMEMORY.md");
    assert!(std::fs::read_to_string(&shared).unwrap().starts_with("# Shared knowledge"), "seeded at start");
    let memories = [
        tg.home.join("workspace/memory_system/MAINMEMORY.md"),
        tg.home.join("agents/ops/workspace/memory_system/MAINMEMORY.md"),
    ];
    // The tool command (as a CLI of ops runs it) appends; both memories get the block.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ductor"))
        .args(["agent", "shared-memory", "--append", "The person's name is Alice."])
        .env("DUCTOR_HOME", tg.home.join("agents/ops"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let synced = eventually(|| {
        memories.iter().all(|m| {
            std::fs::read_to_string(m).is_ok_and(|t| {
                t.contains("--- SHARED KNOWLEDGE START ---") && t.contains("The person's name is Alice.")
            })
        })
    })
    .await;
    assert!(synced, "{:?}", memories.iter().map(std::fs::read_to_string).collect::<Vec<_>>());
    // Written once per change: the memory files do not change again by themselves.
    let before: Vec<_> = memories.iter().map(|m| std::fs::metadata(m).unwrap().modified().unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after: Vec<_> = memories.iter().map(|m| std::fs::metadata(m).unwrap().modified().unwrap()).collect();
    assert_eq!(before, after, "no write loop");
    let text = std::fs::read_to_string(&memories[0]).unwrap();
    assert_eq!(text.matches("--- SHARED KNOWLEDGE START ---").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_agent_asking_for_a_restart_is_rebuilt_in_process_and_drawn_in_status() {
    let (tg, ops) = main_and_ops().await;
    let (status, out, _) = crate::support::binary::run(&tg.home, &["status"]);
    assert!(status.success());
    assert!(out.contains("ops (subagent)  running") && out.contains("main (agent)  running"), "{out}");
    let logins = ops.calls_of("getMe").len();
    std::fs::write(tg.home.join("agents/ops/restart-requested"), "").unwrap();
    // Rebuilt: its bot logs in again and polls again.
    let relogged = ops
        .wait_until(WAIT, |calls| {
            let login = calls.iter().enumerate().filter(|(_, c)| c.method == "getMe").nth(logins).map(|(i, _)| i);
            login.is_some_and(|at| {
                calls[at..].iter().any(|c| c.method == "getUpdates" && c.params["timeout"] == json!(10))
            })
        })
        .await;
    assert!(relogged, "ops was rebuilt (its bot logged in and polls again)");
    assert!(eventually(|| health(&tg)["agents"]["ops"]["status"] == "running").await);
    let service = tg.service.as_ref().unwrap();
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(service.pid()), None).is_ok(),
        "the process kept running"
    );
    ops.send_text(ALICE, ALICE as u64, "back?");
    let answered = ops.wait_until(WAIT, |_| ops.bot_messages(ALICE).iter().any(|m| m.visible.contains("FAKE["))).await;
    assert!(answered, "the rebuilt ops answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_answer_accepted_before_a_sigkill_is_delivered_once_after_the_restart() {
    let (mut tg, _ops) = main_and_ops().await;
    // ops answers with a line that makes main's CLI (in the injected turn) print `relayed-ops`.
    let run = format!(
        "RUN: python3 tools/agent_tools/ask_agent_async.py --silent ops {}",
        quoted(r"RUN: printf 'RUN: echo relayed-%s\n' $DUCTOR_AGENT_NAME")
    );
    tg.api.send_text(ALICE, ALICE as u64, &run);
    tg.bot_says(ALICE, "task_id").await;
    // Telegram is slow from now on: the answer is in main's outbox, not yet in the chat.
    tg.api.delay("sendMessage", Duration::from_secs(8));
    let injected =
        eventually(|| tg.prompts().iter().any(|p| p.contains("ASYNC INTER-AGENT RESPONSE from 'ops'"))).await;
    assert!(injected, "main's session ran the answer: {:?}", tg.prompts());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut killed = tg.service.take().unwrap();
    killed.signal(nix::sys::signal::Signal::SIGKILL);
    tokio::task::spawn_blocking(move || killed.wait_exit(Duration::from_secs(10))).await.unwrap();
    assert!(
        tg.api.bot_messages(ALICE).iter().all(|m| !m.visible.contains("relayed-ops")),
        "nothing sent before the kill"
    );

    tg.api.delay("sendMessage", Duration::ZERO);
    tg.launch().await;
    tg.bot_says(ALICE, "relayed-ops").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered = tg.api.bot_messages(ALICE).iter().filter(|m| m.visible.contains("relayed-ops")).count();
    assert_eq!(delivered, 1, "delivered once: {:?}", tg.api.bot_messages(ALICE));
}

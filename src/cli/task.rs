//! `ductor task create|list|cancel|resume|delete|ask-parent` (ops spec §6.4): background tasks
//! through the running service's internal API (`/tasks/*`, with the home's token). Each prints
//! one JSON object; a refusal prints `{"error": …}` and exits 1. The agent is `--from`, else
//! `DUCTOR_AGENT_NAME`, else `main`; the chat comes from `DUCTOR_CHAT_ID`, `DUCTOR_TOPIC_ID`
//! and `DUCTOR_TRANSPORT` (the variables ductor gives its CLIs).

use std::time::Duration;

use clap::ArgMatches;
use serde_json::{Map, Value, json};

use crate::cli::http::{get_local, post_local_json};
use crate::cli::tool_command::{Outcome, choice_arg, command, matches, missing_argument, positional, text, text_arg};
use crate::core::tool_commands::{PROVIDERS, ToolAnswer};
use crate::store::interagent_token::client_token;
use crate::store::paths::DuctorPaths;
use crate::store::tool_commands::settings;

/// How long a command waits for the service.
const TIMEOUT: Duration = Duration::from_secs(30);

const GROUP_HELP: &str = "\
ductor task — background tasks: a separate CLI run that reports back into this chat.
Each prints one JSON object; needs the running ductor service.

  ductor task create [--name N] [--provider P] [--model M] [--thinking T]
                     [--priority interactive|background|batch] \"prompt\"
  ductor task list                      the agent's tasks, newest first
  ductor task resume ID \"follow-up\"     continue a finished task with its context
  ductor task cancel ID                 stop a running task (its process group is killed)
  ductor task delete ID                 remove a finished task and its folder
  ductor task ask-parent \"question\"     (worker only: needs DUCTOR_TASK_ID) ask the parent agent

Common: --from AGENT (default: DUCTOR_AGENT_NAME, else main).
";

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn from_agent(matches: &ArgMatches) -> String {
    text(matches, "from").or_else(|| env_value("DUCTOR_AGENT_NAME")).unwrap_or_else(|| "main".to_owned())
}

/// Runs `ductor task <sub> …`; returns the exit status.
pub fn run(paths: &DuctorPaths, args: &[String]) -> i32 {
    let Some((sub, rest)) = args.split_first() else {
        print!("{GROUP_HELP}");
        return 0;
    };
    let outcome = match sub.as_str() {
        "create" => create(paths, rest),
        "list" => list(paths, rest),
        "resume" => resume(paths, rest),
        "cancel" => by_id(paths, rest, "cancel"),
        "delete" => by_id(paths, rest, "delete"),
        "ask-parent" | "ask_parent" => ask_parent(paths, rest),
        "help" | "-h" | "--help" => {
            print!("{GROUP_HELP}");
            return 0;
        }
        other => {
            print!("{GROUP_HELP}");
            println!("\nUnknown command: ductor task {other}");
            return 1;
        }
    };
    match outcome {
        Ok(outcome) | Err(outcome) => outcome.exit(),
    }
}

fn with_from(cmd: clap::Command) -> clap::Command {
    cmd.arg(text_arg("from"))
}

/// The service's port: `DUCTOR_INTERAGENT_PORT` (set for the CLIs), else the home's config.
fn port(paths: &DuctorPaths) -> u16 {
    env_value("DUCTOR_INTERAGENT_PORT").and_then(|p| p.parse().ok()).unwrap_or_else(|| settings(paths).interagent_port)
}

/// The answer of the service to one request: its JSON on success, `{"error": …}` otherwise.
fn call(paths: &DuctorPaths, method: &str, path: &str, body: &Value) -> ToolAnswer {
    let port = port(paths);
    let token = client_token(paths);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return ToolAnswer::error(format!("cannot start: {e}")),
    };
    let response = runtime.block_on(async {
        if method == "GET" {
            get_local(port, path, token.as_deref(), TIMEOUT).await.map(|body| (200, body))
        } else {
            let bytes = serde_json::to_vec(body).unwrap_or_default();
            post_local_json(port, path, &bytes, token.as_deref(), TIMEOUT).await.map(|r| (r.status, r.body))
        }
    });
    let (status, text) = match response {
        Ok(answer) => answer,
        Err(e) => {
            return ToolAnswer::error(format!(
                "the ductor service did not answer on port {port} ({e}); is it running?"
            ));
        }
    };
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "error": text.trim() }));
    let refused = status != 200 || value.get("success") == Some(&Value::Bool(false));
    if refused {
        let error = value
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| format!("refused (HTTP {status})"), str::to_owned);
        let mut output = Map::new();
        output.insert("error".to_owned(), error.into());
        output.insert("status".to_owned(), status.into());
        if let Some(answer) = value.get("answer") {
            output.insert("answer".to_owned(), answer.clone());
        }
        return ToolAnswer::failure(Value::Object(output));
    }
    ToolAnswer::success(value)
}

fn create(paths: &DuctorPaths, args: &[String]) -> Result<Outcome, Outcome> {
    let cmd = with_from(command("create"))
        .arg(text_arg("name"))
        .arg(choice_arg("provider", &PROVIDERS))
        .arg(text_arg("model"))
        .arg(text_arg("thinking"))
        .arg(choice_arg("priority", &["interactive", "background", "batch"]))
        .arg(positional("prompt", 1));
    let m = matches(cmd, args, GROUP_HELP)?;
    let Some(prompt) = text(&m, "prompt").filter(|p| !p.trim().is_empty()) else {
        return Err(missing_argument(GROUP_HELP, "the prompt"));
    };
    let mut body = json!({ "from": from_agent(&m), "prompt": prompt });
    for key in ["name", "provider", "model", "thinking", "priority"] {
        if let Some(value) = text(&m, key) {
            body[key] = value.into();
        }
    }
    if let Some(chat) = env_value("DUCTOR_CHAT_ID").and_then(|c| c.parse::<i64>().ok()) {
        body["chat_id"] = chat.into();
    }
    if let Some(topic) = env_value("DUCTOR_TOPIC_ID").and_then(|c| c.parse::<i64>().ok()) {
        body["topic_id"] = topic.into();
    }
    if let Some(transport) = env_value("DUCTOR_TRANSPORT") {
        body["transport"] = transport.into();
    }
    Ok(call(paths, "POST", "/tasks/create", &body).into())
}

fn list(paths: &DuctorPaths, args: &[String]) -> Result<Outcome, Outcome> {
    let m = matches(with_from(command("list")), args, GROUP_HELP)?;
    let from: String = from_agent(&m).chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    Ok(call(paths, "GET", &format!("/tasks/list?from={from}"), &Value::Null).into())
}

fn resume(paths: &DuctorPaths, args: &[String]) -> Result<Outcome, Outcome> {
    let cmd = with_from(command("resume")).arg(positional("task_id", 1)).arg(positional("prompt", 2));
    let m = matches(cmd, args, GROUP_HELP)?;
    let (Some(task_id), Some(prompt)) = (text(&m, "task_id"), text(&m, "prompt")) else {
        return Err(missing_argument(GROUP_HELP, "the task id and the follow-up"));
    };
    let body = json!({ "task_id": task_id, "prompt": prompt, "from": from_agent(&m) });
    Ok(call(paths, "POST", "/tasks/resume", &body).into())
}

fn by_id(paths: &DuctorPaths, args: &[String], action: &'static str) -> Result<Outcome, Outcome> {
    let m = matches(with_from(command(action)).arg(positional("task_id", 1)), args, GROUP_HELP)?;
    let Some(task_id) = text(&m, "task_id") else { return Err(missing_argument(GROUP_HELP, "the task id")) };
    let body = json!({ "task_id": task_id, "from": from_agent(&m) });
    Ok(call(paths, "POST", &format!("/tasks/{action}"), &body).into())
}

fn ask_parent(paths: &DuctorPaths, args: &[String]) -> Result<Outcome, Outcome> {
    let cmd = command("ask-parent").arg(text_arg("task-id")).arg(positional("question", 1));
    let m = matches(cmd, args, GROUP_HELP)?;
    let Some(question) = text(&m, "question").filter(|q| !q.trim().is_empty()) else {
        return Err(missing_argument(GROUP_HELP, "the question"));
    };
    let Some(task_id) = text(&m, "task-id").or_else(|| env_value("DUCTOR_TASK_ID")) else {
        return Ok(
            ToolAnswer::error("DUCTOR_TASK_ID is not set: only a background task's worker can ask its parent").into()
        );
    };
    let body = json!({ "task_id": task_id, "question": question });
    Ok(call(paths, "POST", "/tasks/ask_parent", &body).into())
}

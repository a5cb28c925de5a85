//! `ductor agent ask|ask-async|list|create|remove|shared-memory` (ops spec §6.3; the workspace's
//! `tools/agent_tools/*.py` run these) and `ductor agents list|add|remove` for people. The
//! asking agent is the one whose home this is (`…/agents/<name>`), else `DUCTOR_AGENT_NAME`,
//! else `main`; asks go to the running service's internal API with the home's token and the
//! asking CLI's `DUCTOR_INTERAGENT_DEPTH`. `agents.json` changes are written under its lock;
//! a running service picks them up from its file watch.

use std::time::Duration;

use clap::ArgMatches;
use serde_json::{Value, json};

use crate::chat::agent_directory::MAIN_AGENT;
use crate::chat::orchestrator::INTERAGENT_DEPTH_ENV;
use crate::cli::http::{get_local, post_local_json};
use crate::cli::tool_command::{
    Outcome, command, flag, flag_arg, matches, missing_argument, positional, text, text_arg,
};
use crate::core::state::agents::{SubAgentEntry, SubAgents};
use crate::core::tool_commands::ToolAnswer;
use crate::store::interagent_token::client_token;
use crate::store::locked_state::{read_strict, update};
use crate::store::paths::DuctorPaths;
use crate::store::tool_commands::settings;

/// How long `ask` waits (the service gives up after 300 s).
const ASK_TIMEOUT: Duration = Duration::from_secs(310);

/// How long the other requests wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const GROUP_HELP: &str = "\
ductor agent — the agents of this ductor and the messages between them.

  ductor agent ask [--new] AGENT MESSAGE        ask and wait for the answer (up to 5 minutes)
  ductor agent ask-async [--new] [--summary S] [--reply-to A] [--silent] AGENT MESSAGE
                                                hand over work; the answer arrives in your chat later
  ductor agent list                             the agents (agents.json) and which are running
  ductor agent create --name N --token T --users 1,2 [--provider P] [--model M] [--description D]
  ductor agent create --name N --transport matrix --homeserver URL --user-id @b:hs --password P
                      [--allowed-users @a:hs,…] [--allowed-rooms !r:hs,…]
  ductor agent remove NAME                      remove from agents.json (its folder is kept)
  ductor agent shared-memory --show | --append TEXT | --set TEXT
";

/// Which agent this home is, and the main home.
fn identity(paths: &DuctorPaths) -> (String, DuctorPaths) {
    let home = paths.home();
    if let (Some(parent), Some(name)) = (home.parent(), home.file_name())
        && parent.file_name() == Some("agents")
        && let Some(main) = parent.parent()
    {
        return (name.to_owned(), DuctorPaths::at(main));
    }
    let name = std::env::var("DUCTOR_AGENT_NAME").ok().filter(|n| !n.trim().is_empty());
    (name.unwrap_or_else(|| MAIN_AGENT.to_owned()), paths.clone())
}

/// The internal API port: `DUCTOR_INTERAGENT_PORT` (the CLIs get it), else the main config.
fn port(main: &DuctorPaths) -> u16 {
    std::env::var("DUCTOR_INTERAGENT_PORT")
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| settings(main).interagent_port)
}

/// Runs `ductor agent <sub> …`; returns the exit status.
pub fn run(paths: &DuctorPaths, args: &[String]) -> i32 {
    let (sub, rest) = match args.split_first() {
        Some((sub, rest)) if !sub.starts_with('-') => (sub.as_str(), rest),
        _ => {
            print!("{GROUP_HELP}");
            return i32::from(args.is_empty() || !args.iter().any(|a| a == "--help" || a == "-h"));
        }
    };
    let outcome = match sub {
        "ask" => ask(paths, rest),
        "ask-async" => ask_async(paths, rest),
        "list" => list(paths),
        "create" | "add" => create(paths, rest),
        "remove" => remove(paths, rest),
        "shared-memory" => shared_memory(paths, rest),
        other => {
            Outcome::Answer(ToolAnswer::error(format!("unknown command 'agent {other}'; see ductor agent --help")))
        }
    };
    outcome.exit()
}

fn block_on<T>(future: impl Future<Output = T>) -> Result<T, Outcome> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(future))
        .map_err(|e| Outcome::Answer(ToolAnswer::error(format!("cannot start the async runtime: {e}"))))
}

/// POSTs to the running service; the JSON answer or the error to print.
fn post(main: &DuctorPaths, route: &str, body: &Value, timeout: Duration) -> Result<Value, Outcome> {
    let port = port(main);
    let token = client_token(main);
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let response = block_on(post_local_json(port, route, &bytes, token.as_deref(), timeout))?.map_err(|e| {
        Outcome::Answer(ToolAnswer::error(format!(
            "ductor's internal API on port {port} did not answer ({e}); is ductor running?"
        )))
    })?;
    serde_json::from_str(&response.body).map_err(|_| {
        Outcome::Answer(ToolAnswer::error(format!(
            "HTTP {} from the internal API: {}",
            response.status,
            response.body.trim()
        )))
    })
}

fn depth() -> u32 {
    std::env::var(INTERAGENT_DEPTH_ENV).ok().and_then(|d| d.trim().parse().ok()).unwrap_or(0)
}

const ASK_USAGE: &str = "ductor agent ask [--new] AGENT MESSAGE — asks another agent and prints its answer.\n\
  --new   start the conversation with that agent afresh\n";

/// The target and the message (the rest of the words).
fn target_and_message(matches: &ArgMatches) -> Option<(String, String)> {
    let words: Vec<String> = matches.get_many::<String>("words").map(|w| w.cloned().collect()).unwrap_or_default();
    let (target, message) = words.split_first()?;
    let message = message.join(" ");
    (!message.trim().is_empty()).then(|| (target.clone(), message))
}

fn words_arg() -> clap::Arg {
    clap::Arg::new("words").num_args(0..).trailing_var_arg(true).allow_hyphen_values(true)
}

fn ask(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let cmd = command("ask").arg(flag_arg("new")).arg(flag_arg("json")).arg(words_arg());
    let matches = match matches(cmd, args, ASK_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let Some((to, message)) = target_and_message(&matches) else { return missing_argument(ASK_USAGE, "AGENT MESSAGE") };
    let (from, main) = identity(paths);
    let body =
        json!({"from": from, "to": to, "message": message, "new_session": flag(&matches, "new"), "depth": depth()});
    let answer = match post(&main, "/interagent/send", &body, ASK_TIMEOUT) {
        Ok(answer) => answer,
        Err(outcome) => return outcome,
    };
    if flag(&matches, "json") {
        let code = i32::from(answer["success"] != true);
        return Outcome::Answer(ToolAnswer { output: answer, exit_code: code });
    }
    if answer["success"] == true {
        println!("{}", answer["text"].as_str().unwrap_or_default());
        Outcome::Printed(0)
    } else {
        let error = answer["error"].as_str().unwrap_or("no answer").to_owned();
        eprintln!("Error from '{to}': {error}");
        println!("Error: {error}");
        Outcome::Printed(1)
    }
}

const ASK_ASYNC_USAGE: &str = "ductor agent ask-async [--new] [--summary S] [--reply-to AGENT] [--silent] AGENT MESSAGE\n\
  Hands work to another agent and returns its task id at once; the answer arrives in this\n\
  chat later. --summary: what the other agent's user is shown; --reply-to: the agent whose chat\n\
  gets the answer; --silent: the other agent's user is not told.\n";

fn ask_async(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let cmd = command("ask-async")
        .arg(flag_arg("new"))
        .arg(text_arg("summary"))
        .arg(text_arg("reply-to"))
        .arg(flag_arg("silent"))
        .arg(words_arg());
    let matches = match matches(cmd, args, ASK_ASYNC_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let Some((to, message)) = target_and_message(&matches) else {
        return missing_argument(ASK_ASYNC_USAGE, "AGENT MESSAGE");
    };
    let (from, main) = identity(paths);
    let env_int = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<i64>().ok());
    let body = json!({
        "from": from, "to": to, "message": message, "new_session": flag(&matches, "new"), "depth": depth(),
        "summary": text(&matches, "summary"), "reply_to": text(&matches, "reply-to"), "silent": flag(&matches, "silent"),
        "chat_id": env_int("DUCTOR_CHAT_ID"), "topic_id": env_int("DUCTOR_TOPIC_ID"),
        "transport": std::env::var("DUCTOR_TRANSPORT").ok(),
    });
    match post(&main, "/interagent/send_async", &body, REQUEST_TIMEOUT) {
        Ok(answer) => {
            let code = i32::from(answer["success"] != true);
            Outcome::Answer(ToolAnswer { output: answer, exit_code: code })
        }
        Err(outcome) => outcome,
    }
}

fn list(paths: &DuctorPaths) -> Outcome {
    let (_, main) = identity(paths);
    let file = match read_strict::<SubAgents>(&main.agents()) {
        Ok(file) => file,
        Err(e) => return Outcome::Answer(ToolAnswer::error(e.to_string())),
    };
    let running: Vec<String> =
        block_on(get_local(port(&main), "/interagent/agents", client_token(&main).as_deref(), REQUEST_TIMEOUT))
            .ok()
            .and_then(Result::ok)
            .and_then(|body| serde_json::from_str::<Value>(&body).ok())
            .and_then(|v| {
                v["agents"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
            })
            .unwrap_or_default();
    let mut agents = vec![json!({"name": MAIN_AGENT, "running": running.iter().any(|n| n == MAIN_AGENT)})];
    for entry in &file.agents {
        agents.push(json!({
            "name": entry.name,
            "transport": entry.extra.get("transport").and_then(Value::as_str).unwrap_or("telegram"),
            "provider": entry.effective_provider(),
            "model": entry.model,
            "running": running.contains(&entry.name),
        }));
    }
    Outcome::Answer(ToolAnswer { output: json!({"agents": agents, "count": agents.len()}), exit_code: 0 })
}

const CREATE_USAGE: &str = "ductor agent create --name NAME — adds a sub-agent to agents.json (a running ductor starts it).\n\
  Telegram: --token BOT_TOKEN --users 1,2\n\
  Matrix:   --transport matrix --homeserver URL --user-id @bot:hs --password P [--allowed-users @a:hs,…] [--allowed-rooms !r:hs,…]\n\
  Optional: --provider claude|codex|gemini --model M --description TEXT (greeting of its chats)\n";

/// A comma-separated list.
fn list_arg(raw: Option<String>) -> Vec<String> {
    raw.map(|r| r.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

/// Lowercase letters, digits and `-`/`_`, starting with a letter.
fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn create(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let cmd = [
        "name",
        "transport",
        "token",
        "users",
        "homeserver",
        "user-id",
        "password",
        "allowed-users",
        "allowed-rooms",
        "provider",
        "model",
        "description",
    ]
    .into_iter()
    .fold(command("create"), |cmd, long| cmd.arg(text_arg(long)));
    let matches = match matches(cmd, args, CREATE_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let Some(name) = text(&matches, "name").map(|n| n.trim().to_lowercase()) else {
        return missing_argument(CREATE_USAGE, "--name");
    };
    if name == MAIN_AGENT || !valid_name(&name) {
        return Outcome::Answer(ToolAnswer::error(format!(
            "agent name {name:?} not allowed: lowercase letters, digits, - and _, starting with a letter; 'main' is reserved"
        )));
    }
    let transport = text(&matches, "transport").unwrap_or_else(|| "telegram".to_owned());
    let mut extra = serde_json::Map::new();
    extra.insert("transport".into(), transport.clone().into());
    let mut users = None;
    match transport.as_str() {
        "telegram" => {
            let Some(token) = text(&matches, "token").filter(|t| !t.trim().is_empty()) else {
                return missing_argument(CREATE_USAGE, "--token (the new agent's own bot token)");
            };
            extra.insert("telegram_token".into(), token.into());
            let parsed: Result<Vec<i64>, _> =
                list_arg(text(&matches, "users")).iter().map(|u| u.parse::<i64>()).collect();
            match parsed {
                Ok(ids) => users = Some(ids),
                Err(_) => {
                    return Outcome::Answer(ToolAnswer::error("--users must be comma-separated numeric user ids"));
                }
            }
        }
        "matrix" => {
            let mut matrix = serde_json::Map::new();
            for (flag, key) in [("homeserver", "homeserver"), ("user-id", "user_id"), ("password", "password")] {
                match text(&matches, flag) {
                    Some(value) => matrix.insert(key.into(), value.into()),
                    None => return missing_argument(CREATE_USAGE, &format!("--{flag}")),
                };
            }
            matrix.insert("allowed_users".into(), list_arg(text(&matches, "allowed-users")).into());
            matrix.insert("allowed_rooms".into(), list_arg(text(&matches, "allowed-rooms")).into());
            extra.insert("matrix".into(), Value::Object(matrix));
        }
        other => {
            return Outcome::Answer(ToolAnswer::error(format!(
                "--transport must be telegram or matrix, not {other:?}"
            )));
        }
    }
    let provider = text(&matches, "provider").map(|p| if p == "codex" { "openai".to_owned() } else { p });
    let entry =
        SubAgentEntry { name: name.clone(), provider, model: text(&matches, "model"), allowed_user_ids: users, extra };
    let (_, main) = identity(paths);
    let added = update::<SubAgents, bool>(&main, |file| {
        if file.agents.iter().any(|e| e.name == name) {
            return (false, false);
        }
        file.agents.push(entry.clone());
        (true, true)
    });
    match added {
        Ok(false) => Outcome::Answer(ToolAnswer::error(format!("agent '{name}' exists already"))),
        Ok(true) => {
            if let Some(description) = text(&matches, "description").filter(|d| !d.trim().is_empty()) {
                let workspace = main.sub_agent(&name).workspace();
                let written = std::fs::create_dir_all(&workspace)
                    .and_then(|()| std::fs::write(workspace.join("JOIN_NOTIFICATION.md"), description));
                if let Err(e) = written {
                    eprintln!("note: could not write the greeting of '{name}': {e}");
                }
            }
            Outcome::Answer(ToolAnswer {
                output: json!({"success": true, "name": name, "home": main.sub_agent(&name).home().as_str()}),
                exit_code: 0,
            })
        }
        Err(e) => Outcome::Answer(ToolAnswer::error(e.to_string())),
    }
}

fn remove(paths: &DuctorPaths, args: &[String]) -> Outcome {
    const USAGE: &str = "ductor agent remove NAME — removes a sub-agent from agents.json; its folder is kept.\n";
    let matches = match matches(command("remove").arg(positional("name", 1)), args, USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let Some(name) = text(&matches, "name") else { return missing_argument(USAGE, "NAME") };
    if name == MAIN_AGENT {
        return Outcome::Answer(ToolAnswer::error("the main agent cannot be removed"));
    }
    let (_, main) = identity(paths);
    match update::<SubAgents, bool>(&main, |file| {
        let before = file.agents.len();
        file.agents.retain(|e| e.name != name);
        let removed = file.agents.len() != before;
        (removed, removed)
    }) {
        Ok(true) => Outcome::Answer(ToolAnswer { output: json!({"success": true, "removed": name}), exit_code: 0 }),
        Ok(false) => Outcome::Answer(ToolAnswer::error(format!("no agent '{name}' in agents.json"))),
        Err(e) => Outcome::Answer(ToolAnswer::error(e.to_string())),
    }
}

fn shared_memory(paths: &DuctorPaths, args: &[String]) -> Outcome {
    const USAGE: &str = "ductor agent shared-memory --show | --append TEXT | --set TEXT — the knowledge every agent shares (SHAREDMEMORY.md).\n";
    let cmd = command("shared-memory").arg(flag_arg("show")).arg(text_arg("append")).arg(text_arg("set"));
    let matches = match matches(cmd, args, USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let (_, main) = identity(paths);
    let path = std::env::var("DUCTOR_SHARED_MEMORY_PATH")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .map_or_else(|| main.shared_memory(), camino::Utf8PathBuf::from);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let new = match (text(&matches, "append"), text(&matches, "set")) {
        (Some(more), None) => format!("{}\n\n{}\n", current.trim_end(), more.trim()),
        (None, Some(all)) => format!("{}\n", all.trim_end()),
        (None, None) if flag(&matches, "show") || args.is_empty() => {
            return Outcome::Answer(ToolAnswer {
                output: json!({"path": path.as_str(), "content": current}),
                exit_code: 0,
            });
        }
        _ => return missing_argument(USAGE, "one of --show, --append TEXT, --set TEXT"),
    };
    match crate::store::atomic::write_text_atomic(&path, &new) {
        Ok(()) => Outcome::Answer(ToolAnswer {
            output: json!({"success": true, "path": path.as_str(), "chars": new.chars().count()}),
            exit_code: 0,
        }),
        Err(e) => Outcome::Answer(ToolAnswer::error(format!("could not write {path}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_agents_home_names_it_and_its_main_home() {
        let (name, main) = identity(&DuctorPaths::at("/h/.ductor/agents/ops"));
        assert_eq!((name.as_str(), main.home().as_str()), ("ops", "/h/.ductor"));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("ops-2"));
        assert!(!valid_name("Ops") && !valid_name("2ops") && !valid_name("a b") && !valid_name(""));
    }
}

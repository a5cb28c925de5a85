//! `ductor webhook add|edit|list|remove|rotate-token|test` (ops spec §6.2): the flags, the
//! usage texts, and the answer printed as one JSON object (exit 1 with `{"error": …}` when
//! refused). Changes go through the running service when there is one (`cli::tool_command`);
//! `test` sends an authenticated request to the webhook server (bearer token or computed HMAC
//! signature, 10 s timeout) and prints its status and body.

use std::time::Duration;

use clap::ArgMatches;

use crate::cli::http::send;
use crate::cli::tool_command::{
    Outcome, choice_arg, cli_parameters, command, deliver, flag, flag_arg, hour, hour_arg, matches, missing,
    missing_argument, positional, text, text_arg, usage_for_missing,
};
use crate::core::tool_commands::webhook::{
    AUTH_MODES, HMAC_ALGORITHMS, HMAC_ENCODINGS, MODES, WebhookAdd, WebhookEdit, WebhookOp, WebhookRemove,
    WebhookRotateToken, test_output, test_request, test_unreachable,
};
use crate::core::tool_commands::{PROVIDERS, REASONING_EFFORTS, ToolAnswer};
use crate::store::paths::DuctorPaths;
use crate::store::tool_commands::{self, settings};

/// The internal API route that takes webhook changes.
pub const SERVICE_ROUTE: &str = "/interagent/webhooks";

/// How long `ductor webhook test` waits for the webhook server.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

const GROUP_HELP: &str = "\
ductor webhook — incoming webhooks (webhooks.json). Each prints one JSON object.

  ductor webhook add            new hook (wake or cron_task)   (ductor webhook add --help)
  ductor webhook edit           change a hook in place
  ductor webhook list           all hooks and the server settings
  ductor webhook remove         delete a hook (its task folder stays)
  ductor webhook rotate-token   new bearer token for one hook or all
  ductor webhook test           send an authenticated test request to the running server
";

const ADD_USAGE: &str = r#"ductor webhook add — register a webhook at /hooks/<name>. Another service POSTs JSON
there; {{field}} in the prompt template is replaced by the payload's top-level field.

Required:
  --name NAME              hook id (lowercased, anything but a-z 0-9 - becomes -)
  --title TITLE            short title
  --description TEXT       what the hook is for
  --mode wake|cron_task    wake: the prompt goes into the user's chat session;
                           cron_task: a fresh run in cron_tasks/<folder>/
  --prompt-template TEXT   e.g. "New mail from {{from}}: {{subject}}"

Optional:
  --task-folder FOLDER     required for cron_task; made when missing (CLAUDE.md, AGENTS.md,
                           TASK_DESCRIPTION.md, memory file, scripts/)
  --auth-mode bearer|hmac  bearer (default): a token is generated for this hook;
                           hmac: the calling service signs each body
  --hmac-secret S          the calling service's signing secret (hmac)
  --hmac-header H          the header with the signature (hmac), e.g. X-Hub-Signature-256
  --hmac-algorithm A       sha256 (default) | sha1 | sha512
  --hmac-encoding E        hex (default) | base64
  --hmac-sig-prefix P      prefix before the signature (default "sha256="; "" for none)
  --hmac-sig-regex RE      regex whose group 1 is the signature (e.g. "v1=([0-9a-f]+)")
  --hmac-payload-prefix-regex RE
                           regex on the header whose group 1 is signed before the body as
                           "<group1>.<body>" (e.g. "t=(\d+)")
  --provider P  --model M  --reasoning-effort E  --cli-parameters JSON
  --quiet-start H  --quiet-end H  --dependency NAME        (cron_task only)

Presets:
  GitHub:  --auth-mode hmac --hmac-secret S --hmac-header X-Hub-Signature-256
  Stripe:  --auth-mode hmac --hmac-secret S --hmac-header Stripe-Signature --hmac-sig-prefix ""
           --hmac-sig-regex "v1=([0-9a-f]+)" --hmac-payload-prefix-regex "t=(\d+)"
  Shopify: --auth-mode hmac --hmac-secret S --hmac-header X-Shopify-Hmac-Sha256
           --hmac-encoding base64 --hmac-sig-prefix ""

Example:
  ductor webhook add --name mail --title "New mail" --description "Zapier mail ping" \
      --mode wake --prompt-template "Mail from {{from}}: {{subject}}"
"#;

const EDIT_USAGE: &str = r#"ductor webhook edit HOOK_ID [changes] — change a hook in place.

  --enable | --disable   --title T  --description D  --prompt-template T  --task-folder F
  --auth-mode bearer|hmac  --hmac-secret S  --hmac-header H  --hmac-algorithm A
  --hmac-encoding E  --hmac-sig-prefix P  --hmac-sig-regex RE  --hmac-payload-prefix-regex RE
  --regenerate-token     new bearer token (bearer hooks only)
  --provider P  --model M  --reasoning-effort E  --cli-parameters JSON
  --quiet-start H  --quiet-end H  --dependency NAME  --clear-quiet-hours  --clear-dependency
"#;

const REMOVE_USAGE: &str = r#"ductor webhook remove HOOK_ID — delete a hook from webhooks.json. Its task folder stays
(a cron job may use it).
"#;

const LIST_USAGE: &str =
    "ductor webhook list — every hook (auth, trigger count, last error) and the server settings.\n";

const ROTATE_USAGE: &str = r#"ductor webhook rotate-token [HOOK_ID] — a new bearer token for one hook, or for every
bearer hook. The old token is refused from then on; update the calling services.
"#;

const TEST_USAGE: &str = r#"ductor webhook test HOOK_ID [--payload '{"key": "value"}'] — POST the payload (default {})
to the running webhook server with the hook's bearer token or a computed HMAC signature and
print the answer (202 = accepted). Needs webhooks.enabled and a running ductor.
"#;

/// Runs `ductor webhook <args>`; returns the exit status.
pub fn run(paths: &DuctorPaths, args: &[String]) -> i32 {
    let Some((sub, rest)) = args.split_first() else {
        print!("{GROUP_HELP}");
        return 0;
    };
    let outcome = match sub.as_str() {
        "add" => add(paths, rest),
        "edit" => edit(paths, rest),
        "remove" => remove(paths, rest),
        "list" => list(paths, rest),
        "rotate-token" => rotate(paths, rest),
        "test" => test(paths, rest),
        "help" | "-h" | "--help" => {
            print!("{GROUP_HELP}");
            return 0;
        }
        other => {
            print!("{GROUP_HELP}");
            println!("\nUnknown command: ductor webhook {other}");
            return 1;
        }
    };
    outcome.exit()
}

fn change(paths: &DuctorPaths, op: WebhookOp) -> Outcome {
    deliver(paths, SERVICE_ROUTE, &op, tool_commands::webhook::apply).into()
}

fn hook_args(cmd: clap::Command) -> clap::Command {
    cmd.arg(text_arg("title"))
        .arg(text_arg("description"))
        .arg(text_arg("prompt-template"))
        .arg(text_arg("task-folder"))
        .arg(choice_arg("auth-mode", &AUTH_MODES))
        .arg(text_arg("hmac-secret"))
        .arg(text_arg("hmac-header"))
        .arg(choice_arg("hmac-algorithm", &HMAC_ALGORITHMS))
        .arg(choice_arg("hmac-encoding", &HMAC_ENCODINGS))
        .arg(text_arg("hmac-sig-prefix"))
        .arg(text_arg("hmac-sig-regex"))
        .arg(text_arg("hmac-payload-prefix-regex"))
        .arg(choice_arg("provider", &PROVIDERS))
        .arg(text_arg("model"))
        .arg(choice_arg("reasoning-effort", &REASONING_EFFORTS))
        .arg(text_arg("cli-parameters"))
        .arg(hour_arg("quiet-start"))
        .arg(hour_arg("quiet-end"))
        .arg(text_arg("dependency"))
}

fn add(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let cmd = hook_args(command("ductor webhook add")).arg(text_arg("name")).arg(choice_arg("mode", &MODES));
    let m = match matches(cmd, args, ADD_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let absent = missing(&m, &["name", "title", "description", "mode", "prompt-template"]);
    if !absent.is_empty() {
        return Outcome::Printed(usage_for_missing(ADD_USAGE, &absent));
    }
    match add_request(&m) {
        Ok(request) => change(paths, WebhookOp::Add(request)),
        Err(answer) => answer.into(),
    }
}

fn add_request(m: &ArgMatches) -> Result<WebhookAdd, ToolAnswer> {
    Ok(WebhookAdd {
        name: text(m, "name").unwrap_or_default(),
        title: text(m, "title").unwrap_or_default(),
        description: text(m, "description").unwrap_or_default(),
        mode: text(m, "mode").unwrap_or_default(),
        prompt_template: text(m, "prompt-template").unwrap_or_default(),
        task_folder: text(m, "task-folder"),
        auth_mode: text(m, "auth-mode"),
        hmac_secret: text(m, "hmac-secret"),
        hmac_header: text(m, "hmac-header"),
        hmac_algorithm: text(m, "hmac-algorithm"),
        hmac_encoding: text(m, "hmac-encoding"),
        hmac_sig_prefix: text(m, "hmac-sig-prefix"),
        hmac_sig_regex: text(m, "hmac-sig-regex"),
        hmac_payload_prefix_regex: text(m, "hmac-payload-prefix-regex"),
        provider: text(m, "provider"),
        model: text(m, "model"),
        reasoning_effort: text(m, "reasoning-effort"),
        cli_parameters: cli_parameters(m)?,
        quiet_start: hour(m, "quiet-start"),
        quiet_end: hour(m, "quiet-end"),
        dependency: text(m, "dependency"),
    })
}

fn hook_id(m: &ArgMatches) -> Option<String> {
    text(m, "hook-id").filter(|id| !id.trim().is_empty())
}

fn edit(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let cmd = hook_args(command("ductor webhook edit"))
        .arg(positional("hook-id", 1))
        .arg(flag_arg("enable").conflicts_with("disable"))
        .arg(flag_arg("disable"))
        .arg(flag_arg("regenerate-token"))
        .arg(flag_arg("clear-quiet-hours"))
        .arg(flag_arg("clear-dependency"));
    let m = match matches(cmd, args, EDIT_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let Some(id) = hook_id(&m) else {
        return missing_argument(EDIT_USAGE, "HOOK_ID");
    };
    let enabled = if flag(&m, "enable") {
        Some(true)
    } else if flag(&m, "disable") {
        Some(false)
    } else {
        None
    };
    let request = match cli_parameters(&m) {
        Ok(cli_parameters) => WebhookEdit {
            hook_id: id,
            enabled,
            title: text(&m, "title"),
            description: text(&m, "description"),
            prompt_template: text(&m, "prompt-template"),
            task_folder: text(&m, "task-folder"),
            auth_mode: text(&m, "auth-mode"),
            hmac_secret: text(&m, "hmac-secret"),
            hmac_header: text(&m, "hmac-header"),
            hmac_algorithm: text(&m, "hmac-algorithm"),
            hmac_encoding: text(&m, "hmac-encoding"),
            hmac_sig_prefix: text(&m, "hmac-sig-prefix"),
            hmac_sig_regex: text(&m, "hmac-sig-regex"),
            hmac_payload_prefix_regex: text(&m, "hmac-payload-prefix-regex"),
            regenerate_token: flag(&m, "regenerate-token"),
            provider: text(&m, "provider"),
            model: text(&m, "model"),
            reasoning_effort: text(&m, "reasoning-effort"),
            cli_parameters,
            quiet_start: hour(&m, "quiet-start"),
            quiet_end: hour(&m, "quiet-end"),
            dependency: text(&m, "dependency"),
            clear_quiet_hours: flag(&m, "clear-quiet-hours"),
            clear_dependency: flag(&m, "clear-dependency"),
        },
        Err(answer) => return answer.into(),
    };
    change(paths, WebhookOp::Edit(request))
}

fn remove(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let m = match matches(command("ductor webhook remove").arg(positional("hook-id", 1)), args, REMOVE_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    match hook_id(&m) {
        Some(hook_id) => change(paths, WebhookOp::Remove(WebhookRemove { hook_id })),
        None => missing_argument(REMOVE_USAGE, "HOOK_ID"),
    }
}

fn rotate(paths: &DuctorPaths, args: &[String]) -> Outcome {
    match matches(command("ductor webhook rotate-token").arg(positional("hook-id", 1)), args, ROTATE_USAGE) {
        Ok(m) => change(paths, WebhookOp::RotateToken(WebhookRotateToken { hook_id: hook_id(&m) })),
        Err(outcome) => outcome,
    }
}

fn list(paths: &DuctorPaths, args: &[String]) -> Outcome {
    match matches(command("ductor webhook list"), args, LIST_USAGE) {
        Ok(_) => tool_commands::webhook::list(paths).into(),
        Err(outcome) => outcome,
    }
}

fn test(paths: &DuctorPaths, args: &[String]) -> Outcome {
    let cmd = command("ductor webhook test").arg(positional("hook-id", 1)).arg(text_arg("payload"));
    let m = match matches(cmd, args, TEST_USAGE) {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let Some(id) = hook_id(&m) else {
        return missing_argument(TEST_USAGE, "HOOK_ID");
    };
    let hooks = match tool_commands::webhook::read_hooks(paths) {
        Ok(hooks) => hooks,
        Err(answer) => return answer.into(),
    };
    let server = settings(paths).webhooks;
    let payload = text(&m, "payload");
    let request = match test_request(&hooks, &id, payload.as_deref(), &server, chrono::Utc::now().timestamp()) {
        Ok(request) => request,
        Err(answer) => return answer.into(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return ToolAnswer::error(format!("cannot start the async runtime: {e}")).into(),
    };
    let sent = runtime.block_on(send(
        &request.host,
        request.port,
        "POST",
        &request.path,
        &request.headers,
        &request.body,
        TEST_TIMEOUT,
    ));
    match sent {
        Ok(response) => test_output(&request, response.status, &response.body).into(),
        Err(e) => test_unreachable(&request, &e.to_string()).into(),
    }
}

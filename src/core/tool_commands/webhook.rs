//! `ductor webhook …` (ops spec §6.2), the pure part: the operations that change
//! `webhooks.json` ([`WebhookOp`]: add, edit, remove, rotate-token), their checks (an `hmac`
//! hook's regexes are compiled as the server compiles them), what they do to the model, the
//! JSON objects the commands print, and the signed request `ductor webhook test` sends. New
//! tokens and the clock come from the caller.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ToolAnswer, WebhookServerSettings, check_choice, check_not_empty, check_overrides, trimmed};
use crate::core::state::webhooks::{Webhook, Webhooks};
use crate::core::webhook::{CompiledHook, RequestHeaders, authenticate, expected_signature};
use crate::core::workspace::{TaskName, sanitize_task_name};

/// The modes a hook can have.
pub const MODES: [&str; 2] = ["wake", "cron_task"];
/// The authentication modes.
pub const AUTH_MODES: [&str; 2] = ["bearer", "hmac"];
/// The HMAC algorithms.
pub const HMAC_ALGORITHMS: [&str; 3] = ["sha256", "sha1", "sha512"];
/// The HMAC signature encodings.
pub const HMAC_ENCODINGS: [&str; 2] = ["hex", "base64"];

/// An operation that changes `webhooks.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WebhookOp {
    /// `ductor webhook add`.
    Add(WebhookAdd),
    /// `ductor webhook edit`.
    Edit(WebhookEdit),
    /// `ductor webhook remove`.
    Remove(WebhookRemove),
    /// `ductor webhook rotate-token`.
    RotateToken(WebhookRotateToken),
}

impl WebhookOp {
    /// The command as typed (`webhook add`), for logs.
    pub fn command(&self) -> &'static str {
        match self {
            Self::Add(_) => "webhook add",
            Self::Edit(_) => "webhook edit",
            Self::Remove(_) => "webhook remove",
            Self::RotateToken(_) => "webhook rotate-token",
        }
    }
}

/// `ductor webhook add`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookAdd {
    /// `--name`: the hook id (sanitized).
    pub name: String,
    /// `--title`.
    pub title: String,
    /// `--description`.
    pub description: String,
    /// `--mode`: `wake` or `cron_task`.
    pub mode: String,
    /// `--prompt-template`.
    pub prompt_template: String,
    /// `--task-folder` (required for `cron_task`; made when missing).
    pub task_folder: Option<String>,
    /// `--auth-mode` (default `bearer`).
    pub auth_mode: Option<String>,
    /// `--hmac-secret`.
    pub hmac_secret: Option<String>,
    /// `--hmac-header`.
    pub hmac_header: Option<String>,
    /// `--hmac-algorithm` (default `sha256`).
    pub hmac_algorithm: Option<String>,
    /// `--hmac-encoding` (default `hex`).
    pub hmac_encoding: Option<String>,
    /// `--hmac-sig-prefix` (default `sha256=`).
    pub hmac_sig_prefix: Option<String>,
    /// `--hmac-sig-regex`.
    pub hmac_sig_regex: Option<String>,
    /// `--hmac-payload-prefix-regex`.
    pub hmac_payload_prefix_regex: Option<String>,
    /// `--provider`.
    pub provider: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--reasoning-effort`.
    pub reasoning_effort: Option<String>,
    /// `--cli-parameters`, parsed.
    pub cli_parameters: Option<Vec<String>>,
    /// `--quiet-start`.
    pub quiet_start: Option<i64>,
    /// `--quiet-end`.
    pub quiet_end: Option<i64>,
    /// `--dependency`.
    pub dependency: Option<String>,
}

impl WebhookAdd {
    fn auth_mode(&self) -> &str {
        self.auth_mode.as_deref().unwrap_or("bearer")
    }

    fn has_overrides(&self) -> bool {
        self.provider.is_some()
            || self.model.is_some()
            || self.reasoning_effort.is_some()
            || self.cli_parameters.is_some()
            || self.quiet_start.is_some()
            || self.quiet_end.is_some()
            || self.dependency.is_some()
    }
}

/// The names a new hook gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPlan {
    /// The hook id.
    pub name: TaskName,
    /// Its task folder (`cron_task` mode).
    pub task_folder: Option<TaskName>,
}

/// The checks of `ductor webhook add` on `hooks`: required texts, the choices, what `cron_task`
/// and `hmac` need, a free id. The regexes are checked by [`check_regexes`] on the new hook.
pub fn plan_add(hooks: &Webhooks, add: &WebhookAdd) -> Result<AddPlan, String> {
    for (flag, value) in [("name", &add.name), ("title", &add.title), ("prompt-template", &add.prompt_template)] {
        check_not_empty(flag, value)?;
    }
    check_choice("mode", &add.mode, &MODES)?;
    let task_folder = if add.mode == "cron_task" {
        let Some(folder) = trimmed(add.task_folder.as_deref()) else {
            return Err("--task-folder is required for mode 'cron_task'".to_owned());
        };
        Some(sanitize_task_name(&folder).map_err(|e| e.to_string())?)
    } else {
        None
    };
    check_choice("auth-mode", add.auth_mode(), &AUTH_MODES)?;
    if add.auth_mode() == "hmac" {
        if trimmed(add.hmac_secret.as_deref()).is_none() {
            return Err("--hmac-secret is required for --auth-mode hmac".to_owned());
        }
        if trimmed(add.hmac_header.as_deref()).is_none() {
            return Err("--hmac-header is required for --auth-mode hmac".to_owned());
        }
    }
    if let Some(algorithm) = &add.hmac_algorithm {
        check_choice("hmac-algorithm", algorithm, &HMAC_ALGORITHMS)?;
    }
    if let Some(encoding) = &add.hmac_encoding {
        check_choice("hmac-encoding", encoding, &HMAC_ENCODINGS)?;
    }
    check_overrides(add.provider.as_deref(), add.reasoning_effort.as_deref(), add.quiet_start, add.quiet_end)?;
    let name = sanitize_task_name(add.name.trim()).map_err(|e| e.to_string())?;
    if hooks.hooks.iter().any(|hook| hook.id == name.name) {
        return Err(format!("Hook '{}' already exists; pick another --name or use `ductor webhook edit`", name.name));
    }
    Ok(AddPlan { name, task_folder })
}

/// The hook `add` creates, with `token` (bearer mode) and `created_at`.
pub fn new_hook(add: &WebhookAdd, plan: &AddPlan, token: String, created_at: String) -> Webhook {
    let hmac = add.auth_mode() == "hmac";
    Webhook {
        id: plan.name.name.clone(),
        title: add.title.clone(),
        description: add.description.clone(),
        mode: add.mode.clone(),
        prompt_template: add.prompt_template.clone(),
        enabled: true,
        task_folder: plan.task_folder.as_ref().map(|t| t.name.clone()),
        auth_mode: add.auth_mode().to_owned(),
        token: if hmac { String::new() } else { token },
        hmac_secret: add.hmac_secret.clone().unwrap_or_default(),
        hmac_header: trimmed(add.hmac_header.as_deref()).unwrap_or_default(),
        hmac_algorithm: add.hmac_algorithm.clone().unwrap_or_else(|| "sha256".to_owned()),
        hmac_encoding: add.hmac_encoding.clone().unwrap_or_else(|| "hex".to_owned()),
        hmac_sig_prefix: add.hmac_sig_prefix.clone().unwrap_or_else(|| "sha256=".to_owned()),
        hmac_sig_regex: add.hmac_sig_regex.clone().unwrap_or_default(),
        hmac_payload_prefix_regex: add.hmac_payload_prefix_regex.clone().unwrap_or_default(),
        created_at,
        trigger_count: 0,
        last_triggered_at: None,
        last_error: None,
        provider: add.provider.clone(),
        model: trimmed(add.model.as_deref()),
        reasoning_effort: add.reasoning_effort.clone(),
        cli_parameters: add.cli_parameters.clone().unwrap_or_default(),
        quiet_start: add.quiet_start,
        quiet_end: add.quiet_end,
        dependency: trimmed(add.dependency.as_deref()),
        extra: Map::new(),
    }
}

/// Compiles an `hmac` hook's regexes as the webhook server does (Python `re` syntax, group 1
/// required); the error names each one that cannot be used.
pub fn check_regexes(hook: &Webhook) -> Result<(), String> {
    let (_, errors) = CompiledHook::compile(hook.clone());
    if errors.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> =
        errors.iter().map(|e| format!("--{} {:?}: {}", e.field.replace('_', "-"), e.pattern, e.reason)).collect();
    Err(format!("unusable regex: {}", reasons.join("; ")))
}

fn tunnel_step(settings: &WebhookServerSettings) -> String {
    format!(
        "Outside services reach this webhook only through a public address. If the user has none yet, a tunnel \
         works, e.g.: cloudflared tunnel --url http://localhost:{}",
        settings.port
    )
}

/// What `ductor webhook add` prints.
pub fn add_output(
    add: &WebhookAdd,
    hook: &Webhook,
    name: &TaskName,
    folder_created: bool,
    settings: &WebhookServerSettings,
) -> Value {
    let id = &hook.id;
    let mut out = Map::new();
    out.insert("hook_id".into(), json!(id));
    out.insert("mode".into(), json!(hook.mode));
    out.insert("auth_mode".into(), json!(hook.auth_mode));
    out.insert("endpoint".into(), json!(hook.endpoint()));
    out.insert("json_entry_created".into(), json!(true));
    if let Some(folder) = &hook.task_folder {
        out.insert("task_folder".into(), json!(format!("cron_tasks/{folder}")));
        out.insert("folder_created".into(), json!(folder_created));
        if folder_created {
            out.insert(
                "action_required".into(),
                json!([format!(
                    "Fill in the Assignment and Output sections of cron_tasks/{folder}/TASK_DESCRIPTION.md: it is \
                     what the agent started by this webhook does with the payload."
                )]),
            );
        }
    }
    let endpoint = format!("Configure the calling service to POST JSON to https://<public address>/hooks/{id}");
    let content_type = "Every request must be JSON with the header Content-Type: application/json.";
    let test = format!("Try it: ductor webhook test {id} --payload '{{\"test\": true}}'");
    if hook.auth_mode == "hmac" {
        out.insert(
            "setup_instructions".into(),
            json!({
                "step_1_check_tunnel": tunnel_step(settings),
                "step_2_endpoint_url": endpoint,
                "step_3_hmac_signing": format!(
                    "The calling service signs each body with HMAC-{} ({}) using the secret it gave you; ductor \
                     reads the signature from the '{}' header. The secret is stored.",
                    hook.hmac_algorithm.to_uppercase(), hook.hmac_encoding, hook.hmac_header
                ),
                "step_4_content_type": content_type,
                "step_5_test": format!("Use the calling service's test or ping feature. {test}"),
            }),
        );
    } else {
        out.insert("bearer_token".into(), json!(hook.token));
        out.insert(
            "setup_instructions".into(),
            json!({
                "step_1_check_tunnel": tunnel_step(settings),
                "step_2_endpoint_url": endpoint,
                "step_3_auth_header": format!(
                    "Every request must carry the header\n  Authorization: Bearer {}\nThis token is the hook's key; \
                     keep it secret.",
                    hook.token
                ),
                "step_4_content_type": content_type,
                "step_5_test": test,
            }),
        );
    }
    if !settings.enabled {
        out.insert(
            "server_note".into(),
            json!(
                "Webhooks are off: set \"webhooks\": {\"enabled\": true} in config.json and restart ductor, or no \
                 request reaches this hook."
            ),
        );
    }
    if hook.mode == "wake" && add.has_overrides() {
        out.insert(
            "notes".into(),
            json!(["A wake hook runs in the chat's own session: provider, model, reasoning effort, CLI parameters, \
                 quiet hours and dependency are stored but not used."]),
        );
    }
    if name.sanitized {
        out.insert("name_sanitized".into(), json!(true));
        out.insert("original_name".into(), json!(add.name.trim()));
    }
    Value::Object(out)
}

/// The answer for a hook id that names no hook.
pub fn hook_not_found(id: &str, hooks: &Webhooks) -> ToolAnswer {
    let available: Vec<&str> = hooks.hooks.iter().map(|hook| hook.id.as_str()).collect();
    ToolAnswer::error_with(
        format!("Hook '{id}' not found"),
        json!({"hint": "Use the exact hook id that `ductor webhook list` shows.", "available_hooks": available}),
    )
}

/// `ductor webhook edit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookEdit {
    /// The hook's id.
    pub hook_id: String,
    /// `--enable` (true) / `--disable` (false).
    pub enabled: Option<bool>,
    /// `--title`.
    pub title: Option<String>,
    /// `--description`.
    pub description: Option<String>,
    /// `--prompt-template`.
    pub prompt_template: Option<String>,
    /// `--task-folder`.
    pub task_folder: Option<String>,
    /// `--auth-mode`.
    pub auth_mode: Option<String>,
    /// `--hmac-secret`.
    pub hmac_secret: Option<String>,
    /// `--hmac-header`.
    pub hmac_header: Option<String>,
    /// `--hmac-algorithm`.
    pub hmac_algorithm: Option<String>,
    /// `--hmac-encoding`.
    pub hmac_encoding: Option<String>,
    /// `--hmac-sig-prefix` (may be `""`).
    pub hmac_sig_prefix: Option<String>,
    /// `--hmac-sig-regex` (may be `""`).
    pub hmac_sig_regex: Option<String>,
    /// `--hmac-payload-prefix-regex` (may be `""`).
    pub hmac_payload_prefix_regex: Option<String>,
    /// `--regenerate-token`.
    pub regenerate_token: bool,
    /// `--provider`.
    pub provider: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--reasoning-effort`.
    pub reasoning_effort: Option<String>,
    /// `--cli-parameters`, parsed.
    pub cli_parameters: Option<Vec<String>>,
    /// `--quiet-start`.
    pub quiet_start: Option<i64>,
    /// `--quiet-end`.
    pub quiet_end: Option<i64>,
    /// `--dependency`.
    pub dependency: Option<String>,
    /// `--clear-quiet-hours`.
    pub clear_quiet_hours: bool,
    /// `--clear-dependency`.
    pub clear_dependency: bool,
}

/// Applies `edit` to its hook in `hooks` (nothing changes when the answer is an error);
/// `new_token` makes the token for `--regenerate-token`.
pub fn apply_edit(hooks: &mut Webhooks, edit: &WebhookEdit, new_token: impl FnOnce() -> String) -> ToolAnswer {
    let id = edit.hook_id.trim();
    let Some(index) = hooks.hooks.iter().position(|hook| hook.id == id) else {
        return hook_not_found(id, hooks);
    };
    let mut hook = hooks.hooks[index].clone();
    let mut changes = Map::new();
    match edit_fields(&mut hook, edit, &mut changes) {
        Ok(()) => {}
        Err(message) => return ToolAnswer::error(message),
    }
    if edit.regenerate_token {
        if hook.auth_mode == "hmac" {
            return ToolAnswer::error_with(
                "Cannot regenerate a token: this hook authenticates with an HMAC signature, not a bearer token.",
                json!({"hint": "An HMAC secret comes from the calling service; change it there and pass --hmac-secret."}),
            );
        }
        hook.token = new_token();
        changes.insert("token_regenerated".into(), json!(true));
        changes.insert("new_bearer_token".into(), json!(hook.token));
    }
    if changes.is_empty() {
        return ToolAnswer::error("No changes given. See `ductor webhook edit --help` for the options.");
    }
    if hook.auth_mode == "hmac" {
        if hook.hmac_secret.is_empty() || hook.hmac_header.is_empty() {
            return ToolAnswer::error("an hmac hook needs both --hmac-secret and --hmac-header");
        }
        if let Err(message) = check_regexes(&hook) {
            return ToolAnswer::error(message);
        }
    }
    hooks.hooks[index] = hook;
    let mut out = Map::new();
    out.insert("hook_id".into(), json!(id));
    out.insert("changes".into(), Value::Object(changes));
    out.insert("updated".into(), json!(true));
    if edit.regenerate_token {
        out.insert(
            "action_required".into(),
            json!(
                "The bearer token changed: the old one is refused from now on. Update it in every service that \
                 calls this webhook."
            ),
        );
    }
    ToolAnswer::success(Value::Object(out))
}

fn edit_fields(hook: &mut Webhook, edit: &WebhookEdit, changes: &mut Map<String, Value>) -> Result<(), String> {
    if let Some(enabled) = edit.enabled {
        hook.enabled = enabled;
        changes.insert("enabled".into(), json!(enabled));
    }
    for (flag, value, slot) in [
        ("title", &edit.title, &mut hook.title),
        ("prompt-template", &edit.prompt_template, &mut hook.prompt_template),
        ("hmac-secret", &edit.hmac_secret, &mut hook.hmac_secret),
        ("hmac-header", &edit.hmac_header, &mut hook.hmac_header),
    ] {
        if let Some(value) = value {
            check_not_empty(flag, value)?;
            *slot = value.clone();
            let shown = if flag == "hmac-secret" { json!("(set)") } else { json!(value) };
            changes.insert(flag.replace('-', "_"), shown);
        }
    }
    if let Some(description) = &edit.description {
        hook.description = description.clone();
        changes.insert("description".into(), json!(description));
    }
    if let Some(folder) = &edit.task_folder {
        let task = sanitize_task_name(folder.trim()).map_err(|e| e.to_string())?;
        hook.task_folder = Some(task.name.clone());
        changes.insert("task_folder".into(), json!(task.name));
    }
    for (flag, value, allowed, slot) in [
        ("auth-mode", &edit.auth_mode, &AUTH_MODES[..], &mut hook.auth_mode),
        ("hmac-algorithm", &edit.hmac_algorithm, &HMAC_ALGORITHMS[..], &mut hook.hmac_algorithm),
        ("hmac-encoding", &edit.hmac_encoding, &HMAC_ENCODINGS[..], &mut hook.hmac_encoding),
    ] {
        if let Some(value) = value {
            check_choice(flag, value, allowed)?;
            *slot = value.clone();
            changes.insert(flag.replace('-', "_"), json!(value));
        }
    }
    for (key, value, slot) in [
        ("hmac_sig_prefix", &edit.hmac_sig_prefix, &mut hook.hmac_sig_prefix),
        ("hmac_sig_regex", &edit.hmac_sig_regex, &mut hook.hmac_sig_regex),
        ("hmac_payload_prefix_regex", &edit.hmac_payload_prefix_regex, &mut hook.hmac_payload_prefix_regex),
    ] {
        if let Some(value) = value {
            *slot = value.clone();
            changes.insert(key.into(), json!(value));
        }
    }
    check_overrides(edit.provider.as_deref(), edit.reasoning_effort.as_deref(), edit.quiet_start, edit.quiet_end)?;
    if let Some(provider) = &edit.provider {
        hook.provider = Some(provider.clone());
        changes.insert("provider".into(), json!(provider));
    }
    if let Some(model) = &edit.model {
        check_not_empty("model", model)?;
        hook.model = Some(model.trim().to_owned());
        changes.insert("model".into(), json!(model.trim()));
    }
    if let Some(effort) = &edit.reasoning_effort {
        hook.reasoning_effort = Some(effort.clone());
        changes.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(parameters) = &edit.cli_parameters {
        hook.cli_parameters = parameters.clone();
        changes.insert("cli_parameters".into(), json!(parameters));
    }
    if let Some(hour) = edit.quiet_start {
        hook.quiet_start = Some(hour);
        changes.insert("quiet_start".into(), json!(hour));
    }
    if let Some(hour) = edit.quiet_end {
        hook.quiet_end = Some(hour);
        changes.insert("quiet_end".into(), json!(hour));
    }
    if let Some(dependency) = &edit.dependency {
        hook.dependency = trimmed(Some(dependency));
        changes.insert("dependency".into(), json!(dependency.trim()));
    }
    if edit.clear_quiet_hours {
        hook.quiet_start = None;
        hook.quiet_end = None;
        changes.insert("quiet_hours".into(), json!("cleared"));
    }
    if edit.clear_dependency {
        hook.dependency = None;
        changes.insert("dependency".into(), json!("cleared"));
    }
    Ok(())
}

/// `ductor webhook remove`: the entry only (its task folder stays).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookRemove {
    /// The hook's id.
    pub hook_id: String,
}

/// Removes the hook from `hooks`.
pub fn apply_remove(hooks: &mut Webhooks, remove: &WebhookRemove) -> ToolAnswer {
    let id = remove.hook_id.trim();
    let Some(index) = hooks.hooks.iter().position(|hook| hook.id == id) else {
        return hook_not_found(id, hooks);
    };
    let removed = hooks.hooks.remove(index);
    let mut out = Map::new();
    out.insert("hook_id".into(), json!(removed.id));
    out.insert("json_entry_removed".into(), json!(true));
    if let Some(folder) = removed.task_folder.filter(|f| !f.is_empty()) {
        out.insert("task_folder".into(), json!(format!("cron_tasks/{folder}")));
    }
    out.insert(
        "note".into(),
        json!("The task folder, if any, was kept (a cron job may use it); remove it with `ductor cron remove` if nothing does."),
    );
    ToolAnswer::success(Value::Object(out))
}

/// `ductor webhook rotate-token`: new tokens for one bearer hook, or for all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookRotateToken {
    /// The hook's id (`None`: every bearer hook).
    pub hook_id: Option<String>,
}

/// Gives the bearer hooks `rotate` names a token from `new_token` each.
pub fn apply_rotate(
    hooks: &mut Webhooks,
    rotate: &WebhookRotateToken,
    mut new_token: impl FnMut() -> String,
) -> ToolAnswer {
    let only = trimmed(rotate.hook_id.as_deref());
    if let Some(id) = &only {
        let Some(hook) = hooks.hooks.iter().find(|hook| &hook.id == id) else {
            return hook_not_found(id, hooks);
        };
        if hook.auth_mode == "hmac" {
            return ToolAnswer::error_with(
                format!("Hook '{id}' authenticates with an HMAC signature, not a bearer token."),
                json!({"hint": "An HMAC secret is rotated at the calling service; then pass it with `ductor webhook edit --hmac-secret`."}),
            );
        }
    }
    let mut rotated = Vec::new();
    for hook in hooks.hooks.iter_mut() {
        if hook.auth_mode == "hmac" || only.as_ref().is_some_and(|id| &hook.id != id) {
            continue;
        }
        hook.token = new_token();
        rotated.push(json!({"hook_id": hook.id, "title": hook.title, "new_bearer_token": hook.token}));
    }
    if rotated.is_empty() {
        return ToolAnswer::error_with(
            "No bearer hook to rotate.",
            json!({"hint": "Only hooks with auth_mode 'bearer' have tokens."}),
        );
    }
    ToolAnswer::success(json!({
        "count": rotated.len(),
        "rotated": rotated,
        "action_required": [
            "Put the new token into every service that calls these webhooks.",
            "The old tokens are refused (401) from now on.",
            "Each entry above shows its hook's new token as new_bearer_token.",
        ],
    }))
}

/// What `ductor webhook list` prints. `folder_exists` says whether a task folder is there.
pub fn list_output(hooks: &Webhooks, folder_exists: &dyn Fn(&str) -> bool, settings: &WebhookServerSettings) -> Value {
    let entries: Vec<Value> = hooks
        .hooks
        .iter()
        .map(|hook| {
            let hmac = hook.auth_mode == "hmac";
            let mut entry = Map::new();
            entry.insert("id".into(), json!(hook.id));
            entry.insert("title".into(), json!(hook.title));
            entry.insert("mode".into(), json!(hook.mode));
            entry.insert("auth_mode".into(), json!(hook.auth_mode));
            entry.insert("endpoint".into(), json!(hook.endpoint()));
            entry.insert("enabled".into(), json!(hook.enabled));
            entry.insert("token_set".into(), json!(!hook.token.is_empty()));
            entry.insert("hmac_configured".into(), json!(!hook.hmac_secret.is_empty()));
            entry.insert("hmac_algorithm".into(), if hmac { json!(hook.hmac_algorithm) } else { Value::Null });
            entry.insert("hmac_encoding".into(), if hmac { json!(hook.hmac_encoding) } else { Value::Null });
            entry.insert("trigger_count".into(), json!(hook.trigger_count));
            entry.insert("last_triggered_at".into(), json!(hook.last_triggered_at));
            entry.insert("last_error".into(), json!(hook.last_error));
            entry.insert("prompt_template".into(), json!(hook.prompt_template.chars().take(80).collect::<String>()));
            if let Some(folder) = hook.task_folder.as_deref().filter(|f| !f.is_empty()) {
                entry.insert("task_folder".into(), json!(folder));
                entry.insert("task_folder_exists".into(), json!(folder_exists(folder)));
            }
            Value::Object(entry)
        })
        .collect();
    json!({
        "hooks": entries,
        "count": hooks.hooks.len(),
        "server": {
            "enabled": settings.enabled,
            "host": settings.host,
            "port": settings.port,
            "global_token_set": !settings.token.is_empty(),
        },
        "how_to_create": "ductor webhook add --name <name> --title \"…\" --description \"…\" --mode wake --prompt-template \"…{{field}}…\"",
        "how_to_expose": format!("cloudflared tunnel --url http://localhost:{}", settings.port),
        "how_to_rotate_tokens": "ductor webhook rotate-token (every bearer hook) or ductor webhook rotate-token <hook-id> (one)",
    })
}

/// The request `ductor webhook test` sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRequest {
    /// The host to connect to (the server's; a wildcard address becomes `127.0.0.1`).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// `/hooks/<id>`.
    pub path: String,
    /// The whole URL, for the output.
    pub url: String,
    /// The headers: `Content-Type` and the bearer or signature header.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
    /// The hook's auth mode.
    pub auth_mode: String,
    /// Set when the request would not pass the hook's own check (the server will refuse it).
    pub warning: Option<String>,
}

/// The leading `key=` of a regex such as `v1=([0-9a-f]+)` (backslashes ignored).
fn leading_key(pattern: &str) -> Option<String> {
    let plain: String = pattern.chars().filter(|c| *c != '\\').collect();
    let key: String = plain.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    (!key.is_empty() && plain[key.len()..].starts_with('=')).then_some(key)
}

/// Builds the test request for hook `hook_id` with `payload` (JSON object text; `None`: `{}`)
/// at `now_unix` (the timestamp a signed prefix uses). Refused — with the answer to print —
/// when webhooks are off, the hook is unknown, the payload is not a JSON object or no
/// credential is set.
pub fn test_request(
    hooks: &Webhooks,
    hook_id: &str,
    payload: Option<&str>,
    settings: &WebhookServerSettings,
    now_unix: i64,
) -> Result<TestRequest, ToolAnswer> {
    let payload_text = payload.unwrap_or("{}");
    let payload: Value = serde_json::from_str(payload_text)
        .map_err(|e| ToolAnswer::error(format!("--payload is not valid JSON ({e}): {payload_text}")))?;
    if !payload.is_object() {
        return Err(ToolAnswer::error("--payload must be a JSON object, like '{\"key\": \"value\"}'"));
    }
    if !settings.enabled {
        return Err(ToolAnswer::error(
            "Webhooks are not enabled (webhooks.enabled is false in config.json); enable them and restart ductor.",
        ));
    }
    let id = hook_id.trim();
    let Some(hook) = hooks.hooks.iter().find(|hook| hook.id == id) else {
        return Err(hook_not_found(id, hooks));
    };
    let host = match settings.host.trim() {
        "" | "0.0.0.0" | "::" | "[::]" => "127.0.0.1".to_owned(),
        other => other.to_owned(),
    };
    let shown_host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.clone() };
    let path = hook.endpoint();
    let url = format!("http://{shown_host}:{}{path}", settings.port);
    let body = serde_json::to_vec(&payload).unwrap_or_else(|_| b"{}".to_vec());
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if hook.auth_mode == "hmac" {
        if hook.hmac_secret.is_empty() || hook.hmac_header.is_empty() {
            return Err(ToolAnswer::error_with(
                "This HMAC hook has no hmac_secret or no hmac_header.",
                json!({"hint": "Set them with `ductor webhook edit <id> --hmac-secret … --hmac-header …`."}),
            ));
        }
        let timestamp = now_unix.to_string();
        let signs_prefix = !hook.hmac_payload_prefix_regex.is_empty();
        let prefix = signs_prefix.then_some(timestamp.as_str());
        let signature = expected_signature(hook, prefix, &body).unwrap_or_default();
        let value = if signs_prefix && !hook.hmac_sig_regex.is_empty() {
            let time_key = leading_key(&hook.hmac_payload_prefix_regex).unwrap_or_else(|| "t".to_owned());
            let sig_key = leading_key(&hook.hmac_sig_regex).unwrap_or_else(|| "v1".to_owned());
            format!("{time_key}={timestamp},{sig_key}={signature}")
        } else {
            format!("{}{signature}", hook.hmac_sig_prefix)
        };
        headers.push((hook.hmac_header.clone(), value));
    } else {
        let token = if hook.token.is_empty() { &settings.token } else { &hook.token };
        if token.is_empty() {
            return Err(ToolAnswer::error(
                "No token is set, neither for this hook nor for the server (webhooks.token).",
            ));
        }
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    let (compiled, _) = CompiledHook::compile(hook.clone());
    let as_received: RequestHeaders = headers.iter().cloned().collect();
    let warning = authenticate(&compiled, &as_received, &body, &settings.token).err().map(|failure| {
        format!("this request does not pass the hook's own authentication ({failure:?}); the server will answer 401")
    });
    Ok(TestRequest { host, port: settings.port, path, url, headers, body, auth_mode: hook.auth_mode.clone(), warning })
}

/// What `ductor webhook test` prints for the server's answer (`status`, `body`): 2xx is
/// success, anything else exit 1.
pub fn test_output(request: &TestRequest, status: u16, body: &str) -> ToolAnswer {
    let mut out = Map::new();
    out.insert("status".into(), json!(status));
    let success = (200..300).contains(&status);
    if success {
        let response =
            if body.trim().is_empty() { json!({}) } else { serde_json::from_str(body).unwrap_or_else(|_| json!(body)) };
        out.insert("response".into(), response);
    } else {
        out.insert("error".into(), json!(body));
    }
    out.insert("url".into(), json!(request.url));
    out.insert("auth_mode".into(), json!(request.auth_mode));
    if let Some(warning) = &request.warning {
        out.insert("warning".into(), json!(warning));
    }
    if success { ToolAnswer::success(Value::Object(out)) } else { ToolAnswer::failure(Value::Object(out)) }
}

/// What `ductor webhook test` prints when the server cannot be reached.
pub fn test_unreachable(request: &TestRequest, reason: &str) -> ToolAnswer {
    ToolAnswer::error_with(
        format!("Connection failed: {reason}"),
        json!({"url": request.url, "hint": "Is ductor running with webhooks enabled?"}),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn settings(enabled: bool) -> WebhookServerSettings {
        WebhookServerSettings { enabled, host: "127.0.0.1".into(), port: 8742, token: "global".into() }
    }

    fn add(name: &str, mode: &str) -> WebhookAdd {
        WebhookAdd {
            name: name.into(),
            title: "T".into(),
            description: "D".into(),
            mode: mode.into(),
            prompt_template: "Mail from {{from}}".into(),
            ..WebhookAdd::default()
        }
    }

    fn added(hooks: &mut Webhooks, request: &WebhookAdd, token: &str) -> Webhook {
        let plan = plan_add(hooks, request).unwrap();
        let hook = new_hook(request, &plan, token.into(), "2025-01-01T00:00:00+00:00".into());
        check_regexes(&hook).unwrap();
        hooks.hooks.push(hook.clone());
        hook
    }

    #[test]
    fn add_checks_mode_task_folder_and_hmac_needs() {
        let hooks = Webhooks::default();
        assert!(plan_add(&hooks, &add("x", "poke")).unwrap_err().contains("--mode"));
        assert_eq!(
            plan_add(&hooks, &add("x", "cron_task")).unwrap_err(),
            "--task-folder is required for mode 'cron_task'"
        );
        let mut hmac = add("x", "wake");
        hmac.auth_mode = Some("hmac".into());
        assert!(plan_add(&hooks, &hmac).unwrap_err().contains("--hmac-secret"));
        hmac.hmac_secret = Some("s".into());
        assert!(plan_add(&hooks, &hmac).unwrap_err().contains("--hmac-header"));
        hmac.hmac_header = Some("X-Sig".into());
        assert!(plan_add(&hooks, &hmac).is_ok());
        hmac.hmac_algorithm = Some("md5".into());
        assert!(plan_add(&hooks, &hmac).unwrap_err().contains("--hmac-algorithm"));
        let mut folder = add("x", "cron_task");
        folder.task_folder = Some("CI Task".into());
        assert_eq!(plan_add(&hooks, &folder).unwrap().task_folder.unwrap().name, "ci-task");
    }

    #[test]
    fn a_new_bearer_hook_is_written_whole_and_its_output_has_the_token() {
        let mut hooks = Webhooks::default();
        let request = add("Mail Hook", "wake");
        let hook = added(&mut hooks, &request, "tok");
        let written = serde_json::to_value(&hook).unwrap();
        let keys: Vec<&str> = written.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "title",
                "description",
                "mode",
                "prompt_template",
                "enabled",
                "task_folder",
                "auth_mode",
                "token",
                "hmac_secret",
                "hmac_header",
                "hmac_algorithm",
                "hmac_encoding",
                "hmac_sig_prefix",
                "hmac_sig_regex",
                "hmac_payload_prefix_regex",
                "created_at",
                "trigger_count",
                "last_triggered_at",
                "last_error",
                "provider",
                "model",
                "reasoning_effort",
                "cli_parameters",
                "quiet_start",
                "quiet_end",
                "dependency",
            ]
        );
        assert_eq!((written["id"].as_str(), written["token"].as_str()), (Some("mail-hook"), Some("tok")));
        let name = sanitize_task_name("Mail Hook").unwrap();
        let out = add_output(&request, &hook, &name, false, &settings(false));
        assert_eq!(out["bearer_token"], "tok");
        assert_eq!(out["endpoint"], "/hooks/mail-hook");
        assert!(out["setup_instructions"]["step_3_auth_header"].as_str().unwrap().contains("Bearer tok"));
        assert!(out["server_note"].is_string(), "webhooks are off");
        assert_eq!((&out["name_sanitized"], &out["original_name"]), (&json!(true), &json!("Mail Hook")));
        assert!(plan_add(&hooks, &add("mail-hook", "wake")).unwrap_err().contains("already exists"));
    }

    #[test]
    fn an_hmac_hook_has_no_token_and_its_regexes_are_checked() {
        let mut request = add("gh", "wake");
        request.auth_mode = Some("hmac".into());
        request.hmac_secret = Some("s".into());
        request.hmac_header = Some("X-Hub-Signature-256".into());
        let plan = plan_add(&Webhooks::default(), &request).unwrap();
        let hook = new_hook(&request, &plan, "ignored".into(), String::new());
        assert_eq!(hook.token, "");
        let out = add_output(&request, &hook, &plan.name, false, &settings(true));
        assert!(out.get("bearer_token").is_none());
        assert!(out["setup_instructions"]["step_3_hmac_signing"].as_str().unwrap().contains("X-Hub-Signature-256"));
        request.hmac_sig_regex = Some("v1=[0-9a-f]+".into());
        let hook = new_hook(&request, &plan, String::new(), String::new());
        assert!(check_regexes(&hook).unwrap_err().contains("--hmac-sig-regex"));
        request.hmac_sig_regex = Some("v1=([0-9a-f".into());
        let hook = new_hook(&request, &plan, String::new(), String::new());
        assert!(check_regexes(&hook).is_err());
    }

    #[test]
    fn edit_reports_changes_and_refuses_a_token_for_hmac() {
        let mut hooks = Webhooks::default();
        added(&mut hooks, &add("a", "wake"), "old");
        let edit = WebhookEdit {
            hook_id: "a".into(),
            enabled: Some(false),
            hmac_sig_prefix: Some(String::new()),
            regenerate_token: true,
            quiet_start: Some(22),
            clear_dependency: true,
            ..WebhookEdit::default()
        };
        let answer = apply_edit(&mut hooks, &edit, || "new".into());
        assert!(answer.is_success(), "{:?}", answer.output);
        assert_eq!(answer.output["changes"]["new_bearer_token"], "new");
        assert_eq!(answer.output["changes"]["hmac_sig_prefix"], "");
        assert_eq!(answer.output["changes"]["dependency"], "cleared");
        assert!(answer.output["action_required"].is_string());
        assert_eq!((hooks.hooks[0].enabled, hooks.hooks[0].token.as_str()), (false, "new"));
        let nothing =
            apply_edit(&mut hooks, &WebhookEdit { hook_id: "a".into(), ..WebhookEdit::default() }, String::new);
        assert!(nothing.output["error"].as_str().unwrap().starts_with("No changes"));
        let to_hmac = WebhookEdit { hook_id: "a".into(), auth_mode: Some("hmac".into()), ..WebhookEdit::default() };
        let answer = apply_edit(&mut hooks, &to_hmac, String::new);
        assert!(answer.output["error"].as_str().unwrap().contains("--hmac-secret"));
        assert_eq!(hooks.hooks[0].auth_mode, "bearer", "a refused edit changes nothing");
        let unknown = apply_edit(&mut hooks, &WebhookEdit { hook_id: "zz".into(), ..to_hmac }, String::new);
        assert_eq!(unknown.output["available_hooks"], json!(["a"]));
    }

    #[test]
    fn rotate_one_or_every_bearer_hook() {
        let mut hooks = Webhooks::default();
        added(&mut hooks, &add("a", "wake"), "a0");
        added(&mut hooks, &add("b", "wake"), "b0");
        let mut hmac = add("c", "wake");
        hmac.auth_mode = Some("hmac".into());
        hmac.hmac_secret = Some("s".into());
        hmac.hmac_header = Some("X".into());
        added(&mut hooks, &hmac, "");
        let mut n = 0;
        let answer = apply_rotate(&mut hooks, &WebhookRotateToken::default(), || {
            n += 1;
            format!("t{n}")
        });
        assert_eq!(answer.output["count"], 2);
        assert_eq!((hooks.hooks[0].token.as_str(), hooks.hooks[1].token.as_str()), ("t1", "t2"));
        let one = apply_rotate(&mut hooks, &WebhookRotateToken { hook_id: Some("b".into()) }, || "x".into());
        assert_eq!(one.output["rotated"][0]["new_bearer_token"], "x");
        assert_eq!(hooks.hooks[0].token, "t1");
        let refused = apply_rotate(&mut hooks, &WebhookRotateToken { hook_id: Some("c".into()) }, || "y".into());
        assert_eq!(refused.exit_code, 1);
    }

    #[test]
    fn remove_keeps_the_folder_and_list_summarises() {
        let mut hooks = Webhooks::default();
        let mut task = add("ci", "cron_task");
        task.task_folder = Some("ci-task".into());
        added(&mut hooks, &task, "t");
        let list = list_output(&hooks, &|_| true, &settings(true));
        assert_eq!(list["hooks"][0]["task_folder_exists"], true);
        assert_eq!(list["hooks"][0]["token_set"], true);
        assert!(list["hooks"][0]["hmac_algorithm"].is_null());
        assert_eq!(
            list["server"],
            json!({"enabled": true, "host": "127.0.0.1", "port": 8742, "global_token_set": true})
        );
        let answer = apply_remove(&mut hooks, &WebhookRemove { hook_id: "ci".into() });
        assert_eq!(answer.output["task_folder"], "cron_tasks/ci-task");
        assert!(hooks.hooks.is_empty());
        assert_eq!(apply_remove(&mut hooks, &WebhookRemove { hook_id: "ci".into() }).exit_code, 1);
    }

    #[test]
    fn a_test_request_passes_the_hooks_own_check() {
        let mut hooks = Webhooks::default();
        added(&mut hooks, &add("bearer", "wake"), "own");
        added(&mut hooks, &add("shared", "wake"), "");
        let mut github = add("github", "wake");
        github.auth_mode = Some("hmac".into());
        github.hmac_secret = Some("s3cret".into());
        github.hmac_header = Some("X-Hub-Signature-256".into());
        added(&mut hooks, &github, "");
        let mut stripe = github.clone();
        stripe.name = "stripe".into();
        stripe.hmac_header = Some("Stripe-Signature".into());
        stripe.hmac_sig_prefix = Some(String::new());
        stripe.hmac_sig_regex = Some("v1=([0-9a-f]+)".into());
        stripe.hmac_payload_prefix_regex = Some(r"t=(\d+)".into());
        added(&mut hooks, &stripe, "");
        let mut shopify = github.clone();
        shopify.name = "shopify".into();
        shopify.hmac_encoding = Some("base64".into());
        shopify.hmac_sig_prefix = Some(String::new());
        shopify.hmac_algorithm = Some("sha512".into());
        added(&mut hooks, &shopify, "");
        for id in ["bearer", "shared", "github", "stripe", "shopify"] {
            let request = test_request(&hooks, id, Some(r#"{"a": 1}"#), &settings(true), 1_700_000_000).unwrap();
            assert_eq!(request.warning, None, "{id}: {:?}", request.headers);
            assert_eq!(request.url, format!("http://127.0.0.1:8742/hooks/{id}"));
            assert_eq!(request.body, br#"{"a":1}"#);
        }
        let stripe = test_request(&hooks, "stripe", None, &settings(true), 1_700_000_000).unwrap();
        assert!(stripe.headers[1].1.starts_with("t=1700000000,v1="), "{:?}", stripe.headers);
        let shared = test_request(&hooks, "shared", None, &settings(true), 0).unwrap();
        assert_eq!(shared.headers[1], ("Authorization".to_owned(), "Bearer global".to_owned()));
    }

    #[test]
    fn a_test_request_is_refused_when_it_cannot_work() {
        let mut hooks = Webhooks::default();
        added(&mut hooks, &add("a", "wake"), "t");
        let off = test_request(&hooks, "a", None, &settings(false), 0).unwrap_err();
        assert!(off.output["error"].as_str().unwrap().contains("not enabled"));
        assert_eq!(
            test_request(&hooks, "zz", None, &settings(true), 0).unwrap_err().output["available_hooks"],
            json!(["a"])
        );
        assert!(test_request(&hooks, "a", Some("[1]"), &settings(true), 0).is_err());
        assert!(test_request(&hooks, "a", Some("{"), &settings(true), 0).is_err());
        let mut wildcard = settings(true);
        wildcard.host = "0.0.0.0".into();
        assert_eq!(test_request(&hooks, "a", None, &wildcard, 0).unwrap().host, "127.0.0.1");
    }

    #[test]
    fn test_output_is_success_only_for_2xx() {
        let mut hooks = Webhooks::default();
        added(&mut hooks, &add("a", "wake"), "t");
        let request = test_request(&hooks, "a", None, &settings(true), 0).unwrap();
        let answer = test_output(&request, 202, r#"{"accepted": true, "hook_id": "a"}"#);
        assert!(answer.is_success());
        assert_eq!(answer.output["response"]["accepted"], true);
        let answer = test_output(&request, 401, r#"{"error": "unauthorized"}"#);
        assert_eq!((answer.exit_code, &answer.output["status"]), (1, &json!(401)));
        assert_eq!(test_unreachable(&request, "refused").exit_code, 1);
    }

    #[test]
    fn keys_of_signature_regexes() {
        assert_eq!(leading_key("v1=([0-9a-f]+)").as_deref(), Some("v1"));
        assert_eq!(leading_key(r"t=(\d+)").as_deref(), Some("t"));
        assert_eq!(leading_key("([0-9a-f]+)"), None);
    }
}

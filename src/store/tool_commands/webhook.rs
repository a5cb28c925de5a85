//! `ductor webhook …` on disk: add (a `cron_task` hook's folder is made when missing, with
//! webhook rule files), edit, remove (the folder stays), rotate-token and list; the hooks for
//! `ductor webhook test`. Writes go through `locked_state::update` on `webhooks.json`; a file
//! that does not parse is refused and left as it is.

use crate::core::state::timestamp_now;
use crate::core::state::webhooks::Webhooks;
use crate::core::tool_commands::ToolAnswer;
use crate::core::tool_commands::webhook::{
    WebhookAdd, WebhookOp, add_output, apply_edit, apply_remove, apply_rotate, check_regexes, list_output, new_hook,
    plan_add,
};
use crate::core::webhook::token_from_bytes;
use crate::store::locked_state::{self, read_strict};
use crate::store::paths::DuctorPaths;
use crate::store::tool_commands::{Applied, lock_failure, settings};
use crate::store::workspace::cron_tasks::{TaskKind, create_task_folder_for};
use crate::store::workspace::fs_ops;

/// A new bearer token: 32 random bytes, URL-safe base64 (43 characters).
fn new_token() -> String {
    token_from_bytes(&rand::random::<[u8; 32]>())
}

/// Runs a change of `webhooks.json`.
pub fn apply(paths: &DuctorPaths, op: &WebhookOp) -> Applied {
    let result = locked_state::update::<Webhooks, _>(paths, |hooks| {
        let answer = match op {
            WebhookOp::Add(request) => return add(paths, hooks, request),
            WebhookOp::Edit(request) => apply_edit(hooks, request, new_token),
            WebhookOp::Remove(request) => apply_remove(hooks, request),
            WebhookOp::RotateToken(request) => apply_rotate(hooks, request, new_token),
        };
        let changed = answer.is_success();
        if changed {
            tracing::info!(command = op.command(), "Webhooks changed.");
        }
        (changed, Applied { answer, changed })
    });
    result.unwrap_or_else(|e| Applied::unchanged(lock_failure(&e)))
}

fn add(paths: &DuctorPaths, hooks: &mut Webhooks, request: &WebhookAdd) -> (bool, Applied) {
    let plan = match plan_add(hooks, request) {
        Ok(plan) => plan,
        Err(message) => return (false, Applied::unchanged(ToolAnswer::error(message))),
    };
    let hook = new_hook(request, &plan, new_token(), timestamp_now());
    if let Err(message) = check_regexes(&hook) {
        return (false, Applied::unchanged(ToolAnswer::error(message)));
    }
    let mut folder_created = false;
    if let Some(folder) = &plan.task_folder
        && !fs_ops::exists_at_all(&paths.cron_tasks().join(&folder.name))
    {
        if let Err(e) =
            create_task_folder_for(paths, TaskKind::Webhook, &folder.name, &request.title, &request.description, &[])
        {
            return (false, Applied::unchanged(ToolAnswer::error(format!("could not make the task folder: {e}"))));
        }
        folder_created = true;
    }
    hooks.hooks.push(hook.clone());
    tracing::info!(hook = %hook.id, mode = %hook.mode, auth_mode = %hook.auth_mode, "Webhook added.");
    let output = add_output(request, &hook, &plan.name, folder_created, &settings(paths).webhooks);
    (true, Applied { answer: ToolAnswer::success(output), changed: true })
}

/// The hooks as they are on disk (missing file: none); a file that does not parse is the
/// answer to print.
pub fn read_hooks(paths: &DuctorPaths) -> Result<Webhooks, ToolAnswer> {
    read_strict(&paths.webhooks()).map_err(|e| lock_failure(&e))
}

/// `ductor webhook list`: every hook and the server's settings.
pub fn list(paths: &DuctorPaths) -> ToolAnswer {
    let hooks = match read_hooks(paths) {
        Ok(hooks) => hooks,
        Err(answer) => return answer,
    };
    let root = paths.cron_tasks();
    let exists = |folder: &str| root.join(folder).is_dir();
    ToolAnswer::success(list_output(&hooks, &exists, &settings(paths).webhooks))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use camino::Utf8PathBuf;

    use super::*;
    use crate::core::tool_commands::webhook::{WebhookRemove, WebhookRotateToken};

    fn home() -> (tempfile::TempDir, DuctorPaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = DuctorPaths::at(Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap());
        (dir, paths)
    }

    fn cron_task(name: &str, folder: &str) -> WebhookAdd {
        WebhookAdd {
            name: name.into(),
            title: "CI".into(),
            description: "Runs after CI".into(),
            mode: "cron_task".into(),
            prompt_template: "CI {{status}}".into(),
            task_folder: Some(folder.into()),
            ..WebhookAdd::default()
        }
    }

    #[test]
    fn a_cron_task_hook_gets_its_folder_once_and_keeps_it_when_removed() {
        let (_dir, paths) = home();
        let first = apply(&paths, &WebhookOp::Add(cron_task("ci", "ci-task")));
        assert_eq!(first.answer.output["folder_created"], true, "{:?}", first.answer);
        let folder = paths.cron_tasks().join("ci-task");
        assert!(folder.join("CLAUDE.md").is_file() && folder.join("AGENTS.md").is_file());
        let token = first.answer.output["bearer_token"].as_str().unwrap().to_owned();
        assert_eq!(token.len(), 43);
        let second = apply(&paths, &WebhookOp::Add(cron_task("ci-2", "ci-task")));
        assert_eq!(second.answer.output["folder_created"], false);
        assert_ne!(second.answer.output["bearer_token"].as_str().unwrap(), token, "each hook its own token");
        let removed = apply(&paths, &WebhookOp::Remove(WebhookRemove { hook_id: "ci".into() }));
        assert!(removed.changed);
        assert!(folder.is_dir());
        let hooks = read_hooks(&paths).unwrap();
        assert_eq!(hooks.hooks.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["ci-2"]);
    }

    #[test]
    fn rotating_writes_the_new_token() {
        let (_dir, paths) = home();
        apply(&paths, &WebhookOp::Add(cron_task("ci", "ci-task")));
        let rotated = apply(&paths, &WebhookOp::RotateToken(WebhookRotateToken { hook_id: Some("ci".into()) }));
        let token = rotated.answer.output["rotated"][0]["new_bearer_token"].as_str().unwrap().to_owned();
        assert_eq!(read_hooks(&paths).unwrap().hooks[0].token, token);
    }

    #[test]
    fn a_corrupt_file_is_refused_and_kept() {
        let (_dir, paths) = home();
        std::fs::write(paths.webhooks(), "not json").unwrap();
        let applied = apply(&paths, &WebhookOp::Add(cron_task("ci", "ci-task")));
        assert!(!applied.changed && applied.answer.output["error"].as_str().unwrap().contains("webhooks.json"));
        assert_eq!(list(&paths).exit_code, 1);
        assert_eq!(std::fs::read_to_string(paths.webhooks()).unwrap(), "not json");
        assert!(!paths.cron_tasks().join("ci-task").exists());
    }
}

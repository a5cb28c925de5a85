//! The agent's workspace on disk (ops spec §4): [`init`] runs at every start for every agent
//! home and leaves a workspace a CLI can work in — the template tree deployed by zone, rule
//! files for the logged-in CLIs, the cron task folders complete, sibling rule files in step,
//! skills shared with the CLIs. Its steps are also here for the observers that repeat them
//! (rule sync every 10 s, skill sync every 30 s), the cron task folder library, and the
//! runtime section added once the agent's runtime is known. Every failure is logged and
//! reported in [`InitReport`]; none stops the start.

pub mod cron_tasks;
mod deploy;
pub(crate) mod fs_ops;
pub mod rule_sync;
pub mod runtime_section;
pub mod skills;
pub mod templates;

use std::fs;
use std::time::SystemTime;

use camino::Utf8PathBuf;

use crate::core::config::Config;
use crate::core::workspace::AuthenticatedClis;
use crate::core::workspace::skills::SkillSyncMode;
use crate::store::paths::DuctorPaths;

pub use cron_tasks::{
    RenamedTask, TaskFolder, TaskFolderError, TaskKind, backfill_task_rules, create_task_folder,
    create_task_folder_for, delete_task_folder, rename_task_folder, task_rule_files,
};
pub use rule_sync::{remove_broken_symlinks, sync_rule_files};
pub use runtime_section::inject_runtime_sections;
pub use skills::{SkillSyncReport, bundled_skills, remove_ductor_links, sync_skills, write_bundled_skills};
pub use templates::TemplateTree;

/// What the workspace needs to know about the machine: the user's home (for `~/.claude`,
/// `~/.gemini`), the Codex home, and which CLIs are logged in. Built by the caller, so tests
/// use a temporary home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceEnv {
    /// The user's home directory.
    pub user_home: Utf8PathBuf,
    /// `$CODEX_HOME`, else `~/.codex`.
    pub codex_home: Utf8PathBuf,
    /// `$GEMINI_CLI_HOME/.gemini`, else `~/.gemini`.
    pub gemini_dir: Utf8PathBuf,
    /// The logged-in CLIs (from `provider::auth`).
    pub authenticated: AuthenticatedClis,
}

impl WorkspaceEnv {
    /// The environment for the user home `user_home`, reading `CODEX_HOME` and
    /// `GEMINI_CLI_HOME` through `env`.
    pub fn new(
        user_home: impl Into<Utf8PathBuf>,
        env: &dyn Fn(&str) -> Option<String>,
        authenticated: AuthenticatedClis,
    ) -> Self {
        let user_home = user_home.into();
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty()).map(Utf8PathBuf::from);
        let codex_home = set("CODEX_HOME").unwrap_or_else(|| user_home.join(".codex"));
        let gemini_dir = set("GEMINI_CLI_HOME").unwrap_or_else(|| user_home.clone()).join(".gemini");
        Self { user_home, codex_home, gemini_dir, authenticated }
    }

    /// The environment of this process (`HOME`, `CODEX_HOME`, `GEMINI_CLI_HOME`).
    pub fn from_process(authenticated: AuthenticatedClis) -> Self {
        let env = |name: &str| std::env::var(name).ok();
        Self::new(std::env::var("HOME").unwrap_or_default(), &env, authenticated)
    }
}

/// What [`init`] did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    /// `workspace/tasks/` was renamed to `workspace/cron_tasks/`.
    pub migrated_tasks: bool,
    /// Zone-3 files copied because they were missing.
    pub seeded: Vec<Utf8PathBuf>,
    /// Zone-2 files written.
    pub overwritten: Vec<Utf8PathBuf>,
    /// Changed Zone-2 files kept as `<name>.bak`.
    pub backups: Vec<Utf8PathBuf>,
    /// Rule files written for the logged-in CLIs.
    pub rules_deployed: Vec<Utf8PathBuf>,
    /// Rule files of CLIs that are not logged in, removed.
    pub rules_removed: Vec<Utf8PathBuf>,
    /// Rule files added to cron task folders.
    pub rules_backfilled: Vec<Utf8PathBuf>,
    /// Rule files overwritten by their newest sibling.
    pub rules_synced: Vec<Utf8PathBuf>,
    /// Broken symlinks removed from the workspace.
    pub broken_links_removed: Vec<Utf8PathBuf>,
    /// The skill sync.
    pub skills: SkillSyncReport,
    /// Everything that failed (each also logged as a warning).
    pub errors: Vec<String>,
}

impl InitReport {
    fn error(&mut self, message: String) {
        tracing::warn!(error = %message, "Workspace init step failed; going on.");
        self.errors.push(message);
    }
}

/// Prepares the workspace of `paths` with the templates built into ductor (see [`init_with`]).
pub fn init(paths: &DuctorPaths, config: &Config, env: &WorkspaceEnv) -> InitReport {
    init_with(paths, config, env, &TemplateTree::bundled())
}

/// Prepares the workspace of `paths` from `templates`, in the order of ops spec §4:
/// 1. `workspace/tasks/` → `workspace/cron_tasks/` when only the old name exists;
/// 2. the bundled skills written to `<home>/.bundled_skills/`;
/// 3. the home-defaults copy by zone;
/// 4. the required directories;
/// 5. the rule files of the logged-in CLIs (others removed, except in `cron_tasks/`);
/// 6. the cron task folders' missing rule files;
/// 7. the rule-file mtime sync;
/// 8. broken symlinks directly in the workspace removed;
/// 9. the skill sync in link mode.
///
/// (The example-config merge of §4 step 8 belongs to the config load.) Never fails: what goes
/// wrong is logged and listed in the report.
pub fn init_with(paths: &DuctorPaths, config: &Config, env: &WorkspaceEnv, templates: &TemplateTree) -> InitReport {
    let mut report = InitReport::default();
    let stamp = SystemTime::now();
    let home = paths.home();
    let workspace = paths.workspace();

    let old_tasks = workspace.join("tasks");
    if old_tasks.is_dir() && !fs_ops::exists_at_all(&paths.cron_tasks()) {
        match fs::rename(&old_tasks, paths.cron_tasks()) {
            Ok(()) => {
                tracing::info!(path = %paths.cron_tasks(), "Old tasks/ folder renamed to cron_tasks/.");
                report.migrated_tasks = true;
            }
            Err(e) => report.error(format!("cannot rename {old_tasks} to cron_tasks: {e}")),
        }
    }

    if config.skills.sync_enabled
        && let Err(e) = write_bundled_skills(paths, templates)
    {
        report.error(format!("cannot write the bundled skills: {e}"));
    }

    deploy::copy_home_defaults(home, templates, stamp, &mut report);

    if let Err(e) = paths.ensure_dirs() {
        report.error(format!("cannot create the workspace folders: {e}"));
    }

    deploy::deploy_rules(home, templates, env.authenticated, stamp, &mut report);

    report.rules_backfilled = backfill_task_rules(paths);
    report.rules_synced = sync_rule_files(&workspace);
    report.broken_links_removed = remove_broken_symlinks(&workspace);

    let bundled = bundled_skills(paths, templates);
    report.skills = sync_skills(paths, env, &config.skills, &bundled, SkillSyncMode::Link);
    report.errors.extend(report.skills.errors.iter().cloned());

    tracing::info!(home = %home, variant = env.authenticated.variant().as_str(),
        rules = report.rules_deployed.len(), seeded = report.seeded.len(), errors = report.errors.len(),
        "Workspace ready.");
    report
}

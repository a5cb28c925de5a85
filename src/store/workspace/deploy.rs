//! Deploying the template tree into a home (ops spec §4.1, §4.3): the home-defaults copy by
//! zone (tool scripts overwritten with a `.bak` of a changed copy, everything else seeded once)
//! and the rule deployment (the variant's `RULES*.md` as the rule file of every logged-in CLI;
//! rule files of CLIs that are not logged in removed, except in the task folders of
//! `cron_tasks/`).

use std::collections::BTreeSet;
use std::fs;
use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::workspace::{
    AuthenticatedClis, RULE_FILE_NAMES, TemplateRole, is_rule_file, is_rule_template, is_skipped_dir,
    pick_rule_template, template_role,
};
use crate::store::workspace::InitReport;
use crate::store::workspace::fs_ops::{self, exists_at_all, has_symlinked_parent, is_symlink};
use crate::store::workspace::templates::TemplateTree;

/// Copies the template files by zone into `home` (rule templates and bundled skills are
/// deployed elsewhere). Stamps written files with `stamp`.
pub(crate) fn copy_home_defaults(
    home: &Utf8Path,
    templates: &TemplateTree,
    stamp: SystemTime,
    report: &mut InitReport,
) {
    for (relative, bytes) in templates.files() {
        match template_role(relative) {
            TemplateRole::Overwrite => {
                let names: Vec<String> = match relative.rsplit_once('/') {
                    Some((dir, "CLAUDE.md")) => RULE_FILE_NAMES.iter().map(|n| format!("{dir}/{n}")).collect(),
                    None if relative == "CLAUDE.md" => RULE_FILE_NAMES.iter().map(|n| (*n).to_owned()).collect(),
                    _ => vec![relative.to_owned()],
                };
                for name in names {
                    overwrite(home, &home.join(&name), bytes, stamp, report);
                }
            }
            TemplateRole::SeedOnce => seed(home, &home.join(relative), bytes, stamp, report),
            TemplateRole::RuleTemplate | TemplateRole::BundledSkill | TemplateRole::Skipped => {}
        }
    }
}

/// Zone 2: the target gets the template's bytes. A tool script whose bytes differ is first
/// kept as `<name>.bak` (replacing an older one), with a warning; a symlink is removed first.
fn overwrite(home: &Utf8Path, target: &Utf8Path, bytes: &[u8], stamp: SystemTime, report: &mut InitReport) {
    if has_symlinked_parent(home, target) {
        return;
    }
    if is_symlink(target) {
        if let Err(e) = fs::remove_file(target) {
            report.error(format!("cannot remove the link {target}: {e}"));
            return;
        }
    } else if let Ok(current) = fs::read(target) {
        if current == bytes {
            return;
        }
        let keeps_backup = target.file_name().is_some_and(|n| !is_rule_file(n));
        if keeps_backup {
            let backup = Utf8PathBuf::from(format!("{target}.bak"));
            match fs::rename(target, &backup) {
                Ok(()) => {
                    tracing::warn!(path = %target, backup = %backup,
                        "A tool script was changed by hand; it is replaced and the changed copy kept.");
                    report.backups.push(backup);
                }
                Err(e) => {
                    report.error(format!("cannot keep {target} as .bak, left as it is: {e}"));
                    return;
                }
            }
        }
    }
    match fs_ops::write_with_mtime(target, bytes, stamp) {
        Ok(()) => report.overwritten.push(target.to_owned()),
        Err(e) => report.error(format!("cannot write {target}: {e}")),
    }
}

/// Zone 3: copied only when nothing is at the target.
fn seed(home: &Utf8Path, target: &Utf8Path, bytes: &[u8], stamp: SystemTime, report: &mut InitReport) {
    if exists_at_all(target) || has_symlinked_parent(home, target) {
        return;
    }
    match fs_ops::write_with_mtime(target, bytes, stamp) {
        Ok(()) => report.seeded.push(target.to_owned()),
        Err(e) => report.error(format!("cannot seed {target}: {e}")),
    }
}

/// Writes each template directory's rule template (the variant's, else `RULES.md`) as the rule
/// file of every logged-in CLI, then removes the rule files of the others under `home`.
pub(crate) fn deploy_rules(
    home: &Utf8Path,
    templates: &TemplateTree,
    clis: AuthenticatedClis,
    stamp: SystemTime,
    report: &mut InitReport,
) {
    let dirs: BTreeSet<&str> = templates
        .files()
        .filter(|(path, _)| template_role(path) == TemplateRole::RuleTemplate)
        .map(|(path, _)| path.rsplit_once('/').map_or("", |(dir, _)| dir))
        .collect();
    let variant = clis.variant();
    for dir in dirs {
        let files = templates.files_in(dir);
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).filter(|n| is_rule_template(n)).collect();
        let Some(chosen) = pick_rule_template(&names, variant) else { continue };
        let Some((_, bytes)) = files.iter().find(|(n, _)| *n == chosen) else { continue };
        let target_dir = if dir.is_empty() { home.to_owned() } else { home.join(dir) };
        for name in clis.rule_file_names() {
            let target = target_dir.join(name);
            if has_symlinked_parent(home, &target) {
                continue;
            }
            if is_symlink(&target) {
                let _ = fs::remove_file(&target);
            }
            match fs_ops::write_with_mtime(&target, bytes, stamp) {
                Ok(()) => report.rules_deployed.push(target),
                Err(e) => report.error(format!("cannot deploy {target}: {e}")),
            }
        }
    }
    remove_foreign_rule_files(home, clis, report);
}

/// Removes every rule file under `dir` whose CLI is not logged in. The task folders inside a
/// workspace's `cron_tasks/` are the person's and left alone (the rule files of `cron_tasks/`
/// itself are ductor's and follow the logged-in CLIs, so new task folders do too); skipped and
/// symlinked directories are not entered.
fn remove_foreign_rule_files(dir: &Utf8Path, clis: AuthenticatedClis, report: &mut InitReport) {
    let in_task_folders =
        dir.file_name() == Some("cron_tasks") && dir.parent().and_then(Utf8Path::file_name) == Some("workspace");
    let entries = match fs_ops::read_dir_sorted(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::debug!(path = %dir, error = %e, "Directory not readable; its rule files are left.");
            return;
        }
    };
    for path in entries {
        let Some(name) = path.file_name() else { continue };
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            if !is_skipped_dir(name) && !in_task_folders {
                remove_foreign_rule_files(&path, clis, report);
            }
        } else if is_rule_file(name) && !clis.deploys(name) {
            match fs::remove_file(&path) {
                Ok(()) => report.rules_removed.push(path),
                Err(e) => report.error(format!("cannot remove {path}: {e}")),
            }
        }
    }
}

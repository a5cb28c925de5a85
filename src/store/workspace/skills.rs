//! The skill sync on disk (ops spec §4.6): lists ductor's and the CLIs' skill directories,
//! asks `core::workspace::skills` what to do, and does it — symlinks on the host, copies with a
//! `.ductor_managed` marker when the CLIs run in Docker. Also the bundled skills (written from
//! the binary into `<home>/.bundled_skills/`) and the clean-up at shutdown.

use std::collections::BTreeMap;
use std::fs;

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::config::model::SkillsConfig;
use crate::core::workspace::skills::{
    MANAGED_MARKER, Occupant, RootListing, SkillAction, SkillRoot, SkillSyncMode, has_valid_front_matter, may_be_skill,
    plan_skill_sync,
};
use crate::store::atomic::StoreError;
use crate::store::paths::DuctorPaths;
use crate::store::workspace::WorkspaceEnv;
use crate::store::workspace::fs_ops::{self, is_symlink};
use crate::store::workspace::templates::TemplateTree;

/// What a sync run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkillSyncReport {
    /// Symlinks made.
    pub linked: Vec<Utf8PathBuf>,
    /// Managed copies made or refreshed.
    pub copied: Vec<Utf8PathBuf>,
    /// Links and managed copies removed.
    pub removed: Vec<Utf8PathBuf>,
    /// What failed (each also logged).
    pub errors: Vec<String>,
}

/// `<home>/.bundled_skills`: where the skills built into ductor are written.
pub fn bundled_skills_dir(paths: &DuctorPaths) -> Utf8PathBuf {
    paths.home().join(".bundled_skills")
}

/// The template path prefix of bundled skills.
const BUNDLED_PREFIX: &str = "workspace/skills/";

/// The bundled skills of `templates` by name, with their files (path inside the skill → bytes).
fn bundled_files(templates: &TemplateTree) -> BTreeMap<String, Vec<(String, Vec<u8>)>> {
    let mut skills: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for (path, bytes) in templates.files() {
        let Some(rest) = path.strip_prefix(BUNDLED_PREFIX) else { continue };
        let Some((name, inner)) = rest.split_once('/') else { continue };
        skills.entry(name.to_owned()).or_default().push((inner.to_owned(), bytes.to_vec()));
    }
    skills
}

/// Writes the bundled skills into [`bundled_skills_dir`]; a skill whose files differ from the
/// binary's is rewritten whole (so its mtimes change only when ductor's copy changed).
pub fn write_bundled_skills(paths: &DuctorPaths, templates: &TemplateTree) -> Result<(), StoreError> {
    let base = bundled_skills_dir(paths);
    for (name, files) in bundled_files(templates) {
        let dir = base.join(&name);
        let same = files.iter().all(|(inner, bytes)| fs::read(dir.join(inner)).is_ok_and(|b| &b == bytes))
            && count_files(&dir) == files.len();
        if same {
            continue;
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| StoreError::io("replace", &dir, e))?;
        }
        for (inner, bytes) in &files {
            crate::store::atomic::write_bytes_atomic(
                &dir.join(inner),
                bytes,
                crate::store::atomic::Durability::NoFsync,
            )?;
        }
        tracing::info!(skill = %name, path = %dir, "Bundled skill written.");
    }
    Ok(())
}

fn count_files(dir: &Utf8Path) -> usize {
    fs_ops::read_dir_sorted(dir).map_or(0, |entries| {
        entries.iter().map(|e| if e.is_dir() && !is_symlink(e) { count_files(e) } else { 1 }).sum()
    })
}

/// The bundled skills that exist on disk, by name → resolved path.
pub fn bundled_skills(paths: &DuctorPaths, templates: &TemplateTree) -> BTreeMap<String, Utf8PathBuf> {
    let base = bundled_skills_dir(paths);
    bundled_files(templates)
        .into_keys()
        .filter_map(|name| base.join(&name).canonicalize_utf8().ok().map(|p| (name, p)))
        .collect()
}

/// The skill directories to sync, by priority: ductor's always; a CLI's only when its config
/// directory exists (at an absolute path: an unset `HOME` never means the current directory)
/// and `skills.sync.<cli>` is on.
pub fn skill_roots(paths: &DuctorPaths, env: &WorkspaceEnv, config: &SkillsConfig) -> Vec<(SkillRoot, Utf8PathBuf)> {
    let mut roots = vec![(SkillRoot::Ductor, paths.skills())];
    let usable = |dir: &Utf8Path| dir.is_absolute() && dir.is_dir();
    let claude = env.user_home.join(".claude");
    if config.sync.claude && usable(&claude) {
        roots.push((SkillRoot::Claude, claude.join("skills")));
    }
    if config.sync.codex && usable(&env.codex_home) {
        roots.push((SkillRoot::Codex, env.codex_home.join("skills")));
    }
    if config.sync.gemini && usable(&env.gemini_dir) {
        roots.push((SkillRoot::Gemini, env.gemini_dir.join("skills")));
    }
    roots
}

fn skill_md_valid(dir: &Utf8Path) -> bool {
    fs::read_to_string(dir.join("SKILL.md")).is_ok_and(|t| has_valid_front_matter(&t))
}

/// Lists one skill directory (created when missing).
fn list_root(root: SkillRoot, dir: &Utf8Path) -> Result<RootListing, StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
    let resolved = dir.canonicalize_utf8().map_err(|e| StoreError::io("resolve", dir, e))?;
    let mut entries = BTreeMap::new();
    for path in fs_ops::read_dir_sorted(&resolved).map_err(|e| StoreError::io("list", &resolved, e))? {
        let Some(name) = path.file_name() else { continue };
        if !may_be_skill(name) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let occupant = if meta.file_type().is_symlink() {
            let target = path.canonicalize_utf8().ok().filter(|t| t.is_dir());
            let skill = target.as_deref().is_some_and(skill_md_valid);
            Occupant::Link { target, skill }
        } else if meta.is_dir() {
            let skill = skill_md_valid(&path);
            if path.join(MANAGED_MARKER).is_file() { Occupant::Managed { skill } } else { Occupant::RealDir { skill } }
        } else {
            Occupant::Other
        };
        entries.insert(name.to_owned(), occupant);
    }
    Ok(RootListing { root, dir: resolved, entries })
}

/// One sync run in `mode` (nothing when `skills.sync_enabled` is off). `bundled`: the bundled
/// skills to place in ductor's directory (see [`bundled_skills`]).
pub fn sync_skills(
    paths: &DuctorPaths,
    env: &WorkspaceEnv,
    config: &SkillsConfig,
    bundled: &BTreeMap<String, Utf8PathBuf>,
    mode: SkillSyncMode,
) -> SkillSyncReport {
    let mut report = SkillSyncReport::default();
    if !config.sync_enabled {
        return report;
    }
    let mut listings = Vec::new();
    for (root, dir) in skill_roots(paths, env, config) {
        match list_root(root, &dir) {
            Ok(listing) => listings.push(listing),
            Err(e) => {
                tracing::warn!(path = %dir, error = %e, "Skill directory not usable; left out of the sync.");
                report.errors.push(e.to_string());
            }
        }
    }
    for action in plan_skill_sync(&listings, bundled, mode) {
        if let Err(e) = apply(&action, &mut report) {
            tracing::warn!(action = ?action, error = %e, "Skill sync step failed.");
            report.errors.push(e.to_string());
        }
    }
    if !report.linked.is_empty() || !report.copied.is_empty() || !report.removed.is_empty() {
        tracing::info!(
            linked = report.linked.len(),
            copied = report.copied.len(),
            removed = report.removed.len(),
            "Skills synced."
        );
    }
    report
}

/// Removes what ductor may replace at `path`: a symlink, or a managed copy. Anything else is
/// an error (never touched).
fn clear(path: &Utf8Path) -> Result<(), StoreError> {
    let Ok(meta) = fs::symlink_metadata(path) else { return Ok(()) };
    if meta.file_type().is_symlink() {
        fs::remove_file(path).map_err(|e| StoreError::io("remove link", path, e))
    } else if meta.is_dir() && path.join(MANAGED_MARKER).is_file() {
        fs::remove_dir_all(path).map_err(|e| StoreError::io("remove managed copy", path, e))
    } else {
        Err(StoreError::io("replace", path, std::io::Error::other("not a link or managed copy; left alone")))
    }
}

fn make_copy(path: &Utf8Path, from: &Utf8Path) -> Result<(), StoreError> {
    clear(path)?;
    fs_ops::copy_tree(from, path)?;
    let marker = path.join(MANAGED_MARKER);
    fs::write(&marker, b"").map_err(|e| StoreError::io("write", &marker, e))
}

fn apply(action: &SkillAction, report: &mut SkillSyncReport) -> Result<(), StoreError> {
    match action {
        SkillAction::Remove { path } => {
            clear(path)?;
            report.removed.push(path.clone());
        }
        SkillAction::Link { path, to } => {
            clear(path)?;
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| StoreError::io("create directory", parent, e))?;
            }
            if let Err(e) = std::os::unix::fs::symlink(to, path) {
                // A file system without links: a managed copy serves instead.
                tracing::warn!(path = %path, error = %e, "Cannot link a skill; keeping a managed copy instead.");
                make_copy(path, to)?;
                report.copied.push(path.clone());
                return Ok(());
            }
            report.linked.push(path.clone());
        }
        SkillAction::Copy { path, from } => {
            make_copy(path, from)?;
            report.copied.push(path.clone());
        }
        SkillAction::Refresh { path, from } => {
            let marker = fs_ops::mtime(&path.join(MANAGED_MARKER));
            let source = fs_ops::newest_mtime(from);
            if marker.is_none() || source > marker {
                make_copy(path, from)?;
                report.copied.push(path.clone());
            }
        }
    }
    Ok(())
}

/// At shutdown: removes every symlink in the CLIs' skill directories whose target lies under
/// `<ws>/skills` or the bundled skills. Returns them.
pub fn remove_ductor_links(paths: &DuctorPaths, env: &WorkspaceEnv) -> Vec<Utf8PathBuf> {
    let ours: Vec<Utf8PathBuf> = [paths.skills(), bundled_skills_dir(paths)]
        .into_iter()
        .flat_map(|p| {
            let resolved = p.canonicalize_utf8().ok();
            std::iter::once(p).chain(resolved)
        })
        .collect();
    let all_on = SkillsConfig::default();
    let mut removed = Vec::new();
    for (root, dir) in skill_roots(paths, env, &all_on) {
        if root == SkillRoot::Ductor {
            continue;
        }
        let Ok(entries) = fs_ops::read_dir_sorted(&dir) else { continue };
        for path in entries.into_iter().filter(|p| is_symlink(p)) {
            let Ok(link) = fs::read_link(&path) else { continue };
            let Ok(link) = Utf8PathBuf::from_path_buf(link) else { continue };
            let target = if link.is_absolute() { link } else { dir.join(link) };
            let resolved = target.canonicalize_utf8().unwrap_or(target);
            if ours.iter().any(|o| resolved.starts_with(o)) {
                match fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) => tracing::warn!(path = %path, error = %e, "Cannot remove a skill link."),
                }
            }
        }
    }
    if !removed.is_empty() {
        tracing::info!(count = removed.len(), "Skill links into the workspace removed from the CLI skill folders.");
    }
    removed
}

//! The workspace's pure decisions (ops spec §4): which rule files exist and which variant of a
//! rule template the installed CLIs get, which zone a template file belongs to, how a cron task
//! folder is named and which rule files it needs, and which sibling rule file wins the mtime sync.
//! The texts ductor writes with variables in them are in [`texts`]; the skill-sync plan is in
//! [`skills`]. The disk work is in `store::workspace`.

pub mod skills;
pub mod texts;

/// The rule files the CLIs read, one per CLI: `CLAUDE.md` (claude), `AGENTS.md` (codex),
/// `GEMINI.md` (gemini), in this order.
pub const RULE_FILE_NAMES: [&str; 3] = ["CLAUDE.md", "AGENTS.md", "GEMINI.md"];

/// Directory names never descended into by the workspace walks.
pub const SKIP_DIR_NAMES: [&str; 5] = [".venv", ".git", ".mypy_cache", "__pycache__", "node_modules"];

/// The tool folders whose `*.py` scripts are overwritten at every start (Zone 2).
const ZONE2_TOOL_DIRS: [&str; 5] = ["cron_tools", "webhook_tools", "agent_tools", "task_tools", "media_tools"];

/// Whether `file_name` is a rule file (`CLAUDE.md`, `AGENTS.md` or `GEMINI.md`). Cleanup must
/// never delete these.
pub fn is_rule_file(file_name: &str) -> bool {
    RULE_FILE_NAMES.contains(&file_name)
}

/// Whether a walk skips a directory of this name.
pub fn is_skipped_dir(dir_name: &str) -> bool {
    SKIP_DIR_NAMES.contains(&dir_name)
}

/// Which CLIs are logged in (ops spec §4.2); decides the rule variant and which rule files exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthenticatedClis {
    /// `claude` is logged in (or `ANTHROPIC_API_KEY` is set).
    pub claude: bool,
    /// `codex` is logged in (or `OPENAI_API_KEY` is set).
    pub codex: bool,
    /// `gemini` is installed and logged in.
    pub gemini: bool,
}

impl AuthenticatedClis {
    /// Only `claude`.
    pub const CLAUDE_ONLY: Self = Self { claude: true, codex: false, gemini: false };

    /// The rule variant: two or more CLIs → `all-clis`; else codex → `codex-only`; else gemini
    /// → `gemini-only`; else (claude alone, or none) `claude-only`.
    pub fn variant(self) -> RuleVariant {
        let count = [self.claude, self.codex, self.gemini].into_iter().filter(|x| *x).count();
        if count >= 2 {
            RuleVariant::AllClis
        } else if self.codex {
            RuleVariant::CodexOnly
        } else if self.gemini {
            RuleVariant::GeminiOnly
        } else {
            RuleVariant::ClaudeOnly
        }
    }

    /// Whether the rule file `name` belongs to a logged-in CLI (`false` for other names).
    pub fn deploys(self, name: &str) -> bool {
        match name {
            "CLAUDE.md" => self.claude,
            "AGENTS.md" => self.codex,
            "GEMINI.md" => self.gemini,
            _ => false,
        }
    }

    /// The rule files deployed for these CLIs, in [`RULE_FILE_NAMES`] order.
    pub fn rule_file_names(self) -> Vec<&'static str> {
        RULE_FILE_NAMES.into_iter().filter(|name| self.deploys(name)).collect()
    }
}

/// The variant of a rule template (`RULES-<variant>.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVariant {
    /// Two or more CLIs are logged in.
    AllClis,
    /// Only claude (also when none is).
    ClaudeOnly,
    /// Only codex.
    CodexOnly,
    /// Only gemini.
    GeminiOnly,
}

impl RuleVariant {
    /// The variant's name as in the template file name (`all-clis`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllClis => "all-clis",
            Self::ClaudeOnly => "claude-only",
            Self::CodexOnly => "codex-only",
            Self::GeminiOnly => "gemini-only",
        }
    }

    /// The template file of this variant: `RULES-<variant>.md`.
    pub fn template_name(self) -> String {
        format!("RULES-{}.md", self.as_str())
    }
}

/// Whether a template file name is a rule template (`RULES.md` or `RULES-*.md`).
pub fn is_rule_template(file_name: &str) -> bool {
    file_name == "RULES.md" || (file_name.starts_with("RULES-") && file_name.ends_with(".md"))
}

/// The rule template a directory deploys: `RULES-<variant>.md` if it is among `names`, else
/// `RULES.md` if present, else none.
pub fn pick_rule_template<'a>(names: &[&'a str], variant: RuleVariant) -> Option<&'a str> {
    let wanted = variant.template_name();
    names.iter().find(|n| **n == wanted).or_else(|| names.iter().find(|n| **n == "RULES.md")).copied()
}

/// What the home-defaults copy does with one template file (ops spec §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateRole {
    /// A `RULES*.md`: deployed by the rule deployment, not copied.
    RuleTemplate,
    /// Zone 2: overwritten at every start (tool scripts, rule-file-named templates).
    Overwrite,
    /// Zone 3: copied only when the target does not exist; a person's edit survives.
    SeedOnce,
    /// A bundled skill (`workspace/skills/<name>/…`): deployed by the skill sync.
    BundledSkill,
    /// Hidden or a skipped directory: never copied.
    Skipped,
}

/// The role of the template file at `relative` (`/`-separated, relative to the tree root).
pub fn template_role(relative: &str) -> TemplateRole {
    let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
    let Some((file_name, dirs)) = parts.split_last() else { return TemplateRole::Skipped };
    if parts.iter().any(|p| p.starts_with('.')) || dirs.iter().any(|d| is_skipped_dir(d)) {
        return TemplateRole::Skipped;
    }
    if is_rule_template(file_name) {
        return TemplateRole::RuleTemplate;
    }
    if let ["workspace", "skills", _skill, ..] = dirs {
        return TemplateRole::BundledSkill;
    }
    if is_rule_file(file_name) {
        return TemplateRole::Overwrite;
    }
    if let ["workspace", "tools", tool_dir] = dirs
        && ZONE2_TOOL_DIRS.contains(tool_dir)
        && file_name.ends_with(".py")
    {
        return TemplateRole::Overwrite;
    }
    TemplateRole::SeedOnce
}

/// The rule-file mtime sync of one directory (ops spec §4.4): among the existing rule files
/// (`(name, mtime)`), the newest is copied over every strictly older one. `None` when fewer
/// than two exist or none is older. On a tie for newest, the first in [`RULE_FILE_NAMES`]
/// order is the source.
pub fn mtime_sync_plan<'a, T: Ord + Copy>(files: &[(&'a str, T)]) -> Option<(&'a str, Vec<&'a str>)> {
    let newest = files.iter().map(|(_, t)| *t).max()?;
    let source = RULE_FILE_NAMES
        .iter()
        .find_map(|name| files.iter().find(|(n, t)| n == name && *t == newest).map(|(n, _)| *n))
        .or_else(|| files.iter().find(|(_, t)| *t == newest).map(|(n, _)| *n))?;
    let targets: Vec<&str> = files.iter().filter(|(_, t)| *t < newest).map(|(n, _)| *n).collect();
    (!targets.is_empty()).then_some((source, targets))
}

/// The rule files a cron task folder should have: those present in `cron_tasks/` itself
/// (`root_present`), or `CLAUDE.md` alone when there are none.
pub fn expected_task_rule_files(root_present: &[&str]) -> Vec<&'static str> {
    let found: Vec<&'static str> = RULE_FILE_NAMES.into_iter().filter(|n| root_present.contains(n)).collect();
    if found.is_empty() { vec!["CLAUDE.md"] } else { found }
}

/// The backfill of one task folder (ops spec §4.5): the source of the copies (its first
/// existing rule file) and the expected rule files it lacks. `None` when the folder has no rule
/// file (it is not touched) or lacks none.
pub fn backfill_plan<'a>(existing: &[&'a str], expected: &[&'a str]) -> Option<(&'a str, Vec<&'a str>)> {
    let source = RULE_FILE_NAMES.iter().find_map(|name| existing.iter().find(|e| *e == name).copied())?;
    let missing: Vec<&str> = expected.iter().filter(|e| !existing.contains(e)).copied().collect();
    (!missing.is_empty()).then_some((source, missing))
}

/// A cron task name after sanitizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskName {
    /// The folder and job name.
    pub name: String,
    /// Whether it differs from what was asked for.
    pub sanitized: bool,
}

/// Why a cron task name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskNameError {
    /// It contains `..`, `/` or `\`.
    #[error("task name {0:?} contains '..', '/' or '\\'")]
    PathLike(String),
    /// Nothing is left after sanitizing.
    #[error("task name {0:?} has no letters or digits")]
    Empty(String),
}

/// Sanitizes a cron task name (ops spec §4.5): names with `..`, `/` or `\` are refused; then
/// lowercase, every character outside `[a-z0-9-]` becomes `-`, runs of `-` collapse, leading
/// and trailing `-` go; an empty result is refused.
pub fn sanitize_task_name(raw: &str) -> Result<TaskName, TaskNameError> {
    if raw.contains("..") || raw.contains('/') || raw.contains('\\') {
        return Err(TaskNameError::PathLike(raw.to_owned()));
    }
    let mut name = String::with_capacity(raw.len());
    for c in raw.to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' { c } else { '-' };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        return Err(TaskNameError::Empty(raw.to_owned()));
    }
    let sanitized = name != raw;
    Ok(TaskName { name, sanitized })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clis(claude: bool, codex: bool, gemini: bool) -> AuthenticatedClis {
        AuthenticatedClis { claude, codex, gemini }
    }

    #[test]
    fn variant_follows_the_logged_in_clis() {
        assert_eq!(clis(true, true, false).variant(), RuleVariant::AllClis);
        assert_eq!(clis(false, true, true).variant(), RuleVariant::AllClis);
        assert_eq!(clis(false, true, false).variant(), RuleVariant::CodexOnly);
        assert_eq!(clis(false, false, true).variant(), RuleVariant::GeminiOnly);
        assert_eq!(clis(true, false, false).variant(), RuleVariant::ClaudeOnly);
        assert_eq!(clis(false, false, false).variant(), RuleVariant::ClaudeOnly);
        assert_eq!(clis(true, false, true).rule_file_names(), vec!["CLAUDE.md", "GEMINI.md"]);
        assert!(clis(false, false, false).rule_file_names().is_empty());
        assert!(!clis(true, true, true).deploys("README.md"));
    }

    #[test]
    fn variant_template_else_plain_rules() {
        let names = ["RULES-all-clis.md", "RULES-codex-only.md", "RULES.md"];
        assert_eq!(pick_rule_template(&names, RuleVariant::CodexOnly), Some("RULES-codex-only.md"));
        assert_eq!(pick_rule_template(&names, RuleVariant::GeminiOnly), Some("RULES.md"));
        assert_eq!(pick_rule_template(&["RULES-all-clis.md"], RuleVariant::ClaudeOnly), None);
        assert!(is_rule_template("RULES-x.md") && !is_rule_template("RULES.txt") && !is_rule_template("XRULES.md"));
    }

    #[test]
    fn zones_of_template_files() {
        assert_eq!(template_role("workspace/RULES.md"), TemplateRole::RuleTemplate);
        assert_eq!(template_role("config/RULES-all-clis.md"), TemplateRole::RuleTemplate);
        assert_eq!(template_role("workspace/tools/cron_tools/cron_add.py"), TemplateRole::Overwrite);
        assert_eq!(template_role("workspace/tools/task_tools/list_tasks.py"), TemplateRole::Overwrite);
        assert_eq!(template_role("workspace/tools/user_tools/mine.py"), TemplateRole::SeedOnce);
        assert_eq!(template_role("workspace/tools/_tool_shared.py"), TemplateRole::SeedOnce);
        assert_eq!(template_role("workspace/tools/cron_tools/sub/x.py"), TemplateRole::SeedOnce);
        assert_eq!(template_role("workspace/CLAUDE.md"), TemplateRole::Overwrite);
        assert_eq!(template_role("workspace/memory_system/MAINMEMORY.md"), TemplateRole::SeedOnce);
        assert_eq!(template_role("workspace/JOIN_NOTIFICATION.md"), TemplateRole::SeedOnce);
        assert_eq!(template_role("workspace/skills/skill-creator/SKILL.md"), TemplateRole::BundledSkill);
        assert_eq!(template_role("workspace/skills/RULES.md"), TemplateRole::RuleTemplate);
        assert_eq!(template_role("workspace/.hidden"), TemplateRole::Skipped);
        assert_eq!(template_role("workspace/tools/__pycache__/a.pyc"), TemplateRole::Skipped);
        assert_eq!(template_role(""), TemplateRole::Skipped);
    }

    #[test]
    fn newest_rule_file_wins() {
        assert_eq!(mtime_sync_plan(&[("CLAUDE.md", 5), ("AGENTS.md", 3)]), Some(("CLAUDE.md", vec!["AGENTS.md"])));
        assert_eq!(
            mtime_sync_plan(&[("CLAUDE.md", 1), ("AGENTS.md", 2), ("GEMINI.md", 2)]),
            Some(("AGENTS.md", vec!["CLAUDE.md"]))
        );
        assert_eq!(mtime_sync_plan(&[("CLAUDE.md", 2), ("AGENTS.md", 2)]), None, "equal: nothing to do");
        assert_eq!(mtime_sync_plan(&[("GEMINI.md", 2)]), None);
        assert_eq!(mtime_sync_plan::<u8>(&[]), None);
    }

    #[test]
    fn task_folders_expect_the_root_rule_files() {
        assert_eq!(expected_task_rule_files(&[]), vec!["CLAUDE.md"]);
        assert_eq!(expected_task_rule_files(&["GEMINI.md", "AGENTS.md"]), vec!["AGENTS.md", "GEMINI.md"]);
        assert_eq!(backfill_plan(&["AGENTS.md"], &["CLAUDE.md", "AGENTS.md"]), Some(("AGENTS.md", vec!["CLAUDE.md"])));
        assert_eq!(backfill_plan(&[], &["CLAUDE.md"]), None, "a folder without rule files is left alone");
        assert_eq!(backfill_plan(&["CLAUDE.md", "AGENTS.md"], &["CLAUDE.md"]), None, "never deletes");
    }

    #[test]
    fn task_names_are_sanitized() {
        assert_eq!(
            sanitize_task_name("Daily Report!").unwrap(),
            TaskName { name: "daily-report".into(), sanitized: true }
        );
        assert_eq!(sanitize_task_name("weekly").unwrap(), TaskName { name: "weekly".into(), sanitized: false });
        assert_eq!(sanitize_task_name("--A__b  c--").unwrap().name, "a-b-c");
        assert_eq!(sanitize_task_name("Größe 2").unwrap().name, "gr-e-2");
        assert_eq!(sanitize_task_name("!!!"), Err(TaskNameError::Empty("!!!".into())));
        for bad in ["../x", "a/b", "a\\b", ".."] {
            assert!(matches!(sanitize_task_name(bad), Err(TaskNameError::PathLike(_))), "{bad}");
        }
    }

    #[test]
    fn rule_files_are_known() {
        assert!(is_rule_file("CLAUDE.md") && is_rule_file("AGENTS.md") && is_rule_file("GEMINI.md"));
        assert!(!is_rule_file("claude.md") && !is_rule_file("RULES.md") && !is_rule_file("_index.yaml"));
    }
}

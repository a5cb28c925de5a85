//! The workspace as a person finds it on disk after ductor prepared it (ops spec §4.8): rule
//! files only for the logged-in CLIs, tool scripts restored with the changed copy kept, seeded
//! files never overwritten, sibling rule files and cron task folders kept in step by the rule
//! sync, skills shared with the CLIs and cleaned up at stop, one runtime section after any
//! number of starts — and a home the Python original wrote going through all of it intact.

use std::fs;
use std::time::{Duration, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};
use ductor::core::config::Config;
use ductor::core::workspace::skills::SkillSyncMode;
use ductor::core::workspace::texts::{AgentRole, Messenger, RuntimeFacts, RuntimeHost};
use ductor::observer::rule_sync::{RuleSync, RuleSyncArgs};
use ductor::observer::skill_sync::{SkillSync, SkillSyncArgs};
use ductor::provider::auth::AuthProbe;
use ductor::store::paths::DuctorPaths;
use ductor::store::workspace::{
    self, InitReport, TaskFolderError, TemplateTree, WorkspaceEnv, create_task_folder, delete_task_folder,
    inject_runtime_sections, rename_task_folder,
};
use ractor::Actor;

/// A temporary machine: the user's home (`~`, for `~/.claude` …) and a ductor home beside it.
struct Machine {
    _dir: tempfile::TempDir,
    user: Utf8PathBuf,
    paths: DuctorPaths,
}

impl Machine {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        let user = root.join("user");
        fs::create_dir_all(&user).unwrap();
        Self { _dir: dir, user, paths: DuctorPaths::at(root.join("ductor")) }
    }

    fn home(&self) -> &Utf8Path {
        self.paths.home()
    }

    fn ws(&self, rel: &str) -> Utf8PathBuf {
        self.paths.workspace().join(rel)
    }

    /// Logs a CLI in the way the auth probe recognises: a credential file.
    fn log_in(&self, cli: &str) {
        let file = match cli {
            "claude" => ".claude/.credentials.json",
            "codex" => ".codex/auth.json",
            other => panic!("no fake login for {other}"),
        };
        let path = self.user.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "{}").unwrap();
    }

    fn log_out(&self, cli: &str) {
        let file = if cli == "claude" { ".claude/.credentials.json" } else { ".codex/auth.json" };
        fs::remove_file(self.user.join(file)).unwrap();
    }

    /// What ductor's start computes: the probe over this machine's user home, no env.
    fn env(&self) -> WorkspaceEnv {
        let no_env = |_: &str| None;
        let probe = AuthProbe {
            home: self.user.clone(),
            env: &no_env,
            gemini_api_key: None,
            search_path: Some(String::new()),
            claude_cli_logged_in: None,
        };
        WorkspaceEnv::new(self.user.clone(), &no_env, probe.authenticated_clis())
    }

    fn init(&self) -> InitReport {
        let report = workspace::init(&self.paths, &Config::default(), &self.env());
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        report
    }
}

fn read(path: impl AsRef<Utf8Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref()))
}

fn template(path: &str) -> String {
    String::from_utf8(TemplateTree::bundled().get(path).unwrap().to_vec()).unwrap()
}

/// Every file called `name` under `dir`.
fn find_named(dir: &Utf8Path, name: &str) -> Vec<Utf8PathBuf> {
    let mut out = Vec::new();
    for entry in dir.read_dir_utf8().unwrap() {
        let path = entry.unwrap().into_path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            out.extend(find_named(&path, name));
        } else if path.file_name() == Some(name) {
            out.push(path);
        }
    }
    out
}

/// Every file under `dir` whose name ends with `suffix`.
fn find_named_suffix(dir: &Utf8Path, suffix: &str) -> Vec<Utf8PathBuf> {
    let mut out = Vec::new();
    for entry in dir.read_dir_utf8().unwrap() {
        let path = entry.unwrap().into_path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(find_named_suffix(&path, suffix));
        } else if path.as_str().ends_with(suffix) {
            out.push(path);
        }
    }
    out
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 5 s: {what}");
}

fn set_mtime(path: &Utf8Path, time: SystemTime) {
    fs::OpenOptions::new().write(true).open(path).unwrap().set_modified(time).unwrap();
}

fn main_facts() -> RuntimeFacts {
    RuntimeFacts { messengers: vec![Messenger::Telegram], role: AgentRole::Main, host: RuntimeHost::Host }
}

// §4.8 check 1 (and the variant): claude and codex logged in.
#[test]
fn two_logged_in_clis_get_identical_claude_and_agents_files_and_the_all_clis_variant() {
    let m = Machine::new();
    m.log_in("claude");
    m.log_in("codex");
    m.init();
    let claude = read(m.ws("CLAUDE.md"));
    assert_eq!(claude, read(m.ws("AGENTS.md")));
    assert_eq!(claude, template("workspace/RULES.md"));
    assert!(!m.ws("GEMINI.md").exists());
    assert_eq!(read(m.home().join("config/CLAUDE.md")), template("config/RULES-all-clis.md"));
    assert_eq!(read(m.ws("cron_tasks/AGENTS.md")), template("workspace/cron_tasks/RULES-all-clis.md"));
    assert_eq!(read(m.ws("tools/cron_tools/CLAUDE.md")), template("workspace/tools/cron_tools/RULES-all-clis.md"));
    assert_eq!(read(m.home().join("CLAUDE.md")), template("RULES.md"));
    assert!(find_named(m.home(), "GEMINI.md").is_empty());
    for dir in ["memory_system", "cron_tasks", "tools/user_tools", "tools/agent_tools", "output_to_user", "skills"] {
        assert!(m.ws(dir).is_dir(), "{dir}");
    }
    assert!(m.home().join("logs").is_dir());
}

#[test]
fn only_claude_logged_in_deploys_only_claude_files_of_the_claude_only_variant() {
    let m = Machine::new();
    m.log_in("claude");
    let report = m.init();
    assert!(find_named(m.home(), "AGENTS.md").is_empty());
    assert!(find_named(m.home(), "GEMINI.md").is_empty());
    let claude_files = find_named(m.home(), "CLAUDE.md");
    assert_eq!(claude_files.len(), report.rules_deployed.len());
    assert!(claude_files.len() >= 14, "one per template folder: {claude_files:?}");
    assert_eq!(read(m.home().join("config/CLAUDE.md")), template("config/RULES-claude-only.md"));
    assert_eq!(
        read(m.ws("tools/webhook_tools/CLAUDE.md")),
        template("workspace/tools/webhook_tools/RULES-claude-only.md")
    );
    assert_eq!(read(m.ws("tasks/CLAUDE.md")), template("workspace/tasks/RULES.md"));
}

// §4.8 check 2, with a tree that ships a tool script (the real tree gets them separately).
#[test]
fn a_changed_tool_script_is_restored_and_the_changed_copy_kept_as_bak() {
    let m = Machine::new();
    m.log_in("claude");
    let tree = TemplateTree::from_files([
        ("workspace/RULES.md", "# rules\n"),
        ("workspace/tools/cron_tools/cron_add.py", "print('ductor')\n"),
        ("workspace/tools/user_tools/helper.py", "print('seed')\n"),
    ]);
    let env = m.env();
    let first = workspace::init_with(&m.paths, &Config::default(), &env, &tree);
    assert!(first.backups.is_empty());
    let script = m.ws("tools/cron_tools/cron_add.py");
    assert_eq!(read(&script), "print('ductor')\n");
    fs::write(&script, "print('mine')\n").unwrap();
    fs::write(m.ws("tools/user_tools/helper.py"), "print('my helper')\n").unwrap();
    let second = workspace::init_with(&m.paths, &Config::default(), &env, &tree);
    assert_eq!(read(&script), "print('ductor')\n");
    assert_eq!(read(m.ws("tools/cron_tools/cron_add.py.bak")), "print('mine')\n");
    assert_eq!(second.backups, vec![Utf8PathBuf::from(format!("{script}.bak"))]);
    assert_eq!(read(m.ws("tools/user_tools/helper.py")), "print('my helper')\n", "Zone 3 is not overwritten");
    let third = workspace::init_with(&m.paths, &Config::default(), &env, &tree);
    assert!(third.backups.is_empty(), "an unchanged script makes no backup");
    assert_eq!(read(m.ws("tools/cron_tools/cron_add.py.bak")), "print('mine')\n");
}

// §4.8 check 3.
#[test]
fn a_persons_edits_to_seeded_files_survive_the_next_start() {
    let m = Machine::new();
    m.log_in("claude");
    m.init();
    assert_eq!(read(m.ws("memory_system/MAINMEMORY.md")), template("workspace/memory_system/MAINMEMORY.md"));
    assert_eq!(read(m.ws("JOIN_NOTIFICATION.md")), template("workspace/JOIN_NOTIFICATION.md"));
    fs::write(m.ws("memory_system/MAINMEMORY.md"), "# Main Memory\n\nThe user is called Ada.\n").unwrap();
    fs::write(m.ws("JOIN_NOTIFICATION.md"), "Welcome to our group!\n").unwrap();
    fs::write(m.ws("CLAUDE.md"), "my own rules\n").unwrap();
    let report = m.init();
    assert_eq!(read(m.ws("memory_system/MAINMEMORY.md")), "# Main Memory\n\nThe user is called Ada.\n");
    assert_eq!(read(m.ws("JOIN_NOTIFICATION.md")), "Welcome to our group!\n");
    assert!(report.seeded.is_empty());
    assert_eq!(read(m.ws("CLAUDE.md")), template("workspace/RULES.md"), "rule files are ductor's");
}

// §4.8 check 5.
#[test]
fn logging_codex_out_removes_agents_files_except_in_cron_task_folders() {
    let m = Machine::new();
    m.log_in("claude");
    m.log_in("codex");
    m.init();
    let task = create_task_folder(&m.paths, "daily-report", "Daily report", "Sum up.", &[]).unwrap();
    assert_eq!(task.rule_files, ["CLAUDE.md", "AGENTS.md"]);
    assert!(find_named(m.home(), "AGENTS.md").len() > 5);
    m.log_out("codex");
    let report = m.init();
    let left = find_named(m.home(), "AGENTS.md");
    assert_eq!(left, vec![m.ws("cron_tasks/daily-report/AGENTS.md")]);
    assert!(report.rules_removed.contains(&m.ws("AGENTS.md")));
    assert!(report.rules_removed.contains(&m.ws("cron_tasks/AGENTS.md")), "cron_tasks/ itself follows the CLIs");
    assert!(m.ws("CLAUDE.md").is_file());
    let next = create_task_folder(&m.paths, "next", "Next", "Later.", &[]).unwrap();
    assert_eq!(next.rule_files, ["CLAUDE.md"], "new task folders get only the logged-in CLI's file");
}

// §4.8 checks 4 and 6: the rule-sync observer.
#[tokio::test]
async fn the_rule_sync_copies_the_newest_rule_file_and_backfills_task_folders() {
    let m = Machine::new();
    m.log_in("claude");
    m.log_in("codex");
    m.init();
    let old = SystemTime::now() - Duration::from_secs(3600);
    for name in ["CLAUDE.md", "AGENTS.md"] {
        set_mtime(&m.ws(name), old);
    }
    let folder = m.ws("cron_tasks/only-claude");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("CLAUDE.md"), "run the report\n").unwrap();
    fs::write(m.ws("CLAUDE.md"), "# Edited by the person\n").unwrap();

    let args = RuleSyncArgs { paths: m.paths.clone(), every: Duration::from_millis(100) };
    let (actor, handle) = Actor::spawn(None, RuleSync, args).await.unwrap();
    eventually("AGENTS.md follows the edited CLAUDE.md", || {
        fs::read_to_string(m.ws("AGENTS.md")).is_ok_and(|t| t == "# Edited by the person\n")
    })
    .await;
    eventually("the task folder gets AGENTS.md", || {
        fs::read_to_string(folder.join("AGENTS.md")).is_ok_and(|t| t == "run the report\n")
    })
    .await;
    assert!(!folder.join("GEMINI.md").exists(), "only the rule files cron_tasks/ itself has");
    actor.stop(None);
    handle.await.unwrap();
}

fn write_skill(dir: &Utf8Path, name: &str, front_matter: &str) {
    fs::create_dir_all(dir.join(name)).unwrap();
    fs::write(dir.join(name).join("SKILL.md"), format!("{front_matter}\n# {name}\n")).unwrap();
}

fn is_link(path: &Utf8Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

// §4.8 checks 7 and 9: the skill-sync observer in link mode.
#[tokio::test]
async fn skills_are_linked_between_the_workspace_and_the_clis_and_unlinked_at_stop() {
    let m = Machine::new();
    m.log_in("claude");
    m.log_in("codex");
    m.init();
    let claude_skills = m.user.join(".claude/skills");
    let codex_skills = m.user.join(".codex/skills");
    write_skill(&claude_skills, "foo", "---\nname: foo\ndescription: Does foo.\n---");
    write_skill(&claude_skills, "broken", "---\nname: broken\n---");
    write_skill(&m.paths.skills(), "mine", "---\nname: mine\ndescription: Mine.\n---");

    let args = SkillSyncArgs {
        paths: m.paths.clone(),
        env: m.env(),
        skills: Config::default().skills,
        mode: SkillSyncMode::Link,
        every: Duration::from_millis(100),
    };
    let (actor, handle) = Actor::spawn(None, SkillSync, args).await.unwrap();
    eventually("foo is linked into the workspace and codex", || {
        is_link(&m.ws("skills/foo")) && is_link(&codex_skills.join("foo"))
    })
    .await;
    assert_eq!(fs::read_link(m.ws("skills/foo")).unwrap(), claude_skills.join("foo"));
    assert!(read(codex_skills.join("foo/SKILL.md")).contains("Does foo."));
    eventually("mine is linked into claude", || is_link(&claude_skills.join("mine"))).await;
    assert!(!m.ws("skills/broken").exists() && !codex_skills.join("broken").exists(), "invalid front-matter");
    assert!(is_link(&m.ws("skills/skill-creator")), "the bundled skill");
    assert!(read(m.ws("skills/skill-creator/SKILL.md")).starts_with("---\nname: skill-creator\n"));
    assert!(is_link(&claude_skills.join("skill-creator")));

    actor.stop(None);
    handle.await.unwrap();
    let links_into_workspace: Vec<_> = claude_skills
        .read_dir_utf8()
        .unwrap()
        .map(|e| e.unwrap().into_path())
        .filter(|p| is_link(p))
        .filter(|p| {
            let target = p.canonicalize_utf8().unwrap();
            target.starts_with(m.paths.skills()) || target.starts_with(m.home().join(".bundled_skills"))
        })
        .collect();
    assert!(links_into_workspace.is_empty(), "{links_into_workspace:?}");
    assert!(!claude_skills.join("mine").exists() && !claude_skills.join("skill-creator").exists());
    assert!(claude_skills.join("foo/SKILL.md").is_file(), "the CLI's own skill stays");
    assert!(m.paths.skills().join("mine/SKILL.md").is_file(), "the workspace's own skill stays");
}

// §4.8 check 8: copy mode (Docker), given to the observer as its mode.
#[tokio::test]
async fn in_copy_mode_skills_are_managed_copies() {
    let m = Machine::new();
    m.log_in("claude");
    m.init();
    assert!(is_link(&m.ws("skills/skill-creator")), "link mode at init");
    let claude_skills = m.user.join(".claude/skills");
    write_skill(&claude_skills, "foo", "---\nname: foo\ndescription: Does foo.\n---");
    let args = SkillSyncArgs {
        paths: m.paths.clone(),
        env: m.env(),
        skills: Config::default().skills,
        mode: SkillSyncMode::Copy,
        every: Duration::from_millis(100),
    };
    let (actor, handle) = Actor::spawn(None, SkillSync, args).await.unwrap();
    let managed = [m.ws("skills/skill-creator"), m.ws("skills/foo"), claude_skills.join("skill-creator")];
    eventually("managed copies everywhere", || managed.iter().all(|d| d.join(".ductor_managed").is_file())).await;
    actor.stop(None);
    handle.await.unwrap();
    for dir in &managed {
        assert!(!is_link(dir) && dir.is_dir(), "{dir} is a real folder");
        assert!(read(dir.join("SKILL.md")).starts_with("---\n"));
    }
    assert!(claude_skills.join("foo").is_dir() && !claude_skills.join("foo/.ductor_managed").exists());
    let bundled = workspace::bundled_skills(&m.paths, &TemplateTree::bundled());
    let again = workspace::sync_skills(&m.paths, &m.env(), &Config::default().skills, &bundled, SkillSyncMode::Copy);
    assert!(again.copied.is_empty(), "fresh copies are not copied again: {:?}", again.copied);
    fs::write(claude_skills.join("foo/SKILL.md"), "---\nname: foo\ndescription: Does foo better.\n---\n").unwrap();
    set_mtime(&claude_skills.join("foo/SKILL.md"), SystemTime::now() + Duration::from_secs(5));
    workspace::sync_skills(&m.paths, &m.env(), &Config::default().skills, &bundled, SkillSyncMode::Copy);
    assert!(read(m.ws("skills/foo/SKILL.md")).contains("Does foo better."), "a newer source is recopied");
}

// §4.8 check 10.
#[test]
fn any_number_of_starts_leaves_exactly_one_runtime_section() {
    let m = Machine::new();
    m.log_in("claude");
    m.log_in("codex");
    for _ in 0..3 {
        m.init();
        inject_runtime_sections(&m.paths, &main_facts());
        inject_runtime_sections(&m.paths, &main_facts());
    }
    for name in ["CLAUDE.md", "AGENTS.md"] {
        let text = read(m.ws(name));
        assert_eq!(text.matches("\n## Runtime Environment\n").count(), 1, "{name}");
        assert_eq!(text.matches("\n## Multi-Agent Identity\n").count(), 1, "{name}");
        assert_eq!(text.matches("\n## Messenger Rules\n").count(), 1, "{name}");
        let last = text.rfind("\n## ").unwrap();
        assert!(text[last..].starts_with("\n## Runtime Environment\n"), "{name} ends with it");
        assert!(text.starts_with(&template("workspace/RULES.md").trim_end().to_owned()));
    }
    assert!(!m.ws("GEMINI.md").exists(), "no section makes a rule file appear");
}

#[test]
fn cron_task_folders_are_created_renamed_and_deleted_inside_cron_tasks_only() {
    let m = Machine::new();
    m.log_in("claude");
    m.init();
    let task = create_task_folder(&m.paths, "Daily Report!", "Daily report", "Summarise the sales.", &[]).unwrap();
    assert_eq!((task.name.as_str(), task.sanitized), ("daily-report", true));
    let folder = m.ws("cron_tasks/daily-report");
    assert_eq!(task.path, folder);
    assert!(folder.join("scripts").is_dir());
    assert_eq!(read(folder.join("daily-report_MEMORY.md")), "# daily-report Memory\n");
    let description = read(folder.join("TASK_DESCRIPTION.md"));
    assert!(description.starts_with("# Daily report\n") && description.contains("Summarise the sales."));
    let rules = read(folder.join("CLAUDE.md"));
    assert!(rules.contains("daily-report_MEMORY.md") && rules.contains("TASK_DESCRIPTION.md"));
    assert!(!folder.join("AGENTS.md").exists(), "only the rule files cron_tasks/ has");
    assert!(matches!(create_task_folder(&m.paths, "daily report", "x", "y", &[]), Err(TaskFolderError::Exists(_))));
    assert!(matches!(create_task_folder(&m.paths, "../escape", "x", "y", &[]), Err(TaskFolderError::Name(_))));
    assert!(matches!(
        create_task_folder(&m.paths, "ok", "x", "y", &["README.md"]),
        Err(TaskFolderError::NotARuleFile(_))
    ));

    fs::write(folder.join("daily-report_MEMORY.md"), "# daily-report Memory\n\n- 2025-06-01: sent.\n").unwrap();
    let renamed = rename_task_folder(&m.paths, "daily-report", "weekly").unwrap();
    let weekly = m.ws("cron_tasks/weekly");
    assert!(!folder.exists() && weekly.is_dir() && renamed.memory_file_renamed);
    assert_eq!(read(weekly.join("weekly_MEMORY.md")), "# daily-report Memory\n\n- 2025-06-01: sent.\n");
    let rules = read(weekly.join("CLAUDE.md"));
    assert!(rules.contains("weekly_MEMORY.md") && !rules.contains("daily-report"));
    assert_eq!(renamed.rules_rewritten, ["CLAUDE.md"]);

    let outside = m.user.join("precious");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep.txt"), "keep").unwrap();
    std::os::unix::fs::symlink(&outside, m.ws("cron_tasks/sneaky")).unwrap();
    assert!(matches!(delete_task_folder(&m.paths, "sneaky"), Err(TaskFolderError::OutsideCronTasks(_))));
    assert!(matches!(delete_task_folder(&m.paths, "../tools"), Err(TaskFolderError::Name(_))));
    assert!(outside.join("keep.txt").is_file());
    assert!(m.ws("tools").is_dir());
    assert!(delete_task_folder(&m.paths, "weekly").unwrap());
    assert!(!weekly.exists());
    assert!(!delete_task_folder(&m.paths, "weekly").unwrap(), "nothing left to delete");
}

fn copy_dir(from: &Utf8Path, to: &Utf8Path) {
    fs::create_dir_all(to).unwrap();
    for entry in from.read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_home_written_by_the_python_original_keeps_the_persons_files() {
    let fixture = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python-home-0.18.2/home");
    let m = Machine::new();
    copy_dir(&fixture, m.home());
    m.log_in("claude");
    let keep = [
        "workspace/memory_system/MAINMEMORY.md",
        "workspace/JOIN_NOTIFICATION.md",
        "workspace/cron_tasks/daily-report/TASK_DESCRIPTION.md",
        "workspace/cron_tasks/daily-report/daily-report_MEMORY.md",
        "workspace/cron_tasks/daily-report/CLAUDE.md",
        "workspace/cron_tasks/daily-report/AGENTS.md",
        "workspace/cron_tasks/hourly-check/TASK_DESCRIPTION.md",
        "workspace/cron_tasks/hourly-check/AGENTS.md",
        "workspace/cron_tasks/after-report/after-report_MEMORY.md",
        "workspace/tasks/ae3fbaf2/TASKMEMORY.md",
        "workspace/skills/skill-creator",
        "SHAREDMEMORY.md",
        "cron_jobs.json",
        "config/config.json",
        "agents/helper/workspace/memory_system/MAINMEMORY.md",
    ];
    let before: Vec<String> = keep.iter().map(|p| read(m.home().join(p))).collect();
    let scripts: Vec<(Utf8PathBuf, String)> = find_named_suffix(&m.ws("tools"), ".py")
        .into_iter()
        .map(|p| {
            let text = read(&p);
            (p, text)
        })
        .collect();
    assert!(scripts.len() > 20, "the fixture's tool scripts");
    m.init();
    inject_runtime_sections(&m.paths, &main_facts());
    m.init();
    inject_runtime_sections(&m.paths, &main_facts());
    for (path, text) in keep.iter().zip(&before) {
        assert_eq!(&read(m.home().join(path)), text, "{path} is unchanged");
    }
    for (path, text) in &scripts {
        let backup = Utf8PathBuf::from(format!("{path}.bak"));
        let kept = if backup.exists() { read(&backup) } else { read(path) };
        assert_eq!(&kept, text, "{path}: unchanged, or its old text kept as .bak");
    }
    assert!(!m.ws("AGENTS.md").exists() && !m.ws("memory_system/AGENTS.md").exists(), "codex is logged out");
    let claude = read(m.ws("CLAUDE.md"));
    assert!(claude.starts_with(&template("workspace/RULES.md").trim_end().to_owned()), "ductor-rs's rules");
    assert_eq!(claude.matches("\n## Runtime Environment\n").count(), 1);
    assert_eq!(claude.matches("\n## Multi-Agent Identity\n").count(), 1);
}

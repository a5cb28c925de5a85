//! The skill sync's decisions (ops spec §4.6): whether a `SKILL.md` opens with valid
//! front-matter, and — from a listing of every skill directory — which skill is canonical and
//! what to link, copy, refresh or remove so every CLI sees the same skills. The store lists the
//! directories and carries the actions out.

use std::collections::{BTreeMap, BTreeSet};

use camino::{Utf8Path, Utf8PathBuf};

/// Directory names in a skill directory that are never skills (besides any hidden name).
pub const NOT_SKILLS: [&str; 6] = [".claude", ".system", ".git", ".venv", "__pycache__", "node_modules"];

/// The marker file inside a copy ductor made in copy mode.
pub const MANAGED_MARKER: &str = ".ductor_managed";

/// Whether an entry of a skill directory may be a skill (not hidden, not a tool folder).
pub fn may_be_skill(name: &str) -> bool {
    !name.starts_with('.') && !NOT_SKILLS.contains(&name)
}

/// How skills reach the other directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkillSyncMode {
    /// Directory symlinks to the canonical skill (on the host).
    Link,
    /// Copies with a `.ductor_managed` marker (Docker: links would not resolve in the container).
    Copy,
}

/// A skill directory, in priority order: ductor's own first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkillRoot {
    /// `<ws>/skills`.
    Ductor,
    /// `~/.claude/skills`.
    Claude,
    /// `$CODEX_HOME/skills`.
    Codex,
    /// `~/.gemini/skills`.
    Gemini,
}

/// What occupies a name in a skill directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occupant {
    /// A directory without the marker: someone's own, never touched.
    RealDir {
        /// Its `SKILL.md` has valid front-matter.
        skill: bool,
    },
    /// A copy ductor made (has the marker).
    Managed {
        /// Its `SKILL.md` has valid front-matter.
        skill: bool,
    },
    /// A symlink.
    Link {
        /// The resolved target when it exists and is a directory (`None`: broken).
        target: Option<Utf8PathBuf>,
        /// The target's `SKILL.md` has valid front-matter.
        skill: bool,
    },
    /// A file or anything else: never touched.
    Other,
}

/// One skill directory as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootListing {
    /// Which directory.
    pub root: SkillRoot,
    /// Its path (resolved).
    pub dir: Utf8PathBuf,
    /// Its entries that may be skills, by name.
    pub entries: BTreeMap<String, Occupant>,
}

/// One step of a sync run. Paths are `<root dir>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkillAction {
    /// Remove the link or managed copy at `path`.
    Remove {
        /// The entry.
        path: Utf8PathBuf,
    },
    /// Make `path` a symlink to `to` (replacing a link or managed copy there).
    Link {
        /// The entry.
        path: Utf8PathBuf,
        /// The canonical skill.
        to: Utf8PathBuf,
    },
    /// Make `path` a managed copy of `from` (replacing a link or managed copy there).
    Copy {
        /// The entry.
        path: Utf8PathBuf,
        /// The canonical skill.
        from: Utf8PathBuf,
    },
    /// Recopy the managed copy at `path` when anything under `from` is newer than its marker.
    Refresh {
        /// The entry.
        path: Utf8PathBuf,
        /// The canonical skill.
        from: Utf8PathBuf,
    },
}

/// Whether `text` (a `SKILL.md`) opens with a `---` front-matter block, closed by `---` after
/// at least one line, whose top-level `name` and `description` are non-empty strings.
pub fn has_valid_front_matter(text: &str) -> bool {
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return false;
    }
    let mut block = Vec::new();
    let mut closed = false;
    for line in lines {
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        block.push(line);
    }
    if !closed || block.is_empty() {
        return false;
    }
    ["name", "description"].iter().all(|key| yaml_string_value(&block, key).is_some_and(|v| !v.trim().is_empty()))
}

/// The string value of a top-level `key:` in a YAML block (plain, quoted or block scalar);
/// `None` when missing or not a string (number, boolean, null, list, map).
fn yaml_string_value(block: &[&str], key: &str) -> Option<String> {
    let at = block.iter().position(|line| {
        line.strip_prefix(key).is_some_and(|rest| rest.starts_with(':') && !line.starts_with(char::is_whitespace))
    })?;
    let value = block[at][key.len() + 1..].trim();
    let value = value.split(" #").next().unwrap_or(value).trim();
    let continuation = || {
        block[at + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.starts_with(char::is_whitespace))
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if value.starts_with('|') || value.starts_with('>') {
        return Some(continuation());
    }
    if value.is_empty() {
        let next = continuation();
        return (!next.is_empty() && !next.starts_with("- ") && !next.contains(": ")).then_some(next);
    }
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote) {
            return inner.strip_suffix(quote).map(str::to_owned);
        }
    }
    let lower = value.to_ascii_lowercase();
    let typed = ["null", "~", "true", "false", "yes", "no", "on", "off"].contains(&lower.as_str())
        || value.parse::<f64>().is_ok()
        || value.starts_with(['[', '{', '&', '*', '!']);
    (!typed).then(|| value.to_owned())
}

fn is_under(path: &Utf8Path, dirs: &[&Utf8Path]) -> bool {
    dirs.iter().any(|d| path.starts_with(d))
}

/// The actions of one sync run (ops spec §4.6), in order:
/// 1. in ductor's directory, links and managed copies that are no valid skill are removed;
/// 2. each bundled skill (`bundled`: name → its source) is linked (copied) into ductor's
///    directory unless a real directory or a file holds its name;
/// 3. each skill's canonical source is the first real directory by priority, else the bundled
///    source, else the first valid link's target;
/// 4. every directory lacking a skill, or holding a link elsewhere, gets a link (copy mode: a
///    copy; managed copies are refreshed). Real directories and files are never touched; in link
///    mode a valid link pointing outside every skill directory is kept;
/// 5. broken links left over are removed.
pub fn plan_skill_sync(
    listings: &[RootListing],
    bundled: &BTreeMap<String, Utf8PathBuf>,
    mode: SkillSyncMode,
) -> Vec<SkillAction> {
    let mut listings: Vec<RootListing> = listings.to_vec();
    listings.sort_by_key(|l| l.root);
    let mut actions = Vec::new();
    let root_dirs: Vec<Utf8PathBuf> = listings.iter().map(|l| l.dir.clone()).collect();
    let root_refs: Vec<&Utf8Path> = root_dirs.iter().map(Utf8PathBuf::as_path).collect();

    // 1 and 2: ductor's own directory.
    if let Some(ductor) = listings.iter_mut().find(|l| l.root == SkillRoot::Ductor) {
        let invalid: Vec<String> = ductor
            .entries
            .iter()
            .filter(|(_, o)| {
                matches!(o, Occupant::Managed { skill: false } | Occupant::Link { target: Some(_), skill: false })
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in invalid {
            actions.push(SkillAction::Remove { path: ductor.dir.join(&name) });
            ductor.entries.remove(&name);
        }
        for (name, source) in bundled {
            let path = ductor.dir.join(name);
            let current = ductor.entries.get(name);
            let action = match (current, mode) {
                (Some(Occupant::RealDir { .. } | Occupant::Other), _) => None,
                (Some(Occupant::Link { target: Some(t), .. }), SkillSyncMode::Link) if t == source => None,
                (Some(Occupant::Managed { .. }), SkillSyncMode::Copy) => {
                    Some(SkillAction::Refresh { path, from: source.clone() })
                }
                (_, SkillSyncMode::Link) => Some(SkillAction::Link { path, to: source.clone() }),
                (_, SkillSyncMode::Copy) => Some(SkillAction::Copy { path, from: source.clone() }),
            };
            if let Some(action) = action {
                let now = match mode {
                    SkillSyncMode::Link => Occupant::Link { target: Some(source.clone()), skill: true },
                    SkillSyncMode::Copy => Occupant::Managed { skill: true },
                };
                ductor.entries.insert(name.clone(), now);
                actions.push(action);
            }
        }
    }

    // 3: canonical source per skill name.
    let mut names: BTreeSet<&String> = bundled.keys().collect();
    for listing in &listings {
        names.extend(listing.entries.keys());
    }
    let mut canonical: BTreeMap<String, Utf8PathBuf> = BTreeMap::new();
    for name in names {
        let real = listings.iter().find_map(|l| match l.entries.get(name) {
            Some(Occupant::RealDir { skill: true }) => Some(l.dir.join(name)),
            _ => None,
        });
        let link = || {
            listings.iter().find_map(|l| match l.entries.get(name) {
                Some(Occupant::Link { target: Some(t), skill: true }) => Some(t.clone()),
                _ => None,
            })
        };
        if let Some(source) = real.or_else(|| bundled.get(name).cloned()).or_else(link) {
            canonical.insert(name.clone(), source);
        }
    }

    // 4: bring every directory in line.
    let mut replaced: BTreeSet<Utf8PathBuf> = BTreeSet::new();
    for listing in &listings {
        for (name, source) in &canonical {
            if listing.root == SkillRoot::Ductor && bundled.contains_key(name) {
                continue;
            }
            let path = listing.dir.join(name);
            let action = match (listing.entries.get(name), mode) {
                (Some(Occupant::RealDir { .. } | Occupant::Other), _) => None,
                (Some(Occupant::Link { target: Some(t), .. }), SkillSyncMode::Link) if t == source => None,
                (Some(Occupant::Link { target: Some(t), skill: true }), SkillSyncMode::Link)
                    if !is_under(t, &root_refs) =>
                {
                    None
                }
                (Some(Occupant::Managed { .. }), SkillSyncMode::Copy) => {
                    Some(SkillAction::Refresh { path, from: source.clone() })
                }
                (_, SkillSyncMode::Link) => Some(SkillAction::Link { path, to: source.clone() }),
                (_, SkillSyncMode::Copy) => Some(SkillAction::Copy { path, from: source.clone() }),
            };
            if let Some(action) = action {
                if let SkillAction::Link { path, .. } | SkillAction::Copy { path, .. } = &action {
                    replaced.insert(path.clone());
                }
                actions.push(action);
            }
        }
    }

    // 5: broken links nobody replaced.
    for listing in &listings {
        for (name, occupant) in &listing.entries {
            let path = listing.dir.join(name);
            if matches!(occupant, Occupant::Link { target: None, .. }) && !replaced.contains(&path) {
                actions.push(SkillAction::Remove { path });
            }
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(root: SkillRoot, dir: &str, entries: &[(&str, Occupant)]) -> RootListing {
        RootListing {
            root,
            dir: dir.into(),
            entries: entries.iter().map(|(n, o)| ((*n).to_owned(), o.clone())).collect(),
        }
    }

    fn link(target: &str) -> Occupant {
        Occupant::Link { target: Some(target.into()), skill: true }
    }

    const REAL: Occupant = Occupant::RealDir { skill: true };

    #[test]
    fn front_matter_needs_name_and_description_strings() {
        assert!(has_valid_front_matter("---\nname: foo\ndescription: Does foo.\n---\n# Foo\n"));
        assert!(has_valid_front_matter("---\nname: \"foo\"\ndescription: >\n  Folded\n  text.\n---\n"));
        assert!(has_valid_front_matter("---\r\nname: foo\r\ndescription: 'd'\r\n---\r\n"));
        assert!(!has_valid_front_matter("# Foo\n---\nname: foo\ndescription: d\n---\n"), "must open the file");
        assert!(!has_valid_front_matter("---\nname: foo\ndescription: d\n"), "not closed");
        assert!(!has_valid_front_matter("---\n---\n"), "empty block");
        assert!(!has_valid_front_matter("---\nname: foo\n---\n"), "no description");
        assert!(!has_valid_front_matter("---\nname: ''\ndescription: d\n---\n"), "empty name");
        assert!(!has_valid_front_matter("---\nname: 42\ndescription: d\n---\n"), "a number");
        assert!(!has_valid_front_matter("---\nname: foo\ndescription: [a, b]\n---\n"), "a list");
        assert!(!has_valid_front_matter("---\nname: foo\ndescription:\n  - a\n---\n"), "a list");
        assert!(!has_valid_front_matter("---\n  name: foo\ndescription: d\n---\n"), "nested key");
        assert!(may_be_skill("foo") && !may_be_skill(".hidden") && !may_be_skill("node_modules"));
    }

    #[test]
    fn link_mode_spreads_a_real_skill_everywhere() {
        let listings = [
            listing(SkillRoot::Ductor, "/ws/skills", &[]),
            listing(
                SkillRoot::Claude,
                "/u/.claude/skills",
                &[("foo", REAL), ("bad", Occupant::RealDir { skill: false })],
            ),
            listing(SkillRoot::Codex, "/u/.codex/skills", &[]),
        ];
        let actions = plan_skill_sync(&listings, &BTreeMap::new(), SkillSyncMode::Link);
        assert_eq!(
            actions,
            vec![
                SkillAction::Link { path: "/ws/skills/foo".into(), to: "/u/.claude/skills/foo".into() },
                SkillAction::Link { path: "/u/.codex/skills/foo".into(), to: "/u/.claude/skills/foo".into() },
            ]
        );
    }

    #[test]
    fn ductor_real_dir_wins_and_links_are_kept_or_replaced() {
        let listings = [
            listing(SkillRoot::Ductor, "/ws/skills", &[("foo", REAL)]),
            listing(SkillRoot::Claude, "/u/.claude/skills", &[("foo", REAL)]),
            listing(SkillRoot::Codex, "/u/.codex/skills", &[("foo", link("/u/.claude/skills/foo"))]),
            listing(SkillRoot::Gemini, "/u/.gemini/skills", &[("foo", link("/elsewhere/foo"))]),
        ];
        let actions = plan_skill_sync(&listings, &BTreeMap::new(), SkillSyncMode::Link);
        assert_eq!(
            actions,
            vec![SkillAction::Link { path: "/u/.codex/skills/foo".into(), to: "/ws/skills/foo".into() }]
        );
    }

    #[test]
    fn invalid_and_broken_entries_are_removed() {
        let listings = [
            listing(
                SkillRoot::Ductor,
                "/ws/skills",
                &[
                    ("stale", Occupant::Link { target: Some("/x".into()), skill: false }),
                    ("old", Occupant::Managed { skill: false }),
                    ("mine", Occupant::RealDir { skill: false }),
                    ("gone", Occupant::Link { target: None, skill: false }),
                ],
            ),
            listing(
                SkillRoot::Claude,
                "/u/.claude/skills",
                &[("gone2", Occupant::Link { target: None, skill: false })],
            ),
        ];
        let actions = plan_skill_sync(&listings, &BTreeMap::new(), SkillSyncMode::Link);
        assert_eq!(
            actions,
            vec![
                SkillAction::Remove { path: "/ws/skills/old".into() },
                SkillAction::Remove { path: "/ws/skills/stale".into() },
                SkillAction::Remove { path: "/ws/skills/gone".into() },
                SkillAction::Remove { path: "/u/.claude/skills/gone2".into() },
            ]
        );
    }

    #[test]
    fn bundled_skills_are_linked_unless_a_real_dir_exists() {
        let bundled: BTreeMap<String, Utf8PathBuf> =
            [("creator".to_owned(), Utf8PathBuf::from("/h/.bundled/creator"))].into_iter().collect();
        let listings = [
            listing(SkillRoot::Ductor, "/ws/skills", &[("creator", Occupant::Link { target: None, skill: false })]),
            listing(SkillRoot::Claude, "/u/.claude/skills", &[]),
        ];
        let actions = plan_skill_sync(&listings, &bundled, SkillSyncMode::Link);
        assert_eq!(
            actions,
            vec![
                SkillAction::Link { path: "/ws/skills/creator".into(), to: "/h/.bundled/creator".into() },
                SkillAction::Link { path: "/u/.claude/skills/creator".into(), to: "/h/.bundled/creator".into() },
            ]
        );
        let own = [listing(SkillRoot::Ductor, "/ws/skills", &[("creator", Occupant::RealDir { skill: false })])];
        assert!(plan_skill_sync(&own, &bundled, SkillSyncMode::Link).is_empty());
        let file = [listing(SkillRoot::Ductor, "/ws/skills", &[("creator", Occupant::Other)])];
        assert!(plan_skill_sync(&file, &bundled, SkillSyncMode::Link).is_empty());
    }

    #[test]
    fn copy_mode_copies_replaces_links_and_refreshes_copies() {
        let bundled: BTreeMap<String, Utf8PathBuf> =
            [("creator".to_owned(), Utf8PathBuf::from("/h/.bundled/creator"))].into_iter().collect();
        let listings = [
            listing(
                SkillRoot::Ductor,
                "/ws/skills",
                &[("creator", link("/h/.bundled/creator")), ("foo", link("/u/.claude/skills/foo"))],
            ),
            listing(
                SkillRoot::Claude,
                "/u/.claude/skills",
                &[("foo", REAL), ("creator", Occupant::Managed { skill: true })],
            ),
        ];
        let actions = plan_skill_sync(&listings, &bundled, SkillSyncMode::Copy);
        assert_eq!(
            actions,
            vec![
                SkillAction::Copy { path: "/ws/skills/creator".into(), from: "/h/.bundled/creator".into() },
                SkillAction::Copy { path: "/ws/skills/foo".into(), from: "/u/.claude/skills/foo".into() },
                SkillAction::Refresh { path: "/u/.claude/skills/creator".into(), from: "/h/.bundled/creator".into() },
            ]
        );
    }

    #[test]
    fn link_mode_replaces_managed_copies() {
        let listings = [
            listing(SkillRoot::Ductor, "/ws/skills", &[("foo", Occupant::Managed { skill: true })]),
            listing(SkillRoot::Claude, "/u/.claude/skills", &[("foo", REAL)]),
        ];
        let actions = plan_skill_sync(&listings, &BTreeMap::new(), SkillSyncMode::Link);
        assert_eq!(
            actions,
            vec![SkillAction::Link { path: "/ws/skills/foo".into(), to: "/u/.claude/skills/foo".into() }]
        );
    }
}

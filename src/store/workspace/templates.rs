//! The template tree ductor deploys into every home (`src/store/home_defaults/`, mirroring
//! `<home>`), embedded in the binary, as a flat sorted list of files. Tests build their own
//! trees with [`TemplateTree::from_files`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use include_dir::{Dir, include_dir};

/// The embedded `src/store/home_defaults/` tree.
static HOME_DEFAULTS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/src/store/home_defaults");

/// A template tree: files by `/`-separated path relative to the home, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateTree {
    files: BTreeMap<String, Cow<'static, [u8]>>,
}

impl TemplateTree {
    /// The tree built into ductor.
    pub fn bundled() -> Self {
        let mut files = BTreeMap::new();
        collect(&HOME_DEFAULTS, &mut files);
        Self { files }
    }

    /// A tree of the given files (`path` relative to the home, `/`-separated).
    pub fn from_files<I, P, B>(files: I) -> Self
    where
        I: IntoIterator<Item = (P, B)>,
        P: Into<String>,
        B: Into<Vec<u8>>,
    {
        Self { files: files.into_iter().map(|(p, b)| (p.into(), Cow::Owned(b.into()))).collect() }
    }

    /// Every file, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, b)| (p.as_str(), b.as_ref()))
    }

    /// The content of one file.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(AsRef::as_ref)
    }

    /// The files directly in directory `dir` (`""` = the root), by file name.
    pub fn files_in(&self, dir: &str) -> Vec<(&str, &[u8])> {
        self.files()
            .filter_map(|(path, bytes)| {
                let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
                (parent == dir).then_some((name, bytes))
            })
            .collect()
    }
}

fn collect(dir: &Dir<'static>, out: &mut BTreeMap<String, Cow<'static, [u8]>>) {
    for file in dir.files() {
        let path = file.path().to_string_lossy().replace('\\', "/");
        out.insert(path, Cow::Borrowed(file.contents()));
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embedded files only change when the crate is rebuilt; a file added to or removed from
    /// `home_defaults/` needs a touch of this file to be picked up. This test says so.
    #[test]
    fn embedded_tree_matches_the_source_folder() {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/home_defaults");
        let mut on_disk = BTreeMap::new();
        walk(&root, &root, &mut on_disk);
        let embedded: BTreeMap<String, Vec<u8>> =
            TemplateTree::bundled().files().map(|(p, b)| (p.to_owned(), b.to_vec())).collect();
        assert_eq!(
            embedded.keys().collect::<Vec<_>>(),
            on_disk.keys().collect::<Vec<_>>(),
            "touch src/store/workspace/templates.rs to embed added or removed template files"
        );
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn files_in_lists_one_directory() {
        let tree = TemplateTree::from_files([("a/RULES.md", "x"), ("a/b/RULES.md", "y"), ("TOP.md", "z")]);
        assert_eq!(tree.files_in("a"), vec![("RULES.md", &b"x"[..])]);
        assert_eq!(tree.files_in(""), vec![("TOP.md", &b"z"[..])]);
        assert_eq!(tree.get("a/b/RULES.md"), Some(&b"y"[..]));
    }
}

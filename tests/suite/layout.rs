//! The house rules of the source tree, read from the files themselves: imports run only
//! downward through the layers `src/lib.rs` names, transports never import each other, the pure
//! files stay free of tokio and I/O, and every source file `actors.md` names exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The layers from the bottom up; a module may import its own layer's folder and any lower one.
/// Modules on one rank (store/provider, observer/transport) do not import each other.
const LAYERS: [(&str, u8); 10] = [
    ("core", 0),
    ("store", 1),
    ("provider", 1),
    ("runtime", 2),
    ("chat", 3),
    ("tasks", 4),
    ("observer", 5),
    ("transport", 5),
    ("tree", 6),
    ("cli", 7),
];

/// Files that must stay pure: no async runtime, no actors, no network or file system.
const PURE_OUTSIDE_CORE: [&str; 6] = [
    "transport/telegram/html.rs",
    "transport/telegram/ingress.rs",
    "transport/telegram/live_message.rs",
    "transport/matrix/ingress.rs",
    "transport/matrix/text.rs",
    "provider/claude.rs",
];

const IMPURE: [&str; 10] = [
    "tokio::",
    "ractor::",
    "std::fs",
    "std::net",
    "std::process",
    "teloxide::",
    "matrix_sdk::",
    "warp::",
    "tokio::fs",
    "File::open",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source of a file without its unit-test module (tests may use what production may not).
fn production_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// `src/`-relative path of a file, with `/` separators.
fn relative(path: &Path) -> String {
    path.strip_prefix(Path::new(ROOT).join("src")).unwrap().to_string_lossy().replace('\\', "/")
}

fn layer_of(top: &str) -> Option<u8> {
    LAYERS.iter().find(|(name, _)| *name == top).map(|(_, rank)| *rank)
}

/// Every `crate::<module>` a piece of code names (in `use` lines and inline paths, grouped
/// imports included).
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `ductor_crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.insert(name);
        }
    }
    found
}

#[test]
fn imports_only_run_downward() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = relative(file);
        let Some((top, _)) = rel.split_once('/') else { continue }; // lib.rs, main.rs
        let Some(own) = layer_of(top) else {
            wrong.push(format!("{rel}: folder `{top}` is in no layer of src/lib.rs"));
            continue;
        };
        for module in crate_modules(&production_code(file)) {
            let Some(theirs) = layer_of(&module) else { continue };
            if module != top && theirs >= own {
                wrong.push(format!("{rel} (layer {top}) imports crate::{module}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that reach upward or sideways:\n{}", wrong.join("\n"));
}

#[test]
fn transports_never_import_each_other() {
    let transports = Path::new(ROOT).join("src/transport");
    let folders: Vec<String> = std::fs::read_dir(&transports)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(folders.contains(&"telegram".to_owned()) && folders.contains(&"matrix".to_owned()));
    let mut wrong = Vec::new();
    for own in &folders {
        let mut files = Vec::new();
        rust_files(&transports.join(own), &mut files);
        for file in files {
            let code = production_code(&file);
            for other in folders.iter().filter(|f| *f != own) {
                if code.contains(&format!("transport::{other}")) {
                    wrong.push(format!("{} imports transport::{other}", relative(&file)));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "transports importing each other:\n{}", wrong.join("\n"));
}

#[test]
fn pure_files_do_no_io() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src/core"), &mut files);
    files.extend(PURE_OUTSIDE_CORE.iter().map(|rel| Path::new(ROOT).join("src").join(rel)));
    let mut wrong = Vec::new();
    for file in &files {
        let code = production_code(file);
        for needle in IMPURE {
            if code.contains(needle) {
                wrong.push(format!("{} uses {needle}", relative(file)));
            }
        }
    }
    assert!(wrong.is_empty(), "pure files doing I/O:\n{}", wrong.join("\n"));
}

/// Source paths in a text: tokens ending in `.rs` (relative to `src/`) and folders named with
/// a trailing `/` under a layer (`transport/telegram/`).
fn named_paths(text: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for token in text.split(|c: char| !(c.is_alphanumeric() || "_/.-".contains(c))) {
        let token = token.trim_matches('.');
        let is_file = token.ends_with(".rs");
        let is_folder = token.ends_with('/') && token.matches('/').count() >= 2;
        let under_layer = token.split('/').next().is_some_and(|top| layer_of(top).is_some());
        if (is_file || is_folder) && under_layer {
            paths.insert(token.to_owned());
        }
    }
    paths
}

#[test]
fn every_source_path_actors_md_names_exists() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("actors.md")).unwrap();
    let paths = named_paths(&text);
    assert!(paths.len() >= 15, "actors.md names the files of the tree (found {})", paths.len());
    let missing: Vec<&String> = paths.iter().filter(|p| !Path::new(ROOT).join("src").join(p).exists()).collect();
    assert!(missing.is_empty(), "actors.md names source paths that do not exist: {missing:?}");
}

#[test]
fn the_path_finder_sees_what_it_should() {
    let found = named_paths("root  tree/root.rs, (+ turn.rs) and transport/telegram/ but not foo/bar.rs or a.rs.");
    assert_eq!(found, BTreeSet::from(["tree/root.rs".to_owned(), "transport/telegram/".to_owned()]));
    let modules = crate_modules("use crate::{core::x, store::y};\nlet a = crate::chat::z(); my_crate::tree::w");
    assert_eq!(modules, BTreeSet::from(["core".to_owned(), "store".to_owned(), "chat".to_owned()]));
}

//! Small file operations the workspace code shares: writing a file with a given mtime, reading
//! mtimes, telling symlinks apart, copying a tree with its inner symlinks.

use std::fs;
use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::store::atomic::{self, Durability, StoreError};

/// Writes `bytes` to `path` atomically (parents created) and stamps it with `mtime`.
pub(crate) fn write_with_mtime(path: &Utf8Path, bytes: &[u8], mtime: SystemTime) -> Result<(), StoreError> {
    atomic::write_bytes_atomic(path, bytes, Durability::NoFsync)?;
    set_mtime(path, mtime)
}

/// Sets the modification time of an existing file.
pub(crate) fn set_mtime(path: &Utf8Path, mtime: SystemTime) -> Result<(), StoreError> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(mtime))
        .map_err(|e| StoreError::io("set mtime of", path, e))
}

/// The modification time of `path` (following links), if it can be read.
pub(crate) fn mtime(path: &Utf8Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether `path` itself is a symlink.
pub(crate) fn is_symlink(path: &Utf8Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Whether anything (a file, a directory, a link — broken or not) is at `path`.
pub(crate) fn exists_at_all(path: &Utf8Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Whether `path` is a symlink whose target does not exist.
pub(crate) fn is_broken_symlink(path: &Utf8Path) -> bool {
    is_symlink(path) && fs::metadata(path).is_err()
}

/// Whether any directory between `base` (exclusive) and `path` (exclusive) is a symlink.
pub(crate) fn has_symlinked_parent(base: &Utf8Path, path: &Utf8Path) -> bool {
    let Ok(relative) = path.strip_prefix(base) else { return false };
    let mut current = base.to_owned();
    let mut parts: Vec<&str> = relative.iter().collect();
    parts.pop();
    parts.into_iter().any(|part| {
        current.push(part);
        is_symlink(&current)
    })
}

/// The entries of a directory as UTF-8 paths, sorted; non-UTF-8 names are skipped with a
/// warning. An unreadable directory gives an error.
pub(crate) fn read_dir_sorted(dir: &Utf8Path) -> std::io::Result<Vec<Utf8PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        match Utf8PathBuf::from_path_buf(entry.path()) {
            Ok(path) => out.push(path),
            Err(path) => {
                tracing::warn!(path = %path.display(), "Skipping a file name that is not UTF-8.");
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the directory `from` to `to` (which must not exist): files with their mtimes,
/// symlinks inside as symlinks.
pub(crate) fn copy_tree(from: &Utf8Path, to: &Utf8Path) -> Result<(), StoreError> {
    fs::create_dir_all(to).map_err(|e| StoreError::io("create directory", to, e))?;
    for entry in read_dir_sorted(from).map_err(|e| StoreError::io("list", from, e))? {
        let Some(name) = entry.file_name() else { continue };
        let target = to.join(name);
        let meta = fs::symlink_metadata(&entry).map_err(|e| StoreError::io("stat", &entry, e))?;
        if meta.file_type().is_symlink() {
            let link = fs::read_link(&entry).map_err(|e| StoreError::io("read link", &entry, e))?;
            std::os::unix::fs::symlink(&link, &target).map_err(|e| StoreError::io("create link", &target, e))?;
        } else if meta.is_dir() {
            copy_tree(&entry, &target)?;
        } else {
            fs::copy(&entry, &target).map_err(|e| StoreError::io("copy", &target, e))?;
            if let Ok(modified) = meta.modified() {
                set_mtime(&target, modified)?;
            }
        }
    }
    Ok(())
}

/// The newest mtime of anything under `dir` (the directory itself included; links not followed).
pub(crate) fn newest_mtime(dir: &Utf8Path) -> Option<SystemTime> {
    let mut newest = fs::symlink_metadata(dir).and_then(|m| m.modified()).ok();
    if let Ok(entries) = read_dir_sorted(dir) {
        for entry in entries {
            let Ok(meta) = fs::symlink_metadata(&entry) else { continue };
            let found = if meta.is_dir() { newest_mtime(&entry) } else { meta.modified().ok() };
            newest = newest.max(found);
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keep_links_and_mtimes() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let src = root.join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
        write_with_mtime(&src.join("sub/a.txt"), b"a", old).unwrap();
        std::os::unix::fs::symlink("sub/a.txt", src.join("link")).unwrap();
        copy_tree(&src, &root.join("dst")).unwrap();
        assert_eq!(fs::read_to_string(root.join("dst/sub/a.txt")).unwrap(), "a");
        assert_eq!(mtime(&root.join("dst/sub/a.txt")), Some(old));
        assert!(is_symlink(&root.join("dst/link")));
        assert_eq!(fs::read_to_string(root.join("dst/link")).unwrap(), "a");
        std::os::unix::fs::symlink(root.join("missing"), root.join("broken")).unwrap();
        assert!(is_broken_symlink(&root.join("broken")) && !is_broken_symlink(&root.join("dst/link")));
        std::os::unix::fs::symlink(&src, root.join("via")).unwrap();
        assert!(has_symlinked_parent(&root, &root.join("via/sub/a.txt")));
        assert!(!has_symlinked_parent(&root, &root.join("src/sub/a.txt")));
    }
}

//! Received files on disk (transports spec §5.5): a file is written into its dated folder
//! under a free name, and the folder's `_index.yaml` is rebuilt from what is there.

use camino::{Utf8Path, Utf8PathBuf};

use crate::core::incoming_file::{IndexedFile, destination, index_yaml, mime_for};
use crate::store::atomic::{Durability, write_bytes_atomic};

/// Writes `bytes` as `<base>/<date>/<name>` (a free variant of the name); returns the path.
pub fn save(base: &Utf8Path, date: &str, name: &str, bytes: &[u8]) -> std::io::Result<Utf8PathBuf> {
    let path = destination(base, date, name, |p| p.exists());
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(&path, bytes)?;
    Ok(path)
}

fn iso(time: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Rebuilds `<base>/_index.yaml` from the `YYYY-MM-DD` folders (skipping the index itself and
/// the agents' instruction files).
pub fn rebuild_index(base: &Utf8Path) -> std::io::Result<()> {
    let mut files = Vec::new();
    for folder in base.read_dir_utf8()?.filter_map(Result::ok) {
        let date = folder.file_name().to_owned();
        let is_date = date.len() == 10
            && date.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
        if !is_date || !folder.path().is_dir() {
            continue;
        }
        for entry in folder.path().read_dir_utf8()?.filter_map(Result::ok) {
            let name = entry.file_name().to_owned();
            if matches!(name.as_str(), "_index.yaml" | "CLAUDE.md" | "AGENTS.md") {
                continue;
            }
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            files.push(IndexedFile {
                date: date.clone(),
                mime: mime_for(entry.path()).to_owned(),
                size: meta.len(),
                received: meta.modified().map(iso).unwrap_or_default(),
                name,
            });
        }
    }
    files.sort_by(|a, b| (&a.date, &a.name).cmp(&(&b.date, &b.name)));
    let yaml = index_yaml(&files, &iso(std::time::SystemTime::now()));
    write_bytes_atomic(&base.join("_index.yaml"), yaml.as_bytes(), Durability::NoFsync).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_without_overwriting_and_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(dir.path().join("telegram_files")).unwrap();
        let first = save(&base, "2026-11-24", "a.pdf", b"one").unwrap();
        let second = save(&base, "2026-11-24", "a.pdf", b"two").unwrap();
        assert_eq!(second.file_name(), Some("a_1.pdf"));
        assert_eq!(std::fs::read(&first).unwrap(), b"one");
        std::fs::create_dir_all(base.join("not-a-date")).unwrap();
        rebuild_index(&base).unwrap();
        let yaml = std::fs::read_to_string(base.join("_index.yaml")).unwrap();
        assert!(yaml.contains("total_files: 2"), "{yaml}");
        assert!(yaml.contains("name: \"a_1.pdf\"") && yaml.contains("type: \"application/pdf\""), "{yaml}");
    }
}

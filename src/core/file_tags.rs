//! Files an answer sends (transports spec §5.4, §5.7, §2.10): `<file:PATH>` tags taken out of
//! the text (plain paths or `file:` URIs; the sandbox mount `/ductor/…` mapped to the home),
//! which roots `file_access` allows, whether a path is safe to send, and how a file is
//! uploaded. Pure except for resolving symlinks in [`is_safe`].

use camino::{Utf8Path, Utf8PathBuf};

/// How a file goes to the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    /// An image shown inline.
    Photo,
    /// A video.
    Video,
    /// An audio file.
    Audio,
    /// Anything else.
    Document,
}

/// The upload kind of a file by its extension (§2.10).
pub fn upload_kind(path: &Utf8Path) -> UploadKind {
    match path.extension().map(str::to_lowercase).as_deref() {
        Some("jpg" | "jpeg" | "png" | "gif" | "webp" | "bmp") => UploadKind::Photo,
        Some("mp4") => UploadKind::Video,
        Some("mp3" | "m4a") => UploadKind::Audio,
        _ => UploadKind::Document,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path a tag names: `file:` URIs decoded, `/ductor/…` mapped into `home`.
pub fn tag_path(payload: &str, home: &Utf8Path) -> Utf8PathBuf {
    let payload = payload.trim();
    let path = match payload.strip_prefix("file://") {
        Some(rest) => percent_decode(rest),
        None => match payload.strip_prefix("file:") {
            Some(rest) => percent_decode(rest),
            None => payload.to_owned(),
        },
    };
    match path.strip_prefix("/ductor/") {
        Some(inside) => home.join(inside),
        None => Utf8PathBuf::from(path),
    }
}

/// The text without its `<file:…>` tags (trimmed) and the paths they name, in order.
pub fn take_file_tags(text: &str, home: &Utf8Path) -> (String, Vec<Utf8PathBuf>) {
    let mut clean = String::with_capacity(text.len());
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<file:") {
        let after = &rest[start + "<file:".len()..];
        match after.find('>') {
            Some(end) if end > 0 => {
                clean.push_str(&rest[..start]);
                paths.push(tag_path(&after[..end], home));
                rest = &after[end + 1..];
            }
            _ => {
                clean.push_str(&rest[..start + "<file:".len()]);
                rest = after;
            }
        }
    }
    clean.push_str(rest);
    (clean.trim().to_owned(), paths)
}

/// The roots `file_access` allows (`None` = everything): `home` → the user's home,
/// `workspace` (and anything unknown) → the workspace.
pub fn allowed_roots(file_access: &str, user_home: &Utf8Path, workspace: &Utf8Path) -> Option<Vec<Utf8PathBuf>> {
    match file_access {
        "all" => None,
        "home" => Some(vec![user_home.to_owned()]),
        _ => Some(vec![workspace.to_owned()]),
    }
}

/// Whether a path may be sent: no NUL or control characters (newline aside), and, after
/// every symlink is resolved, inside one of the roots (`None` = no restriction).
pub fn is_safe(path: &Utf8Path, roots: Option<&[Utf8PathBuf]>) -> bool {
    if path.as_str().chars().any(|c| (c as u32) < 0x20 && c != '\n') {
        return false;
    }
    let Some(roots) = roots else { return true };
    let Ok(resolved) = std::fs::canonicalize(path) else { return false };
    roots.iter().filter_map(|root| std::fs::canonicalize(root).ok()).any(|root| resolved.starts_with(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_taken_out_in_order() {
        let home = Utf8Path::new("/home/a/.ductor");
        let (text, paths) = take_file_tags(
            "Here:\n<file:/tmp/a.png> and <file:file:///tmp/b%20c.pdf>\n<file:/ductor/workspace/x.txt>",
            home,
        );
        assert_eq!(text, "Here:\n and");
        assert_eq!(paths, ["/tmp/a.png", "/tmp/b c.pdf", "/home/a/.ductor/workspace/x.txt"]);
        assert_eq!(take_file_tags("no <file:> tag", home), ("no <file:> tag".to_owned(), vec![]));
    }

    #[test]
    fn upload_kinds() {
        assert_eq!(upload_kind(Utf8Path::new("a/B.PNG")), UploadKind::Photo);
        assert_eq!(upload_kind(Utf8Path::new("a.mp4")), UploadKind::Video);
        assert_eq!(upload_kind(Utf8Path::new("a.m4a")), UploadKind::Audio);
        assert_eq!(upload_kind(Utf8Path::new("a.pdf")), UploadKind::Document);
    }

    #[test]
    fn roots_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let workspace = base.join("workspace");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::write(workspace.join("in.txt"), "x").unwrap();
        std::fs::write(base.join("secret.txt"), "x").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), workspace.join("link.txt")).unwrap();
        let roots = allowed_roots("workspace", &base, &workspace);
        assert!(is_safe(&workspace.join("in.txt"), roots.as_deref()));
        assert!(!is_safe(&workspace.join("link.txt"), roots.as_deref()), "a symlink out of the workspace");
        assert!(!is_safe(&base.join("secret.txt"), roots.as_deref()));
        assert!(is_safe(&base.join("secret.txt"), allowed_roots("all", &base, &workspace).as_deref()));
        assert!(!is_safe(Utf8Path::new("/tmp/a\u{1}b"), None), "control characters");
        assert_eq!(allowed_roots("weird", &base, &workspace), Some(vec![workspace.clone()]));
    }
}

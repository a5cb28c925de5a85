//! Files an answer sends (transports spec §5.4, §5.7, §2.10): `<file:PATH>` tags taken out of
//! the text (plain paths or `file:` URIs; the sandbox mount `/ductor/…` mapped to the home),
//! which roots `file_access` allows, and how a file is uploaded. Whether a path is inside those
//! roots needs the file system: `crate::transport::file_access`.

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
}

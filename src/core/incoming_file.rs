//! Files a person sends (transports spec §2.9, §5.4, §5.5): the saved name of each kind of
//! media, name sanitising, the dated folder with `_1`, `_2`… on a collision, the MIME type
//! by extension, the `[INCOMING FILE]` prompt block, and the `_index.yaml` of a files folder.

use camino::{Utf8Path, Utf8PathBuf};

/// Telegram media kinds ductor takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A photo (the largest size).
    Photo,
    /// A document.
    Document,
    /// A voice message.
    Voice,
    /// An audio file.
    Audio,
    /// A video.
    Video,
    /// A round video note.
    VideoNote,
    /// A sticker.
    Sticker,
}

impl MediaKind {
    /// How a reply names it ("an image", …).
    pub fn described(self) -> &'static str {
        match self {
            Self::Photo => "an image",
            Self::Document => "a document",
            Self::Voice => "a voice message",
            Self::Audio => "an audio file",
            Self::Video => "a video",
            Self::VideoNote => "a video note",
            Self::Sticker => "a sticker",
        }
    }
}

/// A name made safe to save: `/ \ < > : " | ? *` and NUL → `_`, `__` collapsed, `_ . space`
/// stripped at both ends, at most 120 characters, `file` when nothing is left.
pub fn sanitize_name(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| if matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*' | '\0') { '_' } else { c })
        .collect();
    let mut collapsed = String::with_capacity(replaced.len());
    for c in replaced.chars() {
        if c == '_' && collapsed.ends_with('_') {
            continue;
        }
        collapsed.push(c);
    }
    let trimmed = collapsed.trim_matches(|c| matches!(c, '_' | '.' | ' '));
    let cut: String = trimmed.chars().take(120).collect();
    if cut.is_empty() { "file".to_owned() } else { cut }
}

/// The name a received file is saved under (§2.9).
pub fn saved_name(kind: MediaKind, unique_id: &str, original: Option<&str>, sticker_ext: &str) -> String {
    let original = original.map(sanitize_name).filter(|n| n != "file");
    match kind {
        MediaKind::Photo => format!("photo_{unique_id}.jpg"),
        MediaKind::Document => original.unwrap_or_else(|| format!("doc_{unique_id}")),
        MediaKind::Voice => format!("voice_{unique_id}.ogg"),
        MediaKind::Audio => original.unwrap_or_else(|| format!("audio_{unique_id}.mp3")),
        MediaKind::Video => original.unwrap_or_else(|| format!("video_{unique_id}.mp4")),
        MediaKind::VideoNote => format!("videonote_{unique_id}.mp4"),
        MediaKind::Sticker => format!("sticker_{unique_id}.{sticker_ext}"),
    }
}

/// `<base>/<date>/<name>`, with `_1`, `_2`… before the extension while `exists` says taken.
pub fn destination(base: &Utf8Path, date: &str, name: &str, exists: impl Fn(&Utf8Path) -> bool) -> Utf8PathBuf {
    let folder = base.join(date);
    let first = folder.join(name);
    if !exists(&first) {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (1..).map(|n| folder.join(format!("{stem}_{n}{ext}"))).find(|candidate| !exists(candidate)).unwrap_or(first)
}

/// The MIME type by extension (`application/octet-stream` when unknown).
pub fn mime_for(path: &Utf8Path) -> &'static str {
    match path.extension().map(str::to_lowercase).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("bmp") => "image/bmp",
        Some("ogg" | "oga") => "audio/ogg",
        Some("mp3") => "audio/mpeg",
        Some("m4a") => "audio/mp4",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("tgs") => "application/x-tgsticker",
        Some("pdf") => "application/pdf",
        Some("txt" | "md" | "log") => "text/plain",
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("js") => "application/javascript",
        Some("py") => "text/x-python",
        Some("ts") => "application/x-typescript",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// The prompt for a received file (§5.4). `shown` is the path relative to the workspace when
/// it lies inside, else absolute.
pub fn incoming_prompt(transport: &str, shown: &str, mime: &str, name: &str, caption: Option<&str>) -> String {
    let mut lines = vec![
        "[INCOMING FILE]".to_owned(),
        format!("The user sent you a file via {transport}."),
        format!("Path: {shown}"),
        format!("Type: {mime}"),
        format!("Original filename: {name}"),
        String::new(),
        "See tools/media_tools/CLAUDE.md for how to work with received files.".to_owned(),
    ];
    if mime.starts_with("audio/") {
        lines.push(format!("To transcribe it: python3 tools/media_tools/transcribe_audio.py --file {shown}"));
    } else if mime.starts_with("video/") {
        lines.push(format!("To process it: python3 tools/media_tools/process_video.py --file {shown}"));
    }
    let mut prompt = lines.join("\n");
    if let Some(caption) = caption.map(str::trim).filter(|c| !c.is_empty()) {
        prompt.push_str(&format!("\n\nUser message: {caption}"));
    }
    prompt
}

/// One file in `_index.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedFile {
    /// Its date folder (`YYYY-MM-DD`).
    pub date: String,
    /// File name.
    pub name: String,
    /// MIME type.
    pub mime: String,
    /// Bytes.
    pub size: u64,
    /// Modification time, ISO 8601 UTC.
    pub received: String,
}

fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// `_index.yaml` of a files folder (§5.5): files grouped by date folder.
pub fn index_yaml(files: &[IndexedFile], now: &str) -> String {
    let mut out = format!("last_updated: {}\ntotal_files: {}\ntree:\n", yaml_string(now), files.len());
    let mut dates: Vec<&str> = files.iter().map(|f| f.date.as_str()).collect();
    dates.sort_unstable();
    dates.dedup();
    if dates.is_empty() {
        out = out.replace("tree:\n", "tree: {}\n");
    }
    for date in dates {
        out.push_str(&format!("  {}:\n", yaml_string(date)));
        for file in files.iter().filter(|f| f.date == date) {
            out.push_str(&format!(
                "  - name: {}\n    type: {}\n    size: {}\n    received: {}\n",
                yaml_string(&file.name),
                yaml_string(&file.mime),
                file.size,
                yaml_string(&file.received)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised() {
        let name = sanitize_name("../../etc/pa:ss?wd");
        assert!(!name.contains(['/', ':', '?']) && !name.starts_with('.'), "{name}");
        assert_eq!(sanitize_name("  ..__  "), "file");
        assert_eq!(sanitize_name(&"x".repeat(300)).len(), 120);
        assert_eq!(saved_name(MediaKind::Photo, "AQAD", None, ""), "photo_AQAD.jpg");
        assert_eq!(saved_name(MediaKind::Document, "U1", Some("report final.pdf"), ""), "report final.pdf");
        assert_eq!(saved_name(MediaKind::Document, "U1", None, ""), "doc_U1");
        assert_eq!(saved_name(MediaKind::Sticker, "S", None, "tgs"), "sticker_S.tgs");
    }

    #[test]
    fn collisions_get_a_number_before_the_extension() {
        let base = Utf8Path::new("/w/telegram_files");
        let taken = ["/w/telegram_files/2026-11-24/a.pdf", "/w/telegram_files/2026-11-24/a_1.pdf"];
        let exists = |p: &Utf8Path| taken.contains(&p.as_str());
        assert_eq!(destination(base, "2026-11-24", "a.pdf", exists), "/w/telegram_files/2026-11-24/a_2.pdf");
        assert_eq!(destination(base, "2026-11-24", "b.pdf", exists), "/w/telegram_files/2026-11-24/b.pdf");
    }

    #[test]
    fn prompt_and_index() {
        let prompt = incoming_prompt(
            "Telegram",
            "telegram_files/2026-11-24/voice_U.ogg",
            "audio/ogg",
            "voice_U.ogg",
            Some("listen"),
        );
        assert!(prompt.starts_with("[INCOMING FILE]\nThe user sent you a file via Telegram.\nPath: telegram_files/"));
        assert!(prompt.contains("transcribe_audio.py --file telegram_files/2026-11-24/voice_U.ogg"));
        assert!(prompt.ends_with("\n\nUser message: listen"));
        assert_eq!(mime_for(Utf8Path::new("x.PNG")), "image/png");
        let files = vec![IndexedFile {
            date: "2026-11-24".into(),
            name: "a.pdf".into(),
            mime: "application/pdf".into(),
            size: 3,
            received: "2026-11-24T10:00:00+00:00".into(),
        }];
        let yaml = index_yaml(&files, "2026-11-24T10:00:01+00:00");
        assert!(yaml.starts_with("last_updated: \"2026-11-24T10:00:01+00:00\"\ntotal_files: 1\ntree:\n  \"2026-11-24\":\n  - name: \"a.pdf\""), "{yaml}");
        assert!(index_yaml(&[], "t").contains("tree: {}"));
    }
}

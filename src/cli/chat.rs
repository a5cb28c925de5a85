//! `ductor chat --url ws://HOST:PORT [--token …] [--chat-id N] [--channel-id N]`: talk to an
//! agent from another machine's terminal over the direct API (protocol v2). Typed lines are
//! messages; the answer streams as it is written; `/stop` stops the running turn (at once, on
//! the same socket); `/send PATH` uploads a file and sends its prompt; `/quit` or end of input
//! leaves. The token comes from `--token`, `DUCTOR_API_TOKEN`, or this home's `api.token`.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use crate::store::config_file::read_raw_config;
use crate::store::paths::DuctorPaths;
use crate::transport::api::client::{Login, connect};

/// The options of `ductor chat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Options {
    url: String,
    token: Option<String>,
    chat_id: Option<i64>,
    channel_id: Option<i64>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (word.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| words.next().cloned()).ok_or(format!("{flag} needs a value"));
        match flag {
            "--url" => options.url = value()?,
            "--token" => options.token = Some(value()?),
            "--chat-id" => options.chat_id = Some(value()?.parse().map_err(|_| "--chat-id takes a number")?),
            "--channel-id" => options.channel_id = Some(value()?.parse().map_err(|_| "--channel-id takes a number")?),
            "-v" | "--verbose" => {}
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.url.is_empty() {
        return Err("--url ws://HOST:PORT is required".to_owned());
    }
    Ok(options)
}

fn local_token(paths: &DuctorPaths) -> Option<String> {
    let raw = read_raw_config(&paths.config_file()).ok()?;
    raw.get("api")?.get("token")?.as_str().filter(|t| !t.is_empty()).map(str::to_owned)
}

/// Runs the client; returns the exit status.
pub async fn run(paths: &DuctorPaths, args: &[String]) -> i32 {
    let options = match parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!(
                "error: {e}\nusage: ductor chat --url ws://HOST:PORT [--token TOKEN] [--chat-id N] [--channel-id N]"
            );
            return 2;
        }
    };
    let token = options
        .token
        .clone()
        .or_else(|| std::env::var("DUCTOR_API_TOKEN").ok().filter(|t| !t.is_empty()))
        .or_else(|| local_token(paths))
        .unwrap_or_default();
    let login = Login { token: token.clone(), chat_id: options.chat_id, channel_id: options.channel_id };
    let (mut sender, mut receiver, auth_ok) = match connect(&options.url, &login).await {
        Ok(connected) => connected,
        Err(e) => {
            eprintln!("error: could not connect to {}: {e}", options.url);
            return 1;
        }
    };
    println!(
        "Connected to chat {} ({} {}). /stop stops a turn, /send PATH uploads a file, /quit leaves.",
        auth_ok["chat_id"],
        auth_ok["active_provider"].as_str().unwrap_or("?"),
        auth_ok["active_model"].as_str().unwrap_or("?"),
    );
    // Standard input is read by a thread of its own (lines arrive while an answer streams).
    let (typed, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if typed.send(line).is_err() {
                break;
            }
        }
    });
    let mut streamed = false;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let sent = if line.eq_ignore_ascii_case("/quit") {
                    break;
                } else if line.eq_ignore_ascii_case("/stop") {
                    sender.abort().await
                } else if let Some(path) = line.strip_prefix("/send ") {
                    match upload(&options.url, &token, path.trim()).await {
                        Ok(prompt) => sender.message(&prompt).await,
                        Err(e) => {
                            eprintln!("error: {e}");
                            continue;
                        }
                    }
                } else {
                    sender.message(line).await
                };
                if let Err(e) = sent {
                    eprintln!("error: {e}");
                    return 1;
                }
            }
            frame = receiver.next() => match frame {
                Ok(Some(frame)) => show(&frame, &mut streamed),
                Ok(None) => {
                    eprintln!("The server closed the connection.");
                    return 1;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return 1;
                }
            },
        }
    }
    sender.close().await;
    0
}

/// Prints one frame.
fn show(frame: &Value, streamed: &mut bool) {
    let data = frame["data"].as_str().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    match frame["type"].as_str().unwrap_or_default() {
        "text_delta" => {
            *streamed = true;
            let _ = write!(out, "{data}");
        }
        "tool_activity" => {
            let _ = writeln!(out, "\n[{data}]");
        }
        "system_status" if !data.is_empty() => {
            let _ = writeln!(out, "\n[{data}]");
        }
        "result" => {
            if frame["stopped"] == Value::Bool(true) {
                let _ = writeln!(out, "\n[stopped]");
            } else if *streamed {
                let _ = writeln!(out);
            } else {
                let _ = writeln!(out, "{}", frame["text"].as_str().unwrap_or_default());
            }
            for file in frame["files"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "[file: {}]", file["path"].as_str().unwrap_or_default());
            }
            *streamed = false;
        }
        "abort_ok" => {
            let _ = writeln!(out, "\n[stopped {} process(es)]", frame["killed"]);
        }
        "notification" => {
            let _ = writeln!(out, "\n{}", frame["text"].as_str().unwrap_or_default());
        }
        "error" => {
            let _ = writeln!(
                out,
                "\nerror: {}: {}",
                frame["code"].as_str().unwrap_or_default(),
                frame["message"].as_str().unwrap_or_default()
            );
        }
        _ => {}
    }
    let _ = out.flush();
}

/// Uploads a file to `/upload` of the server of `url`; returns the prompt to send.
async fn upload(url: &str, token: &str, path: &str) -> Result<String, String> {
    let bytes = tokio::fs::read(path).await.map_err(|e| format!("cannot read {path}: {e}"))?;
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest).split('/').next().unwrap_or_default();
    let (host, port) = authority.rsplit_once(':').ok_or("the URL needs a port")?;
    let port: u16 = port.parse().map_err(|_| "the URL's port is not a number")?;
    let name = std::path::Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or("file").replace('"', "");
    let boundary = format!("ductor-{:016x}", rand::random::<u64>());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let headers = vec![
        ("Authorization".to_owned(), format!("Bearer {token}")),
        ("Content-Type".to_owned(), format!("multipart/form-data; boundary={boundary}")),
    ];
    let answer = crate::cli::http::send(host, port, "POST", "/upload", &headers, &body, Duration::from_secs(120))
        .await
        .map_err(|e| format!("upload failed: {e}"))?;
    let value: Value = serde_json::from_str(&answer.body).map_err(|_| format!("upload failed: {}", answer.body))?;
    match (answer.status, value["prompt"].as_str()) {
        (200, Some(prompt)) => Ok(prompt.to_owned()),
        (status, _) => Err(format!("upload refused ({status}): {}", value["error"].as_str().unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let args: Vec<String> = ["--url", "ws://h:1", "--token=t", "--chat-id", "5"].map(String::from).to_vec();
        let parsed = parse(&args).unwrap();
        assert_eq!(parsed.url, "ws://h:1");
        assert_eq!(parsed.token.as_deref(), Some("t"));
        assert_eq!(parsed.chat_id, Some(5));
        assert!(parse(&[]).is_err());
        assert!(parse(&["--url".to_owned()]).is_err());
    }
}

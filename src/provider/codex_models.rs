//! Asks `codex app-server` which models it has (core spec §7.10): two JSON-RPC lines on
//! stdin (kept open), read stdout until the answer with `"id": 2`, then kill the process.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::core::model_cache::{CodexModel, discovery_requests, parse_model_list};

/// How long discovery may take.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why discovery found nothing.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// `codex` could not be started.
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("codex app-server did not answer within {0:?}")]
    Timeout(Duration),
    /// It ended without answering.
    #[error("codex app-server ended without a model list")]
    NoAnswer,
}

/// Runs the discovery with `program` (normally `codex`) and the given environment.
pub async fn discover(
    program: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<CodexModel>, DiscoveryError> {
    let mut child = tokio::process::Command::new(program)
        .arg("app-server")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DiscoveryError::Spawn { program: program.to_owned(), source })?;
    let mut stdin = child.stdin.take();
    if let Some(stdin) = stdin.as_mut() {
        let _ = stdin.write_all(discovery_requests().as_bytes()).await;
        let _ = stdin.flush().await;
    }
    let Some(stdout) = child.stdout.take() else { return Err(DiscoveryError::NoAnswer) };
    let read = async {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if message.get("id").and_then(serde_json::Value::as_i64) == Some(2) {
                return Ok(parse_model_list(&message));
            }
        }
        Err(DiscoveryError::NoAnswer)
    };
    let result = tokio::time::timeout(timeout, read).await.unwrap_or(Err(DiscoveryError::Timeout(timeout)));
    drop(stdin);
    let _ = child.start_kill();
    let _ = child.wait().await;
    result
}

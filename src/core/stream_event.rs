//! Provider-neutral stream events (core spec §7.2): what every CLI's output is parsed into.

use serde_json::Value;

/// Token usage of a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
}

impl Usage {
    /// `input + output` (cache fields ignored), as the original counts `total_tokens`.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// The final (or synthetic) result of a turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnResult {
    /// Provider session / thread id.
    pub session_id: Option<String>,
    /// The answer text, or the error text.
    pub result: String,
    /// Whether the turn failed.
    pub is_error: bool,
    /// The CLI's exit status, when known.
    pub returncode: Option<i32>,
    /// Wall time the CLI reported.
    pub duration_ms: Option<u64>,
    /// Cost the CLI reported.
    pub total_cost_usd: f64,
    /// Tokens.
    pub usage: Usage,
    /// Agent turns.
    pub num_turns: Option<u64>,
    /// HTTP status of a failed model API call, when the CLI reports it (claude).
    pub api_error_status: Option<u16>,
}

/// One event of a provider's output stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The session (thread) id is known.
    SystemInit {
        /// The id.
        session_id: String,
    },
    /// Answer text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// Reasoning text (may be empty: then only "thinking" is shown).
    Thinking {
        /// The text.
        text: String,
    },
    /// The CLI uses a tool.
    ToolUse {
        /// Tool name (`Bash`, `Edit`, `run_shell_command`, ...).
        name: String,
        /// Tool call id.
        id: Option<String>,
        /// Its input.
        parameters: Option<Value>,
    },
    /// A tool finished (gemini).
    ToolResult {
        /// Tool call id.
        id: String,
        /// `success` / `error`.
        status: String,
        /// Its output.
        output: String,
    },
    /// A status line (`compacting`, ...).
    SystemStatus {
        /// The status.
        status: String,
    },
    /// The CLI compacted its context.
    CompactBoundary {
        /// `auto` / `manual`.
        trigger: String,
        /// Tokens before compaction.
        pre_tokens: u64,
    },
    /// The result.
    Result(TurnResult),
}

//! The serialized defaults of `config.json`: the merge source of the load algorithm (ops spec
//! §2.1 step 4), in the key order and with the values the Python original writes.
//!
//! Divergence (ops spec §2.4 SHOULD): top-level keys are filled from real defaults, never from
//! placeholder values — the `api` block gets an empty token and `chat_id` 0, not
//! `YOUR_API_TOKEN`.

use serde_json::{Value, json};

/// The `_comment` text the original adds to every config file.
pub const COMMENT: &str = "Full example config showing all features. Copy to ~/.ductor/config/config.json and adjust.";

/// The default heartbeat prompt.
pub const HEARTBEAT_PROMPT: &str = "You are running as a background heartbeat check. Review the current workspace context:\n- Read memory_system/MAINMEMORY.md for user interests and personality\n- Check cron_tasks/ for active projects\n- Think about what might be useful, interesting, or fun for the user\n\nIf you have a creative idea, suggestion, interesting fact, or something the user might enjoy:\nReply with your message directly.\n\nIf nothing needs attention right now:\nReply exactly: HEARTBEAT_OK";

/// The default pre-compaction memory flush prompt.
pub const FLUSH_PROMPT: &str = "## PRE-COMPACTION MEMORY FLUSH\nThe conversation context is about to be compacted. Before that happens: review the recent conversation and APPEND any durable facts, decisions, preferences, or learnings to memory_system/MAINMEMORY.md that are not already captured there. Do NOT overwrite existing entries. If there is nothing new worth saving, reply exactly: FLUSH_NOOP";

/// The default memory reflection prompt.
pub const REFLECTION_PROMPT: &str = "## MEMORY REFLECTION\nReview the last several messages in this conversation.\nCheck: were there any new decisions, corrections, error solutions, user preferences, or important facts that you did NOT yet write to memory?\nIf yes -- update memory_system/MAINMEMORY.md silently.\nIf everything is already recorded -- do nothing.";

/// The default memory compaction prompt (`{preserve_days}`, `{target_lines}` placeholders).
pub const COMPACTION_PROMPT: &str = "## MEMORY COMPACTION\nmemory_system/MAINMEMORY.md has grown large. Rewrite it as follows:\n1. Preserve entries from the last {preserve_days} days verbatim.\n2. For older entries, cluster by topic and replace each cluster with ONE dense entry that preserves all key facts in fewer lines.\n3. Target size: roughly {target_lines} lines total.\n4. Do NOT delete facts -- only compress their expression.\nIf MAINMEMORY.md is already at or below {target_lines} lines, reply exactly: COMPACT_NOOP";

/// The placeholder text of the default (disabled) heartbeat group target.
pub const GROUP_TARGET_HINT: &str = "Replace chat_id with your group ID to enable this target.";

/// Every key with its default, in the order of a config file written by the original.
pub fn defaults_json() -> Value {
    json!({
        "_comment": COMMENT,
        "log_level": "INFO",
        "provider": "claude",
        "model": "opus",
        "language": "en",
        "ductor_home": "~/.ductor",
        "user_timezone": "",
        "update_check": true,
        "idle_timeout_minutes": 1440,
        "session_age_warning_hours": 12,
        "daily_reset_hour": 4,
        "daily_reset_enabled": false,
        "max_budget_usd": null,
        "max_turns": null,
        "max_session_messages": null,
        "permission_mode": "bypassPermissions",
        "cli_timeout": 1800.0,
        "reasoning_effort": "medium",
        "file_access": "all",
        "gemini_api_key": "null",
        "transport": "telegram",
        "transports": ["telegram"],
        "telegram_token": "",
        "allowed_user_ids": [],
        "allowed_group_ids": [],
        "group_mention_only": false,
        "matrix": {
            "homeserver": "",
            "user_id": "",
            "password": "",
            "access_token": "",
            "device_id": "",
            "allowed_rooms": [],
            "allowed_users": [],
            "store_path": "matrix_store"
        },
        "streaming": {
            "enabled": true,
            "min_chars": 200,
            "max_chars": 4000,
            "idle_ms": 800,
            "edit_interval_seconds": 2.0,
            "max_edit_failures": 3,
            "append_mode": false,
            "sentence_break": true,
            "show_reasoning_stream": false,
            "show_tool_progress": true,
            "show_thinking_indicator": true
        },
        "docker": {
            "enabled": false,
            "image_name": "ductor-sandbox",
            "container_name": "ductor-sandbox",
            "auto_build": true,
            "mount_host_cache": false,
            "mounts": [],
            "published_ports": [],
            "extras": []
        },
        "heartbeat": {
            "enabled": false,
            "interval_minutes": 30,
            "cooldown_minutes": 5,
            "quiet_start": 21,
            "quiet_end": 8,
            "prompt": HEARTBEAT_PROMPT,
            "ack_token": "HEARTBEAT_OK",
            "group_targets": [{
                "enabled": false,
                "chat_id": null,
                "topic_id": null,
                "prompt": GROUP_TARGET_HINT,
                "ack_token": null,
                "interval_minutes": null,
                "quiet_start": null,
                "quiet_end": null
            }]
        },
        "cleanup": {
            "enabled": true,
            "media_files_days": 30,
            "output_to_user_days": 30,
            "api_files_days": 30,
            "check_hour": 3
        },
        "webhooks": {
            "enabled": false,
            "host": "127.0.0.1",
            "port": 8742,
            "token": "",
            "max_body_bytes": 262_144,
            "rate_limit_per_minute": 30
        },
        "api": {
            "enabled": false,
            "host": "0.0.0.0",
            "port": 8741,
            "token": "",
            "chat_id": 0,
            "allow_public": false
        },
        "cli_parameters": {
            "claude": [],
            "codex": [],
            "gemini": [],
            "antigravity": []
        },
        "image": {
            "max_dimension": 2000,
            "output_format": "webp",
            "quality": 85
        },
        "scene": {
            "seen_reaction": false,
            "status_reaction": true,
            "technical_footer": false
        },
        "notifications": {
            "startup_targets": [],
            "upgrade_targets": []
        },
        "transcription": {
            "audio_command": "",
            "video_command": ""
        },
        "timeouts": {
            "normal": 1800.0,
            "background": 1800.0,
            "subagent": 3600.0,
            "warning_intervals": [60.0, 10.0],
            "extend_on_activity": true,
            "activity_extension": 120.0,
            "max_extensions": 3
        },
        "tasks": {
            "enabled": true,
            "max_parallel": 5,
            "timeout_seconds": 3600.0
        },
        "interagent_port": 8799,
        "memory_flush": {
            "enabled": true,
            "flush_prompt": FLUSH_PROMPT,
            "dedup_seconds": 300
        },
        "memory_reflection": {
            "enabled": false,
            "every_n_messages": 10,
            "prompt": REFLECTION_PROMPT
        },
        "memory_compaction": {
            "enabled": true,
            "trigger_lines": 70,
            "target_lines": 40,
            "preserve_recency_days": 14,
            "prompt": COMPACTION_PROMPT
        },
        "skills": {
            "sync_enabled": true,
            "sync": {
                "claude": true,
                "codex": true,
                "gemini": true
            }
        },
        "allowed_channel_ids": []
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python-home-0.18.2/home/config/config.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every key path and the JSON kind at it.
    fn shape(value: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Object(map) = value {
            for (key, child) in map {
                let path = format!("{prefix}{key}");
                shape(child, &format!("{path}."), out);
                out.push(path);
            }
        }
    }

    #[test]
    fn defaults_have_the_keys_and_order_of_a_python_written_file() {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        shape(&defaults_json(), "", &mut ours);
        shape(&fixture(), "", &mut theirs);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn default_values_match_except_the_users_own_and_the_placeholder_api() {
        let ours = defaults_json();
        let theirs = fixture();
        let user_keys = [
            "provider",
            "model",
            "user_timezone",
            "update_check",
            "telegram_token",
            "allowed_user_ids",
            "allowed_group_ids",
            "interagent_port",
            "api",
        ];
        for (key, value) in ours.as_object().unwrap() {
            if !user_keys.contains(&key.as_str()) {
                assert_eq!(value, &theirs[key], "default of {key}");
            }
        }
        assert_eq!(theirs["api"]["token"], "YOUR_API_TOKEN", "the original's placeholder");
        assert_eq!(ours["api"]["token"], "", "ours is empty");
    }

    #[test]
    fn floats_keep_their_point() {
        let text = serde_json::to_string(&defaults_json()).unwrap();
        assert!(text.contains("\"cli_timeout\":1800.0"));
        assert!(text.contains("\"warning_intervals\":[60.0,10.0]"));
    }
}

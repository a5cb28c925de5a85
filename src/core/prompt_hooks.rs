//! Prompt hooks (core spec §4.4): short blocks appended to the user's text in the chat's own
//! flow (not named sessions, heartbeats or injections), depending on the session's message
//! count before the turn. The texts are ductor's own words.

/// Reminder to keep the long-term memory current (every 6th message).
const MEMORY_CHECK: &str = "## MEMORY CHECK\nSilently review memory_system/MAINMEMORY.md, tools/user_tools and cron_tasks. Record anything durable you learned about the user or their projects. If something important is unclear, you may ask one short question.";

/// How to delegate long work (first message of a session).
const DELEGATION_BRIEF: &str = "## BACKGROUND TASKS\nWork that takes longer than about 30 seconds can run as a background task: create it with tools/task_tools/create_task.py (cancel or resume with the other task tools). Its result comes back to this chat; questions from a worker arrive as messages you answer here.";

/// Short reminder of the above (every 15th message).
const DELEGATION_REMINDER: &str =
    "## TASK REMINDER\nLong-running work belongs in a background task (tools/task_tools/create_task.py).";

/// The blocks to append, joined as the original joins them (`"\n\n"` between blocks).
pub fn suffixes(count_before: u64, is_new: bool, reflection: Option<(i64, &str)>) -> Vec<String> {
    let next = count_before + 1;
    let mut out = Vec::new();
    if next.is_multiple_of(6) {
        out.push(MEMORY_CHECK.to_owned());
    }
    if is_new {
        out.push(DELEGATION_BRIEF.to_owned());
    } else if next.is_multiple_of(15) {
        out.push(DELEGATION_REMINDER.to_owned());
    }
    if let Some((every, prompt)) = reflection
        && every > 0
        && next.is_multiple_of(every.unsigned_abs())
    {
        out.push(prompt.to_owned());
    }
    out
}

/// The prompt with its hooks.
pub fn with_hooks(prompt: &str, suffixes: &[String]) -> String {
    if suffixes.is_empty() { prompt.to_owned() } else { format!("{prompt}\n\n{}", suffixes.join("\n\n")) }
}

/// The "Active Agent Roster" block appended to a new session's system prompt when more than
/// one agent runs (core spec §4.2 step 3); `None` for a lone agent.
pub fn agent_roster(own: &str, agents: &[String]) -> Option<String> {
    let others: Vec<&String> = agents.iter().filter(|name| *name != own).collect();
    if others.is_empty() {
        return None;
    }
    let mut block = format!("## Active Agent Roster\n\nYou are the agent **{own}**. Other agents running now:\n");
    for name in others {
        block.push_str(&format!("- `{name}`\n"));
    }
    block.push_str(
        "\nTo ask one of them, run `python3 tools/agent_tools/ask_agent.py <name> \"<message>\"` (waits for the \
         answer) or `python3 tools/agent_tools/ask_agent_async.py <name> \"<message>\"` (the answer arrives later \
         in this chat).",
    );
    Some(block)
}

/// The text appended to a new session's system prompt: MAINMEMORY (when not blank), then the
/// agent roster (when there is one), separated by a blank line.
pub fn system_append(main_memory: Option<&str>, roster: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = [main_memory.filter(|m| !m.trim().is_empty()), roster].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_hooks_fire() {
        assert_eq!(suffixes(0, true, None).len(), 1, "a new session gets the brief");
        assert!(suffixes(0, true, None)[0].starts_with("## BACKGROUND TASKS"));
        assert!(suffixes(1, false, None).is_empty());
        assert!(suffixes(5, false, None)[0].starts_with("## MEMORY CHECK"));
        assert!(suffixes(14, false, None)[0].starts_with("## TASK REMINDER"));
        let both = suffixes(29, false, Some((10, "reflect")));
        assert_eq!(both.len(), 3, "6th, 15th and 10th multiples: 30");
        assert_eq!(with_hooks("hi", &[]), "hi");
        assert_eq!(with_hooks("hi", &["A".into(), "B".into()]), "hi\n\nA\n\nB");
    }

    #[test]
    fn roster_only_with_other_agents_and_after_main_memory() {
        assert_eq!(agent_roster("main", &["main".into()]), None);
        let roster = agent_roster("main", &["main".into(), "research".into()]).unwrap();
        assert!(roster.starts_with("## Active Agent Roster\n\nYou are the agent **main**."));
        assert!(roster.contains("- `research`\n") && !roster.contains("- `main`"));
        assert!(roster.contains("ask_agent.py") && roster.contains("ask_agent_async.py"));
        assert_eq!(system_append(Some("  \n"), None), None);
        assert_eq!(system_append(Some("# MEM"), Some("R")).as_deref(), Some("# MEM\n\nR"));
        assert_eq!(system_append(None, Some("R")).as_deref(), Some("R"));
    }
}

//! What a background task says and decides (core spec §8.2–8.3): the worker's prompt with its
//! TASK RULES suffix, the resume reminder, the seeded `TASKMEMORY.md`, the worker rule file,
//! how a finished run is classified, its result text, and the prompts injected into the
//! parent's session. Pure: the TaskHub (`tasks/hub.rs`) does the I/O.

use crate::core::state::tasks::TaskRecord;
use crate::core::stream_event::TurnResult;

/// Characters of the prompt kept in `prompt_preview`.
pub const PROMPT_PREVIEW_CHARS: usize = 80;
/// Characters of the result kept in `result_preview`.
pub const RESULT_PREVIEW_CHARS: usize = 200;
/// Characters of a question kept in `last_question`.
pub const QUESTION_PREVIEW_CHARS: usize = 200;
/// Characters of `TASKMEMORY.md` put into a result.
pub const MEMORY_CHARS: usize = 4000;
/// Characters of the prompt written into `TASKMEMORY.md`.
pub const MEMORY_PROMPT_CHARS: usize = 500;
/// The error of a task a restart cut off.
pub const INTERRUPTED_ERROR: &str = "interrupted by a restart: ductor stopped while the task ran";

/// The statuses of a task (`queued` is ductor-rs: waiting for a free slot under the limit).
pub mod status {
    /// Its CLI runs.
    pub const RUNNING: &str = "running";
    /// Waiting for a free slot (`tasks.max_parallel`).
    pub const QUEUED: &str = "queued";
    /// Finished.
    pub const DONE: &str = "done";
    /// Failed (error, timeout, restart).
    pub const FAILED: &str = "failed";
    /// Cancelled.
    pub const CANCELLED: &str = "cancelled";
    /// Asked its parent a question and waits to be resumed.
    pub const WAITING: &str = "waiting";
}

/// The first `limit` characters of `text`.
pub fn preview(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// `interactive`, `background` or `batch`; anything else is `background`.
pub fn priority(given: Option<&str>) -> &'static str {
    match given.map(str::trim) {
        Some("interactive") => "interactive",
        Some("batch") => "batch",
        _ => "background",
    }
}

/// The prompt a worker runs: the person's prompt and the mandatory TASK RULES suffix.
pub fn worker_prompt(prompt: &str, memory_path: &str) -> String {
    format!(
        "{prompt}\n\n---\nTASK RULES (background task — mandatory):\n\
         - You run as a background task. You cannot talk to the user; nobody reads your \
         intermediate output.\n\
         - If you need a decision or information, ask the agent that started you: \
         `python3 tools/task_tools/ask_parent.py \"<question>\"`, then finish what you can and \
         end your turn — you are resumed with the answer.\n\
         - Keep `{memory_path}` up to date: what you did, what you found, what is left.\n\
         - Your final answer is handed to the parent agent as the task's result."
    )
}

/// The prompt of a resumed run: the follow-up and a short reminder.
pub fn resume_prompt(follow_up: &str, memory_path: &str) -> String {
    format!(
        "{follow_up}\n\n---\nREMINDER: you are still a background task — no user access; ask with \
         `python3 tools/task_tools/ask_parent.py \"<question>\"`; keep `{memory_path}` up to date."
    )
}

/// The first content of `TASKMEMORY.md`.
pub fn memory_seed(name: &str, created: &str, provider: &str, model: &str, prompt: &str) -> String {
    format!(
        "# Task: {name}\n\nCreated: {created}\nProvider: {provider} / {model}\n\n## Task Description\n\n{}\n\n\
         ## Progress\n\n_(nothing yet — the worker writes its progress here)_\n",
        preview(prompt, MEMORY_PROMPT_CHARS)
    )
}

/// The worker rules (`CLAUDE.md`, `AGENTS.md`, `GEMINI.md` of a task folder, identical).
pub fn worker_rules(task_id: &str, memory_path: &str) -> String {
    format!(
        "# Background task `{task_id}`\n\n\
         You are a background worker. You have no access to the user.\n\n\
         - Questions go to the agent that started you: `python3 tools/task_tools/ask_parent.py \
         \"<question>\"`. Then finish what you can and end your turn; you are resumed with the \
         answer.\n\
         - Other task tools: `python3 tools/task_tools/list_tasks.py`, \
         `python3 tools/task_tools/cancel_task.py ID`, `python3 tools/task_tools/delete_task.py ID`.\n\
         - Keep your memory file up to date: `{memory_path}`.\n\
         - Your final answer is the task's result; the parent agent reviews it.\n"
    )
}

/// How a run ended, as recorded in the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// `done`, `failed`, `cancelled` or `waiting`.
    pub status: &'static str,
    /// The error (empty unless failed).
    pub error: String,
}

/// Classifies a finished run (core spec §8.3): timed out → failed; cancelled (by the hub, or
/// exit status 143/137/−15/−9) → cancelled; another error → failed with the result text;
/// otherwise waiting when a question was asked during the run, else done.
pub fn classify(result: &TurnResult, cancelled: bool, asked: bool, timeout_seconds: f64) -> Classified {
    let failed = |error: String| Classified { status: status::FAILED, error };
    if result.result.starts_with("__TIMEOUT__") {
        return failed(format!("timeout after {timeout_seconds:.0} s"));
    }
    if cancelled || (result.is_error && matches!(result.returncode, Some(143 | 137 | -15 | -9))) {
        return Classified { status: status::CANCELLED, error: String::new() };
    }
    if result.is_error {
        let text = result.result.trim();
        return failed(if text.is_empty() { "CLI error".to_owned() } else { text.to_owned() });
    }
    let status = if asked { status::WAITING } else { status::DONE };
    Classified { status, error: String::new() }
}

/// The result text of a `done` / `cancelled` / `waiting` run: the answer, then the task memory
/// (at most [`MEMORY_CHARS`]; longer → cut with a note) and, for `done` with a session, how to
/// resume.
pub fn result_text(answer: &str, memory_path: &str, memory: &str, task_id: &str, resumable: bool) -> String {
    let total = memory.chars().count();
    let memory_part = if total > MEMORY_CHARS {
        format!(
            "{}\n\n[... TASKMEMORY.md cut: {total} characters in all — read {memory_path}]",
            preview(memory, MEMORY_CHARS)
        )
    } else {
        memory.to_owned()
    };
    let mut text = format!("{}\n\n---\nTASKMEMORY ({memory_path}):\n{}", answer.trim(), memory_part.trim());
    if resumable {
        text.push_str(&format!(
            "\n\nTo continue this task with its context: python3 tools/task_tools/resume_task.py {task_id} \"<follow-up>\""
        ));
    }
    text
}

fn name_of(task: &TaskRecord) -> &str {
    if task.name.is_empty() { &task.task_id } else { &task.name }
}

/// The prompt injected into the parent's session when a task is done.
pub fn completed_prompt(task: &TaskRecord, result: &str, elapsed_seconds: f64) -> String {
    let model = if task.model.is_empty() { "default" } else { &task.model };
    format!(
        "[BACKGROUND TASK COMPLETED — task_id {id}, name \"{name}\", {provider}/{model}, {elapsed:.0}s]\n\n\
         {result}\n\n[END TASK RESULT]\n\nOriginal task:\n{original}\n\n\
         Review this result critically. If it is incomplete or wrong, continue the task with \
         `python3 tools/task_tools/resume_task.py {id} \"<follow-up>\"`; otherwise summarise it \
         for the user.",
        id = task.task_id,
        name = name_of(task),
        provider = task.provider,
        elapsed = elapsed_seconds.max(0.0),
        original = task.text("original_prompt"),
    )
}

/// The prompt injected into the parent's session when a task failed.
pub fn failed_prompt(task: &TaskRecord, error: &str) -> String {
    format!(
        "[BACKGROUND TASK FAILED — task_id {id}, name \"{name}\"]\n\nError: {error}\n\n\
         Original task:\n{original}\n\nInform the user that the task failed and suggest next steps.",
        id = task.task_id,
        name = name_of(task),
        original = task.text("original_prompt"),
    )
}

/// The prompt injected into the parent's session when a worker asks something.
pub fn question_prompt(task: &TaskRecord, question: &str) -> String {
    format!(
        "{question}\n\n(Question from background task `{id}` \"{name}\". Answer it — ask the user first \
         if you cannot — and send the answer with `python3 tools/task_tools/resume_task.py {id} \
         \"<answer>\"`.)",
        id = task.task_id,
        name = name_of(task),
    )
}

/// What the worker is told after asking.
pub fn question_ack(task_id: &str) -> String {
    format!(
        "Question forwarded to the parent agent. Finish your current work, update TASKMEMORY.md and end \
         your turn: task {task_id} is resumed with the answer."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(text: &str, is_error: bool, code: Option<i32>) -> TurnResult {
        TurnResult { result: text.into(), is_error, returncode: code, ..TurnResult::default() }
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&result("ok", false, Some(0)), false, false, 10.0).status, "done");
        assert_eq!(classify(&result("ok", false, Some(0)), false, true, 10.0).status, "waiting");
        assert_eq!(classify(&result("", true, Some(143)), false, false, 10.0).status, "cancelled");
        assert_eq!(classify(&result("x", false, Some(0)), true, false, 10.0).status, "cancelled");
        let timeout = classify(&result("__TIMEOUT__10", true, None), false, false, 10.0);
        assert_eq!((timeout.status, timeout.error.as_str()), ("failed", "timeout after 10 s"));
        let failed = classify(&result("", true, Some(1)), false, false, 10.0);
        assert_eq!((failed.status, failed.error.as_str()), ("failed", "CLI error"));
    }

    #[test]
    fn result_text_carries_memory_and_cuts_long_memory() {
        let text = result_text("answer", "/t/TASKMEMORY.md", "notes", "abcd1234", true);
        assert!(text.starts_with("answer\n\n---\nTASKMEMORY (/t/TASKMEMORY.md):\nnotes"));
        assert!(text.contains("resume_task.py abcd1234"));
        let long = "x".repeat(5000);
        let text = result_text("a", "/m", &long, "id", false);
        assert!(text.contains("5000 characters in all"));
        assert!(!text.contains("resume_task.py"));
    }

    #[test]
    fn prompt_ends_with_rules_naming_the_memory() {
        let prompt = worker_prompt("do it", "/h/TASKMEMORY.md");
        assert!(prompt.starts_with("do it\n\n---\nTASK RULES"));
        assert!(prompt.contains("/h/TASKMEMORY.md"));
        assert_eq!(priority(Some("weird")), "background");
        assert_eq!(priority(Some("interactive")), "interactive");
    }
}

//! What `ductor status` shows (ops spec §18.2), as data and as text. Gathering the data is I/O
//! and lives in the CLI; this module only renders.

use serde::Serialize;

use crate::core::health::{ActorKind, ActorNode, ActorStatus, render_tree};

/// Whether and how the service runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Running {
    /// Its PID.
    pub pid: i32,
    /// Seconds since it started (pid file mtime).
    pub uptime_s: u64,
}

/// One row of the sub-agent table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubAgentRow {
    /// Agent name.
    pub name: String,
    /// Live status, or `—` when the service is not running.
    pub status: String,
    /// Live uptime text, or `—`.
    pub uptime: String,
    /// Provider, or `inherited`.
    pub provider: String,
    /// Model, or `inherited`.
    pub model: String,
}

/// A cron job in the panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CronRow {
    /// Job id.
    pub id: String,
    /// `active` or `paused`.
    pub state: String,
    /// Its schedule.
    pub schedule: String,
    /// Its next fire in its zone (`Fri 05 Dec 09:00 CET`), `invalid schedule`, or `—` when paused.
    pub next: String,
}

/// The paths block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusPaths {
    /// The home.
    pub home: String,
    /// `config/config.json`.
    pub config: String,
    /// `workspace/`.
    pub workspace: String,
    /// `logs/`.
    pub logs: String,
    /// `sessions.json`.
    pub sessions: String,
}

/// Everything the status command shows for a configured home.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    /// Agent name of the panel (`main`).
    pub agent: String,
    /// Running state; `None` = not running.
    pub running: Option<Running>,
    /// Provider from the config.
    pub provider: String,
    /// Model from the config.
    pub model: String,
    /// Docker sandbox container, when enabled.
    pub docker: Option<String>,
    /// `[ERROR]` lines in `logs/agent.log`.
    pub errors: usize,
    /// Messages received and not yet answered (the agent's inbox).
    pub inbox: usize,
    /// Paths.
    pub paths: StatusPaths,
    /// Sub-agents from `agents.json`.
    pub sub_agents: Vec<SubAgentRow>,
    /// Cron jobs from `cron_jobs.json`.
    pub cron_jobs: Vec<CronRow>,
    /// The live actor tree (running service only).
    pub actors: Option<ActorNode>,
    /// Why the tree is missing although the service runs.
    pub actors_error: Option<String>,
    /// When the running service last applied `config.json`, and what waits for a restart.
    pub config_applied: Option<ConfigApplied>,
}

/// The config the running service applied (`<home>/config_applied.json`, written at start and at
/// each hot reload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ConfigApplied {
    /// When it was last applied (UTC, RFC 3339).
    pub applied_at: String,
    /// Keys changed in the file that only a restart applies.
    #[serde(default)]
    pub waiting_for_restart: Vec<String>,
    /// Why the file as it is now was not applied (invalid JSON or value), if so.
    #[serde(default)]
    pub rejected: Option<String>,
}

/// Transports of the live tree that are not `running` (`Telegram reconnecting`).
pub fn transport_troubles(root: &ActorNode) -> Vec<String> {
    fn walk(node: &ActorNode, out: &mut Vec<String>) {
        if node.kind == ActorKind::Transport && node.status != ActorStatus::Running && node.name != "internal_api" {
            let mut name = node.name.clone();
            if let Some(first) = name.get(..1).map(str::to_uppercase) {
                name.replace_range(..1, &first);
            }
            out.push(format!("{name} {}", node.status.as_str()));
        }
        for child in &node.children {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

/// `<H>h <M>m`.
pub fn uptime_hm(seconds: u64) -> String {
    format!("{}h {}m", seconds / 3600, (seconds % 3600) / 60)
}

/// Renders the status panel, the sub-agent table and the `Actors:` tree.
pub fn render(view: &StatusView) -> String {
    let mut out = String::from("\n");
    out.push_str(&format!("Status — {}\n", view.agent));
    match &view.running {
        Some(r) => {
            out.push_str(&format!("Running  pid={}  uptime: {}\n", r.pid, uptime_hm(r.uptime_s)));
            for trouble in view.actors.as_ref().map(transport_troubles).unwrap_or_default() {
                out.push_str(&format!("  running, {trouble}\n"));
            }
        }
        None => out.push_str("Not running\n"),
    }
    out.push_str(&format!("Provider:  {} ({})\n", view.provider, view.model));
    match &view.docker {
        Some(container) => out.push_str(&format!("Docker:    enabled ({container})\n")),
        None => out.push_str("Docker:    disabled\n"),
    }
    if view.errors == 0 {
        out.push_str("Errors:    0\n");
    } else {
        out.push_str(&format!("Errors:    {} in latest log\n", view.errors));
    }
    out.push_str(&format!("Inbox:     {} waiting\n", view.inbox));
    if let (Some(_), Some(applied)) = (&view.running, &view.config_applied) {
        out.push_str(&format!("Config:    applied {}\n", applied.applied_at));
        if !applied.waiting_for_restart.is_empty() {
            out.push_str(&format!("  waits for a restart: {}\n", applied.waiting_for_restart.join(", ")));
        }
        if let Some(why) = &applied.rejected {
            out.push_str(&format!("  the file as it is now is not applied: {why}\n"));
        }
    }
    out.push_str("\nPaths:\n");
    let p = &view.paths;
    for (label, value) in [
        ("Home", &p.home),
        ("Config", &p.config),
        ("Workspace", &p.workspace),
        ("Logs", &p.logs),
        ("Sessions", &p.sessions),
    ] {
        out.push_str(&format!("  {:<11}{value}\n", format!("{label}:")));
    }
    if !view.sub_agents.is_empty() {
        out.push_str(&format!("\nSub-Agents ({})\n", view.sub_agents.len()));
        out.push_str(&format!("  {:<16}{:<12}{:<10}{:<12}{}\n", "Agent", "Status", "Uptime", "Provider", "Model"));
        for row in &view.sub_agents {
            out.push_str(&format!(
                "  {:<16}{:<12}{:<10}{:<12}{}\n",
                row.name, row.status, row.uptime, row.provider, row.model
            ));
        }
    }
    if !view.cron_jobs.is_empty() {
        out.push_str(&format!("\nCron jobs ({})\n", view.cron_jobs.len()));
        out.push_str(&format!("  {:<20}{:<8}{:<18}{}\n", "Job", "State", "Schedule", "Next fire"));
        for row in &view.cron_jobs {
            out.push_str(&format!("  {:<20}{:<8}{:<18}{}\n", row.id, row.state, row.schedule, row.next));
        }
    }
    if view.running.is_some() {
        match (&view.actors, &view.actors_error) {
            (Some(root), _) => {
                out.push_str("\nActors:\n");
                for line in render_tree(root).lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            (None, _) => out.push_str("\nActors: unavailable\n"),
        }
    }
    out
}

/// The panel for a home that is not configured: what is missing, the file, the two keys a
/// minimal Telegram config needs, the sample, and how to set it up without typing JSON.
pub fn render_not_configured(home: &str, config_file: &str, missing: &[String]) -> String {
    let mut out = format!("\nductor is not configured ({home}).\n");
    for item in missing {
        out.push_str(&format!("  - {item}\n"));
    }
    out.push_str(&format!(
        "A minimal Telegram config is {config_file} with two keys:\n  \
         {{\"telegram_token\": \"<token from @BotFather>\", \"allowed_user_ids\": [<your Telegram user id>]}}\n\
         An annotated sample is config-samples/config.json in the ductor sources.\n\
         Or let ductor write it: `ductor onboarding` on a terminal (the setup wizard), or\n  \
         ductor onboarding --telegram-token <TOKEN> --allowed-user <ID>\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> StatusView {
        StatusView {
            agent: "main".into(),
            running: Some(Running { pid: 42, uptime_s: 3 * 3600 + 7 * 60 }),
            provider: "claude".into(),
            model: "opus".into(),
            docker: None,
            errors: 0,
            inbox: 2,
            paths: StatusPaths {
                home: "/h".into(),
                config: "/h/config/config.json".into(),
                workspace: "/h/workspace".into(),
                logs: "/h/logs".into(),
                sessions: "/h/sessions.json".into(),
            },
            sub_agents: vec![],
            cron_jobs: vec![CronRow {
                id: "daily-report".into(),
                state: "active".into(),
                schedule: "0 9 * * 1-5".into(),
                next: "Mon 07 Dec 09:00 CET".into(),
            }],
            actors: Some(ActorNode {
                name: "root".into(),
                kind: ActorKind::Supervisor,
                status: ActorStatus::Running,
                restarts: 0,
                uptime_s: 5.0,
                last_failure: None,
                children: vec![],
            }),
            actors_error: None,
            config_applied: Some(ConfigApplied {
                applied_at: "2026-12-04T10:00:00Z".into(),
                waiting_for_restart: vec!["webhooks".into()],
                rejected: None,
            }),
        }
    }

    #[test]
    fn panel_has_the_documented_lines() {
        let text = render(&view());
        assert!(text.contains("Status — main\n"));
        assert!(text.contains("Running  pid=42  uptime: 3h 7m\n"));
        assert!(text.contains("Provider:  claude (opus)\n"));
        assert!(text.contains("Docker:    disabled\n"));
        assert!(text.contains("Errors:    0\n"));
        assert!(text.contains("Inbox:     2 waiting\n"));
        assert!(text.contains("  Home:      /h\n"));
        assert!(text.contains("  Sessions:  /h/sessions.json\n"));
        assert!(text.contains("\nActors:\n  root (supervisor)  running  up 5s\n"));
        assert!(text.contains("\nCron jobs (1)\n"), "{text}");
        assert!(text.contains("Config:    applied 2026-12-04T10:00:00Z\n  waits for a restart: webhooks\n"), "{text}");
        assert!(text.contains("  daily-report        active  0 9 * * 1-5       Mon 07 Dec 09:00 CET\n"), "{text}");
    }

    #[test]
    fn missing_tree_says_unavailable_and_not_running_shows_no_tree() {
        let mut v = view();
        v.actors = None;
        v.actors_error = Some("refused".into());
        assert!(render(&v).contains("Actors: unavailable"));
        v.running = None;
        let text = render(&v);
        assert!(text.contains("Not running\n"));
        assert!(!text.contains("Actors"));
    }

    #[test]
    fn a_transport_that_is_not_running_is_named_under_running() {
        let mut v = view();
        if let Some(root) = v.actors.as_mut() {
            root.children.push(ActorNode {
                name: "telegram".into(),
                kind: ActorKind::Transport,
                status: ActorStatus::Reconnecting,
                restarts: 1,
                uptime_s: 1.0,
                last_failure: None,
                children: vec![],
            });
        }
        let text = render(&v);
        assert!(text.contains("uptime: 3h 7m\n  running, Telegram reconnecting\n"), "{text}");
    }

    #[test]
    fn not_configured_names_the_file_the_two_keys_and_the_sample() {
        let text = render_not_configured("/h", "/h/config/config.json", &["telegram_token is empty".into()]);
        assert!(text.contains("/h/config/config.json"), "{text}");
        assert!(text.contains("\"telegram_token\"") && text.contains("\"allowed_user_ids\""), "{text}");
        assert!(text.contains("config-samples/config.json"), "{text}");
        assert!(!text.contains("Run `ductor`"), "{text}");
    }
}

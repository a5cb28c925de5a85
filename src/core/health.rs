//! Health of the actor tree: records kept per actor, the tree served by
//! `GET /interagent/actors` (ops spec §18.2) and the uptime text of `/interagent/health`.

use serde::{Deserialize, Serialize};

/// What an actor is, as shown in `ductor status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A supervisor (Root).
    Supervisor,
    /// An agent (main or a sub-agent's stack).
    Agent,
    /// A transport (telegram, matrix, api) or the internal API.
    Transport,
    /// An observer (cron, webhook, heartbeat, ...).
    Observer,
    /// The Envelope bus.
    Bus,
    /// A chat session (`tg:<chat>[:<topic>]`).
    Session,
    /// A provider run or session.
    Provider,
    /// A sub-agent.
    Subagent,
    /// A background task.
    Task,
}

/// Lifecycle state of an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorStatus {
    /// Being built.
    Starting,
    /// Up.
    Running,
    /// Up but its network peer is away; retrying by itself.
    Reconnecting,
    /// Crashed; a restart is scheduled.
    Restarting,
    /// Crashed and given up.
    Crashed,
    /// Stopped.
    Stopped,
}

impl ActorStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Reconnecting => "reconnecting",
            Self::Restarting => "restarting",
            Self::Crashed => "crashed",
            Self::Stopped => "stopped",
        }
    }
}

/// One node of the live actor tree (`{"root": Node}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorNode {
    /// Readable name: `root`, `main`, `bus`, `telegram`, `tg:<chat>`, `claude`, ...
    pub name: String,
    /// What it is.
    pub kind: ActorKind,
    /// Its state.
    pub status: ActorStatus,
    /// Restarts since the process started.
    pub restarts: u32,
    /// Seconds since its last start (0 when not running).
    pub uptime_s: f64,
    /// Its last failure, if any (ductor-rs addition; old readers ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Its children.
    #[serde(default)]
    pub children: Vec<ActorNode>,
}

impl ActorNode {
    /// Depth-first search by name.
    pub fn find(&self, name: &str) -> Option<&ActorNode> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|child| child.find(name))
    }
}

/// Uptime text of the original: `<60 s "Ns"`, `<1 h "Nm"`, `<24 h "N.Nh"`, else `"N.Nd"`.
pub fn uptime_text(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 60.0 {
        format!("{}s", seconds.floor())
    } else if seconds < 3600.0 {
        format!("{}m", (seconds / 60.0).floor())
    } else if seconds < 86_400.0 {
        format!("{:.1}h", seconds / 3600.0)
    } else {
        format!("{:.1}d", seconds / 86_400.0)
    }
}

/// Renders the tree for `ductor status`: one line per node, indented by depth:
/// name, kind, status, uptime, and restarts when > 0.
pub fn render_tree(root: &ActorNode) -> String {
    let mut out = String::new();
    render_node(root, "", true, true, &mut out);
    out
}

fn render_node(node: &ActorNode, prefix: &str, is_last: bool, is_root: bool, out: &mut String) {
    let branch = if is_root {
        ""
    } else if is_last {
        "└─ "
    } else {
        "├─ "
    };
    let mut line = format!("{prefix}{branch}{} ({})  {}", node.name, kind_text(node.kind), node.status.as_str());
    if node.status == ActorStatus::Running || node.status == ActorStatus::Reconnecting {
        line.push_str(&format!("  up {}", uptime_text(node.uptime_s)));
    }
    if node.restarts > 0 {
        line.push_str(&format!("  restarts: {}", node.restarts));
    }
    if let Some(failure) = &node.last_failure {
        let short: String = failure.chars().take(80).collect();
        line.push_str(&format!("  last failure: {short}"));
    }
    out.push_str(line.trim_end());
    out.push('\n');
    let child_prefix = if is_root {
        String::new()
    } else if is_last {
        format!("{prefix}   ")
    } else {
        format!("{prefix}│  ")
    };
    for (i, child) in node.children.iter().enumerate() {
        render_node(child, &child_prefix, i + 1 == node.children.len(), false, out);
    }
}

fn kind_text(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Supervisor => "supervisor",
        ActorKind::Agent => "agent",
        ActorKind::Transport => "transport",
        ActorKind::Observer => "observer",
        ActorKind::Bus => "bus",
        ActorKind::Session => "session",
        ActorKind::Provider => "provider",
        ActorKind::Subagent => "subagent",
        ActorKind::Task => "task",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, kind: ActorKind, children: Vec<ActorNode>) -> ActorNode {
        ActorNode {
            name: name.into(),
            kind,
            status: ActorStatus::Running,
            restarts: 0,
            uptime_s: 75.0,
            last_failure: None,
            children,
        }
    }

    #[test]
    fn uptime_text_matches_the_original() {
        assert_eq!(uptime_text(45.2), "45s");
        assert_eq!(uptime_text(12.0 * 60.0 + 5.0), "12m");
        assert_eq!(uptime_text(3.5 * 3600.0), "3.5h");
        assert_eq!(uptime_text(2.1 * 86_400.0), "2.1d");
    }

    #[test]
    fn tree_renders_one_indented_line_per_node() {
        let mut bus = node("bus", ActorKind::Bus, vec![]);
        bus.restarts = 2;
        let tree = node(
            "root",
            ActorKind::Supervisor,
            vec![node("internal_api", ActorKind::Transport, vec![]), node("main", ActorKind::Agent, vec![bus])],
        );
        let text = render_tree(&tree);
        assert_eq!(
            text,
            "root (supervisor)  running  up 1m\n\
             ├─ internal_api (transport)  running  up 1m\n\
             └─ main (agent)  running  up 1m\n   \
             └─ bus (bus)  running  up 1m  restarts: 2\n"
        );
    }

    #[test]
    fn node_json_has_the_documented_shape() {
        let json = serde_json::to_value(node("root", ActorKind::Supervisor, vec![])).unwrap();
        for key in ["name", "kind", "status", "restarts", "uptime_s", "children"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["kind"], "supervisor");
    }
}

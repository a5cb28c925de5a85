//! The agents this process runs, by name, with what the rest of the service needs to reach
//! them: home, config, Bus and Orchestrator handles (both survive restarts of their actors).
//! The composition registers an agent when it starts it and removes it when it stops it; the
//! internal API, the inter-agent messaging and the TaskHub look agents up here.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::chat::orchestrator::OrchestratorHandle;
use crate::core::config::Config;
use crate::runtime::bus::BusHandle;
use crate::store::paths::DuctorPaths;

/// The main agent's name.
pub const MAIN_AGENT: &str = "main";

/// One agent as others reach it.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    /// Its name (`main`, or a sub-agent's name from `agents.json`).
    pub name: String,
    /// Its home (`<main home>/agents/<name>` for a sub-agent).
    pub paths: DuctorPaths,
    /// Its effective config.
    pub config: Arc<Config>,
    /// Its Bus.
    pub bus: BusHandle,
    /// Its Orchestrator.
    pub orchestrator: OrchestratorHandle,
}

/// The directory; clones share it.
#[derive(Debug, Clone, Default)]
pub struct AgentDirectory {
    agents: Arc<RwLock<BTreeMap<String, AgentEntry>>>,
}

impl AgentDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an agent.
    pub fn register(&self, entry: AgentEntry) {
        self.agents.write().unwrap_or_else(PoisonError::into_inner).insert(entry.name.clone(), entry);
    }

    /// Removes an agent.
    pub fn remove(&self, name: &str) {
        self.agents.write().unwrap_or_else(PoisonError::into_inner).remove(name);
    }

    /// One agent.
    pub fn get(&self, name: &str) -> Option<AgentEntry> {
        self.agents.read().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    /// Every agent, by name.
    pub fn all(&self) -> Vec<AgentEntry> {
        self.agents.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// The names, sorted, `main` first.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.agents.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect();
        names.sort_by_key(|name| (name != MAIN_AGENT, name.clone()));
        names
    }

    /// The agent whose home is `home` (as written, else after resolving links).
    pub fn by_home(&self, home: &str) -> Option<AgentEntry> {
        let agents = self.all();
        if let Some(found) = agents.iter().find(|a| a.paths.home().as_str() == home) {
            return Some(found.clone());
        }
        let resolved = std::fs::canonicalize(home).ok()?;
        agents.into_iter().find(|a| std::fs::canonicalize(a.paths.home()).is_ok_and(|own| own == resolved))
    }
}

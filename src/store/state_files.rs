//! Typed access to the JSON state files of a home: load (a file that does not parse is moved
//! aside and defaults are used — see `atomic::load_json`) and save (atomic, Python's format).

use camino::Utf8PathBuf;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::state::agents::SubAgents;
use crate::core::state::chat_activity::ChatActivity;
use crate::core::state::cron_jobs::CronJobs;
use crate::core::state::inflight_turns::InflightTurns;
use crate::core::state::named_sessions::NamedSessions;
use crate::core::state::sessions::Sessions;
use crate::core::state::startup_state::StartupState;
use crate::core::state::tasks::TaskRegistry;
use crate::core::state::webhooks::Webhooks;
use crate::store::atomic::{self, Loaded, StoreError};
use crate::store::paths::DuctorPaths;

/// A JSON state file of the home.
pub trait StateFile: Serialize + DeserializeOwned + Default {
    /// Where it lives.
    fn path(paths: &DuctorPaths) -> Utf8PathBuf;

    /// Warnings gathered while reading (skipped entries), logged by [`StateFile::load`].
    fn read_warnings(&self) -> &[String] {
        &[]
    }

    /// Loads it; corrupt → moved aside with a warning ([`Loaded::Quarantined`]).
    fn load(paths: &DuctorPaths) -> Loaded<Self> {
        let path = Self::path(paths);
        let loaded = atomic::load_json::<Self>(&path);
        if let Loaded::Found(value) = &loaded {
            for warning in value.read_warnings() {
                tracing::warn!(path = %path, warning = %warning, "State file entry not usable.");
            }
        }
        loaded
    }

    /// Saves it atomically.
    fn save(&self, paths: &DuctorPaths) -> Result<(), StoreError> {
        atomic::write_json_atomic(&Self::path(paths), self)
    }
}

/// `impl StateFile` for a model: its path method on [`DuctorPaths`], and whether it gathers
/// read warnings.
macro_rules! state_file {
    ($model:ty, $path:ident) => {
        impl StateFile for $model {
            fn path(paths: &DuctorPaths) -> Utf8PathBuf {
                paths.$path()
            }
        }
    };
    ($model:ty, $path:ident, with_warnings) => {
        impl StateFile for $model {
            fn path(paths: &DuctorPaths) -> Utf8PathBuf {
                paths.$path()
            }
            fn read_warnings(&self) -> &[String] {
                &self.warnings
            }
        }
    };
}

state_file!(Sessions, sessions, with_warnings);
state_file!(NamedSessions, named_sessions);
state_file!(TaskRegistry, tasks, with_warnings);
state_file!(CronJobs, cron_jobs);
state_file!(Webhooks, webhooks);
state_file!(SubAgents, agents, with_warnings);
state_file!(ChatActivity, chat_activity);
state_file!(StartupState, startup_state);
state_file!(InflightTurns, inflight_turns);

/// What the start-up check found for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCheck {
    /// Present and readable.
    Ok,
    /// Not there (defaults).
    Missing,
    /// Moved aside to this path (defaults).
    Quarantined(Utf8PathBuf),
}

fn check<T: StateFile>(paths: &DuctorPaths) -> (Utf8PathBuf, FileCheck) {
    let result = match T::load(paths) {
        Loaded::Found(_) => FileCheck::Ok,
        Loaded::Missing => FileCheck::Missing,
        Loaded::Quarantined { moved_to, .. } => FileCheck::Quarantined(moved_to),
    };
    (T::path(paths), result)
}

/// Reads every state file once at start: a corrupt one is moved aside now (with a warning),
/// before anything could overwrite it.
pub fn check_all(paths: &DuctorPaths) -> Vec<(Utf8PathBuf, FileCheck)> {
    vec![
        check::<Sessions>(paths),
        check::<NamedSessions>(paths),
        check::<TaskRegistry>(paths),
        check::<CronJobs>(paths),
        check::<Webhooks>(paths),
        check::<SubAgents>(paths),
        check::<ChatActivity>(paths),
        check::<StartupState>(paths),
        check::<InflightTurns>(paths),
    ]
}

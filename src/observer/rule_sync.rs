//! The rule-sync observer (ops spec §4.4, §4.5): every few seconds (10 s in the service) it
//! gives every cron task folder the rule files it lacks, then copies the newest of each
//! folder's sibling rule files over the older ones — so an edit to `CLAUDE.md` reaches
//! `AGENTS.md` and `GEMINI.md` without a restart.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::store::paths::DuctorPaths;
use crate::store::workspace::{backfill_task_rules, sync_rule_files};

/// Messages of the rule-sync observer.
#[derive(Debug)]
pub enum RuleSyncMsg {
    /// Run the backfill and the sync now.
    Tick,
}

/// Construction arguments.
#[derive(Debug, Clone)]
pub struct RuleSyncArgs {
    /// The agent's home.
    pub paths: DuctorPaths,
    /// How often to run (10 s in the service).
    pub every: Duration,
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct RuleSync;

impl Actor for RuleSync {
    type Msg = RuleSyncMsg;
    type State = RuleSyncArgs;
    type Arguments = RuleSyncArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RuleSyncMsg>,
        args: RuleSyncArgs,
    ) -> Result<RuleSyncArgs, ActorProcessingErr> {
        myself.send_interval(args.every, || RuleSyncMsg::Tick);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RuleSyncMsg>,
        msg: RuleSyncMsg,
        state: &mut RuleSyncArgs,
    ) -> Result<(), ActorProcessingErr> {
        let RuleSyncMsg::Tick = msg;
        let paths = state.paths.clone();
        let run = tokio::task::spawn_blocking(move || {
            backfill_task_rules(&paths);
            sync_rule_files(&paths.workspace());
        });
        if let Err(e) = run.await {
            tracing::warn!(actor = "rule_sync", error = %e, "Rule sync run failed; trying again next time.");
        }
        Ok(())
    }
}

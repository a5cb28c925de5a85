//! The skill-sync observer (ops spec §4.6): every few seconds (30 s in the service) it shares
//! skills between the workspace's `skills/` and the CLIs' skill folders — symlinks on the host,
//! managed copies (`.ductor_managed`) when the CLIs run in Docker. When it stops it removes the
//! links it left in the CLIs' folders that point into the workspace, so no CLI keeps a skill
//! that only exists while ductor runs.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::core::config::model::SkillsConfig;
use crate::core::workspace::skills::SkillSyncMode;
use crate::store::paths::DuctorPaths;
use crate::store::workspace::{TemplateTree, WorkspaceEnv, bundled_skills, remove_ductor_links, sync_skills};

/// Messages of the skill-sync observer.
#[derive(Debug)]
pub enum SkillSyncMsg {
    /// Run a sync now.
    Tick,
    /// The `skills` config changed (hot reload); used from the next run on.
    Configure(SkillsConfig),
}

/// Construction arguments.
#[derive(Debug, Clone)]
pub struct SkillSyncArgs {
    /// The agent's home.
    pub paths: DuctorPaths,
    /// The user's home, Codex home and Gemini folder.
    pub env: WorkspaceEnv,
    /// `skills` of the config.
    pub skills: SkillsConfig,
    /// Links (host) or copies (Docker), fixed for the observer's life.
    pub mode: SkillSyncMode,
    /// How often to run (30 s in the service).
    pub every: Duration,
}

/// The observer actor.
#[derive(Debug, Default)]
pub struct SkillSync;

impl Actor for SkillSync {
    type Msg = SkillSyncMsg;
    type State = SkillSyncArgs;
    type Arguments = SkillSyncArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SkillSyncMsg>,
        args: SkillSyncArgs,
    ) -> Result<SkillSyncArgs, ActorProcessingErr> {
        myself.send_interval(args.every, || SkillSyncMsg::Tick);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SkillSyncMsg>,
        msg: SkillSyncMsg,
        state: &mut SkillSyncArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SkillSyncMsg::Configure(skills) => state.skills = skills,
            SkillSyncMsg::Tick => {
                let args = state.clone();
                let run = tokio::task::spawn_blocking(move || {
                    let bundled = bundled_skills(&args.paths, &TemplateTree::bundled());
                    sync_skills(&args.paths, &args.env, &args.skills, &bundled, args.mode);
                });
                if let Err(e) = run.await {
                    tracing::warn!(actor = "skill_sync", error = %e, "Skill sync run failed; trying again next time.");
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SkillSyncMsg>,
        state: &mut SkillSyncArgs,
    ) -> Result<(), ActorProcessingErr> {
        let (paths, env) = (state.paths.clone(), state.env.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || remove_ductor_links(&paths, &env)).await {
            tracing::warn!(actor = "skill_sync", error = %e, "Skill links could not be cleaned up at stop.");
        }
        Ok(())
    }
}

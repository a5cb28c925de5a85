//! Menus and button presses: the model selector (`ms:`), `/sessions` (`nsc:`), `/cron`
//! (`crn:`), `/tasks` (`tsc:`), and switching a chat's model.

use std::sync::Arc;

use crate::chat::session::SessionOutput;
use crate::core::chat_status::age_text;
use crate::core::cron_schedule::next_fire_label;
use crate::core::selector::{self, Menu, ModelStep, NamedLine, SelectorContext, SessionsAction, TopicLine};
use crate::core::session_key::SessionKey;
use crate::core::state::cron_jobs::{CronJob, CronJobs};
use crate::core::state::tasks::{TaskRecord, TaskRegistry};
use crate::core::text::render;
use crate::core::zone::configured_zone_name;
use crate::core::{cron_selector, task_selector};
use crate::provider::auth::AuthStatus;
use crate::store::atomic::Loaded;
use crate::store::config_file::update_config_keys;
use crate::store::host_zone::local_zone;
use crate::store::locked_state;
use crate::store::state_files::StateFile;

use super::OrchestratorState;
use super::planning::unix_now;

impl OrchestratorState {
    /// What the model selector needs: current and configured model, logged-in CLIs, known models.
    pub(super) fn selector_context(&self, key: &SessionKey) -> SelectorContext {
        let (_, model) = self.target(key);
        SelectorContext {
            current_model: model,
            configured_model: key.topic_id.is_none().then(|| self.args.config.model.clone()),
            authenticated: self
                .auth_statuses()
                .into_iter()
                .filter(|(_, status)| matches!(status, AuthStatus::Authenticated { .. }))
                .map(|(kind, _)| kind.name().to_owned())
                .collect(),
            codex_models: self
                .args
                .catalog
                .codex()
                .into_iter()
                .map(|m| (m.id, m.display_name, m.supported_efforts))
                .collect(),
            gemini_models: self.args.catalog.gemini(),
        }
    }

    /// A pressed button.
    pub(super) async fn callback(&mut self, key: &SessionKey, data: &str) -> SessionOutput {
        if data.starts_with("ms:") {
            let step = selector::press(&self.selector_context(key), data);
            self.model_step(key, step).await
        } else if data.starts_with("nsc:") {
            let note = match selector::sessions_action(data) {
                SessionsAction::Refresh => None,
                SessionsAction::End(name) => Some(if self.end_named_session(key.chat_id, &name) {
                    render("sessions.ended_one", &[("name", &name)])
                } else {
                    render("sessions.ended_not_found", &[("name", &name)])
                }),
                SessionsAction::EndAll => {
                    let count = self.named.for_chat(key.chat_id).count();
                    self.end_named_sessions(key.chat_id);
                    Some(if count == 0 {
                        render("sessions.ended_all_none", &[])
                    } else {
                        render("sessions.ended_all", &[("count", &count.to_string())])
                    })
                }
                SessionsAction::Unknown => Some(render("selector.unknown", &[])),
            };
            SessionOutput::Menu(self.sessions_menu(key, note.as_deref()))
        } else if data.starts_with("crn:") {
            SessionOutput::Menu(self.cron_press(data))
        } else if data.starts_with("tsc:") {
            SessionOutput::Menu(self.tasks_press(key, data))
        } else {
            SessionOutput::Notice(render("selector.unknown", &[]))
        }
    }

    pub(super) async fn model_step(&mut self, key: &SessionKey, step: ModelStep) -> SessionOutput {
        match step {
            ModelStep::Show(menu) => SessionOutput::Menu(menu),
            ModelStep::Say(text) => SessionOutput::Notice(text),
            ModelStep::Switch { model, effort } => {
                SessionOutput::Notice(self.switch_model(key, &model, effort.as_deref()).await)
            }
        }
    }

    /// `/model <id>` (core spec §5.3 `switch_model`): the same model changes nothing; another
    /// one stops the chat's running turns and retargets its session; outside a forum topic it
    /// also becomes the configured model (`config.json`: `model`, and `provider` when it
    /// changes; other keys kept).
    pub(super) async fn switch_model(&mut self, key: &SessionKey, model: &str, effort: Option<&str>) -> String {
        let in_topic = key.topic_id.is_some();
        let old = match (in_topic, self.store.get(key)) {
            (true, Some(record)) if !record.model.is_empty() => record.model.clone(),
            _ => self.args.config.model.clone(),
        };
        let kind = self.provider_of(model);
        if let Some(effort) = effort
            && let Some(entry) = self.args.catalog.codex().into_iter().find(|m| m.id == model)
            && !entry.supported_efforts.iter().any(|e| e == effort)
        {
            return render(
                "model.effort_unsupported",
                &[("model", model), ("effort", effort), ("supported", &entry.supported_efforts.join(", "))],
            );
        }
        if old == model && self.target(key).1 == model && effort.is_none() {
            return render("model.already", &[("model", model)]);
        }
        let chat_keys: Vec<SessionKey> = self.sessions.keys().filter(|k| k.chat_id == key.chat_id).cloned().collect();
        for chat_key in chat_keys {
            self.stop(&chat_key).await;
        }
        if self.store.get(key).is_some() {
            let record = self.record_mut(key);
            record.provider = kind.name().to_owned();
            record.model = model.to_owned();
            self.save();
        }
        if !in_topic {
            let old_provider = self.provider_of(&self.args.config.model);
            let mut updates = vec![("model", serde_json::Value::String(model.to_owned()))];
            if old_provider != kind {
                updates.push(("provider", serde_json::Value::String(kind.name().to_owned())));
            }
            if let Some(effort) = effort {
                updates.push(("reasoning_effort", serde_json::Value::String(effort.to_owned())));
            }
            match update_config_keys(&self.args.paths, &updates) {
                Ok(_) => {
                    let mut config = (*self.args.config).clone();
                    config.model = model.to_owned();
                    config.provider = kind.name().to_owned();
                    if let Some(effort) = effort {
                        config.reasoning_effort = effort.to_owned();
                    }
                    self.args.config = Arc::new(config);
                }
                Err(e) => {
                    tracing::error!(actor = "orchestrator", error = %e, "Could not save the model to config.json.")
                }
            }
        }
        render("model.switched", &[("old", &old), ("model", model), ("provider", kind.display_name())])
    }

    /// The session selector of a chat (`nsc:`).
    pub(super) fn sessions_menu(&self, key: &SessionKey, note: Option<&str>) -> Menu {
        let rules = self.freshness();
        let now = chrono::Utc::now();
        let topics: Vec<TopicLine> = self
            .store
            .records
            .iter()
            .filter(|r| r.key.chat_id == key.chat_id && r.key.topic_id.is_some())
            .filter(|r| r.is_fresh(&r.provider, &rules, now))
            .map(|r| {
                let bucket = r.bucket(&r.provider);
                TopicLine {
                    label: r.topic_name.clone().unwrap_or_else(|| format!("Topic #{}", r.key.topic_id.unwrap_or(0))),
                    target: format!("{}/{}", r.provider, r.model),
                    messages: bucket.map_or(0, |b| b.message_count),
                    cost_usd: bucket.map_or(0.0, |b| b.total_cost_usd),
                }
            })
            .collect();
        let unix_now = unix_now();
        let named: Vec<NamedLine> = self
            .named
            .for_chat(key.chat_id)
            .map(|s| NamedLine {
                name: s.name.clone(),
                target: format!("{}/{}", s.provider, if s.model.is_empty() { "default" } else { &s.model }),
                status: s.status.clone(),
                messages: s.message_count,
                age: age_text((unix_now - s.created_at).max(0.0) as u64),
                preview: s.prompt_preview.clone(),
            })
            .collect();
        selector::sessions_menu(&topics, &named, note)
    }

    /// `cron_jobs.json` as it is now (empty when missing or quarantined).
    pub(super) fn cron_jobs(&self) -> CronJobs {
        match CronJobs::load(&self.args.paths) {
            Loaded::Found(file) => file,
            Loaded::Missing | Loaded::Quarantined { .. } => CronJobs::default(),
        }
    }

    /// A pressed `crn:` button: toggles are saved to `cron_jobs.json` at once (under the file's
    /// lock, the file read again), and the cron observer reschedules from the file watch.
    pub(super) fn cron_press(&self, data: &str) -> Menu {
        let action = cron_selector::action(data);
        let pressed = locked_state::update::<CronJobs, _>(&self.args.paths, |file| {
            let applied = cron_selector::apply(&mut file.jobs, &action);
            (applied.changed, (applied, file.jobs.clone()))
        });
        match pressed {
            Ok((applied, jobs)) => self.cron_menu(&jobs, applied.page, applied.note.as_deref()),
            Err(e) => {
                tracing::error!(actor = "orchestrator", error = %e, "Could not save cron_jobs.json.");
                self.cron_menu(&self.cron_jobs().jobs, 0, Some(&render("error.save_failed", &[])))
            }
        }
    }

    /// The `/cron` menu with each active job's next fire in its zone.
    pub(super) fn cron_menu(&self, jobs: &[CronJob], page: usize, note: Option<&str>) -> Menu {
        let user_zone = self.args.config.user_timezone.clone();
        let now = chrono::Utc::now();
        cron_selector::menu(jobs, page, note, &|job: &CronJob| {
            let zone = local_zone(configured_zone_name(job.timezone.as_deref(), &user_zone));
            Some(next_fire_label(&job.schedule, zone, now))
        })
    }

    pub(super) fn task_registry(&self) -> TaskRegistry {
        match TaskRegistry::load(&self.args.paths) {
            Loaded::Found(file) => file,
            Loaded::Missing | Loaded::Quarantined { .. } => TaskRegistry::default(),
        }
    }

    /// The task selector of a chat (`tsc:`).
    pub(super) fn tasks_menu(&self, key: &SessionKey, note: Option<&str>) -> Menu {
        let registry = self.task_registry();
        let chat: Vec<&TaskRecord> = registry.tasks.iter().filter(|t| t.chat_id == key.chat_id).collect();
        task_selector::menu(&chat, unix_now(), note)
    }

    /// A pressed `tsc:` button. Finished tasks' folders are deleted only when they lie inside
    /// this home's `workspace/tasks/` (the path comes from a file anyone could edit).
    pub(super) fn tasks_press(&self, key: &SessionKey, data: &str) -> Menu {
        // Under the file's lock: the TaskHub changes the same file (it stops a worker whose
        // entry is marked cancelled here).
        let action = task_selector::action(data);
        let pressed = locked_state::update::<TaskRegistry, _>(&self.args.paths, |registry| {
            let applied = task_selector::apply(&mut registry.tasks, key.chat_id, &action, unix_now());
            (applied.changed, applied)
        });
        let applied = match pressed {
            Ok(applied) => applied,
            Err(e) => {
                tracing::error!(actor = "orchestrator", error = %e, "Could not save tasks.json.");
                return self.tasks_menu(key, Some(&render("error.save_failed", &[])));
            }
        };
        let root = std::fs::canonicalize(self.args.paths.task_folders()).ok();
        for folder in &applied.remove_folders {
            let inside = match (std::fs::canonicalize(folder), &root) {
                (Ok(path), Some(root)) => path.starts_with(root) && path != *root,
                _ => false,
            };
            if inside {
                if let Err(e) = std::fs::remove_dir_all(folder) {
                    tracing::warn!(actor = "orchestrator", folder = %folder, error = %e, "Could not delete a task folder.");
                }
            } else {
                tracing::debug!(actor = "orchestrator", folder = %folder, "Task folder not deleted: missing or outside the tasks directory.");
            }
        }
        self.tasks_menu(key, applied.note.as_deref())
    }
}

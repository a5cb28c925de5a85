//! The journal of unattended runs (cron jobs, webhook `cron_task` requests) and what a start
//! makes of it. Each run has an id that is also the delivery key of its result on the Bus, so
//! a run is never started twice and its result is delivered once:
//!
//! - `accepted` — a webhook request was taken (answered 202 only after this is durable);
//! - `started` — the run's CLI is about to start;
//! - `finished` — the run's result was handed to the Bus (or there was nothing to deliver).
//!
//! The result itself is recorded by the Bus, in its outbox, as the envelope carrying the run's
//! id as delivery key: that one write is the run's completion. At the next start a run that
//! started and did not finish is either settled (the Bus has its result) or was cut while its
//! CLI ran (reported once, never run again); an accepted request that never started runs now.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What started a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RunSource {
    /// A cron job fired.
    Cron {
        /// The job's id.
        job: String,
    },
    /// A webhook in `cron_task` mode was called.
    Webhook {
        /// The hook's id.
        hook: String,
        /// The request's JSON object.
        payload: Map<String, Value>,
    },
}

impl RunSource {
    /// The job or hook id.
    pub fn owner(&self) -> &str {
        match self {
            Self::Cron { job } => job,
            Self::Webhook { hook, .. } => hook,
        }
    }
}

/// One line of the run journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunRecord {
    /// A request was accepted; its run has not started.
    Accepted {
        /// The run id (the result's delivery key).
        run: String,
        /// What it runs.
        source: RunSource,
        /// ISO timestamp.
        at: String,
    },
    /// The run's CLI is about to start.
    Started {
        /// The run id.
        run: String,
        /// What it runs.
        source: RunSource,
        /// ISO timestamp.
        at: String,
    },
    /// The run is over and its result is with the Bus (or there was none to deliver).
    Finished {
        /// The run id.
        run: String,
        /// The run's status (`success`, `error:exit_3`, ...).
        status: String,
    },
}

impl RunRecord {
    /// The record's run id.
    pub fn run(&self) -> &str {
        match self {
            Self::Accepted { run, .. } | Self::Started { run, .. } | Self::Finished { run, .. } => run,
        }
    }
}

/// Where an unfinished run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenRun {
    /// Accepted, never started.
    Accepted {
        /// What it runs.
        source: RunSource,
        /// When it was accepted.
        at: String,
    },
    /// Started, not known to have finished.
    Started {
        /// What it runs.
        source: RunSource,
        /// When it started.
        at: String,
    },
}

/// The runs that are not finished, by id, in the order they were first recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenRuns {
    runs: BTreeMap<u64, (String, OpenRun)>,
    next: u64,
}

/// What a replay found besides the records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReplayReport {
    /// 1-based numbers of lines that did not parse (a torn last line excluded).
    pub bad_lines: Vec<usize>,
    /// The last line was incomplete (a crash during an append) and was ignored.
    pub torn_tail: bool,
}

impl OpenRuns {
    /// Rebuilds the open runs from journal text.
    pub fn replay(text: &str) -> (Self, RunReplayReport) {
        let mut runs = Self::default();
        let mut report = RunReplayReport::default();
        let lines: Vec<&str> = text.split('\n').collect();
        let last = lines.len().saturating_sub(1);
        for (index, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<RunRecord>(line) {
                Ok(record) => runs.apply(record),
                Err(_) if index == last && !text.ends_with('\n') => report.torn_tail = true,
                Err(_) => report.bad_lines.push(index + 1),
            }
        }
        (runs, report)
    }

    /// Applies one record.
    pub fn apply(&mut self, record: RunRecord) {
        match record {
            RunRecord::Accepted { run, source, at } => self.set(run, OpenRun::Accepted { source, at }),
            RunRecord::Started { run, source, at } => self.set(run, OpenRun::Started { source, at }),
            RunRecord::Finished { run, .. } => {
                self.runs.retain(|_, (id, _)| *id != run);
            }
        }
    }

    fn set(&mut self, run: String, state: OpenRun) {
        if let Some(entry) = self.runs.values_mut().find(|(id, _)| *id == run) {
            entry.1 = state;
            return;
        }
        self.runs.insert(self.next, (run, state));
        self.next += 1;
    }

    /// Whether a run is open (accepted or started, not finished).
    pub fn contains(&self, run: &str) -> bool {
        self.runs.values().any(|(id, _)| id == run)
    }

    /// The open runs, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OpenRun)> {
        self.runs.values().map(|(id, state)| (id.as_str(), state))
    }

    /// How many runs are open.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether no run is open.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The records that rebuild the open runs (for compaction).
    pub fn compacted(&self) -> Vec<RunRecord> {
        self.runs
            .values()
            .map(|(run, state)| match state {
                OpenRun::Accepted { source, at } => {
                    RunRecord::Accepted { run: run.clone(), source: source.clone(), at: at.clone() }
                }
                OpenRun::Started { source, at } => {
                    RunRecord::Started { run: run.clone(), source: source.clone(), at: at.clone() }
                }
            })
            .collect()
    }
}

/// What to do with an open run at start, once the Bus said whether it has the run's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// The result is with the Bus: record the run finished.
    Settle,
    /// The run's CLI was cut (a crash or kill while it ran): report it once, never run it again.
    ReportCut,
    /// Accepted and never started: run it now.
    Run,
}

/// The recovery of one open run, given whether the Bus accepted a result with its id.
pub fn recovery(run: &OpenRun, result_with_bus: bool) -> Recovery {
    match (run, result_with_bus) {
        (_, true) => Recovery::Settle,
        (OpenRun::Started { .. }, false) => Recovery::ReportCut,
        (OpenRun::Accepted { .. }, false) => Recovery::Run,
    }
}

/// The run id of a cron job's fire at a schedule slot (Unix seconds): one slot runs once.
pub fn cron_run_id(job: &str, slot_unix: i64) -> String {
    format!("cron:{job}:{slot_unix}")
}

/// The run id of an accepted webhook request (`nonce`: random, from the caller).
pub fn webhook_run_id(hook: &str, nonce: u64) -> String {
    format!("hook:{hook}:{nonce:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(job: &str) -> RunSource {
        RunSource::Cron { job: job.into() }
    }

    fn started(run: &str) -> RunRecord {
        RunRecord::Started { run: run.into(), source: cron("daily"), at: "2026-12-04T10:00:00+00:00".into() }
    }

    fn finished(run: &str) -> RunRecord {
        RunRecord::Finished { run: run.into(), status: "success".into() }
    }

    fn text(records: &[RunRecord]) -> String {
        records.iter().map(|r| format!("{}\n", serde_json::to_string(r).unwrap())).collect()
    }

    #[test]
    fn finished_runs_close_and_open_ones_stay_in_order() {
        let hook = RunSource::Webhook { hook: "gh".into(), payload: Map::new() };
        let (runs, report) = OpenRuns::replay(&text(&[
            started("cron:a:1"),
            RunRecord::Accepted { run: "hook:gh:1".into(), source: hook.clone(), at: "t".into() },
            started("cron:b:1"),
            finished("cron:a:1"),
        ]));
        assert_eq!(report, RunReplayReport::default());
        let ids: Vec<&str> = runs.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["hook:gh:1", "cron:b:1"]);
        assert!(matches!(runs.iter().next().unwrap().1, OpenRun::Accepted { source, .. } if *source == hook));
        let (again, _) = OpenRuns::replay(&text(&runs.compacted()));
        assert_eq!(again.iter().collect::<Vec<_>>(), runs.iter().collect::<Vec<_>>());
    }

    #[test]
    fn an_accepted_request_that_starts_keeps_its_place() {
        let hook = RunSource::Webhook { hook: "gh".into(), payload: Map::new() };
        let (runs, _) = OpenRuns::replay(&text(&[
            RunRecord::Accepted { run: "hook:gh:1".into(), source: hook.clone(), at: "t".into() },
            started("cron:b:1"),
            RunRecord::Started { run: "hook:gh:1".into(), source: hook, at: "t2".into() },
        ]));
        let states: Vec<(&str, bool)> =
            runs.iter().map(|(id, state)| (id, matches!(state, OpenRun::Started { .. }))).collect();
        assert_eq!(states, [("hook:gh:1", true), ("cron:b:1", true)]);
    }

    #[test]
    fn a_torn_tail_is_ignored_and_garbage_reported() {
        let mut journal = text(&[started("cron:a:1")]);
        journal.push_str("garbage\n");
        journal.push_str(&text(&[started("cron:b:1")]));
        journal.push_str("{\"started\":{\"run\"");
        let (runs, report) = OpenRuns::replay(&journal);
        assert_eq!(report.bad_lines, [2]);
        assert!(report.torn_tail);
        assert_eq!(runs.len(), 2);
    }

    #[test]
    fn recovery_never_runs_a_started_run_again() {
        let started = OpenRun::Started { source: cron("a"), at: "t".into() };
        let accepted = OpenRun::Accepted { source: cron("a"), at: "t".into() };
        assert_eq!(recovery(&started, true), Recovery::Settle);
        assert_eq!(recovery(&started, false), Recovery::ReportCut);
        assert_eq!(recovery(&accepted, false), Recovery::Run);
        assert_eq!(recovery(&accepted, true), Recovery::Settle);
    }

    #[test]
    fn run_ids_name_their_job_and_slot() {
        assert_eq!(cron_run_id("daily-report", 1_764_842_400), "cron:daily-report:1764842400");
        assert_eq!(webhook_run_id("gh", 255), "hook:gh:00000000000000ff");
    }
}

//! The online runner: follows spans as the store accepts them and evaluates each with every
//! enabled evaluator that selects it.
//!
//! It reads by `observed_time`, the stamp the store gives every span it accepts, up to
//! [`plumb_store::Store::visible_through`], so a span still on its way through the WAL is never
//! passed over. Its position is a cursor in the catalog, advanced only after the verdicts of a
//! pass are durable; after a crash the pass is repeated and the verdicts it already wrote are
//! found in `evals` and skipped. Deterministic checks and judge-backed evaluators run in two
//! lanes with their own cursors, so a slow or unreachable judge never holds up parse-failure
//! alerts. Each pass reads at most `max_spans_per_pass` spans per project: memory stays bounded
//! and a backlog shows as lag instead of an out-of-memory kill.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use plumb_store::{Store, Table};
use serde::Serialize;

use crate::error::Result;
use crate::pipeline::{self, PipelineOptions};
use crate::registry::Configured;
use crate::source;

#[derive(Debug, Clone)]
pub struct OnlineConfig {
    /// Time between passes when there is no backlog.
    pub interval: Duration,
    pub max_spans_per_pass: usize,
    /// Spans that started longer than this before the cursor are not looked for (it bounds
    /// the files a pass opens); they can be evaluated with `plumb eval run`.
    pub max_lateness: Duration,
    /// Judge requests in flight at once.
    pub concurrency: usize,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        OnlineConfig {
            interval: Duration::from_millis(1000),
            max_spans_per_pass: 5000,
            max_lateness: Duration::from_secs(3600),
            concurrency: 4,
        }
    }
}

/// Where one lane stands, for `GET /api/v1/evals/runner` and logs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LaneStatus {
    pub lane: String,
    pub evaluators: Vec<String>,
    /// Everything accepted up to here has been evaluated (Unix nanoseconds).
    pub cursor_unix_nano: i64,
    /// How far behind the newest accepted spans the lane is, in seconds.
    pub lag_seconds: f64,
    pub evaluated: u64,
    pub deferred: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

/// Shared view of the runner's lanes.
pub type RunnerStatus = Arc<RwLock<Vec<LaneStatus>>>;

/// Starts one task per non-empty lane; returns their handles and the status they update.
pub fn spawn(
    store: Store,
    evaluators: Vec<Configured>,
    config: OnlineConfig,
) -> (Vec<tokio::task::JoinHandle<()>>, RunnerStatus) {
    let status: RunnerStatus = Arc::default();
    let (judged, checks): (Vec<_>, Vec<_>) = evaluators
        .into_iter()
        .partition(|c| c.evaluator.uses_judge());
    let mut handles = Vec::new();
    for (lane, evaluators) in [("checks", checks), ("judges", judged)] {
        if evaluators.is_empty() {
            continue;
        }
        let index = {
            let mut s = status.write().expect("status lock");
            s.push(LaneStatus {
                lane: lane.into(),
                evaluators: evaluators
                    .iter()
                    .map(|c| c.evaluator.name().to_string())
                    .collect(),
                ..Default::default()
            });
            s.len() - 1
        };
        let lane = Lane {
            name: lane,
            store: store.clone(),
            evaluators,
            config: config.clone(),
            status: status.clone(),
            index,
        };
        handles.push(tokio::spawn(lane.run()));
    }
    (handles, status)
}

struct Lane {
    name: &'static str,
    store: Store,
    evaluators: Vec<Configured>,
    config: OnlineConfig,
    status: RunnerStatus,
    index: usize,
}

/// What a pass got through.
struct Pass {
    through: i64,
    backlog: bool,
    outcome: pipeline::Outcome,
}

impl Lane {
    fn cursor_name(&self) -> String {
        format!("evals.online.{}", self.name)
    }

    async fn run(self) {
        let mut cursor = loop {
            match self.store.catalog().cursor(&self.cursor_name()).await {
                Ok(Some(c)) => break c,
                // First start: evaluate traffic from now on; older spans are a backfill.
                Ok(None) => {
                    let now = self.store.visible_through();
                    if let Err(e) = self
                        .store
                        .catalog()
                        .set_cursor(&self.cursor_name(), now)
                        .await
                    {
                        tracing::warn!(error = %e, "could not save the evaluation cursor");
                    }
                    break now;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the evaluation cursor; retrying");
                    tokio::time::sleep(self.config.interval).await;
                }
            }
        };
        tracing::info!(lane = self.name, evaluators = ?self.evaluators.iter().map(|c| c.evaluator.name()).collect::<Vec<_>>(), "online evaluation started");
        loop {
            let mut backlog = false;
            match self.pass(cursor).await {
                Ok(pass) => {
                    let advanced = pass.outcome.deferred == 0;
                    if advanced && pass.through > cursor {
                        match self
                            .store
                            .catalog()
                            .set_cursor(&self.cursor_name(), pass.through)
                            .await
                        {
                            Ok(()) => cursor = pass.through,
                            Err(e) => {
                                tracing::warn!(error = %e, "could not save the evaluation cursor")
                            }
                        }
                    }
                    backlog = pass.backlog && advanced;
                    self.update(|s| {
                        s.evaluated += pass.outcome.total_written() as u64;
                        s.deferred += pass.outcome.deferred as u64;
                        s.failed += pass.outcome.failed as u64;
                        if let Some(e) = &pass.outcome.deferred_error {
                            s.last_error = Some(e.clone());
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(lane = self.name, error = %e, "evaluation pass failed; retrying");
                    self.update(|s| s.last_error = Some(e.to_string()));
                }
            }
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
            self.update(|s| {
                s.cursor_unix_nano = cursor;
                s.lag_seconds = ((now - cursor).max(0)) as f64 / 1e9;
            });
            if !backlog {
                tokio::time::sleep(self.config.interval).await;
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut LaneStatus)) {
        if let Some(s) = self
            .status
            .write()
            .expect("status lock")
            .get_mut(self.index)
        {
            f(s);
        }
    }

    /// Evaluates what was accepted after `cursor`, up to what is visible now or as much as one
    /// pass may read.
    async fn pass(&self, cursor: i64) -> Result<Pass> {
        let mut through = self.store.visible_through();
        if through <= cursor {
            return Ok(Pass {
                through: cursor,
                backlog: false,
                outcome: Default::default(),
            });
        }
        let limit = self.config.max_spans_per_pass.max(1);
        let min_start = cursor - self.config.max_lateness.as_nanos() as i64;
        let mut fetched = Vec::new();
        let mut backlog = false;
        for project in self.store.projects(Table::Spans) {
            let mut spans = source::spans_observed(
                &self.store,
                &project,
                cursor,
                through,
                min_start,
                limit + 1,
            )
            .await?;
            if spans.len() > limit {
                backlog = true;
                // Stop before the last write's stamp, which may go on past the limit; a single
                // write larger than the limit is read whole.
                let last = spans[limit - 1].observed_ns;
                if last - 1 > cursor {
                    through = through.min(last - 1);
                } else {
                    through = through.min(last);
                    spans = source::spans_observed(
                        &self.store,
                        &project,
                        cursor,
                        last,
                        min_start,
                        usize::MAX >> 1,
                    )
                    .await?;
                }
            }
            fetched.push((project, spans));
        }
        let mut outcome = pipeline::Outcome::default();
        let keys: Vec<(&str, u32)> = self
            .evaluators
            .iter()
            .map(|c| (c.evaluator.name(), c.evaluator.version()))
            .collect();
        for (project, spans) in fetched {
            let spans: Vec<_> = spans
                .into_iter()
                .filter(|s| s.observed_ns <= through)
                .map(|s| s.span)
                .collect();
            if spans.is_empty() {
                continue;
            }
            let min = spans.iter().map(|s| s.start_ns).min().unwrap_or_default();
            let max = spans.iter().map(|s| s.start_ns).max().unwrap_or_default();
            let done = source::done(&self.store, &project, &keys, min, max, Some(cursor)).await?;
            let o = pipeline::evaluate_spans(
                &self.store,
                &project,
                &self.evaluators,
                &spans,
                &done,
                PipelineOptions {
                    source: "online",
                    concurrency: self.config.concurrency,
                },
            )
            .await?;
            for (k, v) in o.written {
                *outcome.written.entry(k).or_default() += v;
            }
            outcome.deferred += o.deferred;
            outcome.failed += o.failed;
            outcome.deferred_error = o.deferred_error.or(outcome.deferred_error);
        }
        Ok(Pass {
            through,
            backlog,
            outcome,
        })
    }
}

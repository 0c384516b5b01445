//! Offline runs (`plumb eval run`): one evaluator over the stored spans of a time range, for a
//! backfill or to try a new evaluator on old traffic. Spans are read in start-time order, a
//! batch at a time; each batch's verdicts are durable before the next is read, and spans that
//! already have a verdict of this version are skipped, so an interrupted run started again
//! picks up where it stopped without writing anything twice.

use std::time::{Duration, Instant};

use plumb_store::query::to_json_rows;
use plumb_store::Store;
use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::pipeline::{self, PipelineOptions};
use crate::registry::Configured;
use crate::source::{self, quoted, timestamp_literal};

#[derive(Clone)]
pub struct OfflineRun {
    pub project: String,
    pub evaluator: Configured,
    /// Span start times, `[from, to)` in Unix nanoseconds.
    pub from: i64,
    pub to: i64,
    pub route: Option<String>,
    pub batch_size: usize,
    /// Spans read per second at most, so a backfill leaves the judge to live traffic.
    pub max_spans_per_second: Option<f64>,
    pub concurrency: usize,
}

/// Progress after each batch.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Progress {
    pub total: u64,
    pub scanned: u64,
    pub evaluated: u64,
}

/// What a run did, and where the evaluator stands over the whole range (earlier, interrupted
/// runs included).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub evaluator: String,
    pub version: u32,
    pub scanned: u64,
    pub evaluated_now: u64,
    pub failed: u64,
    /// Verdicts in the range after the run.
    pub verdicts: u64,
    pub passed: u64,
    pub pass_rate: Option<f64>,
    pub mean_score: Option<f64>,
    pub elapsed_seconds: f64,
}

/// How many times a batch is retried while the judge is busy before the run gives up.
const MAX_DEFERRALS: u32 = 30;

pub async fn run(
    store: &Store,
    run: &OfflineRun,
    mut progress: impl FnMut(Progress),
) -> Result<Summary> {
    let started = Instant::now();
    let e = &run.evaluator.evaluator;
    let key = [(e.name(), e.version())];
    let total =
        source::count_started(store, &run.project, run.from, run.to, run.route.as_deref()).await?;
    let mut p = Progress {
        total,
        ..Default::default()
    };
    progress(p);
    let mut failed = 0u64;
    let mut after: Option<(i64, String)> = None;
    loop {
        let batch = source::spans_started(
            store,
            &run.project,
            run.from,
            run.to,
            run.route.as_deref(),
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            run.batch_size.max(1),
        )
        .await?;
        let Some(last) = batch.last() else {
            break;
        };
        let batch_started = Instant::now();
        let min = batch.first().map(|s| s.start_ns).unwrap_or_default();
        let mut deferrals = 0;
        loop {
            let done = source::done(store, &run.project, &key, min, last.start_ns, None).await?;
            let o = pipeline::evaluate_spans(
                store,
                &run.project,
                std::slice::from_ref(&run.evaluator),
                &batch,
                &done,
                PipelineOptions {
                    source: "offline",
                    concurrency: run.concurrency,
                },
            )
            .await?;
            p.evaluated += o.total_written() as u64;
            failed += o.failed as u64;
            if o.deferred == 0 {
                break;
            }
            deferrals += 1;
            if deferrals > MAX_DEFERRALS {
                return Err(EvalError::JudgeUnavailable {
                    message: o.deferred_error.unwrap_or_default(),
                    retry_after: None,
                });
            }
            tracing::warn!(deferred = o.deferred, error = ?o.deferred_error, "judge busy; retrying the batch");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        p.scanned += batch.len() as u64;
        progress(p);
        after = Some((last.start_ns, last.span_id.clone()));
        if let Some(rate) = run.max_spans_per_second.filter(|r| *r > 0.0) {
            let due = Duration::from_secs_f64(batch.len() as f64 / rate);
            if let Some(wait) = due.checked_sub(batch_started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    let (verdicts, passed, mean_score) = totals(store, run).await?;
    Ok(Summary {
        evaluator: e.name().to_string(),
        version: e.version(),
        scanned: p.scanned,
        evaluated_now: p.evaluated,
        failed,
        verdicts,
        passed,
        pass_rate: (verdicts > 0).then(|| passed as f64 / verdicts as f64),
        mean_score,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

async fn totals(store: &Store, run: &OfflineRun) -> Result<(u64, u64, Option<f64>)> {
    let e = &run.evaluator.evaluator;
    let route = run
        .route
        .as_ref()
        .map(|r| format!(" AND route = {}", quoted(r)))
        .unwrap_or_default();
    let sql = format!(
        "SELECT count(*) AS n, count(*) FILTER (WHERE passed) AS passed, avg(score) AS mean FROM evals \
         WHERE evaluator = {} AND evaluator_version = {} AND source <> 'client' \
         AND span_start_time >= {} AND span_start_time < {}{route}",
        quoted(e.name()),
        e.version(),
        timestamp_literal(run.from),
        timestamp_literal(run.to),
    );
    let out = to_json_rows(&store.sql(&run.project, &sql).await?)?;
    let row = &out.rows[0];
    Ok((
        row[0].as_u64().unwrap_or(0),
        row[1].as_u64().unwrap_or(0),
        row[2].as_f64(),
    ))
}

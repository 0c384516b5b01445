//! Applying evaluators to a set of spans and storing the verdicts: the step the online runner
//! and offline runs share. Spans that already have a verdict of an evaluator's version are
//! skipped; spans a busy judge could not score are reported for a retry, never written as
//! failures.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use plumb_store::records::EvalRecord;
use plumb_store::Store;

use crate::error::{EvalError, Result};
use crate::evaluate::Subject;
use crate::registry::Configured;
use crate::source::{self, Done};
use crate::span::SpanRow;

/// Subjects per call of an evaluator (one judge request at most).
const CHUNK: usize = 64;

/// How to run: where results are marked as coming from, how many judge requests at once.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    pub source: &'static str,
    pub concurrency: usize,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Verdicts written, by evaluator.
    pub written: BTreeMap<String, usize>,
    /// Spans left for a later retry (the judge was busy or down), with the last such error.
    pub deferred: usize,
    pub deferred_error: Option<String>,
    /// Spans whose judge answer was unusable (logged, not retried).
    pub failed: usize,
}

impl Outcome {
    pub fn total_written(&self) -> usize {
        self.written.values().sum()
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

/// Evaluates `spans` of `project` with each evaluator that selects them and has not judged them
/// yet, and writes the verdicts.
pub async fn evaluate_spans(
    store: &Store,
    project: &str,
    evaluators: &[Configured],
    spans: &[SpanRow],
    done: &Done,
    options: PipelineOptions,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut records = Vec::new();
    let mut traces: Option<BTreeMap<String, Vec<SpanRow>>> = None;
    for c in evaluators {
        let e = &c.evaluator;
        let version = e.version() as i64;
        let picked: Vec<&SpanRow> = spans
            .iter()
            .filter(|s| {
                !done.contains(&(
                    e.name().to_string(),
                    version,
                    s.trace_id.clone(),
                    s.span_id.clone(),
                )) && c.selects(&s.view())
            })
            .collect();
        if picked.is_empty() {
            continue;
        }
        if e.needs_trace() && traces.is_none() {
            let ids: Vec<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
            traces = Some(source::traces(store, project, &ids).await?);
        }
        let subjects: Vec<Subject> = picked
            .iter()
            .map(|s| Subject {
                span: (*s).clone(),
                trace: match (e.needs_trace(), &traces) {
                    (true, Some(t)) => t.get(&s.trace_id).cloned().unwrap_or_default(),
                    _ => Vec::new(),
                },
            })
            .collect();
        let chunks: Vec<Vec<Subject>> = subjects.chunks(CHUNK).map(<[Subject]>::to_vec).collect();
        let results: Vec<_> = stream::iter(chunks)
            .map(|chunk| {
                let e = e.clone();
                async move {
                    let started = Instant::now();
                    let verdicts = e.evaluate(&chunk).await;
                    let per_item_ms =
                        started.elapsed().as_secs_f64() * 1e3 / chunk.len().max(1) as f64;
                    (chunk, verdicts, per_item_ms)
                }
            })
            .buffered(options.concurrency.max(1))
            .collect()
            .await;
        for (chunk, verdicts, per_item_ms) in results {
            for (subject, verdict) in chunk.iter().zip(verdicts) {
                let s = &subject.span;
                match verdict {
                    Ok(Some(j)) => {
                        *outcome.written.entry(e.name().to_string()).or_default() += 1;
                        records.push(EvalRecord {
                            project: project.to_string(),
                            trace_id: s.trace_id.clone(),
                            span_id: Some(s.span_id.clone()),
                            evaluator: e.name().to_string(),
                            evaluator_version: version,
                            score: j.verdict.score,
                            label: Some(j.verdict.label),
                            passed: Some(j.verdict.passed),
                            explanation: Some(j.verdict.explanation),
                            judge_model: j.judge_model,
                            latency_ms: Some(per_item_ms),
                            source: options.source.to_string(),
                            evaluated_at_unix_nano: now_nanos(),
                            span_start_time_unix_nano: s.start_ns,
                            route: s.route.clone(),
                            gen_ai_request_model: s.gen_ai_request_model.clone(),
                        });
                    }
                    Ok(None) => {}
                    Err(EvalError::JudgeUnavailable { message, .. }) => {
                        outcome.deferred += 1;
                        outcome.deferred_error = Some(message);
                    }
                    Err(err) => {
                        outcome.failed += 1;
                        tracing::warn!(evaluator = e.name(), span_id = %s.span_id, error = %err, "evaluation failed");
                    }
                }
            }
        }
    }
    store.write_evals(&records).await?;
    Ok(outcome)
}

//! `plumb-evaluators`: everything that judges stored spans.
//!
//! An [`Evaluator`] reads one span (a [`SpanView`]: the `spans` columns it needs) and gives a
//! [`Verdict`]. The deterministic [`checks`] need nothing else: structured outputs that do not
//! parse or do not match their schema, truncated and empty outputs, refusals. Judge-backed
//! evaluators ([`judged`], through a [`judge_client`]) and trace-level ones join them behind
//! [`Evaluate`]; the [`online`] runner follows new spans, [`offline`] runs replay stored ones,
//! [`compare`] sets two cohorts side by side, and [`alerts`] watch the results. Results go to the `evals` and `alert_events` tables of `plumb-store`. It depends on
//! `plumb-store` only; judge models are plugged in by the binary, so it never depends on
//! `plumb-serving`.

pub mod alerts;
pub mod checks;
pub mod compare;
pub mod error;
pub mod evaluate;
pub mod judge_client;
pub mod judged;
pub mod offline;
pub mod online;
pub mod pipeline;
pub mod registry;
pub mod source;
pub mod span;
pub mod stats;

pub use error::EvalError;
pub use evaluate::{Check, Evaluate, Judged, Subject};
pub use span::{SpanRow, SpanView};

use serde::Serialize;

/// One evaluator's verdict on one span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// 0..1 where the evaluator has a graded answer (1 is good).
    pub score: Option<f64>,
    /// A short machine-readable outcome, e.g. `valid`, `invalid_json`, `schema_mismatch`.
    pub label: String,
    pub passed: bool,
    /// Why, in words a person reads next to the span.
    pub explanation: String,
}

impl Verdict {
    pub fn pass(label: &str, explanation: impl Into<String>) -> Verdict {
        Verdict {
            score: Some(1.0),
            label: label.into(),
            passed: true,
            explanation: explanation.into(),
        }
    }

    pub fn fail(label: &str, explanation: impl Into<String>) -> Verdict {
        Verdict {
            score: Some(0.0),
            label: label.into(),
            passed: false,
            explanation: explanation.into(),
        }
    }
}

/// A check of one span. `name` and `version` identify its results: a span is evaluated once per
/// (evaluator, version), and a new version re-evaluates.
pub trait Evaluator: Send + Sync {
    fn name(&self) -> &'static str;
    fn version(&self) -> u32;
    /// Whether this span is one the evaluator judges at all (others get no row).
    fn applies_to(&self, span: &SpanView) -> bool;
    fn evaluate(&self, span: &SpanView) -> Verdict;
}

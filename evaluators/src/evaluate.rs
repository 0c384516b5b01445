//! [`Evaluate`]: the one interface the runners drive. Deterministic checks ([`crate::Evaluator`],
//! synchronous, one span at a time) join it through [`Check`]; judge-backed and trace-level
//! evaluators implement it directly, since they batch requests to a judge and may need the
//! other spans of a trace.

use async_trait::async_trait;

use crate::error::EvalError;
use crate::span::{SpanRow, SpanView};
use crate::{Evaluator, Verdict};

/// What an evaluator judges: one span and, for evaluators that ask for it, its whole trace.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub span: SpanRow,
    /// Every stored span of the trace (the span itself included); empty unless
    /// [`Evaluate::needs_trace`].
    pub trace: Vec<SpanRow>,
}

/// A verdict and the model that gave it, when one did.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub verdict: Verdict,
    pub judge_model: Option<String>,
}

#[async_trait]
pub trait Evaluate: Send + Sync {
    fn name(&self) -> &str;
    fn version(&self) -> u32;
    /// Whether this span gets a verdict at all; others get no `evals` row.
    fn selects(&self, span: &SpanView) -> bool;
    /// Whether [`Subject::trace`] must be filled in.
    fn needs_trace(&self) -> bool {
        false
    }
    /// Whether this evaluator calls a judge model (the runners give those their own, slower lane).
    fn uses_judge(&self) -> bool {
        false
    }
    /// One result per subject, in order. `Ok(None)`: on a closer look there is nothing to judge
    /// (e.g. no retrieved context anywhere in the trace). An `Err` leaves the span for a retry.
    async fn evaluate(&self, subjects: &[Subject]) -> Vec<Result<Option<Judged>, EvalError>>;
}

/// A deterministic check as an [`Evaluate`].
pub struct Check<E>(pub E);

#[async_trait]
impl<E: Evaluator> Evaluate for Check<E> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn version(&self) -> u32 {
        self.0.version()
    }

    fn selects(&self, span: &SpanView) -> bool {
        self.0.applies_to(span)
    }

    async fn evaluate(&self, subjects: &[Subject]) -> Vec<Result<Option<Judged>, EvalError>> {
        subjects
            .iter()
            .map(|s| {
                Ok(Some(Judged {
                    verdict: self.0.evaluate(&s.span.view()),
                    judge_model: None,
                }))
            })
            .collect()
    }
}

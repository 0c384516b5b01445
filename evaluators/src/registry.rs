//! The built-in evaluators by name, and which spans each one is given (route, model and
//! operation filters, a sampling rate): what `[evals]` in plumb.toml and `--evaluator` name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::{EmptyOutput, JsonParse, Refusal, ToolCallArgs, Truncated};
use crate::error::{EvalError, Result};
use crate::evaluate::{Check, Evaluate};
use crate::judge_client::{HttpJudge, JudgeClient};
use crate::judged::{ContextRelevance, Groundedness, TaskCompletion, TaskCompletionLimits};
use crate::span::SpanView;

/// Every built-in evaluator, deterministic ones first.
pub const BUILT_IN: &[&str] = &[
    "json_parse",
    "tool_call_args",
    "truncated",
    "empty_output",
    "refusal",
    "groundedness",
    "context_relevance",
    "task_completion",
];

/// What the evaluators need to be built.
#[derive(Debug, Clone, Default)]
pub struct EvaluatorSettings {
    /// Routes whose outputs are JSON even when spans do not say so.
    pub json_routes: BTreeSet<String>,
    /// JSON Schemas of structured outputs by route.
    pub json_schemas: BTreeMap<String, Value>,
    /// The judge server (e.g. `http://127.0.0.1:3100`); judge evaluators need one.
    pub judge_url: Option<String>,
    pub task_completion: TaskCompletionLimits,
}

/// Which spans an evaluator is given. Empty lists select everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selection {
    pub routes: Vec<String>,
    pub models: Vec<String>,
    pub operations: Vec<String>,
    /// Fraction of traces evaluated, 0..=1. Decided by trace id, so a trace is all in or all
    /// out and a re-run picks the same traces.
    pub sample_rate: f64,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            routes: Vec::new(),
            models: Vec::new(),
            operations: Vec::new(),
            sample_rate: 1.0,
        }
    }
}

impl Selection {
    pub fn admits(&self, span: &SpanView) -> bool {
        let listed = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        listed(&self.routes, span.route)
            && listed(&self.models, span.gen_ai_request_model)
            && listed(&self.operations, span.gen_ai_operation_name)
            && sampled(span.trace_id, self.sample_rate)
    }
}

/// Whether a trace falls in a sample of `rate`: its id's first 8 hex digits as a fraction of
/// 2^32 (ids are random), or a hash of ids that are not hex.
pub fn sampled(trace_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let x = trace_id
        .get(..8)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| {
            trace_id.bytes().fold(0x811c9dc5u32, |h, b| {
                (h ^ b as u32).wrapping_mul(0x01000193)
            })
        });
    (x as f64) < rate * 4_294_967_296.0
}

/// An evaluator with the spans it is given.
#[derive(Clone)]
pub struct Configured {
    pub evaluator: Arc<dyn Evaluate>,
    pub selection: Selection,
}

impl Configured {
    pub fn selects(&self, span: &SpanView) -> bool {
        self.selection.admits(span) && self.evaluator.selects(span)
    }
}

/// Builds the named evaluator.
pub fn build(name: &str, settings: &EvaluatorSettings) -> Result<Arc<dyn Evaluate>> {
    let judge = || -> Result<Arc<dyn JudgeClient>> {
        match &settings.judge_url {
            Some(url) => Ok(Arc::new(HttpJudge::new(url))),
            None => Err(EvalError::Invalid(format!(
                "evaluator `{name}` needs a judge server: run `plumb serve` with judges, or set [evals] judge_url"
            ))),
        }
    };
    Ok(match name {
        "json_parse" => Arc::new(Check(JsonParse::new(
            settings.json_routes.clone(),
            settings.json_schemas.clone(),
        ))),
        "tool_call_args" => Arc::new(Check(ToolCallArgs::default())),
        "truncated" => Arc::new(Check(Truncated)),
        "empty_output" => Arc::new(Check(EmptyOutput)),
        "refusal" => Arc::new(Check(Refusal)),
        "groundedness" => Arc::new(Groundedness::new(judge()?)),
        "context_relevance" => Arc::new(ContextRelevance::new(judge()?)),
        "task_completion" => Arc::new(TaskCompletion::new(
            settings
                .judge_url
                .as_deref()
                .map(|u| Arc::new(HttpJudge::new(u)) as Arc<dyn JudgeClient>),
            settings.task_completion,
        )),
        other => {
            return Err(EvalError::UnknownEvaluator {
                name: other.to_string(),
                known: BUILT_IN.join(", "),
            })
        }
    })
}

//! `task_completion`, per agent run: did the run finish without unrecovered errors, and does
//! its final answer address what the user asked? Judged on the run's root agent span with the
//! whole trace in view. Each part is named in the explanation, so a failure says which.
//!
//! - the agent span's own status;
//! - tool calls that failed and were not followed by a successful call of the same tool;
//! - retry loops that hit their limit: a span whose `retry_count` reached the limit, or one tool
//!   called more times in a row than the limit allows;
//! - an empty final answer;
//! - the relevance judge between the user's request (the agent span's input) and its final
//!   answer (its output). Without a judge this part is skipped and says so.

use std::sync::Arc;

use async_trait::async_trait;

use super::{clip, judge_failed, quote, MAX_JUDGE_TEXT_BYTES};
use crate::error::EvalError;
use crate::evaluate::{Evaluate, Judged, Subject};
use crate::judge_client::JudgeClient;
use crate::span::{SpanRow, SpanView};
use crate::Verdict;

#[derive(Debug, Clone, Copy)]
pub struct TaskCompletionLimits {
    /// A span with this many retries hit its limit.
    pub max_retries: i64,
    /// One tool called this many times in a row is a loop.
    pub max_repeated_tool_calls: usize,
}

impl Default for TaskCompletionLimits {
    fn default() -> Self {
        TaskCompletionLimits {
            max_retries: 3,
            max_repeated_tool_calls: 5,
        }
    }
}

pub struct TaskCompletion {
    judge: Option<Arc<dyn JudgeClient>>,
    limits: TaskCompletionLimits,
}

impl TaskCompletion {
    pub fn new(
        judge: Option<Arc<dyn JudgeClient>>,
        limits: TaskCompletionLimits,
    ) -> TaskCompletion {
        TaskCompletion { judge, limits }
    }

    /// The run's failures that no judge is needed to see.
    fn run_problems(&self, root: &SpanRow, trace: &[SpanRow]) -> Vec<String> {
        let mut problems = Vec::new();
        if root.status_code == "ERROR" {
            problems.push(format!(
                "the agent span ended in error{}",
                root.status_message
                    .as_deref()
                    .map(|m| format!(": {}", quote(m)))
                    .unwrap_or_default()
            ));
        }
        let mut tools: Vec<&SpanRow> = trace
            .iter()
            .filter(|s| {
                s.gen_ai_operation_name.as_deref() == Some("execute_tool") || s.span_kind == "TOOL"
            })
            .collect();
        tools.sort_by_key(|s| s.start_ns);
        let tool_name = |s: &SpanRow| {
            s.span_attributes
                .get("gen_ai.tool.name")
                .or_else(|| s.span_attributes.get("tool.name"))
                .cloned()
                .unwrap_or_else(|| s.span_name.clone())
        };
        for (i, t) in tools.iter().enumerate() {
            if t.status_code != "ERROR" {
                continue;
            }
            let name = tool_name(t);
            let recovered = tools[i + 1..]
                .iter()
                .any(|later| tool_name(later) == name && later.status_code != "ERROR");
            if !recovered {
                problems.push(format!(
                    "tool `{name}` failed and was not retried successfully"
                ));
            }
        }
        let mut run = 1;
        for w in tools.windows(2) {
            run = if tool_name(w[0]) == tool_name(w[1]) {
                run + 1
            } else {
                1
            };
            if run == self.limits.max_repeated_tool_calls {
                problems.push(format!(
                    "tool `{}` was called {run} times in a row (a retry loop)",
                    tool_name(w[1])
                ));
            }
        }
        if let Some(s) = trace
            .iter()
            .find(|s| s.retry_count.is_some_and(|n| n >= self.limits.max_retries))
        {
            problems.push(format!(
                "span `{}` hit its retry limit ({} retries)",
                s.span_name,
                s.retry_count.unwrap_or_default()
            ));
        }
        if root
            .output_text
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
        {
            problems.push("the run gave no final answer".into());
        }
        problems
    }
}

#[async_trait]
impl Evaluate for TaskCompletion {
    fn name(&self) -> &str {
        "task_completion"
    }

    fn version(&self) -> u32 {
        1
    }

    /// The outermost agent span of a run.
    fn selects(&self, span: &SpanView) -> bool {
        span.is_agent_run() && span.parent_span_id.is_none_or(str::is_empty)
    }

    fn needs_trace(&self) -> bool {
        true
    }

    fn uses_judge(&self) -> bool {
        self.judge.is_some()
    }

    async fn evaluate(&self, subjects: &[Subject]) -> Vec<Result<Option<Judged>, EvalError>> {
        let problems: Vec<Vec<String>> = subjects
            .iter()
            .map(|s| self.run_problems(&s.span, &s.trace))
            .collect();
        // Only runs that finished with an answer are worth asking the judge about.
        let mut items = Vec::new();
        let mut item_of = vec![None; subjects.len()];
        for (i, s) in subjects.iter().enumerate() {
            let (Some(request), Some(answer)) = (&s.span.input_text, &s.span.output_text) else {
                continue;
            };
            if self.judge.is_some() && problems[i].is_empty() && !request.trim().is_empty() {
                item_of[i] = Some(items.len());
                items.push((
                    clip(request, MAX_JUDGE_TEXT_BYTES).to_string(),
                    clip(answer, MAX_JUDGE_TEXT_BYTES).to_string(),
                ));
            }
        }
        let scores = match (&self.judge, items.is_empty()) {
            (Some(judge), false) => match judge.context_relevance(&items).await {
                Ok(s) => Some(s),
                Err(e) => return judge_failed(subjects.len(), &e),
            },
            _ => None,
        };
        problems
            .into_iter()
            .zip(item_of)
            .map(|(problems, item)| {
                let mut parts = Vec::new();
                let finished = problems.is_empty();
                parts.push(match finished {
                    true => "finished without unrecovered errors".to_string(),
                    false => problems.join("; "),
                });
                let (score, addressed, model) = match (item, &scores) {
                    (Some(i), Some(s)) => {
                        let r = &s.items[i];
                        parts.push(format!(
                            "the final answer {} the request (relevance {:.2})",
                            if r.label == "relevant" { "addresses" } else { "does not address" },
                            r.score
                        ));
                        (r.score, r.label == "relevant", Some(s.model.clone()))
                    }
                    _ if finished && self.judge.is_none() => {
                        parts.push("whether the answer addresses the request was not judged (no judge configured)".into());
                        (1.0, true, None)
                    }
                    _ => (0.0, false, None),
                };
                let passed = finished && addressed;
                let label = match (finished, addressed) {
                    (false, _) => "failed",
                    (true, false) => "off_task",
                    (true, true) => "completed",
                };
                Ok(Some(Judged {
                    verdict: Verdict {
                        score: Some(if finished { score } else { 0.0 }),
                        label: label.into(),
                        passed,
                        explanation: parts.join("; "),
                    },
                    judge_model: model,
                }))
            })
            .collect()
    }
}

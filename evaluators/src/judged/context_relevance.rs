//! `context_relevance`: did retrieval bring back documents that bear on the query? Judged on
//! retrieval spans (query in `input_text`, results in `retrieval_documents`), one judge item per
//! document. Passing means at least one document is relevant: the generator can work with that.

use std::sync::Arc;

use async_trait::async_trait;

use super::{clip, judge_failed, quote, MAX_JUDGE_TEXT_BYTES};
use crate::error::EvalError;
use crate::evaluate::{Evaluate, Judged, Subject};
use crate::judge_client::JudgeClient;
use crate::span::SpanView;
use crate::Verdict;

/// Documents judged per retrieval at most: rankers return long tails nobody reads.
const MAX_DOCUMENTS: usize = 20;

pub struct ContextRelevance {
    judge: Arc<dyn JudgeClient>,
}

impl ContextRelevance {
    pub fn new(judge: Arc<dyn JudgeClient>) -> ContextRelevance {
        ContextRelevance { judge }
    }
}

#[async_trait]
impl Evaluate for ContextRelevance {
    fn name(&self) -> &str {
        "context_relevance"
    }

    fn version(&self) -> u32 {
        1
    }

    fn selects(&self, span: &SpanView) -> bool {
        span.is_retrieval()
            && span.input_text.is_some_and(|q| !q.trim().is_empty())
            && !span.retrieval_documents.is_empty()
    }

    fn uses_judge(&self) -> bool {
        true
    }

    async fn evaluate(&self, subjects: &[Subject]) -> Vec<Result<Option<Judged>, EvalError>> {
        let mut items = Vec::new();
        let mut ranges = Vec::with_capacity(subjects.len());
        for s in subjects {
            let view = s.span.view();
            let query = clip(view.input_text.unwrap_or_default(), MAX_JUDGE_TEXT_BYTES);
            let start = items.len();
            for d in view.retrieval_documents.iter().take(MAX_DOCUMENTS) {
                items.push((query.to_string(), clip(d, MAX_JUDGE_TEXT_BYTES).to_string()));
            }
            ranges.push(start..items.len());
        }
        if items.is_empty() {
            return subjects.iter().map(|_| Ok(None)).collect();
        }
        let scores = match self.judge.context_relevance(&items).await {
            Ok(s) => s,
            Err(e) => return judge_failed(subjects.len(), &e),
        };
        ranges
            .into_iter()
            .map(|r| {
                if r.is_empty() {
                    return Ok(None);
                }
                let docs = &scores.items[r.clone()];
                let relevant = docs.iter().filter(|d| d.label == "relevant").count();
                let mean = docs.iter().map(|d| d.score).sum::<f64>() / docs.len() as f64;
                let best = docs
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
                    .expect("non-empty");
                let label = match relevant {
                    0 => "irrelevant",
                    n if n == docs.len() => "relevant",
                    _ => "partly_relevant",
                };
                let per_doc: Vec<String> = docs.iter().map(|d| format!("{:.2}", d.score)).collect();
                Ok(Some(Judged {
                    verdict: Verdict {
                        score: Some(mean),
                        label: label.into(),
                        passed: relevant > 0,
                        explanation: format!(
                            "{relevant} of {} retrieved document(s) relevant to the query (scores {}); best is #{} {}",
                            docs.len(),
                            per_doc.join(", "),
                            best.0 + 1,
                            quote(items[r.start + best.0].1.as_str()),
                        ),
                    },
                    judge_model: Some(scores.model.clone()),
                }))
            })
            .collect()
    }
}

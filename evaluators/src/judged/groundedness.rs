//! `groundedness`: is each sentence of a response supported by the documents retrieved for it?
//! A response with no retrieved context anywhere in its trace gets no verdict: there is nothing
//! to be grounded in, and calling it ungrounded would page people for chit-chat.

use std::sync::Arc;

use async_trait::async_trait;

use super::{clip, context_documents, judge_failed, quote, MAX_JUDGE_TEXT_BYTES};
use crate::error::EvalError;
use crate::evaluate::{Evaluate, Judged, Subject};
use crate::judge_client::JudgeClient;
use crate::span::SpanView;
use crate::Verdict;

pub struct Groundedness {
    judge: Arc<dyn JudgeClient>,
}

impl Groundedness {
    pub fn new(judge: Arc<dyn JudgeClient>) -> Groundedness {
        Groundedness { judge }
    }
}

#[async_trait]
impl Evaluate for Groundedness {
    fn name(&self) -> &str {
        "groundedness"
    }

    fn version(&self) -> u32 {
        1
    }

    fn selects(&self, span: &SpanView) -> bool {
        span.is_generation() && span.output_text.is_some_and(|t| !t.trim().is_empty())
    }

    fn needs_trace(&self) -> bool {
        true
    }

    fn uses_judge(&self) -> bool {
        true
    }

    async fn evaluate(&self, subjects: &[Subject]) -> Vec<Result<Option<Judged>, EvalError>> {
        let mut items = Vec::new();
        let mut asked = Vec::with_capacity(subjects.len());
        for s in subjects {
            let docs = context_documents(&s.span, &s.trace);
            if docs.is_empty() {
                asked.push(None);
                continue;
            }
            let context = docs.join("\n\n");
            let response = s.span.output_text.as_deref().unwrap_or_default();
            asked.push(Some((items.len(), docs.len())));
            items.push((
                clip(&context, MAX_JUDGE_TEXT_BYTES).to_string(),
                clip(response, MAX_JUDGE_TEXT_BYTES).to_string(),
            ));
        }
        let scores = match items.is_empty() {
            true => None,
            false => match self.judge.groundedness(&items).await {
                Ok(s) => Some(s),
                Err(e) => return judge_failed(subjects.len(), &e),
            },
        };
        asked
            .into_iter()
            .map(|a| {
                let Some((i, n_docs)) = a else {
                    return Ok(None);
                };
                let scores = scores.as_ref().expect("asked items were scored");
                let s = &scores.items[i];
                let supported = s.label == "supported";
                let unsupported: Vec<_> =
                    s.sentences.iter().filter(|x| x.label != "supported").collect();
                let explanation = match (supported, unsupported.first()) {
                    (true, _) | (false, None) => format!(
                        "{} sentence(s) checked against {n_docs} retrieved document(s); all supported (lowest score {:.2})",
                        s.sentences.len().max(1),
                        s.score
                    ),
                    (false, Some(worst)) => format!(
                        "{} of {} sentence(s) not supported by the {n_docs} retrieved document(s); e.g. {} (score {:.2})",
                        unsupported.len(),
                        s.sentences.len(),
                        quote(&worst.text),
                        worst.score
                    ),
                };
                Ok(Some(Judged {
                    verdict: Verdict {
                        score: Some(s.score),
                        label: if supported { "grounded" } else { "ungrounded" }.into(),
                        passed: supported,
                        explanation,
                    },
                    judge_model: Some(scores.model.clone()),
                }))
            })
            .collect()
    }
}

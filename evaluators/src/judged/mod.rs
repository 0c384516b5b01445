//! Evaluators that ask a judge model ([`crate::judge_client`]): groundedness of responses in
//! their retrieved context, relevance of retrieved documents to the query, and the completion of
//! agent runs, which reads a whole trace.

mod context_relevance;
mod groundedness;
mod task_completion;

pub use context_relevance::ContextRelevance;
pub use groundedness::Groundedness;
pub use task_completion::{TaskCompletion, TaskCompletionLimits};

use crate::error::EvalError;
use crate::span::SpanRow;

/// The same judge failure for each of `n` subjects: a busy judge leaves them all for a retry,
/// a broken answer marks them all failed.
pub(crate) fn judge_failed<T>(n: usize, e: &EvalError) -> Vec<Result<T, EvalError>> {
    let message = e.to_string();
    (0..n)
        .map(|_| {
            Err(match e {
                EvalError::JudgeUnavailable { retry_after, .. } => EvalError::JudgeUnavailable {
                    message: message.clone(),
                    retry_after: *retry_after,
                },
                _ => EvalError::Judge(message.clone()),
            })
        })
        .collect()
}

/// Longest context or text sent to a judge; the server refuses more than 256 KiB.
pub(crate) const MAX_JUDGE_TEXT_BYTES: usize = 200 * 1024;

/// Cuts `text` at a character boundary at most `max` bytes in.
pub(crate) fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A short quote of untrusted text for an explanation.
pub(crate) fn quote(text: &str) -> String {
    let t: String = text.chars().take(80).collect();
    if t.len() < text.len() {
        format!("\"{t}…\"")
    } else {
        format!("\"{t}\"")
    }
}

/// The documents a response was given: its own span's, else those retrieved earlier in its
/// trace (retrieval spans that started no later than it).
pub(crate) fn context_documents<'a>(span: &'a SpanRow, trace: &'a [SpanRow]) -> Vec<&'a str> {
    let own: Vec<&str> = own_documents(span);
    if !own.is_empty() {
        return own;
    }
    let mut retrievals: Vec<&SpanRow> = trace
        .iter()
        .filter(|s| s.span_id != span.span_id && s.start_ns <= span.start_ns)
        .filter(|s| !own_documents(s).is_empty())
        .collect();
    retrievals.sort_by_key(|s| s.start_ns);
    retrievals.into_iter().flat_map(own_documents).collect()
}

fn own_documents(span: &SpanRow) -> Vec<&str> {
    span.retrieval_documents
        .iter()
        .flatten()
        .filter_map(|d| d.content.as_deref())
        .filter(|c| !c.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::evaluate::{Evaluate, Subject};
    use crate::judge_client::{JudgeClient, JudgeScore, JudgeScores};
    use crate::span::Document;

    /// Stands in for the judge server in these hand-written cases (the real models are tested
    /// end to end in tests/e2e_evals.rs): relevance and support are "the texts share a word of
    /// five letters or more", and every request is recorded.
    #[derive(Default)]
    struct WordOverlapJudge {
        asked: Mutex<Vec<(String, String)>>,
    }

    fn overlap(a: &str, b: &str) -> bool {
        let words = |t: &str| -> Vec<String> {
            t.split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() >= 5)
                .map(str::to_lowercase)
                .collect()
        };
        let b = words(b);
        words(a).iter().any(|w| b.contains(w))
    }

    impl WordOverlapJudge {
        fn score(&self, items: &[(String, String)], yes: &str, no: &str) -> JudgeScores {
            self.asked.lock().unwrap().extend(items.iter().cloned());
            JudgeScores {
                model: "word-overlap".into(),
                items: items
                    .iter()
                    .map(|(a, b)| {
                        let hit = overlap(a, b);
                        JudgeScore {
                            score: if hit { 0.9 } else { 0.1 },
                            label: if hit { yes } else { no }.into(),
                            sentences: vec![],
                        }
                    })
                    .collect(),
            }
        }
    }

    #[async_trait]
    impl JudgeClient for WordOverlapJudge {
        async fn groundedness(
            &self,
            items: &[(String, String)],
        ) -> crate::error::Result<JudgeScores> {
            Ok(self.score(items, "supported", "unsupported"))
        }
        async fn context_relevance(
            &self,
            items: &[(String, String)],
        ) -> crate::error::Result<JudgeScores> {
            Ok(self.score(items, "relevant", "irrelevant"))
        }
    }

    fn span(id: &str, start: i64) -> SpanRow {
        SpanRow {
            trace_id: "t".into(),
            span_id: id.into(),
            start_ns: start,
            status_code: "UNSET".into(),
            ..Default::default()
        }
    }

    fn docs(texts: &[&str]) -> Option<Vec<Document>> {
        Some(
            texts
                .iter()
                .map(|t| Document {
                    content: Some(t.to_string()),
                    ..Default::default()
                })
                .collect(),
        )
    }

    #[tokio::test]
    async fn groundedness_reads_context_from_earlier_retrievals_and_skips_answers_without_any() {
        let judge = Arc::new(WordOverlapJudge::default());
        let g = Groundedness::new(judge.clone());
        let mut retrieval = span("r", 1);
        retrieval.retrieval_documents = docs(&["Invoices are emailed monthly."]);
        let mut later = span("late", 9);
        later.retrieval_documents = docs(&["Unrelated document retrieved after the answer."]);
        let mut answer = span("a", 5);
        answer.output_text = Some("Invoices arrive by email.".into());
        let trace = vec![retrieval, later, answer.clone()];
        let mut lonely = span("b", 5);
        lonely.output_text = Some("Hello there.".into());
        let out = g
            .evaluate(&[
                Subject {
                    span: answer,
                    trace,
                },
                Subject {
                    span: lonely.clone(),
                    trace: vec![lonely],
                },
            ])
            .await;
        let v = out[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(
            (v.verdict.label.as_str(), v.verdict.passed),
            ("grounded", true)
        );
        assert!(
            out[1].as_ref().unwrap().is_none(),
            "no context anywhere: no verdict"
        );
        let asked = judge.asked.lock().unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!(
            asked[0].0, "Invoices are emailed monthly.",
            "only documents retrieved before the answer"
        );
    }

    #[tokio::test]
    async fn context_relevance_counts_relevant_documents() {
        let c = ContextRelevance::new(Arc::new(WordOverlapJudge::default()));
        let mut r = span("r", 1);
        r.gen_ai_operation_name = Some("retrieval".into());
        r.input_text = Some("refund policy for damaged parcels".into());
        r.retrieval_documents = docs(&[
            "Damaged parcels are refunded in full.",
            "Our office hours are nine to five.",
        ]);
        assert!(c.selects(&r.view()));
        let out = c
            .evaluate(&[Subject {
                span: r,
                trace: vec![],
            }])
            .await;
        let v = &out[0].as_ref().unwrap().as_ref().unwrap().verdict;
        assert_eq!(
            (v.label.as_str(), v.passed, v.score),
            ("partly_relevant", true, Some(0.5))
        );
        assert!(v.explanation.starts_with("1 of 2"), "{}", v.explanation);
    }

    #[tokio::test]
    async fn task_completion_names_each_part() {
        let t = TaskCompletion::new(
            Some(Arc::new(WordOverlapJudge::default())),
            TaskCompletionLimits::default(),
        );
        let mut root = span("root", 0);
        root.gen_ai_operation_name = Some("invoke_agent".into());
        root.input_text = Some("Cancel my subscription please".into());
        root.output_text = Some("Your subscription is cancelled.".into());
        assert!(t.selects(&root.view()));
        let tool = |id: &str, start: i64, ok: bool| {
            let mut s = span(id, start);
            s.gen_ai_operation_name = Some("execute_tool".into());
            s.span_name = "cancel".into();
            s.status_code = if ok { "OK" } else { "ERROR" }.into();
            s
        };
        // A failure that a retry recovered, and an on-topic answer: completed.
        let trace = vec![root.clone(), tool("t1", 1, false), tool("t2", 2, true)];
        let off = {
            let mut r = root.clone();
            r.output_text = Some("The weather is sunny today.".into());
            r
        };
        let looped: Vec<SpanRow> = std::iter::once(root.clone())
            .chain((0..5).map(|i| tool(&format!("l{i}"), i + 1, true)))
            .collect();
        let out = t
            .evaluate(&[
                Subject {
                    span: root.clone(),
                    trace,
                },
                Subject {
                    span: off.clone(),
                    trace: vec![off],
                },
                Subject {
                    span: root.clone(),
                    trace: looped,
                },
            ])
            .await;
        let v: Vec<_> = out
            .into_iter()
            .map(|r| r.unwrap().unwrap().verdict)
            .collect();
        assert_eq!(
            (v[0].label.as_str(), v[0].passed),
            ("completed", true),
            "{}",
            v[0].explanation
        );
        assert!(
            v[0].explanation.contains("addresses the request"),
            "{}",
            v[0].explanation
        );
        assert_eq!(v[1].label, "off_task", "{}", v[1].explanation);
        assert_eq!(v[2].label, "failed");
        assert!(
            v[2].explanation.contains("5 times in a row"),
            "{}",
            v[2].explanation
        );
    }
}

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

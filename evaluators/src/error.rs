//! Errors of evaluation runs, alert rules and judge calls.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The judge server is busy or unreachable: the spans stay unevaluated and are retried.
    #[error("judge unavailable: {message}")]
    JudgeUnavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The judge answered, but not with what was asked for (a bug or a version mismatch).
    #[error("judge error: {0}")]
    Judge(String),
    #[error("query failed: {0}")]
    Query(#[from] plumb_store::QueryError),
    #[error("storage failed: {0}")]
    Store(#[from] plumb_store::StoreError),
    #[error("could not build rows: {0}")]
    Rows(#[from] plumb_store::records::ArrowError),
    #[error("{0}")]
    Invalid(String),
    #[error("unknown evaluator `{name}`; known: {known}")]
    UnknownEvaluator { name: String, known: String },
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

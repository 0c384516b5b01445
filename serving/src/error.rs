//! Errors of the judge runtime; each says what was wrong and, where the caller can act, what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    #[error("judge model in {dir}: {reason}")]
    Model { dir: PathBuf, reason: String },
    #[error("ONNX Runtime could not be loaded from {path}: {reason}. Run ./scripts/setup.sh, or set ORT_DYLIB_PATH to a libonnxruntime.so")]
    Runtime { path: PathBuf, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("the judge queue is full ({queued} inputs waiting); retry after {retry_after_ms} ms")]
    Overloaded { queued: usize, retry_after_ms: u64 },
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "no {0} judge is loaded; put a model directory for it under the judge models directory"
    )]
    NoJudge(&'static str),
    #[error("the judge is shutting down")]
    ShuttingDown,
}

impl From<ort::Error> for ServingError {
    fn from(e: ort::Error) -> Self {
        ServingError::Inference(e.to_string())
    }
}

pub type Result<T, E = ServingError> = std::result::Result<T, E>;

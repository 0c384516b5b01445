//! Why an export was refused, mapped to HTTP status codes and gRPC codes in one place.

use std::time::Duration;

use plumb_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request is malformed; nothing of it was stored.
    #[error("{0}")]
    Invalid(String),
    #[error("request body is {size} bytes, over the limit of {limit} bytes; send smaller batches or raise collector.max_body_bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("unsupported content type {0:?}; use application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    #[error("Plumb is overloaded: {buffered_bytes} bytes wait to be flushed; retry after {} s", retry_after.as_secs().max(1))]
    Overloaded {
        buffered_bytes: usize,
        retry_after: Duration,
    },
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Overloaded {
                buffered_bytes,
                retry_after,
            } => IngestError::Overloaded {
                buffered_bytes,
                retry_after,
            },
            other => IngestError::Storage(other.to_string()),
        }
    }
}

//! Errors of the store, each saying what went wrong and, where the caller can act, what to do.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("Arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("Parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("catalog error: {0}")]
    Catalog(#[from] sqlx::Error),
    #[error("catalog migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("write buffer is full ({buffered_bytes} bytes waiting to be flushed); retry after {retry_after:?}")]
    Overloaded {
        buffered_bytes: usize,
        retry_after: Duration,
    },
    #[error("the store is shutting down")]
    ShuttingDown,
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Query(#[from] crate::query::QueryError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

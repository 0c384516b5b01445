//! Errors of the web layer and how they become HTTP answers: a JSON body `{"error": "..."}` with a
//! status that says whose fault it was.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use plumb_store::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("catalog: {0}")]
    Catalog(String),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Query(e) => query_status(e),
            WebError::Catalog(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The status a failed query answers with: the caller's fault (refused or invalid SQL) or ours.
pub fn query_status(e: &QueryError) -> StatusCode {
    match e {
        QueryError::ReadOnly(_) => StatusCode::FORBIDDEN,
        QueryError::Invalid(_) => StatusCode::BAD_REQUEST,
        QueryError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        QueryError::MemoryLimit { .. } => StatusCode::INSUFFICIENT_STORAGE,
        QueryError::Execution(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<plumb_store::StoreError> for WebError {
    fn from(e: plumb_store::StoreError) -> Self {
        WebError::Catalog(e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

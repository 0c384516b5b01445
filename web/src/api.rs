//! The JSON API under `/api/v1`: `POST /sql`, `GET /traces/{trace_id}`, the evals and alerts
//! endpoints of [`crate::evals_api`], and `/healthz`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use plumb_store::query::{to_json_rows, JsonRows};
use plumb_store::{QueryError, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::evals_api;

#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub project: String,
    /// The online evaluation runner, when this server runs one.
    pub runner: Option<plumb_evaluators::online::RunnerStatus>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/sql", post(sql))
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/evals", get(evals_api::list_evals))
        .route("/api/v1/evals/runner", get(evals_api::runner))
        .route("/api/v1/evals/compare", get(evals_api::compare))
        .route(
            "/api/v1/alerts/rules",
            get(evals_api::list_rules).post(evals_api::put_rule),
        )
        .route(
            "/api/v1/alerts/rules/{name}",
            delete(evals_api::delete_rule),
        )
        .route("/api/v1/alerts/events", get(evals_api::events))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
pub struct SqlRequest {
    pub query: String,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

pub(crate) fn query_error(e: QueryError) -> Response {
    let status = match e {
        QueryError::ReadOnly(_) => StatusCode::FORBIDDEN,
        QueryError::Invalid(_) => StatusCode::BAD_REQUEST,
        QueryError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        QueryError::MemoryLimit { .. } => StatusCode::INSUFFICIENT_STORAGE,
        QueryError::Execution(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

async fn sql(
    State(s): State<ApiState>,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"query\": \"...\"}}: {e}"),
            )
        }
    };
    match s.store.sql(&s.project, &req.query).await {
        Ok(out) => match to_json_rows(&out) {
            Ok(rows) => Json(rows).into_response(),
            Err(e) => query_error(e),
        },
        Err(e) => query_error(e),
    }
}

/// Columns of a span in the trace view (the heavy text columns stay out; fetch them by SQL).
const TRACE_COLUMNS: &str =
    "trace_id, span_id, parent_span_id, service_name, span_name, span_kind, \
    start_time, end_time, duration_ms, status_code, status_message, route, \
    gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model, gen_ai_response_model, \
    gen_ai_usage_input_tokens, gen_ai_usage_output_tokens, gen_ai_response_time_to_first_chunk, \
    cost_usd, span_attributes, events";

async fn trace(State(s): State<ApiState>, Path(trace_id): Path<String>) -> Response {
    let trace_id = trace_id.to_ascii_lowercase();
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return error(
            StatusCode::BAD_REQUEST,
            "trace_id must be 32 hex characters",
        );
    }
    // Safe to inline: validated as hex above.
    let q = format!(
        "SELECT {TRACE_COLUMNS} FROM spans WHERE trace_id = '{trace_id}' ORDER BY start_time"
    );
    let rows = match s
        .store
        .sql(&s.project, &q)
        .await
        .and_then(|o| to_json_rows(&o))
    {
        Ok(r) => r,
        Err(e) => return query_error(e),
    };
    if rows.rows.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            format!("no spans with trace_id {trace_id}"),
        );
    }
    Json(trace_tree(&trace_id, rows)).into_response()
}

/// Nests spans under their parents; spans whose parent is missing become roots.
pub fn trace_tree(trace_id: &str, rows: JsonRows) -> Value {
    let mut spans: Vec<serde_json::Map<String, Value>> = rows
        .rows
        .into_iter()
        .map(|r| rows.columns.iter().cloned().zip(r).collect())
        .collect();
    let id_of = |m: &serde_json::Map<String, Value>, k: &str| {
        m.get(k).and_then(|v| v.as_str()).map(str::to_string)
    };
    let ids: std::collections::HashSet<String> =
        spans.iter().filter_map(|m| id_of(m, "span_id")).collect();
    let mut children: HashMap<String, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, m) in spans.iter().enumerate() {
        match id_of(m, "parent_span_id").filter(|p| ids.contains(p)) {
            Some(p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    fn build(
        i: usize,
        spans: &mut [serde_json::Map<String, Value>],
        children: &HashMap<String, Vec<usize>>,
        depth: usize,
    ) -> Value {
        let mut m = std::mem::take(&mut spans[i]);
        let id = m
            .get("span_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        // Depth bound: a cyclic parent chain in bad data must not recurse forever.
        let kids: Vec<Value> = if depth < 256 {
            children
                .get(&id)
                .map(|c| {
                    c.iter()
                        .map(|&k| build(k, spans, children, depth + 1))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            vec![]
        };
        m.insert("children".into(), Value::Array(kids));
        Value::Object(m)
    }
    let span_count = spans.len();
    let tree: Vec<Value> = roots
        .iter()
        .map(|&r| build(r, &mut spans, &children, 0))
        .collect();
    serde_json::json!({ "trace_id": trace_id, "span_count": span_count, "roots": tree })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spans_nest_under_parents_and_orphans_are_roots() {
        let rows = JsonRows {
            columns: vec!["span_id".into(), "parent_span_id".into()],
            rows: vec![
                vec![json!("a"), Value::Null],
                vec![json!("b"), json!("a")],
                vec![json!("c"), json!("b")],
                vec![json!("d"), json!("missing")],
            ],
        };
        let t = trace_tree("t", rows);
        assert_eq!(t["span_count"], 4);
        let roots = t["roots"].as_array().unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(roots[0]["children"][0]["children"][0]["span_id"], "c");
        assert_eq!(roots[1]["span_id"], "d");
    }
}

//! The JSON API under `/api/v1`: `POST /sql`, the data behind every page (`/routes`,
//! `/timeline`, `/traces`, `/traces/{trace_id}`, `/evals/overview`), the evals and alerts
//! endpoints of [`crate::evals_api`], and `/healthz`. docs/api.md documents each one.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use plumb_store::query::to_json_rows;
use plumb_store::{QueryError, Store};
use serde::{Deserialize, Serialize};

use crate::dashboard;
use crate::error::{query_status, WebError};
use crate::evals_api;
use crate::time_range::{RangeParams, TimeRange};

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
        .route("/api/v1/routes", get(routes))
        .route("/api/v1/timeline", get(timeline))
        .route("/api/v1/traces", get(search_traces))
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/evals/overview", get(evals_overview))
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
        .merge(crate::pages::router())
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
    error(query_status(&e), e.to_string())
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

/// `GET /api/v1/routes?from=&to=`: the overview's rows.
async fn routes(
    State(s): State<ApiState>,
    Query(range): Query<RangeParams>,
) -> Result<Json<dashboard::overview::Overview>, WebError> {
    let range = TimeRange::from_now(&range)?;
    Ok(Json(
        dashboard::overview::overview(&s.store, &s.project, &range).await?,
    ))
}

#[derive(Debug, Deserialize)]
struct TimelineParams {
    route: Option<String>,
}

/// `GET /api/v1/timeline?route=&from=&to=`: a route's reliability timeline.
async fn timeline(
    State(s): State<ApiState>,
    Query(p): Query<TimelineParams>,
    Query(range): Query<RangeParams>,
) -> Result<Json<dashboard::timeline::Timeline>, WebError> {
    let route = p
        .route
        .filter(|r| !r.is_empty())
        .ok_or_else(|| WebError::BadRequest("`route` is required".into()))?;
    let range = TimeRange::from_now(&range)?;
    Ok(Json(
        dashboard::timeline::timeline(&s.store, &s.project, &route, &range).await?,
    ))
}

/// `GET /api/v1/traces?route=&model=&status=&evaluator=&verdict=&q=&from=&to=&limit=`.
async fn search_traces(
    State(s): State<ApiState>,
    Query(range): Query<RangeParams>,
    Query(filter): Query<dashboard::traces::TraceFilter>,
) -> Result<Json<serde_json::Value>, WebError> {
    let range = TimeRange::from_now(&range)?;
    let traces = dashboard::traces::search(&s.store, &s.project, &range, &filter).await?;
    Ok(Json(
        serde_json::json!({ "range": range, "traces": traces }),
    ))
}

#[derive(Debug, Default, Deserialize)]
struct TraceParams {
    /// Include prompts, outputs and retrieved documents.
    #[serde(default)]
    text: bool,
}

/// `GET /api/v1/traces/{trace_id}[?text=true]`: the trace as a tree, with its verdicts.
async fn trace(
    State(s): State<ApiState>,
    Path(trace_id): Path<String>,
    Query(p): Query<TraceParams>,
) -> Result<Json<serde_json::Value>, WebError> {
    let detail = dashboard::trace::load(&s.store, &s.project, &trace_id, p.text).await?;
    Ok(Json(dashboard::trace::tree(&detail)))
}

/// `GET /api/v1/evals/overview?evaluator=&route=&from=&to=`: the evals page's data.
async fn evals_overview(
    State(s): State<ApiState>,
    Query(range): Query<RangeParams>,
    Query(filter): Query<dashboard::evals::EvalsFilter>,
) -> Result<Json<dashboard::evals::EvalsOverview>, WebError> {
    let range = TimeRange::from_now(&range)?;
    Ok(Json(
        dashboard::evals::overview(&s.store, &s.project, &range, &filter).await?,
    ))
}

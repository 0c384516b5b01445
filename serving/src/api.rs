//! The judge HTTP API on the judge address:
//! `POST /v1/judge/groundedness`, `POST /v1/judge/context_relevance`, `GET /v1/models`,
//! `GET /health`. Bad input is a 400 that names the item and field; a full queue is a 429 with
//! `Retry-After`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::ServingError;
use crate::judges::{GroundednessVerdict, Judges, RelevanceVerdict};
use crate::manifest::Task;

/// Items per request: more would hold the queue for one caller.
pub const MAX_ITEMS: usize = 256;

pub fn router(judges: Arc<Judges>) -> Router {
    Router::new()
        .route("/v1/judge/groundedness", post(groundedness))
        .route("/v1/judge/context_relevance", post(context_relevance))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        // Texts have their own limit (judge.max_text_bytes) with a clearer message.
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(judges)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroundednessItem {
    context: String,
    response: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelevanceItem {
    query: String,
    document: String,
}

async fn groundedness(
    State(judges): State<Arc<Judges>>,
    body: Result<Json<Request<GroundednessItem>>, JsonRejection>,
) -> Response {
    let started = Instant::now();
    let run = async {
        let Json(req) = body.map_err(bad_json)?;
        let judge = judges.judge(Task::Groundedness)?;
        check_count(req.items.len())?;
        for (i, item) in req.items.iter().enumerate() {
            judges.check_groundedness(&format!("items[{i}]"), &item.context, &item.response)?;
        }
        let verdicts: Vec<GroundednessVerdict> = futures_all(
            req.items
                .iter()
                .map(|item| judges.groundedness(&item.context, &item.response)),
        )
        .await?;
        Ok::<_, ServingError>(json!({"model": judge.model.manifest.name, "items": verdicts}))
    };
    let response = respond(run.await);
    judges
        .requests
        .for_task(Task::Groundedness)
        .record(started.elapsed());
    response
}

async fn context_relevance(
    State(judges): State<Arc<Judges>>,
    body: Result<Json<Request<RelevanceItem>>, JsonRejection>,
) -> Response {
    let started = Instant::now();
    let run = async {
        let Json(req) = body.map_err(bad_json)?;
        let judge = judges.judge(Task::ContextRelevance)?;
        check_count(req.items.len())?;
        for (i, item) in req.items.iter().enumerate() {
            judges.check_relevance(&format!("items[{i}]"), &item.query, &item.document)?;
        }
        let verdicts: Vec<RelevanceVerdict> = futures_all(
            req.items
                .iter()
                .map(|item| judges.context_relevance(&item.query, &item.document)),
        )
        .await?;
        Ok::<_, ServingError>(json!({"model": judge.model.manifest.name, "items": verdicts}))
    };
    let response = respond(run.await);
    judges
        .requests
        .for_task(Task::ContextRelevance)
        .record(started.elapsed());
    response
}

async fn models(State(judges): State<Arc<Judges>>) -> Response {
    Json(json!({"models": judges.models()})).into_response()
}

async fn health(State(judges): State<Arc<Judges>>) -> Response {
    Json(json!({"status": "ok", "models": judges.models().len()})).into_response()
}

/// All items of a request run concurrently, so their inputs share batches.
async fn futures_all<T>(
    futures: impl Iterator<Item = impl std::future::Future<Output = Result<T, ServingError>>>,
) -> Result<Vec<T>, ServingError> {
    futures::future::try_join_all(futures).await
}

fn check_count(n: usize) -> Result<(), ServingError> {
    match n {
        0 => Err(ServingError::BadRequest("items is empty".into())),
        n if n > MAX_ITEMS => Err(ServingError::BadRequest(format!(
            "{n} items; send at most {MAX_ITEMS} per request"
        ))),
        _ => Ok(()),
    }
}

fn bad_json(e: JsonRejection) -> ServingError {
    ServingError::BadRequest(format!("invalid request body: {}", e.body_text()))
}

fn respond(result: Result<serde_json::Value, ServingError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => {
            let status = match &e {
                ServingError::BadRequest(_) => StatusCode::BAD_REQUEST,
                ServingError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
                ServingError::NoJudge(_) => StatusCode::NOT_FOUND,
                ServingError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut response = (status, Json(json!({"error": e.to_string()}))).into_response();
            if let ServingError::Overloaded { retry_after_ms, .. } = e {
                let secs = retry_after_ms.div_ceil(1000).max(1);
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&secs.to_string()).expect("digits"),
                );
            }
            response
        }
    }
}

//! The judge HTTP API on the judge address:
//! `POST /v1/judge/groundedness`, `POST /v1/judge/context_relevance`, `GET /v1/models`,
//! `GET /health`. Bad input is a 400 that names the item and field; a full queue is a 429 with
//! `Retry-After`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ServingError;
use crate::judges::Judges;
use crate::manifest::Task;

/// Items per request: more would hold the queue for one caller.
pub const MAX_ITEMS: usize = 256;

pub fn router(judges: Arc<Judges>) -> Router {
    Router::new()
        .route("/v1/judge/groundedness", post(judge::<GroundednessItem>))
        .route("/v1/judge/context_relevance", post(judge::<RelevanceItem>))
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

/// One item of a judge request: which task it is for, how its texts are checked, how it is
/// scored. Both endpoints share everything else.
trait Item: DeserializeOwned + Send + Sync + 'static {
    const TASK: Task;
    fn check(&self, judges: &Judges, field: &str) -> Result<(), ServingError>;
    fn score(&self, judges: &Judges) -> impl Future<Output = Result<Value, ServingError>> + Send;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroundednessItem {
    context: String,
    response: String,
}

impl Item for GroundednessItem {
    const TASK: Task = Task::Groundedness;

    fn check(&self, judges: &Judges, field: &str) -> Result<(), ServingError> {
        judges.check_groundedness(field, &self.context, &self.response)
    }

    async fn score(&self, judges: &Judges) -> Result<Value, ServingError> {
        let v = judges.groundedness(&self.context, &self.response).await?;
        Ok(serde_json::to_value(v).expect("verdicts serialize"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelevanceItem {
    query: String,
    document: String,
}

impl Item for RelevanceItem {
    const TASK: Task = Task::ContextRelevance;

    fn check(&self, judges: &Judges, field: &str) -> Result<(), ServingError> {
        judges.check_relevance(field, &self.query, &self.document)
    }

    async fn score(&self, judges: &Judges) -> Result<Value, ServingError> {
        let v = judges
            .context_relevance(&self.query, &self.document)
            .await?;
        Ok(serde_json::to_value(v).expect("verdicts serialize"))
    }
}

/// Checks every item before any is queued, then scores them all concurrently, so their inputs
/// share batches.
async fn judge<T: Item>(
    State(judges): State<Arc<Judges>>,
    body: Result<Json<Request<T>>, JsonRejection>,
) -> Response {
    let started = Instant::now();
    let run = async {
        let Json(req) = body.map_err(bad_json)?;
        let judge = judges.judge(T::TASK)?;
        check_count(req.items.len())?;
        for (i, item) in req.items.iter().enumerate() {
            item.check(&judges, &format!("items[{i}]"))?;
        }
        let verdicts =
            futures::future::try_join_all(req.items.iter().map(|item| item.score(&judges))).await?;
        Ok::<_, ServingError>(json!({"model": judge.model.manifest.name, "items": verdicts}))
    };
    let response = respond(run.await);
    judges.requests.for_task(T::TASK).record(started.elapsed());
    response
}

async fn models(State(judges): State<Arc<Judges>>) -> Response {
    Json(json!({"models": judges.models()})).into_response()
}

async fn health(State(judges): State<Arc<Judges>>) -> Response {
    Json(json!({"status": "ok", "models": judges.models().len()})).into_response()
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

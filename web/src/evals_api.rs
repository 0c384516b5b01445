//! The evals and alerts parts of the JSON API: verdicts, the online runner's lag, cohort
//! comparisons, alert rules (create, list, delete) with their state, and alert events.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use plumb_evaluators::alerts::AlertRule;
use plumb_evaluators::compare::{compare as compare_cohorts, Cohort};
use plumb_evaluators::source::{quoted, timestamp_literal};
use plumb_store::query::to_json_rows;
use serde::Deserialize;
use serde_json::json;

use crate::api::{error, query_error, ApiState};

/// A query's rows as the JSON answer, or the query's error.
async fn rows_response(s: &ApiState, sql: &str) -> Response {
    match s
        .store
        .sql(&s.project, sql)
        .await
        .and_then(|o| to_json_rows(&o))
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => query_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct EvalsQuery {
    evaluator: Option<String>,
    route: Option<String>,
    trace_id: Option<String>,
    /// Span start times, Unix nanoseconds.
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/v1/evals`: the newest verdicts matching the filters.
pub async fn list_evals(State(s): State<ApiState>, Query(q): Query<EvalsQuery>) -> Response {
    let mut f = vec!["TRUE".to_string()];
    if let Some(e) = &q.evaluator {
        f.push(format!("evaluator = {}", quoted(e)));
    }
    if let Some(r) = &q.route {
        f.push(format!("route = {}", quoted(r)));
    }
    if let Some(t) = &q.trace_id {
        f.push(format!("trace_id = {}", quoted(&t.to_ascii_lowercase())));
    }
    if let Some(t) = q.from {
        f.push(format!("span_start_time >= {}", timestamp_literal(t)));
    }
    if let Some(t) = q.to {
        f.push(format!("span_start_time < {}", timestamp_literal(t)));
    }
    let sql = format!(
        "SELECT * FROM evals WHERE {} ORDER BY span_start_time DESC LIMIT {}",
        f.join(" AND "),
        q.limit.unwrap_or(100).min(10_000)
    );
    rows_response(&s, &sql).await
}

/// `GET /api/v1/evals/runner`: each lane's cursor and lag.
pub async fn runner(State(s): State<ApiState>) -> Response {
    let lanes = s
        .runner
        .as_ref()
        .map(|r| r.read().expect("status lock").clone())
        .unwrap_or_default();
    Json(json!({"enabled": s.runner.is_some(), "lanes": lanes})).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CompareQuery {
    evaluator: Option<String>,
    a_route: Option<String>,
    a_model: Option<String>,
    a_from: Option<i64>,
    a_to: Option<i64>,
    b_route: Option<String>,
    b_model: Option<String>,
    b_from: Option<i64>,
    b_to: Option<i64>,
    alpha: Option<f64>,
}

/// `GET /api/v1/evals/compare?a_model=..&b_model=..`: cohort b against cohort a.
pub async fn compare(State(s): State<ApiState>, Query(q): Query<CompareQuery>) -> Response {
    let a = Cohort {
        route: q.a_route,
        model: q.a_model,
        from: q.a_from,
        to: q.a_to,
    };
    let b = Cohort {
        route: q.b_route,
        model: q.b_model,
        from: q.b_from,
        to: q.b_to,
    };
    let alpha = q.alpha.unwrap_or(0.05);
    match compare_cohorts(&s.store, &s.project, &a, &b, q.evaluator.as_deref(), alpha).await {
        Ok(rows) => {
            Json(json!({"a": a, "b": b, "alpha": alpha, "evaluators": rows})).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `GET /api/v1/alerts/rules`: rules with their current state.
pub async fn list_rules(State(s): State<ApiState>) -> Response {
    let catalog = s.store.catalog();
    let rules = match catalog.alert_rules(Some(&s.project)).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut out = Vec::new();
    for r in rules {
        let state = catalog
            .alert_state(&s.project, &r.name)
            .await
            .ok()
            .flatten();
        let rule: serde_json::Value = serde_json::from_str(&r.spec).unwrap_or_default();
        out.push(json!({"name": r.name, "enabled": r.enabled, "rule": rule, "state": state}));
    }
    Json(json!({"rules": out})).into_response()
}

/// `POST /api/v1/alerts/rules`: creates or replaces a rule (the body is the rule document).
pub async fn put_rule(State(s): State<ApiState>, body: String) -> Response {
    let rule = match AlertRule::parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let spec = serde_json::to_string(&rule).expect("rules serialize");
    match s
        .store
        .catalog()
        .put_alert_rule(&s.project, &rule.name, &spec, rule.enabled)
        .await
    {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!({"name": rule.name, "rule": rule})),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `DELETE /api/v1/alerts/rules/{name}`.
pub async fn delete_rule(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    match s.store.catalog().delete_alert_rule(&s.project, &name).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no alert rule named {name}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    rule: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/alerts/events`: state changes, newest first.
pub async fn events(State(s): State<ApiState>, Query(q): Query<EventsQuery>) -> Response {
    let filter = q
        .rule
        .map(|r| format!("WHERE rule_name = {}", quoted(&r)))
        .unwrap_or_default();
    let sql = format!(
        "SELECT * FROM alert_events {filter} ORDER BY time DESC LIMIT {}",
        q.limit.unwrap_or(100).min(10_000)
    );
    rows_response(&s, &sql).await
}

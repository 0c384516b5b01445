//! The server-rendered dashboard (leptos `view!`, rendered to HTML on each request; no
//! WebAssembly). Each page module draws one page from a `dashboard` struct; this module wires
//! them to the URLs of DESIGN.md and serves the stylesheet and the small script.

pub mod alerts;
pub mod chart;
pub mod evals;
pub mod format;
pub mod layout;
pub mod overview;
pub mod route;
pub mod sql;
pub mod traces;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::api::ApiState;
use crate::dashboard;
use crate::error::WebError;
use crate::time_range::{RangeParams, TimeRange};
use layout::{respond, Section};

const CSS: &str = include_str!("../../assets/plumb.css");
const JS: &str = include_str!("../../assets/plumb.js");
const ICON: &str = include_str!("../../assets/plumb.svg");

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(overview_page))
        .route("/routes/{route}", get(route_page))
        .route("/traces", get(traces_page))
        .route("/traces/{trace_id}", get(trace_page))
        .route("/evals", get(evals_page))
        .route("/alerts", get(alerts_page).post(save_rule))
        .route("/alerts/{name}/delete", post(delete_rule))
        .route("/sql", get(sql_page))
        .route(
            "/assets/plumb.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/plumb.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/plumb.svg",
            get(|| async { asset(ICON, "image/svg+xml") }),
        )
        .route(
            "/favicon.ico",
            get(|| async { asset(ICON, "image/svg+xml") }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn overview_page(
    State(s): State<ApiState>,
    Query(range): Query<RangeParams>,
    Query(sort): Query<overview::SortParams>,
) -> Response {
    let page = async {
        let range = TimeRange::from_now(&range)?;
        let o = dashboard::overview::overview(&s.store, &s.project, &range).await?;
        Ok(overview::render(o, &sort))
    };
    respond(Section::Overview, page.await)
}

async fn route_page(
    State(s): State<ApiState>,
    Path(route): Path<String>,
    Query(range): Query<RangeParams>,
) -> Response {
    let page = async {
        let range = TimeRange::from_now(&range)?;
        let t = dashboard::timeline::timeline(&s.store, &s.project, &route, &range).await?;
        Ok(route::render(t))
    };
    respond(Section::Overview, page.await)
}

async fn traces_page(
    State(s): State<ApiState>,
    Query(range): Query<RangeParams>,
    Query(filter): Query<dashboard::traces::TraceFilter>,
) -> Response {
    let page = async {
        let range = TimeRange::from_now(&range)?;
        let found = dashboard::traces::search(&s.store, &s.project, &range, &filter).await?;
        Ok(traces::search_page(range, filter, found))
    };
    respond(Section::Traces, page.await)
}

async fn trace_page(State(s): State<ApiState>, Path(trace_id): Path<String>) -> Response {
    let page = async {
        let t = dashboard::trace::load(&s.store, &s.project, &trace_id, true).await?;
        Ok(traces::trace_page(t))
    };
    respond(Section::Traces, page.await)
}

async fn evals_page(
    State(s): State<ApiState>,
    Query(range): Query<RangeParams>,
    Query(filter): Query<dashboard::evals::EvalsFilter>,
) -> Response {
    let page = async {
        let range = TimeRange::from_now(&range)?;
        let o = dashboard::evals::overview(&s.store, &s.project, &range, &filter).await?;
        Ok(evals::render(o, &filter))
    };
    respond(Section::Evals, page.await)
}

#[derive(Debug, Default, Deserialize)]
struct EditParams {
    edit: Option<String>,
}

async fn alerts_page(State(s): State<ApiState>, Query(p): Query<EditParams>) -> Response {
    let page = async {
        let rules = dashboard::alerts::rules(&s.store, &s.project).await?;
        let events = dashboard::alerts::events(&s.store, &s.project).await?;
        let editing = p.edit.filter(|n| rules.iter().any(|r| &r.name == n));
        let spec = editing
            .as_ref()
            .and_then(|n| rules.iter().find(|r| &r.name == n))
            .map(|r| r.spec.clone())
            .unwrap_or_else(|| alerts::EXAMPLE_RULE.to_string());
        Ok(alerts::render(
            rules,
            events,
            alerts::Form {
                spec,
                error: None,
                editing,
            },
        ))
    };
    respond(Section::Alerts, page.await)
}

#[derive(Debug, Deserialize)]
struct RuleForm {
    spec: String,
}

/// Saves a rule from the form; on a bad rule the page comes back with the error and the text
/// as typed, so nothing is lost.
async fn save_rule(State(s): State<ApiState>, Form(f): Form<RuleForm>) -> Response {
    let saved: Result<(), WebError> = async {
        let rule = plumb_evaluators::alerts::AlertRule::parse(&f.spec)
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        let spec = serde_json::to_string(&rule).expect("rules serialize");
        s.store
            .catalog()
            .put_alert_rule(&s.project, &rule.name, &spec, rule.enabled)
            .await?;
        Ok(())
    }
    .await;
    match saved {
        Ok(()) => Redirect::to("/alerts").into_response(),
        Err(e) => {
            let page = async {
                let rules = dashboard::alerts::rules(&s.store, &s.project).await?;
                let events = dashboard::alerts::events(&s.store, &s.project).await?;
                Ok::<_, WebError>(alerts::render(
                    rules,
                    events,
                    alerts::Form {
                        spec: f.spec.clone(),
                        error: Some(e.to_string()),
                        editing: None,
                    },
                ))
            };
            match page.await {
                Ok(body) => layout::html(StatusCode::BAD_REQUEST, body),
                Err(e) => layout::error_page(Section::Alerts, &e),
            }
        }
    }
}

async fn delete_rule(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    match s.store.catalog().delete_alert_rule(&s.project, &name).await {
        Ok(_) => Redirect::to("/alerts").into_response(),
        Err(e) => layout::error_page(Section::Alerts, &e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
struct SqlParams {
    q: Option<String>,
}

async fn sql_page(State(s): State<ApiState>, Query(p): Query<SqlParams>) -> Response {
    let query = p.q.filter(|q| !q.trim().is_empty());
    let result = match &query {
        None => None,
        Some(q) => Some(match s.store.sql(&s.project, q).await {
            Ok(out) => plumb_store::query::to_json_rows(&out).map(|rows| (out, rows)),
            Err(e) => Err(e),
        }),
    };
    // A failed query is part of using a console, not a failed page: the page answers 200 and
    // shows the error (the JSON API answers with the error's status).
    layout::html(StatusCode::OK, sql::render(query, result))
}

//! `/`: every route with its traffic, errors, latency, cost, eval pass rates and alert state,
//! sortable by any column.

use leptos::prelude::*;
use serde::Deserialize;

use super::chart::sparkline;
use super::format;
use super::layout::{document, Picker, Section};
use crate::dashboard::overview::{Overview, RouteSummary};
use crate::time_range::{url_encode, TimeRange};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SortParams {
    pub sort: Option<String>,
    pub dir: Option<String>,
}

const COLUMNS: &[(&str, &str)] = &[
    ("route", "Route"),
    ("requests", "Requests"),
    ("rate", "Rate"),
    ("error_rate", "Errors"),
    ("ttft_p50", "TTFT p50"),
    ("ttft_p95", "TTFT p95"),
    ("cost", "Cost"),
];

fn sort_routes(routes: &mut [RouteSummary], key: &str, desc: bool) {
    let opt = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
    routes.sort_by(|a, b| {
        let o = match key {
            "route" => a.route.cmp(&b.route),
            "error_rate" => a.error_rate.total_cmp(&b.error_rate),
            "ttft_p50" => opt(a.ttft_p50).total_cmp(&opt(b.ttft_p50)),
            "ttft_p95" => opt(a.ttft_p95).total_cmp(&opt(b.ttft_p95)),
            "cost" => opt(a.cost_usd).total_cmp(&opt(b.cost_usd)),
            _ => a.requests.cmp(&b.requests),
        };
        if desc {
            o.reverse()
        } else {
            o
        }
    });
}

pub fn render(mut o: Overview, sort: &SortParams) -> String {
    let key = sort.sort.clone().unwrap_or_else(|| "requests".into());
    let desc = sort.dir.as_deref() != Some("asc");
    sort_routes(&mut o.routes, &key, desc);
    let range = o.range.clone();
    let header = COLUMNS
        .iter()
        .map(|(k, label)| {
            let next_dir = if key == *k && desc { "asc" } else { "desc" };
            let arrow = if key == *k {
                if desc {
                    " ▾"
                } else {
                    " ▴"
                }
            } else {
                ""
            };
            let href = format!("/?sort={k}&dir={next_dir}&{}", range.query());
            view! { <th><a href=href>{*label}{arrow}</a></th> }
        })
        .collect_view();
    let empty = o.routes.is_empty();
    let more = o.more_routes;
    let rows = o
        .routes
        .into_iter()
        .map(|r| route_row(r, &range))
        .collect_view();
    let body = view! {
        <h1>"Routes"</h1>
        <p class="hint">
            "Every route that served requests in the range. Click a route for its reliability timeline."
        </p>
        {empty.then(|| view! {
            <div class="empty">
                <p>"No spans in this range yet."</p>
                <p>
                    "Point an OpenTelemetry exporter at this server's OTLP port (4317 for gRPC, 4318 for HTTP), "
                    "or widen the range above."
                </p>
            </div>
        })}
        <table class="routes sortable">
            <thead><tr>{header}<th>"Evals (pass rate)"</th><th>"Alerts"</th><th>"Requests over time"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
        {(more > 0).then(|| view! { <p class="hint">{format!("{more} quieter routes not shown.")}</p> })}
    };
    let picker = Picker {
        path: "/".into(),
        keep: [("sort", sort.sort.clone()), ("dir", sort.dir.clone())]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
        range: range.clone(),
    };
    document("Routes", Section::Overview, Some(picker), body)
}

fn route_row(r: RouteSummary, range: &TimeRange) -> impl IntoView {
    let href = format!("/routes/{}?{}", url_encode(&r.route), range.query());
    let evals = r
        .evals
        .iter()
        .map(|e| {
            let bad = e.pass_rate.is_some_and(|p| p < 0.9);
            view! {
                <span class={if bad { "pill bad" } else { "pill" }} title=format!("{} verdicts", e.count)>
                    {e.evaluator.clone()}" "{format::pct(e.pass_rate)}
                </span>
            }
        })
        .collect_view();
    let state = r.alert_state.clone().unwrap_or_default();
    let state_class = format!("state {state}");
    view! {
        <tr>
            <td class="route"><a href=href>{r.route.clone()}</a></td>
            <td class="num">{format::count(r.requests)}</td>
            <td class="num">{format::rate(r.request_rate)}</td>
            <td class={if r.error_rate >= 0.05 { "num bad" } else { "num" }}>{format::pct(Some(r.error_rate))}</td>
            <td class="num">{format::secs(r.ttft_p50)}</td>
            <td class="num">{format::secs(r.ttft_p95)}</td>
            <td class="num">{format::usd(r.cost_usd)}</td>
            <td>{evals}</td>
            <td><span class=state_class>{if state.is_empty() { format::NONE.to_string() } else { state.clone() }}</span></td>
            <td inner_html=sparkline(&r.sparkline)></td>
        </tr>
    }
}

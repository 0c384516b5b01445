//! The overview: one row per route with its traffic, errors, latency, cost, eval pass rates,
//! alert state and a request-rate sparkline, all aggregated in SQL over the chosen range.

use std::collections::BTreeMap;

use plumb_evaluators::alerts::AlertRule;
use plumb_store::Store;
use serde::Serialize;

use super::{bucket_expr, f64_at, i64_at, rows, str_at, u64_at};
use crate::error::WebError;
use crate::time_range::TimeRange;

/// At most this many routes are listed (the busiest first); the rest are counted.
pub const MAX_ROUTES: usize = 200;
const SPARK_BUCKETS: i64 = 30;

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub range: TimeRange,
    pub bucket_secs: i64,
    pub routes: Vec<RouteSummary>,
    /// Routes beyond [`MAX_ROUTES`] that were not listed.
    pub more_routes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteSummary {
    pub route: String,
    pub requests: u64,
    /// Requests per second over the range.
    pub request_rate: f64,
    pub errors: u64,
    pub error_rate: f64,
    pub ttft_p50: Option<f64>,
    pub ttft_p95: Option<f64>,
    pub cost_usd: Option<f64>,
    pub evals: Vec<EvalRate>,
    /// The worst state among the route's alert rules (`firing` > `pending` > `ok`), if it has any.
    pub alert_state: Option<String>,
    /// Requests per sparkline bucket.
    pub sparkline: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalRate {
    pub evaluator: String,
    pub count: u64,
    pub pass_rate: Option<f64>,
}

pub async fn overview(
    store: &Store,
    project: &str,
    range: &TimeRange,
) -> Result<Overview, WebError> {
    let where_spans = range.sql_filter("start_time");
    let summary_sql = format!(
        "SELECT route, count(*) AS n, count(*) FILTER (WHERE status_code = 'ERROR') AS errors, \
         approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.5) AS ttft_p50, \
         approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.95) AS ttft_p95, \
         sum(cost_usd) AS cost \
         FROM spans WHERE {where_spans} GROUP BY route ORDER BY n DESC, route"
    );
    let bucket_secs = range.bucket_secs(SPARK_BUCKETS);
    let spark_sql = format!(
        "SELECT route, {} AS b, count(*) AS n FROM spans WHERE {where_spans} GROUP BY 1, 2",
        bucket_expr("start_time", bucket_secs)
    );
    let evals_sql = format!(
        "SELECT route, evaluator, count(*) AS n, count(*) FILTER (WHERE passed) AS passed, \
         count(passed) AS judged FROM evals WHERE {} GROUP BY 1, 2 ORDER BY 1, 2",
        range.sql_filter("span_start_time")
    );
    let (summary, spark, evals, states) = tokio::join!(
        rows(store, project, &summary_sql),
        rows(store, project, &spark_sql),
        rows(store, project, &evals_sql),
        route_alert_states(store, project),
    );
    let (summary, spark, evals) = (summary?, spark?, evals?);
    let states = states?;

    let (first, n_buckets) = range.buckets(bucket_secs);
    let width = bucket_secs * 1_000_000_000;
    let mut sparks: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &spark.rows {
        let (Some(route), Some(b)) = (str_at(r, 0), i64_at(r, 1)) else {
            continue;
        };
        let i = ((b - first) / width) as usize;
        if i < n_buckets {
            sparks.entry(route).or_insert_with(|| vec![0; n_buckets])[i] = u64_at(r, 2);
        }
    }
    let mut eval_rates: BTreeMap<String, Vec<EvalRate>> = BTreeMap::new();
    for r in &evals.rows {
        let (Some(route), Some(evaluator)) = (str_at(r, 0), str_at(r, 1)) else {
            continue;
        };
        let (passed, judged) = (u64_at(r, 3), u64_at(r, 4));
        eval_rates.entry(route).or_default().push(EvalRate {
            evaluator,
            count: u64_at(r, 2),
            pass_rate: (judged > 0).then(|| passed as f64 / judged as f64),
        });
    }
    let secs = (range.span() as f64 / 1e9).max(1.0);
    let total = summary.rows.len();
    let routes = summary
        .rows
        .iter()
        .take(MAX_ROUTES)
        .filter_map(|r| {
            let route = str_at(r, 0)?;
            let requests = u64_at(r, 1);
            let errors = u64_at(r, 2);
            Some(RouteSummary {
                request_rate: requests as f64 / secs,
                error_rate: if requests > 0 {
                    errors as f64 / requests as f64
                } else {
                    0.0
                },
                requests,
                errors,
                ttft_p50: f64_at(r, 3),
                ttft_p95: f64_at(r, 4),
                cost_usd: f64_at(r, 5),
                evals: eval_rates.remove(&route).unwrap_or_default(),
                alert_state: states.get(&route).cloned(),
                sparkline: sparks.remove(&route).unwrap_or_else(|| vec![0; n_buckets]),
                route,
            })
        })
        .collect();
    Ok(Overview {
        range: range.clone(),
        bucket_secs,
        routes,
        more_routes: total.saturating_sub(MAX_ROUTES) as u64,
    })
}

/// The worst current alert state per route, over the rules that name a route.
async fn route_alert_states(
    store: &Store,
    project: &str,
) -> Result<BTreeMap<String, String>, WebError> {
    let catalog = store.catalog();
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for stored in catalog.alert_rules(Some(project)).await? {
        let Ok(rule) = AlertRule::parse(&stored.spec) else {
            continue;
        };
        let Some(route) = rule.route else { continue };
        let state = catalog
            .alert_state(project, &stored.name)
            .await?
            .map(|s| s.state)
            .unwrap_or_else(|| "ok".into());
        let rank = |s: &str| match s {
            "firing" => 2,
            "pending" => 1,
            _ => 0,
        };
        let e = out.entry(route).or_insert_with(|| "ok".into());
        if rank(&state) > rank(e) {
            *e = state;
        }
    }
    Ok(out)
}

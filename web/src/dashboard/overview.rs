//! The overview: one row per route with its traffic, errors, latency, cost, eval pass rates,
//! alert state and a request-rate sparkline over the chosen range: traffic from the store's
//! per-minute rollups when the sparkline's buckets are whole minutes, the rest in SQL.

use std::collections::{BTreeMap, HashMap};

use plumb_evaluators::alerts::AlertRule;
use plumb_store::rollup::{RollupRow, Traffic, NANOS_PER_MINUTE};
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
    let bucket_secs = range.bucket_secs(SPARK_BUCKETS);
    let (first, n_buckets) = range.buckets(bucket_secs);
    let spark = Spark {
        first,
        width: bucket_secs * 1_000_000_000,
        n: n_buckets,
    };
    let evals_sql = format!(
        "SELECT route, evaluator, count(*) AS n, count(*) FILTER (WHERE passed) AS passed, \
         count(passed) AS judged FROM evals WHERE {} GROUP BY 1, 2 ORDER BY 1, 2",
        range.sql_filter("span_start_time")
    );
    let (traffic, evals, states) = tokio::join!(
        route_traffic(store, project, range, &spark),
        rows(store, project, &evals_sql),
        route_alert_states(store, project),
    );
    let (traffic, evals, states) = (traffic?, evals?, states?);

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
    let total = traffic.len();
    let routes = traffic
        .into_iter()
        .take(MAX_ROUTES)
        .map(|t| RouteSummary {
            request_rate: t.requests as f64 / secs,
            error_rate: if t.requests > 0 {
                t.errors as f64 / t.requests as f64
            } else {
                0.0
            },
            requests: t.requests,
            errors: t.errors,
            ttft_p50: t.ttft_p50,
            ttft_p95: t.ttft_p95,
            cost_usd: t.cost_usd,
            evals: eval_rates.remove(&t.route).unwrap_or_default(),
            alert_state: states.get(&t.route).cloned(),
            sparkline: t.sparkline,
            route: t.route,
        })
        .collect();
    Ok(Overview {
        range: range.clone(),
        bucket_secs,
        routes,
        more_routes: total.saturating_sub(MAX_ROUTES) as u64,
    })
}

/// The sparkline's buckets.
struct Spark {
    first: i64,
    width: i64,
    n: usize,
}

impl Spark {
    fn index(&self, t: i64) -> Option<usize> {
        let i = (t - self.first).div_euclid(self.width);
        (0..self.n as i64).contains(&i).then_some(i as usize)
    }
}

/// A route's traffic over the range.
struct RouteTraffic {
    route: String,
    requests: u64,
    errors: u64,
    ttft_p50: Option<f64>,
    ttft_p95: Option<f64>,
    cost_usd: Option<f64>,
    sparkline: Vec<u64>,
}

/// Every route's traffic, busiest first: from the per-minute rollups when the sparkline's
/// buckets are whole minutes and every file in the range has its rollup, else from the spans.
async fn route_traffic(
    store: &Store,
    project: &str,
    range: &TimeRange,
    spark: &Spark,
) -> Result<Vec<RouteTraffic>, WebError> {
    let rolled_up = match spark.width % NANOS_PER_MINUTE {
        0 => {
            store
                .span_rollups(project, None, range.from, range.to)
                .await?
        }
        _ => None,
    };
    let mut out = match rolled_up {
        Some(rows) => traffic_from_rollups(&rows, spark),
        None => traffic_from_spans(store, project, range, spark).await?,
    };
    out.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.route.cmp(&b.route))
    });
    Ok(out)
}

fn traffic_from_rollups(rows: &[RollupRow], spark: &Spark) -> Vec<RouteTraffic> {
    let mut routes: HashMap<&str, (Traffic, Vec<u64>)> = HashMap::new();
    for r in rows {
        let (total, sparkline) = routes
            .entry(&*r.route)
            .or_insert_with(|| (Traffic::default(), vec![0; spark.n]));
        total.absorb(&r.traffic);
        if let Some(i) = spark.index(r.minute) {
            sparkline[i] += r.traffic.requests;
        }
    }
    routes
        .into_iter()
        .map(|(route, (t, sparkline))| RouteTraffic {
            route: route.to_string(),
            requests: t.requests,
            errors: t.errors,
            ttft_p50: t.ttft.quantile(0.5),
            ttft_p95: t.ttft.quantile(0.95),
            cost_usd: t.cost_usd,
            sparkline,
        })
        .collect()
}

async fn traffic_from_spans(
    store: &Store,
    project: &str,
    range: &TimeRange,
    spark: &Spark,
) -> Result<Vec<RouteTraffic>, WebError> {
    let where_spans = range.sql_filter("start_time");
    let summary_sql = format!(
        "SELECT route, count(*) AS n, count(*) FILTER (WHERE status_code = 'ERROR') AS errors, \
         approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.5) AS ttft_p50, \
         approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.95) AS ttft_p95, \
         sum(cost_usd) AS cost FROM spans WHERE {where_spans} GROUP BY route"
    );
    let spark_sql = format!(
        "SELECT route, {} AS b, count(*) AS n FROM spans WHERE {where_spans} GROUP BY 1, 2",
        bucket_expr("start_time", spark.width / 1_000_000_000)
    );
    let (summary, sparks) = tokio::join!(
        rows(store, project, &summary_sql),
        rows(store, project, &spark_sql)
    );
    let mut sparklines: HashMap<String, Vec<u64>> = HashMap::new();
    for r in &sparks?.rows {
        let (Some(route), Some(i)) = (str_at(r, 0), i64_at(r, 1).and_then(|b| spark.index(b)))
        else {
            continue;
        };
        sparklines.entry(route).or_insert_with(|| vec![0; spark.n])[i] = u64_at(r, 2);
    }
    Ok(summary?
        .rows
        .iter()
        .filter_map(|r| {
            let route = str_at(r, 0)?;
            Some(RouteTraffic {
                requests: u64_at(r, 1),
                errors: u64_at(r, 2),
                ttft_p50: f64_at(r, 3),
                ttft_p95: f64_at(r, 4),
                cost_usd: f64_at(r, 5),
                sparkline: sparklines
                    .remove(&route)
                    .unwrap_or_else(|| vec![0; spark.n]),
                route,
            })
        })
        .collect())
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

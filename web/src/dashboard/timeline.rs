//! The reliability timeline of one route: every lane on one bucketed time axis.
//!
//! - infra: gauges of the services that serve the route (GPU utilization, queue depth, KV cache,
//!   whatever the engines export), and metrics labelled with the route;
//! - decisions: the mix of models, providers, engines and pools, plus retries, fallbacks and
//!   cache hits;
//! - latency and errors: TTFT and TPOT p50/p95, latency p95, error rate, parse-failure rate;
//! - evals: each evaluator's pass rate with a Wilson band, and its mean score;
//! - alerts: firing intervals of the rules on this route (or on every route);
//! - changes: when the route's majority model/provider/engine/pool switched, or a `plumb.deploy`
//!   / `plumb.config_change` log event arrived, each with a before/after comparison.
//!
//! Traffic and latency come from the store's per-minute rollups when the buckets are whole
//! minutes (a range of two hours or more), so a day of ten million spans is a few thousand
//! summary rows; a bucket then counts whole minutes. Everything else is aggregated in SQL.

use std::collections::{BTreeMap, HashMap};

use plumb_evaluators::alerts::AlertRule;
use plumb_evaluators::compare::{compare, Cohort, Comparison};
use plumb_evaluators::source::quoted;
use plumb_store::rollup::{RollupRow, Traffic, NANOS_PER_MINUTE};
use plumb_store::Store;
use serde::Serialize;

use super::{bucket_expr, f64_at, i64_at, rows, str_at, u64_at, wilson};
use crate::error::WebError;
use crate::time_range::TimeRange;

/// Buckets on the axis: enough to see a change, few enough to draw and ship.
pub const MAX_BUCKETS: i64 = 120;
/// Infra series beyond this many are left out (known serving metrics first).
const MAX_INFRA_SERIES: usize = 6;
/// Change markers compared before/after (the newest are kept).
const MAX_CHANGES: usize = 12;

/// Metric names whose meaning is known, in the order they are preferred on the infra lane.
const KNOWN_INFRA: &[&str] = &[
    "DCGM_FI_DEV_GPU_UTIL",
    "gpu.utilization",
    "hw.gpu.utilization",
    "nvidia_gpu_utilization",
    "vllm:num_requests_waiting",
    "vllm:num_requests_running",
    "tgi_queue_size",
    "gen_ai.server.request.queue_size",
    "vllm:gpu_cache_usage_perc",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_prefix_cache_hit_rate",
    "DCGM_FI_DEV_FB_USED",
];

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub route: String,
    pub range: TimeRange,
    pub bucket_secs: i64,
    /// Start of each bucket, Unix nanoseconds.
    pub buckets: Vec<i64>,
    pub infra: Vec<Series>,
    pub decisions: Decisions,
    pub latency: Latency,
    pub evals: Vec<EvalSeries>,
    pub alerts: Vec<AlertInterval>,
    pub changes: Vec<ChangeMarker>,
}

/// One numeric series, a value (or a gap) per bucket.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub name: String,
    pub unit: Option<String>,
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decisions {
    /// Per dimension (`model`, `provider`, `engine`, `gpu_pool`), the request count of each value
    /// per bucket.
    pub mix: Vec<Mix>,
    pub retries: Vec<u64>,
    pub fallbacks: Vec<u64>,
    pub cache_hits: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mix {
    pub dimension: String,
    pub value: String,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub requests: Vec<u64>,
    pub errors: Vec<u64>,
    pub error_rate: Vec<Option<f64>>,
    pub ttft_p50: Vec<Option<f64>>,
    pub ttft_p95: Vec<Option<f64>>,
    pub tpot_p50: Vec<Option<f64>>,
    pub tpot_p95: Vec<Option<f64>>,
    pub latency_p95_ms: Vec<Option<f64>>,
    /// Share of `json_parse` verdicts that failed.
    pub parse_failure_rate: Vec<Option<f64>>,
    /// p95 of the spans' `queue_time` (seconds), as the serving side reported it.
    pub queue_time_p95: Vec<Option<f64>>,
    pub cost_usd: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalSeries {
    pub evaluator: String,
    pub count: Vec<u64>,
    pub pass_rate: Vec<Option<f64>>,
    pub pass_low: Vec<Option<f64>>,
    pub pass_high: Vec<Option<f64>>,
    pub mean_score: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertInterval {
    pub rule_name: String,
    pub fired_at: i64,
    /// `None` while still firing.
    pub resolved_at: Option<i64>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
}

/// One change point: what changed there (a rollout often switches model, provider and pool at
/// once, next to its deploy event), and the traffic on either side.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeMarker {
    pub time: i64,
    pub changes: Vec<Change>,
    pub before_window: Window,
    pub after_window: Window,
    /// Per evaluator, the after cohort against the before cohort.
    pub evals: Vec<Comparison>,
}

/// Requests, errors and TTFT of the buckets on one side of a change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Window {
    pub from: i64,
    pub to: i64,
    pub requests: u64,
    pub error_rate: Option<f64>,
    /// The request-weighted mean of the buckets' TTFT p95.
    pub ttft_p95: Option<f64>,
}

pub async fn timeline(
    store: &Store,
    project: &str,
    route: &str,
    range: &TimeRange,
) -> Result<Timeline, WebError> {
    let bucket_secs = range.bucket_secs(MAX_BUCKETS);
    let (first, n) = range.buckets(bucket_secs);
    let axis = Axis {
        first,
        width: bucket_secs * 1_000_000_000,
        n,
    };
    let r = quoted(route);
    let evals_sql = format!(
        "SELECT {} AS b, evaluator, count(*) AS n, count(*) FILTER (WHERE passed) AS passed, \
         count(passed) AS judged, avg(score) AS mean FROM evals \
         WHERE route = {r} AND {} GROUP BY 1, 2",
        bucket_expr("span_start_time", bucket_secs),
        range.sql_filter("span_start_time")
    );
    let events_sql = format!(
        "SELECT CAST(time AS BIGINT) AS t, event_name, body FROM logs \
         WHERE event_name IN ('plumb.deploy', 'plumb.config_change') AND {} \
         AND (log_attributes['plumb.route'] = {r} OR log_attributes['plumb.route'] IS NULL) \
         ORDER BY t LIMIT 50",
        range.sql_filter("time")
    );
    let (traffic, eval_rows, event_rows, alerts) = tokio::join!(
        traffic(store, project, route, range, &axis),
        rows(store, project, &evals_sql),
        rows(store, project, &events_sql),
        alert_intervals(store, project, route, range),
    );
    let ((figures, mix_counts), eval_rows, event_rows, alerts) =
        (traffic?, eval_rows?, event_rows?, alerts?);

    let mut latency = Latency {
        requests: vec![0; n],
        errors: vec![0; n],
        error_rate: vec![None; n],
        ttft_p50: vec![None; n],
        ttft_p95: vec![None; n],
        tpot_p50: vec![None; n],
        tpot_p95: vec![None; n],
        latency_p95_ms: vec![None; n],
        parse_failure_rate: vec![None; n],
        queue_time_p95: vec![None; n],
        cost_usd: vec![None; n],
    };
    let mut decisions = Decisions {
        mix: Vec::new(),
        retries: vec![0; n],
        fallbacks: vec![0; n],
        cache_hits: vec![0; n],
    };
    for (i, f) in figures.into_iter().enumerate() {
        latency.requests[i] = f.requests;
        latency.errors[i] = f.errors;
        latency.error_rate[i] = (f.requests > 0).then(|| f.errors as f64 / f.requests as f64);
        latency.ttft_p50[i] = f.ttft_p50;
        latency.ttft_p95[i] = f.ttft_p95;
        latency.tpot_p50[i] = f.tpot_p50;
        latency.tpot_p95[i] = f.tpot_p95;
        latency.latency_p95_ms[i] = f.latency_p95_ms;
        latency.cost_usd[i] = f.cost_usd;
        latency.queue_time_p95[i] = f.queue_time_p95;
        decisions.retries[i] = f.retries;
        decisions.fallbacks[i] = f.fallbacks;
        decisions.cache_hits[i] = f.cache_hits;
    }

    // The mix per dimension, and the services behind the route (for its infra metrics).
    let mut mix: BTreeMap<(usize, String), Vec<u64>> = BTreeMap::new();
    let mut services: Vec<String> = Vec::new();
    for m in mix_counts {
        for (d, value) in m.dims.into_iter().enumerate() {
            if let Some(v) = value {
                mix.entry((d, v)).or_insert_with(|| vec![0; n])[m.bucket] += m.requests;
            }
        }
        if let Some(s) = m.service {
            if !services.contains(&s) {
                services.push(s);
            }
        }
    }
    decisions.mix = mix
        .into_iter()
        .map(|((d, value), counts)| Mix {
            dimension: DIMENSIONS[d].to_string(),
            value,
            counts,
        })
        .collect();

    let mut evals: BTreeMap<String, EvalSeries> = BTreeMap::new();
    for row in &eval_rows.rows {
        let (Some(i), Some(name)) = (axis.index(i64_at(row, 0)), str_at(row, 1)) else {
            continue;
        };
        let s = evals.entry(name.clone()).or_insert_with(|| EvalSeries {
            evaluator: name,
            count: vec![0; n],
            pass_rate: vec![None; n],
            pass_low: vec![None; n],
            pass_high: vec![None; n],
            mean_score: vec![None; n],
        });
        let (count, passed, judged) = (u64_at(row, 2), u64_at(row, 3), u64_at(row, 4));
        s.count[i] = count;
        if judged > 0 {
            s.pass_rate[i] = Some(passed as f64 / judged as f64);
            if let Some((lo, hi)) = wilson(passed, judged) {
                s.pass_low[i] = Some(lo);
                s.pass_high[i] = Some(hi);
            }
        }
        s.mean_score[i] = f64_at(row, 5);
    }
    if let Some(json) = evals.get("json_parse") {
        latency.parse_failure_rate = json.pass_rate.iter().map(|p| p.map(|p| 1.0 - p)).collect();
    }

    let infra = infra_series(store, project, route, range, &axis, &services).await?;

    let mut changes = detect_changes(&decisions.mix, &axis);
    for row in &event_rows.rows {
        if let (Some(t), Some(kind)) = (i64_at(row, 0), str_at(row, 1)) {
            changes.push(Change {
                time: t,
                kind,
                before: None,
                after: str_at(row, 2),
            });
        }
    }
    let mut changes = group_changes(changes, axis.width);
    if changes.len() > MAX_CHANGES {
        changes.drain(..changes.len() - MAX_CHANGES);
    }
    let changes = compare_changes(store, project, route, range, &axis, &latency, changes).await?;

    Ok(Timeline {
        route: route.to_string(),
        range: range.clone(),
        bucket_secs,
        buckets: (0..n).map(|i| axis.start(i)).collect(),
        infra,
        decisions,
        latency,
        evals: evals.into_values().collect(),
        alerts,
        changes,
    })
}

/// The dimensions of the route-decision mix, in the order [`MixCount::dims`] holds them.
const DIMENSIONS: [&str; 4] = ["model", "provider", "engine", "gpu_pool"];

/// One bucket's traffic and latency.
#[derive(Debug, Clone, Default)]
struct BucketFigures {
    requests: u64,
    errors: u64,
    ttft_p50: Option<f64>,
    ttft_p95: Option<f64>,
    tpot_p50: Option<f64>,
    tpot_p95: Option<f64>,
    latency_p95_ms: Option<f64>,
    queue_time_p95: Option<f64>,
    cost_usd: Option<f64>,
    retries: u64,
    fallbacks: u64,
    cache_hits: u64,
}

/// Requests of one combination of model, provider, engine and pool (and service) in a bucket.
#[derive(Debug, Clone)]
struct MixCount {
    bucket: usize,
    dims: [Option<String>; 4],
    service: Option<String>,
    requests: u64,
}

/// The route's traffic per bucket and its decision mix: from the per-minute rollups when the
/// buckets are whole minutes and every file in the range has its rollup (a day is ~1,440 rows
/// per combination instead of every span), else aggregated from the spans.
async fn traffic(
    store: &Store,
    project: &str,
    route: &str,
    range: &TimeRange,
    axis: &Axis,
) -> Result<(Vec<BucketFigures>, Vec<MixCount>), WebError> {
    if axis.width % NANOS_PER_MINUTE == 0 {
        let rows = store
            .span_rollups(project, Some(route), range.from, range.to)
            .await?;
        if let Some(rows) = rows {
            return Ok(traffic_from_rollups(&rows, axis));
        }
    }
    traffic_from_spans(store, project, route, range, axis).await
}

fn traffic_from_rollups(rows: &[RollupRow], axis: &Axis) -> (Vec<BucketFigures>, Vec<MixCount>) {
    let mut merged: Vec<Option<Traffic>> = vec![None; axis.n];
    let mut mix: HashMap<(usize, [Option<&str>; 4], &str), u64> = HashMap::new();
    for r in rows {
        let Some(i) = axis.index(Some(r.minute)) else {
            continue;
        };
        merged[i]
            .get_or_insert_with(Traffic::default)
            .absorb(&r.traffic);
        for m in &r.mix {
            let dims = [&m.model, &m.provider, &m.engine, &m.gpu_pool].map(|d| d.as_deref());
            *mix.entry((i, dims, &*m.service)).or_default() += m.requests;
        }
    }
    let figures = merged
        .into_iter()
        .map(|m| {
            let Some(m) = m else {
                return BucketFigures::default();
            };
            BucketFigures {
                requests: m.requests,
                errors: m.errors,
                ttft_p50: m.ttft.quantile(0.5),
                ttft_p95: m.ttft.quantile(0.95),
                tpot_p50: m.tpot.quantile(0.5),
                tpot_p95: m.tpot.quantile(0.95),
                latency_p95_ms: m.duration_ms.quantile(0.95),
                queue_time_p95: m.queue_time.quantile(0.95),
                cost_usd: m.cost_usd,
                retries: m.retries,
                fallbacks: m.fallbacks,
                cache_hits: m.cache_hits,
            }
        })
        .collect();
    let mix = mix
        .into_iter()
        .map(|((bucket, dims, service), requests)| MixCount {
            bucket,
            dims: dims.map(|d| d.map(str::to_string)),
            service: Some(service.to_string()),
            requests,
        })
        .collect();
    (figures, mix)
}

async fn traffic_from_spans(
    store: &Store,
    project: &str,
    route: &str,
    range: &TimeRange,
    axis: &Axis,
) -> Result<(Vec<BucketFigures>, Vec<MixCount>), WebError> {
    let spans_where = format!(
        "route = {} AND {}",
        quoted(route),
        range.sql_filter("start_time")
    );
    let b_spans = bucket_expr("start_time", axis.width / 1_000_000_000);
    let latency_sql = format!(
        "SELECT {b_spans} AS b, count(*) AS n, count(*) FILTER (WHERE status_code = 'ERROR') AS errors, \
         approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.5) AS ttft_p50, \
         approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.95) AS ttft_p95, \
         approx_percentile_cont(time_per_output_token, 0.5) AS tpot_p50, \
         approx_percentile_cont(time_per_output_token, 0.95) AS tpot_p95, \
         approx_percentile_cont(duration_ms, 0.95) AS latency_p95, \
         sum(cost_usd) AS cost, sum(retry_count) AS retries, \
         count(*) FILTER (WHERE fallback) AS fallbacks, count(*) FILTER (WHERE cache_hit) AS cache_hits, \
         approx_percentile_cont(queue_time, 0.95) AS queue_p95 \
         FROM spans WHERE {spans_where} GROUP BY 1"
    );
    let mix_sql = format!(
        "SELECT {b_spans} AS b, coalesce(gen_ai_response_model, gen_ai_request_model) AS model, \
         gen_ai_provider_name, engine, gpu_pool, service_name, count(*) AS n \
         FROM spans WHERE {spans_where} GROUP BY 1, 2, 3, 4, 5, 6"
    );
    let (latency_rows, mix_rows) = tokio::join!(
        rows(store, project, &latency_sql),
        rows(store, project, &mix_sql)
    );
    let mut figures = vec![BucketFigures::default(); axis.n];
    for row in &latency_rows?.rows {
        let Some(i) = axis.index(i64_at(row, 0)) else {
            continue;
        };
        figures[i] = BucketFigures {
            requests: u64_at(row, 1),
            errors: u64_at(row, 2),
            ttft_p50: f64_at(row, 3),
            ttft_p95: f64_at(row, 4),
            tpot_p50: f64_at(row, 5),
            tpot_p95: f64_at(row, 6),
            latency_p95_ms: f64_at(row, 7),
            cost_usd: f64_at(row, 8),
            retries: u64_at(row, 9),
            fallbacks: u64_at(row, 10),
            cache_hits: u64_at(row, 11),
            queue_time_p95: f64_at(row, 12),
        };
    }
    let mix = mix_rows?
        .rows
        .iter()
        .filter_map(|row| {
            Some(MixCount {
                bucket: axis.index(i64_at(row, 0))?,
                dims: [1, 2, 3, 4].map(|c| str_at(row, c)),
                service: str_at(row, 5),
                requests: u64_at(row, 6),
            })
        })
        .collect();
    Ok((figures, mix))
}

/// The bucketed time axis.
#[derive(Debug, Clone, Copy)]
struct Axis {
    first: i64,
    width: i64,
    n: usize,
}

impl Axis {
    fn index(&self, t: Option<i64>) -> Option<usize> {
        let t = t?;
        if t < self.first {
            return None;
        }
        let i = ((t - self.first) / self.width) as usize;
        (i < self.n).then_some(i)
    }
    fn start(&self, i: usize) -> i64 {
        self.first + i as i64 * self.width
    }
}

async fn infra_series(
    store: &Store,
    project: &str,
    route: &str,
    range: &TimeRange,
    axis: &Axis,
    services: &[String],
) -> Result<Vec<Series>, WebError> {
    let mut owners = vec![format!("attributes['plumb.route'] = {}", quoted(route))];
    if !services.is_empty() {
        let list: Vec<String> = services.iter().map(|s| quoted(s)).collect();
        owners.push(format!("service_name IN ({})", list.join(", ")));
    }
    let sql = format!(
        "SELECT {} AS b, metric_name, max(unit) AS unit, avg(value) AS v FROM metrics \
         WHERE {} AND value IS NOT NULL \
         AND (metric_type = 'gauge' OR (metric_type = 'sum' AND NOT coalesce(is_monotonic, false))) \
         AND ({}) GROUP BY 1, 2",
        bucket_expr("time", axis.width / 1_000_000_000),
        range.sql_filter("time"),
        owners.join(" OR ")
    );
    let out = rows(store, project, &sql).await?;
    let mut series: HashMap<String, Series> = HashMap::new();
    for row in &out.rows {
        let (Some(i), Some(name)) = (axis.index(i64_at(row, 0)), str_at(row, 1)) else {
            continue;
        };
        let s = series.entry(name.clone()).or_insert_with(|| Series {
            name,
            unit: None,
            values: vec![None; axis.n],
        });
        if s.unit.is_none() {
            s.unit = str_at(row, 2).filter(|u| !u.is_empty() && u != "1");
        }
        s.values[i] = f64_at(row, 3);
    }
    let mut series: Vec<Series> = series.into_values().collect();
    let rank = |s: &Series| {
        KNOWN_INFRA
            .iter()
            .position(|k| *k == s.name)
            .unwrap_or(KNOWN_INFRA.len())
    };
    series.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name)));
    series.truncate(MAX_INFRA_SERIES);
    Ok(series)
}

/// Firing intervals of the rules that watch this route (or every route), overlapping the range.
async fn alert_intervals(
    store: &Store,
    project: &str,
    route: &str,
    range: &TimeRange,
) -> Result<Vec<AlertInterval>, WebError> {
    let names: Vec<String> = store
        .catalog()
        .alert_rules(Some(project))
        .await?
        .into_iter()
        .filter(|r| {
            AlertRule::parse(&r.spec)
                .map(|rule| rule.route.as_deref().is_none_or(|x| x == route))
                .unwrap_or(false)
        })
        .map(|r| quoted(&r.name))
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT rule_name, state, CAST(fired_at AS BIGINT) AS fired, CAST(resolved_at AS BIGINT) AS resolved, \
         value, threshold FROM alert_events WHERE rule_name IN ({}) \
         AND state IN ('firing', 'resolved') AND time < {} ORDER BY time LIMIT 10000",
        names.join(", "),
        crate::time_range::timestamp_literal(range.to)
    );
    let out = rows(store, project, &sql).await?;
    // A firing opens an interval; its resolution (same fired_at) closes it.
    let mut open: BTreeMap<(String, i64), AlertInterval> = BTreeMap::new();
    let mut closed = Vec::new();
    for row in &out.rows {
        let (Some(rule), Some(state), Some(fired)) =
            (str_at(row, 0), str_at(row, 1), i64_at(row, 2))
        else {
            continue;
        };
        if state == "firing" {
            open.insert(
                (rule.clone(), fired),
                AlertInterval {
                    rule_name: rule,
                    fired_at: fired,
                    resolved_at: None,
                    value: f64_at(row, 4),
                    threshold: f64_at(row, 5),
                },
            );
        } else if let Some(mut iv) = open.remove(&(rule.clone(), fired)) {
            iv.resolved_at = i64_at(row, 3);
            closed.push(iv);
        }
    }
    closed.extend(open.into_values());
    closed.retain(|iv| iv.fired_at < range.to && iv.resolved_at.is_none_or(|r| r >= range.from));
    closed.sort_by_key(|iv| iv.fired_at);
    Ok(closed)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub time: i64,
    /// `model`, `provider`, `engine`, `gpu_pool`, or the event's name (`plumb.deploy`, ...).
    pub kind: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Groups changes less than two buckets apart into one change point (at the earliest).
fn group_changes(mut changes: Vec<Change>, bucket_width: i64) -> Vec<(i64, Vec<Change>)> {
    changes.sort_by_key(|c| c.time);
    let mut out: Vec<(i64, Vec<Change>)> = Vec::new();
    for c in changes {
        match out.last_mut() {
            Some((at, group)) if c.time - *at < 2 * bucket_width => group.push(c),
            _ => out.push((c.time, vec![c])),
        }
    }
    out
}

/// A change is a switch of a dimension's majority value (over half of a bucket's requests)
/// between consecutive buckets that have one; mixed buckets never fire a change on their own.
fn detect_changes(mix: &[Mix], axis: &Axis) -> Vec<Change> {
    let mut out = Vec::new();
    let mut dims: BTreeMap<&str, Vec<&Mix>> = BTreeMap::new();
    for m in mix {
        dims.entry(m.dimension.as_str()).or_default().push(m);
    }
    for (dim, values) in dims {
        let mut last: Option<&str> = None;
        for i in 0..axis.n {
            let total: u64 = values.iter().map(|m| m.counts[i]).sum();
            let Some(top) = values.iter().max_by_key(|m| m.counts[i]) else {
                continue;
            };
            if total == 0 || top.counts[i] * 2 <= total {
                continue;
            }
            if let Some(prev) = last {
                if prev != top.value {
                    out.push(Change {
                        time: axis.start(i),
                        kind: dim.to_string(),
                        before: Some(prev.to_string()),
                        after: Some(top.value.clone()),
                    });
                }
            }
            last = Some(top.value.as_str());
        }
    }
    out
}

/// Compares the traffic on either side of each change: up to the neighbouring change (or the
/// range's edge) and no more than a quarter of the range, so that both sides are comparable.
async fn compare_changes(
    store: &Store,
    project: &str,
    route: &str,
    range: &TimeRange,
    axis: &Axis,
    latency: &Latency,
    changes: Vec<(i64, Vec<Change>)>,
) -> Result<Vec<ChangeMarker>, WebError> {
    let max_side = (range.span() / 4).max(axis.width);
    let times: Vec<i64> = changes.iter().map(|c| c.0).collect();
    let futures = changes.into_iter().enumerate().map(|(k, (time, group))| {
        let prev = if k > 0 { times[k - 1] } else { range.from };
        let next = times.get(k + 1).copied().unwrap_or(range.to);
        let before_from = prev.max(time - max_side);
        let after_to = next.min(time + max_side).max(time + axis.width);
        let cohort = |from, to| Cohort {
            route: Some(route.to_string()),
            model: None,
            from: Some(from),
            to: Some(to),
        };
        let (a, b) = (cohort(before_from, time), cohort(time, after_to));
        async move {
            let evals = compare(store, project, &a, &b, None, 0.05)
                .await
                .map_err(|e| WebError::Catalog(e.to_string()))?;
            Ok::<_, WebError>(ChangeMarker {
                time,
                changes: group,
                before_window: window(axis, latency, before_from, time),
                after_window: window(axis, latency, time, after_to),
                evals,
            })
        }
    });
    futures::future::try_join_all(futures).await
}

fn window(axis: &Axis, latency: &Latency, from: i64, to: i64) -> Window {
    let mut w = Window {
        from,
        to,
        ..Window::default()
    };
    let (mut errors, mut ttft_weight, mut ttft_sum) = (0u64, 0u64, 0.0);
    for i in 0..axis.n {
        let t = axis.start(i);
        if t < from || t >= to {
            continue;
        }
        w.requests += latency.requests[i];
        errors += latency.errors[i];
        if let Some(p) = latency.ttft_p95[i] {
            ttft_weight += latency.requests[i];
            ttft_sum += p * latency.requests[i] as f64;
        }
    }
    w.error_rate = (w.requests > 0).then(|| errors as f64 / w.requests as f64);
    w.ttft_p95 = (ttft_weight > 0).then(|| ttft_sum / ttft_weight as f64);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(dimension: &str, value: &str, counts: &[u64]) -> Mix {
        Mix {
            dimension: dimension.into(),
            value: value.into(),
            counts: counts.to_vec(),
        }
    }

    #[test]
    fn a_majority_switch_is_a_change_and_a_mixed_bucket_is_not() {
        let axis = Axis {
            first: 0,
            width: 10,
            n: 6,
        };
        let m = vec![
            mix("model", "a", &[10, 9, 5, 0, 1, 0]),
            mix("model", "b", &[0, 1, 5, 10, 9, 10]),
            mix("gpu_pool", "h100", &[3, 3, 3, 3, 3, 3]),
        ];
        let changes = detect_changes(&m, &axis);
        assert_eq!(
            changes,
            vec![Change {
                time: 30,
                kind: "model".into(),
                before: Some("a".into()),
                after: Some("b".into()),
            }]
        );
    }

    #[test]
    fn changes_close_together_are_one_change_point() {
        let c = |time: i64, kind: &str| Change {
            time,
            kind: kind.into(),
            before: None,
            after: None,
        };
        let groups = group_changes(
            vec![
                c(20, "model"),
                c(5, "plumb.deploy"),
                c(20, "gpu_pool"),
                c(90, "model"),
            ],
            10,
        );
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, 5);
        assert_eq!(groups[0].1.len(), 3);
        assert_eq!(groups[1].0, 90);
    }

    /// Three hours of a route whose model switches, half flushed and half buffered.
    async fn store_with_a_route() -> (tempfile::TempDir, Store) {
        use plumb_store::records::{spans_batch, GenAiFields, SpanRecord};
        use plumb_store::{StoreConfig, Table};
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        let start = 1_763_899_200_000_000_000_i64;
        let span = |i: i64, route: &str| {
            let t = start + i * 1_300_000_000;
            SpanRecord {
                project: "p".into(),
                trace_id: format!("{i:032x}"),
                span_id: format!("{i:016x}"),
                service_name: if i % 5 == 0 { "gw" } else { "llm" }.into(),
                span_name: "chat".into(),
                span_kind: "CLIENT",
                start_time_unix_nano: t,
                end_time_unix_nano: t + (50 + i % 400) * 1_000_000,
                status_code: if i % 17 == 0 { "ERROR" } else { "OK" },
                gen_ai: GenAiFields {
                    route: route.into(),
                    request_model: Some(if i < 4000 { "small" } else { "large" }.into()),
                    provider_name: Some("openai".into()),
                    gpu_pool: (i % 3 == 0).then(|| "h100".into()),
                    response_time_to_first_chunk: Some(0.05 + (i % 97) as f64 * 0.01),
                    time_per_output_token: (i % 4 != 0).then_some(0.01 + (i % 13) as f64 * 0.001),
                    queue_time: Some((i % 7) as f64 * 0.1),
                    cost_usd: (i % 2 == 0).then_some(0.001),
                    retry_count: Some(i % 3),
                    fallback: Some(i % 11 == 0),
                    cache_hit: Some(i % 6 == 0),
                    ..Default::default()
                },
                ..Default::default()
            }
        };
        let rows: Vec<SpanRecord> = (0..8000).map(|i| span(i, "chat")).collect();
        let noise: Vec<SpanRecord> = (0..500).map(|i| span(i * 16, "other")).collect();
        for (k, part) in rows.chunks(4000).enumerate() {
            store
                .write(Table::Spans, "p", spans_batch(part).unwrap())
                .await
                .unwrap();
            if k == 0 {
                store
                    .write(Table::Spans, "p", spans_batch(&noise).unwrap())
                    .await
                    .unwrap();
                store.flush().await.unwrap();
            }
        }
        (dir, store)
    }

    #[tokio::test]
    async fn rollups_and_spans_give_the_same_timeline_traffic() {
        let (_dir, store) = store_with_a_route().await;
        let start = 1_763_899_200_000_000_000_i64;
        let range = TimeRange {
            from: start,
            to: start + 3 * 3_600_000_000_000,
            from_param: String::new(),
            to_param: String::new(),
        };
        let axis = Axis {
            first: range.from,
            width: 300 * 1_000_000_000,
            n: 36,
        };
        let rows = store
            .span_rollups("p", Some("chat"), range.from, range.to)
            .await
            .unwrap()
            .expect("every file has its rollup");
        let (fast, fast_mix) = traffic_from_rollups(&rows, &axis);
        let (slow, slow_mix) = traffic_from_spans(&store, "p", "chat", &range, &axis)
            .await
            .unwrap();
        assert_eq!(fast.iter().map(|f| f.requests).sum::<u64>(), 8000);
        let near = |a: Option<f64>, b: Option<f64>, what: &str, i: usize| match (a, b) {
            (Some(a), Some(b)) => assert!(
                (a - b).abs() <= 0.1 * b.abs() + 1e-9,
                "{what}[{i}]: {a} vs {b}"
            ),
            (a, b) => assert_eq!(a.is_some(), b.is_some(), "{what}[{i}]"),
        };
        for (i, (f, s)) in fast.iter().zip(&slow).enumerate() {
            assert_eq!(
                (f.requests, f.errors, f.retries, f.fallbacks, f.cache_hits),
                (s.requests, s.errors, s.retries, s.fallbacks, s.cache_hits),
                "bucket {i}"
            );
            near(f.cost_usd, s.cost_usd, "cost", i);
            near(f.ttft_p95, s.ttft_p95, "ttft p95", i);
            near(f.tpot_p50, s.tpot_p50, "tpot p50", i);
            near(f.latency_p95_ms, s.latency_p95_ms, "latency p95", i);
        }
        let totals = |mix: &[MixCount]| {
            type Key = (usize, [Option<String>; 4], Option<String>);
            let mut t: BTreeMap<Key, u64> = BTreeMap::new();
            for m in mix {
                *t.entry((m.bucket, m.dims.clone(), m.service.clone()))
                    .or_default() += m.requests;
            }
            t
        };
        assert_eq!(totals(&fast_mix), totals(&slow_mix));
    }

    #[test]
    fn a_window_weights_ttft_by_requests() {
        let axis = Axis {
            first: 0,
            width: 10,
            n: 2,
        };
        let latency = Latency {
            requests: vec![1, 3],
            errors: vec![1, 0],
            error_rate: vec![],
            ttft_p50: vec![],
            ttft_p95: vec![Some(1.0), Some(2.0)],
            tpot_p50: vec![],
            tpot_p95: vec![],
            latency_p95_ms: vec![],
            parse_failure_rate: vec![],
            queue_time_p95: vec![],
            cost_usd: vec![],
        };
        let w = window(&axis, &latency, 0, 20);
        assert_eq!(w.requests, 4);
        assert_eq!(w.error_rate, Some(0.25));
        assert_eq!(w.ttft_p95, Some(1.75));
    }
}

//! The evals page: each evaluator's verdict count, pass rate and mean score over time, and its
//! worst recent examples (failed first, then lowest score) with their explanations.

use std::collections::BTreeMap;

use plumb_evaluators::source::quoted;
use plumb_store::Store;
use serde::{Deserialize, Serialize};

use super::{bucket_expr, f64_at, i64_at, rows, str_at, u64_at};
use crate::error::WebError;
use crate::time_range::TimeRange;

const BUCKETS: i64 = 60;
const WORST: usize = 20;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvalsFilter {
    pub evaluator: Option<String>,
    pub route: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalsOverview {
    pub range: TimeRange,
    pub bucket_secs: i64,
    pub buckets: Vec<i64>,
    pub evaluators: Vec<EvaluatorOverTime>,
    pub worst: Vec<Example>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvaluatorOverTime {
    pub evaluator: String,
    pub count: u64,
    pub pass_rate: Option<f64>,
    pub mean_score: Option<f64>,
    pub counts: Vec<u64>,
    pub pass_rates: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub evaluator: String,
    pub trace_id: String,
    pub span_id: Option<String>,
    pub route: Option<String>,
    pub model: Option<String>,
    pub span_start_time: i64,
    pub score: Option<f64>,
    pub label: Option<String>,
    pub passed: Option<bool>,
    pub explanation: Option<String>,
}

pub async fn overview(
    store: &Store,
    project: &str,
    range: &TimeRange,
    filter: &EvalsFilter,
) -> Result<EvalsOverview, WebError> {
    let mut w = vec![range.sql_filter("span_start_time")];
    let set = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(e) = set(&filter.evaluator) {
        w.push(format!("evaluator = {}", quoted(&e)));
    }
    if let Some(r) = set(&filter.route) {
        w.push(format!("route = {}", quoted(&r)));
    }
    let w = w.join(" AND ");
    let bucket_secs = range.bucket_secs(BUCKETS);
    let (first, n) = range.buckets(bucket_secs);
    let width = bucket_secs * 1_000_000_000;
    let series_sql = format!(
        "SELECT evaluator, {} AS b, count(*) AS n, count(*) FILTER (WHERE passed) AS passed, \
         count(passed) AS judged, sum(score) AS score_sum, count(score) AS scored \
         FROM evals WHERE {w} GROUP BY 1, 2",
        bucket_expr("span_start_time", bucket_secs)
    );
    let worst_sql = format!(
        "SELECT evaluator, trace_id, span_id, route, gen_ai_request_model, \
         CAST(span_start_time AS BIGINT) AS t, score, label, passed, explanation FROM evals \
         WHERE {w} AND (passed = false OR score IS NOT NULL) \
         ORDER BY coalesce(passed, true), score ASC NULLS LAST, span_start_time DESC LIMIT {WORST}"
    );
    let (series, worst) = tokio::join!(
        rows(store, project, &series_sql),
        rows(store, project, &worst_sql)
    );
    let (series, worst) = (series?, worst?);

    #[derive(Default)]
    struct Acc {
        n: u64,
        passed: u64,
        judged: u64,
        score_sum: f64,
        scored: u64,
        counts: Vec<u64>,
        pass_rates: Vec<Option<f64>>,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for r in &series.rows {
        let (Some(name), Some(b)) = (str_at(r, 0), i64_at(r, 1)) else {
            continue;
        };
        let a = acc.entry(name).or_insert_with(|| Acc {
            counts: vec![0; n],
            pass_rates: vec![None; n],
            ..Acc::default()
        });
        let (count, passed, judged) = (u64_at(r, 2), u64_at(r, 3), u64_at(r, 4));
        a.n += count;
        a.passed += passed;
        a.judged += judged;
        a.score_sum += f64_at(r, 5).unwrap_or(0.0);
        a.scored += u64_at(r, 6);
        if b >= first {
            let i = ((b - first) / width) as usize;
            if i < n {
                a.counts[i] = count;
                a.pass_rates[i] = (judged > 0).then(|| passed as f64 / judged as f64);
            }
        }
    }
    let evaluators = acc
        .into_iter()
        .map(|(evaluator, a)| EvaluatorOverTime {
            evaluator,
            count: a.n,
            pass_rate: (a.judged > 0).then(|| a.passed as f64 / a.judged as f64),
            mean_score: (a.scored > 0).then(|| a.score_sum / a.scored as f64),
            counts: a.counts,
            pass_rates: a.pass_rates,
        })
        .collect();
    let worst = worst
        .rows
        .iter()
        .filter_map(|r| {
            Some(Example {
                evaluator: str_at(r, 0)?,
                trace_id: str_at(r, 1)?,
                span_id: str_at(r, 2),
                route: str_at(r, 3),
                model: str_at(r, 4),
                span_start_time: i64_at(r, 5)?,
                score: f64_at(r, 6),
                label: str_at(r, 7),
                passed: r.get(8).and_then(serde_json::Value::as_bool),
                explanation: str_at(r, 9),
            })
        })
        .collect();
    Ok(EvalsOverview {
        range: range.clone(),
        bucket_secs,
        buckets: (0..n).map(|i| first + i as i64 * width).collect(),
        evaluators,
        worst,
    })
}

//! `plumb eval compare`: two cohorts of verdicts (two models or routes on mirrored traffic, or
//! one route before and after a change) side by side per evaluator: pass rates with a
//! two-proportion z-test, mean scores with Welch's t-test, each difference with its 95%
//! confidence interval. Aggregated in SQL, so it reads no verdict rows into memory.

use plumb_store::query::to_json_rows;
use plumb_store::Store;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::source::{quoted, timestamp_literal};
use crate::stats::{self, Difference, Moments};

/// Which verdicts form a cohort. Unset fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cohort {
    pub route: Option<String>,
    pub model: Option<String>,
    /// Span start times, Unix nanoseconds, `[from, to)`.
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Cohort {
    fn filter(&self) -> String {
        let q = quoted;
        let mut parts = vec!["source <> 'client'".to_string()];
        if let Some(r) = &self.route {
            parts.push(format!("route = {}", q(r)));
        }
        if let Some(m) = &self.model {
            parts.push(format!("gen_ai_request_model = {}", q(m)));
        }
        if let Some(t) = self.from {
            parts.push(format!("span_start_time >= {}", timestamp_literal(t)));
        }
        if let Some(t) = self.to {
            parts.push(format!("span_start_time < {}", timestamp_literal(t)));
        }
        parts.join(" AND ")
    }

    /// A short description for table headers.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.route {
            parts.push(format!("route={r}"));
        }
        if let Some(m) = &self.model {
            parts.push(format!("model={m}"));
        }
        let t = |n: i64| {
            chrono::DateTime::from_timestamp_nanos(n)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        match (self.from, self.to) {
            (Some(f), Some(to)) => parts.push(format!("{}..{}", t(f), t(to))),
            (Some(f), None) => parts.push(format!("from {}", t(f))),
            (None, Some(to)) => parts.push(format!("before {}", t(to))),
            (None, None) => {}
        }
        if parts.is_empty() {
            "all".into()
        } else {
            parts.join(" ")
        }
    }
}

/// One evaluator's comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub evaluator: String,
    pub a_count: u64,
    pub b_count: u64,
    pub pass_rate: Option<Difference>,
    pub mean_score: Option<Difference>,
    /// Whether either difference is significant at `alpha`.
    pub significant: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Aggregate {
    n: u64,
    passed: u64,
    scores: Moments,
}

async fn aggregates(
    store: &Store,
    project: &str,
    cohort: &Cohort,
    evaluator: Option<&str>,
) -> Result<Vec<(String, Aggregate)>> {
    let only = evaluator
        .map(|e| format!(" AND evaluator = {}", quoted(e)))
        .unwrap_or_default();
    let sql = format!(
        "SELECT evaluator, count(*) AS n, count(*) FILTER (WHERE passed) AS passed, \
         count(score) AS scored, avg(score) AS mean, var_samp(score) AS variance \
         FROM evals WHERE {}{only} GROUP BY evaluator ORDER BY evaluator",
        cohort.filter()
    );
    let out = to_json_rows(&store.sql(project, &sql).await?)?;
    Ok(out
        .rows
        .into_iter()
        .map(|r| {
            let name = r[0].as_str().unwrap_or_default().to_string();
            let agg = Aggregate {
                n: r[1].as_u64().unwrap_or(0),
                passed: r[2].as_u64().unwrap_or(0),
                scores: Moments {
                    n: r[3].as_u64().unwrap_or(0),
                    mean: r[4].as_f64().unwrap_or(f64::NAN),
                    variance: r[5].as_f64().unwrap_or(0.0),
                },
            };
            (name, agg)
        })
        .collect())
}

/// Compares cohort `b` against cohort `a` for every evaluator with verdicts in either (or one).
pub async fn compare(
    store: &Store,
    project: &str,
    a: &Cohort,
    b: &Cohort,
    evaluator: Option<&str>,
    alpha: f64,
) -> Result<Vec<Comparison>> {
    let a_rows = aggregates(store, project, a, evaluator).await?;
    let b_rows = aggregates(store, project, b, evaluator).await?;
    let mut names: Vec<&String> = a_rows.iter().chain(&b_rows).map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    let find = |rows: &[(String, Aggregate)], n: &str| {
        rows.iter()
            .find(|(m, _)| m == n)
            .map(|(_, a)| *a)
            .unwrap_or_default()
    };
    Ok(names
        .into_iter()
        .map(|name| {
            let (x, y) = (find(&a_rows, name), find(&b_rows, name));
            let pass_rate = stats::two_proportions(x.passed, x.n, y.passed, y.n);
            let mean_score = stats::welch(x.scores, y.scores);
            let significant = pass_rate.is_some_and(|d| d.p_value < alpha)
                || mean_score.is_some_and(|d| d.p_value < alpha);
            Comparison {
                evaluator: name.clone(),
                a_count: x.n,
                b_count: y.n,
                pass_rate,
                mean_score,
                significant,
            }
        })
        .collect())
}

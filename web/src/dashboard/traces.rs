//! Trace search: the newest traces with a span matching the filters (route, model, status,
//! an evaluator's verdict, free text in names, prompts and outputs) in the range.

use plumb_evaluators::source::quoted;
use plumb_store::Store;
use serde::{Deserialize, Serialize};

use super::{f64_at, i64_at, rows, str_at, u64_at};
use crate::error::WebError;
use crate::time_range::TimeRange;

pub const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TraceFilter {
    pub route: Option<String>,
    pub model: Option<String>,
    /// `error` or `ok` (anything but an error).
    pub status: Option<String>,
    pub evaluator: Option<String>,
    /// `pass` or `fail`, with `evaluator` (or any evaluator without it).
    pub verdict: Option<String>,
    /// Free text, matched case-insensitively in span names, prompts and outputs.
    pub q: Option<String>,
    pub limit: Option<usize>,
}

impl TraceFilter {
    fn set(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    fn span_predicates(&self, range: &TimeRange) -> Result<Vec<String>, WebError> {
        let mut p = vec![range.sql_filter("start_time")];
        if let Some(r) = Self::set(&self.route) {
            p.push(format!("route = {}", quoted(r)));
        }
        if let Some(m) = Self::set(&self.model) {
            let m = quoted(m);
            p.push(format!(
                "(gen_ai_request_model = {m} OR gen_ai_response_model = {m})"
            ));
        }
        match Self::set(&self.status) {
            None => {}
            Some("error") => p.push("status_code = 'ERROR'".into()),
            Some("ok") => p.push("status_code <> 'ERROR'".into()),
            Some(other) => {
                return Err(WebError::BadRequest(format!(
                    "status must be `error` or `ok`, not `{other}`"
                )))
            }
        }
        if let Some(q) = Self::set(&self.q) {
            let like = quoted(&format!("%{}%", escape_like(q)));
            p.push(format!(
                "(span_name ILIKE {like} ESCAPE '\\' OR input_text ILIKE {like} ESCAPE '\\' \
                 OR output_text ILIKE {like} ESCAPE '\\' OR trace_id = {})",
                quoted(&q.to_ascii_lowercase())
            ));
        }
        let verdict = match Self::set(&self.verdict) {
            None => None,
            Some("pass") => Some(true),
            Some("fail") => Some(false),
            Some(other) => {
                return Err(WebError::BadRequest(format!(
                    "verdict must be `pass` or `fail`, not `{other}`"
                )))
            }
        };
        let evaluator = Self::set(&self.evaluator);
        if evaluator.is_some() || verdict.is_some() {
            let mut e = vec![range.sql_filter("span_start_time")];
            if let Some(name) = evaluator {
                e.push(format!("evaluator = {}", quoted(name)));
            }
            if let Some(v) = verdict {
                e.push(format!("passed = {v}"));
            }
            p.push(format!(
                "trace_id IN (SELECT DISTINCT trace_id FROM evals WHERE {})",
                e.join(" AND ")
            ));
        }
        Ok(p)
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    pub start_time: i64,
    pub duration_ms: Option<f64>,
    pub spans: u64,
    pub errors: u64,
    pub root_name: Option<String>,
    pub route: Option<String>,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
}

pub async fn search(
    store: &Store,
    project: &str,
    range: &TimeRange,
    filter: &TraceFilter,
) -> Result<Vec<TraceSummary>, WebError> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let predicates = filter.span_predicates(range)?;
    let ids_sql = format!(
        "SELECT trace_id, max(start_time) AS t FROM spans WHERE {} \
         GROUP BY trace_id ORDER BY t DESC LIMIT {limit}",
        predicates.join(" AND ")
    );
    let ids = rows(store, project, &ids_sql).await?;
    let ids: Vec<String> = ids.rows.iter().filter_map(|r| str_at(r, 0)).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().map(|i| quoted(i)).collect();
    let sql = format!(
        "SELECT trace_id, CAST(min(start_time) AS BIGINT) AS start, \
         (CAST(max(end_time) AS BIGINT) - CAST(min(start_time) AS BIGINT)) / 1e6 AS duration_ms, \
         count(*) AS spans, count(*) FILTER (WHERE status_code = 'ERROR') AS errors, \
         first_value(span_name ORDER BY parent_span_id IS NOT NULL, start_time) AS root_name, \
         first_value(route ORDER BY parent_span_id IS NOT NULL, start_time) AS route, \
         max(coalesce(gen_ai_response_model, gen_ai_request_model)) AS model, \
         sum(gen_ai_usage_input_tokens) AS input_tokens, sum(gen_ai_usage_output_tokens) AS output_tokens, \
         sum(cost_usd) AS cost FROM spans WHERE trace_id IN ({}) GROUP BY trace_id ORDER BY start DESC",
        list.join(", ")
    );
    let out = rows(store, project, &sql).await?;
    Ok(out
        .rows
        .iter()
        .filter_map(|r| {
            Some(TraceSummary {
                trace_id: str_at(r, 0)?,
                start_time: i64_at(r, 1)?,
                duration_ms: f64_at(r, 2),
                spans: u64_at(r, 3),
                errors: u64_at(r, 4),
                root_name: str_at(r, 5),
                route: str_at(r, 6),
                model: str_at(r, 7),
                input_tokens: i64_at(r, 8),
                output_tokens: i64_at(r, 9),
                cost_usd: f64_at(r, 10),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_range::RangeParams;

    #[test]
    fn filters_become_quoted_predicates() {
        let range = TimeRange::resolve(&RangeParams::default(), 1_000_000_000_000).unwrap();
        let f = TraceFilter {
            route: Some("chat's".into()),
            status: Some("error".into()),
            evaluator: Some("json_parse".into()),
            verdict: Some("fail".into()),
            q: Some("100%_".into()),
            ..Default::default()
        };
        let p = f.span_predicates(&range).unwrap().join(" AND ");
        assert!(p.contains("route = 'chat''s'"), "{p}");
        assert!(p.contains("passed = false"), "{p}");
        assert!(p.contains("'%100\\%\\_%'"), "{p}");
        let bad = TraceFilter {
            status: Some("maybe".into()),
            ..Default::default()
        };
        assert!(bad.span_predicates(&range).is_err());
    }
}

//! Reading what the runners work on out of the store: spans (new since a cursor, or of a time
//! range), the traces some evaluators need, and which (span, evaluator, version) already has a
//! verdict, so that nothing is evaluated twice however a run was interrupted.

use std::collections::{BTreeMap, HashSet};

use plumb_store::query::to_json_rows;
use plumb_store::Store;
use serde::Deserialize;

use crate::error::{EvalError, Result};
use crate::span::SpanRow;

/// A span and when the store accepted it.
#[derive(Debug, Clone, Deserialize)]
pub struct Observed {
    #[serde(flatten)]
    pub span: SpanRow,
    #[serde(default)]
    pub observed_ns: i64,
}

/// RFC 3339 with nanoseconds, the literal form time filters prune on.
pub fn timestamp_literal(unix_nanos: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(unix_nanos);
    format!(
        "'{}'",
        t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    )
}

/// A SQL string literal.
pub fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn rows<T: serde::de::DeserializeOwned>(
    store: &Store,
    project: &str,
    sql: &str,
) -> Result<Vec<T>> {
    let out = store.sql(project, sql).await?;
    let json = to_json_rows(&out)?;
    json.rows
        .into_iter()
        .map(|r| {
            let obj: serde_json::Map<String, serde_json::Value> = json
                .columns
                .iter()
                .cloned()
                .zip(r)
                .filter(|(_, v)| !v.is_null())
                .collect();
            serde_json::from_value(serde_json::Value::Object(obj))
                .map_err(|e| EvalError::Invalid(format!("unexpected row shape: {e}")))
        })
        .collect()
}

/// Spans accepted in `(after, through]` (by `observed_time`) that started no earlier than
/// `min_start`, oldest first, at most `limit`.
pub async fn spans_observed(
    store: &Store,
    project: &str,
    after: i64,
    through: i64,
    min_start: i64,
    limit: usize,
) -> Result<Vec<Observed>> {
    let sql = format!(
        "SELECT {}, CAST(observed_time AS BIGINT) AS observed_ns FROM spans \
         WHERE observed_time > {} AND observed_time <= {} AND start_time >= {} \
         ORDER BY observed_time LIMIT {limit}",
        SpanRow::COLUMNS,
        timestamp_literal(after),
        timestamp_literal(through),
        timestamp_literal(min_start),
    );
    rows(store, project, &sql).await
}

/// Spans that started in `[from, to)`, optionally of one route, ordered by start time, at most
/// `limit`, starting after the span `after` (start time, span id) when given.
pub async fn spans_started(
    store: &Store,
    project: &str,
    from: i64,
    to: i64,
    route: Option<&str>,
    after: Option<(i64, &str)>,
    limit: usize,
) -> Result<Vec<SpanRow>> {
    let route = route
        .map(|r| format!(" AND route = {}", quoted(r)))
        .unwrap_or_default();
    let after = after
        .map(|(t, id)| {
            format!(
                " AND (start_time > {0} OR (start_time = {0} AND span_id > {1}))",
                timestamp_literal(t),
                quoted(id)
            )
        })
        .unwrap_or_default();
    let sql = format!(
        "SELECT {} FROM spans WHERE start_time >= {} AND start_time < {}{route}{after} \
         ORDER BY start_time, span_id LIMIT {limit}",
        SpanRow::COLUMNS,
        timestamp_literal(from),
        timestamp_literal(to),
    );
    rows(store, project, &sql).await
}

/// How many spans started in `[from, to)` (of one route), for a progress bar.
pub async fn count_started(
    store: &Store,
    project: &str,
    from: i64,
    to: i64,
    route: Option<&str>,
) -> Result<u64> {
    #[derive(Deserialize)]
    struct N {
        n: u64,
    }
    let route = route
        .map(|r| format!(" AND route = {}", quoted(r)))
        .unwrap_or_default();
    let sql = format!(
        "SELECT count(*) AS n FROM spans WHERE start_time >= {} AND start_time < {}{route}",
        timestamp_literal(from),
        timestamp_literal(to)
    );
    Ok(rows::<N>(store, project, &sql)
        .await?
        .first()
        .map(|n| n.n)
        .unwrap_or(0))
}

/// All spans of these traces, by trace id.
pub async fn traces(
    store: &Store,
    project: &str,
    trace_ids: &[&str],
) -> Result<BTreeMap<String, Vec<SpanRow>>> {
    let mut out: BTreeMap<String, Vec<SpanRow>> = BTreeMap::new();
    let mut ids: Vec<&str> = trace_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(200) {
        let list: Vec<String> = chunk.iter().map(|id| quoted(id)).collect();
        let sql = format!(
            "SELECT {} FROM spans WHERE trace_id IN ({})",
            SpanRow::COLUMNS,
            list.join(", ")
        );
        for s in rows::<SpanRow>(store, project, &sql).await? {
            out.entry(s.trace_id.clone()).or_default().push(s);
        }
    }
    Ok(out)
}

/// Which results already exist: (evaluator, version, trace id, span id).
pub type Done = HashSet<(String, i64, String, String)>;

/// Verdicts of these evaluators on spans that started in `[min_start, max_start]`, restricted
/// to those made after `evaluated_after` when given (the online runner's cursor: a span
/// accepted after it cannot have been judged before it).
pub async fn done(
    store: &Store,
    project: &str,
    evaluators: &[(&str, u32)],
    min_start: i64,
    max_start: i64,
    evaluated_after: Option<i64>,
) -> Result<Done> {
    #[derive(Deserialize)]
    struct Row {
        evaluator: String,
        evaluator_version: i64,
        trace_id: String,
        #[serde(default)]
        span_id: Option<String>,
    }
    if evaluators.is_empty() {
        return Ok(Done::new());
    }
    let names: Vec<String> = evaluators.iter().map(|(n, _)| quoted(n)).collect();
    let after = evaluated_after
        .map(|t| format!(" AND evaluated_at > {}", timestamp_literal(t)))
        .unwrap_or_default();
    let sql = format!(
        "SELECT evaluator, evaluator_version, trace_id, span_id FROM evals \
         WHERE evaluator IN ({}) AND span_start_time >= {} AND span_start_time <= {} \
         AND source <> 'client'{after}",
        names.join(", "),
        timestamp_literal(min_start),
        timestamp_literal(max_start),
    );
    let versions: BTreeMap<&str, i64> = evaluators.iter().map(|(n, v)| (*n, *v as i64)).collect();
    Ok(rows::<Row>(store, project, &sql)
        .await?
        .into_iter()
        .filter(|r| versions.get(r.evaluator.as_str()) == Some(&r.evaluator_version))
        .map(|r| {
            (
                r.evaluator,
                r.evaluator_version,
                r.trace_id,
                r.span_id.unwrap_or_default(),
            )
        })
        .collect())
}

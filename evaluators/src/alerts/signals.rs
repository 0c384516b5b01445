//! Measuring a rule's signal over a window, in SQL against the project's tables: spans for
//! errors, latency, TTFT and cost; evals for parse failures, tool-call errors and scores.

use plumb_store::query::to_json_rows;
use plumb_store::Store;
use serde_json::Value;

use super::rule::{AlertRule, BudgetMeasure, BudgetPer, Signal};
use crate::error::{EvalError, Result};
use crate::source::{quoted as q, timestamp_literal};
use crate::stats::Moments;

/// A window, Unix nanoseconds, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

/// A signal measured over one window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measurement {
    /// The signal's value (a rate, a mean, a percentile), `None` with no samples.
    pub value: Option<f64>,
    /// Samples behind it.
    pub samples: u64,
    /// For rates: how many samples counted (failures, errors, passes).
    pub hits: u64,
    /// For means: the sample's moments.
    pub moments: Moments,
}

/// The table a signal is read from, and the filter of a rule and a window over it.
fn scope(rule: &AlertRule, signal: Signal, w: Window) -> (&'static str, String) {
    let evals = matches!(
        signal,
        Signal::ParseFailureRate
            | Signal::ToolCallErrorRate
            | Signal::EvalScoreMean
            | Signal::EvalPassRate
            | Signal::EvalScore
    );
    let (table, time, model) = match evals {
        true => ("evals", "span_start_time", "gen_ai_request_model"),
        false => ("spans", "start_time", "gen_ai_request_model"),
    };
    let mut f = vec![format!(
        "{time} >= {} AND {time} < {}",
        timestamp_literal(w.from),
        timestamp_literal(w.to)
    )];
    if let Some(r) = &rule.route {
        f.push(format!("route = {}", q(r)));
    }
    if let Some(m) = &rule.model {
        f.push(format!("{model} = {}", q(m)));
    }
    match signal {
        Signal::ParseFailureRate => f.push("evaluator = 'json_parse'".into()),
        Signal::ToolCallErrorRate => f.push("evaluator = 'tool_call_args'".into()),
        Signal::EvalScoreMean | Signal::EvalPassRate | Signal::EvalScore => {
            f.push(format!(
                "evaluator = {}",
                q(rule.evaluator.as_deref().unwrap_or_default())
            ));
        }
        Signal::ErrorRate
        | Signal::TtftP95
        | Signal::TtftP99
        | Signal::LatencyP95
        | Signal::CostPer1kRequests => {}
        Signal::ResponseLength | Signal::OutputTokens | Signal::Ttft | Signal::Latency => {}
    }
    if matches!(signal, Signal::TtftP95 | Signal::TtftP99 | Signal::Ttft) {
        f.push("gen_ai_response_time_to_first_chunk IS NOT NULL".into());
    }
    if matches!(
        signal,
        Signal::CostPer1kRequests | Signal::OutputTokens | Signal::ResponseLength
    ) {
        f.push("gen_ai_operation_name IS NOT NULL".into());
    }
    (table, f.join(" AND "))
}

async fn one_row(store: &Store, project: &str, sql: &str) -> Result<Vec<Value>> {
    let out = to_json_rows(&store.sql(project, sql).await?)?;
    Ok(out.rows.into_iter().next().unwrap_or_default())
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

/// Measures `signal` of `rule` over `w`.
pub async fn measure(
    store: &Store,
    project: &str,
    rule: &AlertRule,
    signal: Signal,
    w: Window,
) -> Result<Measurement> {
    let (table, filter) = scope(rule, signal, w);
    let (expr, kind) = match signal {
        Signal::ParseFailureRate | Signal::ToolCallErrorRate => {
            ("count(*) FILTER (WHERE NOT passed)", "rate")
        }
        Signal::EvalPassRate => ("count(*) FILTER (WHERE passed)", "rate"),
        Signal::ErrorRate => ("count(*) FILTER (WHERE status_code = 'ERROR')", "rate"),
        Signal::TtftP95 => (
            "approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.95)",
            "value",
        ),
        Signal::TtftP99 => (
            "approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.99)",
            "value",
        ),
        Signal::LatencyP95 => ("approx_percentile_cont(duration_ms, 0.95)", "value"),
        Signal::CostPer1kRequests => ("1000.0 * sum(coalesce(cost_usd, 0.0)) / count(*)", "value"),
        Signal::EvalScoreMean | Signal::EvalScore => ("score", "mean"),
        Signal::ResponseLength => ("CAST(character_length(output_text) AS DOUBLE)", "mean"),
        Signal::OutputTokens => ("CAST(gen_ai_usage_output_tokens AS DOUBLE)", "mean"),
        Signal::Ttft => ("gen_ai_response_time_to_first_chunk", "mean"),
        Signal::Latency => ("duration_ms", "mean"),
    };
    if kind != "mean" {
        let r = one_row(
            store,
            project,
            &format!("SELECT count(*), {expr} FROM {table} WHERE {filter}"),
        )
        .await?;
        let n = r.first().and_then(Value::as_u64).unwrap_or(0);
        return Ok(match kind {
            "rate" => {
                let k = r.get(1).and_then(Value::as_u64).unwrap_or(0);
                Measurement {
                    value: (n > 0).then(|| k as f64 / n as f64),
                    samples: n,
                    hits: k,
                    ..Default::default()
                }
            }
            _ => Measurement {
                value: if n > 0 { num(r.get(1)) } else { None },
                samples: n,
                ..Default::default()
            },
        });
    }
    let r = one_row(
        store,
        project,
        &format!("SELECT count(v), avg(v), var_samp(v) FROM (SELECT {expr} AS v FROM {table} WHERE {filter}) t"),
    )
    .await?;
    let n = r.first().and_then(Value::as_u64).unwrap_or(0);
    let mean = num(r.get(1));
    Ok(Measurement {
        value: mean,
        samples: n,
        moments: Moments {
            n,
            mean: mean.unwrap_or(f64::NAN),
            variance: num(r.get(2)).unwrap_or(0.0),
        },
        ..Default::default()
    })
}

/// Values of a distribution signal over `w`, a bounded sample.
pub async fn values(
    store: &Store,
    project: &str,
    rule: &AlertRule,
    signal: Signal,
    w: Window,
    limit: usize,
) -> Result<Vec<f64>> {
    let (table, filter) = scope(rule, signal, w);
    let expr = match signal {
        Signal::ResponseLength => "CAST(character_length(output_text) AS DOUBLE)",
        Signal::OutputTokens => "CAST(gen_ai_usage_output_tokens AS DOUBLE)",
        Signal::Ttft => "gen_ai_response_time_to_first_chunk",
        Signal::Latency => "duration_ms",
        Signal::EvalScore => "score",
        other => {
            return Err(EvalError::Invalid(format!(
                "{other:?} is not a distribution"
            )))
        }
    };
    let sql = format!("SELECT v FROM (SELECT {expr} AS v FROM {table} WHERE {filter}) t WHERE v IS NOT NULL LIMIT {limit}");
    let out = to_json_rows(&store.sql(project, &sql).await?)?;
    Ok(out
        .rows
        .iter()
        .filter_map(|r| r.first().and_then(Value::as_f64))
        .collect())
}

/// The largest total of tokens or cost of one trace (or route) in `w`, and which one it is.
pub async fn budget(
    store: &Store,
    project: &str,
    rule: &AlertRule,
    measure: BudgetMeasure,
    per: BudgetPer,
    w: Window,
) -> Result<(Option<f64>, u64, Option<String>)> {
    let (_, filter) = scope(rule, Signal::ErrorRate, w);
    let amount = match measure {
        BudgetMeasure::Tokens => "CAST(coalesce(gen_ai_usage_input_tokens, 0) + coalesce(gen_ai_usage_output_tokens, 0) AS DOUBLE)",
        BudgetMeasure::Cost => "coalesce(cost_usd, 0.0)",
    };
    let group = match per {
        BudgetPer::Trace => "trace_id",
        BudgetPer::Route => "route",
    };
    let sql = format!(
        "SELECT CAST({group} AS VARCHAR) AS g, sum({amount}) AS total, count(*) OVER () AS groups FROM spans WHERE {filter} \
         GROUP BY {group} ORDER BY total DESC LIMIT 1"
    );
    let r = one_row(store, project, &sql).await?;
    Ok((
        num(r.get(1)),
        r.get(2).and_then(Value::as_u64).unwrap_or(0),
        r.first().and_then(Value::as_str).map(String::from),
    ))
}

/// Runs a custom rule's query; it must return one number.
pub async fn custom(store: &Store, project: &str, sql: &str) -> Result<Option<f64>> {
    let out = to_json_rows(&store.sql(project, sql).await?)?;
    match (out.rows.len(), out.rows.first().map(Vec::len)) {
        (0, _) => Ok(None),
        (1, Some(1)) => match &out.rows[0][0] {
            Value::Null => Ok(None),
            v => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| EvalError::Invalid(format!("the rule's query returned {v}, not a number"))),
        },
        (rows, cols) => Err(EvalError::Invalid(format!(
            "the rule's query must return one row with one number; it returned {rows} row(s) of {} column(s)",
            cols.unwrap_or(0)
        ))),
    }
}

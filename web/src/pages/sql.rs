//! `/sql`: a read-only SQL console. Results as a table (the first rows of large results), the
//! error in plain words when the query fails, and a line chart when the result has a time column
//! and numeric columns.

use arrow::datatypes::DataType;
use leptos::prelude::*;
use plumb_store::query::JsonRows;
use plumb_store::{QueryError, QueryOutput};
use serde_json::Value;

use super::chart::{color, max_of, time_axis, Lane, Stroke, XAxis};
use super::format;
use super::layout::{document, Section};
use crate::time_range::parse_timestamp;

const MAX_ROWS: usize = 500;
const MAX_CELL: usize = 200;
/// Bytes of table on one page (cell text plus about 24 bytes of markup per cell): wide rows
/// (`SELECT *`) stop earlier than `MAX_ROWS`, so the page stays small; the API returns all.
const MAX_TEXT: usize = 70_000;
const CELL_MARKUP: usize = 24;

pub const EXAMPLE: &str = "SELECT route, count(*) AS requests,\n  approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.95) AS ttft_p95\nFROM spans\nWHERE start_time > now() - INTERVAL '1 hour'\nGROUP BY route ORDER BY requests DESC";

pub fn render(
    query: Option<String>,
    result: Option<Result<(QueryOutput, JsonRows), QueryError>>,
) -> String {
    let q = query.clone().unwrap_or_else(|| EXAMPLE.to_string());
    let result_view = result.map(|r| match r {
        Err(e) => view! { <div class="error sql-error"><strong>"Query failed: "</strong><pre>{e.to_string()}</pre></div> }.into_any(),
        Ok((out, rows)) => result_table(&out, rows).into_any(),
    });
    let body = view! {
        <h1>"SQL"</h1>
        <form class="sql-form" method="get" action="/sql">
            <textarea name="q" rows="6" cols="100" spellcheck="false" aria-label="query">{q}</textarea>
            <div>
                <button type="submit">"Run"</button>
                <span class="hint">" Read-only. Tables: spans, logs, metrics, evals, alert_events (docs/schema.md)."</span>
            </div>
        </form>
        {result_view}
    };
    document("SQL", Section::Sql, None, body)
}

fn result_table(out: &QueryOutput, rows: JsonRows) -> impl IntoView {
    let chart = chart(out, &rows);
    let total = rows.rows.len();
    let header = rows
        .columns
        .iter()
        .map(|c| view! { <th>{c.clone()}</th> })
        .collect_view();
    let mut budget = MAX_TEXT;
    let mut shown = 0;
    let mut body = Vec::new();
    for r in rows.rows.into_iter().take(MAX_ROWS) {
        if budget == 0 {
            break;
        }
        let cells: Vec<(String, bool, &'static str)> = r
            .into_iter()
            .map(|v| {
                let (text, class) = match &v {
                    Value::Null => ("NULL".to_string(), "null"),
                    Value::String(s) => (s.clone(), ""),
                    Value::Number(_) => (v.to_string(), "num"),
                    other => (other.to_string(), ""),
                };
                let (clipped, more) = format::clip(&text, MAX_CELL);
                (clipped, more.is_some(), class)
            })
            .collect();
        budget = budget.saturating_sub(cells.iter().map(|c| c.0.len() + CELL_MARKUP).sum());
        shown += 1;
        body.push(cells);
    }
    let body = body
        .into_iter()
        .map(|cells| {
            let cells = cells
                .into_iter()
                .map(|(text, clipped, class)| view! { <td class=class>{text}{clipped.then_some("…")}</td> })
                .collect_view();
            view! { <tr>{cells}</tr> }
        })
        .collect_view();
    view! {
        <p class="summary">
            {format!("{} rows", format::count(total as u64))}
            {(total > shown).then(|| format!(", the first {shown} shown (the JSON API returns all)"))}
        </p>
        {chart}
        <div class="scroll"><table class="results"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>
    }
}

/// A line per numeric column over the first time column, when there is one.
fn chart(out: &QueryOutput, rows: &JsonRows) -> Option<impl IntoView> {
    let fields = out.schema.fields();
    let time_col = fields.iter().position(|f| {
        matches!(
            f.data_type(),
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
        )
    })?;
    let numeric: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.data_type().is_numeric())
        .map(|(i, _)| i)
        .take(6)
        .collect();
    if numeric.is_empty() || rows.rows.len() < 2 {
        return None;
    }
    let mut points: Vec<(i64, &Vec<Value>)> = rows
        .rows
        .iter()
        .filter_map(|r| {
            r.get(time_col)
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
                .map(|t| (t, r))
        })
        .collect();
    points.sort_by_key(|(t, _)| *t);
    let (from, to) = (points.first()?.0, points.last()?.0);
    if from >= to {
        return None;
    }
    // Each row is a "bucket" of zero width at its time.
    let times: Vec<i64> = points.iter().map(|(t, _)| *t).collect();
    let axis = XAxis { from, to };
    let series: Vec<Vec<Option<f64>>> = numeric
        .iter()
        .map(|&c| {
            points
                .iter()
                .map(|(_, r)| r.get(c).and_then(Value::as_f64))
                .collect()
        })
        .collect();
    let max = max_of(series.iter().map(Vec::as_slice));
    let mut lane = Lane::new(axis, 160.0, &times, 0, max * 1.1);
    for (i, s) in series.iter().enumerate() {
        lane.line(
            s,
            Stroke {
                color: color(i),
                dashed: false,
            },
        );
    }
    let legend = numeric
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let name = fields[c].name().clone();
            view! { <span class="key"><i style=format!("background:{}", color(i))></i>{name}</span> }
        })
        .collect_view();
    Some(view! {
        <div class="sql-chart">
            <div class="legend">{legend}<span class="scale">{format!(" max {}", format::num(Some(max)))}</span></div>
            <div class="chart-box" inner_html=lane.render("sql")></div>
            <div inner_html=time_axis(axis)></div>
        </div>
    })
}

#[cfg(test)]
mod tests {
    use crate::time_range::parse_timestamp;

    #[test]
    fn result_timestamps_parse() {
        assert!(parse_timestamp("2026-12-01T10:00:00Z").is_some());
        assert!(parse_timestamp("2026-12-01T10:00:00.123456789").is_some());
        assert!(parse_timestamp("2026-12-01").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}

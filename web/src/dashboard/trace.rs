//! One trace: its spans (a tree, and the same in waterfall order with depths) and the eval
//! verdicts on them.

use std::collections::{HashMap, HashSet};

use plumb_store::query::JsonRows;
use plumb_store::Store;
use serde::Serialize;
use serde_json::{Map, Value};

use super::rows;
use crate::error::WebError;

/// Columns of a span in the trace view; `TEXT_COLUMNS` are added where the text is wanted.
const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, service_name, span_name, span_kind, \
    CAST(start_time AS BIGINT) AS start_ns, CAST(end_time AS BIGINT) AS end_ns, \
    start_time, end_time, duration_ms, status_code, status_message, route, \
    gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model, gen_ai_response_model, \
    gen_ai_usage_input_tokens, gen_ai_usage_output_tokens, gen_ai_response_time_to_first_chunk, \
    time_per_output_token, gen_ai_response_finish_reasons, engine, gpu_pool, retry_count, fallback, \
    cache_hit, error_type, cost_usd, span_attributes, resource_attributes, events";
const TEXT_COLUMNS: &str = "input_text, output_text, retrieval_documents";

/// Checks and lowercases a trace id (32 hex characters), so it can be inlined in SQL.
pub fn parse_trace_id(raw: &str) -> Result<String, WebError> {
    let id = raw.trim().to_ascii_lowercase();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WebError::BadRequest(
            "trace_id must be 32 hex characters".into(),
        ));
    }
    Ok(id)
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceDetail {
    pub trace_id: String,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Spans in waterfall order: each parent before its children, siblings by start time.
    pub spans: Vec<WaterfallSpan>,
    /// Verdicts on the trace's spans (and on the trace as a whole, with no span id).
    pub evals: Vec<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaterfallSpan {
    pub depth: usize,
    #[serde(flatten)]
    pub span: Map<String, Value>,
}

impl WaterfallSpan {
    pub fn str(&self, k: &str) -> Option<&str> {
        self.span.get(k).and_then(Value::as_str)
    }
    pub fn f64(&self, k: &str) -> Option<f64> {
        self.span.get(k).and_then(Value::as_f64)
    }
    pub fn i64(&self, k: &str) -> Option<i64> {
        self.span.get(k).and_then(Value::as_i64)
    }
}

/// Loads a trace for the trace page (with prompts, outputs and documents when `with_text`).
pub async fn load(
    store: &Store,
    project: &str,
    trace_id: &str,
    with_text: bool,
) -> Result<TraceDetail, WebError> {
    let id = parse_trace_id(trace_id)?;
    let columns = if with_text {
        format!("{SPAN_COLUMNS}, {TEXT_COLUMNS}")
    } else {
        SPAN_COLUMNS.to_string()
    };
    let spans_sql = format!(
        "SELECT {columns} FROM spans WHERE trace_id = '{id}' ORDER BY start_time LIMIT 5000"
    );
    let evals_sql = format!(
        "SELECT span_id, evaluator, evaluator_version, score, label, passed, explanation, judge_model, source, evaluated_at \
         FROM evals WHERE trace_id = '{id}' ORDER BY evaluator"
    );
    let (spans, evals) = tokio::join!(
        rows(store, project, &spans_sql),
        rows(store, project, &evals_sql)
    );
    let (spans, evals) = (spans?, evals?);
    if spans.rows.is_empty() {
        return Err(WebError::NotFound(format!("no spans with trace_id {id}")));
    }
    let spans = objects(spans);
    let start_ns = spans
        .iter()
        .filter_map(|s| s.get("start_ns").and_then(Value::as_i64))
        .min()
        .unwrap_or(0);
    let end_ns = spans
        .iter()
        .filter_map(|s| s.get("end_ns").and_then(Value::as_i64))
        .max()
        .unwrap_or(start_ns);
    Ok(TraceDetail {
        trace_id: id,
        start_ns,
        end_ns,
        spans: waterfall(spans),
        evals: objects(evals),
    })
}

fn objects(rows: JsonRows) -> Vec<Map<String, Value>> {
    rows.rows
        .into_iter()
        .map(|r| rows.columns.iter().cloned().zip(r).collect())
        .collect()
}

fn id_of(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

/// Parent → children links; spans whose parent is missing become roots.
fn links(spans: &[Map<String, Value>]) -> (Vec<usize>, HashMap<String, Vec<usize>>) {
    let ids: HashSet<String> = spans.iter().filter_map(|m| id_of(m, "span_id")).collect();
    let mut children: HashMap<String, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, m) in spans.iter().enumerate() {
        match id_of(m, "parent_span_id").filter(|p| ids.contains(p)) {
            Some(p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    (roots, children)
}

/// Depth-first order with depths (iterative, and each span visited once, so a cyclic parent
/// chain in bad data cannot loop).
pub fn waterfall(spans: Vec<Map<String, Value>>) -> Vec<WaterfallSpan> {
    let (roots, children) = links(&spans);
    let mut slots: Vec<Option<Map<String, Value>>> = spans.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(slots.len());
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        let Some(span) = slots[i].take() else {
            continue;
        };
        if let Some(kids) = id_of(&span, "span_id").and_then(|id| children.get(&id)) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
        out.push(WaterfallSpan { depth, span });
    }
    // Spans only reachable through a cycle: shown as roots rather than lost.
    for span in slots.into_iter().flatten() {
        out.push(WaterfallSpan { depth: 0, span });
    }
    out
}

/// The nested form of the JSON API: `{"trace_id", "span_count", "roots": [{..., "children"}]}`.
pub fn tree(detail: &TraceDetail) -> Value {
    // Rebuild from the waterfall: a span's children follow it at depth + 1.
    fn take(spans: &[WaterfallSpan], i: &mut usize, depth: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while *i < spans.len() && spans[*i].depth == depth {
            let mut m = spans[*i].span.clone();
            *i += 1;
            let kids = if *i < spans.len() && spans[*i].depth == depth + 1 {
                take(spans, i, depth + 1)
            } else {
                vec![]
            };
            m.insert("children".into(), Value::Array(kids));
            out.push(Value::Object(m));
        }
        out
    }
    let mut i = 0;
    let roots = take(&detail.spans, &mut i, 0);
    serde_json::json!({
        "trace_id": detail.trace_id,
        "span_count": detail.spans.len(),
        "roots": roots,
        "evals": detail.evals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(id: &str, parent: Option<&str>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("span_id".into(), json!(id));
        m.insert("parent_span_id".into(), json!(parent));
        m
    }

    #[test]
    fn spans_nest_under_parents_and_orphans_and_cycles_are_roots() {
        let spans = vec![
            span("a", None),
            span("b", Some("a")),
            span("d", Some("missing")),
            span("c", Some("b")),
            span("x", Some("y")),
            span("y", Some("x")),
        ];
        let w = waterfall(spans);
        let order: Vec<(&str, usize)> = w
            .iter()
            .map(|s| (s.str("span_id").unwrap(), s.depth))
            .collect();
        assert_eq!(&order[..4], &[("a", 0), ("b", 1), ("c", 2), ("d", 0)]);
        assert_eq!(w.len(), 6);
        let detail = TraceDetail {
            trace_id: "t".into(),
            start_ns: 0,
            end_ns: 0,
            spans: w,
            evals: vec![],
        };
        let t = tree(&detail);
        assert_eq!(t["span_count"], 6);
        assert_eq!(t["roots"][0]["children"][0]["children"][0]["span_id"], "c");
        assert_eq!(t["roots"][1]["span_id"], "d");
    }

    #[test]
    fn trace_ids_are_checked() {
        assert!(parse_trace_id("abc").is_err());
        assert!(parse_trace_id("' OR 1=1 --0000000000000000000000").is_err());
        assert_eq!(
            parse_trace_id("0AF7651916CD43DD8448EB211C80319C").unwrap(),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }
}

//! `/traces`: search by time, route, model, status, evaluator verdict and free text;
//! `/traces/{trace_id}`: one trace as a waterfall with each span's details and verdicts.

use leptos::prelude::*;
use serde_json::{Map, Value};

use super::format;
use super::layout::{document, range_inputs, Picker, Section};
use crate::dashboard::trace::{TraceDetail, WaterfallSpan};
use crate::dashboard::traces::{TraceFilter, TraceSummary};
use crate::time_range::{url_encode, TimeRange};

/// Characters of a prompt, output or document shown on the page; the rest is one API call away.
const MAX_TEXT: usize = 4_000;
/// Spans drawn in a waterfall; beyond this the page says how many were left out.
const MAX_SPANS: usize = 400;

pub fn search_page(range: TimeRange, filter: TraceFilter, traces: Vec<TraceSummary>) -> String {
    let keep: Vec<(String, String)> = [
        ("route", &filter.route),
        ("model", &filter.model),
        ("status", &filter.status),
        ("evaluator", &filter.evaluator),
        ("verdict", &filter.verdict),
        ("q", &filter.q),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.clone()
            .filter(|v| !v.is_empty())
            .map(|v| (k.to_string(), v))
    })
    .collect();
    let val = |v: &Option<String>| v.clone().unwrap_or_default();
    let select =
        |name: &'static str, current: Option<String>, options: &[(&'static str, &'static str)]| {
            let current = current.unwrap_or_default();
            let opts = options
            .iter()
            .map(|(v, label)| view! { <option value=*v selected=current == *v>{*label}</option> })
            .collect_view();
            view! { <select name=name aria-label=name>{opts}</select> }
        };
    let empty = traces.is_empty();
    let rows = traces
        .into_iter()
        .map(|t| {
            let href = format!("/traces/{}", t.trace_id);
            let status = if t.errors > 0 { "bad" } else { "" };
            view! {
                <tr>
                    <td class="mono"><a href=href>{t.trace_id[..16].to_string()}"…"</a></td>
                    <td>{format::time(t.start_time)}</td>
                    <td>{t.root_name.unwrap_or_default()}</td>
                    <td>{t.route.unwrap_or_default()}</td>
                    <td>{t.model.unwrap_or_default()}</td>
                    <td class="num">{format::ms(t.duration_ms)}</td>
                    <td class="num">{format::count(t.spans)}</td>
                    <td class=format!("num {status}")>{format::count(t.errors)}</td>
                    <td class="num">{format!("{} / {}", format::num(t.input_tokens.map(|v| v as f64)), format::num(t.output_tokens.map(|v| v as f64)))}</td>
                    <td class="num">{format::usd(t.cost_usd)}</td>
                </tr>
            }
        })
        .collect_view();
    let body = view! {
        <h1>"Traces"</h1>
        <form class="filters" method="get" action="/traces">
            <input name="q" value=val(&filter.q) placeholder="text in names, prompts, outputs, or a trace id" size="36" aria-label="search"/>
            <input name="route" value=val(&filter.route) placeholder="route" aria-label="route"/>
            <input name="model" value=val(&filter.model) placeholder="model" aria-label="model"/>
            {select("status", filter.status.clone(), &[("", "any status"), ("error", "errors"), ("ok", "no error")])}
            <input name="evaluator" value=val(&filter.evaluator) placeholder="evaluator" aria-label="evaluator"/>
            {select("verdict", filter.verdict.clone(), &[("", "any verdict"), ("fail", "failed"), ("pass", "passed")])}
            {range_inputs(&range)}
            <button type="submit">"Search"</button>
        </form>
        {if empty {
            view! { <p class="empty">"No traces match in this range."</p> }.into_any()
        } else {
            view! {
                <table class="traces">
                    <thead><tr>
                        <th>"Trace"</th><th>"Start (UTC)"</th><th>"Root span"</th><th>"Route"</th><th>"Model"</th>
                        <th>"Duration"</th><th>"Spans"</th><th>"Errors"</th><th>"Tokens in / out"</th><th>"Cost"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            }.into_any()
        }}
    };
    let picker = Picker {
        path: "/traces".into(),
        keep,
        range,
    };
    document("Traces", Section::Traces, Some(picker), body)
}

pub fn trace_page(t: TraceDetail) -> String {
    let total = (t.end_ns - t.start_ns).max(1) as f64;
    let shown = t.spans.len().min(MAX_SPANS);
    let left_out = t.spans.len() - shown;
    let mut evals_by_span: std::collections::HashMap<String, Vec<Map<String, Value>>> =
        std::collections::HashMap::new();
    let mut trace_evals = Vec::new();
    for e in &t.evals {
        match e.get("span_id").and_then(Value::as_str) {
            Some(id) => evals_by_span
                .entry(id.to_string())
                .or_default()
                .push(e.clone()),
            None => trace_evals.push(e.clone()),
        }
    }
    let errors = t
        .spans
        .iter()
        .filter(|s| s.str("status_code") == Some("ERROR"))
        .count();
    let rows = t
        .spans
        .into_iter()
        .take(MAX_SPANS)
        .enumerate()
        .map(|(i, s)| {
            let evals = s
                .str("span_id")
                .and_then(|id| evals_by_span.remove(id))
                .unwrap_or_default();
            // The root opens with the page: its details are what one usually came for.
            span_row(s, evals, t.start_ns, total, i == 0)
        })
        .collect_view();
    let id = t.trace_id.clone();
    let body = view! {
        <h1><span class="muted">"Trace "</span><span class="mono">{id.clone()}</span></h1>
        <p class="summary">
            {format!("{} spans, {} with errors, {} long, started {} UTC. ", shown + left_out, errors,
                format::ms(Some(total / 1e6)), format::time(t.start_ns))}
            <a href=format!("/api/v1/traces/{id}")>"JSON"</a>
        </p>
        {(!trace_evals.is_empty()).then(|| view! {
            <div class="trace-evals"><h3>"Verdicts on the whole trace"</h3>{verdicts(trace_evals)}</div>
        })}
        <div class="waterfall">
            <div class="wf-head"><span>"Span"</span><span>"Timeline"</span></div>
            {rows}
        </div>
        {(left_out > 0).then(|| view! {
            <p class="hint">{format!("{left_out} more spans not drawn; query them with SQL.")}</p>
        })}
    };
    document(
        &format!("Trace {}", &t.trace_id[..8]),
        Section::Traces,
        None,
        body,
    )
}

fn span_row(
    s: WaterfallSpan,
    evals: Vec<Map<String, Value>>,
    start: i64,
    total: f64,
    open: bool,
) -> impl IntoView {
    let offset = (s.i64("start_ns").unwrap_or(start) - start) as f64 / total * 100.0;
    let width = (s.f64("duration_ms").unwrap_or(0.0) * 1e6 / total * 100.0).max(0.3);
    let error = s.str("status_code") == Some("ERROR");
    let verdict_badges = evals
        .iter()
        .map(|e| {
            let passed = e.get("passed").and_then(Value::as_bool);
            let name = e
                .get("evaluator")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let class = match passed {
                Some(false) => "pill bad",
                Some(true) => "pill good",
                None => "pill",
            };
            view! { <span class=class>{name}</span> }
        })
        .collect_view();
    let name = s.str("span_name").unwrap_or_default().to_string();
    let model = s
        .str("gen_ai_response_model")
        .or(s.str("gen_ai_request_model"))
        .map(|m| format!(" · {m}"))
        .unwrap_or_default();
    let indent = format!("padding-left:{}px", (s.depth.min(20)) * 14);
    let bar = format!(
        "left:{offset:.2}%;width:{:.2}%",
        width.min(100.0 - offset).max(0.3)
    );
    let details = span_details(&s, evals);
    view! {
        <details open=open class={if error { "span error" } else { "span" }} data-span-id=s.str("span_id").unwrap_or_default().to_string()>
            <summary>
                <span class="span-name" style=indent>
                    {name}<span class="muted">{model}</span>{verdict_badges}
                </span>
                <span class="span-bar-track">
                    <span class="span-bar" style=bar></span>
                    <span class="span-dur">{format::ms(s.f64("duration_ms"))}</span>
                </span>
            </summary>
            {details}
        </details>
    }
}

fn span_details(s: &WaterfallSpan, evals: Vec<Map<String, Value>>) -> impl IntoView {
    let facts: Vec<(&str, String)> = [
        ("service", s.str("service_name").map(str::to_string)),
        ("kind", s.str("span_kind").map(str::to_string)),
        (
            "status",
            s.str("status_code").map(|c| match s.str("status_message") {
                Some(m) if !m.is_empty() => format!("{c}: {m}"),
                _ => c.to_string(),
            }),
        ),
        ("route", s.str("route").map(str::to_string)),
        (
            "operation",
            s.str("gen_ai_operation_name").map(str::to_string),
        ),
        (
            "provider",
            s.str("gen_ai_provider_name").map(str::to_string),
        ),
        (
            "request model",
            s.str("gen_ai_request_model").map(str::to_string),
        ),
        (
            "response model",
            s.str("gen_ai_response_model").map(str::to_string),
        ),
        (
            "input tokens",
            s.i64("gen_ai_usage_input_tokens").map(|v| v.to_string()),
        ),
        (
            "output tokens",
            s.i64("gen_ai_usage_output_tokens").map(|v| v.to_string()),
        ),
        (
            "TTFT",
            s.f64("gen_ai_response_time_to_first_chunk")
                .map(|v| format::secs(Some(v))),
        ),
        (
            "TPOT",
            s.f64("time_per_output_token")
                .map(|v| format::secs(Some(v))),
        ),
        ("cost", s.f64("cost_usd").map(|v| format::usd(Some(v)))),
        ("engine", s.str("engine").map(str::to_string)),
        ("GPU pool", s.str("gpu_pool").map(str::to_string)),
        ("retries", s.i64("retry_count").map(|v| v.to_string())),
        ("error type", s.str("error_type").map(str::to_string)),
        ("span id", s.str("span_id").map(str::to_string)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let facts = facts
        .into_iter()
        .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
        .collect_view();
    let text = |label: &'static str, key: &str| {
        s.str(key).filter(|t| !t.is_empty()).map(|t| {
            let (shown, more) = format::clip(t, MAX_TEXT);
            view! {
                <div class="text-block">
                    <h4>{label}</h4>
                    <pre>{shown}</pre>
                    {more.map(|m| view! { <p class="hint">{format!("… {m} more characters (the full text: JSON API with ?text=true, or SQL)")}</p> })}
                </div>
            }
        })
    };
    let input = text("Input", "input_text");
    let output = text("Output", "output_text");
    let documents = s
        .span
        .get("retrieval_documents")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .map(|docs| {
            let items = docs
                .iter()
                .take(20)
                .map(|d| {
                    let id = d.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    let score = d.get("score").and_then(Value::as_f64);
                    let content = d.get("content").and_then(Value::as_str).unwrap_or_default();
                    let (shown, more) = format::clip(content, MAX_TEXT / 4);
                    view! {
                        <li>
                            <span class="muted">{id}{score.map(|s| format!(" (score {s:.3})"))}</span>
                            <pre>{shown}{more.map(|m| format!(" … {m} more characters"))}</pre>
                        </li>
                    }
                })
                .collect_view();
            view! { <div class="text-block"><h4>{format!("Retrieved documents ({})", docs.len())}</h4><ol>{items}</ol></div> }
        });
    let attributes = s
        .span
        .get("span_attributes")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .map(|m| {
            let rows = m
                .iter()
                .take(200)
                .map(|(k, v)| {
                    let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                    let (shown, _) = format::clip(&v, 500);
                    view! { <tr><td class="mono">{k.clone()}</td><td>{shown}</td></tr> }
                })
                .collect_view();
            view! { <div class="text-block"><h4>"Attributes"</h4><table class="attrs">{rows}</table></div> }
        });
    let verdict_list = (!evals.is_empty()).then(|| verdicts(evals));
    view! {
        <div class="span-details">
            <dl class="facts">{facts}</dl>
            {verdict_list}
            {input}
            {output}
            {documents}
            {attributes}
        </div>
    }
}

fn verdicts(evals: Vec<Map<String, Value>>) -> impl IntoView {
    let rows = evals
        .into_iter()
        .map(|e| {
            let g = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let passed = e.get("passed").and_then(Value::as_bool);
            let score = e.get("score").and_then(Value::as_f64);
            view! {
                <tr class={match passed { Some(false) => "bad", _ => "" }}>
                    <td>{g("evaluator")}</td>
                    <td>{match passed { Some(true) => "pass", Some(false) => "fail", None => "–" }}</td>
                    <td class="num">{format::num(score)}</td>
                    <td>{g("label")}</td>
                    <td class="explanation">{g("explanation")}</td>
                    <td class="muted">{g("source")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="verdicts">
            <thead><tr><th>"Evaluator"</th><th>"Verdict"</th><th>"Score"</th><th>"Label"</th><th>"Explanation"</th><th>"Source"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// A link to the traces of a route in a range (used by the timeline's bucket clicks too).
pub fn traces_href(route: &str, range: &TimeRange) -> String {
    format!("/traces?route={}&{}", url_encode(route), range.query())
}

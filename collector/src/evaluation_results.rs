//! Evaluation results the application sends itself: `gen_ai.evaluation.result` events (on a
//! span, or as log records joined to one by trace and span id) with `gen_ai.evaluation.name`,
//! `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label` and
//! `gen_ai.evaluation.explanation`. They become `evals` rows with `source = 'client'`, next to
//! Plumb's own verdicts, so one query (and one alert rule) covers both.

use plumb_store::records::{EvalRecord, LogRecord, SpanRecord};

/// The event (span event name, or log `event_name`) of a client-side evaluation result.
pub const EVENT: &str = "gen_ai.evaluation.result";

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Whether a label says pass or fail; `None` when it says neither (e.g. a category).
fn passed(label: Option<&str>) -> Option<bool> {
    match label?.to_ascii_lowercase().as_str() {
        "pass" | "passed" | "true" | "yes" | "correct" | "relevant" | "grounded" | "supported"
        | "good" => Some(true),
        "fail" | "failed" | "false" | "no" | "incorrect" | "irrelevant" | "ungrounded"
        | "unsupported" | "bad" | "hallucinated" => Some(false),
        _ => None,
    }
}

struct Fields<'a> {
    name: &'a str,
    score: Option<f64>,
    label: Option<&'a str>,
    explanation: Option<&'a str>,
}

fn fields(attrs: &[(String, String)]) -> Option<Fields<'_>> {
    Some(Fields {
        name: attr(attrs, "gen_ai.evaluation.name")?,
        score: attr(attrs, "gen_ai.evaluation.score.value").and_then(|v| v.parse().ok()),
        label: attr(attrs, "gen_ai.evaluation.score.label"),
        explanation: attr(attrs, "gen_ai.evaluation.explanation"),
    })
}

/// The span a result judges, as far as the result tells.
struct Judged<'a> {
    project: &'a str,
    trace_id: &'a str,
    span_id: Option<&'a str>,
    start: i64,
    route: &'a str,
    model: Option<&'a str>,
}

fn record(judged: Judged<'_>, f: Fields<'_>, time: i64) -> EvalRecord {
    let Judged {
        project,
        trace_id,
        span_id,
        start,
        route,
        model,
    } = judged;
    EvalRecord {
        project: project.to_string(),
        trace_id: trace_id.to_string(),
        span_id: span_id.map(String::from),
        evaluator: f.name.to_string(),
        evaluator_version: 0,
        score: f.score,
        label: f.label.map(String::from),
        passed: passed(f.label),
        explanation: f.explanation.map(String::from),
        judge_model: None,
        latency_ms: None,
        source: "client".into(),
        evaluated_at_unix_nano: time,
        span_start_time_unix_nano: start,
        route: route.to_string(),
        gen_ai_request_model: model.map(String::from),
    }
}

/// Results carried as events of these spans.
pub fn from_spans(spans: &[SpanRecord]) -> Vec<EvalRecord> {
    let mut out = Vec::new();
    for s in spans {
        for e in s.events.iter().filter(|e| e.name == EVENT) {
            if let Some(f) = fields(&e.attributes) {
                let judged = Judged {
                    project: &s.project,
                    trace_id: &s.trace_id,
                    span_id: Some(&s.span_id),
                    start: s.start_time_unix_nano,
                    route: &s.gen_ai.route,
                    model: s.gen_ai.request_model.as_deref(),
                };
                out.push(record(judged, f, e.time_unix_nano));
            }
        }
    }
    out
}

/// Results sent as log records. The span they judge may not be stored yet, so its route is the
/// log's `plumb.route` attribute or its service name, and its start time the record's time.
pub fn from_logs(logs: &[LogRecord]) -> Vec<EvalRecord> {
    logs.iter()
        .filter(|l| l.event_name.as_deref() == Some(EVENT))
        .filter_map(|l| {
            let f = fields(&l.log_attributes)?;
            let route = attr(&l.log_attributes, "plumb.route")
                .unwrap_or(&l.service_name)
                .to_string();
            let model = attr(&l.log_attributes, "gen_ai.request.model").map(String::from);
            let judged = Judged {
                project: &l.project,
                trace_id: l.trace_id.as_deref().unwrap_or_default(),
                span_id: l.span_id.as_deref(),
                start: l.time_unix_nano,
                route: &route,
                model: model.as_deref(),
            };
            Some(record(judged, f, l.time_unix_nano))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_store::records::{GenAiFields, SpanEvent};

    #[test]
    fn span_events_and_log_records_become_client_verdicts() {
        let attrs = |name: &str, label: &str| {
            vec![
                ("gen_ai.evaluation.name".to_string(), name.to_string()),
                (
                    "gen_ai.evaluation.score.value".to_string(),
                    "0.25".to_string(),
                ),
                (
                    "gen_ai.evaluation.score.label".to_string(),
                    label.to_string(),
                ),
                (
                    "gen_ai.evaluation.explanation".to_string(),
                    "cites nothing".to_string(),
                ),
            ]
        };
        let span = SpanRecord {
            project: "p".into(),
            trace_id: "t".into(),
            span_id: "s".into(),
            start_time_unix_nano: 5,
            events: vec![
                SpanEvent {
                    time_unix_nano: 9,
                    name: EVENT.into(),
                    attributes: attrs("faithfulness", "fail"),
                },
                SpanEvent {
                    time_unix_nano: 9,
                    name: "other".into(),
                    attributes: attrs("x", "pass"),
                },
            ],
            gen_ai: GenAiFields {
                route: "r".into(),
                request_model: Some("m".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let rows = from_spans(&[span]);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (r.evaluator.as_str(), r.score, r.passed, r.source.as_str()),
            ("faithfulness", Some(0.25), Some(false), "client")
        );
        assert_eq!((r.span_start_time_unix_nano, r.route.as_str()), (5, "r"));

        let log = LogRecord {
            project: "p".into(),
            time_unix_nano: 7,
            event_name: Some(EVENT.into()),
            trace_id: Some("t".into()),
            span_id: Some("s".into()),
            service_name: "svc".into(),
            log_attributes: attrs("tone", "friendly"),
            ..Default::default()
        };
        let rows = from_logs(&[log]);
        assert_eq!(
            (
                rows[0].evaluator.as_str(),
                rows[0].passed,
                rows[0].route.as_str()
            ),
            ("tone", None, "svc")
        );
    }
}

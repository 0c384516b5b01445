//! OTLP spans -> `spans` rows: validation of ids and times, then normalization.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::Event, status::StatusCode, Span};
use plumb_store::records::{SpanEvent, SpanLink, SpanRecord};

use crate::attributes::{into_attributes, to_attributes, AttrView};
use crate::convert::{hex_id, optional_hex_id, Rejections, ResourceContext};
use crate::error::IngestError;
use crate::genai::{self, SpanFacts};
use crate::pricing::PriceTable;

pub fn span_kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "INTERNAL",
        2 => "SERVER",
        3 => "CLIENT",
        4 => "PRODUCER",
        5 => "CONSUMER",
        _ => "UNSPECIFIED",
    }
}

fn status_name(code: i32) -> &'static str {
    match StatusCode::try_from(code) {
        Ok(StatusCode::Ok) => "OK",
        Ok(StatusCode::Error) => "ERROR",
        _ => "UNSET",
    }
}

/// Moves the events' names and string values out of the request instead of copying them.
fn events(evs: Vec<Event>) -> Vec<SpanEvent> {
    evs.into_iter()
        .map(|e| SpanEvent {
            time_unix_nano: e.time_unix_nano as i64,
            name: e.name,
            attributes: into_attributes(e.attributes),
        })
        .collect()
}

/// Converts a request into rows. Structural errors (bad ids) reject the whole request; spans
/// without a start time are rejected one by one (partial success).
pub fn convert(
    req: ExportTraceServiceRequest,
    project: &str,
    prices: &PriceTable,
) -> Result<(Vec<SpanRecord>, Rejections), IngestError> {
    let mut rows = Vec::new();
    let mut rejected = Rejections::default();
    let project: Arc<str> = project.into();
    for (ri, rs) in req.resource_spans.into_iter().enumerate() {
        let resource = ResourceContext::new(rs.resource.as_ref());
        for (si, ss) in rs.scope_spans.into_iter().enumerate() {
            let scope = ScopeNames::new(ss.scope.as_ref());
            for (pi, span) in ss.spans.into_iter().enumerate() {
                let at = || format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]");
                if span.start_time_unix_nano == 0 {
                    rejected.add(format!("{}: startTimeUnixNano is missing", at()));
                    continue;
                }
                rows.push(convert_span(
                    span, &project, &resource, &scope, prices, &at,
                )?);
            }
        }
    }
    Ok((rows, rejected))
}

/// An instrumentation scope's name and version, made once for all of its spans.
struct ScopeNames {
    name: Option<Arc<str>>,
    version: Option<Arc<str>>,
}

impl ScopeNames {
    fn new(scope: Option<&opentelemetry_proto::tonic::common::v1::InstrumentationScope>) -> Self {
        let non_empty = |s: &str| (!s.is_empty()).then(|| Arc::from(s));
        ScopeNames {
            name: scope.and_then(|s| non_empty(&s.name)),
            version: scope.and_then(|s| non_empty(&s.version)),
        }
    }
}

fn convert_span(
    span: Span,
    project: &Arc<str>,
    resource: &ResourceContext,
    scope: &ScopeNames,
    prices: &PriceTable,
    at: &dyn Fn() -> String,
) -> Result<SpanRecord, IngestError> {
    let trace_id = hex_id(&span.trace_id, 16, "traceId", at)?;
    let span_id = hex_id(&span.span_id, 8, "spanId", at)?;
    let parent_span_id = optional_hex_id(&span.parent_span_id, 8, "parentSpanId", at)?;
    let start = span.start_time_unix_nano as i64;
    // A span without an end (or ending before it started) is kept with zero duration.
    let end = (span.end_time_unix_nano as i64).max(start);
    let status = span.status.as_ref();
    let status_code = status_name(status.map_or(0, |s| s.code));
    let attrs = AttrView::new(&span.attributes);
    let (mut gen_ai, stored_once) = genai::normalize(
        &attrs,
        &SpanFacts {
            service_name: &resource.service_name,
            span_name: &span.name,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            is_error: status_code == "ERROR",
            events: &span.events,
        },
    );
    prices.apply(&mut gen_ai);
    let links = span
        .links
        .iter()
        .enumerate()
        .map(|(li, l)| {
            let at_link = || format!("{}.links[{li}]", at());
            Ok(SpanLink {
                trace_id: hex_id(&l.trace_id, 16, "traceId", &at_link)?,
                span_id: hex_id(&l.span_id, 8, "spanId", &at_link)?,
                attributes: to_attributes(&l.attributes),
            })
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok(SpanRecord {
        project: project.clone(),
        trace_id,
        span_id,
        parent_span_id,
        service_name: resource.service_name.clone(),
        span_name: span.name,
        span_kind: span_kind_name(span.kind),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status_code,
        status_message: status.map(|s| s.message.clone()).filter(|m| !m.is_empty()),
        scope_name: scope.name.clone(),
        scope_version: scope.version.clone(),
        resource_attributes: resource.attributes.clone(),
        span_attributes: into_attributes(if stored_once.is_empty() {
            span.attributes
        } else {
            span.attributes
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !stored_once.contains(*i))
                .map(|(_, kv)| kv)
                .collect()
        }),
        events: events(span.events),
        links,
        gen_ai,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::test_support::s;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    pub(crate) fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                                "chatbot".into(),
                            )),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "chat gpt-4o".into(),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_001_000_000_000,
            status: Some(Status {
                code: 2,
                message: "boom".into(),
            }),
            attributes: vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.request.model", "gpt-4o"),
                crate::attributes::test_support::i("gen_ai.usage.input_tokens", 1000),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn converts_core_fields_and_cost() {
        let (rows, rej) = convert(request(vec![span()]), "p", &PriceTable::default()).unwrap();
        assert_eq!(rej.count, 0);
        let r = &rows[0];
        assert_eq!(r.trace_id, "01010101010101010101010101010101");
        assert_eq!(r.span_id, "0202020202020202");
        assert_eq!(r.parent_span_id, None);
        assert_eq!(&*r.service_name, "chatbot");
        assert_eq!(r.span_kind, "CLIENT");
        assert_eq!(r.status_code, "ERROR");
        assert_eq!(r.status_message.as_deref(), Some("boom"));
        assert_eq!(r.gen_ai.route, "chatbot/chat");
        assert!((r.gen_ai.cost_usd.unwrap() - 0.0025).abs() < 1e-12);
    }

    #[test]
    fn wrong_id_length_names_the_span() {
        let mut bad = span();
        bad.trace_id = vec![1; 5];
        let err = convert(request(vec![span(), bad]), "p", &PriceTable::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("spans[1]") && msg.contains("traceId"), "{msg}");
    }

    #[test]
    fn spans_without_start_are_rejected_individually() {
        let mut bad = span();
        bad.start_time_unix_nano = 0;
        let (rows, rej) = convert(request(vec![span(), bad]), "p", &PriceTable::default()).unwrap();
        assert_eq!((rows.len(), rej.count), (1, 1));
        assert!(rej.message().contains("spans[1]"));
    }
}

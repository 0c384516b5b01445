//! OTLP log records -> `logs` rows. GenAI instrumentations send prompts, completions and
//! evaluation results as log events; their trace and span ids keep them joinable to spans.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use plumb_store::records::LogRecord;

use crate::attributes::{to_attributes, value_text, AttrView};
use crate::convert::{optional_hex_id, scope_name, Rejections, ResourceContext};
use crate::error::IngestError;

pub fn convert(
    req: &ExportLogsServiceRequest,
    project: &str,
) -> Result<(Vec<LogRecord>, Rejections), IngestError> {
    let mut rows = Vec::new();
    let mut rejected = Rejections::default();
    for (ri, rl) in req.resource_logs.iter().enumerate() {
        let resource = ResourceContext::new(rl.resource.as_ref());
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            let scope_name = scope_name(sl.scope.as_ref());
            for (li, r) in sl.log_records.iter().enumerate() {
                let at = || format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]");
                let time = if r.time_unix_nano != 0 {
                    r.time_unix_nano
                } else {
                    r.observed_time_unix_nano
                };
                if time == 0 {
                    rejected.add(format!(
                        "{}: neither timeUnixNano nor observedTimeUnixNano is set",
                        at()
                    ));
                    continue;
                }
                let attrs = AttrView::new(&r.attributes);
                let event_name = Some(r.event_name.clone())
                    .filter(|n| !n.is_empty())
                    .or_else(|| attrs.string("event.name"));
                rows.push(LogRecord {
                    project: project.to_string(),
                    time_unix_nano: time as i64,
                    observed_time_unix_nano: Some(r.observed_time_unix_nano as i64)
                        .filter(|t| *t != 0),
                    severity_number: Some(r.severity_number).filter(|n| *n != 0),
                    severity_text: Some(r.severity_text.clone()).filter(|s| !s.is_empty()),
                    body: r.body.as_ref().map(value_text),
                    trace_id: optional_hex_id(&r.trace_id, 16, "traceId", &at)?,
                    span_id: optional_hex_id(&r.span_id, 8, "spanId", &at)?,
                    service_name: resource.service_name.to_string(),
                    event_name,
                    scope_name: scope_name.clone(),
                    resource_attributes: resource.attributes.clone(),
                    log_attributes: to_attributes(&r.attributes),
                });
            }
        }
    }
    Ok((rows, rejected))
}

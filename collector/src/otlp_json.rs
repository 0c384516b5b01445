//! The OTLP/JSON mapping on top of the generated serde types: exporters write enums either as
//! integers or as their names (`"SPAN_KIND_SERVER"`), which the generated types do not accept,
//! so names are turned into numbers first. Hex ids, camelCase and 64-bit integers as strings or
//! numbers are handled by the generated types.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::IngestError;

/// Enum-valued fields and the name prefix of their values.
const ENUM_FIELDS: &[(&str, &str, &[&str])] = &[
    (
        "kind",
        "SPAN_KIND_",
        &[
            "UNSPECIFIED",
            "INTERNAL",
            "SERVER",
            "CLIENT",
            "PRODUCER",
            "CONSUMER",
        ],
    ),
    ("code", "STATUS_CODE_", &["UNSET", "OK", "ERROR"]),
    (
        "aggregationTemporality",
        "AGGREGATION_TEMPORALITY_",
        &["UNSPECIFIED", "DELTA", "CUMULATIVE"],
    ),
];

fn severity_number(name: &str) -> Option<i64> {
    const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rest = name.strip_prefix("SEVERITY_NUMBER_")?;
    if rest == "UNSPECIFIED" {
        return Some(0);
    }
    let digits = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let level = &rest[..rest.len() - digits.len()];
    let base = LEVELS.iter().position(|l| *l == level)? as i64 * 4;
    let offset = if digits.is_empty() {
        1
    } else {
        digits.parse::<i64>().ok()?
    };
    (1..=4).contains(&offset).then_some(base + offset)
}

fn normalize_enums(v: &mut Value) -> Result<(), IngestError> {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if let Value::String(name) = value {
                    if let Some((_, prefix, names)) = ENUM_FIELDS.iter().find(|(f, _, _)| f == key)
                    {
                        let bare = name.strip_prefix(prefix).unwrap_or(name);
                        let n = names.iter().position(|x| *x == bare).ok_or_else(|| {
                            IngestError::Invalid(format!(
                                "invalid OTLP JSON: {key} {name:?} is not a known value"
                            ))
                        })?;
                        *value = Value::from(n as i64);
                        continue;
                    }
                    if key == "severityNumber" {
                        let n = severity_number(name).ok_or_else(|| {
                            IngestError::Invalid(format!(
                                "invalid OTLP JSON: severityNumber {name:?} is not a known value"
                            ))
                        })?;
                        *value = Value::from(n);
                        continue;
                    }
                }
                normalize_enums(value)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                normalize_enums(item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Decodes an OTLP/JSON export request.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, IngestError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::Invalid(format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(IngestError::Invalid(
            "invalid OTLP JSON: the body must be a JSON object".into(),
        ));
    }
    normalize_enums(&mut value)?;
    serde_json::from_value(value)
        .map_err(|e| IngestError::Invalid(format!("invalid OTLP JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    #[test]
    fn spans_with_enum_names_and_string_integers() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
          "name":"chat","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
          "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}}],
          "status":{"code":"STATUS_CODE_ERROR","message":"x"}}]}]}]}"#;
        let req: ExportTraceServiceRequest = decode(body).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, 3);
        assert_eq!(span.status.as_ref().unwrap().code, 2);
        assert_eq!(span.start_time_unix_nano, 1544712660000000000);
        assert_eq!(span.end_time_unix_nano, 1544712661000000000);
        assert_eq!(span.trace_id.len(), 16);
    }

    #[test]
    fn integer_enums_still_work_and_unknown_names_are_named() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":2}]}]}]}"#;
        let req: ExportTraceServiceRequest = decode(body).unwrap();
        assert_eq!(req.resource_spans[0].scope_spans[0].spans[0].kind, 2);
        let bad = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_NOPE"}]}]}]}"#;
        let err = decode::<ExportTraceServiceRequest>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SPAN_KIND_NOPE"), "{err}");
    }

    #[test]
    fn severity_and_temporality_names() {
        assert_eq!(severity_number("SEVERITY_NUMBER_INFO"), Some(9));
        assert_eq!(severity_number("SEVERITY_NUMBER_ERROR3"), Some(19));
        assert_eq!(severity_number("SEVERITY_NUMBER_FATAL4"), Some(24));
        let logs: ExportLogsServiceRequest = decode(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","severityNumber":"SEVERITY_NUMBER_WARN","body":{"stringValue":"hi"}}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            logs.resource_logs[0].scope_logs[0].log_records[0].severity_number,
            13
        );
        let metrics: ExportMetricsServiceRequest = decode(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":true,"dataPoints":[{"timeUnixNano":"5","asInt":"7"}]}}]}]}]}"#,
        )
        .unwrap();
        let m = &metrics.resource_metrics[0].scope_metrics[0].metrics[0];
        match m.data.as_ref().unwrap() {
            opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s) => {
                assert_eq!(s.aggregation_temporality, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_reported() {
        let err = decode::<ExportTraceServiceRequest>(b"{\"resourceSpans\": [").unwrap_err();
        assert!(err.to_string().starts_with("invalid JSON"), "{err}");
        let err = decode::<ExportTraceServiceRequest>(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid OTLP JSON"), "{err}");
    }
}

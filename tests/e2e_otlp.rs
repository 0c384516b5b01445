//! Hand-written OTLP (JSON as real exporters spell it, gzip, metrics and logs) and malformed
//! input: every bad request gets a clear 400 / INVALID_ARGUMENT naming the problem and stores
//! nothing of itself.

mod common;

use std::io::Write;

use common::{temp_dir, Plumb};
use reqwest::blocking::Client;
use serde_json::{json, Value};

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn traces_json(spans: Value) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hand-written"}}]},
        "scopeSpans": [{"scope": {"name": "manual", "version": "1.2"}, "spans": spans}]
    }]})
}

fn span(span_id: &str, name: &str) -> Value {
    json!({
        "traceId": TRACE, "spanId": span_id, "name": name,
        "kind": "SPAN_KIND_CLIENT",
        "startTimeUnixNano": "1763899200000000000", "endTimeUnixNano": 1763899200750000000u64,
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 7}},
            {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.2}},
            {"key": "gen_ai.output.type", "value": {"stringValue": "json"}},
            {"key": "gen_ai.output.messages", "value": {"stringValue":
                "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"{\\\"ok\\\": tru\"}]}]"}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}}}
        ],
        "events": [{"timeUnixNano": "1763899200100000000", "name": "gen_ai.content.completion.chunk"}],
        "status": {"code": "STATUS_CODE_OK"}
    })
}

fn post(
    client: &Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    gzip: bool,
) -> (u16, Vec<u8>) {
    let mut req = client.post(url).header("Content-Type", content_type);
    let body = if gzip {
        req = req.header("Content-Encoding", "gzip");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body).unwrap();
        enc.finish().unwrap()
    } else {
        body
    };
    let resp = req.body(body).send().unwrap();
    (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
}

/// A gRPC export of one span with span id 0101…01.
fn one_span_request(
    trace_id: Vec<u8>,
    start_time_unix_nano: u64,
) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id,
                    span_id: vec![1; 8],
                    start_time_unix_nano,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn span_count(plumb: &Plumb) -> i64 {
    plumb
        .sql("SELECT count(*) FROM spans")
        .scalar()
        .as_i64()
        .unwrap()
}

#[test]
fn hand_written_json_gzip_metrics_and_logs() {
    let dir = temp_dir();
    let plumb = Plumb::start(&dir.path().join("data"), &[]);
    let c = Client::new();
    let body = traces_json(json!([span("eee19b7ec3c1b174", "chat a")]));
    let (status, resp) = post(
        &c,
        &format!("{}/v1/traces", plumb.otlp_http),
        "application/json",
        body.to_string().into_bytes(),
        true,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));

    let rows = plumb.sql(
        "SELECT span_kind, scope_name, scope_version, duration_ms, gen_ai_usage_input_tokens, gen_ai_usage_output_tokens, \
         gen_ai_response_time_to_first_chunk, span_attributes['gen_ai.request.temperature'] AS temperature, \
         span_attributes['tags'] AS tags, output_text, \
         json_get_str(output_text, 'ok') IS NULL AND output_text IS NOT NULL AS output_is_broken_json, \
         json_valid(output_text) AS output_is_valid_json, json_valid(span_attributes['tags']) AS tags_are_json \
         FROM spans",
    );
    let r = rows.row(0);
    assert_eq!(r["span_kind"], "CLIENT");
    assert_eq!(r["scope_name"], "manual");
    assert_eq!(r["scope_version"], "1.2");
    assert_eq!(r["duration_ms"], 750.0);
    assert_eq!(r["gen_ai_usage_input_tokens"], 42);
    assert_eq!(r["gen_ai_usage_output_tokens"], 7);
    assert_eq!(r["gen_ai_response_time_to_first_chunk"], 0.1);
    assert_eq!(r["temperature"], "0.2");
    assert_eq!(r["tags"], "[\"a\",2]");
    assert_eq!(r["output_text"], "{\"ok\": tru");
    assert_eq!(r["output_is_broken_json"], true);
    assert_eq!(r["output_is_valid_json"], false);
    assert_eq!(r["tags_are_json"], true);

    let metrics = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "vllm"}}]},
        "scopeMetrics": [{"metrics": [
            {"name": "gpu.utilization", "unit": "1", "gauge": {"dataPoints": [
                {"timeUnixNano": "1763899200000000000", "asDouble": 0.87,
                 "attributes": [{"key": "gpu", "value": {"stringValue": "0"}}]}]}},
            {"name": "vllm:num_requests_running", "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                "isMonotonic": false, "dataPoints": [{"timeUnixNano": "1763899200000000000", "asInt": "12"}]}},
            {"name": "gen_ai.server.time_to_first_token", "unit": "s", "histogram": {"aggregationTemporality": 1,
                "dataPoints": [{"timeUnixNano": "1763899200000000000", "count": "3", "sum": 0.9,
                                "bucketCounts": ["1", "2", "0"], "explicitBounds": [0.1, 0.5]}]}}
        ]}]
    }]});
    let (status, resp) = post(
        &c,
        &format!("{}/v1/metrics", plumb.otlp_http),
        "application/json",
        metrics.to_string().into_bytes(),
        false,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    let m = plumb.sql(
        "SELECT metric_name, metric_type, service_name, value, aggregation_temporality, histogram_count, \
         histogram_sum, histogram_bucket_counts, histogram_explicit_bounds, attributes['gpu'] AS gpu \
         FROM metrics ORDER BY metric_name",
    );
    assert_eq!(m.rows.len(), 3);
    assert_eq!(m.get(0, "metric_name"), "gen_ai.server.time_to_first_token");
    assert_eq!(m.get(0, "metric_type"), "histogram");
    assert_eq!(m.get(0, "aggregation_temporality"), "delta");
    assert_eq!(m.get(0, "histogram_count"), 3);
    assert_eq!(m.get(0, "histogram_sum"), 0.9);
    assert_eq!(m.get(0, "histogram_bucket_counts"), &json!([1, 2, 0]));
    assert_eq!(m.get(0, "histogram_explicit_bounds"), &json!([0.1, 0.5]));
    assert_eq!(m.get(1, "metric_name"), "gpu.utilization");
    assert_eq!(m.get(1, "value"), 0.87);
    assert_eq!(m.get(1, "gpu"), "0");
    assert_eq!(m.get(1, "service_name"), "vllm");
    assert_eq!(m.get(2, "metric_type"), "sum");
    assert_eq!(m.get(2, "value"), 12.0);
    assert_eq!(m.get(2, "aggregation_temporality"), "cumulative");

    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hand-written"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1763899200200000000", "severityNumber": "SEVERITY_NUMBER_INFO", "severityText": "INFO",
            "eventName": "gen_ai.evaluation.result", "traceId": TRACE, "spanId": "eee19b7ec3c1b174",
            "body": {"kvlistValue": {"values": [{"key": "score", "value": {"doubleValue": 0.5}}]}},
            "attributes": [{"key": "gen_ai.evaluation.name", "value": {"stringValue": "relevance"}}]
        }]}]
    }]});
    let (status, _) = post(
        &c,
        &format!("{}/v1/logs", plumb.otlp_http),
        "application/json",
        logs.to_string().into_bytes(),
        false,
    );
    assert_eq!(status, 200);
    let l = plumb.sql(
        "SELECT l.event_name, l.severity_number, l.body, l.log_attributes['gen_ai.evaluation.name'] AS evaluator, s.span_name \
         FROM logs l JOIN spans s ON l.span_id = s.span_id",
    );
    let r = l.row(0);
    assert_eq!(r["event_name"], "gen_ai.evaluation.result");
    assert_eq!(r["severity_number"], 9);
    assert_eq!(r["body"], "{\"score\":0.5}");
    assert_eq!(r["evaluator"], "relevance");
    assert_eq!(r["span_name"], "chat a");
}

#[test]
fn malformed_requests_are_refused_clearly_and_store_nothing() {
    let dir = temp_dir();
    let plumb = Plumb::start(&dir.path().join("data"), &["--max-body-bytes", "65536"]);
    let c = Client::new();
    let traces = format!("{}/v1/traces", plumb.otlp_http);

    // Bad protobuf: 400 with a google.rpc.Status in protobuf.
    let (status, body) = post(
        &c,
        &traces,
        "application/x-protobuf",
        b"\x0a\xff\xff\xff".to_vec(),
        false,
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("invalid OTLP protobuf"));

    // Bad JSON: 400 in JSON, with the position.
    let (status, body) = post(
        &c,
        &traces,
        "application/json",
        b"{\"resourceSpans\": [".to_vec(),
        false,
    );
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 3);
    assert!(
        v["message"].as_str().unwrap().contains("invalid JSON"),
        "{v}"
    );

    // A wrong id in the second span rejects the whole request, naming the span and field.
    let body = traces_json(json!([
        span("eee19b7ec3c1b174", "ok"),
        span("abcd", "bad id")
    ]));
    let (status, resp) = post(
        &c,
        &traces,
        "application/json",
        body.to_string().into_bytes(),
        false,
    );
    assert_eq!(status, 400);
    let msg = serde_json::from_slice::<Value>(&resp).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("spans[1]") && msg.contains("spanId must be 8 bytes"),
        "{msg}"
    );
    let mut bad_hex = traces_json(json!([span("eee19b7ec3c1b174", "x")]));
    bad_hex["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = json!("not-hex-at-all");
    let (status, _) = post(
        &c,
        &traces,
        "application/json",
        bad_hex.to_string().into_bytes(),
        false,
    );
    assert_eq!(status, 400);

    // Bad gzip.
    let (status, resp) = {
        let resp = c
            .post(&traces)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body("this is not gzip")
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    assert_eq!(status, 400);
    assert!(resp.contains("gzip"), "{resp}");

    // Oversized, plain and as a gzip bomb (small on the wire, large once inflated).
    let big = traces_json(json!([span("eee19b7ec3c1b174", &"x".repeat(100_000))])).to_string();
    let (status, resp) = post(
        &c,
        &traces,
        "application/json",
        big.clone().into_bytes(),
        false,
    );
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("limit"));
    let (status, _) = post(&c, &traces, "application/json", big.into_bytes(), true);
    assert_eq!(status, 413);

    // Unknown content type.
    let (status, _) = post(&c, &traces, "text/plain", b"hello".to_vec(), false);
    assert_eq!(status, 415);

    assert_eq!(
        span_count(&plumb),
        0,
        "nothing of a refused request may be stored"
    );

    // A span without a start time is dropped alone: partial success.
    let mut partial = traces_json(json!([
        span("eee19b7ec3c1b174", "kept"),
        span("eee19b7ec3c1b175", "dropped")
    ]));
    partial["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
        .as_object_mut()
        .unwrap()
        .remove("startTimeUnixNano");
    let (status, resp) = post(
        &c,
        &traces,
        "application/json",
        partial.to_string().into_bytes(),
        false,
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], 1, "{v}");
    assert!(v["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("startTimeUnixNano"));
    assert_eq!(span_count(&plumb), 1);
}

#[tokio::test]
async fn grpc_rejects_bad_ids_with_invalid_argument() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

    let dir = temp_dir();
    let data = dir.path().join("data");
    let plumb = tokio::task::spawn_blocking(move || Plumb::start(&data, &[]))
        .await
        .unwrap();
    let mut client = TraceServiceClient::connect(plumb.grpc.clone())
        .await
        .unwrap();
    let req = one_span_request(vec![7; 3], 1);
    let err = client.export(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("traceId must be 16 bytes"),
        "{}",
        err.message()
    );
    let count = tokio::task::spawn_blocking(move || span_count(&plumb))
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[test]
fn sql_is_read_only() {
    let dir = temp_dir();
    let plumb = Plumb::start(&dir.path().join("data"), &[]);
    let c = Client::new();
    for q in [
        "DELETE FROM spans",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/plumb-copy.csv'",
    ] {
        let resp = c
            .post(format!("{}/api/v1/sql", plumb.http))
            .json(&json!({ "query": q }))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{q}");
        let v: Value = resp.json().unwrap();
        assert!(v["error"].as_str().unwrap().contains("read-only"), "{v}");
    }
    let out = std::process::Command::new(common::PLUMB)
        .args(["sql", "--url", &plumb.http, "DROP TABLE spans"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    let bad = c
        .post(format!("{}/api/v1/sql", plumb.http))
        .json(&json!({ "query": "SELECT no_such_column FROM spans" }))
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

/// A store that can buffer almost nothing: the first export is refused when it is written, and
/// every later one at the door, before it is even decoded (so a malformed one gets 429 too). Both
/// answers carry a retry hint, and nothing refused is stored.
#[tokio::test]
async fn overload_is_refused_with_a_retry_hint_over_http_and_grpc() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use tonic_types::StatusExt;

    let dir = temp_dir();
    let data = dir.path().join("data");
    let config = common::write_config(dir.path(), "[storage]\nmax_buffered_bytes = 1\n");
    let plumb = tokio::task::spawn_blocking(move || Plumb::start(&data, &["--config", &config]))
        .await
        .unwrap();
    let body = serde_json::to_vec(&traces_json(json!([span("0102030405060708", "chat")]))).unwrap();
    let url = format!("{}/v1/traces", plumb.otlp_http);
    for (attempt, body) in [("written", body), ("at the door", b"{not json".to_vec())] {
        let client = reqwest::Client::new();
        let resp = client
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 429, "{attempt}");
        assert_eq!(resp.headers()["retry-after"], "1", "{attempt}");
        let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert!(
            v["message"].as_str().unwrap().contains("overloaded"),
            "{attempt}: {v}"
        );
    }

    let request = one_span_request(vec![7; 16], 1_763_899_200_000_000_000);
    let mut client = TraceServiceClient::connect(plumb.grpc.clone())
        .await
        .unwrap();
    let err = client.export(request).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(err.message().contains("overloaded"), "{}", err.message());
    let retry = err.get_details_retry_info().expect("a RetryInfo detail");
    assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(1)));

    let count = tokio::task::spawn_blocking(move || span_count(&plumb))
        .await
        .unwrap();
    assert_eq!(count, 0);
}

//! Spans exported by the real OpenTelemetry exporters (Python SDK over gRPC, HTTP/protobuf and
//! HTTP/JSON; the JS SDK over HTTP/JSON, HTTP/protobuf and gRPC) land in `spans` with the exact
//! core and GenAI columns, visible to SQL as soon as the export is acknowledged.

mod common;

use common::{node_exporter, python_exporter, temp_dir, Plumb, Rows};
use serde_json::{json, Value};

const GENAI_COLUMNS: &str = "span_name, span_kind, parent_span_id, service_name, route, status_code, status_message, \
    duration_ms, gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model, gen_ai_response_model, \
    gen_ai_usage_input_tokens, gen_ai_usage_output_tokens, gen_ai_usage_cache_read_input_tokens, \
    gen_ai_usage_cache_creation_input_tokens, gen_ai_response_time_to_first_chunk, time_per_output_token, \
    gen_ai_response_finish_reasons, gen_ai_output_type, gen_ai_conversation_id, gen_ai_agent_name, gen_ai_tool_name, \
    input_text, output_text, engine, gpu_pool, queue_time, cache_hit, retry_count, fallback, error_type, cost_usd, \
    retrieval_documents, trace_id, span_id, resource_attributes['run'] AS resource_run, \
    span_attributes['gen_ai.input.messages'] AS raw_input_messages, \
    span_attributes['gen_ai.request.model'] AS raw_request_model";

fn spans_of_run(plumb: &Plumb, run: &str) -> Rows {
    plumb.sql(&format!(
        "SELECT {GENAI_COLUMNS} FROM spans WHERE span_attributes['run'] = '{run}' ORDER BY start_time"
    ))
}

fn assert_close(v: &Value, expected: f64, what: &str) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(
        (got - expected).abs() < 1e-9,
        "{what}: got {got}, expected {expected}"
    );
}

fn span_id_of(summary: &Value, name_prefix: &str) -> String {
    summary["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(name_prefix))
        .unwrap_or_else(|| panic!("no span {name_prefix} in {summary}"))["span_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The OpenTelemetry GenAI spans of tests/python/export_spans.py, column by column.
fn check_genai_rows(rows: &Rows, summary: &Value, run: &str) {
    assert_eq!(rows.rows.len(), 3, "{:?}", rows.rows);
    let root_id = span_id_of(summary, "POST /chat");
    let trace_id = summary["spans"][0]["trace_id"].as_str().unwrap();

    // The server span: route from http.route.
    let root = rows.row(0);
    assert_eq!(root["span_name"], json!(format!("POST /chat {run}")));
    assert_eq!(root["span_kind"], "SERVER");
    assert_eq!(root["parent_span_id"], Value::Null);
    assert_eq!(root["route"], "/chat");
    assert_eq!(root["service_name"], "py-chat");
    assert_eq!(root["resource_run"], json!(run));
    assert_eq!(root["trace_id"], json!(trace_id));
    assert_eq!(root["span_id"], json!(root_id));
    assert_close(&root["duration_ms"], 1400.0, "root duration");

    // Current GenAI conventions and plumb.* serving attributes.
    let chat = rows.row(1);
    let expect = json!({
        "span_kind": "CLIENT",
        "parent_span_id": root_id,
        "route": "support-bot",
        "status_code": "UNSET",
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-4o-mini",
        "gen_ai_response_model": "gpt-4o-mini-2024-07-18",
        "gen_ai_usage_input_tokens": 1200,
        "gen_ai_usage_output_tokens": 81,
        "gen_ai_usage_cache_read_input_tokens": 200,
        "gen_ai_response_finish_reasons": ["stop"],
        "gen_ai_output_type": "json",
        "gen_ai_conversation_id": format!("conv-{run}"),
        "input_text": "Return the order status as JSON.",
        "output_text": "{\"status\": \"shipped\"}",
        "engine": "vllm",
        "gpu_pool": "h100-a",
        "cache_hit": false,
        "retry_count": 1,
        "fallback": true,
        "error_type": null,
        "retrieval_documents": null,
        // Plain text messages are stored once, in input_text; other attributes stay in the map.
        "raw_input_messages": null,
        "raw_request_model": "gpt-4o-mini",
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&chat[k], v, "chat span column {k}: {chat:?}");
    }
    assert_close(&chat["duration_ms"], 1000.0, "chat duration");
    assert_close(&chat["queue_time"], 0.012, "queue_time");
    // First completion chunk 250 ms after the start; 80 tokens in the remaining 750 ms.
    assert_close(&chat["gen_ai_response_time_to_first_chunk"], 0.25, "ttft");
    assert_close(&chat["time_per_output_token"], 0.75 / 80.0, "tpot");
    // gpt-4o-mini: 1000 input at $0.15/M, 200 cached at $0.075/M, 81 output at $0.60/M.
    assert_close(
        &chat["cost_usd"],
        (1000.0 * 0.15 + 200.0 * 0.075 + 81.0 * 0.60) / 1e6,
        "cost",
    );

    // Deprecated spellings fill the same columns.
    let legacy = rows.row(2);
    let expect = json!({
        "route": format!("py-chat/legacy completion {run}"),
        "status_code": "ERROR",
        "status_message": "rate limited",
        "gen_ai_provider_name": "anthropic",
        "gen_ai_request_model": "claude-3-5-haiku",
        "gen_ai_usage_input_tokens": 50,
        "gen_ai_usage_output_tokens": 20,
        "gen_ai_usage_cache_creation_input_tokens": 7,
        "input_text": "Hi",
        "output_text": "Hello!",
        "error_type": "RateLimitError",
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&legacy[k], v, "legacy span column {k}: {legacy:?}");
    }
    assert_close(
        &legacy["gen_ai_response_time_to_first_chunk"],
        0.05,
        "OpenLIT ttft",
    );
    assert_close(
        &legacy["cost_usd"],
        (50.0 * 0.80 + 20.0 * 4.00) / 1e6,
        "legacy cost",
    );
}

#[test]
fn python_grpc_exporter_fills_genai_columns() {
    let dir = temp_dir();
    let plumb = Plumb::start(&dir.path().join("data"), &[]);
    let summary = python_exporter("grpc", &plumb.grpc, "pygrpc", "genai");
    check_genai_rows(&spans_of_run(&plumb, "pygrpc"), &summary, "pygrpc");

    // The trace API returns the whole trace as a tree.
    let trace_id = summary["spans"][0]["trace_id"].as_str().unwrap();
    let tree: Value = reqwest::blocking::get(format!("{}/api/v1/traces/{trace_id}", plumb.http))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tree["span_count"], 3, "{tree}");
    let roots = tree["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0]["children"].as_array().unwrap().len(), 2, "{tree}");
}

#[test]
fn python_http_json_exporter_fills_genai_columns() {
    let dir = temp_dir();
    let plumb = Plumb::start(&dir.path().join("data"), &[]);
    let summary = python_exporter("http-json", &plumb.otlp_http, "pyjson", "genai");
    check_genai_rows(&spans_of_run(&plumb, "pyjson"), &summary, "pyjson");
}

#[test]
fn python_http_protobuf_exporter_fills_openinference_columns() {
    let dir = temp_dir();
    let plumb = Plumb::start(&dir.path().join("data"), &[]);
    let summary = python_exporter("http-proto", &plumb.otlp_http, "pyoi", "openinference");
    // Also proves the protobuf path carries the same GenAI spans.
    let genai = python_exporter("http-proto", &plumb.otlp_http, "pyproto", "genai");
    check_genai_rows(&spans_of_run(&plumb, "pyproto"), &genai, "pyproto");

    let rows = spans_of_run(&plumb, "pyoi");
    assert_eq!(rows.rows.len(), 3);
    let root = rows.row(0);
    assert_eq!(root["gen_ai_operation_name"], "chain");
    assert_eq!(root["gen_ai_conversation_id"], "sess-pyoi");

    let retriever = rows.row(1);
    assert_eq!(retriever["gen_ai_operation_name"], "retrieval");
    assert_eq!(retriever["input_text"], "What is the capital of France?");
    assert_eq!(
        retriever["retrieval_documents"],
        json!([
            {"id": "doc-1", "score": 0.92, "content": "Paris is the capital of France."},
            {"id": "doc-2", "score": 0.31, "content": "Berlin is the capital of Germany."}
        ])
    );

    let llm = rows.row(2);
    let expect = json!({
        "parent_span_id": span_id_of(&summary, "rag"),
        "route": "py-chat/chat",
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-4o",
        "gen_ai_response_model": "gpt-4o",
        "gen_ai_usage_input_tokens": 300,
        "gen_ai_usage_output_tokens": 11,
        "input_text": "system: Answer from the context.\nuser: What is the capital of France?",
        "output_text": "Paris.",
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&llm[k], v, "OpenInference LLM span column {k}: {llm:?}");
    }
    // "First Token Stream Event" 100 ms after the start.
    assert_close(&llm["gen_ai_response_time_to_first_chunk"], 0.1, "ttft");
    assert_close(&llm["cost_usd"], (300.0 * 2.50 + 11.0 * 10.0) / 1e6, "cost");

    // Documents are queryable in SQL without reading the text of every span.
    let top = plumb.sql(
        "SELECT retrieval_documents[1]['id'] AS top_doc FROM spans WHERE gen_ai_operation_name = 'retrieval'",
    );
    assert_eq!(top.scalar(), "doc-1");
}

#[test]
fn js_exporters_over_http_json_http_protobuf_and_grpc() {
    let dir = temp_dir();
    let plumb = Plumb::start(&dir.path().join("data"), &[]);
    for (protocol, endpoint) in [
        ("http-json", plumb.otlp_http.as_str()),
        ("http-proto", plumb.otlp_http.as_str()),
        ("grpc", plumb.grpc.as_str()),
    ] {
        let run = format!("js-{protocol}");
        let summary = node_exporter(protocol, endpoint, &run);
        let rows = spans_of_run(&plumb, &run);
        assert_eq!(rows.rows.len(), 3, "{protocol}: {:?}", rows.rows);
        let agent = rows.row(0);
        assert_eq!(agent["gen_ai_operation_name"], "invoke_agent", "{protocol}");
        assert_eq!(agent["gen_ai_agent_name"], "planner", "{protocol}");
        assert_eq!(agent["service_name"], "js-agent", "{protocol}");
        let llm = rows.row(1);
        assert_eq!(
            llm["parent_span_id"],
            json!(span_id_of(&summary, "invoke_agent")),
            "{protocol}"
        );
        assert_eq!(llm["route"], "agent-planner", "{protocol}");
        assert_eq!(llm["gen_ai_provider_name"], "anthropic", "{protocol}");
        assert_eq!(llm["gen_ai_request_model"], "claude-sonnet-4", "{protocol}");
        assert_eq!(
            llm["gen_ai_response_finish_reasons"],
            json!(["length"]),
            "{protocol}"
        );
        assert_close(&llm["gen_ai_response_time_to_first_chunk"], 0.4, "ttft");
        assert_close(&llm["time_per_output_token"], 0.6 / 20.0, "tpot");
        assert_close(&llm["cost_usd"], (900.0 * 3.0 + 21.0 * 15.0) / 1e6, "cost");
        let tool = rows.row(2);
        assert_eq!(tool["gen_ai_tool_name"], "search", "{protocol}");
        assert_eq!(tool["status_code"], "ERROR", "{protocol}");
        assert_eq!(tool["status_message"], "timeout", "{protocol}");
    }
    let by_service = plumb.sql("SELECT count(*) FROM spans WHERE service_name = 'js-agent'");
    assert_eq!(by_service.scalar(), 9);
}

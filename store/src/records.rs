//! Owned rows of each table and their conversion to Arrow record batches.
//!
//! The collector normalizes OTLP into these rows; the store never sees protobuf. Keeping the
//! row types here (the data model crate) lets every other crate produce or read rows without
//! depending on the collector.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, MapBuilder, MapFieldNames, StringBuilder, StructBuilder,
    TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Fields};
pub use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::schema::{self, Table};

/// Attribute key/value pairs; values are rendered as text (numbers in decimal, arrays and
/// maps as JSON) so one map type holds every attribute.
pub type Attributes = Vec<(String, String)>;

/// A resource's attributes, shared by every row of that resource: a request's spans usually
/// come from one resource, and copying its attributes into each row cost ~9 allocations a span.
pub type ResourceAttributes = Arc<Attributes>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanEvent {
    pub time_unix_nano: i64,
    pub name: String,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanLink {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetrievalDocument {
    pub id: Option<String>,
    pub score: Option<f64>,
    pub content: Option<String>,
}

/// One row of `spans`. Field names are the column names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanRecord {
    /// Shared by every row of a request.
    pub project: Arc<str>,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// Shared by every row of one resource.
    pub service_name: Arc<str>,
    pub span_name: String,
    /// One of OTLP's span kinds, by name: a fixed set, so no allocation per span.
    pub span_kind: &'static str,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: &'static str,
    pub status_message: Option<String>,
    /// Shared by the rows of one instrumentation scope.
    pub scope_name: Option<Arc<str>>,
    pub scope_version: Option<Arc<str>>,
    pub resource_attributes: ResourceAttributes,
    pub span_attributes: Attributes,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
    pub gen_ai: GenAiFields,
}

/// The promoted GenAI and serving columns of a span (all optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenAiFields {
    pub operation_name: Option<String>,
    pub provider_name: Option<String>,
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    pub usage_input_tokens: Option<i64>,
    pub usage_output_tokens: Option<i64>,
    pub usage_cache_read_input_tokens: Option<i64>,
    pub usage_cache_creation_input_tokens: Option<i64>,
    pub usage_reasoning_output_tokens: Option<i64>,
    pub response_time_to_first_chunk: Option<f64>,
    pub response_finish_reasons: Option<Vec<String>>,
    pub output_type: Option<String>,
    pub conversation_id: Option<String>,
    pub agent_name: Option<String>,
    pub tool_name: Option<String>,
    /// Always set by normalization (falls back to `<service>/<operation>`).
    pub route: String,
    pub cost_usd: Option<f64>,
    pub time_per_output_token: Option<f64>,
    pub queue_time: Option<f64>,
    pub engine: Option<String>,
    pub gpu_pool: Option<String>,
    pub cache_hit: Option<bool>,
    pub retry_count: Option<i64>,
    pub fallback: Option<bool>,
    pub error_type: Option<String>,
    pub input_text: Option<String>,
    pub output_text: Option<String>,
    pub retrieval_documents: Option<Vec<RetrievalDocument>>,
}

/// One row of `logs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogRecord {
    pub project: String,
    pub time_unix_nano: i64,
    pub observed_time_unix_nano: Option<i64>,
    pub severity_number: Option<i32>,
    pub severity_text: Option<String>,
    pub body: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub service_name: String,
    pub event_name: Option<String>,
    pub scope_name: Option<String>,
    pub resource_attributes: ResourceAttributes,
    pub log_attributes: Attributes,
}

/// One data point of `metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricPoint {
    pub project: String,
    pub metric_name: String,
    pub metric_type: String,
    pub unit: Option<String>,
    pub description: Option<String>,
    pub service_name: String,
    pub time_unix_nano: i64,
    pub start_time_unix_nano: Option<i64>,
    pub value: Option<f64>,
    pub is_monotonic: Option<bool>,
    pub aggregation_temporality: Option<String>,
    pub histogram_count: Option<i64>,
    pub histogram_sum: Option<f64>,
    pub histogram_min: Option<f64>,
    pub histogram_max: Option<f64>,
    pub histogram_bucket_counts: Option<Vec<i64>>,
    pub histogram_explicit_bounds: Option<Vec<f64>>,
    pub scope_name: Option<String>,
    pub resource_attributes: ResourceAttributes,
    pub attributes: Attributes,
}

fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    map_builder_for(std::iter::empty())
}

/// A map builder sized for exactly these rows' attributes: no regrowth while appending, and no
/// copy when [`finish`] gives back the slack.
fn map_builder_for<'a>(
    rows: impl Iterator<Item = &'a Attributes>,
) -> MapBuilder<StringBuilder, StringBuilder> {
    let (mut maps, mut entries, mut key_bytes, mut value_bytes) = (0, 0, 0, 0);
    for attrs in rows {
        maps += 1;
        entries += attrs.len();
        for (k, v) in attrs {
            key_bytes += k.len();
            value_bytes += v.len();
        }
    }
    MapBuilder::with_capacity(
        Some(MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        }),
        StringBuilder::with_capacity(entries, key_bytes),
        StringBuilder::with_capacity(entries, value_bytes),
        maps,
    )
    .with_values_field(Arc::new(arrow::datatypes::Field::new(
        "values",
        DataType::Utf8,
        true,
    )))
}

fn append_map(b: &mut MapBuilder<StringBuilder, StringBuilder>, attrs: &Attributes) {
    for (k, v) in attrs {
        b.keys().append_value(k);
        b.values().append_value(v);
    }
    b.append(true)
        .expect("map builder keys and values stay aligned");
}

/// A list-of-struct builder with concrete child builders, so that `field_builder` can
/// downcast them (`StructBuilder::from_fields` would box map builders behind `dyn`).
fn struct_list(fields: Fields) -> ListBuilder<StructBuilder> {
    let children: Vec<Box<dyn ArrayBuilder>> = fields
        .iter()
        .map(|f| -> Box<dyn ArrayBuilder> {
            match f.data_type() {
                DataType::Utf8 => Box::new(StringBuilder::new()),
                DataType::Float64 => Box::new(Float64Builder::new()),
                DataType::Timestamp(_, _) => {
                    Box::new(TimestampNanosecondBuilder::new().with_timezone("UTC"))
                }
                DataType::Map(_, _) => Box::new(map_builder()),
                other => unreachable!("no nested field of type {other} in the schema"),
            }
        })
        .collect();
    ListBuilder::new(StructBuilder::new(fields, children))
}

fn map_in_struct(
    s: &mut StructBuilder,
    idx: usize,
) -> &mut MapBuilder<StringBuilder, StringBuilder> {
    s.field_builder::<MapBuilder<StringBuilder, StringBuilder>>(idx)
        .expect("attributes field is a map")
}

fn str_in_struct(s: &mut StructBuilder, idx: usize) -> &mut StringBuilder {
    s.field_builder::<StringBuilder>(idx).expect("utf8 field")
}

fn finish(table: Table, columns: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    // Builders grow by doubling: give the slack back, since these batches stay in memory
    // until they are flushed (measured: 4.9 KB of capacity per 2.9 KB span without this).
    let columns = columns
        .into_iter()
        .map(|mut c| {
            if let Some(array) = Arc::get_mut(&mut c) {
                array.shrink_to_fit();
            }
            c
        })
        .collect();
    RecordBatch::try_new(table.schema(), columns)
}

/// A string builder sized for exactly these values (see [`map_builder_for`]).
fn text_builder<'a>(values: impl Iterator<Item = Option<&'a str>>) -> StringBuilder {
    let (mut n, mut bytes) = (0, 0);
    for v in values {
        n += 1;
        bytes += v.map_or(0, str::len);
    }
    StringBuilder::with_capacity(n, bytes)
}

/// Builds a `spans` batch.
pub fn spans_batch(rows: &[SpanRecord]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut project = StringBuilder::new();
    let mut trace_id = text_builder(rows.iter().map(|r| Some(r.trace_id.as_str())));
    let mut span_id = text_builder(rows.iter().map(|r| Some(r.span_id.as_str())));
    let mut parent = text_builder(rows.iter().map(|r| r.parent_span_id.as_deref()));
    let mut service = StringBuilder::new();
    let mut name = text_builder(rows.iter().map(|r| Some(r.span_name.as_str())));
    let mut kind = StringBuilder::new();
    let mut start = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut end = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut duration = Float64Builder::with_capacity(n);
    let mut status = StringBuilder::new();
    let mut status_msg = StringBuilder::new();
    let mut scope_name = StringBuilder::new();
    let mut scope_version = StringBuilder::new();
    let mut res_attrs = map_builder_for(rows.iter().map(|r| r.resource_attributes.as_ref()));
    let mut span_attrs = map_builder_for(rows.iter().map(|r| &r.span_attributes));
    let mut events = struct_list(schema::event_fields());
    let mut links = struct_list(schema::link_fields());
    let mut op = StringBuilder::new();
    let mut provider = StringBuilder::new();
    let mut req_model = StringBuilder::new();
    let mut resp_model = StringBuilder::new();
    let mut in_tok = Int64Builder::with_capacity(n);
    let mut out_tok = Int64Builder::with_capacity(n);
    let mut cache_read = Int64Builder::with_capacity(n);
    let mut cache_write = Int64Builder::with_capacity(n);
    let mut reasoning = Int64Builder::with_capacity(n);
    let mut ttft = Float64Builder::with_capacity(n);
    let mut finish_reasons = ListBuilder::new(StringBuilder::new());
    let mut output_type = StringBuilder::new();
    let mut conversation = StringBuilder::new();
    let mut agent = StringBuilder::new();
    let mut tool = StringBuilder::new();
    let mut route = text_builder(rows.iter().map(|r| Some(r.gen_ai.route.as_str())));
    let mut cost = Float64Builder::with_capacity(n);
    let mut tpot = Float64Builder::with_capacity(n);
    let mut queue = Float64Builder::with_capacity(n);
    let mut engine = StringBuilder::new();
    let mut pool = StringBuilder::new();
    let mut cache_hit = BooleanBuilder::with_capacity(n);
    let mut retry = Int64Builder::with_capacity(n);
    let mut fallback = BooleanBuilder::with_capacity(n);
    let mut error_type = StringBuilder::new();
    let mut input_text = text_builder(rows.iter().map(|r| r.gen_ai.input_text.as_deref()));
    let mut output_text = text_builder(rows.iter().map(|r| r.gen_ai.output_text.as_deref()));
    let mut docs = struct_list(schema::document_fields());

    for r in rows {
        let g = &r.gen_ai;
        project.append_value(&r.project);
        trace_id.append_value(&r.trace_id);
        span_id.append_value(&r.span_id);
        parent.append_option(r.parent_span_id.as_deref());
        service.append_value(&r.service_name);
        name.append_value(&r.span_name);
        kind.append_value(r.span_kind);
        start.append_value(r.start_time_unix_nano);
        end.append_value(r.end_time_unix_nano);
        duration.append_value((r.end_time_unix_nano - r.start_time_unix_nano) as f64 / 1e6);
        status.append_value(r.status_code);
        status_msg.append_option(r.status_message.as_deref());
        scope_name.append_option(r.scope_name.as_deref());
        scope_version.append_option(r.scope_version.as_deref());
        append_map(&mut res_attrs, &r.resource_attributes);
        append_map(&mut span_attrs, &r.span_attributes);
        for e in &r.events {
            let s = events.values();
            s.field_builder::<TimestampNanosecondBuilder>(0)
                .expect("time")
                .append_value(e.time_unix_nano);
            str_in_struct(s, 1).append_value(&e.name);
            append_map(map_in_struct(s, 2), &e.attributes);
            s.append(true);
        }
        events.append(true);
        for l in &r.links {
            let s = links.values();
            str_in_struct(s, 0).append_value(&l.trace_id);
            str_in_struct(s, 1).append_value(&l.span_id);
            append_map(map_in_struct(s, 2), &l.attributes);
            s.append(true);
        }
        links.append(true);
        op.append_option(g.operation_name.as_deref());
        provider.append_option(g.provider_name.as_deref());
        req_model.append_option(g.request_model.as_deref());
        resp_model.append_option(g.response_model.as_deref());
        in_tok.append_option(g.usage_input_tokens);
        out_tok.append_option(g.usage_output_tokens);
        cache_read.append_option(g.usage_cache_read_input_tokens);
        cache_write.append_option(g.usage_cache_creation_input_tokens);
        reasoning.append_option(g.usage_reasoning_output_tokens);
        ttft.append_option(g.response_time_to_first_chunk);
        match &g.response_finish_reasons {
            Some(v) => {
                for x in v {
                    finish_reasons.values().append_value(x);
                }
                finish_reasons.append(true);
            }
            None => finish_reasons.append(false),
        }
        output_type.append_option(g.output_type.as_deref());
        conversation.append_option(g.conversation_id.as_deref());
        agent.append_option(g.agent_name.as_deref());
        tool.append_option(g.tool_name.as_deref());
        route.append_value(&g.route);
        cost.append_option(g.cost_usd);
        tpot.append_option(g.time_per_output_token);
        queue.append_option(g.queue_time);
        engine.append_option(g.engine.as_deref());
        pool.append_option(g.gpu_pool.as_deref());
        cache_hit.append_option(g.cache_hit);
        retry.append_option(g.retry_count);
        fallback.append_option(g.fallback);
        error_type.append_option(g.error_type.as_deref());
        input_text.append_option(g.input_text.as_deref());
        output_text.append_option(g.output_text.as_deref());
        match &g.retrieval_documents {
            Some(list) => {
                for d in list {
                    let s = docs.values();
                    str_in_struct(s, 0).append_option(d.id.as_deref());
                    s.field_builder::<Float64Builder>(1)
                        .expect("score")
                        .append_option(d.score);
                    str_in_struct(s, 2).append_option(d.content.as_deref());
                    s.append(true);
                }
                docs.append(true);
            }
            None => docs.append(false),
        }
    }

    finish(
        Table::Spans,
        vec![
            Arc::new(project.finish()),
            Arc::new(trace_id.finish()),
            Arc::new(span_id.finish()),
            Arc::new(parent.finish()),
            Arc::new(service.finish()),
            Arc::new(name.finish()),
            Arc::new(kind.finish()),
            Arc::new(start.finish()),
            Arc::new(end.finish()),
            Arc::new(duration.finish()),
            // Stamped by the store when it accepts the rows.
            arrow::array::new_null_array(&schema::timestamp_type(), n),
            Arc::new(status.finish()),
            Arc::new(status_msg.finish()),
            Arc::new(scope_name.finish()),
            Arc::new(scope_version.finish()),
            Arc::new(res_attrs.finish()),
            Arc::new(span_attrs.finish()),
            Arc::new(events.finish()),
            Arc::new(links.finish()),
            Arc::new(op.finish()),
            Arc::new(provider.finish()),
            Arc::new(req_model.finish()),
            Arc::new(resp_model.finish()),
            Arc::new(in_tok.finish()),
            Arc::new(out_tok.finish()),
            Arc::new(cache_read.finish()),
            Arc::new(cache_write.finish()),
            Arc::new(reasoning.finish()),
            Arc::new(ttft.finish()),
            Arc::new(finish_reasons.finish()),
            Arc::new(output_type.finish()),
            Arc::new(conversation.finish()),
            Arc::new(agent.finish()),
            Arc::new(tool.finish()),
            Arc::new(route.finish()),
            Arc::new(cost.finish()),
            Arc::new(tpot.finish()),
            Arc::new(queue.finish()),
            Arc::new(engine.finish()),
            Arc::new(pool.finish()),
            Arc::new(cache_hit.finish()),
            Arc::new(retry.finish()),
            Arc::new(fallback.finish()),
            Arc::new(error_type.finish()),
            Arc::new(input_text.finish()),
            Arc::new(output_text.finish()),
            Arc::new(docs.finish()),
        ],
    )
}

/// Builds a `logs` batch.
pub fn logs_batch(rows: &[LogRecord]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut project = StringBuilder::new();
    let mut time = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut observed = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut sev_num = Int32Builder::with_capacity(n);
    let mut sev_text = StringBuilder::new();
    let mut body = StringBuilder::new();
    let mut trace_id = StringBuilder::new();
    let mut span_id = StringBuilder::new();
    let mut service = StringBuilder::new();
    let mut event_name = StringBuilder::new();
    let mut scope_name = StringBuilder::new();
    let mut res_attrs = map_builder();
    let mut log_attrs = map_builder();
    for r in rows {
        project.append_value(&r.project);
        time.append_value(r.time_unix_nano);
        observed.append_option(r.observed_time_unix_nano);
        sev_num.append_option(r.severity_number);
        sev_text.append_option(r.severity_text.as_deref());
        body.append_option(r.body.as_deref());
        trace_id.append_option(r.trace_id.as_deref());
        span_id.append_option(r.span_id.as_deref());
        service.append_value(&r.service_name);
        event_name.append_option(r.event_name.as_deref());
        scope_name.append_option(r.scope_name.as_deref());
        append_map(&mut res_attrs, &r.resource_attributes);
        append_map(&mut log_attrs, &r.log_attributes);
    }
    finish(
        Table::Logs,
        vec![
            Arc::new(project.finish()),
            Arc::new(time.finish()),
            Arc::new(observed.finish()),
            Arc::new(sev_num.finish()),
            Arc::new(sev_text.finish()),
            Arc::new(body.finish()),
            Arc::new(trace_id.finish()),
            Arc::new(span_id.finish()),
            Arc::new(service.finish()),
            Arc::new(event_name.finish()),
            Arc::new(scope_name.finish()),
            Arc::new(res_attrs.finish()),
            Arc::new(log_attrs.finish()),
        ],
    )
}

/// Builds a `metrics` batch.
pub fn metrics_batch(rows: &[MetricPoint]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut project = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut mtype = StringBuilder::new();
    let mut unit = StringBuilder::new();
    let mut desc = StringBuilder::new();
    let mut service = StringBuilder::new();
    let mut time = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut start = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut value = Float64Builder::with_capacity(n);
    let mut monotonic = BooleanBuilder::with_capacity(n);
    let mut temporality = StringBuilder::new();
    let mut h_count = Int64Builder::with_capacity(n);
    let mut h_sum = Float64Builder::with_capacity(n);
    let mut h_min = Float64Builder::with_capacity(n);
    let mut h_max = Float64Builder::with_capacity(n);
    let mut h_buckets = ListBuilder::new(Int64Builder::new());
    let mut h_bounds = ListBuilder::new(Float64Builder::new());
    let mut scope_name = StringBuilder::new();
    let mut res_attrs = map_builder();
    let mut attrs = map_builder();
    for r in rows {
        project.append_value(&r.project);
        name.append_value(&r.metric_name);
        mtype.append_value(&r.metric_type);
        unit.append_option(r.unit.as_deref());
        desc.append_option(r.description.as_deref());
        service.append_value(&r.service_name);
        time.append_value(r.time_unix_nano);
        start.append_option(r.start_time_unix_nano);
        value.append_option(r.value);
        monotonic.append_option(r.is_monotonic);
        temporality.append_option(r.aggregation_temporality.as_deref());
        h_count.append_option(r.histogram_count);
        h_sum.append_option(r.histogram_sum);
        h_min.append_option(r.histogram_min);
        h_max.append_option(r.histogram_max);
        match &r.histogram_bucket_counts {
            Some(v) => {
                h_buckets.values().append_slice(v);
                h_buckets.append(true);
            }
            None => h_buckets.append(false),
        }
        match &r.histogram_explicit_bounds {
            Some(v) => {
                h_bounds.values().append_slice(v);
                h_bounds.append(true);
            }
            None => h_bounds.append(false),
        }
        scope_name.append_option(r.scope_name.as_deref());
        append_map(&mut res_attrs, &r.resource_attributes);
        append_map(&mut attrs, &r.attributes);
    }
    finish(
        Table::Metrics,
        vec![
            Arc::new(project.finish()),
            Arc::new(name.finish()),
            Arc::new(mtype.finish()),
            Arc::new(unit.finish()),
            Arc::new(desc.finish()),
            Arc::new(service.finish()),
            Arc::new(time.finish()),
            Arc::new(start.finish()),
            Arc::new(value.finish()),
            Arc::new(monotonic.finish()),
            Arc::new(temporality.finish()),
            Arc::new(h_count.finish()),
            Arc::new(h_sum.finish()),
            Arc::new(h_min.finish()),
            Arc::new(h_max.finish()),
            Arc::new(h_buckets.finish()),
            Arc::new(h_bounds.finish()),
            Arc::new(scope_name.finish()),
            Arc::new(res_attrs.finish()),
            Arc::new(attrs.finish()),
        ],
    )
}

/// One row of `evals`: one evaluator's verdict on one span (or, with no `span_id`, one trace).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalRecord {
    pub project: String,
    pub trace_id: String,
    pub span_id: Option<String>,
    pub evaluator: String,
    pub evaluator_version: i64,
    pub score: Option<f64>,
    pub label: Option<String>,
    pub passed: Option<bool>,
    pub explanation: Option<String>,
    pub judge_model: Option<String>,
    pub latency_ms: Option<f64>,
    /// `online`, `offline` (a `plumb eval run`) or `client` (sent by the application).
    pub source: String,
    pub evaluated_at_unix_nano: i64,
    pub span_start_time_unix_nano: i64,
    pub route: String,
    pub gen_ai_request_model: Option<String>,
}

/// Builds an `evals` batch.
pub fn evals_batch(rows: &[EvalRecord]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let ts = || TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut project, mut trace_id, mut span_id, mut evaluator) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut version = Int64Builder::with_capacity(n);
    let mut score = Float64Builder::with_capacity(n);
    let mut label = StringBuilder::new();
    let mut passed = BooleanBuilder::with_capacity(n);
    let mut explanation = StringBuilder::new();
    let mut judge_model = StringBuilder::new();
    let mut latency = Float64Builder::with_capacity(n);
    let mut source = StringBuilder::new();
    let (mut evaluated_at, mut span_start) = (ts(), ts());
    let mut route = StringBuilder::new();
    let mut model = StringBuilder::new();
    for r in rows {
        project.append_value(&r.project);
        trace_id.append_value(&r.trace_id);
        span_id.append_option(r.span_id.as_deref());
        evaluator.append_value(&r.evaluator);
        version.append_value(r.evaluator_version);
        score.append_option(r.score);
        label.append_option(r.label.as_deref());
        passed.append_option(r.passed);
        explanation.append_option(r.explanation.as_deref());
        judge_model.append_option(r.judge_model.as_deref());
        latency.append_option(r.latency_ms);
        source.append_value(&r.source);
        evaluated_at.append_value(r.evaluated_at_unix_nano);
        span_start.append_value(r.span_start_time_unix_nano);
        route.append_value(&r.route);
        model.append_option(r.gen_ai_request_model.as_deref());
    }
    finish(
        Table::Evals,
        vec![
            Arc::new(project.finish()),
            Arc::new(trace_id.finish()),
            Arc::new(span_id.finish()),
            Arc::new(evaluator.finish()),
            Arc::new(version.finish()),
            Arc::new(score.finish()),
            Arc::new(label.finish()),
            Arc::new(passed.finish()),
            Arc::new(explanation.finish()),
            Arc::new(judge_model.finish()),
            Arc::new(latency.finish()),
            Arc::new(source.finish()),
            Arc::new(evaluated_at.finish()),
            Arc::new(span_start.finish()),
            Arc::new(route.finish()),
            Arc::new(model.finish()),
        ],
    )
}

/// One row of `alert_events`: a rule changing state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertEventRecord {
    pub project: String,
    pub rule_name: String,
    pub rule_kind: String,
    /// `pending`, `firing`, `resolved` or `ok` (a pending alert that cleared before firing).
    pub state: String,
    pub time_unix_nano: i64,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub fired_at_unix_nano: Option<i64>,
    pub resolved_at_unix_nano: Option<i64>,
    /// JSON: the window, the group, the baseline and the test behind the decision.
    pub details: Option<String>,
}

/// Builds an `alert_events` batch.
pub fn alert_events_batch(rows: &[AlertEventRecord]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let ts = || TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut project, mut rule, mut kind, mut state) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut time, mut fired, mut resolved) = (ts(), ts(), ts());
    let mut value = Float64Builder::with_capacity(n);
    let mut threshold = Float64Builder::with_capacity(n);
    let mut details = StringBuilder::new();
    for r in rows {
        project.append_value(&r.project);
        rule.append_value(&r.rule_name);
        kind.append_value(&r.rule_kind);
        state.append_value(&r.state);
        time.append_value(r.time_unix_nano);
        value.append_option(r.value);
        threshold.append_option(r.threshold);
        fired.append_option(r.fired_at_unix_nano);
        resolved.append_option(r.resolved_at_unix_nano);
        details.append_option(r.details.as_deref());
    }
    finish(
        Table::AlertEvents,
        vec![
            Arc::new(project.finish()),
            Arc::new(rule.finish()),
            Arc::new(kind.finish()),
            Arc::new(state.finish()),
            Arc::new(time.finish()),
            Arc::new(value.finish()),
            Arc::new(threshold.finish()),
            Arc::new(fired.finish()),
            Arc::new(resolved.finish()),
            Arc::new(details.finish()),
        ],
    )
}

/// A CLIENT span "chat" of service "svc" in project `project`, for tests.
#[cfg(test)]
pub(crate) fn test_span(
    project: &str,
    trace: usize,
    span: usize,
    start: i64,
    end: i64,
) -> SpanRecord {
    SpanRecord {
        project: project.into(),
        trace_id: format!("{trace:032x}"),
        span_id: format!("{span:016x}"),
        service_name: "svc".into(),
        span_name: "chat".into(),
        span_kind: "CLIENT",
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status_code: "UNSET",
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_batch_matches_schema() {
        let row = SpanRecord {
            project: "default".into(),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            service_name: "svc".into(),
            span_name: "chat".into(),
            span_kind: "CLIENT",
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_250_000_000,
            status_code: "OK",
            span_attributes: vec![("a".into(), "1".into())],
            events: vec![SpanEvent {
                time_unix_nano: 1_100_000_000,
                name: "e".into(),
                attributes: vec![("k".into(), "v".into())],
            }],
            gen_ai: GenAiFields {
                route: "svc/chat".into(),
                response_finish_reasons: Some(vec!["stop".into()]),
                retrieval_documents: Some(vec![RetrievalDocument {
                    id: Some("d1".into()),
                    score: Some(0.5),
                    content: Some("text".into()),
                }]),
                ..Default::default()
            },
            ..Default::default()
        };
        let batch = spans_batch(&[row.clone(), row]).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let d = batch
            .column_by_name("duration_ms")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(d.value(0), 250.0);
    }

    #[test]
    fn log_and_metric_batches_match_schema() {
        let log = LogRecord {
            project: "p".into(),
            service_name: "s".into(),
            ..Default::default()
        };
        assert_eq!(logs_batch(&[log]).unwrap().num_rows(), 1);
        let point = MetricPoint {
            project: "p".into(),
            metric_name: "m".into(),
            metric_type: "histogram".into(),
            service_name: "s".into(),
            histogram_bucket_counts: Some(vec![1, 2]),
            histogram_explicit_bounds: Some(vec![0.5]),
            ..Default::default()
        };
        assert_eq!(metrics_batch(&[point]).unwrap().num_rows(), 1);
        let eval = EvalRecord {
            project: "p".into(),
            trace_id: "t".into(),
            evaluator: "json_parse".into(),
            source: "online".into(),
            route: "r".into(),
            ..Default::default()
        };
        assert_eq!(evals_batch(&[eval]).unwrap().num_rows(), 1);
        let event = AlertEventRecord {
            project: "p".into(),
            rule_name: "r".into(),
            rule_kind: "threshold".into(),
            state: "firing".into(),
            ..Default::default()
        };
        assert_eq!(alert_events_batch(&[event]).unwrap().num_rows(), 1);
    }
}

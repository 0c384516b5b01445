//! Arrow schemas of the tables users query: `spans`, `logs`, `metrics`, and the results Plumb
//! derives from them, `evals` and `alert_events`.
//!
//! These schemas are the contract of DESIGN.md ("SQL tables and their main columns") and the
//! on-disk Parquet layout at once, so a column is added here, in `records`, and in
//! docs/schema.md together. Attribute maps are `Map<Utf8, Utf8>` rather than one column per key:
//! wide exploded schemas are what made peers slow, and `span_attributes['key']` still works in SQL.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

/// The column that joins spans and logs into traces.
pub const TRACE_ID: &str = "trace_id";

/// String columns that hold a few hundred distinct values at most (names of services, models,
/// routes, states): the store writes them with dictionaries, and SQL groups them by dense ids
/// (`query::group_keys`). Ids, free text and attribute values are not among them.
pub const CATEGORICAL_COLUMNS: &[&str] = &[
    "project",
    "service_name",
    "span_name",
    "span_kind",
    "status_code",
    "scope_name",
    "scope_version",
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "gen_ai_output_type",
    "gen_ai_agent_name",
    "gen_ai_tool_name",
    "route",
    "engine",
    "gpu_pool",
    "error_type",
    "severity_text",
    "event_name",
    "metric_name",
    "metric_type",
    "unit",
    "aggregation_temporality",
    "evaluator",
    "label",
    "judge_model",
    "source",
    "rule_name",
    "rule_kind",
    "state",
];

/// How categorical columns are typed in files and in SQL. `Int32` keys: a column chunk whose
/// values outgrow Parquet's dictionary page falls back to plain pages, and the reader then builds
/// a dictionary of up to a batch of distinct values.
pub fn categorical_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// `batch` with its columns cast to `schema`'s types (same columns, same order): stored strings
/// to views or dictionaries. A column that already has its type is shared, not copied.
pub fn cast_batch(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| match c.data_type() == f.data_type() {
            true => Ok(c.clone()),
            false => arrow::compute::cast(c, f.data_type()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A query that reads no column (`count(*)`) still needs the row count.
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
}

/// One of the tables Plumb stores. The name is the SQL table name and the object-store prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Spans,
    Logs,
    Metrics,
    Evals,
    AlertEvents,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Spans,
        Table::Logs,
        Table::Metrics,
        Table::Evals,
        Table::AlertEvents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Spans => "spans",
            Table::Logs => "logs",
            Table::Metrics => "metrics",
            Table::Evals => "evals",
            Table::AlertEvents => "alert_events",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Stable one-byte tag used in the write-ahead log.
    pub fn tag(self) -> u8 {
        match self {
            Table::Spans => 1,
            Table::Logs => 2,
            Table::Metrics => 3,
            Table::Evals => 4,
            Table::AlertEvents => 5,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.tag() == tag)
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Spans => spans_schema(),
            Table::Logs => logs_schema(),
            Table::Metrics => metrics_schema(),
            Table::Evals => evals_schema(),
            Table::AlertEvents => alert_events_schema(),
        }
    }

    /// The schema SQL sees: the stored one with top-level strings as `Utf8View`. Grouping and
    /// comparing views skips most of the string copying and hashing that plain `Utf8` costs
    /// (the Parquet reader builds views straight from the pages), which is what full-table
    /// aggregations over model, route and service spend their time on.
    ///
    /// Categorical columns are the exception: they stay dictionaries, as Parquet files store
    /// them ([`Table::file_schema`]), so a scan decodes only their small integer keys, a
    /// comparison such as `status_code = 'ERROR'` looks at each distinct value once per batch,
    /// and grouping by them works on dense ids (`query::group_keys`).
    pub fn query_schema(self) -> SchemaRef {
        static CACHE: OnceLock<[SchemaRef; Table::ALL.len()]> = OnceLock::new();
        self.retyped(&CACHE, Table::file_schema, |f| match f.data_type() {
            DataType::Utf8 => Some(DataType::Utf8View),
            _ => None,
        })
    }

    /// The schema of the Parquet files Plumb writes: the stored one with categorical columns as
    /// dictionaries. Parquet dictionary-encodes them either way; declaring it in the file's Arrow
    /// schema is what lets the reader hand out the keys instead of materializing every string.
    pub fn file_schema(self) -> SchemaRef {
        static CACHE: OnceLock<[SchemaRef; Table::ALL.len()]> = OnceLock::new();
        self.retyped(&CACHE, Table::schema, |f| {
            let categorical = CATEGORICAL_COLUMNS.contains(&f.name().as_str());
            (categorical && f.data_type() == &DataType::Utf8).then(categorical_type)
        })
    }

    /// `base` of every table with some fields retyped, built once per process.
    fn retyped(
        self,
        cache: &'static OnceLock<[SchemaRef; Table::ALL.len()]>,
        base: fn(Table) -> SchemaRef,
        new_type: fn(&Field) -> Option<DataType>,
    ) -> SchemaRef {
        let all = cache.get_or_init(|| {
            Table::ALL.map(|t| {
                let fields: Vec<Field> = base(t)
                    .fields()
                    .iter()
                    .map(|f| match new_type(f) {
                        Some(data_type) => f.as_ref().clone().with_data_type(data_type),
                        None => f.as_ref().clone(),
                    })
                    .collect();
                Arc::new(Schema::new(fields))
            })
        });
        all[Table::ALL.iter().position(|t| *t == self).expect("listed")].clone()
    }

    /// The timestamp column that partitions files by hour and prunes time filters.
    pub fn time_column(self) -> &'static str {
        match self {
            Table::Spans => "start_time",
            Table::Logs | Table::Metrics | Table::AlertEvents => "time",
            Table::Evals => "span_start_time",
        }
    }

    /// The column the store stamps with the time it accepted each row, so that followers of
    /// new rows (the online evaluator) can tell what arrived since they last looked.
    pub fn observed_time_column(self) -> Option<&'static str> {
        match self {
            Table::Spans => Some("observed_time"),
            _ => None,
        }
    }

    /// Columns a file is sorted by: the usual filters (service, then time) so row-group and
    /// page statistics prune them. Spans are also clustered by route: a route's requests share
    /// their system prompt (text compresses better) and what the route decides, such as its
    /// output type, so a filter on those skips the text pages of every other route. (Measured
    /// in docs/benchmarks.md; the dashboard's route aggregations read rollups, not these files.)
    pub fn sort_columns(self) -> &'static [&'static str] {
        match self {
            Table::Spans => &["service_name", "route", "start_time"],
            Table::Logs => &["service_name", "time"],
            Table::Metrics => &["metric_name", "service_name", "time"],
            Table::Evals => &["evaluator", "route", "span_start_time"],
            Table::AlertEvents => &["rule_name", "time"],
        }
    }

    /// Columns with a Parquet bloom filter: point lookups by id.
    pub fn bloom_filter_columns(self) -> &'static [&'static str] {
        match self {
            Table::Spans | Table::Logs | Table::Evals => &[TRACE_ID],
            Table::Metrics | Table::AlertEvents => &[],
        }
    }

    /// Whether rows carry a `trace_id` (and files a [`crate::trace_filter::TraceIdFilter`]).
    pub fn has_trace_ids(self) -> bool {
        self.bloom_filter_columns().contains(&TRACE_ID)
    }
}

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// `Map<Utf8, Utf8>` with the entry names Arrow's `MapBuilder` produces.
pub fn attributes_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    )
}

pub fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new("time", timestamp_type(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("attributes", attributes_type(), false),
    ])
}

pub fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new("trace_id", DataType::Utf8, false),
        Field::new("span_id", DataType::Utf8, false),
        Field::new("attributes", attributes_type(), false),
    ])
}

pub fn document_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("content", DataType::Utf8, true),
    ])
}

fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(fields), true)))
}

fn utf8_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn s(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
fn req(name: &str, dt: DataType) -> Field {
    Field::new(name, dt, false)
}
fn opt(name: &str, dt: DataType) -> Field {
    Field::new(name, dt, true)
}

pub fn spans_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                req("project", DataType::Utf8),
                req("trace_id", DataType::Utf8),
                req("span_id", DataType::Utf8),
                s("parent_span_id"),
                req("service_name", DataType::Utf8),
                req("span_name", DataType::Utf8),
                req("span_kind", DataType::Utf8),
                req("start_time", timestamp_type()),
                req("end_time", timestamp_type()),
                req("duration_ms", DataType::Float64),
                // When Plumb accepted the span; null in files written before it was kept.
                opt("observed_time", timestamp_type()),
                req("status_code", DataType::Utf8),
                s("status_message"),
                s("scope_name"),
                s("scope_version"),
                req("resource_attributes", attributes_type()),
                req("span_attributes", attributes_type()),
                req("events", list_of(event_fields())),
                req("links", list_of(link_fields())),
                s("gen_ai_operation_name"),
                s("gen_ai_provider_name"),
                s("gen_ai_request_model"),
                s("gen_ai_response_model"),
                opt("gen_ai_usage_input_tokens", DataType::Int64),
                opt("gen_ai_usage_output_tokens", DataType::Int64),
                opt("gen_ai_usage_cache_read_input_tokens", DataType::Int64),
                opt("gen_ai_usage_cache_creation_input_tokens", DataType::Int64),
                opt("gen_ai_usage_reasoning_output_tokens", DataType::Int64),
                opt("gen_ai_response_time_to_first_chunk", DataType::Float64),
                opt("gen_ai_response_finish_reasons", utf8_list()),
                s("gen_ai_output_type"),
                s("gen_ai_conversation_id"),
                s("gen_ai_agent_name"),
                s("gen_ai_tool_name"),
                req("route", DataType::Utf8),
                opt("cost_usd", DataType::Float64),
                opt("time_per_output_token", DataType::Float64),
                opt("queue_time", DataType::Float64),
                s("engine"),
                s("gpu_pool"),
                opt("cache_hit", DataType::Boolean),
                opt("retry_count", DataType::Int64),
                opt("fallback", DataType::Boolean),
                s("error_type"),
                s("input_text"),
                s("output_text"),
                opt("retrieval_documents", list_of(document_fields())),
            ]))
        })
        .clone()
}

pub fn logs_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                req("project", DataType::Utf8),
                req("time", timestamp_type()),
                opt("observed_time", timestamp_type()),
                opt("severity_number", DataType::Int32),
                s("severity_text"),
                s("body"),
                s("trace_id"),
                s("span_id"),
                req("service_name", DataType::Utf8),
                s("event_name"),
                s("scope_name"),
                req("resource_attributes", attributes_type()),
                req("log_attributes", attributes_type()),
            ]))
        })
        .clone()
}

pub fn metrics_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                req("project", DataType::Utf8),
                req("metric_name", DataType::Utf8),
                req("metric_type", DataType::Utf8),
                s("unit"),
                s("description"),
                req("service_name", DataType::Utf8),
                req("time", timestamp_type()),
                opt("start_time", timestamp_type()),
                opt("value", DataType::Float64),
                opt("is_monotonic", DataType::Boolean),
                s("aggregation_temporality"),
                opt("histogram_count", DataType::Int64),
                opt("histogram_sum", DataType::Float64),
                opt("histogram_min", DataType::Float64),
                opt("histogram_max", DataType::Float64),
                opt(
                    "histogram_bucket_counts",
                    DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                ),
                opt(
                    "histogram_explicit_bounds",
                    DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
                ),
                s("scope_name"),
                req("resource_attributes", attributes_type()),
                req("attributes", attributes_type()),
            ]))
        })
        .clone()
}

pub fn evals_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                req("project", DataType::Utf8),
                req("trace_id", DataType::Utf8),
                s("span_id"),
                req("evaluator", DataType::Utf8),
                req("evaluator_version", DataType::Int64),
                opt("score", DataType::Float64),
                s("label"),
                opt("passed", DataType::Boolean),
                s("explanation"),
                s("judge_model"),
                opt("latency_ms", DataType::Float64),
                req("source", DataType::Utf8),
                req("evaluated_at", timestamp_type()),
                req("span_start_time", timestamp_type()),
                req("route", DataType::Utf8),
                s("gen_ai_request_model"),
            ]))
        })
        .clone()
}

pub fn alert_events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                req("project", DataType::Utf8),
                req("rule_name", DataType::Utf8),
                req("rule_kind", DataType::Utf8),
                req("state", DataType::Utf8),
                req("time", timestamp_type()),
                opt("value", DataType::Float64),
                opt("threshold", DataType::Float64),
                opt("fired_at", timestamp_type()),
                opt("resolved_at", timestamp_type()),
                s("details"),
            ]))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for t in Table::ALL {
            assert_eq!(Table::from_tag(t.tag()), Some(t));
            assert_eq!(Table::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn sort_and_bloom_columns_exist() {
        for t in Table::ALL {
            let schema = t.schema();
            for c in t.sort_columns().iter().chain(t.bloom_filter_columns()) {
                assert!(
                    schema.field_with_name(c).is_ok(),
                    "{c} missing in {}",
                    t.name()
                );
            }
            assert!(schema.field_with_name(t.time_column()).is_ok());
            assert_eq!(schema.field(0).name(), "project");
        }
    }
}

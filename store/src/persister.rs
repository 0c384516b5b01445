//! Turns a generation of buffered rows into Parquet files on the object store.
//!
//! Files are laid out as `{table}/project={project}/date={YYYY-MM-DD}/hour={HH}/{uuid}.parquet`,
//! one per table, project and hour of the table's time column, sorted by the table's sort
//! columns so that time and service filters prune row groups and pages. Compression is zstd;
//! page-level statistics (and so the page index) are on for every column but free text;
//! `trace_id` has a bloom filter, and a copy of the file's trace ids goes to the catalog, with the
//! [`crate::rollup`] of a spans file's rows. [`writer_properties`] says why each setting is what it is.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::compute::interleave_record_batch;
use arrow::datatypes::DataType;
use arrow::datatypes::TimestampNanosecondType;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::catalog::{NewFile, ParquetFile};
use crate::error::{Result, StoreError};
use crate::rollup::{RollupBuilder, SpanRollup};
use crate::schema::{cast_batch, Table, TRACE_ID};
use crate::trace_filter::{TraceIdFilter, TraceIdFilterBuilder};

const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

/// Writes the rows of one table and project; returns the files written (not yet in the catalog).
pub async fn persist(
    store: &Arc<dyn ObjectStore>,
    table: Table,
    project: &str,
    batches: &[RecordBatch],
) -> Result<Vec<NewFile>> {
    if batches.is_empty() {
        return Ok(vec![]);
    }
    // Sorting and compressing is CPU work: keep it off the threads that answer requests.
    let (owned, project_owned) = (batches.to_vec(), project.to_string());
    let encoded =
        tokio::task::spawn_blocking(move || encode_partitions(table, &project_owned, &owned))
            .await
            .map_err(|e| StoreError::Corrupt(format!("flush task failed: {e}")))??;
    let mut files = Vec::with_capacity(encoded.len());
    for (file, bytes) in encoded {
        store
            .put(
                &ObjectPath::from(file.file.path.as_str()),
                PutPayload::from(bytes),
            )
            .await?;
        files.push(file);
    }
    Ok(files)
}

/// One Parquet file per hour of the table's time column, sorted for pruning.
fn encode_partitions(
    table: Table,
    project: &str,
    batches: &[RecordBatch],
) -> Result<Vec<(NewFile, Vec<u8>)>> {
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let mut out = Vec::new();
    for (hour, rows) in sorted_by_hour(table, batches)? {
        let (bytes, min_time, max_time, trace_ids, rollup) = encode_parquet(table, &refs, &rows)?;
        out.push((
            NewFile {
                file: ParquetFile {
                    project: project.to_string(),
                    table,
                    path: file_path(table, project, hour),
                    size_bytes: bytes.len() as u64,
                    row_count: rows.len() as u64,
                    min_time,
                    max_time,
                    trace_ids,
                    has_rollup: rollup.is_some(),
                },
                rollup,
            },
            bytes,
        ));
    }
    Ok(out)
}

fn times(
    table: Table,
    batch: &RecordBatch,
) -> &arrow::array::PrimitiveArray<TimestampNanosecondType> {
    batch
        .column_by_name(table.time_column())
        .expect("every table has its time column")
        .as_primitive::<TimestampNanosecondType>()
}

/// A row as (batch index, row index).
type RowRef = (usize, usize);

/// Orders the rows of all batches by (hour, the table's sort columns) and cuts them per hour.
/// Rows are compared in Arrow's row format; the data itself is gathered later, a slice at a
/// time, so a flush never holds a second sorted copy of everything it writes.
fn sorted_by_hour(table: Table, batches: &[RecordBatch]) -> Result<Vec<(i64, Vec<RowRef>)>> {
    let schema = table.schema();
    let fields = table
        .sort_columns()
        .iter()
        .map(|c| {
            let dt = schema
                .field_with_name(c)
                .expect("sort column exists")
                .data_type();
            SortField::new(dt.clone())
        })
        .collect();
    let converter = RowConverter::new(fields)?;
    let mut keys = Vec::with_capacity(batches.len());
    let mut hours = Vec::with_capacity(batches.len());
    for b in batches {
        let columns: Vec<_> = table
            .sort_columns()
            .iter()
            .map(|c| b.column_by_name(c).expect("sort column exists").clone())
            .collect();
        keys.push(converter.convert_columns(&columns)?);
        hours.push(
            times(table, b)
                .values()
                .iter()
                .map(|v| v.div_euclid(NANOS_PER_HOUR))
                .collect::<Vec<i64>>(),
        );
    }
    let mut order: Vec<RowRef> = batches
        .iter()
        .enumerate()
        .flat_map(|(bi, b)| (0..b.num_rows()).map(move |ri| (bi, ri)))
        .collect();
    order.sort_unstable_by(|a, b| {
        hours[a.0][a.1]
            .cmp(&hours[b.0][b.1])
            .then_with(|| keys[a.0].row(a.1).cmp(&keys[b.0].row(b.1)))
    });
    Ok(order
        .chunk_by(|a, b| hours[a.0][a.1] == hours[b.0][b.1])
        .map(|rows| (hours[rows[0].0][rows[0].1], rows.to_vec()))
        .collect())
}

/// Free text: prompts, outputs, log bodies, and attribute values (which hold the rest of the
/// messages that are not stored once), each with the byte size its data pages fill to.
///
/// Prompts repeat system prompts and retrieved passages that a 4 MiB zstd window finds, so their
/// pages are large. Outputs are mostly unique text that compresses about as well in small pages,
/// and small pages let a query that wants a few rows (JSON failures of a route, one trace)
/// decompress only those rows' neighbours instead of megabytes of other rows. Attribute values
/// sit between: on the benchmark's day they took 7.5 % more bytes in 128 KiB pages than in
/// 4 MiB ones (1.4 % of all bytes, more than the size target allows), but 0.3 % fewer in 1 MiB
/// pages, of which a trace lookup decompresses a quarter as much (docs/benchmarks.md, run I).
/// (Parquet checks the limit after every 1,024 rows it writes, so a page holds at least that
/// many.)
const TEXT_COLUMNS: &[(&[&str], usize)] = &[
    (&["input_text"], LARGE_TEXT_PAGE_BYTES),
    (&["output_text"], SMALL_TEXT_PAGE_BYTES),
    (&["body"], LARGE_TEXT_PAGE_BYTES),
    (
        &["span_attributes", "entries", "values"],
        ATTRIBUTE_PAGE_BYTES,
    ),
    (
        &["log_attributes", "entries", "values"],
        ATTRIBUTE_PAGE_BYTES,
    ),
    (
        &["retrieval_documents", "list", "item", "content"],
        LARGE_TEXT_PAGE_BYTES,
    ),
];

const LARGE_TEXT_PAGE_BYTES: usize = 4 << 20;
const SMALL_TEXT_PAGE_BYTES: usize = 128 << 10;
const ATTRIBUTE_PAGE_BYTES: usize = 1 << 20;

/// Ids that are (nearly) unique per row. A dictionary of them is as large as the column plus an
/// index per row, and a point lookup must decode all of it (up to 1 MiB of ids) to read one
/// row. Plain pages are also smaller: 1.3–1.5 bytes a row on the benchmark's spans, against
/// 2.3–4.3 with a dictionary (docs/benchmarks.md, run P).
const ID_COLUMNS: &[&str] = &["trace_id", "span_id", "parent_span_id"];

/// Nested timestamps that are worth delta encoding like the top-level ones.
const NESTED_TIME_COLUMNS: &[&[&str]] = &[&["events", "list", "item", "time"]];

/// Parquet writer settings of every file Plumb writes.
///
/// Measured on the benchmark's GenAI spans (docs/benchmarks.md): prompts in zstd level 3 with
/// 4 MiB pages take ~30% fewer bytes than level 1 with 1 MiB pages, at about the same encoding
/// time, because they share system prompts and retrieved passages that a longer window finds
/// (outputs and attribute values keep smaller pages, see [`TEXT_COLUMNS`]).
/// Timestamps are delta encoded (start times are sorted within a service and route) and doubles byte-stream
/// split, since random latencies defeat dictionaries.
///
/// `rows` is the number of rows the file will hold: it sizes the bloom filters, which parquet
/// otherwise allocates for a million distinct values (1 MiB each) and folds down only at the end.
pub fn writer_properties(table: Table, rows: usize) -> WriterProperties {
    let schema = table.schema();
    let path =
        |parts: &[&str]| ColumnPath::from(parts.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    let mut b = WriterProperties::builder()
        // Level 1 for everything that is not text: small columns, and flushing competes with
        // ingest for the same cores.
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // A point lookup (one trace) decompresses, in every column it returns, the page that
        // holds its rows: pages of 8k rows keep that to ~64 KB for numbers and ids instead of a
        // whole column chunk. Text pages may close first, at their byte limit (`TEXT_COLUMNS`).
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_sorting_columns(Some(
            table
                .sort_columns()
                .iter()
                .map(|c| SortingColumn {
                    column_idx: schema.index_of(c).expect("sort column exists") as i32,
                    descending: false,
                    nulls_first: true,
                })
                .collect(),
        ));
    let distinct = rows.clamp(1, ROW_GROUP_ROWS) as u64;
    for c in table.bloom_filter_columns() {
        b = b
            .set_column_bloom_filter_enabled(ColumnPath::from(*c), true)
            .set_column_bloom_filter_max_ndv(ColumnPath::from(*c), distinct);
    }
    for (parts, page_bytes) in TEXT_COLUMNS {
        if schema.field_with_name(parts[0]).is_err() {
            continue;
        }
        let col = path(parts);
        b = b
            // Free text rarely repeats whole: a dictionary only costs time.
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_compression(
                col.clone(),
                Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")),
            )
            .set_column_data_page_size_limit(col.clone(), *page_bytes)
            // Min/max of prompts prune nothing.
            .set_column_statistics_enabled(col, EnabledStatistics::None);
    }
    for id in ID_COLUMNS {
        if schema.field_with_name(id).is_ok() {
            b = b.set_column_dictionary_enabled(ColumnPath::from(*id), false);
        }
    }
    let mut time_columns: Vec<ColumnPath> = NESTED_TIME_COLUMNS
        .iter()
        .filter(|parts| schema.field_with_name(parts[0]).is_ok())
        .map(|parts| path(parts))
        .collect();
    for f in schema.fields() {
        match f.data_type() {
            DataType::Timestamp(_, _) => time_columns.push(ColumnPath::from(f.name().as_str())),
            DataType::Float64 => {
                let col = ColumnPath::from(f.name().as_str());
                b = b
                    .set_column_dictionary_enabled(col.clone(), false)
                    .set_column_encoding(col, Encoding::BYTE_STREAM_SPLIT);
            }
            _ => {}
        }
    }
    for col in time_columns {
        b = b
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
    }
    b.build()
}

/// Rows per data page at most (see [`writer_properties`]).
pub const PAGE_ROWS: usize = 8192;

/// Rows per row group at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Rows gathered into the writer per step: small enough that the copy (about 1 KB of text a
/// span) stays a small part of the flush's memory next to the writer's own page buffers, large
/// enough that `interleave` runs in long stretches.
const GATHER_ROWS: usize = 2048;

/// What [`encode_parquet`] gives: the file's bytes, the min/max of its time column, the filter of
/// its trace ids (tables that have them) and its rollup (spans).
type Encoded = (Vec<u8>, i64, i64, Option<TraceIdFilter>, Option<SpanRollup>);

/// Writes the rows in the given order, summarizing them on the way.
fn encode_parquet(table: Table, batches: &[&RecordBatch], rows: &[RowRef]) -> Result<Encoded> {
    let mut out = Vec::new();
    let file_schema = table.file_schema();
    let mut w = ArrowWriter::try_new(
        &mut out,
        file_schema.clone(),
        Some(writer_properties(table, rows.len())),
    )?;
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    let mut trace_ids = match table.has_trace_ids() {
        true => Some(TraceIdFilterBuilder::new(rows.len())?),
        false => None,
    };
    let mut rollup = (table == Table::Spans).then(|| RollupBuilder::new(None));
    for chunk in rows.chunks(GATHER_ROWS) {
        let sorted = interleave_record_batch(batches, chunk)?;
        let t = times(table, &sorted);
        min = min.min(arrow::compute::min(t).unwrap_or(min));
        max = max.max(arrow::compute::max(t).unwrap_or(max));
        if let Some(b) = trace_ids.as_mut() {
            b.add_column(sorted.column_by_name(TRACE_ID).expect("has_trace_ids"))?;
        }
        if let Some(r) = rollup.as_mut() {
            r.add(&sorted)?;
        }
        w.write(&cast_batch(&sorted, &file_schema)?)?;
    }
    w.close()?;
    Ok((
        out,
        min,
        max,
        trace_ids.map(TraceIdFilterBuilder::finish),
        rollup.map(RollupBuilder::finish),
    ))
}

fn file_path(table: Table, project: &str, hour: i64) -> String {
    let start = chrono::DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default();
    format!(
        "{}/project={}/date={}/hour={}/{}.parquet",
        table.name(),
        project,
        start.format("%Y-%m-%d"),
        start.format("%H"),
        uuid::Uuid::now_v7()
    )
}

/// Deletes a file that was written but never committed (best effort).
pub async fn discard(store: &Arc<dyn ObjectStore>, file: &ParquetFile) {
    if let Err(e) = store.delete(&ObjectPath::from(file.path.as_str())).await {
        tracing::warn!(path = %file.path, error = %e, "could not delete an uncommitted file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{logs_batch, LogRecord};
    use object_store::memory::InMemory;

    /// A span of service "svc" whose ids and times follow `i`.
    fn span_row(i: i64) -> crate::records::SpanRecord {
        let mut row = crate::records::test_span(
            "p",
            i as usize,
            i as usize,
            1_000_000 + i,
            2_000_000 + i * 7,
        );
        row.status_code = "OK";
        row
    }

    /// Persists `rows` as one file and gives its number of data pages per leaf column path.
    async fn pages_per_column(
        rows: &[crate::records::SpanRecord],
    ) -> std::collections::HashMap<String, usize> {
        use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let batch = crate::records::spans_batch(rows).unwrap();
        let files = persist(&store, Table::Spans, "p", &[batch]).await.unwrap();
        let path = ObjectPath::from(files[0].file.path.as_str());
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        let meta = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .parse_and_finish(&bytes)
            .unwrap();
        // Leaf columns, not Arrow fields: a nested field holds several leaves.
        let leaves = meta.file_metadata().schema_descr();
        let offsets = &meta.offset_index().expect("offset index written")[0];
        (0..leaves.num_columns())
            .map(|i| {
                let pages = offsets[i].page_locations().len();
                (leaves.column(i).path().string(), pages)
            })
            .collect()
    }

    #[tokio::test]
    async fn output_and_attribute_pages_are_small_and_prompt_pages_large() {
        let text = |i: i64, what: &str| format!("{what} {i}: {}", "lorem ipsum dolor ".repeat(55));
        let rows: Vec<_> = (0..8_000_i64)
            .map(|i| {
                let mut row = span_row(i);
                row.gen_ai.input_text = Some(text(i, "prompt"));
                row.gen_ai.output_text = Some(text(i, "answer"));
                row.span_attributes = vec![("app.note".into(), text(i, "note").repeat(2))];
                row
            })
            .collect();
        let pages = pages_per_column(&rows).await;
        // 8k rows of ~1 KB texts (2 KB attributes): about 8 MB of each text, 16 MB of
        // attributes. Parquet checks a page's size after each 1,024 rows it writes, so every such
        // step closes a 128 KiB output page or a 1 MiB attribute page (8 pages each), while
        // prompt pages fill to 4 MiB (2 or 3; 4 MiB attribute pages would be 3 or 4).
        assert!(pages["output_text"] >= 7, "{pages:?}");
        assert!(pages["span_attributes.entries.values"] >= 7, "{pages:?}");
        assert!(pages["input_text"] <= 3, "{pages:?}");
    }

    #[tokio::test]
    async fn pages_of_numbers_and_ids_hold_at_most_page_rows() {
        let rows: Vec<_> = (0..20_000_i64).map(span_row).collect();
        let pages = pages_per_column(&rows).await;
        for column in ["trace_id", "duration_ms", "end_time"] {
            assert!(pages[column] >= 20_000 / PAGE_ROWS, "{column}: {pages:?}");
        }
    }

    #[tokio::test]
    async fn ids_are_plain_encoded_and_categories_use_a_dictionary() {
        use parquet::basic::Encoding;
        use parquet::file::metadata::ParquetMetaDataReader;
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let rows: Vec<_> = (0..3_000_i64)
            .map(|i| {
                let mut row = span_row(i);
                row.parent_span_id = Some(format!("{:016x}", i + 1_000_000));
                row
            })
            .collect();
        let batch = crate::records::spans_batch(&rows).unwrap();
        let files = persist(&store, Table::Spans, "p", &[batch]).await.unwrap();
        let path = ObjectPath::from(files[0].file.path.as_str());
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .unwrap();
        let encodings = |name: &str| -> Vec<Encoding> {
            let rg = meta.row_group(0);
            let c = (0..rg.num_columns())
                .map(|i| rg.column(i))
                .find(|c| c.column_path().string() == name)
                .unwrap_or_else(|| panic!("no column {name}"));
            c.encodings().collect()
        };
        for id in ["trace_id", "span_id", "parent_span_id"] {
            let e = encodings(id);
            assert!(!e.contains(&Encoding::RLE_DICTIONARY), "{id}: {e:?}");
        }
        let e = encodings("service_name");
        assert!(e.contains(&Encoding::RLE_DICTIONARY), "service_name: {e:?}");
    }

    #[tokio::test]
    async fn splits_by_hour_and_sorts() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let rows: Vec<LogRecord> = [(3, "b"), (1, "a"), (NANOS_PER_HOUR + 5, "a")]
            .into_iter()
            .map(|(t, s)| LogRecord {
                project: "p".into(),
                time_unix_nano: t,
                service_name: s.into(),
                ..Default::default()
            })
            .collect();
        let files: Vec<ParquetFile> =
            persist(&store, Table::Logs, "p", &[logs_batch(&rows).unwrap()])
                .await
                .unwrap()
                .into_iter()
                .map(|f| f.file)
                .collect();
        assert_eq!(files.len(), 2);
        assert_eq!(
            (files[0].min_time, files[0].max_time, files[0].row_count),
            (1, 3, 2)
        );
        assert!(files[0]
            .path
            .starts_with("logs/project=p/date=1970-01-01/hour=00/"));
        assert!(files[1].path.contains("hour=01"));
        let head = store
            .head(&ObjectPath::from(files[0].path.as_str()))
            .await
            .unwrap();
        assert_eq!(head.size, files[0].size_bytes);
    }
}

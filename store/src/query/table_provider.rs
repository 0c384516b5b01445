//! The DataFusion table behind `spans`, `logs` and `metrics`: the project's Parquet files from
//! the catalog (pruned by time and by trace-id filters before any file is opened) unioned with
//! its buffered rows.
//!
//! One provider is bound to one project, so tenant scoping does not depend on the user's SQL:
//! another project's files and rows are never part of the plan.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::config::TableParquetOptions;
use datafusion::common::{DFSchema, Result as DfResult};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};

use super::column_zip::{ColumnZipExec, Side};
use super::file_readers::IndexedFileReaders;
use super::time_bounds::TimeBounds;
use super::trace_ids::wanted_trace_ids;
use crate::schema::{cast_batch, Table};
use crate::write_buffer::WriteBuffer;

/// The URL under which the store's object store is registered in every query context.
pub const STORE_URL: &str = "plumb://store";

#[derive(Debug)]
pub struct PlumbTable {
    table: Table,
    project: String,
    buffer: WriteBuffer,
}

impl PlumbTable {
    pub fn new(table: Table, project: &str, buffer: WriteBuffer) -> Self {
        PlumbTable {
            table,
            project: project.to_string(),
            buffer,
        }
    }
}

#[async_trait]
impl TableProvider for PlumbTable {
    fn schema(&self) -> SchemaRef {
        self.table.query_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Filters prune files and row groups, but DataFusion re-checks every row.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = self.table.query_schema();
        let snapshot = self.buffer.snapshot(self.table, &self.project);
        let bounds = TimeBounds::from_filters(self.table.time_column(), filters);
        let trace_ids = match self.table.has_trace_ids() {
            true => wanted_trace_ids(filters),
            false => None,
        };

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();

        let files: Vec<_> = snapshot
            .files
            .iter()
            .filter(|f| bounds.overlaps(f.min_time, f.max_time))
            .filter(|f| {
                trace_ids
                    .as_ref()
                    .is_none_or(|ids| f.may_hold_any_trace(ids))
            })
            .collect();
        if !files.is_empty() {
            let partitions = state.config_options().execution.target_partitions.max(1);
            let mut groups: Vec<Vec<PartitionedFile>> =
                vec![Vec::new(); partitions.min(files.len())];
            let n = groups.len();
            for (i, f) in files.iter().enumerate() {
                groups[i % n].push(PartitionedFile::new(f.path.clone(), f.size_bytes));
            }
            let options = TableParquetOptions {
                global: state.config_options().execution.parquet.clone(),
                ..Default::default()
            };
            let store_url = ObjectStoreUrl::parse(STORE_URL)?;
            // DataFusion reads footers through the runtime's metadata cache only with a cached
            // factory (its listing tables set one; a hand-built source does not): without it,
            // every query parsed every file's footer and page index again.
            let readers: Arc<IndexedFileReaders> = Arc::new(IndexedFileReaders::new(
                state.runtime_env().object_store(&store_url)?,
                state.runtime_env().cache_manager.get_file_metadata_cache(),
            ));
            let predicate = match conjunction(filters.iter().cloned()) {
                Some(predicate) => {
                    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
                    Some(state.create_physical_expr(predicate, &df_schema)?)
                }
                None => None,
            };
            let groups: Vec<FileGroup> = groups.into_iter().map(FileGroup::new).collect();
            // `pinned`: the file groups are the partitions. DataFusion otherwise splits files into
            // byte ranges and lets an idle partition take a sibling's files at run time, and the
            // two halves of a zipped lookup would then yield their rows from different
            // partitions (and each open its files once per range).
            let parquet_scan =
                |columns: Option<Vec<usize>>, pinned: bool| -> DfResult<Arc<dyn ExecutionPlan>> {
                    let mut source = ParquetSource::new(schema.clone())
                        .with_table_parquet_options(options.clone())
                        .with_parquet_file_reader_factory(readers.clone());
                    if let Some(predicate) = &predicate {
                        source = source.with_predicate(predicate.clone());
                    }
                    let config = FileScanConfigBuilder::new(store_url.clone(), Arc::new(source))
                        .with_file_groups(groups.clone())
                        .with_projection_indices(columns)?
                        .with_limit(limit)
                        .with_output_partitioning(
                            pinned.then(|| Partitioning::UnknownPartitioning(groups.len())),
                        )
                        .build();
                    Ok(DataSourceExec::from_data_source(config))
                };
            let all: Vec<usize> = match projection {
                Some(p) => p.clone(),
                None => (0..schema.fields().len()).collect(),
            };
            match (&trace_ids, split_for_lookup(&schema, &all)) {
                (Some(_), Some((left, right, columns))) => {
                    inputs.push(Arc::new(ColumnZipExec::try_new(
                        parquet_scan(Some(left), true)?,
                        parquet_scan(Some(right), true)?,
                        columns,
                    )?));
                }
                _ => inputs.push(parquet_scan(projection.cloned(), false)?),
            }
        }

        if !snapshot.batches.is_empty() {
            // Only the columns the query reads are converted: stored strings become views over
            // the same buffers (the text is not copied), but categorical ones become
            // dictionaries, as the files give them, and that hashes every value.
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema.clone(),
            };
            let batches = snapshot
                .batches
                .iter()
                .map(|b| {
                    let b = match projection {
                        Some(p) => b.project(p)?,
                        None => b.clone(),
                    };
                    Ok(cast_batch(&b, &projected)?)
                })
                .collect::<DfResult<Vec<_>>>()?;
            inputs.push(MemorySourceConfig::try_new_exec(
                &[batches],
                projected,
                None,
            )?);
        }

        if inputs.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema,
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        UnionExec::try_new(inputs)
    }
}

/// Text columns: a lookup that returns any of them decodes them on a second core. Their pages are
/// the largest a lookup decompresses (4 MiB of prompts).
const TEXT_COLUMNS: &[&str] = &["input_text", "output_text", "retrieval_documents"];

/// Decoded with the text columns, to even out the two halves: measured one by one on the
/// benchmark's day (docs/benchmarks.md, run J), the text plus these take about as long to decode
/// for a lookup as all other columns together (the attribute map and ~35 scalar columns).
const DECODED_WITH_TEXT: &[&str] = &["span_id", "parent_span_id", "events", "links"];

/// Splits a lookup's columns (indices into `schema`) into the text side and the rest, and says
/// where each column of the result comes from; `None` when the lookup returns no text column or
/// nothing else (a lookup of a few small columns is not worth reading its filter column twice).
fn split_for_lookup(
    schema: &SchemaRef,
    columns: &[usize],
) -> Option<(Vec<usize>, Vec<usize>, Vec<Side>)> {
    let name = |c: usize| schema.field(c).name().as_str();
    if !columns.iter().any(|&c| TEXT_COLUMNS.contains(&name(c))) {
        return None;
    }
    let (mut left, mut right, mut sides) = (Vec::new(), Vec::new(), Vec::new());
    for &c in columns {
        if TEXT_COLUMNS.contains(&name(c)) || DECODED_WITH_TEXT.contains(&name(c)) {
            sides.push(Side::Left(left.len()));
            left.push(c);
        } else {
            sides.push(Side::Right(right.len()));
            right.push(c);
        }
    }
    (!right.is_empty()).then_some((left, right, sides))
}

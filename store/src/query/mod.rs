//! The SQL engine: one DataFusion context per query with the project's tables registered,
//! read-only, with a memory limit and a timeout.

mod column_zip;
mod dense_aggregate;
mod file_readers;
mod functions;
mod group_keys;
mod output;
mod sandbox;
mod table_provider;
mod time_bounds;
mod trace_ids;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::cache::cache_manager::{
    CacheManager, CacheManagerConfig, FileMetadataCache,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;

pub use output::{cell_text, to_csv, to_json_rows, JsonRows};
pub use sandbox::check_read_only;
pub use table_provider::{PlumbTable, STORE_URL};
pub use time_bounds::TimeBounds;

use crate::schema::Table;
use crate::write_buffer::WriteBuffer;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("SQL is read-only in Plumb: `{0}` is refused. Use SELECT (or EXPLAIN / SHOW TABLES).")]
    ReadOnly(String),
    #[error("invalid SQL: {0}")]
    Invalid(String),
    #[error("query failed: {0}")]
    Execution(String),
    #[error("query exceeded its time limit of {0:?}; narrow the time range or add filters")]
    Timeout(Duration),
    #[error("query exceeded its memory limit of {limit} bytes; aggregate more or narrow the time range ({detail})")]
    MemoryLimit { limit: usize, detail: String },
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as E;
        // Planning errors arrive wrapped (context, diagnostics): classify by the root cause.
        match e.find_root() {
            E::SQL(..) | E::Plan(_) | E::SchemaError(..) | E::NotImplemented(_) => {
                QueryError::Invalid(e.to_string())
            }
            E::ResourcesExhausted(detail) => QueryError::MemoryLimit {
                limit: 0,
                detail: detail.clone(),
            },
            _ => QueryError::Execution(e.to_string()),
        }
    }
}

/// Per-query limits.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    pub memory_bytes: usize,
    pub timeout: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 1 << 30,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The result of a query.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryOutput {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

#[derive(Clone)]
pub struct QueryEngine {
    buffer: WriteBuffer,
    object_store: Arc<dyn ObjectStore>,
    limits: QueryLimits,
    /// Parquet footers, page indexes and bloom filters of files already read. Shared by every
    /// query (each has its own runtime for its own memory limit): files never change once
    /// written, and re-reading footers dominated point lookups.
    metadata_cache: Arc<FileMetadataCache>,
}

impl QueryEngine {
    pub fn new(
        buffer: WriteBuffer,
        object_store: Arc<dyn ObjectStore>,
        limits: QueryLimits,
    ) -> Self {
        let metadata_cache = CacheManager::try_new(
            &CacheManagerConfig::default().with_metadata_cache_limit(256 << 20),
        )
        .expect("the default cache manager builds")
        .get_file_metadata_cache();
        QueryEngine {
            buffer,
            object_store,
            limits,
            metadata_cache,
        }
    }

    /// A fresh context that sees only `project`'s rows.
    pub fn context(&self, project: &str) -> Result<SessionContext, QueryError> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(cpu_count());
        {
            let opts = config.options_mut();
            // Decode only the rows that pass the filters: a trace lookup must not decode every
            // prompt in a row group.
            opts.execution.parquet.pushdown_filters = true;
            opts.execution.parquet.reorder_filters = true;
            opts.execution.parquet.enable_page_index = true;
            opts.execution.parquet.bloom_filter_on_read = true;
            opts.sql_parser.enable_ident_normalization = true;
        }
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .with_cache_manager(
                CacheManagerConfig::default()
                    .with_file_metadata_cache(Some(self.metadata_cache.clone())),
            )
            .build_arc()
            .map_err(QueryError::from)?;
        let url = url_for_store();
        runtime.register_object_store(&url, self.object_store.clone());
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(dense_aggregate::DenseGroupAggregate))
            .build();
        let mut ctx = SessionContext::new_with_state(state);
        datafusion_functions_json::register_all(&mut ctx).map_err(QueryError::from)?;
        ctx.register_udf(functions::json_valid());
        ctx.add_optimizer_rule(Arc::new(group_keys::InternGroupKeys));
        for table in Table::ALL {
            ctx.register_table(
                table.name(),
                Arc::new(PlumbTable::new(table, project, self.buffer.clone())),
            )
            .map_err(QueryError::from)?;
        }
        Ok(ctx)
    }

    /// How many files' footers the shared metadata cache holds.
    pub fn cached_footers(&self) -> usize {
        self.metadata_cache.len()
    }

    /// How many of the cached footers came with their file's page index.
    pub fn cached_page_indexes(&self) -> usize {
        self.metadata_cache
            .list_entries()
            .values()
            .filter(|e| {
                e.value
                    .file_metadata
                    .extra_info()
                    .get("page_index")
                    .map(String::as_str)
                    == Some("true")
            })
            .count()
    }

    /// Runs one read-only statement for `project`.
    pub async fn sql(&self, project: &str, sql: &str) -> Result<QueryOutput, QueryError> {
        check_read_only(sql)?;
        let ctx = self.context(project)?;
        let limits = self.limits.clone();
        let run = async move {
            let df = ctx.sql(sql).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            Ok::<_, datafusion::error::DataFusionError>(QueryOutput { schema, batches })
        };
        match tokio::time::timeout(limits.timeout, run).await {
            Err(_) => Err(QueryError::Timeout(limits.timeout)),
            Ok(Err(e)) => Err(match QueryError::from(e) {
                QueryError::MemoryLimit { detail, .. } => QueryError::MemoryLimit {
                    limit: limits.memory_bytes,
                    detail,
                },
                other => other,
            }),
            Ok(Ok(out)) => Ok(out),
        }
    }
}

/// The CPUs this process may use, read once: the standard library re-reads the cgroup's quota
/// files on every call, which was a visible part of a trivial query's cost.
fn cpu_count() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

fn url_for_store() -> url::Url {
    url::Url::parse(STORE_URL).expect("static URL parses")
}

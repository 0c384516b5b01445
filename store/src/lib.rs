//! `plumb-store`: Plumb's data model and everything that keeps it.
//!
//! The write path reads top to bottom in module order: rows arrive as [`records`] (shaped by
//! [`schema`]), are appended to the [`wal`] and made queryable by the [`write_buffer`], turned
//! into Parquet by the [`persister`] and made visible through the [`catalog`], which keeps a
//! [`trace_filter`] per file for point lookups and a [`rollup`] per spans file for dashboards.
//! The [`query`] engine reads files and buffered rows together. [`Store`] wires these together
//! and runs the background flush.

pub mod catalog;
pub mod error;
pub mod object_store_url;
pub mod persister;
pub mod query;
pub mod records;
pub mod rollup;
pub mod schema;
pub mod trace_filter;
pub mod wal;
pub mod write_buffer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::Mutex as AsyncMutex;

pub use catalog::{Catalog, NewFile, ParquetFile};
pub use error::{Result, StoreError};
pub use query::{QueryEngine, QueryError, QueryLimits, QueryOutput};
pub use schema::Table;
pub use write_buffer::{BufferLimits, ReplayStats, WriteBuffer};

/// The project that owns data when no API keys are configured.
pub const DEFAULT_PROJECT: &str = "default";

/// Flush size by default: ~12k GenAI spans, enough for 4 MiB text pages and good zstd windows.
pub const DEFAULT_FLUSH_BYTES: usize = 16 << 20;
/// Buffered bytes past which writes are refused by default. Measured with `bench ingest`, a
/// larger buffer did not raise sustained throughput (the flush sets it) but raised peak RSS.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 << 20;
/// How long a write waits at the door for room by default: the retry hint that a refusal
/// carries, so a client that is refused after it would not have fared better retrying.
pub const DEFAULT_ADMISSION_WAIT: Duration = Duration::from_secs(1);

/// Storage settings, each with a safe default.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// Where Parquet files go: a local directory (default `<data_dir>/objects`), `s3://bucket/prefix`,
    /// `file:///abs/path` or `memory://`.
    pub object_store_url: Option<String>,
    /// The catalog database: `postgres://...`, or by default SQLite at `<data_dir>/catalog.db`.
    pub catalog_url: Option<String>,
    /// Flush once this many bytes are buffered...
    pub flush_bytes: usize,
    /// ...or once the oldest buffered row is this old.
    pub flush_age: Duration,
    /// Refuse writes (overload) while this many bytes wait for a flush.
    pub max_buffered_bytes: usize,
    /// How long a write may wait at the door for a flush to make room before it is refused.
    pub admission_wait: Duration,
    pub query_limits: QueryLimits,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            object_store_url: None,
            catalog_url: None,
            flush_bytes: DEFAULT_FLUSH_BYTES,
            flush_age: Duration::from_secs(60),
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            admission_wait: DEFAULT_ADMISSION_WAIT,
            query_limits: QueryLimits::default(),
        }
    }
}

/// The opened store: write, query, flush.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: StoreConfig,
    catalog: Catalog,
    buffer: WriteBuffer,
    object_store: Arc<dyn ObjectStore>,
    /// The store's directory when it is the local disk, to fsync what a flush wrote.
    local_files: Option<object_store_url::LocalFiles>,
    query: QueryEngine,
    /// One flush at a time, so generations are persisted in order.
    flush_lock: AsyncMutex<()>,
    _lock_file: std::fs::File,
}

impl Store {
    /// Opens the data directory: takes its lock, migrates the catalog, replays the WAL.
    pub async fn open(config: StoreConfig) -> Result<(Store, ReplayStats)> {
        std::fs::create_dir_all(&config.data_dir)?;
        let lock_file = lock_data_dir(&config.data_dir)?;
        let object_store_url::Opened {
            store: object_store,
            local: local_files,
        } = object_store_url::open(&config.data_dir, config.object_store_url.as_deref())?;
        let catalog = match &config.catalog_url {
            Some(url) => Catalog::open_url(url).await?,
            None => Catalog::open_sqlite(&config.data_dir.join("catalog.db")).await?,
        };
        let files = catalog.files().await?;
        let through = catalog.flushed_through_segment().await?;
        let (buffer, replay) = WriteBuffer::open(
            config.data_dir.join("wal"),
            through,
            files,
            BufferLimits {
                max_buffered_bytes: config.max_buffered_bytes,
                flush_bytes: config.flush_bytes,
                admission_wait: config.admission_wait,
            },
        )?;
        let query = QueryEngine::new(
            buffer.clone(),
            object_store.clone(),
            config.query_limits.clone(),
        );
        let store = Store {
            inner: Arc::new(Inner {
                config,
                catalog,
                buffer,
                object_store,
                local_files,
                query,
                flush_lock: AsyncMutex::new(()),
                _lock_file: lock_file,
            }),
        };
        Ok((store, replay))
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Durably stores rows of `table` for `project`; returns after the WAL fsync.
    pub async fn write(&self, table: Table, project: &str, batch: RecordBatch) -> Result<()> {
        self.inner.buffer.write(table, project, batch).await
    }

    /// Waits, within limits, until a write of the usual size would be accepted (see
    /// [`WriteBuffer::admit`]).
    pub async fn admit(&self) -> Result<()> {
        self.inner.buffer.admit().await
    }

    /// Every span stamped (`observed_time`) at or before this Unix-nanosecond time is queryable.
    pub fn visible_through(&self) -> i64 {
        self.inner.buffer.visible_through()
    }

    /// Projects that have rows of `table`.
    pub fn projects(&self, table: Table) -> Vec<String> {
        self.inner.buffer.projects(table)
    }

    /// Writes `evals` rows (grouped by project).
    pub async fn write_evals(&self, rows: &[records::EvalRecord]) -> Result<()> {
        let mut by_project: std::collections::BTreeMap<&str, Vec<records::EvalRecord>> =
            Default::default();
        for r in rows {
            by_project.entry(&r.project).or_default().push(r.clone());
        }
        for (project, rows) in by_project {
            self.write(Table::Evals, project, records::evals_batch(&rows)?)
                .await?;
        }
        Ok(())
    }

    /// The catalog database, for the other catalog tables (alert rules and their state).
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn query_engine(&self) -> &QueryEngine {
        &self.inner.query
    }

    pub async fn sql(&self, project: &str, sql: &str) -> Result<QueryOutput, QueryError> {
        self.inner.query.sql(project, sql).await
    }

    pub fn buffer(&self) -> &WriteBuffer {
        &self.inner.buffer
    }

    /// Persists everything buffered so far to Parquet and commits it to the catalog.
    ///
    /// The work runs to its end even when the caller stops waiting for it (a shutdown aborting
    /// the background flusher, a timeout): cut off between its catalog commit and
    /// [`WriteBuffer::complete`], it would leave committed rows buffered, and the next flush
    /// would persist them again.
    pub async fn flush(&self) -> Result<usize> {
        let store = self.clone();
        tokio::spawn(async move { store.flush_to_end().await })
            .await
            .map_err(|e| StoreError::Corrupt(format!("flush task failed: {e}")))?
    }

    async fn flush_to_end(&self) -> Result<usize> {
        let _guard = self.inner.flush_lock.lock().await;
        self.inner.buffer.rotate().await?;
        let mut written = 0;
        // Oldest first, stopping at the first failure: the checkpoint must never pass a
        // generation that is not yet persisted.
        for generation in self.inner.buffer.persisting() {
            let started = std::time::Instant::now();
            let mut files = Vec::new();
            for ((table, project), batches) in &generation.batches {
                match persister::persist(&self.inner.object_store, *table, project, batches).await {
                    Ok(mut f) => files.append(&mut f),
                    Err(e) => {
                        self.discard(&files).await;
                        return Err(e);
                    }
                }
            }
            if let Err(e) = self.make_durable(&files).await {
                self.discard(&files).await;
                return Err(e);
            }
            let catalog = &self.inner.catalog;
            match catalog
                .commit_flush(&files, generation.through_segment)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    // An earlier attempt committed this generation without learning it (its
                    // commit reported an error after all): the catalog has its files.
                    tracing::warn!(
                        generation = generation.id,
                        through_segment = generation.through_segment,
                        "generation was committed by an earlier attempt; keeping those files"
                    );
                    self.discard(&files).await;
                    let committed = catalog.files().await?;
                    self.inner
                        .buffer
                        .complete_from_catalog(generation.id, committed);
                    self.inner.buffer.truncate_wal(generation.through_segment)?;
                    continue;
                }
                Err(e) => {
                    self.discard(&files).await;
                    return Err(e);
                }
            }
            written += files.len();
            tracing::debug!(
                generation = generation.id,
                through_segment = generation.through_segment,
                files = ?files.iter().map(|f| f.file.path.as_str()).collect::<Vec<_>>(),
                rows = files.iter().map(|f| f.file.row_count).sum::<u64>(),
                buffered_bytes = generation.bytes,
                parquet_bytes = files.iter().map(|f| f.file.size_bytes).sum::<u64>(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "flushed"
            );
            self.inner
                .buffer
                .complete(generation.id, files.into_iter().map(|f| f.file).collect());
            self.inner.buffer.truncate_wal(generation.through_segment)?;
        }
        Ok(written)
    }

    /// Makes files on local disk survive a machine crash before the catalog names them.
    async fn make_durable(&self, files: &[NewFile]) -> Result<()> {
        let Some(local) = self.inner.local_files.clone() else {
            return Ok(());
        };
        let paths: Vec<String> = files.iter().map(|f| f.file.path.clone()).collect();
        tokio::task::spawn_blocking(move || {
            local.sync(&paths.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("fsync task failed: {e}")))?
    }

    /// Deletes files written by a flush that did not commit them.
    async fn discard(&self, files: &[NewFile]) {
        for f in files {
            persister::discard(&self.inner.object_store, &f.file).await;
        }
    }

    /// Flushes when the buffer is large or old enough. Returns whether it flushed.
    pub async fn maybe_flush(&self) -> Result<bool> {
        let (bytes, age) = self.inner.buffer.active_size();
        let due = bytes >= self.inner.config.flush_bytes
            || age.is_some_and(|a| a >= self.inner.config.flush_age)
            || !self.inner.buffer.persisting().is_empty();
        if due {
            self.flush().await?;
        }
        Ok(due)
    }

    /// Gives every file what the catalog keeps beside it but older versions did not write: the
    /// trace-id filter of a table with trace ids, the rollup of a spans file. Reads each such
    /// file once. Returns how many files it filled in.
    pub async fn fill_missing_file_summaries(&self) -> Result<usize> {
        // Per file: (wants its trace-id filter, wants its rollup).
        let missing: Vec<_> = self
            .inner
            .buffer
            .files()
            .into_iter()
            .map(|f| {
                let wants = (
                    f.table.has_trace_ids() && f.trace_ids.is_none(),
                    f.table == Table::Spans && !f.has_rollup,
                );
                (f, wants)
            })
            .filter(|(_, (filter, rollup))| *filter || *rollup)
            .collect();
        for (f, (want_filter, want_rollup)) in &missing {
            let (want_filter, want_rollup) = (*want_filter, *want_rollup);
            let bytes = self
                .inner
                .object_store
                .get(&object_store::path::Path::from(f.path.as_str()))
                .await?
                .bytes()
                .await?;
            let (filter, rollup) = tokio::task::spawn_blocking(move || {
                let filter = match want_filter {
                    true => Some(trace_filter::read_from_parquet(bytes.clone())?),
                    false => None,
                };
                let rollup = match want_rollup {
                    true => Some(rollup::read_from_parquet(bytes)?),
                    false => None,
                };
                Ok::<_, StoreError>((filter, rollup))
            })
            .await
            .map_err(|e| StoreError::Corrupt(format!("file summary task failed: {e}")))??;
            if let Some(filter) = &filter {
                self.inner
                    .catalog
                    .set_trace_id_filter(&f.path, filter)
                    .await?;
            }
            if let Some(rollup) = &rollup {
                self.inner.catalog.set_span_rollup(&f.path, rollup).await?;
            }
            self.inner.buffer.update_file(ParquetFile {
                trace_ids: filter.or_else(|| f.trace_ids.clone()),
                has_rollup: f.has_rollup || rollup.is_some(),
                ..ParquetFile::clone(f)
            });
        }
        Ok(missing.len())
    }

    /// Rollup rows of `project`'s spans that started in `[from, to)` widened to whole minutes,
    /// of one route or all: the stored rollups of the flushed files and the buffered rows
    /// summarized now, as one snapshot saw them. `None` while a file in the range has no rollup
    /// yet (written by an older version and not yet filled in): read the spans instead.
    pub async fn span_rollups(
        &self,
        project: &str,
        route: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Option<Vec<rollup::RollupRow>>> {
        let first = from.div_euclid(rollup::NANOS_PER_MINUTE) * rollup::NANOS_PER_MINUTE;
        let snapshot = self.inner.buffer.snapshot(Table::Spans, project);
        let files: Vec<&ParquetFile> = snapshot
            .files
            .iter()
            .filter(|f| f.max_time >= first && f.min_time < to)
            .map(|f| f.as_ref())
            .collect();
        if files.iter().any(|f| !f.has_rollup) {
            return Ok(None);
        }
        let mut stored: std::collections::HashMap<String, Vec<u8>> = match files.is_empty() {
            true => Default::default(),
            false => self
                .inner
                .catalog
                .span_rollups(project, first, to)
                .await?
                .into_iter()
                .collect(),
        };
        // Only the snapshot's files: the catalog may already list files committed after it,
        // whose rows the snapshot still holds in memory.
        let mut blobs = Vec::with_capacity(files.len());
        for f in &files {
            match stored.remove(&f.path) {
                Some(b) => blobs.push(b),
                None => return Ok(None),
            }
        }
        let (route, batches) = (route.map(str::to_string), snapshot.batches);
        tokio::task::spawn_blocking(move || {
            let wanted = |r: &rollup::RollupRow| {
                r.minute >= first
                    && r.minute < to
                    && route.as_deref().is_none_or(|x| x == &*r.route)
            };
            let mut rows = Vec::new();
            for b in blobs {
                let Some(r) = rollup::SpanRollup::from_bytes(&b)? else {
                    return Ok(None);
                };
                rows.extend(r.rows.into_iter().filter(wanted));
            }
            let mut tail = rollup::RollupBuilder::new(route.as_deref());
            for b in &batches {
                tail.add(b)?;
            }
            rows.extend(tail.finish().rows.into_iter().filter(wanted));
            Ok(Some(rows))
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("rollup task failed: {e}")))?
    }

    /// Runs the background flush until the returned handle is aborted. Beside it, once, fills
    /// in missing trace-id filters and rollups (an upgraded data dir gets fast trace lookups and
    /// dashboards) without holding up the first flush.
    pub fn spawn_flusher(&self, tick: Duration) -> tokio::task::JoinHandle<()> {
        let filler = self.clone();
        tokio::spawn(async move {
            match filler.fill_missing_file_summaries().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    files = n,
                    "filled in trace-id filters and rollups of older files"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not fill in trace-id filters and rollups; trace lookups open more files and dashboards read spans")
                }
            }
        });
        let store = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = store.inner.buffer.flush_wanted() => {}
                }
                if let Err(e) = store.maybe_flush().await {
                    tracing::error!(error = %e, "flush failed; rows stay in the WAL and memory and the flush is retried");
                }
            }
        })
    }

    /// Flushes what is buffered and closes the catalog.
    pub async fn shutdown(&self) -> Result<()> {
        self.flush().await?;
        self.inner.catalog.close().await;
        Ok(())
    }
}

/// Takes an exclusive lock on the data directory so two servers never share one WAL.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Config(format!(
            "data directory {} is in use by another Plumb process; stop it, or query it with --url",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{spans_batch, SpanRecord};

    /// A span of route "svc/chat" that starts `after_ns` into 2025-11-23 12:00 UTC.
    fn span(project: &str, trace: usize, span: usize, after_ns: i64) -> SpanRecord {
        let start = 1_763_899_200_000_000_000 + after_ns;
        let mut row = records::test_span(project, trace, span, start, start + 5);
        row.gen_ai.route = "svc/chat".into();
        row
    }

    fn spans(project: &str, n: usize, offset: usize) -> RecordBatch {
        let rows: Vec<SpanRecord> = (0..n)
            .map(|i| {
                span(
                    project,
                    i + offset + 1,
                    i + offset + 1,
                    i as i64 * 1_000_000,
                )
            })
            .collect();
        spans_batch(&rows).unwrap()
    }

    async fn count(store: &Store, project: &str) -> i64 {
        let out = store
            .sql(
                project,
                "SELECT count(*) AS n, count(DISTINCT span_id) AS d FROM spans",
            )
            .await
            .unwrap();
        let rows = query::to_json_rows(&out).unwrap();
        assert_eq!(rows.rows[0][0], rows.rows[0][1], "a span was seen twice");
        // The same count reading no column at all.
        let bare = store
            .sql(project, "SELECT count(*) FROM spans")
            .await
            .unwrap();
        assert_eq!(
            query::to_json_rows(&bare).unwrap().rows[0][0],
            rows.rows[0][0]
        );
        rows.rows[0][0].as_i64().unwrap()
    }

    /// Empties a per-file column of the catalog, as in a data dir from before it was kept.
    async fn forget_in_catalog(dir: &Path, column: &str) {
        let db =
            sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("catalog.db").display()))
                .await
                .unwrap();
        sqlx::query(&format!("UPDATE parquet_files SET {column} = NULL"))
            .execute(&db)
            .await
            .unwrap();
        db.close().await;
    }

    /// The plan of `sql` in project "p", as text.
    async fn plan_of(store: &Store, sql: &str) -> String {
        let out = store.sql("p", &format!("EXPLAIN {sql}")).await.unwrap();
        serde_json::to_string(&query::to_json_rows(&out).unwrap().rows).unwrap()
    }

    /// How many Parquet files the plan of `sql` would open.
    async fn files_opened(store: &Store, sql: &str) -> usize {
        plan_of(store, sql).await.matches(".parquet").count()
    }

    /// A store in `dir` with `files` flushed files of 100 spans each in project "p".
    async fn store_with_files(dir: &Path, files: usize) -> Store {
        let (store, _) = Store::open(StoreConfig::new(dir)).await.unwrap();
        for flush in 0..files {
            store
                .write(Table::Spans, "p", spans("p", 100, flush * 1000))
                .await
                .unwrap();
            store.flush().await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn trace_lookups_open_only_files_that_may_hold_the_trace() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_files(dir.path(), 3).await;
        let one = format!("SELECT span_id FROM spans WHERE trace_id = '{:032x}'", 1001);
        let two = format!(
            "SELECT span_id FROM spans WHERE trace_id IN ('{:032x}', '{:032x}')",
            1, 2001
        );
        assert_eq!(files_opened(&store, "SELECT span_id FROM spans").await, 3);
        assert_eq!(files_opened(&store, &one).await, 1);
        assert_eq!(files_opened(&store, &two).await, 2);
        let found = store.sql("p", &one).await.unwrap();
        assert_eq!(found.num_rows(), 1);
        store.shutdown().await.unwrap();
        drop(store);

        // A data dir from before the catalog kept filters: lookups open every file until the
        // filters are filled in.
        forget_in_catalog(dir.path(), "trace_id_filter").await;
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        assert_eq!(files_opened(&store, &one).await, 3);
        assert_eq!(store.fill_missing_file_summaries().await.unwrap(), 3);
        assert_eq!(files_opened(&store, &one).await, 1);
        assert_eq!(store.fill_missing_file_summaries().await.unwrap(), 0);
        assert_eq!(store.sql("p", &one).await.unwrap().num_rows(), 1);
    }

    #[tokio::test]
    async fn file_footers_are_parsed_once_and_kept_for_later_queries() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_files(dir.path(), 2).await;
        assert_eq!(store.query_engine().cached_footers(), 0);
        assert_eq!(count(&store, "p").await, 200);
        assert_eq!(store.query_engine().cached_footers(), 2);
        assert_eq!(count(&store, "p").await, 200);
        assert_eq!(store.query_engine().cached_footers(), 2);
        // The page index comes with the footer, so the cache serves filtered scans too (the
        // scan would otherwise read it from the file on every query, outside the cache).
        assert_eq!(store.query_engine().cached_page_indexes(), 2);
    }

    #[tokio::test]
    async fn trace_lookups_decode_text_apart_and_return_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        // One trace of 20,000 spans: more rows than one scan batch, so the two halves of the
        // lookup are joined across batch boundaries. Another trace around it.
        let rows: Vec<SpanRecord> = (0..30_000usize)
            .map(|i| {
                let mut row = span("p", 1 + (i % 3 == 0) as usize, i, i as i64 * 1_000);
                row.span_name = format!("chat {i}");
                row.gen_ai.input_text = Some(format!("question {i}"));
                row.gen_ai.output_text = (i % 7 != 0).then(|| format!("answer {i}"));
                row
            })
            .collect();
        // In four files, so that the scans have several partitions whose rows must not mix.
        for part in rows.chunks(7_500) {
            store
                .write(Table::Spans, "p", spans_batch(part).unwrap())
                .await
                .unwrap();
            store.flush().await.unwrap();
        }

        let trace = format!("{:032x}", 1);
        let lookup = format!("SELECT * FROM spans WHERE trace_id = '{trace}' ORDER BY span_id");
        let plan = plan_of(&store, &lookup).await;
        assert!(plan.contains("ColumnZipExec"), "{plan}");
        // The same rows through a plain scan (no trace-id filter, so no split).
        let plain =
            format!("SELECT * FROM spans WHERE concat(trace_id, '') = '{trace}' ORDER BY span_id");
        let plan = plan_of(&store, &plain).await;
        assert!(!plan.contains("ColumnZipExec"), "{plan}");

        let whole = query::to_json_rows(&store.sql("p", &plain).await.unwrap()).unwrap();
        let mut split = whole.clone();
        // Which partition finishes first varies from run to run.
        for _ in 0..5 {
            split = query::to_json_rows(&store.sql("p", &lookup).await.unwrap()).unwrap();
            assert_eq!(split.rows.len(), 20_000);
            assert_eq!(split.columns, whole.columns);
            assert!(
                split.rows == whole.rows,
                "the zipped lookup paired rows wrongly"
            );
        }
        let row = &split.rows[5];
        let col = |name: &str| split.columns.iter().position(|c| c == name).unwrap();
        let i = u64::from_str_radix(row[col("span_id")].as_str().unwrap(), 16).unwrap();
        assert_eq!(row[col("input_text")], format!("question {i}"));
        assert_eq!(row[col("span_name")], format!("chat {i}"));

        // The prompts alone (with the filter's column): still two halves, the same rows.
        let text = format!("SELECT input_text FROM spans WHERE trace_id = '{trace}'");
        assert_eq!(store.sql("p", &text).await.unwrap().num_rows(), 20_000);
        // No text: one scan, since both halves would read the filter's column.
        let ids = format!("SELECT span_id FROM spans WHERE trace_id = '{trace}'");
        let plan = plan_of(&store, &ids).await;
        assert!(!plan.contains("ColumnZipExec"), "{plan}");
    }

    #[tokio::test]
    async fn categorical_group_keys_are_grouped_by_id_with_the_same_results() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        // Short names (inline in a string view), long ones (in the view's buffer) and nulls;
        // three flushed files and rows still in the write buffer.
        let models = [
            Some("gpt-4o"),
            Some("llama-3.1-8b-instruct"),
            None,
            Some("qwen2.5-32b-instruct"),
            Some("claude-3-5-haiku"),
        ];
        let rows: Vec<SpanRecord> = (0..12_000usize)
            .map(|i| {
                let mut row = span("p", i + 1, i + 1, i as i64 * 1_000);
                row.service_name = ["support-api", "a-much-longer-service-name"][i % 2].into();
                row.gen_ai.route = format!("route/number-{}", i % 7);
                row.gen_ai.request_model = models[(i / 3 + i % 5) % models.len()].map(String::from);
                row.status_code = if i % 11 == 0 { "ERROR" } else { "UNSET" };
                // Token counts with nulls, all null for one model.
                let model = row.gen_ai.request_model.as_deref();
                row.gen_ai.usage_input_tokens =
                    (i % 3 != 0 && model != Some("gpt-4o")).then_some(i as i64);
                row.gen_ai.usage_output_tokens = (i % 5 != 0).then_some(7 * i as i64);
                row
            })
            .collect();
        for (i, part) in rows.chunks(3_000).enumerate() {
            store
                .write(Table::Spans, "p", spans_batch(part).unwrap())
                .await
                .unwrap();
            if i < 3 {
                store.flush().await.unwrap();
            }
        }

        // Each query next to the same one grouped by an expression, which the rule leaves to
        // DataFusion's own string grouping.
        let pairs = [
            (
                "SELECT gen_ai_request_model AS k, sum(gen_ai_usage_input_tokens) AS i, \
                 sum(gen_ai_usage_input_tokens) + sum(gen_ai_usage_output_tokens) AS t, \
                 sum(gen_ai_usage_output_tokens * 1.0) AS d, \
                 count(gen_ai_usage_input_tokens) AS c, \
                 avg(gen_ai_usage_input_tokens * 1.0) AS a FROM spans GROUP BY gen_ai_request_model \
                 ORDER BY k NULLS FIRST",
                "SELECT substr(gen_ai_request_model, 1) AS k, sum(gen_ai_usage_input_tokens) AS i, \
                 sum(gen_ai_usage_input_tokens) + sum(gen_ai_usage_output_tokens) AS t, \
                 sum(gen_ai_usage_output_tokens * 1.0) AS d, \
                 count(gen_ai_usage_input_tokens) AS c, \
                 avg(gen_ai_usage_input_tokens * 1.0) AS a FROM spans GROUP BY substr(gen_ai_request_model, 1) \
                 ORDER BY k NULLS FIRST",
            ),
            (
                "SELECT gen_ai_request_model AS k, count(*) AS n, \
                 avg(CASE WHEN status_code = 'ERROR' THEN 1.0 ELSE 0.0 END) AS e \
                 FROM spans GROUP BY gen_ai_request_model ORDER BY k NULLS FIRST",
                "SELECT substr(gen_ai_request_model, 1) AS k, count(*) AS n, \
                 avg(CASE WHEN status_code = 'ERROR' THEN 1.0 ELSE 0.0 END) AS e \
                 FROM spans GROUP BY substr(gen_ai_request_model, 1) ORDER BY k NULLS FIRST",
            ),
            (
                "SELECT service_name, route, count(*) AS n FROM spans \
                 GROUP BY service_name, route HAVING count(*) > 800 ORDER BY 1, 2",
                "SELECT substr(service_name, 1), substr(route, 1), count(*) AS n FROM spans \
                 GROUP BY substr(service_name, 1), substr(route, 1) HAVING count(*) > 800 \
                 ORDER BY 1, 2",
            ),
            (
                "SELECT DISTINCT route FROM spans ORDER BY route",
                "SELECT DISTINCT substr(route, 1) FROM spans ORDER BY 1",
            ),
            (
                "SELECT service_name, count(DISTINCT gen_ai_request_model) AS m FROM spans \
                 GROUP BY service_name ORDER BY 1",
                "SELECT substr(service_name, 1), count(DISTINCT substr(gen_ai_request_model, 1)) \
                 AS m FROM spans GROUP BY substr(service_name, 1) ORDER BY 1",
            ),
            // Floating-point sums may add up in another order (rounded here); the others hold
            // whole numbers, which add up exactly in any order.
            (
                "SELECT status_code AS k, count(*) FILTER (WHERE gen_ai_request_model IS NULL) AS a, \
                 min(start_time) AS b, max(span_name) AS c, round(avg(duration_ms), 9) AS d, \
                 count(gen_ai_request_model) AS e FROM spans GROUP BY status_code ORDER BY k",
                "SELECT substr(status_code, 1) AS k, \
                 count(*) FILTER (WHERE gen_ai_request_model IS NULL) AS a, \
                 min(start_time) AS b, max(span_name) AS c, round(avg(duration_ms), 9) AS d, \
                 count(gen_ai_request_model) AS e FROM spans GROUP BY substr(status_code, 1) ORDER BY k",
            ),
            (
                "SELECT route, span_id, count(*) FROM spans GROUP BY route, span_id \
                 ORDER BY 1, 2 LIMIT 50",
                "SELECT substr(route, 1), span_id, count(*) FROM spans \
                 GROUP BY substr(route, 1), span_id ORDER BY 1, 2 LIMIT 50",
            ),
        ];
        for (by_id, by_string) in pairs {
            let plan = plan_of(&store, by_id).await;
            assert!(plan.contains("plumb_group_key"), "{plan}");
            assert!(!plan_of(&store, by_string).await.contains("plumb_group_key"));
            let got = query::to_json_rows(&store.sql("p", by_id).await.unwrap()).unwrap();
            let want = query::to_json_rows(&store.sql("p", by_string).await.unwrap()).unwrap();
            assert!(!got.rows.is_empty(), "{by_id}");
            assert_eq!(got.rows, want.rows, "{by_id}");
        }
        // One key: its partial aggregate indexes groups by id, without hashing.
        for single_key in [0, 1, 3, 5] {
            let plan = plan_of(&store, pairs[single_key].0).await;
            assert!(plan.contains("DenseIdAggregateExec"), "{plan}");
        }
        // Two keys: DataFusion's own aggregate, over the ids.
        assert!(!plan_of(&store, pairs[2].0)
            .await
            .contains("DenseIdAggregateExec"));
        // The columns keep their names and types.
        let out = store.sql("p", pairs[0].0).await.unwrap();
        assert_eq!(out.schema.field(0).name(), "k");
        assert_eq!(
            out.schema.field(0).data_type(),
            &crate::schema::categorical_type()
        );
        let nulls = query::to_json_rows(&out).unwrap();
        assert!(
            nulls.rows[0][0].is_null(),
            "null models form their own group"
        );
        // Ids and other free-form strings keep DataFusion's own grouping.
        let plan = plan_of(
            &store,
            "SELECT trace_id, count(*) FROM spans GROUP BY trace_id",
        )
        .await;
        assert!(!plan.contains("plumb_group_key"), "{plan}");
    }

    #[tokio::test]
    async fn files_from_before_categorical_dictionaries_answer_the_same() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use parquet::arrow::ArrowWriter;

        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<SpanRecord> = (0..2_000usize)
            .map(|i| {
                let mut row = span("p", i + 1, i + 1, i as i64 * 1_000);
                row.service_name = ["support-api", "search"][i % 2].into();
                row.gen_ai.request_model = Some(["gpt-4o", "llama-3.1-8b"][i % 3 % 2].into());
                row.status_code = if i % 5 == 0 { "ERROR" } else { "OK" };
                row
            })
            .collect();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        for part in rows.chunks(1_000) {
            let batch = spans_batch(part).unwrap();
            store.write(Table::Spans, "p", batch).await.unwrap();
            store.flush().await.unwrap();
        }
        let files = store.inner.catalog.files().await.unwrap();
        assert_eq!(files.len(), 2);
        // Rewrite the first file as Plumb wrote files before: categorical columns as plain
        // strings in the file's Arrow schema.
        let old = &files[0];
        let path = object_store::path::Path::from(old.path.as_str());
        let bytes = store
            .inner
            .object_store
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let stored = Table::Spans.schema();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(
            &mut out,
            stored.clone(),
            Some(persister::writer_properties(Table::Spans, 1_000)),
        )
        .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            assert_eq!(
                batch
                    .schema()
                    .field_with_name("service_name")
                    .unwrap()
                    .data_type(),
                &schema::categorical_type(),
                "files are written with dictionaries now"
            );
            w.write(&schema::cast_batch(&batch, &stored).unwrap())
                .unwrap();
        }
        w.close().unwrap();
        let size = out.len();
        store
            .inner
            .object_store
            .put(&path, out.into())
            .await
            .unwrap();
        store.shutdown().await.unwrap();
        drop(store);
        let db = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path().join("catalog.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("UPDATE parquet_files SET size_bytes = ? WHERE path = ?")
            .bind(size as i64)
            .bind(&old.path)
            .execute(&db)
            .await
            .unwrap();
        db.close().await;

        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        let sql = "SELECT service_name, gen_ai_request_model, count(*) AS n, \
                   sum(CASE WHEN status_code = 'ERROR' THEN 1 ELSE 0 END) AS errors \
                   FROM spans GROUP BY service_name, gen_ai_request_model ORDER BY 1, 2";
        let got = query::to_json_rows(&store.sql("p", sql).await.unwrap()).unwrap();
        let mut want = std::collections::BTreeMap::new();
        for r in &rows {
            let e = want
                .entry((
                    r.service_name.to_string(),
                    r.gen_ai.request_model.clone().unwrap(),
                ))
                .or_insert((0, 0));
            e.0 += 1;
            e.1 += (r.status_code == "ERROR") as i64;
        }
        let want: Vec<serde_json::Value> = want
            .into_iter()
            .map(|((s, m), (n, e))| serde_json::json!([s, m, n, e]))
            .collect();
        assert_eq!(
            serde_json::Value::from(got.rows),
            serde_json::Value::from(want)
        );
        let one =
            "SELECT count(*) FROM spans WHERE service_name = 'search' AND status_code = 'ERROR'";
        let n = query::to_json_rows(&store.sql("p", one).await.unwrap()).unwrap();
        let expected = rows
            .iter()
            .filter(|r| r.service_name.as_ref() == "search" && r.status_code == "ERROR")
            .count();
        assert_eq!(n.rows[0][0].as_u64().unwrap() as usize, expected);
    }

    /// Requests per route from the rollups, sorted.
    async fn rolled_up_requests(store: &Store, route: Option<&str>) -> Option<Vec<(String, u64)>> {
        let rows = store.span_rollups("p", route, 0, i64::MAX).await.unwrap()?;
        let mut by_route = std::collections::BTreeMap::new();
        for r in rows {
            *by_route.entry(r.route.to_string()).or_insert(0) += r.traffic.requests;
        }
        Some(by_route.into_iter().collect())
    }

    #[tokio::test]
    async fn rollups_count_flushed_and_buffered_spans_once_and_are_filled_in_for_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        store
            .write(Table::Spans, "p", spans("p", 100, 0))
            .await
            .unwrap();
        store.flush().await.unwrap();
        let mut other = spans("p", 7, 1000);
        let routes = arrow::array::StringArray::from(vec!["other"; 7]);
        let i = other.schema().index_of("route").unwrap();
        let mut columns = other.columns().to_vec();
        columns[i] = Arc::new(routes);
        other = RecordBatch::try_new(other.schema(), columns).unwrap();
        store.write(Table::Spans, "p", other).await.unwrap();
        store
            .write(Table::Spans, "q", spans("q", 5, 0))
            .await
            .unwrap();
        let expected = vec![("other".to_string(), 7), ("svc/chat".to_string(), 100)];
        assert_eq!(
            rolled_up_requests(&store, None).await,
            Some(expected.clone())
        );
        assert_eq!(
            rolled_up_requests(&store, Some("other")).await,
            Some(vec![("other".to_string(), 7)])
        );
        // The range is widened to whole minutes: the spans start within the first minute.
        let start = 1_763_899_200_000_000_000;
        let rows = store
            .span_rollups("p", None, start + 1, start + 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rows.iter().map(|r| r.traffic.requests).sum::<u64>(), 107);
        let later = store
            .span_rollups("p", None, start + 60_000_000_000, i64::MAX)
            .await;
        assert_eq!(later.unwrap().unwrap().len(), 0);
        store.shutdown().await.unwrap();
        drop(store);

        // Files from before rollups were kept: no answer until they are filled in.
        forget_in_catalog(dir.path(), "span_rollup").await;
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        assert_eq!(rolled_up_requests(&store, None).await, None);
        assert_eq!(
            store.fill_missing_file_summaries().await.unwrap(),
            3,
            "two files of p, one of q"
        );
        assert_eq!(rolled_up_requests(&store, None).await, Some(expected));
        assert_eq!(store.fill_missing_file_summaries().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn rows_are_seen_once_before_during_and_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        store
            .write(Table::Spans, "p", spans("p", 10, 0))
            .await
            .unwrap();
        assert_eq!(count(&store, "p").await, 10);
        assert_eq!(store.flush().await.unwrap(), 1);
        store
            .write(Table::Spans, "p", spans("p", 5, 100))
            .await
            .unwrap();
        assert_eq!(count(&store, "p").await, 15);
        store.shutdown().await.unwrap();
        drop(store);
        let (store, replay) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        assert_eq!(replay.rows, 0, "everything was flushed at shutdown");
        assert_eq!(count(&store, "p").await, 15);
    }

    #[tokio::test]
    async fn a_flush_given_up_after_its_catalog_commit_still_completes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        store
            .write(Table::Spans, "p", spans("p", 10, 0))
            .await
            .unwrap();
        // Drive a flush until its files are in the catalog, then drop it there (as a server
        // shutting down aborts its background flusher): the rows must not be persisted again.
        // It is polled by hand so that nothing runs it past the commit before it is dropped.
        let mut flush = Box::pin(store.flush());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        while store.catalog().files().await.unwrap().is_empty() {
            if std::future::Future::poll(flush.as_mut(), &mut cx).is_ready() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(flush);
        store.flush().await.unwrap();
        assert_eq!(count(&store, "p").await, 10);
        assert_eq!(store.catalog().files().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn replayed_rows_count_their_size_once_and_are_flushed_once() {
        let dir = tempfile::tempdir().unwrap();
        let written_bytes = {
            let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
            for b in 0..150 {
                store
                    .write(Table::Spans, "p", spans("p", 50, b * 50))
                    .await
                    .unwrap();
            }
            store.buffer().active_size().0
        };
        let (store, replay) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        assert_eq!(replay.rows, 7500);
        // About what the writes took, not once per column: else a restart after a crash finds
        // its buffer "full" and holds new writes until the replayed rows are flushed.
        let replayed_bytes = store.buffer().active_size().0;
        assert!(
            replayed_bytes < written_bytes * 2,
            "{replayed_bytes} bytes replayed, {written_bytes} written"
        );
        assert_eq!(count(&store, "p").await, 7500);
        store.shutdown().await.unwrap();
        drop(store);
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        assert_eq!(count(&store, "p").await, 7500);
    }

    #[tokio::test]
    async fn spans_are_stamped_when_accepted_and_visible_through_that_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        let before = store.visible_through();
        store
            .write(Table::Spans, "p", spans("p", 3, 0))
            .await
            .unwrap();
        let after = store.visible_through();
        let out = store
            .sql(
                "p",
                "SELECT count(*), min(CAST(observed_time AS BIGINT)), max(CAST(observed_time AS BIGINT)) FROM spans",
            )
            .await
            .unwrap();
        let row = &query::to_json_rows(&out).unwrap().rows[0];
        assert_eq!(row[0], 3);
        let (lo, hi) = (row[1].as_i64().unwrap(), row[2].as_i64().unwrap());
        assert_eq!(lo, hi, "one write, one stamp");
        assert!(before < lo && lo <= after, "{before} < {lo} <= {after}");
    }

    #[tokio::test]
    async fn a_store_with_its_catalog_in_postgres_flushes_and_reopens() {
        let pg = crate::catalog::temp_postgres::TempPostgres::start();
        let dir = tempfile::tempdir().unwrap();
        let config = || StoreConfig {
            catalog_url: Some(pg.url.clone()),
            ..StoreConfig::new(dir.path())
        };
        let (store, _) = Store::open(config()).await.unwrap();
        store
            .write(Table::Spans, "p", spans("p", 10, 0))
            .await
            .unwrap();
        store.flush().await.unwrap();
        store
            .write(Table::Spans, "p", spans("p", 5, 100))
            .await
            .unwrap();
        store.shutdown().await.unwrap();
        drop(store);
        let (store, replay) = Store::open(config()).await.unwrap();
        assert_eq!(replay.rows, 0);
        assert_eq!(count(&store, "p").await, 15);
        assert!(
            !dir.path().join("catalog.db").exists(),
            "no SQLite catalog beside PostgreSQL"
        );
    }

    #[tokio::test]
    async fn projects_never_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        store
            .write(Table::Spans, "a", spans("a", 3, 0))
            .await
            .unwrap();
        store
            .write(Table::Spans, "b", spans("b", 4, 0))
            .await
            .unwrap();
        store.flush().await.unwrap();
        store
            .write(Table::Spans, "b", spans("b", 1, 50))
            .await
            .unwrap();
        assert_eq!(count(&store, "a").await, 3);
        assert_eq!(count(&store, "b").await, 5);
        // Even a filter on another project's name finds nothing.
        let out = store
            .sql("a", "SELECT count(*) FROM spans WHERE project = 'b'")
            .await
            .unwrap();
        assert_eq!(query::to_json_rows(&out).unwrap().rows[0][0], 0);
    }

    #[tokio::test]
    async fn a_second_process_cannot_open_the_same_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        let err = Store::open(StoreConfig::new(dir.path()))
            .await
            .err()
            .expect("locked");
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[tokio::test]
    async fn queries_are_bounded_in_memory_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.query_limits.memory_bytes = 64 * 1024;
        let (store, _) = Store::open(config).await.unwrap();
        let big_sort =
            "SELECT value FROM generate_series(1, 5000000) AS t(value) ORDER BY value DESC";
        match store.sql("p", big_sort).await {
            Err(QueryError::MemoryLimit { limit, .. }) => assert_eq!(limit, 64 * 1024),
            other => panic!("expected the memory limit, got {other:?}"),
        }
        drop(store);
        let mut config = StoreConfig::new(dir.path());
        config.query_limits.timeout = Duration::ZERO;
        let (store, _) = Store::open(config).await.unwrap();
        assert!(matches!(
            store.sql("p", big_sort).await,
            Err(QueryError::Timeout(_))
        ));
    }
}

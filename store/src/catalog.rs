//! The catalog: which Parquet files exist, and how far the write-ahead log is persisted.
//!
//! It lives in a SQL database (SQLite under the data dir by default) so that a query never has
//! to LIST the bucket, and so that "these files are now visible" and "the WAL up to segment N
//! is persisted" commit in one transaction: a crash on either side of that commit neither loses
//! nor duplicates a row. The same database keeps the alerting state ([`alerts`]).

pub mod alerts;

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::error::Result;
use crate::schema::Table;
use crate::trace_filter::TraceIdFilter;

/// One persisted Parquet file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetFile {
    pub project: String,
    pub table: Table,
    /// Path inside the object store.
    pub path: String,
    pub size_bytes: u64,
    pub row_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    /// The trace ids in the file, for tables that have them.
    pub trace_ids: Option<TraceIdFilter>,
}

impl ParquetFile {
    /// False when the file certainly holds none of these trace ids. A file without a filter
    /// may hold any.
    pub fn may_hold_any_trace(&self, trace_ids: &[String]) -> bool {
        match &self.trace_ids {
            Some(f) => trace_ids.iter().any(|id| f.might_contain(id)),
            None => true,
        }
    }
}

#[derive(Clone)]
pub struct Catalog {
    pool: SqlitePool,
}

impl Catalog {
    /// Opens (creating and migrating if needed) the SQLite catalog at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Catalog> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Catalog { pool })
    }

    pub async fn files(&self) -> Result<Vec<ParquetFile>> {
        let rows = sqlx::query(
            "SELECT project, table_name, path, size_bytes, row_count, min_time, max_time, \
             trace_id_filter FROM parquet_files ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let table: String = r.get(1);
            let Some(table) = Table::from_name(&table) else {
                tracing::warn!(table, "catalog lists a file of an unknown table; skipped");
                continue;
            };
            let trace_ids = match r.get::<Option<Vec<u8>>, _>(7) {
                Some(bytes) => Some(TraceIdFilter::from_bytes(&bytes)?),
                None => None,
            };
            out.push(ParquetFile {
                project: r.get(0),
                table,
                path: r.get(2),
                size_bytes: r.get::<i64, _>(3) as u64,
                row_count: r.get::<i64, _>(4) as u64,
                min_time: r.get(5),
                max_time: r.get(6),
                trace_ids,
            });
        }
        Ok(out)
    }

    pub async fn flushed_through_segment(&self) -> Result<u64> {
        let v: i64 =
            sqlx::query_scalar("SELECT flushed_through_segment FROM wal_checkpoint WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(v as u64)
    }

    /// Records new files and the WAL checkpoint they complete, atomically.
    pub async fn commit_flush(&self, files: &[ParquetFile], through_segment: u64) -> Result<()> {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        for f in files {
            sqlx::query(
                "INSERT INTO parquet_files \
                 (project, table_name, path, size_bytes, row_count, min_time, max_time, created_at, \
                  trace_id_filter) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&f.project)
            .bind(f.table.name())
            .bind(&f.path)
            .bind(f.size_bytes as i64)
            .bind(f.row_count as i64)
            .bind(f.min_time)
            .bind(f.max_time)
            .bind(now)
            .bind(f.trace_ids.as_ref().map(|t| t.to_bytes()).transpose()?)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE wal_checkpoint SET flushed_through_segment = MAX(flushed_through_segment, ?) WHERE id = 1")
            .bind(through_segment as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the trace-id filter of a file written before filters were kept.
    pub async fn set_trace_id_filter(&self, path: &str, filter: &TraceIdFilter) -> Result<()> {
        sqlx::query("UPDATE parquet_files SET trace_id_filter = ? WHERE path = ?")
            .bind(filter.to_bytes()?)
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commit_is_visible_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let c = Catalog::open_sqlite(&path).await.unwrap();
        assert_eq!(c.flushed_through_segment().await.unwrap(), 0);
        let f = ParquetFile {
            project: "default".into(),
            table: Table::Spans,
            path: "spans/a.parquet".into(),
            size_bytes: 10,
            row_count: 2,
            min_time: 1,
            max_time: 2,
            trace_ids: Some({
                let mut b = crate::trace_filter::TraceIdFilterBuilder::new(2).unwrap();
                b.add_column(&arrow::array::StringArray::from(vec!["ab"]))
                    .unwrap();
                b.finish()
            }),
        };
        c.commit_flush(std::slice::from_ref(&f), 5).await.unwrap();
        c.close().await;
        let c = Catalog::open_sqlite(&path).await.unwrap();
        assert_eq!(c.files().await.unwrap(), vec![f]);
        assert_eq!(c.flushed_through_segment().await.unwrap(), 5);
    }
}

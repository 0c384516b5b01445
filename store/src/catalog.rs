//! The catalog: which Parquet files exist, and how far the write-ahead log is persisted.
//!
//! It lives in a SQL database (SQLite under the data dir by default) so that a query never has
//! to LIST the bucket, and so that "these files are now visible" and "the WAL up to segment N
//! is persisted" commit in one transaction: a crash on either side of that commit neither loses
//! nor duplicates a row. The same database keeps the alerting state ([`alerts`]).
//!
//! SQLite under the data dir is the default; PostgreSQL (`postgres://...`) lets several Plumb
//! processes share one catalog. Both go through sqlx's `Any` driver with one set of queries,
//! written with `?` placeholders and renumbered for PostgreSQL ([`Dialect::sql`]); each database
//! has its own migrations (`migrations/sqlite`, `migrations/postgres`).

pub mod alerts;
#[cfg(test)]
pub(crate) mod temp_postgres;

use std::borrow::Cow;
use std::path::Path;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::error::Result;
use crate::rollup::SpanRollup;
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
    /// Whether the catalog holds the [`SpanRollup`] of this (spans) file; it stays there until
    /// a query asks ([`Catalog::span_rollups`]).
    pub has_rollup: bool,
}

/// A file written by a flush, with what goes to the catalog beside it.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub file: ParquetFile,
    pub rollup: Option<SpanRollup>,
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

/// Which database the catalog is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The query in this database's placeholder syntax: `?` and `?N` become `$N` for
    /// PostgreSQL (outside string literals).
    pub fn sql<'a>(self, query: &'a str) -> Cow<'a, str> {
        if self == Dialect::Sqlite {
            return Cow::Borrowed(query);
        }
        let mut out = String::with_capacity(query.len() + 8);
        let (mut next, mut quoted) = (1, false);
        let mut chars = query.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    out.push(c);
                }
                '?' if !quoted => {
                    let mut digits = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        digits.push(*d);
                        chars.next();
                    }
                    if digits.is_empty() {
                        digits = next.to_string();
                        next += 1;
                    }
                    out.push('$');
                    out.push_str(&digits);
                }
                _ => out.push(c),
            }
        }
        Cow::Owned(out)
    }
}

#[derive(Clone)]
pub struct Catalog {
    pool: AnyPool,
    dialect: Dialect,
}

impl Catalog {
    /// Opens (creating and migrating if needed) the SQLite catalog at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Catalog> {
        Catalog::open_url(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Opens and migrates the catalog at `url`: `postgres://user@host/db` or `sqlite://path`.
    pub async fn open_url(url: &str) -> Result<Catalog> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // Durable commits (a flush is acknowledged by this commit) without
                        // blocking readers.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        match dialect {
            Dialect::Sqlite => sqlx::migrate!("../migrations/sqlite").run(&pool).await?,
            Dialect::Postgres => sqlx::migrate!("../migrations/postgres").run(&pool).await?,
        }
        Ok(Catalog { pool, dialect })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `query` in this catalog's placeholder syntax.
    pub(crate) fn q<'a>(&self, query: &'a str) -> Cow<'a, str> {
        self.dialect.sql(query)
    }

    pub async fn files(&self) -> Result<Vec<ParquetFile>> {
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT project, table_name, path, size_bytes, row_count, min_time, max_time, \
             trace_id_filter, CAST(CASE WHEN span_rollup IS NULL THEN 0 ELSE 1 END AS BIGINT) \
             FROM parquet_files ORDER BY id",
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
                has_rollup: r.get::<i64, _>(8) != 0,
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

    /// Records new files and the WAL checkpoint they complete, atomically. Returns `false`, and
    /// records nothing, when the checkpoint is already at `through_segment` or past it: that
    /// generation was committed before (by an attempt whose outcome its caller never learned, as
    /// when a commit is cut off or reports an error after all), and committing its rows again
    /// would store them twice.
    pub async fn commit_flush(&self, files: &[NewFile], through_segment: u64) -> Result<bool> {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        // The checkpoint first: it takes the write lock at once, and says whether to go on.
        let advanced = sqlx::query(
            &self.q("UPDATE wal_checkpoint SET flushed_through_segment = ? \
             WHERE id = 1 AND flushed_through_segment < ?"),
        )
        .bind(through_segment as i64)
        .bind(through_segment as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if advanced == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let insert = self.q("INSERT INTO parquet_files \
             (project, table_name, path, size_bytes, row_count, min_time, max_time, created_at, \
              trace_id_filter, span_rollup) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        for NewFile { file: f, rollup } in files {
            sqlx::query(&insert)
                .bind(&f.project)
                .bind(f.table.name())
                .bind(&f.path)
                .bind(f.size_bytes as i64)
                .bind(f.row_count as i64)
                .bind(f.min_time)
                .bind(f.max_time)
                .bind(now)
                .bind(f.trace_ids.as_ref().map(|t| t.to_bytes()).transpose()?)
                .bind(rollup.as_ref().map(|r| r.to_bytes()).transpose()?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Stores the trace-id filter of a file written before filters were kept.
    pub async fn set_trace_id_filter(&self, path: &str, filter: &TraceIdFilter) -> Result<()> {
        sqlx::query(&self.q("UPDATE parquet_files SET trace_id_filter = ? WHERE path = ?"))
            .bind(filter.to_bytes()?)
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores the rollup of a spans file written before rollups were kept.
    pub async fn set_span_rollup(&self, path: &str, rollup: &SpanRollup) -> Result<()> {
        sqlx::query(&self.q("UPDATE parquet_files SET span_rollup = ? WHERE path = ?"))
            .bind(rollup.to_bytes()?)
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The stored rollups of `project`'s spans files whose start times overlap `[from, to)`,
    /// by path. A rollup in an encoding this version does not know is left out (the caller
    /// then reads the spans) and rebuilt at the next start.
    pub async fn span_rollups(
        &self,
        project: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let rows: Vec<AnyRow> = sqlx::query(&self.q(
            "SELECT path, span_rollup FROM parquet_files WHERE project = ? AND table_name = 'spans' \
             AND min_time < ? AND max_time >= ? AND span_rollup IS NOT NULL",
        ))
        .bind(project)
        .bind(to)
        .bind(from)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files and the checkpoint commit together and survive a reopen.
    async fn commit_is_visible_after_reopen(url: &str) {
        let c = Catalog::open_url(url).await.unwrap();
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
            has_rollup: true,
        };
        let rollup = SpanRollup {
            rows: vec![crate::rollup::RollupRow {
                route: "r".into(),
                traffic: crate::rollup::Traffic {
                    requests: 3,
                    ..Default::default()
                },
                ..Default::default()
            }],
        };
        let new = NewFile {
            file: f.clone(),
            rollup: Some(rollup.clone()),
        };
        assert!(c.commit_flush(std::slice::from_ref(&new), 5).await.unwrap());
        // A generation is committed once: the checkpoint never moves back, and a second commit
        // of the same one records nothing.
        assert!(!c.commit_flush(&[], 3).await.unwrap());
        let again = NewFile {
            file: ParquetFile {
                path: "spans/project=default/again.parquet".into(),
                ..new.file.clone()
            },
            rollup: None,
        };
        assert!(!c.commit_flush(&[again], 5).await.unwrap());
        c.close().await;
        let c = Catalog::open_url(url).await.unwrap();
        assert_eq!(c.files().await.unwrap(), vec![f]);
        let stored = c.span_rollups("default", 0, 3).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(SpanRollup::from_bytes(&stored[0].1).unwrap(), Some(rollup));
        assert!(c.span_rollups("default", 3, 9).await.unwrap().is_empty());
        assert!(c.span_rollups("other", 0, 3).await.unwrap().is_empty());
        assert_eq!(c.flushed_through_segment().await.unwrap(), 5);
        c.close().await;
    }

    #[tokio::test]
    async fn sqlite_catalog_commits_durably() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("catalog.db").display()
        );
        commit_is_visible_after_reopen(&url).await;
        alerts::tests::alert_tables_work(&url).await;
    }

    #[tokio::test]
    async fn postgres_catalog_commits_durably() {
        let pg = temp_postgres::TempPostgres::start();
        commit_is_visible_after_reopen(&pg.url).await;
        alerts::tests::alert_tables_work(&pg.url).await;
    }

    #[test]
    fn placeholders_are_renumbered_for_postgres() {
        let q = "SELECT '?' FROM t WHERE a = ? AND b = ? OR c = ?1";
        assert_eq!(Dialect::Sqlite.sql(q), q);
        assert_eq!(
            Dialect::Postgres.sql(q),
            "SELECT '?' FROM t WHERE a = $1 AND b = $2 OR c = $1"
        );
    }
}

-- The catalog of persisted Parquet files: queries read this list instead of listing the bucket.
CREATE TABLE parquet_files (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project     TEXT    NOT NULL,
    table_name  TEXT    NOT NULL,
    path        TEXT    NOT NULL UNIQUE,
    size_bytes  INTEGER NOT NULL,
    row_count   INTEGER NOT NULL,
    -- nanoseconds since the Unix epoch, of the table's time column
    min_time    INTEGER NOT NULL,
    max_time    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX parquet_files_by_table ON parquet_files (project, table_name, min_time);

-- How far the write-ahead log is persisted: segments up to this number are in parquet_files.
-- Updated in the same transaction as the files it covers, so replay never repeats a row.
CREATE TABLE wal_checkpoint (
    id                       INTEGER PRIMARY KEY CHECK (id = 1),
    flushed_through_segment  INTEGER NOT NULL
);
INSERT INTO wal_checkpoint (id, flushed_through_segment) VALUES (1, 0);

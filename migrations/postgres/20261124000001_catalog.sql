-- The catalog on PostgreSQL: the same tables as migrations/sqlite, in one step (PostgreSQL
-- catalogs start at this version). Times are nanoseconds since the Unix epoch.

-- Persisted Parquet files: queries read this list instead of listing the bucket.
CREATE TABLE parquet_files (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project          TEXT   NOT NULL,
    table_name       TEXT   NOT NULL,
    path             TEXT   NOT NULL UNIQUE,
    size_bytes       BIGINT NOT NULL,
    row_count        BIGINT NOT NULL,
    min_time         BIGINT NOT NULL,
    max_time         BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    -- Bloom filter of the file's trace ids (Parquet's split-block format).
    trace_id_filter  BYTEA
);
CREATE INDEX parquet_files_by_table ON parquet_files (project, table_name, min_time);

-- How far the write-ahead log is persisted; updated in the flush's transaction.
CREATE TABLE wal_checkpoint (
    id                       INTEGER PRIMARY KEY CHECK (id = 1),
    flushed_through_segment  BIGINT  NOT NULL
);
INSERT INTO wal_checkpoint (id, flushed_through_segment) VALUES (1, 0);

-- Alert rules (JSON documents the evaluators crate interprets).
CREATE TABLE alert_rules (
    project     TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    spec        TEXT   NOT NULL,
    enabled     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (project, name)
);

CREATE TABLE alert_state (
    project       TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    since         BIGINT NOT NULL,
    fired_at      BIGINT,
    value         DOUBLE PRECISION,
    evaluated_at  BIGINT NOT NULL,
    PRIMARY KEY (project, name)
);

-- Webhook outbox; the unique transition key makes a transition's notification single.
CREATE TABLE alert_notifications (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transition_key   TEXT   NOT NULL UNIQUE,
    project          TEXT   NOT NULL,
    rule_name        TEXT   NOT NULL,
    url              TEXT   NOT NULL,
    body             TEXT   NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    delivered_at     BIGINT,
    last_error       TEXT
);
CREATE INDEX alert_notifications_due ON alert_notifications (delivered_at, next_attempt_at);

-- Followers' positions (the online evaluator), by observed_time.
CREATE TABLE cursors (
    name   TEXT   PRIMARY KEY,
    value  BIGINT NOT NULL
);

-- Per-minute summaries of a spans file's rows (store::rollup, postcard-encoded), so that
-- dashboards over long ranges read summaries instead of spans. NULL for other tables, and for
-- spans files written before this column existed until the server fills it in at start-up.
ALTER TABLE parquet_files ADD COLUMN span_rollup BYTEA;

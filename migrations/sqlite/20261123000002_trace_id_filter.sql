-- A bloom filter of each file's trace ids (Parquet's split-block format), so that a trace lookup
-- opens only the files that may hold the trace. NULL for tables without trace ids, and for files
-- written before this column existed until the server fills it in at start-up.
ALTER TABLE parquet_files ADD COLUMN trace_id_filter BLOB;

//! A per-file bloom filter of trace ids, kept in the catalog next to the file it describes.
//!
//! Each Parquet file also carries a bloom filter on `trace_id` in its row groups, but using it
//! means opening the file: with one file per flush and hour, a trace lookup over a day opened
//! dozens of files to find the one or two that hold the trace. With a copy of the filter in the
//! catalog (held in memory by the query engine), a lookup opens only the files that may hold it.
//! The format is Parquet's split-block bloom filter (header and bitset), so the hash is the one
//! Parquet readers use.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::bloom_filter::Sbbf;

use crate::error::{Result, StoreError};
use crate::schema::TRACE_ID;

/// False-positive rate the filters are built for: at ~70 files a day, one needless file open
/// per 15 days of data searched. (At 0.01, a lookup over the benchmark's day of 67 files opened
/// a needless file about every other time. 0.001 takes ~15 bits per trace id instead of ~10:
/// about 6 MB of memory for a day of 10 M spans in 3.4 M traces.)
const FPP: f64 = 0.001;

/// A bloom filter of the trace ids in one file. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TraceIdFilter(Arc<Sbbf>);

impl PartialEq for TraceIdFilter {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes().ok() == other.to_bytes().ok()
    }
}

impl TraceIdFilter {
    /// Serialized as Parquet writes a bloom filter: thrift header, then the bitset.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.0.write(&mut out)?;
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<TraceIdFilter> {
        Ok(TraceIdFilter(Arc::new(Sbbf::from_bytes(bytes)?)))
    }

    /// False means the file certainly holds no span of this trace.
    pub fn might_contain(&self, trace_id: &str) -> bool {
        self.0.check(trace_id.as_bytes())
    }
}

/// Collects the trace ids of a file as its rows are written.
pub struct TraceIdFilterBuilder {
    sbbf: Sbbf,
}

impl TraceIdFilterBuilder {
    /// `max_ids` bounds the number of distinct ids (the file's row count will do): the filter
    /// is sized for it, then folded down to what the ids actually filled.
    pub fn new(max_ids: usize) -> Result<TraceIdFilterBuilder> {
        Ok(TraceIdFilterBuilder {
            sbbf: Sbbf::new_with_ndv_fpp(max_ids.max(1) as u64, FPP)?,
        })
    }

    /// Adds every non-null id of a string column (`Utf8` or `Utf8View`).
    pub fn add_column(&mut self, column: &dyn Array) -> Result<()> {
        match column.data_type() {
            DataType::Utf8 => column
                .as_string::<i32>()
                .iter()
                .flatten()
                .for_each(|id| self.sbbf.insert(id.as_bytes())),
            DataType::Utf8View => column
                .as_string_view()
                .iter()
                .flatten()
                .for_each(|id| self.sbbf.insert(id.as_bytes())),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "trace_id column has type {other}, expected a string"
                )))
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> TraceIdFilter {
        self.sbbf.fold_to_target_fpp(FPP);
        TraceIdFilter(Arc::new(self.sbbf))
    }
}

/// Builds the filter of an existing Parquet file by reading its `trace_id` column alone.
pub fn read_from_parquet(file: bytes::Bytes) -> Result<TraceIdFilter> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let rows = reader.metadata().file_metadata().num_rows().max(0) as usize;
    let mask = ProjectionMask::columns(reader.parquet_schema(), [TRACE_ID]);
    let mut builder = TraceIdFilterBuilder::new(rows)?;
    for batch in reader.with_projection(mask).build()? {
        let batch = batch?;
        let column = batch.column_by_name(TRACE_ID).ok_or_else(|| {
            StoreError::Corrupt("a file of a table with trace ids has no trace_id".into())
        })?;
        builder.add_column(column)?;
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, StringViewArray};

    fn id(i: u64) -> String {
        format!("{:032x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn holds_every_id_and_few_others_after_a_round_trip() {
        let ids: Vec<String> = (0..5_000).map(id).collect();
        let mut b = TraceIdFilterBuilder::new(50_000).unwrap();
        b.add_column(&StringArray::from_iter_values(&ids[..2_500]))
            .unwrap();
        b.add_column(&StringViewArray::from_iter_values(&ids[2_500..]))
            .unwrap();
        let f = TraceIdFilter::from_bytes(&b.finish().to_bytes().unwrap()).unwrap();
        assert!(ids.iter().all(|i| f.might_contain(i)));
        let false_hits = (5_000..105_000)
            .filter(|&i| f.might_contain(&id(i)))
            .count();
        assert!(false_hits < 500, "{false_hits} false positives in 100k");
        // Folding shrank a filter sized for 50k ids (128 KiB) to what 5k ids need (16 KiB and
        // a header).
        let bytes = f.to_bytes().unwrap().len();
        assert!(bytes <= 17 << 10, "{bytes} bytes");
    }
}

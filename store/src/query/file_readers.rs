//! Opens Parquet files for a scan so that each file's footer *and page index* are parsed once
//! per process, not once per query.
//!
//! DataFusion's cached reader keeps whatever metadata the first read asked for. Its scan asks
//! for the footer alone, then loads the page index straight from the file whenever a predicate
//! can use it, outside the cache: every filtered query re-read and re-decoded the page index of
//! every file it opened (6 % of the CPU of a lookup that returns only ids). Asking for the page
//! index with the footer puts both in the cache, and the scan then finds it there. Files never
//! change once written, so a cached index is never stale.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::Result as DfResult;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

/// DataFusion's cached reader factory, with page indexes cached alongside footers.
#[derive(Debug)]
pub struct IndexedFileReaders {
    inner: CachedParquetFileReaderFactory,
}

impl IndexedFileReaders {
    pub fn new(store: Arc<dyn ObjectStore>, metadata_cache: Arc<FileMetadataCache>) -> Self {
        IndexedFileReaders {
            inner: CachedParquetFileReaderFactory::new(store, metadata_cache),
        }
    }
}

impl ParquetFileReaderFactory for IndexedFileReaders {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        let inner = self
            .inner
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(IndexedFileReader { inner }))
    }
}

struct IndexedFileReader {
    inner: Box<dyn AsyncFileReader + Send>,
}

impl AsyncFileReader for IndexedFileReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        // `None` already means "with the page index" for a cached reader.
        let Some(options) = options else {
            return self.inner.get_metadata(None);
        };
        let with_index = options
            .clone()
            .with_page_index_policy(PageIndexPolicy::Optional);
        Box::pin(async move { self.inner.get_metadata(Some(&with_index)).await })
    }
}

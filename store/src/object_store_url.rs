//! Opens the object store that Parquet files go to, from a URL.

use std::path::Path;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::error::{Result, StoreError};

/// `None` means `<data_dir>/objects` on local disk. `s3://bucket/prefix` reads credentials and
/// endpoint from the usual `AWS_*` environment variables (S3-compatible stores included).
pub fn open(data_dir: &Path, url: Option<&str>) -> Result<Arc<dyn ObjectStore>> {
    let Some(url) = url else {
        let dir = data_dir.join("objects");
        std::fs::create_dir_all(&dir)?;
        return Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?));
    };
    let parsed = url::Url::parse(url)
        .map_err(|e| StoreError::Config(format!("object store URL {url:?}: {e}")))?;
    match parsed.scheme() {
        "file" => {
            let dir = parsed
                .to_file_path()
                .map_err(|_| StoreError::Config(format!("{url:?} is not a local path")))?;
            std::fs::create_dir_all(&dir)?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?))
        }
        "memory" => Ok(Arc::new(InMemory::new())),
        "s3" | "s3a" => {
            let s3 = AmazonS3Builder::from_env().with_url(url).build()?;
            let prefix = parsed.path().trim_matches('/');
            if prefix.is_empty() {
                Ok(Arc::new(s3))
            } else {
                Ok(Arc::new(PrefixStore::new(s3, prefix)))
            }
        }
        other => Err(StoreError::Config(format!(
            "object store scheme {other:?} is not supported; use a local path, file://, s3:// or memory://"
        ))),
    }
}

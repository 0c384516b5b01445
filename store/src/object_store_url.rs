//! Opens the object store that Parquet files go to, from a URL.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::error::{Result, StoreError};

/// The store, and its directory when it is the local disk.
pub struct Opened {
    pub store: Arc<dyn ObjectStore>,
    pub local: Option<LocalFiles>,
}

/// A [`LocalFileSystem`] store's directory. Its `put` leaves the new file and any directories it
/// created in the page cache, where a machine crash can lose them after the catalog already names
/// the file and the WAL that held its rows is gone: [`LocalFiles::sync`] makes them durable.
/// (An S3 `put` is durable when it returns.)
#[derive(Debug, Clone)]
pub struct LocalFiles {
    fs: Arc<LocalFileSystem>,
    root: PathBuf,
}

impl LocalFiles {
    fn open(dir: &Path) -> Result<(Arc<LocalFileSystem>, LocalFiles)> {
        std::fs::create_dir_all(dir)?;
        let fs = Arc::new(LocalFileSystem::new_with_prefix(dir)?);
        let root = std::fs::canonicalize(dir)?;
        Ok((fs.clone(), LocalFiles { fs, root }))
    }

    /// Fsyncs the files at these object paths and every directory from theirs up to the root.
    /// Blocking.
    pub fn sync(&self, paths: &[&str]) -> Result<()> {
        let mut dirs = BTreeSet::new();
        for p in paths {
            let file = self
                .fs
                .path_to_filesystem(&object_store::path::Path::from(*p))?;
            std::fs::File::open(&file)?.sync_all()?;
            let mut dir = file.parent();
            while let Some(d) = dir {
                if !d.starts_with(&self.root) || !dirs.insert(d.to_path_buf()) {
                    break;
                }
                dir = d.parent();
            }
        }
        for d in dirs {
            std::fs::File::open(&d)?.sync_all()?;
        }
        Ok(())
    }
}

/// `None` means `<data_dir>/objects` on local disk. `s3://bucket/prefix` reads credentials and
/// endpoint from the usual `AWS_*` environment variables (S3-compatible stores included).
pub fn open(data_dir: &Path, url: Option<&str>) -> Result<Opened> {
    let local = |dir: &Path| {
        let (fs, local) = LocalFiles::open(dir)?;
        Ok(Opened {
            store: fs,
            local: Some(local),
        })
    };
    let Some(url) = url else {
        return local(&data_dir.join("objects"));
    };
    let remote = |store: Arc<dyn ObjectStore>| Ok(Opened { store, local: None });
    let parsed = url::Url::parse(url)
        .map_err(|e| StoreError::Config(format!("object store URL {url:?}: {e}")))?;
    match parsed.scheme() {
        "file" => {
            let dir = parsed
                .to_file_path()
                .map_err(|_| StoreError::Config(format!("{url:?} is not a local path")))?;
            local(&dir)
        }
        "memory" => remote(Arc::new(InMemory::new())),
        "s3" | "s3a" => {
            let s3 = AmazonS3Builder::from_env().with_url(url).build()?;
            let prefix = parsed.path().trim_matches('/');
            if prefix.is_empty() {
                remote(Arc::new(s3))
            } else {
                remote(Arc::new(PrefixStore::new(s3, prefix)))
            }
        }
        other => Err(StoreError::Config(format!(
            "object store scheme {other:?} is not supported; use a local path, file://, s3:// or memory://"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn local_files_sync_what_was_put_and_name_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open(dir.path(), None).unwrap();
        let path = "spans/project=p/date=2025-11-23/hour=12/a.parquet";
        opened
            .store
            .put(&object_store::path::Path::from(path), PutPayload::from("x"))
            .await
            .unwrap();
        let local = opened.local.expect("the default store is local");
        local.sync(&[path]).unwrap();
        assert!(local.sync(&["spans/project=p/missing.parquet"]).is_err());
        assert!(open(dir.path(), Some("memory://")).unwrap().local.is_none());
    }
}

#![doc = include_str!("../README.md")]
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart, local::LocalFileSystem, path::Path,
};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// What can go wrong storing or reading content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The content is larger than the limit the caller set.
    #[error("the content is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// No content under that key.
    #[error("no content under {0:?}")]
    NotFound(String),
    /// The source stream of an upload failed.
    #[error("reading the upload failed: {0}")]
    Source(String),
    /// The storage backend failed.
    #[error("object storage error: {0}")]
    Store(#[from] object_store::Error),
    /// The storage URL is not one this build understands.
    #[error("unsupported storage URL {0:?}: expected file:///PATH or s3://BUCKET[/PREFIX]")]
    UnsupportedUrl(String),
    /// A local directory could not be prepared.
    #[error("cannot use storage directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Shorthand for blob results.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Content length.
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

/// A handle on the object store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store, where a write cut short by a killed process
    /// leaves its staging file (`<key>#<n>`) behind.
    local_root: Option<Arc<PathBuf>>,
}

impl Blobs {
    /// Storage in a local directory (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        let dir_err = |source| BlobError::Dir {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let dir = dir.canonicalize().map_err(dir_err)?;
        let fs = LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(fs),
            local_root: Some(Arc::new(dir)),
        })
    }

    /// Storage named by a URL: `file:///absolute/path` for a local directory, or
    /// `s3://bucket[/prefix]` for S3-compatible storage, configured by the usual
    /// `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` for plain-HTTP
    /// endpoints such as MinIO in a cluster).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_with(url, &[])
    }

    /// [`Blobs::from_url`] with S3 settings given explicitly (e.g. `("endpoint",
    /// "http://127.0.0.1:9000")`, `("allow_http", "true")`) on top of the environment's.
    pub fn from_url_with(url: &str, s3_options: &[(&str, &str)]) -> Result<Self> {
        if let Some(path) = url.strip_prefix("file://") {
            return Self::local(std::path::Path::new(path));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (key, value) in s3_options {
                let key: object_store::aws::AmazonS3ConfigKey = key.parse()?;
                builder = builder.with_config(key, *value);
            }
            let s3 = builder.build()?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            };
            return Ok(Self::new(store));
        }
        Err(BlobError::UnsupportedUrl(url.to_owned()))
    }

    /// Storage in any `object_store` backend.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            local_root: None,
        }
    }

    /// Removes what earlier, interrupted writes of `key` left in a local directory.
    /// `object_store` writes a local file to `<key>#<n>` and renames it into place;
    /// a process killed in between (a worker under `kill -9`, say) leaves that file,
    /// and the next write of the key — a retried job rewriting its output — is where
    /// it is certainly stale: only one attempt of a job holds its lease. S3 has no
    /// such leftovers (an unfinished multipart upload is not an object).
    async fn clear_interrupted_writes(&self, key: &str) {
        let Some(root) = &self.local_root else {
            return;
        };
        let path = root.join(key);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        // object_store names them `#1`, `#2`, … taking the first free number, so what
        // earlier writes left is `#1` up to the first gap: a few lookups, not a scan
        // of a directory that may hold every upload.
        let base = dir.join(name);
        for n in 1.. {
            let mut staging = base.clone().into_os_string();
            staging.push(format!("#{n}"));
            match tokio::fs::remove_file(&staging).await {
                Ok(()) => {}
                // Gone (or never there): nothing more to clear.
                Err(_) => break,
            }
        }
    }

    /// Streams `chunks` to `key`, refusing more than `limit` bytes (the partial
    /// upload is aborted and nothing is left under `key`).
    pub async fn put_stream<S, E>(&self, key: &str, chunks: S, limit: u64) -> Result<Stored>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.clear_interrupted_writes(key).await;
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        let mut writer = WriteMultipart::new(upload);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut chunks = std::pin::pin!(chunks);
        let failure = loop {
            match chunks.next().await {
                None => break None,
                Some(Err(e)) => break Some(BlobError::Source(e.to_string())),
                Some(Ok(chunk)) => {
                    size += chunk.len() as u64;
                    if size > limit {
                        break Some(BlobError::TooLarge { limit });
                    }
                    hasher.update(&chunk);
                    if let Err(e) = writer.wait_for_capacity(8).await {
                        break Some(e.into());
                    }
                    writer.put(chunk);
                }
            }
        };
        if let Some(e) = failure {
            writer.abort().await.ok();
            return Err(e);
        }
        writer.finish().await?;
        Ok(Stored {
            size_bytes: size,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// Stores `bytes` under `key`, replacing what was there.
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<Stored> {
        let stored = Stored {
            size_bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        };
        self.clear_interrupted_writes(key).await;
        self.store
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(stored)
    }

    /// The content under `key` as a stream of chunks.
    pub async fn get_stream(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let got = self
            .store
            .get(&Path::from(key))
            .await
            .map_err(|e| not_found(key, e))?;
        Ok(got.into_stream().map_err(BlobError::from).boxed())
    }

    /// The size and SHA-256 of the content under `key`, read through once.
    pub async fn digest(&self, key: &str) -> Result<Stored> {
        let mut chunks = self.get_stream(key).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(Stored {
            size_bytes: size,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// The whole content under `key`, refusing more than `limit` bytes.
    pub async fn get_bytes(&self, key: &str, limit: u64) -> Result<Bytes> {
        let got = self
            .store
            .get(&Path::from(key))
            .await
            .map_err(|e| not_found(key, e))?;
        if got.meta.size > limit {
            return Err(BlobError::TooLarge { limit });
        }
        Ok(got.bytes().await?)
    }

    /// Deletes the content under `key`; a missing key is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The keys under `prefix` (for tests and maintenance).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let metas: Vec<_> = self
            .store
            .list(Some(&Path::from(prefix)))
            .try_collect()
            .await?;
        Ok(metas.into_iter().map(|m| m.location.to_string()).collect())
    }

    /// Answers when the store answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        let _ = self.store.list(None).next().await.transpose()?;
        Ok(())
    }
}

fn not_found(key: &str, e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_owned()),
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_in_and_out_and_enforces_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let chunks = (0..100).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![i as u8; 10_000])));
        let stored = blobs
            .put_stream("a/b", futures::stream::iter(chunks.clone()), 1_000_000)
            .await
            .unwrap();
        assert_eq!(stored.size_bytes, 1_000_000);
        let back: Vec<Bytes> = blobs
            .get_stream("a/b")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let back: Vec<u8> = back.concat();
        assert_eq!(back.len(), 1_000_000);
        assert_eq!(hex::encode(Sha256::digest(&back)), stored.sha256);

        let err = blobs
            .put_stream("a/c", futures::stream::iter(chunks), 999_999)
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 999_999 }));
        assert!(matches!(
            blobs.get_bytes("a/c", 10).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(matches!(
            blobs.get_bytes("a/b", 10).await,
            Err(BlobError::TooLarge { .. })
        ));
        blobs.delete("a/b").await.unwrap();
        blobs.delete("a/b").await.unwrap();
        assert!(blobs.list("a").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_rewrite_removes_what_an_interrupted_write_left() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        blobs
            .put_bytes("jobs/j/out", Bytes::from_static(b"first"))
            .await
            .unwrap();
        // What object_store leaves when the process dies between writing its staging
        // file and renaming it into place (numbered from 1: two writers were killed);
        // plus a neighbour that merely looks alike.
        let out = dir.path().join("jobs/j");
        std::fs::write(out.join("out#1"), b"half").unwrap();
        std::fs::write(out.join("out#2"), b"half").unwrap();
        std::fs::write(out.join("other#1"), b"another key's").unwrap();
        std::fs::write(out.join("out#notes"), b"not a staging file").unwrap();

        blobs
            .put_bytes("jobs/j/out", Bytes::from_static(b"second"))
            .await
            .unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other#1", "out", "out#notes"]);
        assert_eq!(
            &blobs.get_bytes("jobs/j/out", 100).await.unwrap()[..],
            b"second"
        );

        std::fs::write(out.join("streamed#1"), b"half").unwrap();
        let chunks = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"s"))]);
        blobs
            .put_stream("jobs/j/streamed", chunks, 10)
            .await
            .unwrap();
        assert!(!out.join("streamed#1").exists());
    }
}

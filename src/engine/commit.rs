//! Commit: publish the job's output create-only, so nothing is ever overwritten.
//!
//! A streamed (multipart) upload cannot itself be create-only (`PutMultipartOptions` has no
//! mode), so large files are written in two steps: streamed into a staging object under
//! `<output>/_staging/<job id>/`, then copied to their final name with `copy_if_not_exists`
//! (`CopyMode::Create`), which fails with `AlreadyExists` and leaves the existing object
//! untouched if another job got there first. On a local disk that copy is a hard link: atomic,
//! and no bytes are copied. Small files (the job report) are put with `PutMode::Create`.
//!
//! The order of publication is the predictions file, then the logs, then
//! `logs/job_result.json` last: a job report that exists says the output is complete.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::storage::{Location, RetryingWrites, with_retries};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(
        "{url} was created by someone else while this job ran; it was left untouched and this job's copy was discarded. \
         Run again with a new --output"
    )]
    AlreadyExists { url: String },
    #[error("cannot write {url}: {}", crate::storage::describe(source))]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },
}

impl CommitError {
    /// A store error on `url`: someone else's object there, or another failure.
    fn new(e: object_store::Error, url: String) -> CommitError {
        match e {
            object_store::Error::AlreadyExists { .. } => CommitError::AlreadyExists { url },
            source => CommitError::Store { url, source },
        }
    }
}

/// The staging area of one job inside its output folder.
pub struct Staging {
    output: Location,
    dir: Path,
}

impl Staging {
    pub fn new(output: &Location, job_id: &str) -> Staging {
        Staging { output: output.clone(), dir: output.path.clone().join("_staging").join(job_id) }
    }

    /// Staging object `name` (a relative path: `/` separates folders).
    fn path(&self, name: &str) -> Path {
        name.split('/').filter(|p| !p.is_empty()).fold(self.dir.clone(), |p, part| p.join(part))
    }

    /// A streamed upload of staging object `name`.
    pub fn upload(&self, name: &str) -> BufWriter {
        let store: Arc<dyn ObjectStore> = Arc::new(RetryingWrites(self.output.store.clone()));
        BufWriter::with_capacity(store, self.path(name), 8 * 1024 * 1024)
    }

    /// Publishes staging object `name` as `<output>/<rel>`, create-only.
    pub async fn publish(&self, name: &str, rel: &str) -> Result<(), CommitError> {
        let target = self.output.join(rel);
        let store = &self.output.store;
        let from = self.path(name);
        let to = &target.path;
        let result = with_retries(&format!("publish {}", target.display), |_| {
            let from = &from;
            async move {
                match store.copy_if_not_exists(from, to).await {
                    // The same bytes there: our own first attempt, whose answer was lost, or
                    // another process of this job that assembled the same parts before it died.
                    // Anything else there is someone else's.
                    Err(e @ object_store::Error::AlreadyExists { .. }) => {
                        if same_content(store.as_ref(), from, to).await? { Ok(()) } else { Err(e) }
                    }
                    other => other,
                }
            }
        })
        .await;
        result.map_err(|e| CommitError::new(e, target.display))
    }

    /// Removes everything this job staged (best effort; leftovers are named in the log). A
    /// local folder goes in one `remove_dir_all`; a store's objects in bulk deletes (S3's
    /// DeleteObjects takes 1,000 keys a request) rather than one request per part.
    pub async fn cleanup(&self) {
        match self.remove_local() {
            Some(Ok(())) => return,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return,
            // Written to meanwhile (a late process of the job): object by object below.
            Some(Err(_)) | None => {}
        }
        let store = &self.output.store;
        let listed = with_retries("list staging", |_| store.list(Some(&self.dir)).try_collect::<Vec<_>>()).await;
        let listed = listed.unwrap_or_else(|e| {
            tracing::warn!("could not list staging objects under {}: {e}", self.dir);
            Vec::new()
        });
        let locations = futures::stream::iter(listed.into_iter().map(|m| Ok(m.location))).boxed();
        let mut deleted = store.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                // Another process of the job removed it first (its own marker, say).
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!("could not remove a staging object under {}: {e}", self.dir),
            }
        }
        let _ = self.remove_local();
    }

    /// Removes this job's local staging folder, and `_staging/` if no other job's is in it;
    /// `None` for an output in a store.
    fn remove_local(&self) -> Option<std::io::Result<()>> {
        let dir = self.output.local.as_ref()?.join("_staging");
        let removed = std::fs::remove_dir_all(dir.join(self.dir.filename().unwrap_or_default()));
        if removed.is_ok() {
            let _ = std::fs::remove_dir(&dir);
        }
        Some(removed)
    }
}

/// Writes `<output>/<rel>` with create-only semantics.
pub async fn put_create(output: &Location, rel: &str, bytes: Bytes) -> Result<(), CommitError> {
    let target = output.join(rel);
    let store = &output.store;
    let to = &target.path;
    let result = with_retries(&format!("write {}", target.display), |attempt| {
        let bytes = bytes.clone();
        async move {
            let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
            match store.put_opts(to, PutPayload::from_bytes(bytes.clone()), opts).await {
                Ok(_) => Ok(()),
                // As in `publish`: our own earlier attempt, whose answer was lost.
                Err(e @ object_store::Error::AlreadyExists { .. }) if attempt > 1 => {
                    let there = crate::storage::get_bytes(store, to).await?;
                    if there == bytes { Ok(()) } else { Err(e) }
                }
                Err(e) => Err(e),
            }
        }
    })
    .await;
    result.map_err(|e| CommitError::new(e, target.display))
}

/// Whether two objects hold the same bytes (compared by size, then SHA-256 streamed).
async fn same_content(store: &dyn ObjectStore, a: &Path, b: &Path) -> Result<bool, object_store::Error> {
    let size_a = with_retries(&format!("head {a}"), |_| store.head(a)).await?.size;
    let size_b = with_retries(&format!("head {b}"), |_| store.head(b)).await?.size;
    if size_a != size_b {
        return Ok(false);
    }
    let digest_a = with_retries(&format!("read {a}"), |_| digest(store, a)).await?;
    let digest_b = with_retries(&format!("read {b}"), |_| digest(store, b)).await?;
    Ok(digest_a == digest_b)
}

async fn digest(store: &dyn ObjectStore, path: &Path) -> Result<[u8; 32], object_store::Error> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut stream = store.get(path).await?.into_stream();
    while let Some(chunk) = stream.try_next().await? {
        hasher.update(&chunk);
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn staged_publish_is_create_only(output: Location) {
        put_create(&output, "predictions.csv", Bytes::from_static(b"first\n")).await.unwrap();
        let staging = Staging::new(&output, "job-2");
        let mut up = staging.upload("predictions.csv");
        up.write_all(b"second\n").await.unwrap();
        up.shutdown().await.unwrap();
        let err = staging.publish("predictions.csv", "predictions.csv").await.unwrap_err();
        assert!(matches!(err, CommitError::AlreadyExists { .. }), "{err}");
        staging.cleanup().await;
        let kept = output.store.get(&output.join("predictions.csv").path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&kept[..], b"first\n");
        let left: Vec<_> = output.store.list(Some(&output.path)).try_collect().await.unwrap();
        assert_eq!(left.len(), 1, "staging cleaned up: {left:?}");
        let err = put_create(&output, "predictions.csv", Bytes::from_static(b"third\n")).await.unwrap_err();
        assert!(matches!(err, CommitError::AlreadyExists { .. }));
    }

    #[tokio::test]
    async fn create_only_on_local_disk() {
        let dir = tempfile::tempdir().unwrap();
        let out = Location::parse(dir.path().join("out").to_str().unwrap()).unwrap();
        staged_publish_is_create_only(out).await;
        assert!(!dir.path().join("out/_staging").exists());
    }

    #[tokio::test]
    async fn create_only_in_memory() {
        staged_publish_is_create_only(Location::parse("memory://commit-test/out").unwrap()).await;
    }
}

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

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::storage::Location;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(
        "{url} was created by someone else while this job ran; it was left untouched and this job's copy was discarded. \
         Run again with a new --output"
    )]
    AlreadyExists { url: String },
    #[error("cannot write {url}: {source}")]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },
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

    /// A streamed upload of staging object `name`.
    pub fn upload(&self, name: &str) -> BufWriter {
        BufWriter::with_capacity(self.output.store.clone(), self.dir.clone().join(name), 8 * 1024 * 1024)
    }

    /// Publishes staging object `name` as `<output>/<rel>`, create-only.
    pub async fn publish(&self, name: &str, rel: &str) -> Result<(), CommitError> {
        let target = self.output.join(rel);
        match self.output.store.copy_if_not_exists(&self.dir.clone().join(name), &target.path).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(CommitError::AlreadyExists { url: target.display }),
            Err(source) => Err(CommitError::Store { url: target.display, source }),
        }
    }

    /// Removes everything this job staged (best effort; leftovers are named in the log).
    pub async fn cleanup(&self) {
        let store = &self.output.store;
        let listed: Vec<_> = store.list(Some(&self.dir)).try_collect().await.unwrap_or_default();
        for meta in listed {
            if let Err(e) = store.delete(&meta.location).await {
                tracing::warn!("could not remove staging object {}: {e}", meta.location);
            }
        }
        if let Some(local) = &self.output.local {
            // Local folders stay behind after their files are deleted; remove ours if empty.
            let dir = local.join("_staging");
            let _ = std::fs::remove_dir(dir.join(self.dir.filename().unwrap_or_default()));
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// Writes `<output>/<rel>` with create-only semantics.
pub async fn put_create(output: &Location, rel: &str, bytes: Bytes) -> Result<(), CommitError> {
    let target = output.join(rel);
    let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
    match output.store.put_opts(&target.path, PutPayload::from_bytes(bytes), opts).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => Err(CommitError::AlreadyExists { url: target.display }),
        Err(source) => Err(CommitError::Store { url: target.display, source }),
    }
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

//! Reading: fetch the bytes of each mini-batch's files through `object_store`, on tokio.
//!
//! The reader walks the mini-batches in order, fetching a few ahead (`ahead`) with a bounded
//! number of requests in flight (`io_concurrency`), and hands each mini-batch to the workers
//! over a bounded channel: when the workers fall behind, the channel fills and the reader waits,
//! so memory holds at most `ahead + channel capacity + workers` mini-batches, never the dataset.
//! A file that cannot be read is passed on as an error; the worker retries it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::plan::Plan;

/// The bytes of one mini-batch's files, in file order.
pub struct Fetched {
    pub mini_batch: usize,
    pub bytes: Vec<Result<Bytes, String>>,
    /// Seconds from the first request to the last byte.
    pub seconds: f64,
}

/// Reads one whole object.
pub async fn fetch_one(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Bytes, String> {
    let get = store.get(path).await.map_err(|e| format!("cannot read: {e}"))?;
    get.bytes().await.map_err(|e| format!("cannot read: {e}"))
}

/// Fetches every mini-batch of `plan` in order and sends it on `tx`; stops early on `cancel`.
pub async fn run_reader(
    store: Arc<dyn ObjectStore>,
    plan: Arc<Plan>,
    tx: flume::Sender<Fetched>,
    cancel: Arc<AtomicBool>,
    ahead: usize,
    io_concurrency: usize,
) {
    let batches = plan.mini_batches.clone().into_iter().enumerate();
    let mut stream = futures::stream::iter(batches)
        .map(|(id, range)| {
            let store = store.clone();
            let plan = plan.clone();
            let cancel = cancel.clone();
            async move {
                let started = Instant::now();
                if cancel.load(Ordering::Relaxed) {
                    return None;
                }
                let bytes = futures::stream::iter(range)
                    .map(|i| {
                        let store = store.clone();
                        let path = plan.files[i].path.clone();
                        async move { fetch_one(&store, &path).await }
                    })
                    .buffered(io_concurrency)
                    .collect::<Vec<_>>()
                    .await;
                Some(Fetched { mini_batch: id, bytes, seconds: started.elapsed().as_secs_f64() })
            }
        })
        .buffered(ahead.max(1));
    while let Some(fetched) = stream.next().await {
        let Some(fetched) = fetched else { break };
        if cancel.load(Ordering::Relaxed) || tx.send_async(fetched).await.is_err() {
            break;
        }
    }
}

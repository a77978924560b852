//! A store whose every request waits first: the latency of a remote object store, on a local
//! one, for the scaling benchmark and the tests of jobs shared by several processes (which must
//! run long enough to be interrupted at any moment). Set by `BATCHSCORE_TEST_STORE_LATENCY`
//! (`20ms`, or a range `20-50ms`, drawn per request); never on by default.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};

/// The variable that sets the latency.
pub const VARIABLE: &str = "BATCHSCORE_TEST_STORE_LATENCY";

/// Requests made through delayed stores in this process (listings count once per call).
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// How many requests this process made through delayed stores.
pub fn requests() -> u64 {
    REQUESTS.load(Ordering::Relaxed)
}

/// The latency `BATCHSCORE_TEST_STORE_LATENCY` asks for, in milliseconds: `(min, max)`.
pub fn from_environment() -> Option<(u64, u64)> {
    let raw = std::env::var(VARIABLE).ok()?;
    let ms = raw.trim().trim_end_matches("ms");
    let (lo, hi) = ms.split_once('-').unwrap_or((ms, ms));
    let parsed = (lo.trim().parse::<u64>().ok()?, hi.trim().parse::<u64>().ok()?);
    (parsed.0 <= parsed.1).then_some(parsed)
}

/// `inner` with every request delayed by `min..=max` milliseconds.
#[derive(Debug)]
pub struct Delayed {
    inner: Arc<dyn ObjectStore>,
    min: u64,
    max: u64,
    seed: AtomicU64,
}

impl Delayed {
    pub fn new(inner: Arc<dyn ObjectStore>, (min, max): (u64, u64)) -> Delayed {
        let seed = u64::from(std::process::id()) ^ 0x9E37_79B9_7F4A_7C15;
        Delayed { inner, min, max, seed: AtomicU64::new(seed) }
    }

    async fn wait(&self) {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        // xorshift: a different draw per request, no dependency for it.
        let mut x = self.seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ms = self.min + x % (self.max - self.min + 1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

impl std::fmt::Display for Delayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Delayed({}-{} ms, {})", self.min, self.max, self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Delayed {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.wait().await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.wait().await;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.wait().await;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        let (min, inner) = (self.min, self.inner.list(prefix));
        futures::stream::once(async move { tokio::time::sleep(Duration::from_millis(min)).await })
            .flat_map(move |()| futures::stream::empty())
            .chain(inner)
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.wait().await;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.wait().await;
        self.inner.copy_opts(from, to, options).await
    }
}

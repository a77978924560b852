//! Fault injection: a store wrapper that fails, stalls or loses the answer of some requests,
//! under a whole job run in this process. Transient faults are retried (batchscore's
//! `storage::with_retries` on top of object_store's own per-request retries) and the job's output
//! is the same, byte for byte, as a clean run: nothing lost, nothing written twice. Permanent
//! errors are not retried and fail at once, naming the URL.

mod common;

use std::collections::HashMap;
use std::fmt;
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batchscore::engine::settings::{Deployment, RawSettings};
use batchscore::storage::{RetryPolicy, register_scheme, set_retry_policy};
use common::*;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};

/// What the wrapper does to the first request of each kind for each path.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// The first GET/HEAD of each object, the first LIST, the first PUT and the first COPY of
    /// each target fail; GETs of `part-1` stall first; the first PUT of the job report and the
    /// first COPY of each published file succeed but their answer is lost (an error comes back).
    Transient,
    /// Every LIST answers 403.
    Forbidden,
    /// The job report cannot be written (every PUT of it answers 403).
    NoReport,
}

#[derive(Default)]
struct Injected {
    get_failed: AtomicUsize,
    get_stalled: AtomicUsize,
    list_failed: AtomicUsize,
    put_failed: AtomicUsize,
    put_answer_lost: AtomicUsize,
    copy_answer_lost: AtomicUsize,
    lists: AtomicUsize,
}

struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    fault: Fault,
    seen: Mutex<HashMap<String, usize>>,
    injected: Arc<Injected>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({:?})", self.fault)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic { store: "faulty", source: format!("injected fault: {what}").into() }
}

impl FaultyStore {
    /// Whether this is the first request of kind `op` on `path`.
    fn first(&self, op: &str, path: &Path) -> bool {
        let mut seen = self.seen.lock().unwrap();
        let n = seen.entry(format!("{op} {path}")).or_insert(0);
        *n += 1;
        *n == 1
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if self.fault == Fault::NoReport && location.as_ref().ends_with("job_result.json") {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "403 Forbidden (injected)".into(),
            });
        }
        if self.fault == Fault::Transient && self.first("put", location) {
            if location.as_ref().ends_with("job_result.json") {
                self.inner.put_opts(location, payload, opts).await?;
                self.injected.put_answer_lost.fetch_add(1, Ordering::Relaxed);
                return Err(injected("connection reset after the PUT was stored"));
            }
            self.injected.put_failed.fetch_add(1, Ordering::Relaxed);
            return Err(injected("503 on PUT"));
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let op = if options.head { "head" } else { "get" };
        if self.fault == Fault::Transient && self.first(op, location) {
            if op == "get" && location.as_ref().contains("part-1") {
                self.injected.get_stalled.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            self.injected.get_failed.fetch_add(1, Ordering::Relaxed);
            return Err(injected("connection reset on GET"));
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.injected.lists.fetch_add(1, Ordering::Relaxed);
        let fail = match self.fault {
            Fault::Transient => {
                (self.first("list", prefix.unwrap_or(&Path::default()))).then(|| injected("500 on LIST"))
            }
            Fault::NoReport => None,
            Fault::Forbidden => Some(object_store::Error::PermissionDenied {
                path: prefix.map(|p| p.to_string()).unwrap_or_default(),
                source: "403 Forbidden (injected)".into(),
            }),
        };
        match fail {
            Some(e) => {
                self.injected.list_failed.fetch_add(1, Ordering::Relaxed);
                Box::pin(futures::stream::once(async move { Err(e) }))
            }
            None => self.inner.list(prefix),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        if self.fault == Fault::Transient && self.first("copy", to) {
            self.inner.copy_opts(from, to, options).await?;
            self.injected.copy_answer_lost.fetch_add(1, Ordering::Relaxed);
            return Err(injected("timeout after the COPY was done"));
        }
        self.inner.copy_opts(from, to, options).await
    }
}

/// Registers `scheme://` as a faulty store over the folder `root`.
fn faulty(scheme: &str, root: &FsPath, fault: Fault) -> Arc<Injected> {
    let injected = Arc::new(Injected::default());
    // Automatic cleanup: folders emptied by deletes go too, as on an object store.
    let inner: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(root).unwrap().with_automatic_cleanup(true));
    register_scheme(
        scheme,
        Arc::new(FaultyStore { inner, fault, seen: Mutex::new(HashMap::new()), injected: injected.clone() }),
    );
    injected
}

fn copy_dir(from: &FsPath, to: &FsPath) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn settings(input: &str, output: &str) -> batchscore::engine::settings::Settings {
    RawSettings {
        model: Some(model("iris_zipmap.onnx")),
        input: Some(input.into()),
        output: Some(output.into()),
        passthrough: Some(vec!["id".into()]),
        mini_batch_size: Some("1".into()),
        progress: Some("off".into()),
        logging_level: Some("warning".into()),
        ..Default::default()
    }
    .resolve("test")
    .unwrap()
}

fn quick_retries() {
    set_retry_policy(RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(2),
    });
}

#[test]
fn transient_faults_are_retried_and_the_output_is_exactly_the_clean_one() {
    quick_retries();
    let tmp = tempdir();
    copy_dir(FsPath::new(&data("iris")), &tmp.path().join("in"));

    // The clean run, on the local disk.
    let clean = tmp.path().join("clean");
    let outcome = batchscore::engine::run(
        batchscore::engine::JobSpec::new(
            settings(&tmp.path().join("in").display().to_string(), &clean.display().to_string()),
            Deployment::default(),
        ),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(outcome.result.counts.rows_scored, 150);

    // The same job through a store that fails, stalls and loses answers.
    let injected = faulty("flaky", tmp.path(), Fault::Transient);
    let started = Instant::now();
    let outcome = batchscore::engine::run(
        batchscore::engine::JobSpec::new(settings("flaky://in", "flaky://out"), Deployment::default()),
        &Default::default(),
    )
    .unwrap();
    let r = &outcome.result;
    assert_eq!(format!("{:?}", r.status), "Completed", "{:?}", r.error);
    assert_eq!(r.counts.rows_scored, 150);
    assert_eq!(r.counts.items_failed, 0);
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());

    // Every kind of fault happened.
    let n = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    assert!(n(&injected.get_failed) >= 3, "gets failed: {}", n(&injected.get_failed));
    assert_eq!(n(&injected.get_stalled), 1);
    assert!(n(&injected.list_failed) >= 1);
    assert!(n(&injected.put_failed) >= 1);
    assert_eq!(n(&injected.put_answer_lost), 1);
    assert!(n(&injected.copy_answer_lost) >= 3, "predictions + 2 logs: {}", n(&injected.copy_answer_lost));

    // Byte-identical predictions (file names are relative to --input), and every log in place.
    let out = tmp.path().join("out");
    assert_eq!(
        std::fs::read(out.join("predictions.csv")).unwrap(),
        std::fs::read(clean.join("predictions.csv")).unwrap()
    );
    assert_eq!(names(&out), ["logs", "predictions.csv"], "no staging left behind");
    assert_eq!(names(&out.join("logs")), ["failures.jsonl", "job_result.json", "mini_batches.csv"]);
    assert_eq!(std::fs::read_to_string(out.join("logs/failures.jsonl")).unwrap(), "");
    let (_, mbs) = mini_batches(&out);
    assert_eq!(mbs.len(), 3);
    assert!(mbs.iter().all(|m| m["status"] == "completed" && m["rows"] == "50"), "{mbs:?}");
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Completed");
    assert_eq!(jr["output"], "flaky://out");
}

#[test]
fn a_permanent_error_is_not_retried_and_names_the_url() {
    quick_retries();
    let tmp = tempdir();
    copy_dir(FsPath::new(&data("iris")), &tmp.path().join("in"));
    let injected = faulty("forbidden", tmp.path(), Fault::Forbidden);
    let started = Instant::now();
    let err = batchscore::engine::run(
        batchscore::engine::JobSpec::new(settings("forbidden://in", "forbidden://out"), Deployment::default()),
        &Default::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("forbidden://out") && msg.contains("credentials"), "{msg}");
    assert_eq!(injected.lists.load(Ordering::Relaxed), 1, "a 403 is not retried");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!tmp.path().join("out").exists(), "nothing written");
}

#[test]
fn a_job_whose_report_cannot_be_written_is_failed_and_says_so() {
    quick_retries();
    let tmp = tempdir();
    copy_dir(FsPath::new(&data("iris")), &tmp.path().join("in"));
    faulty("noreport", tmp.path(), Fault::NoReport);
    let outcome = batchscore::engine::run(
        batchscore::engine::JobSpec::new(settings("noreport://in", "noreport://out"), Deployment::default()),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(format!("{:?}", outcome.result.status), "Failed", "never Completed without its report");
    assert!(outcome.report_url.is_none(), "no report path to print: it does not exist");
    let why = outcome.report_error.expect("the reason");
    assert!(why.contains("job_result.json"), "{why}");
    assert!(!tmp.path().join("out/logs/job_result.json").exists());
}

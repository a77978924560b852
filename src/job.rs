//! The job coordinator: plan, then run the pipeline, then commit.
//!
//! ```text
//!  tokio (I/O)            worker threads (CPU, one ORT session each)     main thread
//!  reader ──bounded──►  decode ─► infer (retries, timeout, narrowing) ──► collector ─► staged upload
//! ```
//!
//! - The reader fetches mini-batches ahead on tokio; a bounded channel is the backpressure.
//! - Each worker owns a [`ModelRunner`]: it decodes the mini-batch's files, packs their rows into
//!   model calls, and handles failures: a failed or timed-out attempt is retried up to
//!   `max_retries`; after that the mini-batch is narrowed down (split in halves until single
//!   files) so that one bad file does not fail its good neighbours. A file that cannot be decoded
//!   fails at once (decoding is deterministic); a row with a bad value fails alone.
//! - The collector receives results in any order, writes them in mini-batch order (so the output
//!   order is the input order whatever the concurrency), counts failed items, and stops the job
//!   as soon as they exceed `error_threshold`.
//! - Commit publishes the staged files create-only (see [`crate::commit`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arrow::array::ArrayRef;
use bytes::Bytes;
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::cli::{Exit, ScoreArgs};
use crate::collect::{OutputLayout, PredictionWriter};
use crate::commit::{CommitError, Staging, put_create};
use crate::infer::{Attempt, InferError, InferTimings, ModelRunner, Watchdog, build_session_on};
use crate::model::{ModelError, ModelInfo};
use crate::plan::{Part, Plan, check_output, list_inputs, plan_job};
use crate::preprocess::{DecodedFile, Feeder, TabularPiece, resolve_feeder};
use crate::progress::Progress;
use crate::read::{Fetched, ItemBytes, ItemReader, fetch_one, run_reader};
use crate::report::{
    Counts, FailureRecord, JobResult, JobStatus, MINI_BATCH_HEADER, MiniBatchRecord, ModelReport, StageTimings,
    ThreadTimes, Versions,
};
use crate::settings::{Deployment, LogLevel, MiniBatchTarget, OutputAction, Settings, format_byte_size};
use crate::storage::Location;

/// A job that could not start (exit 2), with the message to show.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

macro_rules! start_err {
    ($e:expr) => {
        StartError($e.to_string())
    };
}

/// What a finished job reports back to the CLI.
#[derive(Debug)]
pub struct JobOutcome {
    pub result: JobResult,
    /// Where the job report was written.
    pub report_url: String,
    /// Set when the commit lost a race: the output appeared while the job ran (exit 2).
    pub lost_race: bool,
}

/// `batchscore score`: resolve settings, run the job, print the summary, pick the exit code.
pub fn score_command(args: &ScoreArgs) -> Exit {
    let (settings, deployment) = match resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CouldNotStart;
        }
    };
    init_logging(settings.logging_level);
    for ignored in &deployment.ignored {
        tracing::warn!("deployment setting `{ignored}` has no meaning here and is ignored");
    }
    match run(settings, deployment) {
        Err(e) => {
            eprintln!("error: {e}");
            Exit::CouldNotStart
        }
        Ok(outcome) => {
            print_summary(&outcome);
            if outcome.lost_race {
                Exit::CouldNotStart
            } else if outcome.result.status == JobStatus::Completed {
                Exit::Completed
            } else {
                Exit::Failed
            }
        }
    }
}

fn resolve(args: &ScoreArgs) -> Result<(Settings, Deployment), crate::settings::ConfigError> {
    let (deployment, origin) = match &args.config {
        Some(path) => (Deployment::load(path)?, format!("flags and {}", path.display())),
        None => (Deployment::default(), "flags".to_string()),
    };
    let settings = args.raw().over(deployment.settings.clone()).resolve(&origin)?;
    Ok((settings, deployment))
}

fn init_logging(level: LogLevel) {
    let filter = match level {
        LogLevel::Warning => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug,ort=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATCHSCORE_LOG").unwrap_or_else(|_| {
        // ONNX Runtime's own messages are noisy at info; keep them at warnings unless debugging.
        tracing_subscriber::EnvFilter::new(if level == LogLevel::Debug {
            filter.to_string()
        } else {
            format!("{filter},ort=warn")
        })
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn print_summary(o: &JobOutcome) {
    let r = &o.result;
    let c = &r.counts;
    eprintln!(
        "{}: {} rows from {}/{} files scored in {:.1} s; {} items failed ({} files, {} rows); output {}",
        match r.status {
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
        },
        c.rows_scored,
        c.files_scored,
        c.files_total,
        r.timings_seconds.wall,
        c.items_failed,
        c.files_failed,
        c.rows_failed,
        r.output
    );
    if let Some(f) = &r.first_failure {
        let at = match (&f.row, &f.piece) {
            (Some(row), _) => format!("{} row {row}", f.file),
            (None, Some(piece)) => format!("{}[{piece}]", f.file),
            (None, None) => f.file.clone(),
        };
        // Decode errors already start with the file name; say it once.
        let error = f.error.strip_prefix(&format!("{}: ", f.file)).unwrap_or(&f.error);
        eprintln!("first failure: {at}: {error}");
    }
    if let Some(e) = &r.error {
        eprintln!("error: {e}");
    }
    eprintln!("job report: {}", o.report_url);
    if let Some(p) = &r.predictions {
        println!("{p}");
    }
}

/// Everything a worker needs, shared.
struct Shared {
    plan: Arc<Plan>,
    reader: Arc<ItemReader>,
    feeder: Feeder,
    layout: OutputLayout,
    settings: Settings,
    watchdog: Arc<Watchdog>,
    cancel: Arc<AtomicBool>,
    io: tokio::runtime::Handle,
}

/// What a worker reports for one mini-batch.
struct MbResult {
    id: usize,
    rows: Option<arrow::array::RecordBatch>,
    record: MiniBatchRecord,
    failures: Vec<FailureRecord>,
    /// For each item, in order: its file and what became of it. Files are counted from these
    /// once all their items are in (a file split into pieces spans mini-batches).
    outcomes: Vec<(usize, ItemOutcome)>,
    rows_scored: u64,
    rows_failed: u64,
    read: f64,
    decode: f64,
    infer: f64,
}

/// What became of one item of a mini-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemOutcome {
    /// Scored (some of its rows may have failed alone).
    Scored,
    /// Failed as a whole.
    Failed,
    /// Left unscored because the job stopped.
    Stopped,
}

/// Counts files as scored or failed from their items' outcomes, which arrive in any order.
struct FileTally {
    /// Items of each file not yet in.
    left: Vec<usize>,
    failed: Vec<bool>,
}

impl FileTally {
    fn new(plan: &Plan) -> FileTally {
        FileTally { left: plan.items_per_file(), failed: vec![false; plan.files.len()] }
    }

    /// Takes in one mini-batch's outcomes; returns (files now scored, files now failed). A file
    /// fails with its first failed item and is scored when its last item is in, none failed.
    fn add(&mut self, outcomes: &[(usize, ItemOutcome)]) -> (u64, u64) {
        let (mut scored, mut failed) = (0, 0);
        for &(f, o) in outcomes {
            if o == ItemOutcome::Stopped {
                continue;
            }
            self.left[f] = self.left[f].saturating_sub(1);
            if o == ItemOutcome::Failed && !self.failed[f] {
                self.failed[f] = true;
                failed += 1;
            } else if self.left[f] == 0 && !self.failed[f] {
                scored += 1;
            }
        }
        (scored, failed)
    }
}

/// Runs a job to its end. `Err` means it could not start.
pub fn run(settings: Settings, deployment: Deployment) -> Result<JobOutcome, StartError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let job_id = format!("{}-{}", started_at.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("batchscore-io")
        .enable_all()
        .build()
        .map_err(|e| start_err!(format!("cannot start the I/O runtime: {e}")))?;

    let opts = &settings.storage_options;
    let input = Location::open(&settings.input, opts).map_err(|e| start_err!(e))?;
    let output = Location::open(&settings.output, opts).map_err(|e| start_err!(e))?;
    let model_loc = Location::open(&settings.model, opts).map_err(|e| start_err!(e))?;

    // Plan: the output check comes first, before any work.
    io.block_on(check_output(&output)).map_err(|e| start_err!(e))?;
    let files =
        io.block_on(list_inputs(&input, settings.pattern.as_deref(), Some(&output))).map_err(|e| start_err!(e))?;
    let plan = Arc::new(io.block_on(plan_job(&input, files, settings.mini_batch)).map_err(|e| start_err!(e))?);

    // Workers read and decode; sessions run the model, never more of them than workers. On the
    // CPU each worker has a session and sessions × intra-op threads ≈ cores; a GPU gets a few
    // sessions fed by many workers.
    let device = settings.device;
    let workers = settings.max_concurrency.min(plan.mini_batches.len()).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sessions = settings
        .sessions
        .unwrap_or(match device {
            crate::settings::Device::Cpu => workers,
            crate::settings::Device::Cuda(_) => GPU_SESSIONS,
        })
        .min(workers)
        .max(1);
    if let Some(asked) = settings.sessions.filter(|n| *n > workers) {
        tracing::warn!(
            "--sessions {asked}: only {workers} worker(s) feed the sessions, and more sessions than workers would only wait; using {sessions} (raise --max-concurrency for more)"
        );
    }
    let intra_threads = settings.intra_threads.unwrap_or(match device {
        crate::settings::Device::Cpu => (cores / sessions).max(1),
        crate::settings::Device::Cuda(_) => 1,
    });

    // The model: read it, open the first session, learn its inputs and outputs.
    let env = crate::runtime::environment().map_err(|e| start_err!(e))?;
    let model_bytes = io.block_on(fetch_one(&model_loc.store, &model_loc.path)).map_err(|e| {
        start_err!(ModelError::Read {
            model: model_loc.display.clone(),
            reason: e.trim_start_matches("cannot read: ").to_string(),
        })
    })?;
    let first_session = build_session_on(env, &model_bytes, intra_threads, device).map_err(|reason| {
        if reason.starts_with("--device") {
            start_err!(reason)
        } else {
            start_err!(ModelError::Load { model: model_loc.display.clone(), reason })
        }
    })?;
    let info = Arc::new(ModelInfo::from_session(&first_session, &model_loc.display).map_err(|e| start_err!(e))?);
    let feeder = resolve_feeder(&info, plan.kind, &settings)
        .map_err(|e| start_err!(format!("model {}: {e}", model_loc.display)))?;
    let batch_size = match (info.fixed_batch, settings.batch_size) {
        (Some(fixed), Some(asked)) if fixed != asked => {
            return Err(start_err!(format!(
                "--batch-size {asked}: model {} has a fixed batch dimension of {fixed}; leave --batch-size out or set it to {fixed}",
                model_loc.display
            )));
        }
        (Some(fixed), _) => fixed,
        (None, Some(asked)) => asked,
        (None, None) => feeder.default_batch_size(),
    };
    let layout = OutputLayout::new(feeder.has_row_numbers(), feeder.passthrough().to_vec(), &info.outputs);
    if let Some(name) = layout.clash() {
        return Err(start_err!(format!(
            "the output would have two columns named {name:?}; rename the pass-through column or leave it out of --passthrough"
        )));
    }
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let session_threads = plural(intra_threads, "thread", "threads");
    let threads_layout = if sessions < workers {
        format!(
            "{} decoding for {} of {session_threads} each",
            plural(workers, "worker", "workers"),
            plural(sessions, "session", "sessions")
        )
    } else {
        let each = if sessions == 1 { " with its own session" } else { ", each with its own session" };
        format!("{}{each} of {session_threads}", plural(sessions, "worker", "workers"))
    };
    let plan_seconds = started.elapsed().as_secs_f64();
    let per_mini_batch = match settings.mini_batch {
        MiniBatchTarget::Files(n) => format!("up to {n} files"),
        MiniBatchTarget::Rows(n) => format!("about {n} rows"),
        MiniBatchTarget::Bytes(b) => format!("about {} of input", format_byte_size(b)),
    };
    let pieces = if plan.items.len() > plan.files.len() {
        format!(", cut into {} pieces,", plan.items.len())
    } else {
        String::new()
    };
    tracing::info!(
        "job {job_id}: {} files ({} bytes){pieces} in {} mini-batches of {per_mini_batch}; {threads_layout} on {device}; batch {}",
        plan.files.len(),
        plan.total_bytes,
        plan.mini_batches.len(),
        batch_size
    );
    if settings.instance_count > 1 {
        tracing::warn!(
            "instance_count {} asks for several processes; this version runs a job in one process",
            settings.instance_count
        );
    }

    let model_report = ModelReport {
        path: model_loc.display.clone(),
        sha256: format!("{:x}", sha2::Sha256::digest(&model_bytes)),
        bytes: model_bytes.len() as u64,
        info: (*info).clone(),
        feeder: feeder.clone(),
        batch_size,
        workers,
        sessions,
        intra_threads,
    };

    // Workers: each builds its own session (the first reuses the one opened above).
    let cancel = Arc::new(AtomicBool::new(false));
    let watchdog = Watchdog::start();
    let item_reader = Arc::new(ItemReader::new(input.store.clone(), plan.clone(), feeder.columns()));
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        reader: item_reader.clone(),
        feeder,
        layout,
        settings: settings.clone(),
        watchdog: watchdog.clone(),
        cancel: cancel.clone(),
        io: io.handle().clone(),
    });
    // Memory holds the mini-batches being read (`ahead`), one waiting for a worker, one being
    // decoded per worker, decoded ones waiting for a session (`waiting`), those being scored,
    // and up to one scored per session waiting for the writer. Read-ahead is sized in bytes:
    // about PREFETCH_BYTES of input, at least one mini-batch and at most four.
    let mean_bytes = plan.total_bytes / (plan.mini_batches.len() as u64).max(1);
    let ahead = (PREFETCH_BYTES / mean_bytes.max(1)).clamp(1, 4) as usize;
    // One session per worker: each worker decodes its own mini-batches and scores them (no
    // hand-over, which on a CPU only adds threads competing for the same cores). Fewer sessions
    // than workers (a GPU): workers decode and hand decoded mini-batches to the sessions.
    let staged = sessions < workers;
    // A session takes small mini-batches together until they fill a model call; on a GPU, until
    // the calls come out full (a short call costs a GPU nearly a full one's time), up to
    // GPU_GROUP_CALLS calls' worth. On the CPU a short call costs in proportion, and holding
    // more decoded images would only add memory.
    let group_calls = match device {
        crate::settings::Device::Cpu => 1,
        crate::settings::Device::Cuda(_) => GPU_GROUP_CALLS,
    };
    // Decoded mini-batches wait for a session: enough of them for its next model calls.
    let fill = match shared.feeder {
        crate::preprocess::Feeder::Image { .. } => {
            (group_calls * batch_size).div_ceil((plan.items.len() / plan.mini_batches.len().max(1)).max(1))
        }
        _ => 1,
    };
    let waiting = (sessions * fill).clamp(sessions, MAX_DECODED_WAITING.max(sessions));
    let (work_tx, work_rx) = flume::bounded::<Fetched>(1);
    let (decoded_tx, decoded_rx) = flume::bounded::<Prepared>(if staged { waiting } else { 0 });
    // Bounded too: when writing the output is the slow stage, sessions wait instead of piling
    // scored mini-batches up in memory.
    let (result_tx, result_rx) = flume::bounded::<MbResult>(sessions);
    let (ready_tx, ready_rx) = flume::unbounded::<Result<(), String>>();
    // Reading starts now, while the sessions open.
    let reader = io.spawn(run_reader(item_reader, work_tx, cancel.clone(), ahead, 16));
    let mut first_session = Some(first_session);
    let mut session_handles = Vec::new();
    for n in 0..sessions {
        let session = first_session.take();
        let shared = shared.clone();
        let feed = if staged { Feed::Decoded(decoded_rx.clone()) } else { Feed::Read(work_rx.clone()) };
        let tx = result_tx.clone();
        let ready = ready_tx.clone();
        let model_bytes = model_bytes.clone();
        let info = info.clone();
        let handle = std::thread::Builder::new()
            .name(format!("batchscore-{}-{n}", if staged { "session" } else { "worker" }))
            .spawn(move || {
                let session = match session {
                    Some(s) => Ok(s),
                    None => build_session_on(env, &model_bytes, intra_threads, device),
                };
                let mut runner = match session {
                    Ok(s) => {
                        let _ = ready.send(Ok(()));
                        ModelRunner::new(s, info, batch_size)
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return (ThreadTimes::default(), 0);
                    }
                };
                drop(model_bytes);
                let times = run_session(&shared, &mut runner, &feed, &tx, batch_size, group_calls);
                (times, runner.calls())
            })
            .map_err(|e| start_err!(format!("cannot start a session thread: {e}")))?;
        session_handles.push(handle);
    }
    drop(result_tx);
    drop(ready_tx);
    drop(decoded_rx);
    let stop_threads = |session_handles: Vec<std::thread::JoinHandle<(ThreadTimes, u64)>>| {
        cancel.store(true, Ordering::Relaxed);
        for h in session_handles {
            let _ = h.join();
        }
        watchdog.stop();
    };
    for _ in 0..sessions {
        if let Err(e) = ready_rx.recv().unwrap_or_else(|_| Err("a session thread stopped while starting".into())) {
            drop((decoded_tx, work_rx));
            stop_threads(session_handles);
            return Err(start_err!(ModelError::Load { model: model_loc.display.clone(), reason: e }));
        }
    }
    let mut worker_handles = Vec::new();
    for w in 0..if staged { workers } else { 0 } {
        let shared = shared.clone();
        let feed = Feed::Read(work_rx.clone());
        let tx = decoded_tx.clone();
        let handle = std::thread::Builder::new().name(format!("batchscore-worker-{w}")).spawn(move || {
            let mut times = ThreadTimes { threads: 1, ..Default::default() };
            let alive = Instant::now();
            while let Some(prepared) = feed.next(&shared, &mut times) {
                let t = Instant::now();
                if tx.send(prepared).is_err() {
                    break;
                }
                times.waiting_for_output += t.elapsed().as_secs_f64();
            }
            times.alive = alive.elapsed().as_secs_f64();
            times
        });
        match handle {
            Ok(h) => worker_handles.push(h),
            Err(e) => {
                drop((decoded_tx, work_rx));
                for h in worker_handles {
                    let _ = h.join();
                }
                stop_threads(session_handles);
                return Err(start_err!(format!("cannot start a worker thread: {e}")));
            }
        }
    }
    drop(decoded_tx);
    drop(work_rx);

    // Reader, and Ctrl-C.
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        let interrupted = interrupted.clone();
        let watchdog = watchdog.clone();
        io.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
                cancel.store(true, Ordering::Relaxed);
                watchdog.terminate_all();
            }
        });
    }
    let gpu_sampler = match device {
        crate::settings::Device::Cuda(n) => Some(crate::gpu::GpuSampler::start("nvidia-smi", n)),
        crate::settings::Device::Cpu => None,
    };

    // Collect, in order.
    let staging = Staging::new(&output, &job_id);
    let format = settings.output_format;
    let mut predictions = (settings.output_action == OutputAction::AppendRow)
        .then(|| PredictionWriter::new(format, staging.upload(&settings.output_file_name)));
    let mut mb_log = staging.upload("mini_batches.csv");
    let mut failure_log = staging.upload("failures.jsonl");
    let mut counts = Counts {
        files_total: plan.files.len() as u64,
        mini_batches_total: plan.mini_batches.len() as u64,
        ..Default::default()
    };
    let mut timings = StageTimings { plan: plan_seconds, ..Default::default() };
    let mut progress = Progress::new(settings.progress, plan.files.len() as u64, settings.progress_interval);
    let mut pending: BTreeMap<usize, MbResult> = BTreeMap::new();
    let mut next = 0usize;
    let mut first_failure: Option<FailureRecord> = None;
    let mut job_error: Option<String> = None;
    let mut write_error: Option<String> = None;
    let header = csv_line(MINI_BATCH_HEADER.iter().map(|s| s.to_string()));
    if let Err(e) = io.block_on(mb_log.write_all(header.as_bytes())) {
        write_error = Some(format!("cannot write logs/mini_batches.csv: {e}"));
        cancel.store(true, Ordering::Relaxed);
    }

    let threshold = settings.error_threshold;
    let mut received = vec![false; plan.mini_batches.len()];
    let mut tally = FileTally::new(&plan);
    for result in result_rx.iter() {
        received[result.id] = true;
        counts.items_failed += result.record.failed_items;
        let (files_scored, files_failed) = tally.add(&result.outcomes);
        counts.files_scored += files_scored;
        counts.files_failed += files_failed;
        if threshold >= 0 && counts.items_failed > threshold as u64 && !cancel.load(Ordering::Relaxed) {
            job_error = Some(format!(
                "{} failed items exceed error_threshold {threshold}; the job was stopped",
                counts.items_failed
            ));
            cancel.store(true, Ordering::Relaxed);
            watchdog.terminate_all();
        }
        progress.add(files_scored + files_failed, result.rows_scored, result.record.failed_items);
        pending.insert(result.id, result);
        while let Some(r) = pending.remove(&next) {
            next += 1;
            let t = Instant::now();
            if let Err(e) = write_result(&io, &r, &mut predictions, &mut mb_log, &mut failure_log, &cancel) {
                if write_error.is_none() {
                    write_error = Some(e);
                }
                cancel.store(true, Ordering::Relaxed);
            }
            timings.write += t.elapsed().as_secs_f64();
            absorb(&mut counts, &mut timings, &mut first_failure, r);
        }
    }
    // Results after a gap (the job stopped early): log them, in order; no predictions.
    for (_, r) in std::mem::take(&mut pending) {
        let _ = write_result(&io, &r, &mut None, &mut mb_log, &mut failure_log, &cancel);
        absorb(&mut counts, &mut timings, &mut first_failure, r);
    }
    let _ = io.block_on(reader);
    let mut panicked = false;
    for h in worker_handles {
        match h.join() {
            Ok(t) => timings.workers.add(&t),
            Err(_) => panicked = true,
        }
    }
    for h in session_handles {
        match h.join() {
            Ok((t, calls)) => {
                timings.sessions.add(&t);
                counts.model_calls += calls;
            }
            Err(_) => panicked = true,
        }
    }
    if panicked {
        write_error.get_or_insert_with(|| "a worker or session thread panicked".into());
    }
    let gpu = gpu_sampler.map(crate::gpu::GpuSampler::stop);
    watchdog.stop();
    progress.finish();
    // Mini-batches that never ran (the job stopped early) are listed too, for the record.
    for (id, _) in received.iter().enumerate().filter(|(_, got)| !**got) {
        let record = MiniBatchRecord {
            id,
            files: plan.mini_batch_label(id),
            attempts: 0,
            status: "not_run",
            seconds: 0.0,
            rows: 0,
            failed_items: 0,
            error: String::new(),
        };
        let _ = io.block_on(mb_log.write_all(csv_line(record.csv_fields()).as_bytes()));
    }

    if interrupted.load(Ordering::Relaxed) {
        job_error.get_or_insert_with(|| "interrupted (Ctrl-C); the output was not published".into());
    }
    if let Some(e) = write_error {
        job_error.get_or_insert(e);
    }
    if job_error.is_none() && counts.rows_scored == 0 && counts.files_total > 0 {
        job_error = Some(if counts.items_failed > 0 {
            "nothing was scored: every item failed (see logs/failures.jsonl)".into()
        } else {
            "nothing was scored: the input files hold no rows".into()
        });
    }
    let status = if job_error.is_some() { JobStatus::Failed } else { JobStatus::Completed };

    // Commit.
    let commit_started = Instant::now();
    let mut lost_race = false;
    let mut predictions_url = None;
    let commit = |r: Result<(), CommitError>, job_error: &mut Option<String>, lost_race: &mut bool| match r {
        Ok(()) => true,
        Err(e) => {
            *lost_race |= matches!(e, CommitError::AlreadyExists { .. });
            job_error.get_or_insert(e.to_string());
            false
        }
    };
    if let Some(w) = predictions.take() {
        if status == JobStatus::Completed {
            let finished = io.block_on(w.finish());
            match finished {
                Ok(true) => {
                    let name = settings.output_file_name.clone();
                    if commit(io.block_on(staging.publish(&name, &name)), &mut job_error, &mut lost_race) {
                        predictions_url = Some(output.join(&name).display);
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    job_error.get_or_insert(e.to_string());
                }
            }
        } else {
            io.block_on(w.abort());
        }
    }
    let status = if job_error.is_some() { JobStatus::Failed } else { JobStatus::Completed };
    if !lost_race {
        for (name, mut upload) in [("mini_batches.csv", mb_log), ("failures.jsonl", failure_log)] {
            match io.block_on(upload.shutdown()) {
                Ok(()) => {
                    commit(io.block_on(staging.publish(name, &format!("logs/{name}"))), &mut job_error, &mut lost_race);
                }
                Err(e) => {
                    job_error.get_or_insert(format!("cannot write logs/{name}: {e}"));
                }
            }
        }
    } else {
        let _ = io.block_on(mb_log.abort());
        let _ = io.block_on(failure_log.abort());
    }
    io.block_on(staging.cleanup());
    timings.commit = commit_started.elapsed().as_secs_f64();
    timings.wall = started.elapsed().as_secs_f64();
    timings.bound_by = timings.bounding_stage();
    let status = if job_error.is_some() { JobStatus::Failed } else { status };

    let result = JobResult {
        job_id,
        status,
        error: job_error,
        first_failure,
        started_at: started_at.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        input: input.display.clone(),
        output: output.display.clone(),
        predictions: predictions_url,
        counts,
        timings_seconds: timings,
        gpu,
        model: model_report,
        settings,
        ignored_settings: deployment.ignored,
        notes: deployment.notes,
        versions: Versions { batchscore: env!("CARGO_PKG_VERSION"), onnxruntime: crate::runtime::loaded_version() },
    };
    let report_url = output.join("logs/job_result.json").display;
    if !lost_race {
        let json = serde_json::to_vec_pretty(&result).expect("serialisable report");
        if let Err(e) = io.block_on(put_create(&output, "logs/job_result.json", Bytes::from(json))) {
            if matches!(e, CommitError::AlreadyExists { .. }) {
                lost_race = true;
            }
            eprintln!("error: {e}");
        }
    }
    Ok(JobOutcome { result, report_url, lost_race })
}

fn absorb(counts: &mut Counts, timings: &mut StageTimings, first: &mut Option<FailureRecord>, r: MbResult) {
    counts.mini_batches_run += 1;
    counts.rows_scored += r.rows_scored;
    counts.rows_failed += r.rows_failed;
    counts.retries += u64::from(r.record.attempts.saturating_sub(1));
    timings.read += r.read;
    timings.decode += r.decode;
    timings.infer += r.infer;
    if first.is_none() {
        *first = r.failures.iter().find(|f| f.items > 0).cloned();
    }
}

fn write_result(
    io: &tokio::runtime::Runtime,
    r: &MbResult,
    predictions: &mut Option<PredictionWriter>,
    mb_log: &mut object_store::buffered::BufWriter,
    failure_log: &mut object_store::buffered::BufWriter,
    cancel: &AtomicBool,
) -> Result<(), String> {
    io.block_on(async {
        if let (Some(w), Some(rows)) = (predictions.as_mut(), &r.rows)
            && !cancel.load(Ordering::Relaxed)
            && rows.num_rows() > 0
        {
            w.write(rows).await.map_err(|e| e.to_string())?;
        }
        mb_log
            .write_all(csv_line(r.record.csv_fields()).as_bytes())
            .await
            .map_err(|e| format!("cannot write logs/mini_batches.csv: {e}"))?;
        let mut lines = Vec::new();
        for f in &r.failures {
            serde_json::to_writer(&mut lines, f).expect("serialisable");
            lines.push(b'\n');
        }
        failure_log.write_all(&lines).await.map_err(|e| format!("cannot write logs/failures.jsonl: {e}"))
    })
}

fn csv_line<I: IntoIterator<Item = String>>(fields: I) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).expect("in-memory write");
    String::from_utf8(w.into_inner().expect("in-memory")).expect("utf-8")
}

/// About how many bytes of input are read ahead of the workers (see `ahead` in [`run`]).
const PREFETCH_BYTES: u64 = 128 << 20;

/// Model sessions on a GPU by default: two, so that one's copies and CPU work overlap the
/// other's kernels.
const GPU_SESSIONS: usize = 2;

/// On a GPU a session takes small mini-batches together until their rows fill whole model
/// calls, or this many calls.
const GPU_GROUP_CALLS: usize = 4;

/// At most this many decoded mini-batches wait for a session (unless there are more sessions).
const MAX_DECODED_WAITING: usize = 64;

/// The reason given for files left unscored when the job stopped; they are not failed items.
const STOPPED: &str = "not scored: the job was stopped";

/// The state of one item (file or piece) of a mini-batch as the worker moves it along.
enum FileState {
    NeedBytes(String),
    Bytes(ItemBytes),
    Decoded(DecodedFile),
    Done(DecodedFile, Vec<ArrayRef>),
    Failed(String, Option<DecodedFile>),
}

/// A mini-batch read and decoded by a worker, on its way to a session.
struct Prepared {
    id: usize,
    items: Vec<usize>,
    /// The rows of each item, when known: from the plan, or from the read (CSV pieces).
    known_rows: Vec<Option<std::ops::Range<u64>>>,
    states: Vec<FileState>,
    read: f64,
    decode: f64,
    /// Seconds of model calls spent on it so far (its share of a packed call).
    infer: f64,
    /// Seconds of work on it so far, not counting its waits between stages.
    busy: f64,
}

impl Prepared {
    /// Rows (or images) decoded and ready for the model.
    fn decoded_rows(&self) -> usize {
        self.states
            .iter()
            .map(|s| match s {
                FileState::Decoded(d) => d.rows,
                _ => 0,
            })
            .sum()
    }
}

/// Where a session's mini-batches come from.
enum Feed {
    /// Read ones, which the session's own thread decodes (one session per worker).
    Read(flume::Receiver<Fetched>),
    /// Decoded ones, from the workers.
    Decoded(flume::Receiver<Prepared>),
}

impl Feed {
    /// The next mini-batch, decoded; `None` once there are no more. Only the wait counts as
    /// waiting for input.
    fn next(&self, shared: &Shared, times: &mut ThreadTimes) -> Option<Prepared> {
        match self {
            Feed::Read(rx) => receive(rx, &shared.cancel, times).map(|f| prepare(shared, f)),
            Feed::Decoded(rx) => receive(rx, &shared.cancel, times),
        }
    }
}

/// The next mini-batch off `rx`, counting the wait as waiting for input; `None` once there are
/// no more. Once the job is stopping, what arrives is left unrun (listed as not_run).
fn receive<T>(rx: &flume::Receiver<T>, cancel: &AtomicBool, times: &mut ThreadTimes) -> Option<T> {
    loop {
        let t = Instant::now();
        let got = rx.recv();
        times.waiting_for_input += t.elapsed().as_secs_f64();
        match got {
            Ok(_) if cancel.load(Ordering::Relaxed) => continue,
            Ok(x) => return Some(x),
            Err(_) => return None,
        }
    }
}

/// A session's loop: takes mini-batches until its model calls are full (small mini-batches,
/// such as a few images each, are scored together), scores them, and hands the results on.
fn run_session(
    shared: &Shared,
    runner: &mut ModelRunner,
    feed: &Feed,
    tx: &flume::Sender<MbResult>,
    batch_size: usize,
    group_calls: usize,
) -> ThreadTimes {
    let mut times = ThreadTimes { threads: 1, ..Default::default() };
    let alive = Instant::now();
    'work: while let Some(first) = feed.next(shared, &mut times) {
        // Take more until the calls come out full, or there are `group_calls` calls' worth (on
        // the CPU, one: until a call is full).
        let mut rows = first.decoded_rows();
        let mut group = vec![first];
        while rows % batch_size != 0 && rows < group_calls * batch_size && !shared.cancel.load(Ordering::Relaxed) {
            let Some(p) = feed.next(shared, &mut times) else { break };
            rows += p.decoded_rows();
            group.push(p);
        }
        for result in score_group(shared, runner, group) {
            let t = Instant::now();
            if tx.send(result).is_err() {
                break 'work;
            }
            times.waiting_for_output += t.elapsed().as_secs_f64();
        }
    }
    times.alive = alive.elapsed().as_secs_f64();
    times
}

/// A worker's part: decodes what was read (deterministic: a file that cannot be decoded fails
/// now, and is not retried).
fn prepare(shared: &Shared, fetched: Fetched) -> Prepared {
    let started = Instant::now();
    let items: Vec<usize> = shared.plan.mini_batches[fetched.mini_batch].clone().collect();
    let known_rows = items.iter().map(|i| shared.plan.items[*i].part.rows()).collect();
    let states = fetched
        .bytes
        .into_iter()
        .map(|b| match b {
            Ok(b) => FileState::Bytes(b),
            Err(e) => FileState::NeedBytes(e),
        })
        .collect();
    let mut p = Prepared {
        id: fetched.mini_batch,
        items,
        known_rows,
        states,
        read: fetched.seconds,
        decode: 0.0,
        infer: 0.0,
        busy: 0.0,
    };
    decode_read(shared, &mut p);
    p.busy = started.elapsed().as_secs_f64();
    p
}

/// Decodes the items whose bytes are in.
fn decode_read(shared: &Shared, p: &mut Prepared) {
    for (i, st) in p.states.iter_mut().enumerate() {
        if let FileState::Bytes(_) = st {
            let FileState::Bytes(b) = std::mem::replace(st, FileState::Failed(String::new(), None)) else {
                unreachable!("matched above")
            };
            let t = Instant::now();
            let decoded = decode_item(shared, p.items[i], b, &mut p.known_rows[i]);
            p.decode += t.elapsed().as_secs_f64();
            *st = match decoded {
                Ok(d) => FileState::Decoded(d),
                Err(e) => FileState::Failed(e.0, None),
            };
        }
    }
}

/// A session's part for several mini-batches taken together: one packed pass over all their
/// decoded items, so that small mini-batches still make full model calls. If that pass fails,
/// each mini-batch is scored on its own, with its own retries and narrowing, so a bad file
/// fails only its own mini-batch.
fn score_group(shared: &Shared, runner: &mut ModelRunner, mut group: Vec<Prepared>) -> Vec<MbResult> {
    if group.len() > 1 && !shared.cancel.load(Ordering::Relaxed) {
        let started = Instant::now();
        let rows: Vec<usize> = group.iter().map(Prepared::decoded_rows).collect();
        let total = rows.iter().sum::<usize>().max(1) as f64;
        let mut infer = InferTimings::default();
        // The attempt's time limit is per mini-batch.
        let timeout = shared.settings.timeout * group.len() as f64;
        if let Ok(attempt) = shared.watchdog.attempt(timeout, shared.cancel.clone()) {
            let decoded: Vec<&mut FileState> = group
                .iter_mut()
                .flat_map(|p| p.states.iter_mut())
                .filter(|s| matches!(s, FileState::Decoded(_)))
                .collect();
            if let Err(e) = infer_states(runner, decoded, &attempt, &mut infer) {
                tracing::debug!("packed call over mini-batches {}..={}: {e}", group[0].id, group[group.len() - 1].id);
            }
        }
        // Each mini-batch's share of the packed pass, by its rows.
        let spent = started.elapsed().as_secs_f64();
        for (p, r) in group.iter_mut().zip(rows) {
            p.infer += infer.infer * r as f64 / total;
            p.busy += spent * r as f64 / total;
        }
    }
    group.into_iter().map(|p| score(shared, runner, p)).collect()
}

/// A session's part: scores one mini-batch's decoded items (those a packed pass has not
/// already scored), re-reading what could not be read, with retries and narrowing; then
/// accounts for it.
fn score(shared: &Shared, runner: &mut ModelRunner, mut p: Prepared) -> MbResult {
    let started = Instant::now();
    let s = &shared.settings;
    let mut infer = InferTimings { infer: p.infer };
    let mut attempts = 0u32;
    let mut last_error: Option<String> = None;
    let max_attempts = s.max_retries + 1;

    while attempts < max_attempts && !shared.cancel.load(Ordering::Relaxed) {
        attempts += 1;
        let attempt = match shared.watchdog.attempt(s.timeout, shared.cancel.clone()) {
            Ok(a) => a,
            Err(e) => {
                last_error = Some(e.to_string());
                continue;
            }
        };
        // Re-read what could not be read, and decode it.
        for (i, st) in p.states.iter_mut().enumerate() {
            if let FileState::NeedBytes(_) = st {
                let t = Instant::now();
                let got = shared.io.block_on(shared.reader.fetch(p.items[i]));
                p.read += t.elapsed().as_secs_f64();
                *st = match got {
                    Ok(b) => FileState::Bytes(b),
                    Err(e) => FileState::NeedBytes(e),
                };
            }
        }
        decode_read(shared, &mut p);
        let todo: Vec<&mut FileState> = p.states.iter_mut().filter(|s| matches!(s, FileState::Decoded(_))).collect();
        if !todo.is_empty() {
            match infer_states(runner, todo, &attempt, &mut infer) {
                Ok(()) => {}
                Err(InferError::Cancelled) => break,
                Err(e) => {
                    tracing::debug!("mini-batch {} attempt {attempts}: {e}", p.id);
                    last_error = Some(e.to_string());
                }
            }
        }
        if let Some(FileState::NeedBytes(e)) = p.states.iter().find(|s| matches!(s, FileState::NeedBytes(_))) {
            last_error = Some(e.clone());
        }
        if !p.states.iter().any(|s| matches!(s, FileState::NeedBytes(_) | FileState::Decoded(_))) {
            break;
        }
    }
    // Narrow down what still fails, so one bad file does not fail its neighbours.
    let stuck: Vec<usize> = (0..p.states.len()).filter(|i| matches!(p.states[*i], FileState::Decoded(_))).collect();
    if stuck.len() > 1 && !shared.cancel.load(Ordering::Relaxed) {
        narrow(shared, runner, &mut p.states, &stuck, &mut infer);
    }
    let cancelled = shared.cancel.load(Ordering::Relaxed);
    for st in p.states.iter_mut() {
        let reason = match st {
            FileState::NeedBytes(_) | FileState::Bytes(_) | FileState::Decoded(_) if cancelled => {
                Some(STOPPED.to_string())
            }
            FileState::NeedBytes(e) => Some(e.clone()),
            FileState::Bytes(_) | FileState::Decoded(_) => {
                Some(last_error.clone().unwrap_or_else(|| "model call failed".into()))
            }
            FileState::Done(..) | FileState::Failed(..) => None,
        };
        if let Some(reason) = reason {
            let old = std::mem::replace(st, FileState::Failed(String::new(), None));
            let decoded = match old {
                FileState::Decoded(d) => Some(d),
                _ => None,
            };
            *st = FileState::Failed(reason, decoded);
        }
    }
    p.infer = infer.infer;
    finish_result(shared, p, attempts, started)
}

/// Decodes one item's bytes: a whole file, or a piece of one (noting a CSV piece's rows).
fn decode_item(
    shared: &Shared,
    item: usize,
    bytes: ItemBytes,
    known_rows: &mut Option<std::ops::Range<u64>>,
) -> Result<DecodedFile, crate::preprocess::DecodeError> {
    let it = &shared.plan.items[item];
    let file = &shared.plan.files[it.file];
    match (bytes, &it.part) {
        (ItemBytes::Whole(b), _) => shared.feeder.decode(file.kind, &file.rel, b),
        (ItemBytes::RowGroups(chunks), Part::RowGroups { groups, rows, footer }) => shared.feeder.decode_piece(
            &file.rel,
            TabularPiece::RowGroups { chunks, footer: footer.clone(), groups: groups.clone(), first_row: rows.start },
        ),
        (ItemBytes::Csv(piece), _) => {
            *known_rows = Some(piece.first_row..piece.first_row + piece.rows);
            shared.feeder.decode_piece(&file.rel, TabularPiece::Csv(piece))
        }
        (ItemBytes::RowGroups(_), _) => Err(crate::preprocess::DecodeError(format!(
            "{}: row groups read for an item that is not a Parquet piece (an internal error; please report it)",
            file.rel
        ))),
    }
}

/// Runs the given decoded items in one packed pass, in order; on success they become Done.
fn infer_states(
    runner: &mut ModelRunner,
    mut states: Vec<&mut FileState>,
    attempt: &Attempt,
    infer: &mut InferTimings,
) -> Result<(), InferError> {
    let decoded: Vec<&DecodedFile> = states
        .iter()
        .map(|s| match &**s {
            FileState::Decoded(d) => d,
            _ => unreachable!("only decoded files are scored"),
        })
        .collect();
    let outputs = runner.run_rows(&decoded, attempt, infer)?;
    let sizes: Vec<usize> = decoded.iter().map(|d| d.rows).collect();
    let mut offset = 0;
    for (st, size) in states.iter_mut().zip(sizes) {
        let cols: Vec<ArrayRef> = outputs.iter().map(|c| c.slice(offset, size)).collect();
        offset += size;
        let FileState::Decoded(d) = std::mem::replace(&mut **st, FileState::Failed(String::new(), None)) else {
            unreachable!()
        };
        **st = FileState::Done(d, cols);
    }
    Ok(())
}

/// Splits failing files in halves, one attempt each, until single files remain.
fn narrow(
    shared: &Shared,
    runner: &mut ModelRunner,
    states: &mut [FileState],
    idx: &[usize],
    infer: &mut InferTimings,
) {
    if shared.cancel.load(Ordering::Relaxed) {
        return;
    }
    let Ok(attempt) = shared.watchdog.attempt(shared.settings.timeout, shared.cancel.clone()) else {
        return;
    };
    let chosen: Vec<&mut FileState> =
        states.iter_mut().enumerate().filter(|(i, _)| idx.contains(i)).map(|(_, s)| s).collect();
    match infer_states(runner, chosen, &attempt, infer) {
        Ok(()) => {}
        Err(e) => {
            drop(attempt);
            if idx.len() == 1 {
                let FileState::Decoded(d) =
                    std::mem::replace(&mut states[idx[0]], FileState::Failed(String::new(), None))
                else {
                    unreachable!()
                };
                states[idx[0]] = FileState::Failed(e.to_string(), Some(d));
            } else {
                let (a, b) = idx.split_at(idx.len() / 2);
                narrow(shared, runner, states, a, infer);
                narrow(shared, runner, states, b, infer);
            }
        }
    }
}

/// Turns a scored mini-batch into its result: output rows, failures, outcomes and its record.
/// `started`: when the session took it up.
fn finish_result(shared: &Shared, p: Prepared, attempts: u32, started: Instant) -> MbResult {
    let Prepared { id, items, known_rows, states, read, decode, infer, busy } = p;
    let plan = &shared.plan;
    let tabular = shared.feeder.has_row_numbers();
    let mut failures = Vec::new();
    // (index into `items`, decoded rows, model outputs)
    let mut done: Vec<(usize, DecodedFile, Vec<ArrayRef>)> = Vec::new();
    let mut outcomes: Vec<(usize, ItemOutcome)> = Vec::with_capacity(items.len());
    let mut rows_failed = 0u64;
    let mut items_failed = 0u64;
    let mut stopped = false;
    let mut first_error = String::new();
    let mut record_failure = |f: FailureRecord, failures: &mut Vec<FailureRecord>| {
        if first_error.is_empty() {
            first_error = format!("{}: {}", f.file, f.error);
        }
        failures.push(f);
    };
    // A failure of a whole item: the file, and for a piece which one and its rows when known.
    let item_failure = |k: usize, items_count: u64, error: String| {
        let part = &plan.items[items[k]].part;
        FailureRecord {
            file: plan.file_of(items[k]).rel.clone(),
            row: None,
            piece: part.describe(),
            rows: known_rows[k]
                .as_ref()
                .filter(|r| !r.is_empty() && !matches!(part, Part::Whole))
                .map(|r| [r.start, r.end - 1]),
            items: items_count,
            mini_batch: id,
            attempts,
            error,
        }
    };
    for (k, st) in states.into_iter().enumerate() {
        let file = plan.file_of(items[k]);
        let row_failures = |d: &DecodedFile| {
            d.failed_rows
                .iter()
                .map(|(row, why)| FailureRecord {
                    file: file.rel.clone(),
                    row: Some(*row),
                    piece: None,
                    rows: None,
                    items: 1,
                    mini_batch: id,
                    attempts,
                    error: why.clone(),
                })
                .collect::<Vec<_>>()
        };
        match st {
            FileState::Done(d, cols) => {
                outcomes.push((plan.items[items[k]].file, ItemOutcome::Scored));
                for f in row_failures(&d) {
                    rows_failed += 1;
                    items_failed += 1;
                    record_failure(f, &mut failures);
                }
                done.push((k, d, cols));
            }
            FileState::Failed(error, _) if error == STOPPED => {
                stopped = true;
                outcomes.push((plan.items[items[k]].file, ItemOutcome::Stopped));
                failures.push(item_failure(k, 0, error));
            }
            FileState::Failed(error, decoded) => {
                outcomes.push((plan.items[items[k]].file, ItemOutcome::Failed));
                // A tabular item that failed after decoding fails all its rows; one that could
                // not be read or decoded counts as one item (its rows are not all known).
                let count = match (&decoded, tabular) {
                    (Some(d), true) => (d.rows as u64).max(1),
                    _ => 1,
                };
                if tabular && let Some(d) = &decoded {
                    rows_failed += d.rows as u64;
                }
                items_failed += count;
                record_failure(item_failure(k, count, error), &mut failures);
                if let Some(d) = &decoded {
                    for f in row_failures(d) {
                        rows_failed += 1;
                        items_failed += 1;
                        record_failure(f, &mut failures);
                    }
                }
            }
            _ => unreachable!("every item is done or failed by now"),
        }
    }
    let rows_scored: u64 = done.iter().map(|(_, d, _)| d.rows as u64).sum();
    let rows = if done.is_empty() {
        None
    } else {
        let parts: Vec<(&str, &DecodedFile)> =
            done.iter().map(|(k, d, _)| (plan.file_of(items[*k]).rel.as_str(), d)).collect();
        let n_out = shared.layout.outputs.len();
        let cols: Vec<ArrayRef> = (0..n_out)
            .map(|o| {
                let pieces: Vec<&dyn arrow::array::Array> = done.iter().map(|(_, _, c)| c[o].as_ref()).collect();
                arrow::compute::concat(&pieces).expect("outputs of one model share a type")
            })
            .collect();
        match shared.layout.rows(&parts, &cols) {
            Ok(b) => Some(b),
            Err(e) => {
                // Cannot happen for consistent model outputs; fail the items rather than panic.
                for (k, d, _) in &done {
                    items_failed += if tabular { d.rows as u64 } else { 1 };
                    outcomes[*k].1 = ItemOutcome::Failed;
                    record_failure(item_failure(*k, d.rows as u64, e.to_string()), &mut failures);
                }
                None
            }
        }
    };
    let rows_scored = if rows.is_some() { rows_scored } else { 0 };
    let status = if stopped {
        "stopped"
    } else if items_failed == 0 {
        "completed"
    } else if rows_scored > 0 {
        "partial"
    } else {
        "failed"
    };
    MbResult {
        id,
        record: MiniBatchRecord {
            id,
            files: plan.mini_batch_label(id),
            attempts,
            status,
            seconds: busy + started.elapsed().as_secs_f64(),
            rows: rows_scored,
            failed_items: items_failed,
            error: first_error,
        },
        rows,
        failures,
        outcomes,
        rows_scored,
        rows_failed,
        read,
        decode,
        infer,
    }
}

//! The running pipeline: the reader on tokio, the workers and sessions on their own threads,
//! bounded channels between them, and the signals that stop a job.
//!
//! ```text
//!  tokio (I/O)            worker threads (CPU)                 sessions (ORT)          collector
//!  reader ──bounded──►  decode ──bounded──► (or decode here) ─► infer, retries ──bounded──► write
//! ```
//!
//! With one session per worker (the CPU layout), each worker decodes its own mini-batches and
//! scores them; with fewer sessions than workers (a GPU), workers decode and hand decoded
//! mini-batches to the sessions. Ctrl-C and SIGTERM (how orchestrators stop a job) both stop the
//! job the same way: running model calls are terminated, what was not scored is listed as not
//! run, and the Failed job's logs are published. A second signal exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::control::Interrupt;
use super::prepare::{Prepared, Threads};
use super::resume::Settled;
use super::work::{Batch, MbResult, Shared, crashed_result, panic_text, prepare, score_group};
use super::{JobControl, PrepareError};
use crate::engine::infer::{ModelRunner, Watchdog, build_session_on};
use crate::engine::plan::StagingOwner;
use crate::engine::read::{Fetched, ItemReader, run_reader};
use crate::engine::report::ThreadTimes;
use crate::engine::settings::{Device, Settings};
use crate::engine::state::lease::{Claims, Heartbeat, claim};

/// About how many bytes of input are read ahead of the workers.
const PREFETCH_BYTES: u64 = 128 << 20;

/// On a GPU a session takes small mini-batches together until their rows fill whole model
/// calls, or this many calls.
const GPU_GROUP_CALLS: usize = 4;

/// At most this many decoded mini-batches wait for a session (unless there are more sessions).
const MAX_DECODED_WAITING: usize = 64;

/// The pipeline's threads and channels, while the collector takes the results.
pub(super) struct Running {
    pub shared: Arc<Shared>,
    pub results: flume::Receiver<MbResult>,
    pub reader: tokio::task::JoinHandle<()>,
    pub workers: Vec<std::thread::JoinHandle<ThreadTimes>>,
    pub sessions: Vec<std::thread::JoinHandle<(ThreadTimes, u64)>>,
    /// The signal that stopped the job, if one did.
    pub interrupted: Arc<Mutex<Option<Interrupt>>>,
    pub gpu: Option<crate::engine::gpu::GpuSampler>,
}

/// What the threads did, once joined.
pub(super) struct Joined {
    pub workers: ThreadTimes,
    pub sessions: ThreadTimes,
    pub model_calls: u64,
    pub panicked: bool,
}

impl Running {
    /// Waits for every thread.
    pub fn join(self, io: &tokio::runtime::Runtime) -> (Joined, Option<crate::engine::gpu::GpuReport>) {
        let _ = io.block_on(self.reader);
        let mut joined = Joined {
            workers: ThreadTimes::default(),
            sessions: ThreadTimes::default(),
            model_calls: 0,
            panicked: false,
        };
        for h in self.workers {
            match h.join() {
                Ok(t) => joined.workers.add(&t),
                Err(_) => joined.panicked = true,
            }
        }
        for h in self.sessions {
            match h.join() {
                Ok((t, calls)) => {
                    joined.sessions.add(&t);
                    joined.model_calls += calls;
                }
                Err(_) => joined.panicked = true,
            }
        }
        self.shared.watchdog.stop();
        (joined, self.gpu.map(crate::engine::gpu::GpuSampler::stop))
    }
}

/// Starts the reader, the sessions (waiting until each has opened) and the workers.
pub(super) fn start(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    job: &mut Prepared,
    settled: &Settled,
    claims: &Arc<Claims>,
    control: &JobControl,
    signals: bool,
) -> Result<Running, PrepareError> {
    let t = job.threads;
    let watchdog = Watchdog::start();
    let shared = shared_state(io, settings, job, watchdog.clone());
    let cancel = shared.cancel.clone();
    let q = Queues::for_job(&job.plan, &job.feeder, settings, t);
    // Claimed ahead: twice what the reader and the workers hold, so that claims (a round trip
    // each batch) stay ahead of reading.
    let hold = 2 * (q.ahead + t.workers.max(t.sessions) + 1);
    let ids = mini_batches_to_score(io, settled, claims, hold, &cancel, &watchdog);
    let staged = t.sessions < t.workers;
    let (work_tx, work_rx) = flume::bounded::<Fetched>(1);
    let (decoded_tx, decoded_rx) = flume::bounded::<Batch>(if staged { q.waiting } else { 0 });
    // Bounded too: when writing the output is the slow stage, sessions wait instead of piling
    // scored mini-batches up in memory.
    let (result_tx, result_rx) = flume::bounded::<MbResult>(t.sessions);
    let (ready_tx, ready_rx) = flume::unbounded::<Result<(), String>>();
    // Reading starts now, while the sessions open.
    let reader = io.spawn(run_reader(shared.reader.clone(), ids, work_tx, cancel.clone(), q.ahead, 16));
    let env = crate::engine::runtime::environment()?;
    let mut first_session = job.first_session.take();
    let mut session_handles = Vec::new();
    for n in 0..t.sessions {
        let feed = if staged { Feed::Decoded(decoded_rx.clone()) } else { Feed::Read(work_rx.clone()) };
        let session = SessionThread {
            shared: shared.clone(),
            session: first_session.take(),
            model: job.model.clone(),
            info: job.info.clone(),
            env,
            feed,
            results: result_tx.clone(),
            ready: ready_tx.clone(),
            group_calls: q.group_calls,
        };
        let name = format!("batchscore-{}-{n}", if staged { "session" } else { "worker" });
        let handle = session.spawn(name, settings.device, settings.graph_optimization, t);
        session_handles.push(handle.map_err(|source| PrepareError::Thread { what: "session", source })?);
    }
    drop((result_tx, ready_tx, decoded_rx));
    let stop = |handles: Vec<std::thread::JoinHandle<(ThreadTimes, u64)>>| {
        cancel.store(true, Ordering::Relaxed);
        for h in handles {
            let _ = h.join();
        }
        watchdog.stop();
    };
    for _ in 0..t.sessions {
        if let Err(e) = ready_rx.recv().unwrap_or_else(|_| Err("a session thread stopped while starting".into())) {
            drop((decoded_tx, work_rx));
            stop(session_handles);
            return Err(PrepareError::Model(crate::engine::model::ModelError::Load {
                model: job.model.display.clone(),
                reason: e,
            }));
        }
    }
    let mut worker_handles = Vec::new();
    for w in 0..if staged { t.workers } else { 0 } {
        match spawn_worker(w, shared.clone(), Feed::Read(work_rx.clone()), decoded_tx.clone()) {
            Ok(h) => worker_handles.push(h),
            Err(e) => {
                drop((decoded_tx, work_rx));
                for h in worker_handles {
                    let _ = h.join();
                }
                stop(session_handles);
                return Err(PrepareError::Thread { what: "worker", source: e });
            }
        }
    }
    drop((decoded_tx, work_rx));
    let interrupted = Arc::new(Mutex::new(None));
    io.spawn(watch_stops(control.clone(), signals, cancel, watchdog, interrupted.clone()));
    let gpu = match settings.device {
        Device::Cuda(n) => Some(crate::engine::gpu::GpuSampler::start("nvidia-smi", n)),
        Device::Cpu => None,
    };
    Ok(Running {
        shared,
        results: result_rx,
        reader,
        workers: worker_handles,
        sessions: session_handles,
        interrupted,
        gpu,
    })
}

/// The mini-batches this process scores: those without a part, in order, for a job in one
/// process; for one of several, those it claims (see [`crate::engine::state::lease`]), with
/// its heartbeat running until the job's end.
fn mini_batches_to_score(
    io: &tokio::runtime::Runtime,
    settled: &Settled,
    claims: &Arc<Claims>,
    hold: usize,
    cancel: &Arc<AtomicBool>,
    watchdog: &Arc<Watchdog>,
) -> futures::stream::BoxStream<'static, usize> {
    use futures::StreamExt;
    let total = settled.doc.mini_batches.len();
    let Some(instance) = settled.instance else {
        let todo: Vec<usize> = (0..total).filter(|mb| !settled.prior.parts.contains(mb)).collect();
        return futures::stream::iter(todo).boxed();
    };
    let stop_all = {
        let (cancel, watchdog) = (cancel.clone(), watchdog.clone());
        move || {
            tracing::warn!("another process stopped the job: stopping");
            cancel.store(true, Ordering::Relaxed);
            watchdog.terminate_all();
        }
    };
    let beat = Heartbeat {
        owner: StagingOwner::this_process(&settled.state.job_id),
        process: settled.state.process.clone(),
        instance_index: Some(instance.index),
        beat_at: String::new(),
    };
    claims.start_heartbeat(io.handle(), settled.state.clone(), beat, settled.lease, Box::new(stop_all.clone()));
    let (tx, rx) = flume::bounded::<usize>(1);
    let claiming =
        claim(settled.state.clone(), claims.clone(), total, instance, settled.lease, hold, tx, cancel.clone());
    let claims = claims.clone();
    io.spawn(async move {
        claiming.await;
        if claims.stopped_by.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            stop_all();
        }
    });
    rx.into_stream().boxed()
}

/// What every worker and session shares.
fn shared_state(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    job: &Prepared,
    watchdog: Arc<Watchdog>,
) -> Arc<Shared> {
    let tabular = settings.tabular.clone();
    let delimiter = move |name: &str| tabular.delimiter_for(name);
    let reader = ItemReader::new(job.input.store.clone(), job.plan.clone(), job.feeder.columns(), &delimiter);
    Arc::new(Shared {
        plan: job.plan.clone(),
        reader: Arc::new(reader),
        feeder: job.feeder.clone(),
        layout: job.layout.clone(),
        settings: settings.clone(),
        watchdog,
        cancel: Arc::new(AtomicBool::new(false)),
        io: io.handle().clone(),
    })
}

/// How much waits between the stages.
///
/// Memory holds the mini-batches being read (`ahead`), one waiting for a worker, one being
/// decoded per worker, decoded ones waiting for a session (`waiting`), those being scored, and
/// up to one scored per session waiting for the writer.
struct Queues {
    /// Mini-batches read ahead: about PREFETCH_BYTES of input, at least one and at most four.
    ahead: usize,
    /// Model calls' worth of mini-batches a session takes together.
    group_calls: usize,
    /// Decoded mini-batches waiting for the sessions (when workers decode for them).
    waiting: usize,
}

impl Queues {
    fn for_job(
        plan: &crate::engine::plan::Plan,
        feeder: &crate::engine::preprocess::Feeder,
        settings: &Settings,
        t: Threads,
    ) -> Queues {
        let mean_bytes = plan.total_bytes / (plan.mini_batches.len() as u64).max(1);
        let ahead = (PREFETCH_BYTES / mean_bytes.max(1)).clamp(1, 4) as usize;
        // A session takes small mini-batches together until they fill a model call; on a GPU,
        // until the calls come out full (a short call costs a GPU nearly a full one's time), up
        // to GPU_GROUP_CALLS calls' worth. On the CPU a short call costs in proportion, and
        // holding more decoded images would only add memory.
        let group_calls = match settings.device {
            Device::Cpu => 1,
            Device::Cuda(_) => GPU_GROUP_CALLS,
        };
        // Decoded mini-batches wait for a session: enough of them for its next model calls.
        let fill = match feeder {
            crate::engine::preprocess::Feeder::Image { .. } => {
                (group_calls * t.batch_size).div_ceil((plan.items.len() / plan.mini_batches.len().max(1)).max(1))
            }
            _ => 1,
        };
        let waiting = (t.sessions * fill).clamp(t.sessions, MAX_DECODED_WAITING.max(t.sessions));
        Queues { ahead, group_calls, waiting }
    }
}

/// One session's thread: opens its session (the first one reuses the session opened to read
/// the model), says it is ready, then scores what its feed gives.
struct SessionThread {
    shared: Arc<Shared>,
    session: Option<ort::session::Session>,
    model: Arc<super::prepare::LoadedModel>,
    info: Arc<crate::engine::model::ModelInfo>,
    env: &'static ort::environment::Environment,
    feed: Feed,
    results: flume::Sender<MbResult>,
    ready: flume::Sender<Result<(), String>>,
    group_calls: usize,
}

impl SessionThread {
    fn spawn(
        self,
        name: String,
        device: Device,
        graph: crate::engine::settings::GraphOptimization,
        t: Threads,
    ) -> std::io::Result<std::thread::JoinHandle<(ThreadTimes, u64)>> {
        std::thread::Builder::new().name(name).spawn(move || {
            let session = match self.session {
                Some(s) => Ok(s),
                None => build_session_on(self.env, self.model.source(), t.intra_threads, device, graph),
            };
            let mut runner = match session {
                Ok(s) => {
                    let _ = self.ready.send(Ok(()));
                    ModelRunner::new(s, self.info, t.batch_size)
                }
                Err(e) => {
                    let _ = self.ready.send(Err(e));
                    return (ThreadTimes::default(), 0);
                }
            };
            drop(self.model);
            let times =
                run_session(&self.shared, &mut runner, &self.feed, &self.results, t.batch_size, self.group_calls);
            (times, runner.calls())
        })
    }
}

/// A worker that decodes mini-batches for the sessions.
fn spawn_worker(
    w: usize,
    shared: Arc<Shared>,
    feed: Feed,
    tx: flume::Sender<Batch>,
) -> std::io::Result<std::thread::JoinHandle<ThreadTimes>> {
    std::thread::Builder::new().name(format!("batchscore-worker-{w}")).spawn(move || {
        let mut times = ThreadTimes { threads: 1, ..Default::default() };
        let alive = Instant::now();
        while let Some(batch) = feed.next(&shared, &mut times) {
            let t = Instant::now();
            if tx.send(batch).is_err() {
                break;
            }
            times.waiting_for_output += t.elapsed().as_secs_f64();
        }
        times.alive = alive.elapsed().as_secs_f64();
        times
    })
}

/// [`JobControl::cancel`] stops the job; with `signals`, so do Ctrl-C (SIGINT) and SIGTERM, and
/// a second signal exits at once.
async fn watch_stops(
    control: JobControl,
    signals: bool,
    cancel: Arc<AtomicBool>,
    watchdog: Arc<Watchdog>,
    interrupted: Arc<Mutex<Option<Interrupt>>>,
) {
    let stop = |why: Interrupt| {
        *interrupted.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        cancel.store(true, Ordering::Relaxed);
        watchdog.terminate_all();
    };
    if !signals {
        let reason = control.wait_canceled().await;
        tracing::warn!("canceled ({reason}): stopping the job");
        return stop(Interrupt::Canceled(reason));
    }
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::warn!("cannot watch for Ctrl-C and SIGTERM; stopping the job will not publish its logs");
        let reason = control.wait_canceled().await;
        return stop(Interrupt::Canceled(reason));
    };
    let mut seen = 0;
    loop {
        let name = tokio::select! {
            _ = int.recv() => "Ctrl-C",
            _ = term.recv() => "SIGTERM",
            reason = control.wait_canceled(), if seen == 0 => {
                tracing::warn!("canceled ({reason}): stopping the job");
                stop(Interrupt::Canceled(reason));
                seen += 1;
                continue;
            }
        };
        seen += 1;
        if seen > 1 {
            eprintln!("error: {name} again: exiting now, without publishing the job's logs");
            std::process::exit(1);
        }
        tracing::warn!("{name}: stopping the job (running model calls are stopped; {name} again exits at once)");
        stop(Interrupt::Signal(name));
    }
}

/// Where a session's mini-batches come from.
enum Feed {
    /// Read ones, which the session's own thread decodes (one session per worker).
    Read(flume::Receiver<Fetched>),
    /// Decoded ones, from the workers.
    Decoded(flume::Receiver<Batch>),
}

impl Feed {
    /// The next mini-batch, decoded; `None` once there are no more. Only the wait counts as
    /// waiting for input.
    fn next(&self, shared: &Shared, times: &mut ThreadTimes) -> Option<Batch> {
        match self {
            Feed::Read(rx) => receive(rx, &shared.cancel, times).map(|f| prepare(shared, f)),
            Feed::Decoded(rx) => receive(rx, &shared.cancel, times),
        }
    }

    /// The next mini-batch if one comes within [`GROUP_WAIT`]. A session filling a model call
    /// takes more only while more are coming: it never holds what it has for input that may be
    /// long in coming (a slow store, or the rest of a job that other processes hold).
    fn next_soon(&self, shared: &Shared, times: &mut ThreadTimes) -> Option<Batch> {
        // Only the wait counts as waiting for input (decoding a read one is the session's work).
        let t = Instant::now();
        match self {
            Feed::Read(rx) => {
                let got = rx.recv_timeout(GROUP_WAIT).ok();
                times.waiting_for_input += t.elapsed().as_secs_f64();
                got.filter(|_| !shared.cancel.load(Ordering::Relaxed)).map(|f| prepare(shared, f))
            }
            Feed::Decoded(rx) => {
                let got = rx.recv_timeout(GROUP_WAIT).ok();
                times.waiting_for_input += t.elapsed().as_secs_f64();
                got.filter(|_| !shared.cancel.load(Ordering::Relaxed))
            }
        }
    }
}

/// How long a session waits for one more mini-batch to fill a model call.
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

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
/// A panic while scoring fails that group's items instead of losing them.
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
        // the CPU, one: until a call is full), while more come.
        let mut rows = first.decoded_rows();
        let mut group = vec![first];
        while rows % batch_size != 0 && rows < group_calls * batch_size && !shared.cancel.load(Ordering::Relaxed) {
            let Some(p) = feed.next_soon(shared, &mut times) else { break };
            rows += p.decoded_rows();
            group.push(p);
        }
        let ids: Vec<usize> = group.iter().map(|b| b.id).collect();
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| score_group(shared, runner, group)))
            .unwrap_or_else(|panic| {
                let why = panic_text(&panic);
                ids.iter().map(|id| crashed_result(shared, *id, &why)).collect()
            });
        for mut result in results {
            // Encoded here, on every session side by side, not on the collector's one thread.
            let t = Instant::now();
            let id = result.id;
            result.rows = std::mem::replace(&mut result.rows, Ok(None))
                .and_then(|rows| super::encode::encode_rows(&shared.settings, rows))
                .map_err(|e| format!("cannot encode mini-batch {id}: {e}"));
            result.encode = t.elapsed().as_secs_f64();
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

//! The job executor: at most N jobs run at once, each on its own thread, taking Queued jobs
//! from the catalog oldest first (so a queue survives a restart of the server). A submission
//! wakes a worker; workers also look every second, for jobs queued by `invoke --no-wait`.
//!
//! On shutdown, workers take no new job, and running jobs are canceled (Canceled, nothing
//! published); queued jobs stay Queued and run when the server starts again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::service::jobs;
use crate::workspace::Workspace;
use crate::workspace::assets::{Job, JobStatus};

/// The executor's workers and how to wake and stop them.
pub struct Executor {
    shared: Arc<Shared>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

struct Shared {
    root: PathBuf,
    stopping: AtomicBool,
    wake: (Mutex<u64>, Condvar),
    /// The jobs this server runs now.
    running: Mutex<Vec<String>>,
}

impl Executor {
    /// Starts `n` workers on the workspace at `root`.
    pub fn start(root: PathBuf, n: usize) -> std::io::Result<Executor> {
        let shared = Arc::new(Shared {
            root,
            stopping: AtomicBool::new(false),
            wake: (Mutex::new(0), Condvar::new()),
            running: Mutex::new(Vec::new()),
        });
        let workers = (0..n.max(1))
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new().name(format!("batchscore-executor-{i}")).spawn(move || work(&shared))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Executor { shared, workers: Mutex::new(workers) })
    }

    /// A job was queued: wake a worker.
    pub fn wake(&self) {
        let (lock, cv) = &self.shared.wake;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        cv.notify_one();
    }

    /// Takes no more jobs, cancels the running ones and waits for them to end.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.1.notify_all();
        let running = self.shared.running.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Ok(mut ws) = Workspace::open(&self.shared.root) {
            for name in running {
                tracing::warn!("job {name}: canceled because the server is stopping");
                let _ = jobs::cancel(&mut ws, &name);
            }
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in workers {
            let _ = w.join();
        }
    }
}

fn work(shared: &Shared) {
    let mut ws = match Workspace::open(&shared.root) {
        Ok(ws) => ws,
        Err(e) => {
            tracing::error!("executor: cannot open the workspace: {e}");
            return;
        }
    };
    while !shared.stopping.load(Ordering::SeqCst) {
        match jobs::claim_next(&mut ws) {
            Ok(Some(job)) => run_one(shared, &mut ws, job),
            Ok(None) => wait(shared),
            Err(e) => {
                tracing::warn!("executor: cannot read the queue: {e}");
                wait(shared);
            }
        }
    }
}

/// Waits for a wake-up or a second.
fn wait(shared: &Shared) {
    let (lock, cv) = &shared.wake;
    let mut woken = lock.lock().unwrap_or_else(|e| e.into_inner());
    if *woken == 0 {
        woken = cv.wait_timeout(woken, Duration::from_secs(1)).unwrap_or_else(|e| e.into_inner()).0;
    }
    *woken = woken.saturating_sub(1);
}

fn run_one(shared: &Shared, ws: &mut Workspace, job: Job) {
    let name = job.name.clone();
    shared.running.lock().unwrap_or_else(|e| e.into_inner()).push(name.clone());
    // A deployment on a compute target: its processes run there, the executor is free at once.
    let ran = match jobs::launch_on_compute(ws, &job) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => jobs::spec_for(ws, &job).and_then(|spec| jobs::run(ws, &name, spec, None)).map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = ran {
        let error = crate::secrets::scrub(&e.to_string()).into_owned();
        tracing::warn!("job {name}: {error}");
        let _ = jobs::update(ws, &name, |j, _| {
            if !j.status.is_terminal() {
                j.status = JobStatus::Failed;
                j.error = Some(error.clone());
                j.finished_at = Some(crate::workspace::now());
            }
        });
    }
    shared.running.lock().unwrap_or_else(|e| e.into_inner()).retain(|n| n != &name);
}

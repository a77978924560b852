//! Claiming mini-batches among the processes of one job, through the store alone.
//!
//! A process claims mini-batch `mb` by creating `leases/<mb>/0000` create-only, naming itself;
//! whoever creates it first has it. A lease lives as long as its owner's heartbeat
//! (`owners/<process>.json`, rewritten every quarter of the lease time): one write renews every
//! lease a process holds. When an owner's heartbeat is older than the lease time (by the store's
//! clock, read from the listing's modification times, so clocks of machines do not matter), its
//! unfinished mini-batches are taken over by creating the next lease, `leases/<mb>/<n+1>`;
//! again only one process can. A process that was only paused (SIGSTOP, a long GC, a network
//! partition) and comes back may still finish a mini-batch it lost: parts are create-only, so
//! the mini-batch is in the output once whoever finishes first.
//!
//! Each process starts at its own place in the mini-batch order (`index / count` of the way
//! along), so that processes rarely contend; a claim that fails twice in a row means others
//! are working there, and the process lists the staging area again before it goes on.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;

use super::{JobState, View};

/// The lease time when none is set: a process whose heartbeat is older loses its mini-batches.
pub const DEFAULT_LEASE_SECONDS: f64 = 60.0;

/// How one process takes part in a job.
#[derive(Debug, Clone, Copy)]
pub struct Instance {
    pub index: usize,
    pub count: usize,
}

/// What the claimer and the collector share.
pub struct Claims {
    /// Mini-batches this process holds a lease on and has not written a part for.
    pub mine: Mutex<BTreeSet<usize>>,
    /// Failed items in parts this process did not write (the job-wide error threshold).
    pub others_failed: AtomicU64,
    /// Set when another process stopped the job; holds why.
    pub stopped_by: Mutex<Option<String>>,
    /// When this process last wrote its heartbeat, by its own clock.
    beat: Mutex<Option<Instant>>,
    /// Mini-batches whose part this process wrote.
    pub written: Mutex<BTreeSet<usize>>,
    /// The heartbeat task, and what stops it.
    heart: Mutex<Option<tokio::task::JoinHandle<()>>>,
    heart_stop: Arc<AtomicBool>,
}

impl Claims {
    pub fn new() -> Arc<Claims> {
        Arc::new(Claims {
            mine: Mutex::new(BTreeSet::new()),
            others_failed: AtomicU64::new(0),
            stopped_by: Mutex::new(None),
            beat: Mutex::new(None),
            written: Mutex::new(BTreeSet::new()),
            heart: Mutex::new(None),
            heart_stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Starts this process's heartbeat on `io`; `on_stop` runs once when another process has
    /// stopped the job.
    pub fn start_heartbeat(
        self: &Arc<Self>,
        io: &tokio::runtime::Handle,
        state: Arc<JobState>,
        body: Heartbeat,
        lease: Duration,
        on_stop: Box<dyn Fn() + Send + Sync>,
    ) {
        let task = heartbeat(state, self.clone(), body, lease, self.heart_stop.clone(), on_stop);
        *lock(&self.heart) = Some(io.spawn(task));
    }

    /// Stops the heartbeat and waits for its last write, so that nothing writes this process's
    /// marker again once it is removed.
    pub async fn stop_heartbeat(&self) {
        self.heart_stop.store(true, Ordering::Relaxed);
        let task = lock(&self.heart).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// The mini-batch's part is written (by this process or, found so, by another).
    pub fn done(&self, mb: usize, by_me: bool) {
        lock(&self.mine).remove(&mb);
        if by_me {
            lock(&self.written).insert(mb);
        }
    }

    /// The store's clock now, estimated from this process's last heartbeat as the store dated
    /// it; this machine's clock until there is one.
    fn store_now(&self, view: &View, me: &str) -> DateTime<Utc> {
        let beat = *lock(&self.beat);
        match (beat, view.owners.get(me)) {
            (Some(at), Some(stamp)) => *stamp + chrono::Duration::from_std(at.elapsed()).unwrap_or_default(),
            _ => Utc::now(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's heartbeat, as `owners/<process>.json` holds it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Heartbeat {
    #[serde(flatten)]
    pub owner: crate::engine::plan::StagingOwner,
    pub process: String,
    pub instance_index: Option<usize>,
    pub beat_at: String,
}

/// Rewrites this process's heartbeat every quarter of the lease time until `stop`; after each
/// beat, looks for `stop.json` and counts the other processes' failed items.
async fn heartbeat(
    state: Arc<JobState>,
    claims: Arc<Claims>,
    body: Heartbeat,
    lease: Duration,
    stop: Arc<AtomicBool>,
    on_stop: Box<dyn Fn() + Send + Sync>,
) {
    let every = (lease / 4).max(Duration::from_millis(200));
    let name = JobState::owner_name(&state.process);
    while !stop.load(Ordering::Relaxed) {
        let mut b = body.clone();
        b.beat_at = Utc::now().to_rfc3339();
        let at = Instant::now();
        match state.overwrite(&name, Bytes::from(serde_json::to_vec_pretty(&b).expect("serialisable"))).await {
            Ok(()) => *lock(&claims.beat) = Some(at),
            Err(e) => tracing::warn!("cannot write the heartbeat {}: {e}", state.display(&name)),
        }
        if lock(&claims.stopped_by).is_none()
            && let Some(s) = state.stop_reason().await
        {
            *lock(&claims.stopped_by) = Some(format!("process {} stopped the job: {}", s.by, s.reason));
            on_stop();
        }
        if let Ok(failed) = state.failed_items().await {
            let written = lock(&claims.written).clone();
            let others: u64 = failed.iter().filter(|(mb, _)| !written.contains(mb)).map(|(_, n)| n).sum();
            claims.others_failed.store(others, Ordering::Relaxed);
        }
        sleep_unless(&stop, every).await;
    }
}

async fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now()))).await;
    }
}

/// Claims mini-batches for this process and sends their ids on `tx`, holding at most `hold`
/// unscored at a time (what the pipeline has room for: a process never sits on work others
/// could do), until every mini-batch has a part, the job is stopped, or `cancel`.
#[allow(clippy::too_many_arguments)]
pub async fn claim(
    state: Arc<JobState>,
    claims: Arc<Claims>,
    mini_batches: usize,
    instance: Instance,
    lease: Duration,
    hold: usize,
    tx: flume::Sender<usize>,
    cancel: Arc<AtomicBool>,
) {
    let start = mini_batches * instance.index.min(instance.count.saturating_sub(1)) / instance.count.max(1);
    let order: Vec<usize> = (start..mini_batches).chain(0..start).collect();
    let mut owners: HashMap<(usize, u32), String> = HashMap::new();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let view = match state.view().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("cannot list the job's staging area {}: {e}; trying again", state.display(""));
                sleep_unless(&cancel, lease / 4).await;
                continue;
            }
        };
        let written = lock(&claims.written).clone();
        let others: u64 = view.failed.iter().filter(|(mb, _)| !written.contains(mb)).map(|(_, n)| n).sum();
        claims.others_failed.store(others, Ordering::Relaxed);
        if !view.plan {
            // The job was published (and its staging area removed) while this process was
            // away, or the area was removed: nothing is left to claim.
            tracing::info!("the job's staging area {} is gone: nothing left to claim", state.display(""));
            return;
        }
        if view.stopped {
            let why = state.stop_reason().await.map_or_else(
                || "another process stopped the job".to_string(),
                |s| format!("process {} stopped the job: {}", s.by, s.reason),
            );
            *lock(&claims.stopped_by) = Some(why);
            return;
        }
        let mine = lock(&claims.mine).clone();
        let free: Vec<usize> = order
            .iter()
            .copied()
            .filter(|mb| !view.parts.contains(mb) && !view.leases.contains_key(mb) && !mine.contains(mb))
            .collect();
        if !free.is_empty() {
            if !take_free(&state, &claims, &free, hold, &tx, &cancel).await {
                return;
            }
            continue;
        }
        let unfinished: Vec<usize> =
            order.iter().copied().filter(|mb| !view.parts.contains(mb) && !mine.contains(mb)).collect();
        if unfinished.is_empty() {
            return;
        }
        let now = claims.store_now(&view, &state.process);
        let mut took = false;
        for mb in unfinished {
            if lock(&claims.mine).len() >= hold.max(1) {
                break;
            }
            let n = view.leases.get(&mb).copied().unwrap_or(0);
            let owner = match owners.get(&(mb, n)) {
                Some(o) => o.clone(),
                None => match read_lease(&state, mb, n).await {
                    Some(o) => owners.entry((mb, n)).or_insert(o).clone(),
                    None => continue,
                },
            };
            let alive = owner == state.process
                || view.owners.get(&owner).is_some_and(|t| (now - *t).to_std().unwrap_or_default() < lease);
            if alive {
                continue;
            }
            match state.create(&JobState::lease_name(mb, n + 1), lease_body(&state)).await {
                Ok(true) => {
                    tracing::info!("mini-batch {mb}: taken over from process {owner}, whose heartbeat stopped");
                    lock(&claims.mine).insert(mb);
                    took = true;
                    if tx.send_async(mb).await.is_err() {
                        return;
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("mini-batch {mb}: cannot take over its lease: {e}"),
            }
        }
        if !took {
            // Others hold the rest: look again soon (one listing), for their parts or their death.
            sleep_unless(&cancel, (lease / 8).clamp(Duration::from_millis(100), Duration::from_secs(1))).await;
        }
    }
}

/// Claims free mini-batches in order, as many at once as the pipeline has room for (each claim
/// is a request: side by side they cost one round trip), until two claims fail (others are
/// working there). Returns false when the pipeline is gone.
async fn take_free(
    state: &JobState,
    claims: &Claims,
    free: &[usize],
    hold: usize,
    tx: &flume::Sender<usize>,
    cancel: &AtomicBool,
) -> bool {
    let mut misses = 0;
    let mut next = 0;
    while next < free.len() && misses < 2 {
        // Claim when half the room is free: claims go in batches, one round trip each.
        let room = loop {
            let room = hold.max(1).saturating_sub(lock(&claims.mine).len());
            if room >= hold.div_ceil(2) || cancel.load(Ordering::Relaxed) {
                break room;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        if cancel.load(Ordering::Relaxed) {
            return true;
        }
        let batch = &free[next..(next + room).min(free.len())];
        next += batch.len();
        let body = lease_body(state);
        let names: Vec<String> = batch.iter().map(|mb| JobState::lease_name(*mb, 0)).collect();
        let tried = futures::future::join_all(names.iter().map(|n| state.create(n, body.clone()))).await;
        for (&mb, got) in batch.iter().zip(tried) {
            match got {
                Ok(true) => {
                    lock(&claims.mine).insert(mb);
                    if tx.send_async(mb).await.is_err() {
                        return false;
                    }
                }
                Ok(false) => misses += 1,
                Err(e) => {
                    tracing::warn!("mini-batch {mb}: cannot create its lease: {e}");
                    misses = 2;
                }
            }
        }
    }
    true
}

fn lease_body(state: &JobState) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({"process": state.process, "at": Utc::now().to_rfc3339()}))
            .expect("json"),
    )
}

/// Whose lease `n` of `mb` is (a lease object is never changed once made).
async fn read_lease(state: &JobState, mb: usize, n: u32) -> Option<String> {
    read_name(state, &JobState::lease_name(mb, n)).await
}

/// The process a lease object names.
async fn read_name(state: &JobState, name: &str) -> Option<String> {
    let bytes = state.read(name).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(v["process"].as_str()?.to_string())
}

/// What a process that has seen every part does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Assemble and publish: this process holds the assembly lease.
    Assemble,
    /// Another process published the job's report.
    Published,
    /// Another process stopped the job, or this one was canceled.
    Stopped,
}

/// Waits for this process's turn to assemble the output: it takes the assembly lease
/// (`assembly/<n>`, as for mini-batches) unless a live process holds it, and waits while one
/// does, until that one publishes or dies.
pub async fn assembly_turn(state: &JobState, claims: &Claims, lease: Duration, cancel: &AtomicBool) -> Turn {
    let report = state.output.join("logs/job_result.json").path;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Turn::Stopped;
        }
        let Ok(view) = state.view().await else {
            sleep_unless(cancel, lease / 4).await;
            continue;
        };
        if view.stopped {
            return Turn::Stopped;
        }
        let next = match view.assembly {
            None => 0,
            Some(n) => {
                let owner = read_name(state, &JobState::assembly_name(n)).await;
                let now = claims.store_now(&view, &state.process);
                match owner {
                    Some(o) if o == state.process => return Turn::Assemble,
                    Some(o) if view.owners.get(&o).is_some_and(|t| (now - *t).to_std().unwrap_or_default() < lease) => {
                        if crate::storage::with_retries("head report", |_| state.output.store.head(&report))
                            .await
                            .is_ok()
                        {
                            return Turn::Published;
                        }
                        sleep_unless(cancel, (lease / 8).clamp(Duration::from_millis(100), Duration::from_secs(1)))
                            .await;
                        continue;
                    }
                    _ => n + 1,
                }
            }
        };
        if crate::storage::with_retries("head report", |_| state.output.store.head(&report)).await.is_ok() {
            return Turn::Published;
        }
        match state.create(&JobState::assembly_name(next), lease_body(state)).await {
            Ok(true) => return Turn::Assemble,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("cannot take the assembly lease: {e}");
                sleep_unless(cancel, lease / 4).await;
            }
        }
    }
}

//! The collector: results in, as they finish, each written as its mini-batch's part
//! (create-only, see [`crate::engine::state`]; a process alone writes runs of them together,
//! see [`PartWrites`]), counted for progress, and checked against the error threshold.
//!
//! Results arrive in any order and need no ordering here: the assembly
//! ([`super::assemble`]) reads the parts in mini-batch order. Failed items are counted as they
//! come (with those of parts scored earlier, or by other processes), and the job stops as soon
//! as they exceed `error_threshold`. A mini-batch the job stopped in the middle of is not a
//! part: a resumed job scores it again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::encode::PartRows;
use super::pipeline::Running;
use super::prepare::Prepared;
use super::resume::Settled;
use super::tally::FileTally;
use super::work::{ItemOutcome, MbResult};
use super::{JobControl, ProgressUpdate};
use crate::engine::state::JobState;
use crate::engine::state::lease::Claims;
use crate::engine::state::part::{PartMeta, encode, encode_csv};
/// What this process's collector saw.
#[derive(Default)]
pub(super) struct Collected {
    /// Mini-batches this process scored to the end (a part written, by it or another).
    pub mini_batches: u64,
    pub items_failed: u64,
    /// Part writing, in seconds.
    pub write: f64,
    /// The sessions' encoding of the rows, summed over mini-batches.
    pub encode: f64,
    /// The error threshold was passed (this process saw it first).
    pub job_error: Option<String>,
    pub write_error: Option<String>,
    /// Mini-batches the job stopped in the middle of (no part: a resumed job scores them).
    pub stopped: std::collections::BTreeSet<usize>,
}

/// Who hears of each part written: the job's claims (which the other processes of a shared
/// job see), and the assembly that follows a job scored alone, told the part's first and last
/// mini-batch.
pub(super) struct Written {
    pub claims: Arc<Claims>,
    pub assembly: Option<super::assemble::PartsWritten>,
}

/// Takes every result off the pipeline and writes it as a part.
pub(super) fn collect(
    io: &tokio::runtime::Runtime,
    settings: &crate::engine::settings::Settings,
    job: &Prepared,
    settled: &Settled,
    running: &Running,
    control: &JobControl,
    written: Written,
) -> Collected {
    let plan = &job.plan;
    let cancel = &running.shared.cancel;
    let mut c = Collected::default();
    let mut tally = FileTally::new(plan);
    let prior_files = tally.skip_done(plan, &settled.prior.parts);
    let mut progress = ProgressUpdate {
        files_total: plan.files.len() as u64,
        files_done: prior_files,
        mini_batches_total: plan.mini_batches.len() as u64,
        mini_batches_done: settled.prior.parts.len() as u64,
        ..Default::default()
    };
    // With several processes the claimer keeps the others' failures (earlier ones included)
    // up to date; alone, the earlier attempts' are those of the parts found at the start.
    let earlier_failed = settled.prior.failed_items();
    let threshold = settings.error_threshold;
    // Alone, a process writes runs of consecutive mini-batches as one part; with others, each
    // mini-batch is its own part, as its lease is.
    let claims = written.claims.clone();
    let mut writes = PartWrites::new(io, &settled.state, cancel, settled.instance.is_none(), written);
    // Where this process starts from: what was scored before it joined.
    control.progress(&progress);
    loop {
        let next = match writes.due_in() {
            None => running.results.recv().ok(),
            Some(wait) => match running.results.recv_timeout(wait) {
                Ok(r) => Some(r),
                Err(flume::RecvTimeoutError::Timeout) => {
                    writes.flush();
                    continue;
                }
                Err(flume::RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(mut result) = next else { break };
        tracing::debug!(
            "mini-batch {} in: {} rows, {:.3} s (read {:.3}, decode {:.3}, model {:.3}, encode {:.3})",
            result.id,
            result.rows_scored,
            result.record.seconds,
            result.read,
            result.decode,
            result.infer,
            result.encode
        );
        c.items_failed += result.record.failed_items;
        c.encode += result.encode;
        let t = tally.add(&result.outcomes);
        progress.files_done += t.scored + t.failed + t.empty.len() as u64;
        progress.rows_scored += result.rows_scored;
        progress.items_failed += result.record.failed_items;
        if result.outcomes.iter().any(|(_, o)| *o == ItemOutcome::Stopped) {
            c.stopped.insert(result.id);
        } else {
            let started = Instant::now();
            writes.add(&mut result);
            c.write += started.elapsed().as_secs_f64();
            c.mini_batches += 1;
            progress.mini_batches_done += 1;
        }
        control.progress(&progress);
        let others =
            if settled.instance.is_some() { claims.others_failed.load(Ordering::Relaxed) } else { earlier_failed };
        let failed = c.items_failed + others;
        if threshold >= 0 && failed > threshold as u64 && !cancel.load(Ordering::Relaxed) {
            c.job_error =
                Some(format!("{failed} failed items exceed error_threshold {threshold}; the job was stopped"));
            cancel.store(true, Ordering::Relaxed);
            running.shared.watchdog.terminate_all();
        }
    }
    let started = Instant::now();
    writes.flush();
    c.write_error = io.block_on(writes.finish());
    c.write += started.elapsed().as_secs_f64();
    c
}

/// Parts being written, a few at a time: one request each, which on a remote store takes tens
/// of milliseconds, so they go side by side while the collector takes the next results (and
/// the collector waits when [`PARTS_IN_FLIGHT`] are under way).
///
/// A process scoring a job alone keeps its finished mini-batches a moment ([`GATHER_FOR`], or
/// until they hold [`GATHER_BYTES`]) and writes each run of consecutive ones as one part: an
/// object costs about a millisecond to create even on a local disk, which a job of many tiny
/// mini-batches would otherwise pay for each. What is kept is lost if the process is killed,
/// and a resumed job scores it again.
struct PartWrites {
    io: tokio::runtime::Handle,
    state: Arc<JobState>,
    claims: Arc<Claims>,
    assembly: Option<super::assemble::PartsWritten>,
    cancel: Arc<AtomicBool>,
    gather: bool,
    /// Encoded parts not yet written, by mini-batch, with their failed items.
    kept: BTreeMap<usize, (Bytes, u64)>,
    kept_bytes: usize,
    kept_since: Option<Instant>,
    slots: Arc<tokio::sync::Semaphore>,
    error: Arc<std::sync::Mutex<Option<String>>>,
}

const PARTS_IN_FLIGHT: u32 = 8;
/// How long a process alone keeps a finished mini-batch before writing it (with the others
/// kept by then).
const GATHER_FOR: Duration = Duration::from_millis(500);
/// How many encoded bytes it keeps at most before writing them.
const GATHER_BYTES: usize = 4 << 20;

impl PartWrites {
    fn new(
        io: &tokio::runtime::Runtime,
        state: &Arc<JobState>,
        cancel: &Arc<AtomicBool>,
        gather: bool,
        written: Written,
    ) -> PartWrites {
        PartWrites {
            io: io.handle().clone(),
            state: state.clone(),
            claims: written.claims,
            assembly: written.assembly,
            cancel: cancel.clone(),
            gather,
            kept: BTreeMap::new(),
            kept_bytes: 0,
            kept_since: None,
            slots: Arc::new(tokio::sync::Semaphore::new(PARTS_IN_FLIGHT as usize)),
            error: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Makes the mini-batch's part (its rows were encoded by its session), then writes it (or
    /// keeps it, see [`PartWrites`]); a part that cannot be made stops the job.
    fn add(&mut self, r: &mut MbResult) {
        let mut meta = part_meta(&self.state, r);
        let encoded = std::mem::replace(&mut r.rows, Ok(None)).and_then(|rows| {
            match rows {
                // The head goes in front of the text, in the room left for it.
                Some(PartRows::Csv { text, room, header }) => {
                    meta.csv_header = Some(header);
                    encode_csv(&meta, text, room)
                }
                rows => {
                    let rows = rows.map(|rows| {
                        let (rows, csv_header) = rows.into_part();
                        meta.csv_header = csv_header;
                        rows
                    });
                    encode(&meta, rows.as_ref())
                }
            }
            .map_err(|e| format!("cannot encode mini-batch {}: {e}", r.id))
        });
        let bytes = match encoded {
            Ok(b) => b,
            Err(e) => return self.fail(e),
        };
        self.kept_bytes += bytes.len();
        self.kept.insert(r.id, (bytes, r.record.failed_items));
        self.kept_since.get_or_insert_with(Instant::now);
        if !self.gather || self.kept_bytes >= GATHER_BYTES || self.due_in() == Some(Duration::ZERO) {
            self.flush();
        }
    }

    /// How long until the kept mini-batches are due to be written; `None` when none are kept.
    fn due_in(&self) -> Option<Duration> {
        self.kept_since.map(|since| GATHER_FOR.saturating_sub(since.elapsed()))
    }

    /// Writes what is kept: each run of consecutive mini-batches as one part.
    fn flush(&mut self) {
        let mut kept = std::mem::take(&mut self.kept).into_iter().peekable();
        (self.kept_bytes, self.kept_since) = (0, None);
        while let Some((first, part)) = kept.next() {
            let mut run = vec![part];
            while let Some((next, _)) = kept.peek()
                && *next == first + run.len()
            {
                run.push(kept.next().expect("peeked").1);
            }
            self.write((first, first + run.len() - 1), run);
        }
    }

    fn write(&self, range: (usize, usize), run: Vec<(Bytes, u64)>) {
        let failed: Vec<(usize, u64)> = (range.0..).zip(run.iter().map(|(_, f)| *f)).filter(|(_, f)| *f > 0).collect();
        let bytes = match run.len() {
            1 => run.into_iter().next().expect("one").0,
            _ => crate::engine::state::part::encode_run(&run.into_iter().map(|(b, _)| b).collect::<Vec<_>>()),
        };
        let permit = self.io.block_on(self.slots.clone().acquire_owned()).expect("never closed");
        let (state, claims, error, cancel) =
            (self.state.clone(), self.claims.clone(), self.error.clone(), self.cancel.clone());
        let assembly = self.assembly.clone();
        // The early assembly takes the bytes from here, if this process's part is the one kept.
        let handed = assembly.is_some().then(|| bytes.clone());
        self.io.spawn(async move {
            match write_part(&state, range, &failed, bytes).await {
                Ok(by_me) => {
                    (range.0..=range.1).for_each(|mb| claims.done(mb, by_me));
                    // The part is there, whoever wrote it.
                    if let Some(a) = assembly {
                        a.send(range, handed.filter(|_| by_me));
                    }
                }
                Err(e) => {
                    error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
    }

    fn fail(&self, e: String) {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for every write; the first error, if one failed.
    async fn finish(self) -> Option<String> {
        let _all = self.slots.acquire_many(PARTS_IN_FLIGHT).await.expect("never closed");
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

fn part_meta(state: &JobState, r: &MbResult) -> PartMeta {
    PartMeta {
        record: r.record.clone(),
        failures: r.failures.clone(),
        outcomes: r
            .outcomes
            .iter()
            .map(|&(f, o)| (f, if let ItemOutcome::Scored(rows) = o { Some(rows) } else { None }))
            .collect(),
        notes: r.notes.clone(),
        rows_scored: r.rows_scored,
        rows_failed: r.rows_failed,
        read: r.read,
        decode: r.decode,
        infer: r.infer,
        by: state.process.clone(),
        csv_header: None,
    }
}

/// Writes the part of mini-batches `range` (and, for those with failed items, their `failed/`
/// markers). Returns whether this process's part is the one kept (another process may have
/// written it first).
async fn write_part(
    state: &JobState,
    range: (usize, usize),
    failed: &[(usize, u64)],
    bytes: Bytes,
) -> Result<bool, String> {
    let hint = |e: &dyn std::fmt::Display| crate::storage::io_hint(&e.to_string());
    let mine = state.create(&JobState::run_name(range), bytes).await.map_err(|e| hint(&e))?;
    if !mine {
        tracing::debug!("mini-batches {range:?}: another process wrote their part first; this one is dropped");
        return Ok(false);
    }
    for &(mb, items) in failed {
        state.create(&JobState::failed_name(mb, items), Bytes::new()).await.map_err(|e| hint(&e))?;
    }
    Ok(true)
}

//! The collector: results in, as they finish, each written as its mini-batch's part
//! (create-only, see [`crate::engine::state`]), counted for progress, and checked against the
//! error threshold.
//!
//! Results arrive in any order and need no ordering here: the assembly
//! ([`super::assemble`]) reads the parts in mini-batch order. Failed items are counted as they
//! come (with those of parts scored earlier, or by other processes), and the job stops as soon
//! as they exceed `error_threshold`. A mini-batch the job stopped in the middle of is not a
//! part: a resumed job scores it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;

use super::pipeline::Running;
use super::prepare::Prepared;
use super::resume::Settled;
use super::tally::FileTally;
use super::work::{ItemOutcome, MbResult};
use super::{JobControl, ProgressUpdate};
use crate::engine::state::JobState;
use crate::engine::state::lease::Claims;
use crate::engine::state::part::{PartMeta, encode};
/// What this process's collector saw.
#[derive(Default)]
pub(super) struct Collected {
    /// Mini-batches this process scored to the end (a part written, by it or another).
    pub mini_batches: u64,
    pub items_failed: u64,
    /// Part writing, in seconds.
    pub write: f64,
    /// The error threshold was passed (this process saw it first).
    pub job_error: Option<String>,
    pub write_error: Option<String>,
    /// Mini-batches the job stopped in the middle of (no part: a resumed job scores them).
    pub stopped: std::collections::BTreeSet<usize>,
}

/// Takes every result off the pipeline and writes it as a part.
pub(super) fn collect(
    io: &tokio::runtime::Runtime,
    settings: &crate::engine::settings::Settings,
    job: &Prepared,
    settled: &Settled,
    running: &Running,
    claims: &Arc<Claims>,
    control: &JobControl,
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
    let writes = PartWrites::new();
    // Where this process starts from: what was scored before it joined.
    control.progress(&progress);
    for result in running.results.iter() {
        c.items_failed += result.record.failed_items;
        let t = tally.add(&result.outcomes);
        progress.files_done += t.scored + t.failed + t.empty.len() as u64;
        progress.rows_scored += result.rows_scored;
        progress.items_failed += result.record.failed_items;
        if result.outcomes.iter().any(|(_, o)| *o == ItemOutcome::Stopped) {
            c.stopped.insert(result.id);
        } else {
            let started = Instant::now();
            let rows = part_rows(settings, &result);
            writes.start(io, &settled.state, claims, &result, rows, cancel);
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
    c.write_error = io.block_on(writes.finish());
    c.write += started.elapsed().as_secs_f64();
    c
}

/// Parts being written, a few at a time: one request each, which on a remote store takes tens
/// of milliseconds, so they go side by side while the collector takes the next results (and
/// the collector waits when [`PARTS_IN_FLIGHT`] are under way).
struct PartWrites {
    slots: Arc<tokio::sync::Semaphore>,
    error: Arc<std::sync::Mutex<Option<String>>>,
}

const PARTS_IN_FLIGHT: u32 = 8;

impl PartWrites {
    fn new() -> PartWrites {
        PartWrites {
            slots: Arc::new(tokio::sync::Semaphore::new(PARTS_IN_FLIGHT as usize)),
            error: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Encodes the part here and writes it on `io`; a failed write stops the job.
    fn start(
        &self,
        io: &tokio::runtime::Runtime,
        state: &Arc<JobState>,
        claims: &Arc<Claims>,
        r: &MbResult,
        rows: Result<Option<Rows>, String>,
        cancel: &Arc<AtomicBool>,
    ) {
        let (id, failed_items) = (r.id, r.record.failed_items);
        let mut meta = part_meta(state, r);
        let encoded = rows.and_then(|rows| {
            if let Some(Rows::Csv((_, header))) = &rows {
                meta.csv_header = Some(*header);
            }
            encode(&meta, rows.map(|r| r.into_part()).as_ref())
        });
        let bytes = match encoded {
            Ok(b) => b,
            Err(e) => return self.fail(format!("cannot encode mini-batch {id}: {e}"), cancel),
        };
        let permit = io.block_on(self.slots.clone().acquire_owned()).expect("never closed");
        let (state, claims, error, cancel) = (state.clone(), claims.clone(), self.error.clone(), cancel.clone());
        io.spawn(async move {
            match write_part(&state, id, failed_items, bytes).await {
                Ok(by_me) => claims.done(id, by_me),
                Err(e) => {
                    error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
    }

    fn fail(&self, e: String, cancel: &AtomicBool) {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for every write; the first error, if one failed.
    async fn finish(self) -> Option<String> {
        let _all = self.slots.acquire_many(PARTS_IN_FLIGHT).await.expect("never closed");
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A part's rows as they are stored: none for summary_only (no predictions are published);
/// CSV text for a CSV output, encoded here on the collector thread while the sessions score
/// (the assembly only concatenates); for Parquet, Arrow, or a Parquet file for a big part
/// (encoded here too: the assembly copies its row groups).
fn part_rows(settings: &crate::engine::settings::Settings, r: &MbResult) -> Result<Option<Rows>, String> {
    use crate::engine::settings::{OutputAction, OutputFormat};
    let Some(rows) = r.rows.as_ref().filter(|_| settings.output_action == OutputAction::AppendRow) else {
        return Ok(None);
    };
    Ok(Some(match settings.output_format {
        OutputFormat::Csv => Rows::Csv(crate::engine::collect::csv_bytes(rows).map_err(|e| e.to_string())?),
        OutputFormat::Parquet if crate::engine::parquet_out::splices(rows) => {
            Rows::Parquet(crate::engine::parquet_out::encode_part(rows)?)
        }
        OutputFormat::Parquet => Rows::Arrow(rows.clone()),
    }))
}

/// Rows on their way into a part.
enum Rows {
    Arrow(arrow::array::RecordBatch),
    Parquet(Vec<u8>),
    /// CSV text and the length of its header line.
    Csv((Vec<u8>, usize)),
}

impl Rows {
    fn into_part(self) -> crate::engine::state::part::Rows {
        match self {
            Rows::Arrow(b) => crate::engine::state::part::Rows::Arrow(b),
            Rows::Parquet(file) => crate::engine::state::part::Rows::Parquet(Bytes::from(file)),
            Rows::Csv((text, _)) => crate::engine::state::part::Rows::Csv(Bytes::from(text)),
        }
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

/// Writes one mini-batch's part (and, when items failed, its `failed/` marker). Returns
/// whether this process's part is the one kept (another process may have written it first).
async fn write_part(state: &JobState, id: usize, failed_items: u64, bytes: Bytes) -> Result<bool, String> {
    let hint = |e: &dyn std::fmt::Display| crate::storage::io_hint(&e.to_string());
    let mine = state.create(&JobState::part_name(id), bytes).await.map_err(|e| hint(&e))?;
    if !mine {
        tracing::debug!("mini-batch {id}: another process wrote its part first; this one is dropped");
    } else if failed_items > 0 {
        state.create(&JobState::failed_name(id, failed_items), Bytes::new()).await.map_err(|e| hint(&e))?;
    }
    Ok(mine)
}

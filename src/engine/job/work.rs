//! A mini-batch's journey through a worker and a session: decode its items, score them in
//! packed model calls with retries, timeouts and narrowing, and turn the outcome into output
//! rows, failure records and counts.
//!
//! A failed or timed-out attempt is retried up to `max_retries`; after that the mini-batch is
//! narrowed down (split in halves until single files) so that one bad file does not fail its
//! good neighbours. A file that cannot be decoded fails at once (decoding is deterministic); a
//! row with a bad value fails alone. A decoder that panics on a hostile file fails that file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arrow::array::ArrayRef;

use crate::engine::collect::OutputLayout;
use crate::engine::infer::{Attempt, InferError, InferTimings, ModelRunner, Watchdog};
use crate::engine::plan::{Part, Plan};
use crate::engine::preprocess::{DecodedFile, Feeder, TabularPiece};
use crate::engine::read::{Fetched, ItemBytes, ItemReader};
use crate::engine::report::{FailureRecord, MiniBatchRecord};
use crate::engine::settings::Settings;

/// Everything a worker needs, shared.
pub(super) struct Shared {
    pub plan: Arc<Plan>,
    pub reader: Arc<ItemReader>,
    pub feeder: Feeder,
    pub layout: OutputLayout,
    pub settings: Settings,
    pub watchdog: Arc<Watchdog>,
    pub cancel: Arc<AtomicBool>,
    pub io: tokio::runtime::Handle,
}

/// What a worker reports for one mini-batch.
pub(super) struct MbResult {
    pub id: usize,
    /// The output rows: as scored, then encoded for the part by the session that scored them
    /// ([`super::encode`]); an error when they could not be.
    pub rows: Result<Option<super::encode::PartRows>, String>,
    /// Seconds spent encoding the rows.
    pub encode: f64,
    pub record: MiniBatchRecord,
    pub failures: Vec<FailureRecord>,
    /// For each item, in order: its file and what became of it. Files are counted from these
    /// once all their items are in (a file split into pieces spans mini-batches).
    pub outcomes: Vec<(usize, ItemOutcome)>,
    /// What decoding noticed: (note, file).
    pub notes: Vec<(String, String)>,
    pub rows_scored: u64,
    pub rows_failed: u64,
    pub read: f64,
    pub decode: f64,
    pub infer: f64,
}

/// What became of one item of a mini-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemOutcome {
    /// Scored (some of its rows may have failed alone): the rows it held, failed ones included.
    Scored(u64),
    /// Failed as a whole.
    Failed,
    /// Left unscored because the job stopped.
    Stopped,
}

/// The reason given for files left unscored when the job stopped; they are not failed items.
pub(super) const STOPPED: &str = "not scored: the job was stopped";

/// The state of one item (file or piece) of a mini-batch as the worker moves it along.
enum FileState {
    NeedBytes(String),
    Bytes(ItemBytes),
    Decoded(DecodedFile),
    Done(DecodedFile, Vec<ArrayRef>),
    Failed(String, Option<DecodedFile>),
}

/// A mini-batch read and decoded by a worker, on its way to a session.
pub(super) struct Batch {
    pub(super) id: usize,
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

impl Batch {
    /// Rows (or images) decoded and ready for the model.
    pub(super) fn decoded_rows(&self) -> usize {
        self.states
            .iter()
            .map(|s| match s {
                FileState::Decoded(d) => d.rows,
                _ => 0,
            })
            .sum()
    }
}

/// A worker's part: decodes what was read (deterministic: a file that cannot be decoded fails
/// now, and is not retried).
pub(super) fn prepare(shared: &Shared, fetched: Fetched) -> Batch {
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
    let mut p = Batch {
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
fn decode_read(shared: &Shared, p: &mut Batch) {
    for (i, st) in p.states.iter_mut().enumerate() {
        if let FileState::Bytes(_) = st {
            let FileState::Bytes(b) = std::mem::replace(st, FileState::Failed(String::new(), None)) else {
                unreachable!("matched above")
            };
            let t = Instant::now();
            let item = p.items[i];
            let rows = &mut p.known_rows[i];
            // A decoder that panics on a hostile file fails that file, not the worker.
            let decoded = contained(|| decode_item(shared, item, b, rows)).unwrap_or_else(|(why, at)| {
                Err(crate::engine::preprocess::DecodeError(format!(
                    "{}: the decoder crashed on this file ({why}, at {at}); it is likely damaged",
                    shared.plan.label(item)
                )))
            });
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
pub(super) fn score_group(shared: &Shared, runner: &mut ModelRunner, mut group: Vec<Batch>) -> Vec<MbResult> {
    if group.len() > 1 && !shared.cancel.load(Ordering::Relaxed) {
        let started = Instant::now();
        let rows: Vec<usize> = group.iter().map(Batch::decoded_rows).collect();
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
fn score(shared: &Shared, runner: &mut ModelRunner, mut p: Batch) -> MbResult {
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
) -> Result<DecodedFile, crate::engine::preprocess::DecodeError> {
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
        (ItemBytes::RowGroups(_), _) => Err(crate::engine::preprocess::DecodeError(format!(
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
fn finish_result(shared: &Shared, p: Batch, attempts: u32, started: Instant) -> MbResult {
    let Batch { id, items, known_rows, states, read, decode, infer, busy } = p;
    let mut tally = Tally::new(shared, id, &items, &known_rows, attempts);
    let done: Vec<Scored> = states.into_iter().enumerate().filter_map(|(k, st)| tally.take(k, st)).collect();
    let rows_scored: u64 = done.iter().map(|(_, d, _)| d.rows as u64).sum();
    let rows = tally.output_rows(&done);
    let rows_scored = if rows.is_some() { rows_scored } else { 0 };
    let status = if tally.stopped {
        "stopped"
    } else if tally.items_failed == 0 {
        "completed"
    } else if rows_scored > 0 {
        "partial"
    } else {
        "failed"
    };
    let Tally { failures, outcomes, rows_failed, items_failed, first_error, notes, .. } = tally;
    MbResult {
        id,
        record: MiniBatchRecord {
            id,
            files: shared.plan.mini_batch_label(id),
            attempts,
            status: status.to_string(),
            seconds: busy + started.elapsed().as_secs_f64(),
            rows: rows_scored,
            failed_items: items_failed,
            error: first_error,
        },
        rows: Ok(rows.map(super::encode::PartRows::Arrow)),
        encode: 0.0,
        failures,
        outcomes,
        notes,
        rows_scored,
        rows_failed,
        read,
        decode,
        infer,
    }
}

/// A scored item: its index in the mini-batch, its decoded rows, the model's outputs for them.
type Scored = (usize, DecodedFile, Vec<ArrayRef>);

/// What a mini-batch's items came to, taken in item by item.
struct Tally<'a> {
    shared: &'a Shared,
    id: usize,
    items: &'a [usize],
    known_rows: &'a [Option<std::ops::Range<u64>>],
    attempts: u32,
    failures: Vec<FailureRecord>,
    outcomes: Vec<(usize, ItemOutcome)>,
    rows_failed: u64,
    items_failed: u64,
    stopped: bool,
    first_error: String,
    notes: Vec<(String, String)>,
}

impl<'a> Tally<'a> {
    fn new(
        shared: &'a Shared,
        id: usize,
        items: &'a [usize],
        known_rows: &'a [Option<std::ops::Range<u64>>],
        attempts: u32,
    ) -> Tally<'a> {
        Tally {
            shared,
            id,
            items,
            known_rows,
            attempts,
            failures: Vec::new(),
            outcomes: Vec::with_capacity(items.len()),
            rows_failed: 0,
            items_failed: 0,
            stopped: false,
            first_error: String::new(),
            notes: Vec::new(),
        }
    }

    /// Records a failure, scrubbed of secrets; the first names the mini-batch's error.
    fn record(&mut self, mut f: FailureRecord) {
        if let std::borrow::Cow::Owned(s) = crate::secrets::scrub(&f.error) {
            f.error = s;
        }
        if self.first_error.is_empty() {
            self.first_error = format!("{}: {}", f.file, f.error);
        }
        self.failures.push(f);
    }

    /// A failure of item `k` as a whole: the file, and for a piece which one and its rows when
    /// known.
    fn item_failure(&self, k: usize, items: u64, error: String) -> FailureRecord {
        let plan = &self.shared.plan;
        let part = &plan.items[self.items[k]].part;
        FailureRecord {
            file: plan.file_of(self.items[k]).rel.clone(),
            row: None,
            piece: part.describe(),
            rows: self.known_rows[k]
                .as_ref()
                .filter(|r| !r.is_empty() && !matches!(part, Part::Whole))
                .map(|r| [r.start, r.end - 1]),
            items,
            mini_batch: self.id,
            attempts: self.attempts,
            error,
        }
    }

    /// Records the rows of item `k` that failed alone.
    fn row_failures(&mut self, k: usize, d: &DecodedFile) {
        let file = self.shared.plan.file_of(self.items[k]).rel.clone();
        for (row, why) in &d.failed_rows {
            self.rows_failed += 1;
            self.items_failed += 1;
            self.record(FailureRecord {
                file: file.clone(),
                row: Some(*row),
                piece: None,
                rows: None,
                items: 1,
                mini_batch: self.id,
                attempts: self.attempts,
                error: why.clone(),
            });
        }
    }

    /// Takes in item `k`'s final state; returns it when it was scored.
    fn take(&mut self, k: usize, st: FileState) -> Option<Scored> {
        let plan = &self.shared.plan;
        let file = plan.items[self.items[k]].file;
        let tabular = self.shared.feeder.has_row_numbers();
        match st {
            FileState::Done(d, cols) => {
                let held = (d.rows + d.failed_rows.len()) as u64;
                self.outcomes.push((file, ItemOutcome::Scored(held)));
                let rel = &plan.files[file].rel;
                self.notes.extend(d.notes.iter().map(|n| (n.clone(), rel.clone())));
                self.row_failures(k, &d);
                Some((k, d, cols))
            }
            FileState::Failed(error, _) if error == STOPPED => {
                self.stopped = true;
                self.outcomes.push((file, ItemOutcome::Stopped));
                let f = self.item_failure(k, 0, error);
                self.failures.push(f);
                None
            }
            FileState::Failed(error, decoded) => {
                self.outcomes.push((file, ItemOutcome::Failed));
                // A tabular item that failed after decoding fails all its rows; one that could
                // not be read or decoded counts as one item (its rows are not all known).
                let count = match (&decoded, tabular) {
                    (Some(d), true) => (d.rows as u64).max(1),
                    _ => 1,
                };
                if tabular && let Some(d) = &decoded {
                    self.rows_failed += d.rows as u64;
                }
                self.items_failed += count;
                let f = self.item_failure(k, count, error);
                self.record(f);
                if let Some(d) = &decoded {
                    self.row_failures(k, d);
                }
                None
            }
            _ => unreachable!("every item is done or failed by now"),
        }
    }

    /// The output rows of the scored items; if they cannot be put together (inconsistent model
    /// outputs), the items fail rather than the worker.
    fn output_rows(&mut self, done: &[Scored]) -> Option<arrow::array::RecordBatch> {
        if done.is_empty() {
            return None;
        }
        let (plan, layout) = (&self.shared.plan, &self.shared.layout);
        let parts: Vec<(&str, &DecodedFile)> =
            done.iter().map(|(k, d, _)| (plan.file_of(self.items[*k]).rel.as_str(), d)).collect();
        let cols: Result<Vec<ArrayRef>, crate::engine::collect::CollectError> = (0..layout.outputs.len())
            .map(|o| {
                let pieces: Vec<&dyn arrow::array::Array> = done.iter().map(|(_, _, c)| c[o].as_ref()).collect();
                arrow::compute::concat(&pieces).map_err(|e| crate::engine::collect::CollectError::Shape(e.to_string()))
            })
            .collect();
        match cols.and_then(|cols| layout.rows(&parts, &cols)) {
            Ok(b) => Some(b),
            Err(e) => {
                let tabular = self.shared.feeder.has_row_numbers();
                for (k, d, _) in done {
                    self.items_failed += if tabular { d.rows as u64 } else { 1 };
                    self.outcomes[*k].1 = ItemOutcome::Failed;
                    let f = self.item_failure(*k, d.rows as u64, e.to_string());
                    self.record(f);
                }
                None
            }
        }
    }
}

/// A panic's message, for the failure it becomes.
pub(super) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    crate::text::excerpt_line(&text)
}

/// The result of a mini-batch whose scoring crashed (a bug, or a library that panicked): every
/// item fails with the reason, so that no file goes unaccounted for.
pub(super) fn crashed_result(shared: &Shared, id: usize, reason: &str) -> MbResult {
    let plan = &shared.plan;
    let items: Vec<usize> = plan.mini_batches[id].clone().collect();
    let error = format!("internal error while scoring: {reason} (please report it)");
    let failures = items
        .iter()
        .map(|&i| FailureRecord {
            file: plan.file_of(i).rel.clone(),
            row: None,
            piece: plan.items[i].part.describe(),
            rows: None,
            items: 1,
            mini_batch: id,
            attempts: 1,
            error: error.clone(),
        })
        .collect();
    MbResult {
        id,
        rows: Ok(None),
        encode: 0.0,
        record: MiniBatchRecord {
            id,
            files: plan.mini_batch_label(id),
            attempts: 1,
            status: "failed".into(),
            seconds: 0.0,
            rows: 0,
            failed_items: items.len() as u64,
            error: error.clone(),
        },
        failures,
        outcomes: items.iter().map(|&i| (plan.items[i].file, ItemOutcome::Failed)).collect(),
        notes: Vec::new(),
        rows_scored: 0,
        rows_failed: 0,
        read: 0.0,
        decode: 0.0,
        infer: 0.0,
    }
}

thread_local! {
    /// Set while a decoder runs under [`contained`]: its panics are expected to be caught.
    static CONTAINED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last contained panic happened.
    static PANIC_AT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs a decoder, turning a panic into `(message, location)`. The panic is not printed: the
/// file's failure record says what happened (a library that panics on a damaged file is not a
/// crash of the job). Installs the quiet hook on first use.
pub(super) fn contained<T>(f: impl FnOnce() -> T) -> Result<T, (String, String)> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CONTAINED.with(|c| c.get()) {
                let at = info.location().map_or_else(String::new, |l| {
                    // Paths under the cargo registry say little; keep the crate's own part.
                    let file = l.file();
                    let short =
                        file.rfind("/src/").map_or(file, |i| &file[file[..i].rfind('/').map_or(0, |j| j + 1)..]);
                    format!("{short}:{}", l.line())
                });
                tracing::debug!("contained panic at {at}");
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
    CONTAINED.with(|c| c.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(false));
    result.map_err(|panic| (panic_text(&panic), PANIC_AT.with(|p| p.borrow().clone())))
}

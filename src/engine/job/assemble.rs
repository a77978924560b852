//! The assembly: the job's parts, read back in mini-batch order, into the staged predictions
//! file and logs, with the job's counts.
//!
//! Parts are fetched a few ahead of the writer; each one's rows go to the predictions file in
//! the job's format (the first rows fix the schema, as for a streamed job), its record to
//! `mini_batches.csv`, its failed items to `failures.jsonl`. A mini-batch without a part is
//! listed as `not_run`. The counts are the whole job's, whoever scored which part and when.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::prepare::Prepared;
use super::tally::FileTally;
use super::work::ItemOutcome;
use crate::engine::collect::PredictionWriter;
use crate::engine::plan::Plan;
use crate::engine::report::{Counts, FailureRecord, MINI_BATCH_HEADER, MiniBatchRecord, StageTimings};
use crate::engine::settings::{OutputAction, Settings};
use crate::engine::state::JobState;
use crate::engine::state::part::{PartMeta, Rows, decode, split_run};

/// Parts fetched ahead of the writer.
const PARTS_AHEAD: usize = 16;

/// The bytes of parts written that the early assembly holds at most, so that it need not read
/// them back from the staging area (on an object store, a download of every byte of output).
const HELD_BYTES: usize = 64 << 20;

/// A note from decoding: how many files it was about, and the first.
pub(super) struct Note {
    files: u64,
    first: String,
}

/// What the assembly made of the parts.
#[derive(Default)]
pub(super) struct Assembled {
    pub counts: Counts,
    pub timings: StageTimings,
    pub first_failure: Option<FailureRecord>,
    pub(super) notes: BTreeMap<String, Note>,
    pub empty_files: Vec<String>,
    /// Mini-batches without a part.
    pub missing: Vec<usize>,
    pub processes: BTreeMap<String, u64>,
    /// Whether a predictions file was staged (rows were written).
    pub predictions: bool,
    /// Why the staged files could not be written or read.
    pub error: Option<String>,
}

impl Assembled {
    /// Decoding's notes, one line each: `<note> (N files, e.g. <file>)`, also logged.
    pub fn note_lines(&self) -> Vec<String> {
        self.notes
            .iter()
            .map(|(note, n)| {
                let line = if n.files == 1 {
                    format!("{}: {note}", n.first)
                } else {
                    format!("{note} ({} files, e.g. {})", n.files, n.first)
                };
                tracing::info!("{line}");
                line
            })
            .collect()
    }

    fn absorb(&mut self, meta: PartMeta, tally: &mut FileTally, plan: &Plan) {
        let outcomes: Vec<(usize, ItemOutcome)> =
            meta.outcomes.iter().map(|&(f, rows)| (f, rows.map_or(ItemOutcome::Failed, ItemOutcome::Scored))).collect();
        let t = tally.add(&outcomes);
        let c = &mut self.counts;
        c.files_scored += t.scored;
        c.files_failed += t.failed;
        c.files_empty += t.empty.len() as u64;
        c.mini_batches_run += 1;
        c.rows_scored += meta.rows_scored;
        c.rows_failed += meta.rows_failed;
        c.items_failed += meta.record.failed_items;
        c.retries += u64::from(meta.record.attempts.saturating_sub(1));
        for f in &t.empty {
            tracing::warn!(
                "{}: the file holds no rows (a header only); nothing of it is in the output",
                plan.files[*f].rel
            );
            self.empty_files.push(plan.files[*f].rel.clone());
        }
        self.timings.read += meta.read;
        self.timings.decode += meta.decode;
        self.timings.infer += meta.infer;
        if self.first_failure.is_none() {
            self.first_failure = meta.failures.iter().find(|f| f.items > 0).cloned();
        }
        for (note, file) in meta.notes {
            self.notes.entry(note).or_insert_with(|| Note { files: 0, first: file }).files += 1;
        }
        *self.processes.entry(meta.by).or_default() += 1;
    }
}

/// The staged files the assembly writes into.
struct Outputs {
    predictions: Option<PredictionWriter>,
    mb_log: object_store::buffered::BufWriter,
    failure_log: object_store::buffered::BufWriter,
}

/// An assembly under way: what it made of the mini-batches before [`Assembly::next`], and the
/// staged files it wrote them into.
///
/// A process scoring a job alone starts it while the job runs ([`early`]): each part is taken
/// as soon as it and those before it are written, so that at the job's end only the last
/// parts are left to copy. Of a job shared by several processes, the one that publishes
/// assembles every part at the end.
pub(super) struct Assembly {
    a: Assembled,
    out: Outputs,
    tally: FileTally,
    /// The first mini-batch not yet taken.
    next: usize,
}

impl Assembly {
    /// Stages the output files (the predictions only when the job writes them) and the
    /// mini-batch log's header.
    fn start(io: &tokio::runtime::Runtime, settings: &Settings, plan: &Plan, state: &JobState) -> Assembly {
        let staging = state.staging();
        let staged = |name: &str| staged_name(state, name);
        let mut a = Assembled {
            counts: Counts {
                files_total: plan.files.len() as u64,
                files_skipped: plan.skipped.len() as u64,
                mini_batches_total: plan.mini_batches.len() as u64,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut out = Outputs {
            predictions: (settings.output_action == OutputAction::AppendRow).then(|| {
                PredictionWriter::new(settings.output_format, staging.upload(&staged(&settings.output_file_name)))
            }),
            mb_log: staging.upload(&staged("mini_batches.csv")),
            failure_log: staging.upload(&staged("failures.jsonl")),
        };
        let header = csv_line(MINI_BATCH_HEADER.iter().map(|s| s.to_string()));
        if let Err(e) = io.block_on(out.mb_log.write_all(header.as_bytes())) {
            a.error = Some(format!("cannot write logs/mini_batches.csv: {}", hint(&e)));
        }
        Assembly { a, out, tally: FileTally::new(plan), next: 0 }
    }

    /// Takes the mini-batches of `sources` in order (parts read a few ahead); stops at the
    /// first error, kept in `a.error`.
    /// Parts in `held` are taken from there, not read.
    async fn take(
        &mut self,
        state: &JobState,
        plan: &Plan,
        sources: Vec<Source>,
        stopped: &BTreeSet<usize>,
        held: &mut HashMap<(usize, usize), HeldPart>,
    ) {
        if self.a.error.is_some() {
            return;
        }
        let sources: Vec<(Source, Option<HeldPart>)> = sources
            .into_iter()
            .map(|s| match s {
                Source::Part { object, .. } => (s, held.remove(&object)),
                Source::Missing(_) => (s, None),
            })
            .collect();
        let mut fetched = futures::stream::iter(sources)
            .map(|(source, held)| async move {
                if let Some(h) = held {
                    return (source, Ok(h.into_bytes()));
                }
                let Source::Part { object, .. } = source else { return (source, Ok(bytes::Bytes::new())) };
                let name = JobState::run_name(object);
                let got = state.read(&name).await;
                (
                    source,
                    got.map_err(|e| format!("cannot read {}: {}", state.display(&name), crate::storage::describe(&e))),
                )
            })
            .buffered(PARTS_AHEAD);
        while let Some((source, got)) = fetched.next().await {
            if let Err(e) = self.take_one(state, plan, source, got, stopped).await {
                self.a.error = Some(e);
                return;
            }
        }
    }

    async fn take_one(
        &mut self,
        state: &JobState,
        plan: &Plan,
        source: Source,
        got: Result<bytes::Bytes, String>,
        stopped: &BTreeSet<usize>,
    ) -> Result<(), String> {
        let metas = match source {
            Source::Part { object, take } => {
                self.next = take.1 + 1;
                take_parts(state, object, take, &got?, &mut self.out).await?
            }
            Source::Missing(mb) => {
                self.next = mb + 1;
                self.a.missing.push(mb);
                vec![not_run(plan, mb, stopped.contains(&mb))]
            }
        };
        for meta in metas {
            write_logs(&mut self.out, &meta).await?;
            // A part was scored by someone; a placeholder for a missing one names no one.
            if !meta.by.is_empty() {
                self.a.absorb(meta, &mut self.tally, plan);
            }
        }
        Ok(())
    }

    /// Closes the staged files: what the assembly made.
    fn close(mut self, io: &tokio::runtime::Runtime) -> Assembled {
        let mut a = std::mem::take(&mut self.a);
        a.empty_files.sort();
        let mut out = self.out;
        if a.error.is_some() {
            if let Some(w) = out.predictions.take() {
                io.block_on(w.abort());
            }
            let _ = io.block_on(out.mb_log.abort());
            let _ = io.block_on(out.failure_log.abort());
            return a;
        }
        let closed = io.block_on(async {
            if let Some(w) = out.predictions.take() {
                a.predictions = w.finish().await.map_err(|e| crate::storage::io_hint(&e.to_string()))?;
            }
            for (name, upload) in [("mini_batches.csv", &mut out.mb_log), ("failures.jsonl", &mut out.failure_log)] {
                upload.shutdown().await.map_err(|e| format!("cannot write logs/{name}: {}", hint(&e)))?;
            }
            Ok::<_, String>(())
        });
        if let Err(e) = closed {
            a.error = Some(e);
        }
        a
    }
}

/// What the early assembly hears of a part written: the first and last mini-batch it holds,
/// and its bytes when they fit in [`HELD_BYTES`] beside those held already.
pub(super) struct WrittenPart {
    range: (usize, usize),
    bytes: Option<HeldPart>,
}

/// A written part's bytes, counted against [`HELD_BYTES`] until taken or dropped.
pub(super) struct HeldPart {
    bytes: bytes::Bytes,
    /// What it counts against [`HELD_BYTES`].
    len: usize,
    held: Arc<AtomicUsize>,
}

impl HeldPart {
    fn into_bytes(mut self) -> bytes::Bytes {
        std::mem::take(&mut self.bytes)
    }
}

impl Drop for HeldPart {
    fn drop(&mut self) {
        self.held.fetch_sub(self.len, Ordering::Relaxed);
    }
}

/// Where the collector tells the early assembly of each part written.
#[derive(Clone)]
pub(super) struct PartsWritten {
    tx: flume::Sender<WrittenPart>,
    held: Arc<AtomicUsize>,
}

impl PartsWritten {
    pub fn channel() -> (PartsWritten, flume::Receiver<WrittenPart>) {
        let (tx, rx) = flume::unbounded();
        (PartsWritten { tx, held: Arc::new(AtomicUsize::new(0)) }, rx)
    }

    /// Tells of the part of mini-batches `range`, handing over `bytes` (what this process
    /// wrote there) while they fit in [`HELD_BYTES`]; an assembly that ended early is no matter.
    pub fn send(&self, range: (usize, usize), bytes: Option<bytes::Bytes>) {
        let bytes = bytes.and_then(|bytes| {
            let len = bytes.len();
            let before = self.held.fetch_add(len, Ordering::Relaxed);
            let held = HeldPart { bytes, len, held: self.held.clone() };
            (before + len <= HELD_BYTES).then_some(held)
        });
        let _ = self.tx.send(WrittenPart { range, bytes });
    }
}

/// The assembly of a job scored by one process, while it runs: takes each part named on
/// `written` as soon as every mini-batch before it is taken, starting with the parts of earlier
/// attempts, from the bytes handed over with it (else read back). Returns when `written`
/// closes (every part writer is done), with the rest left to [`assemble`].
pub(super) fn early(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    plan: &Plan,
    state: &JobState,
    prior: &BTreeSet<(usize, usize)>,
    written: flume::Receiver<WrittenPart>,
) -> Assembly {
    let mut asm = Assembly::start(io, settings, plan, state);
    let total = plan.mini_batches.len();
    let mut available = prior.clone();
    let mut held = HashMap::new();
    let none_stopped = BTreeSet::new();
    loop {
        let ready = ready(&mut available, asm.next, total);
        if !ready.is_empty() {
            let started = std::time::Instant::now();
            io.block_on(asm.take(state, plan, ready, &none_stopped, &mut held));
            asm.a.timings.assemble_early += started.elapsed().as_secs_f64();
            held.retain(|range: &(usize, usize), _| range.1 >= asm.next);
        }
        match written.recv() {
            Ok(first) => {
                for part in std::iter::once(first).chain(written.try_iter()) {
                    available.insert(part.range);
                    if let Some(bytes) = part.bytes {
                        held.insert(part.range, bytes);
                    }
                }
            }
            Err(flume::RecvError::Disconnected) => return asm,
        }
    }
}

/// The parts of `available` that go on from mini-batch `next` without a gap: each mini-batch
/// from the part that holds it reaching furthest, consecutive ones of a part at once. Those
/// spent are dropped.
fn ready(available: &mut BTreeSet<(usize, usize)>, next: usize, total: usize) -> Vec<Source> {
    let mut taken = Vec::new();
    let mut mb = next;
    loop {
        while available.first().is_some_and(|&(_, last)| last < mb) {
            available.pop_first();
        }
        if mb >= total {
            available.clear();
            break;
        }
        let reach = available.range(..=(mb, usize::MAX)).copied().max_by_key(|&(_, last)| last);
        let Some(object) = reach else { break };
        let end = object.1.min(total - 1);
        taken.push(Source::Part { object, take: (mb, end) });
        mb = end + 1;
    }
    taken
}

/// Reads every part in order into the staged files, going on from `early` when the job's
/// process started its assembly while it ran: the predictions only when `predictions` (a job
/// that failed publishes its logs alone). `objects`: the part objects, as the first and last
/// mini-batch each holds; `stopped`: the mini-batches without one that this process stopped
/// in the middle of.
pub(super) fn assemble(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    job: &Prepared,
    state: &JobState,
    (objects, stopped): (&BTreeSet<(usize, usize)>, &BTreeSet<usize>),
    predictions: bool,
    early: Option<Assembly>,
) -> Assembled {
    let plan = &job.plan;
    let mut asm = early.unwrap_or_else(|| Assembly::start(io, settings, plan, state));
    if !predictions && let Some(w) = asm.out.predictions.take() {
        io.block_on(w.abort());
    }
    let rest = sources_from(objects, asm.next, plan.mini_batches.len());
    io.block_on(asm.take(state, plan, rest, stopped, &mut HashMap::new()));
    asm.close(io)
}

/// Where the assembly takes a mini-batch from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// From the part object holding mini-batches `object`, those in `take`.
    Part {
        object: (usize, usize),
        take: (usize, usize),
    },
    Missing(usize),
}

/// Where each of `total` mini-batches from `from` on is taken from, in order: each from one
/// object that holds it (whichever reaches furthest, should objects overlap), consecutive ones
/// of an object at once.
fn sources_from(objects: &BTreeSet<(usize, usize)>, from: usize, total: usize) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut left = objects.clone();
    let mut mb = from;
    while mb < total {
        let run = ready(&mut left, mb, total);
        if let Some(Source::Part { take, .. }) = run.last() {
            mb = take.1 + 1;
        }
        sources.extend(run);
        // The run ended at a gap (or at the end).
        if mb < total {
            sources.push(Source::Missing(mb));
            mb += 1;
        }
    }
    sources
}

/// Writes the rows of mini-batches `take` from the part object holding `object` to the
/// predictions file; their records, in order.
async fn take_parts(
    state: &JobState,
    object: (usize, usize),
    (from, to): (usize, usize),
    bytes: &bytes::Bytes,
    out: &mut Outputs,
) -> Result<Vec<PartMeta>, String> {
    let what = state.display(&JobState::run_name(object));
    let parts = split_run(bytes, &what)?;
    if parts.len() != object.1 - object.0 + 1 {
        return Err(format!(
            "{what} holds {} mini-batches where its name says {}; remove the job's staging and run again",
            parts.len(),
            object.1 - object.0 + 1
        ));
    }
    let mut metas = Vec::with_capacity(to - from + 1);
    for (mb, part) in (object.0..).zip(parts).filter(|(mb, _)| (from..=to).contains(mb)) {
        let (meta, rows) = decode(&part, &what)?;
        if meta.record.id != mb {
            return Err(format!(
                "{what} holds mini-batch {} where mini-batch {mb} belongs; remove the job's staging and run again",
                meta.record.id
            ));
        }
        match (out.predictions.as_mut(), rows) {
            (Some(w), Some(Rows::Arrow(rows))) => w.write(&rows).await.map_err(|e| hint(&e))?,
            (Some(w), Some(Rows::Parquet(file))) => w.splice_parquet(file).await.map_err(|e| hint(&e))?,
            (Some(w), Some(Rows::Csv(text))) => {
                let header = meta.csv_header.unwrap_or(0);
                w.write_encoded_csv(text, header).await.map_err(|e| hint(&e))?
            }
            _ => {}
        }
        metas.push(meta);
    }
    Ok(metas)
}

async fn write_logs(out: &mut Outputs, meta: &PartMeta) -> Result<(), String> {
    out.mb_log
        .write_all(csv_line(meta.record.csv_fields()).as_bytes())
        .await
        .map_err(|e| format!("cannot write logs/mini_batches.csv: {}", hint(&e)))?;
    let mut lines = Vec::new();
    for f in &meta.failures {
        serde_json::to_writer(&mut lines, f).expect("serialisable");
        lines.push(b'\n');
    }
    out.failure_log.write_all(&lines).await.map_err(|e| format!("cannot write logs/failures.jsonl: {}", hint(&e)))
}

/// The record of a mini-batch without a part: the job stopped before it, or while it ran.
fn not_run(plan: &Plan, mb: usize, stopped: bool) -> PartMeta {
    PartMeta {
        record: MiniBatchRecord {
            id: mb,
            files: plan.mini_batch_label(mb),
            attempts: 0,
            status: if stopped { "stopped" } else { "not_run" }.into(),
            seconds: 0.0,
            rows: 0,
            failed_items: 0,
            error: String::new(),
        },
        failures: Vec::new(),
        outcomes: Vec::new(),
        notes: Vec::new(),
        rows_scored: 0,
        rows_failed: 0,
        read: 0.0,
        decode: 0.0,
        infer: 0.0,
        by: String::new(),
        csv_header: None,
    }
}

/// Where this process stages an assembled file: its own folder, so that two processes that
/// both assemble (one thought the other dead) never write or remove each other's files.
pub(super) fn staged_name(state: &JobState, name: &str) -> String {
    format!("assembled/{}/{name}", state.process)
}

fn hint(e: &dyn std::fmt::Display) -> String {
    crate::storage::io_hint(&e.to_string())
}

fn csv_line<I: IntoIterator<Item = String>>(fields: I) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).expect("in-memory write");
    String::from_utf8(w.into_inner().expect("in-memory")).expect("utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(object: (usize, usize), take: (usize, usize)) -> Source {
        Source::Part { object, take }
    }

    #[test]
    fn parts_are_handed_over_while_they_fit_and_counted_until_taken() {
        let (tx, rx) = PartsWritten::channel();
        let big = bytes::Bytes::from(vec![7u8; HELD_BYTES / 2 + 1]);
        tx.send((0, 0), Some(big.clone()));
        // Over the limit beside the first: named, not handed over (the assembly reads it back).
        tx.send((1, 1), Some(big.clone()));
        tx.send((2, 2), None);
        let got: Vec<WrittenPart> = rx.try_iter().collect();
        let ranges: Vec<_> = got.iter().map(|p| (p.range, p.bytes.is_some())).collect();
        assert_eq!(ranges, vec![((0, 0), true), ((1, 1), false), ((2, 2), false)]);
        assert_eq!(tx.held.load(Ordering::Relaxed), big.len());
        let first = got.into_iter().next().and_then(|p| p.bytes).expect("handed over");
        assert_eq!(first.into_bytes(), big);
        assert_eq!(tx.held.load(Ordering::Relaxed), 0, "a taken part counts no more");
        tx.send((3, 3), Some(big.clone()));
        assert!(rx.try_recv().expect("sent").bytes.is_some(), "room again once taken");
        assert_eq!(tx.held.load(Ordering::Relaxed), 0, "a dropped part counts no more");
    }

    #[test]
    fn each_mini_batch_is_taken_once_in_order() {
        let objects = |o: &[(usize, usize)]| o.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(
            sources_from(&objects(&[(0, 0), (1, 3), (5, 5)]), 0, 7),
            vec![
                part((0, 0), (0, 0)),
                part((1, 3), (1, 3)),
                Source::Missing(4),
                part((5, 5), (5, 5)),
                Source::Missing(6)
            ]
        );
        // Objects that overlap (two processes that each thought themselves alone): each
        // mini-batch from one of them, the one reaching furthest.
        assert_eq!(
            sources_from(&objects(&[(0, 4), (2, 2), (3, 8), (8, 9)]), 0, 10),
            vec![part((0, 4), (0, 4)), part((3, 8), (5, 8)), part((8, 9), (9, 9))]
        );
        assert_eq!(sources_from(&objects(&[(0, 1), (0, 5)]), 0, 3), vec![part((0, 5), (0, 2))]);
        assert_eq!(sources_from(&objects(&[]), 0, 2), vec![Source::Missing(0), Source::Missing(1)]);
        assert!(sources_from(&objects(&[(0, 3)]), 0, 0).is_empty());
    }

    #[test]
    fn the_rest_goes_on_from_where_the_early_assembly_stopped() {
        let objects = [(0, 1), (2, 4), (5, 5)].into_iter().collect::<BTreeSet<_>>();
        assert_eq!(sources_from(&objects, 3, 7), vec![part((2, 4), (3, 4)), part((5, 5), (5, 5)), Source::Missing(6)]);
        assert!(sources_from(&objects, 7, 7).is_empty());
    }

    #[test]
    fn parts_are_ready_up_to_the_first_gap() {
        let mut available = [(0, 1), (2, 2), (4, 6)].into_iter().collect::<BTreeSet<_>>();
        assert_eq!(ready(&mut available, 0, 10), vec![part((0, 1), (0, 1)), part((2, 2), (2, 2))]);
        assert_eq!(available, [(4, 6)].into_iter().collect(), "spent parts are dropped");
        assert!(ready(&mut available, 3, 10).is_empty(), "mini-batch 3 is not written yet");
        available.insert((3, 3));
        available.insert((7, 9));
        assert_eq!(
            ready(&mut available, 3, 10),
            vec![part((3, 3), (3, 3)), part((4, 6), (4, 6)), part((7, 9), (7, 9))]
        );
        assert!(available.is_empty());
        // Overlapping parts (an earlier attempt's and this one's): the one reaching furthest.
        let mut available = [(0, 4), (2, 2), (3, 8)].into_iter().collect::<BTreeSet<_>>();
        assert_eq!(ready(&mut available, 2, 6), vec![part((0, 4), (2, 4)), part((3, 8), (5, 5))]);
        assert!(available.is_empty());
    }
}

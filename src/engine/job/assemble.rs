//! The assembly: the job's parts, read back in mini-batch order, into the staged predictions
//! file and logs, with the job's counts.
//!
//! Parts are fetched a few ahead of the writer; each one's rows go to the predictions file in
//! the job's format (the first rows fix the schema, as for a streamed job), its record to
//! `mini_batches.csv`, its failed items to `failures.jsonl`. A mini-batch without a part is
//! listed as `not_run`. The counts are the whole job's, whoever scored which part and when.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::prepare::Prepared;
use super::tally::FileTally;
use super::work::ItemOutcome;
use crate::engine::collect::PredictionWriter;
use crate::engine::report::{Counts, FailureRecord, MINI_BATCH_HEADER, MiniBatchRecord, StageTimings};
use crate::engine::settings::Settings;
use crate::engine::state::JobState;
use crate::engine::state::part::{PartMeta, Rows, decode};

/// Parts fetched ahead of the writer.
const PARTS_AHEAD: usize = 16;

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

    fn absorb(&mut self, meta: PartMeta, tally: &mut FileTally, plan: &crate::engine::plan::Plan) {
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

/// Reads every part in order into the staged files: the predictions only when `predictions`
/// (a job that failed publishes its logs alone). `parts`: the mini-batches that have one;
/// `stopped`: those without one that this process stopped in the middle of.
pub(super) fn assemble(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    job: &Prepared,
    state: &JobState,
    (parts, stopped): (&BTreeSet<usize>, &BTreeSet<usize>),
    predictions: bool,
) -> Assembled {
    let plan = &job.plan;
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
        predictions: predictions.then(|| {
            PredictionWriter::new(settings.output_format, staging.upload(&staged(&settings.output_file_name)))
        }),
        mb_log: staging.upload(&staged("mini_batches.csv")),
        failure_log: staging.upload(&staged("failures.jsonl")),
    };
    let result = io.block_on(read_parts(state, plan, (parts, stopped), &mut a, &mut out));
    a.empty_files.sort();
    if let Err(e) = result {
        a.error = Some(e);
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

async fn read_parts(
    state: &JobState,
    plan: &crate::engine::plan::Plan,
    (parts, stopped): (&BTreeSet<usize>, &BTreeSet<usize>),
    a: &mut Assembled,
    out: &mut Outputs,
) -> Result<(), String> {
    let header = csv_line(MINI_BATCH_HEADER.iter().map(|s| s.to_string()));
    out.mb_log
        .write_all(header.as_bytes())
        .await
        .map_err(|e| format!("cannot write logs/mini_batches.csv: {}", hint(&e)))?;
    let mut tally = FileTally::new(plan);
    let mut fetched = futures::stream::iter(0..plan.mini_batches.len())
        .map(|mb| {
            let present = parts.contains(&mb);
            async move {
                let name = JobState::part_name(mb);
                (mb, if present { Some(state.read(&name).await.map_err(|e| (name, e))) } else { None })
            }
        })
        .buffered(PARTS_AHEAD);
    while let Some((mb, got)) = fetched.next().await {
        let meta = match got {
            None => {
                a.missing.push(mb);
                not_run(plan, mb, stopped.contains(&mb))
            }
            Some(Err((name, e))) => {
                return Err(format!("cannot read {}: {}", state.display(&name), crate::storage::describe(&e)));
            }
            Some(Ok(bytes)) => {
                let (meta, rows) = decode(&bytes, &state.display(&JobState::part_name(mb)))?;
                match (out.predictions.as_mut(), rows) {
                    (Some(w), Some(Rows::Arrow(rows))) => w.write(&rows).await.map_err(|e| hint(&e))?,
                    (Some(w), Some(Rows::Parquet(file))) => w.splice_parquet(file).await.map_err(|e| hint(&e))?,
                    (Some(w), Some(Rows::Csv(text))) => {
                        let header = meta.csv_header.unwrap_or(0);
                        w.write_encoded_csv(&text, header).await.map_err(|e| hint(&e))?
                    }
                    _ => {}
                }
                meta
            }
        };
        write_logs(out, &meta).await?;
        // A part was scored by someone; a placeholder for a missing one names no one.
        if !meta.by.is_empty() {
            a.absorb(meta, &mut tally, plan);
        }
    }
    Ok(())
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
fn not_run(plan: &crate::engine::plan::Plan, mb: usize, stopped: bool) -> PartMeta {
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

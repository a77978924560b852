//! The collector: results in, in mini-batch order, out to the staged predictions and logs; then
//! the commit and the job report.
//!
//! Results arrive in any order and are written in mini-batch order, so the output order is the
//! input order whatever the concurrency. Failed items are counted as they come, and the job stops
//! as soon as they exceed `error_threshold`. Files are counted once all their items are in (a
//! split file spans mini-batches): scored, failed, or empty (a header and no rows).
//!
//! The job is Completed only if everything it promises was written: the predictions published,
//! the logs published and the report written. A job whose report cannot be written is Failed,
//! and its report path is not printed (it does not exist).

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::control::Interrupt;
use super::pipeline::{Joined, Running};
use super::prepare::Prepared;
use super::work::{ItemOutcome, MbResult};
use super::{JobControl, JobOutcome, ProgressUpdate, Started};
use crate::engine::collect::PredictionWriter;
use crate::engine::commit::{CommitError, put_create};
use crate::engine::plan::Plan;
use crate::engine::report::{
    Counts, FailureRecord, JobResult, JobStatus, MINI_BATCH_HEADER, MiniBatchRecord, StageTimings, Versions,
};
use crate::engine::settings::{Deployment, OutputAction, Settings};

/// Counts files as scored, failed or empty from their items' outcomes, which arrive in any order.
struct FileTally {
    /// Items of each file not yet in.
    left: Vec<usize>,
    failed: Vec<bool>,
    /// Rows each file held so far.
    rows: Vec<u64>,
}

/// What one mini-batch's outcomes changed.
#[derive(Debug, Default, PartialEq)]
struct Tallied {
    scored: u64,
    failed: u64,
    /// Files complete with no rows at all.
    empty: Vec<usize>,
}

impl FileTally {
    fn new(plan: &Plan) -> FileTally {
        FileTally {
            left: plan.items_per_file(),
            failed: vec![false; plan.files.len()],
            rows: vec![0; plan.files.len()],
        }
    }

    /// Takes in one mini-batch's outcomes. A file fails with its first failed item; it is
    /// scored (or empty, holding no rows) when its last item is in, none failed.
    fn add(&mut self, outcomes: &[(usize, ItemOutcome)]) -> Tallied {
        let mut t = Tallied::default();
        for &(f, o) in outcomes {
            if o == ItemOutcome::Stopped {
                continue;
            }
            self.left[f] = self.left[f].saturating_sub(1);
            if let ItemOutcome::Scored(rows) = o {
                self.rows[f] += rows;
            }
            if o == ItemOutcome::Failed && !self.failed[f] {
                self.failed[f] = true;
                t.failed += 1;
            } else if self.left[f] == 0 && !self.failed[f] {
                if self.rows[f] == 0 {
                    t.empty.push(f);
                } else {
                    t.scored += 1;
                }
            }
        }
        t
    }
}

/// A note from decoding: how many files it was about, and the first.
struct Note {
    files: u64,
    first: String,
}

/// What the collector gathered.
pub(super) struct Collected {
    pub counts: Counts,
    pub timings: StageTimings,
    pub first_failure: Option<FailureRecord>,
    pub job_error: Option<String>,
    pub write_error: Option<String>,
    predictions: Option<PredictionWriter>,
    mb_log: object_store::buffered::BufWriter,
    failure_log: object_store::buffered::BufWriter,
    notes: BTreeMap<String, Note>,
    pub empty_files: Vec<String>,
    received: Vec<bool>,
}

/// Takes every result off the pipeline and writes it.
pub(super) fn collect(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    job: &Prepared,
    running: &Running,
    control: &JobControl,
) -> Collected {
    let plan = &job.plan;
    let cancel = &running.shared.cancel;
    let mut c = Collected {
        counts: Counts {
            files_total: plan.files.len() as u64,
            files_skipped: plan.skipped.len() as u64,
            mini_batches_total: plan.mini_batches.len() as u64,
            ..Default::default()
        },
        timings: StageTimings { plan: job.plan_seconds, ..Default::default() },
        first_failure: None,
        job_error: None,
        write_error: None,
        predictions: (settings.output_action == OutputAction::AppendRow)
            .then(|| PredictionWriter::new(settings.output_format, job.staging.upload(&settings.output_file_name))),
        mb_log: job.staging.upload("mini_batches.csv"),
        failure_log: job.staging.upload("failures.jsonl"),
        notes: BTreeMap::new(),
        empty_files: Vec::new(),
        received: vec![false; plan.mini_batches.len()],
    };
    let mut progress = ProgressUpdate {
        files_total: plan.files.len() as u64,
        mini_batches_total: plan.mini_batches.len() as u64,
        ..Default::default()
    };
    let header = csv_line(MINI_BATCH_HEADER.iter().map(|s| s.to_string()));
    if let Err(e) = io.block_on(c.mb_log.write_all(header.as_bytes())) {
        c.write_error =
            Some(format!("cannot write logs/mini_batches.csv: {}", crate::storage::io_hint(&e.to_string())));
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let threshold = settings.error_threshold;
    let mut tally = FileTally::new(plan);
    let mut pending: BTreeMap<usize, MbResult> = BTreeMap::new();
    let mut next = 0usize;
    for result in running.results.iter() {
        c.received[result.id] = true;
        c.counts.items_failed += result.record.failed_items;
        let t = tally.add(&result.outcomes);
        c.counts.files_scored += t.scored;
        c.counts.files_failed += t.failed;
        c.counts.files_empty += t.empty.len() as u64;
        for f in &t.empty {
            tracing::warn!(
                "{}: the file holds no rows (a header only); nothing of it is in the output",
                plan.files[*f].rel
            );
            c.empty_files.push(plan.files[*f].rel.clone());
        }
        if threshold >= 0
            && c.counts.items_failed > threshold as u64
            && !cancel.load(std::sync::atomic::Ordering::Relaxed)
        {
            c.job_error = Some(format!(
                "{} failed items exceed error_threshold {threshold}; the job was stopped",
                c.counts.items_failed
            ));
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            running.shared.watchdog.terminate_all();
        }
        progress.files_done += t.scored + t.failed + t.empty.len() as u64;
        progress.mini_batches_done += 1;
        progress.rows_scored += result.rows_scored;
        progress.items_failed += result.record.failed_items;
        control.progress(&progress);
        pending.insert(result.id, result);
        while let Some(r) = pending.remove(&next) {
            next += 1;
            let t = Instant::now();
            if let Err(e) = write_result(io, &r, &mut c.predictions, &mut c.mb_log, &mut c.failure_log, cancel) {
                c.write_error.get_or_insert(e);
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            c.timings.write += t.elapsed().as_secs_f64();
            c.absorb(r);
        }
    }
    // Results after a gap (the job stopped early): log them, in order; no predictions.
    for (_, r) in std::mem::take(&mut pending) {
        let _ = write_result(io, &r, &mut None, &mut c.mb_log, &mut c.failure_log, cancel);
        c.absorb(r);
    }
    c.empty_files.sort();
    c
}

impl Collected {
    fn absorb(&mut self, r: MbResult) {
        self.counts.mini_batches_run += 1;
        self.counts.rows_scored += r.rows_scored;
        self.counts.rows_failed += r.rows_failed;
        self.counts.retries += u64::from(r.record.attempts.saturating_sub(1));
        self.timings.read += r.read;
        self.timings.decode += r.decode;
        self.timings.infer += r.infer;
        if self.first_failure.is_none() {
            self.first_failure = r.failures.iter().find(|f| f.items > 0).cloned();
        }
        for (note, file) in r.notes {
            let n = self.notes.entry(note).or_insert_with(|| Note { files: 0, first: file });
            n.files += 1;
        }
    }

    /// The threads' times, and a thread that panicked (which fails the job).
    pub fn add_threads(&mut self, joined: &Joined) {
        self.timings.workers.add(&joined.workers);
        self.timings.sessions.add(&joined.sessions);
        self.counts.model_calls += joined.model_calls;
        if joined.panicked {
            self.write_error.get_or_insert_with(|| "a worker or session thread panicked".into());
        }
    }

    /// Mini-batches that never ran (the job stopped early) are listed too, for the record.
    pub fn list_not_run(&mut self, io: &tokio::runtime::Runtime, plan: &Plan) {
        for (id, _) in self.received.iter().enumerate().filter(|(_, got)| !**got) {
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
            let _ = io.block_on(self.mb_log.write_all(csv_line(record.csv_fields()).as_bytes()));
        }
    }

    /// Decoding's notes, one line each: `<note> (N files, e.g. <file>)`, also logged.
    fn note_lines(&self) -> Vec<String> {
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
}

/// Why the job failed, if it did, before the commit.
fn job_error(c: &mut Collected, interrupted: Option<&Interrupt>) -> Option<String> {
    let mut error = c.job_error.take();
    match interrupted {
        Some(Interrupt::Signal(signal)) => {
            error.get_or_insert_with(|| format!("interrupted by {signal}; the output was not published"));
        }
        Some(Interrupt::Canceled(reason)) => {
            error.get_or_insert_with(|| format!("canceled ({reason}); the output was not published"));
        }
        None => {}
    }
    if let Some(e) = c.write_error.take() {
        error.get_or_insert(e);
    }
    let counts = &c.counts;
    if error.is_none() && counts.rows_scored == 0 && counts.files_total > 0 {
        error = Some(if counts.items_failed > 0 {
            "nothing was scored: every item failed (see logs/failures.jsonl)".into()
        } else if counts.files_empty == counts.files_total {
            "nothing was scored: every input file is empty (a header and no rows)".into()
        } else {
            "nothing was scored: the input files hold no rows".into()
        });
    }
    error
}

/// Publishes what the job made (the predictions only if it Completed), then its logs, then the
/// report, and says how it ended.
#[allow(clippy::too_many_arguments)]
pub(super) fn commit(
    io: &tokio::runtime::Runtime,
    settings: Settings,
    deployment: Deployment,
    job: Prepared,
    mut c: Collected,
    interrupted: Option<Interrupt>,
    gpu: Option<crate::engine::gpu::GpuReport>,
    started: Started,
) -> JobOutcome {
    let commit_started = Instant::now();
    let mut job_error = job_error(&mut c, interrupted.as_ref());
    let mut notes = deployment.notes;
    notes.extend(c.note_lines());
    let mut lost_race = false;
    let mut predictions_url = None;
    let note = |r: Result<(), CommitError>, job_error: &mut Option<String>, lost_race: &mut bool| match r {
        Ok(()) => true,
        Err(e) => {
            *lost_race |= matches!(e, CommitError::AlreadyExists { .. });
            job_error.get_or_insert(e.to_string());
            false
        }
    };
    if let Some(w) = c.predictions.take() {
        if job_error.is_none() {
            match io.block_on(w.finish()) {
                Ok(true) => {
                    let name = &settings.output_file_name;
                    if note(io.block_on(job.staging.publish(name, name)), &mut job_error, &mut lost_race) {
                        predictions_url = Some(job.output.join(name).display);
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    job_error.get_or_insert(crate::storage::io_hint(&e.to_string()));
                }
            }
        } else {
            io.block_on(w.abort());
        }
    }
    if !lost_race {
        for (name, mut upload) in [("mini_batches.csv", c.mb_log), ("failures.jsonl", c.failure_log)] {
            match io.block_on(upload.shutdown()) {
                Ok(()) => {
                    note(
                        io.block_on(job.staging.publish(name, &format!("logs/{name}"))),
                        &mut job_error,
                        &mut lost_race,
                    );
                }
                Err(e) => {
                    job_error.get_or_insert(format!(
                        "cannot write logs/{name}: {}",
                        crate::storage::io_hint(&e.to_string())
                    ));
                }
            }
        }
    } else {
        let _ = io.block_on(c.mb_log.abort());
        let _ = io.block_on(c.failure_log.abort());
    }
    io.block_on(job.staging.cleanup());
    c.timings.commit = commit_started.elapsed().as_secs_f64();
    c.timings.wall = started.instant.elapsed().as_secs_f64();
    c.timings.bound_by = c.timings.bounding_stage();
    let result = JobResult {
        job_id: started.job_id,
        status: match (&job_error, &interrupted) {
            (None, _) => JobStatus::Completed,
            (Some(_), Some(Interrupt::Canceled(_))) if !lost_race => JobStatus::Canceled,
            (Some(_), _) => JobStatus::Failed,
        },
        error: job_error.map(|e| crate::secrets::scrub(&e).into_owned()),
        first_failure: c.first_failure,
        started_at: started.at.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        input: job.input.display.clone(),
        output: job.output.display.clone(),
        predictions: predictions_url,
        counts: c.counts,
        timings_seconds: c.timings,
        gpu,
        model: job.model_report,
        settings,
        ignored_settings: deployment.ignored,
        notes,
        skipped_files: job.plan.skipped.clone(),
        empty_files: c.empty_files,
        versions: Versions {
            batchscore: env!("CARGO_PKG_VERSION"),
            onnxruntime: crate::engine::runtime::loaded_version(),
        },
    };
    write_report(io, &job.output, result, lost_race)
}

/// Writes `logs/job_result.json` create-only (not when another job took the output).
fn write_report(
    io: &tokio::runtime::Runtime,
    output: &crate::storage::Location,
    mut result: JobResult,
    mut lost_race: bool,
) -> JobOutcome {
    let mut report_error = None;
    let mut report_url = None;
    if !lost_race {
        let json = serde_json::to_vec_pretty(&result).expect("serialisable report");
        match io.block_on(put_create(output, "logs/job_result.json", Bytes::from(json))) {
            Ok(()) => report_url = Some(output.join("logs/job_result.json").display),
            Err(e) => {
                lost_race = matches!(e, CommitError::AlreadyExists { .. });
                if !lost_race {
                    // The report is what tells a scheduler the job completed: without it, it did not.
                    result.status = JobStatus::Failed;
                    result.predictions = None;
                    result.error.get_or_insert_with(|| crate::storage::io_hint(&e.to_string()));
                    report_error = Some(crate::storage::io_hint(&e.to_string()));
                }
            }
        }
    }
    JobOutcome { result, report_url, report_error, lost_race }
}

fn write_result(
    io: &tokio::runtime::Runtime,
    r: &MbResult,
    predictions: &mut Option<PredictionWriter>,
    mb_log: &mut object_store::buffered::BufWriter,
    failure_log: &mut object_store::buffered::BufWriter,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    let hint = |e: &dyn std::fmt::Display| crate::storage::io_hint(&e.to_string());
    io.block_on(async {
        if let (Some(w), Some(rows)) = (predictions.as_mut(), &r.rows)
            && !cancel.load(std::sync::atomic::Ordering::Relaxed)
            && rows.num_rows() > 0
        {
            w.write(rows).await.map_err(|e| hint(&e))?;
        }
        mb_log
            .write_all(csv_line(r.record.csv_fields()).as_bytes())
            .await
            .map_err(|e| format!("cannot write logs/mini_batches.csv: {}", hint(&e)))?;
        let mut lines = Vec::new();
        for f in &r.failures {
            serde_json::to_writer(&mut lines, f).expect("serialisable");
            lines.push(b'\n');
        }
        failure_log.write_all(&lines).await.map_err(|e| format!("cannot write logs/failures.jsonl: {}", hint(&e)))
    })
}

fn csv_line<I: IntoIterator<Item = String>>(fields: I) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).expect("in-memory write");
    String::from_utf8(w.into_inner().expect("in-memory")).expect("utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_scored_failed_or_empty_once_all_their_items_are_in() {
        let mut t = FileTally { left: vec![2, 1, 1, 1], failed: vec![false; 4], rows: vec![0; 4] };
        assert_eq!(t.add(&[(0, ItemOutcome::Scored(0))]), Tallied::default());
        let got = t.add(&[
            (0, ItemOutcome::Scored(5)),
            (1, ItemOutcome::Scored(0)),
            (2, ItemOutcome::Failed),
            (3, ItemOutcome::Stopped),
        ]);
        assert_eq!(got, Tallied { scored: 1, failed: 1, empty: vec![1] });
    }
}

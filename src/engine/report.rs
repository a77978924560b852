//! The job's record: `logs/job_result.json`, `logs/mini_batches.csv`, `logs/failures.jsonl`.
//!
//! `job_result.json` is what a scheduler or a person reads first: status, counts, the first real
//! error and the failing file, timings per stage, the effective settings and versions. It never
//! holds secrets: locations are recorded as displayed (no credentials).

use serde::Serialize;

use crate::engine::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum JobStatus {
    Completed,
    Failed,
    /// Stopped through [`crate::engine::JobControl::cancel`]; nothing was published.
    Canceled,
}

impl JobStatus {
    /// The status as Azure ML names it.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
            JobStatus::Canceled => "Canceled",
        }
    }
}

/// One failed item (a file, a piece of a split file, or a row of a tabular file), or a group of
/// rows that failed together.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FailureRecord {
    pub file: String,
    /// The row in the file, for a row failure; absent when the whole file failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// For a piece of a split file that failed as a whole: which piece (`rows 0-24999`,
    /// `bytes 0-67108863`), as `mini_batches.csv` names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub piece: Option<String>,
    /// ... and its first and last rows, when known (always for Parquet pieces; for a CSV piece
    /// once it was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<[u64; 2]>,
    /// How many items this record covers (rows of a file that failed as a whole).
    pub items: u64,
    pub mini_batch: usize,
    pub attempts: u32,
    pub error: String,
}

/// One mini-batch, as a row of `mini_batches.csv`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct MiniBatchRecord {
    pub id: usize,
    /// The files, separated by `;`; a piece of a split file is named with its range in brackets:
    /// `big.parquet[rows 0-24999]`, `big.csv[bytes 0-67108863]`.
    pub files: String,
    pub attempts: u32,
    /// completed, partial (some items failed), failed (nothing scored), stopped (the job stopped
    /// while it ran), or not_run (the job stopped before it).
    pub status: String,
    pub seconds: f64,
    pub rows: u64,
    pub failed_items: u64,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Files the job scores (skipped ones not included).
    pub files_total: u64,
    /// Files with rows, all of which were scored or failed alone.
    pub files_scored: u64,
    pub files_failed: u64,
    /// Files that hold no rows (a header only), scored without output.
    pub files_empty: u64,
    /// Files found under the input and left out (another type, an unusable name): `skipped_files`.
    pub files_skipped: u64,
    pub rows_scored: u64,
    pub rows_failed: u64,
    /// Failed items as `error_threshold` counts them.
    pub items_failed: u64,
    pub mini_batches_total: u64,
    /// Mini-batches scored (a part written), by this run or an earlier attempt of the job.
    pub mini_batches_run: u64,
    /// Of those, the ones an earlier attempt (or another process, before the one that
    /// published joined) had scored: what the resumed job did not score again.
    pub mini_batches_resumed: u64,
    pub retries: u64,
    /// ONNX Runtime calls made; rows (or images) scored per call is the batch actually used.
    pub model_calls: u64,
}

/// Seconds spent in each stage. `read`, `decode` and `infer` are summed over mini-batches, which
/// run side by side (so they may exceed the wall time); `workers` and `sessions` say how the
/// pipeline's threads spent their time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimings {
    pub wall: f64,
    pub plan: f64,
    /// From the first request to the last byte of each mini-batch (overlaps other work: reads
    /// run ahead on the I/O threads).
    pub read: f64,
    pub decode: f64,
    pub infer: f64,
    /// Encoding the scored rows as the output stores them (CSV text, Parquet), summed over
    /// mini-batches: on the sessions, side by side, after each model call.
    pub encode: f64,
    /// Writing the parts of scored mini-batches (on the collector thread, while the sessions score).
    pub write: f64,
    /// Reading the parts back into the output, in order, once the scoring is done (see
    /// `assemble`).
    pub assemble: f64,
    /// The same while the job ran, off its critical path: a job scored by one process takes
    /// each part into the output as soon as those before it are written.
    pub assemble_early: f64,
    pub commit: f64,
    /// The workers, which decode mini-batches for the sessions when there are fewer sessions
    /// than workers (a GPU): waiting for input means reading could not keep up; waiting for
    /// output, that the sessions could not. With one session per worker, each decodes its own
    /// input and this is empty (`threads`: 0).
    pub workers: ThreadTimes,
    /// The model sessions: waiting for input means the workers could not keep up; waiting for
    /// output, that writing could not.
    pub sessions: ThreadTimes,
    /// The stage that bounds the job's speed: `write` (sessions wait on the output), `read`
    /// or `decode` (sessions wait for input, because the workers wait for bytes or are busy
    /// decoding), or what keeps the sessions busy: `infer` (or `decode`, where they decode
    /// their own input and that takes longer).
    pub bound_by: &'static str,
}

/// One kind of pipeline thread's time, summed over the threads of that kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ThreadTimes {
    pub threads: usize,
    /// From each thread's first wait for work to its end.
    pub alive: f64,
    pub waiting_for_input: f64,
    pub waiting_for_output: f64,
}

impl ThreadTimes {
    pub fn add(&mut self, other: &ThreadTimes) {
        self.threads += other.threads;
        self.alive += other.alive;
        self.waiting_for_input += other.waiting_for_input;
        self.waiting_for_output += other.waiting_for_output;
    }

    /// The fraction of their time these threads spent on `x`.
    fn share(&self, x: f64) -> f64 {
        if self.alive > 0.0 { x / self.alive } else { 0.0 }
    }
}

/// A fifth of a stage's time spent waiting on one side points there.
const WAITING_BOUND: f64 = 0.2;

impl StageTimings {
    /// Which stage bounds the job, from where the sessions wait, and if they wait for input,
    /// where the workers do.
    pub fn bounding_stage(&self) -> &'static str {
        let (s, w) = (&self.sessions, &self.workers);
        let starved = s.share(s.waiting_for_input) >= WAITING_BOUND;
        if s.share(s.waiting_for_output) >= WAITING_BOUND && !(starved && s.waiting_for_input > s.waiting_for_output) {
            "write"
        } else if starved {
            // Sessions that decode their own input (no workers apart) wait only for bytes.
            if w.threads == 0 || w.share(w.waiting_for_input) >= WAITING_BOUND { "read" } else { "decode" }
        } else if w.threads == 0 && self.decode > self.infer.max(self.encode) {
            "decode"
        } else if self.encode > self.infer {
            "encode"
        } else {
            "infer"
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// Files beside the model holding its external weights.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_data: Vec<String>,
    pub info: crate::engine::model::ModelInfo,
    pub feeder: crate::engine::preprocess::Feeder,
    pub batch_size: usize,
    pub workers: usize,
    pub sessions: usize,
    pub intra_threads: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub batchscore: &'static str,
    pub onnxruntime: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobResult {
    pub job_id: String,
    /// The fingerprint of the job's plan (see `plan.json`): a rerun with `--resume` of the same
    /// inputs, model and settings finds the job done.
    pub plan_fingerprint: String,
    pub status: JobStatus,
    /// Why the job failed, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first failed item, with its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<FailureRecord>,
    pub started_at: String,
    pub finished_at: String,
    pub input: String,
    pub output: String,
    /// The predictions file, when one was written.
    pub predictions: Option<String>,
    pub counts: Counts,
    pub timings_seconds: StageTimings,
    /// GPU utilisation while the job ran (`--device cuda` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::engine::gpu::GpuReport>,
    pub model: ModelReport,
    pub settings: Settings,
    pub ignored_settings: Vec<String>,
    /// What the job noticed and did about it (a pandas index column left out, ...).
    pub notes: Vec<String>,
    /// Files found under the input and left out, with the reason.
    pub skipped_files: Vec<crate::engine::plan::Skipped>,
    /// Files that hold no rows.
    pub empty_files: Vec<String>,
    /// The processes that scored the job's mini-batches, and how many each (one entry for a
    /// job that ran in one process, in one go).
    pub processes: std::collections::BTreeMap<String, u64>,
    pub versions: Versions,
}

/// The header of `mini_batches.csv`.
pub const MINI_BATCH_HEADER: [&str; 8] =
    ["id", "files", "attempts", "status", "seconds", "rows", "failed_items", "error"];

impl MiniBatchRecord {
    pub fn csv_fields(&self) -> [String; 8] {
        [
            self.id.to_string(),
            self.files.clone(),
            self.attempts.to_string(),
            self.status.to_string(),
            format!("{:.3}", self.seconds),
            self.rows.to_string(),
            self.failed_items.to_string(),
            self.error.clone(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::{StageTimings, ThreadTimes};

    fn times(alive: f64, input: f64, output: f64) -> ThreadTimes {
        ThreadTimes { threads: 2, alive, waiting_for_input: input, waiting_for_output: output }
    }

    fn t(workers: ThreadTimes, sessions: ThreadTimes) -> StageTimings {
        StageTimings { workers, sessions, ..Default::default() }
    }

    #[test]
    fn the_bounding_stage_is_where_sessions_wait_or_work() {
        // Sessions busy, workers waiting for them to take decoded mini-batches.
        assert_eq!(t(times(10.0, 1.0, 7.0), times(10.0, 0.5, 0.5)).bounding_stage(), "infer");
        // Sessions waiting for input; the workers busy decoding.
        assert_eq!(t(times(10.0, 0.5, 0.5), times(10.0, 6.0, 0.0)).bounding_stage(), "decode");
        // Sessions and workers both waiting for input: reading is behind.
        assert_eq!(t(times(10.0, 6.0, 0.0), times(10.0, 7.0, 0.0)).bounding_stage(), "read");
        // Sessions waiting for the writer.
        assert_eq!(t(times(10.0, 0.5, 6.0), times(10.0, 0.5, 4.0)).bounding_stage(), "write");
        // Both waits above a fifth: the larger one.
        assert_eq!(t(times(10.0, 0.5, 2.0), times(10.0, 3.0, 5.0)).bounding_stage(), "write");
        assert_eq!(t(times(10.0, 0.5, 2.0), times(10.0, 5.0, 3.0)).bounding_stage(), "decode");
        assert_eq!(StageTimings::default().bounding_stage(), "infer");
        // Sessions busy and neither waiting: the larger of their own stages.
        let busy = |decode, infer, encode| StageTimings {
            decode,
            infer,
            encode,
            ..t(ThreadTimes::default(), times(10.0, 0.5, 0.5))
        };
        assert_eq!(busy(3.0, 1.0, 2.0).bounding_stage(), "decode");
        assert_eq!(busy(1.0, 1.0, 2.0).bounding_stage(), "encode", "encoding the output rows");
        assert_eq!(busy(1.0, 3.0, 2.0).bounding_stage(), "infer");
    }
}

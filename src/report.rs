//! The job's record: `logs/job_result.json`, `logs/mini_batches.csv`, `logs/failures.jsonl`.
//!
//! `job_result.json` is what a scheduler or a person reads first: status, counts, the first real
//! error and the failing file, timings per stage, the effective settings and versions. It never
//! holds secrets: locations are recorded as displayed (no credentials).

use serde::Serialize;

use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JobStatus {
    Completed,
    Failed,
}

/// One failed item (a file, a piece of a split file, or a row of a tabular file), or a group of
/// rows that failed together.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct MiniBatchRecord {
    pub id: usize,
    /// The files, separated by `;`; a piece of a split file is named with its range in brackets:
    /// `big.parquet[rows 0-24999]`, `big.csv[bytes 0-67108863]`.
    pub files: String,
    pub attempts: u32,
    /// completed, partial (some items failed), failed (nothing scored), stopped (the job stopped
    /// while it ran), or not_run (the job stopped before it).
    pub status: &'static str,
    pub seconds: f64,
    pub rows: u64,
    pub failed_items: u64,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub files_total: u64,
    pub files_scored: u64,
    pub files_failed: u64,
    pub rows_scored: u64,
    pub rows_failed: u64,
    /// Failed items as `error_threshold` counts them.
    pub items_failed: u64,
    pub mini_batches_total: u64,
    pub mini_batches_run: u64,
    pub retries: u64,
}

/// Seconds spent in each stage. `read`, `decode`, `infer`, `idle` and `output_wait` are summed
/// over workers (so they may exceed the wall time); `workers` is the workers' whole time,
/// summed, which their busy and waiting time add up to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimings {
    pub wall: f64,
    pub plan: f64,
    /// From the first request to the last byte of each mini-batch (overlaps other work: reads
    /// run ahead on the I/O threads).
    pub read: f64,
    pub decode: f64,
    pub infer: f64,
    /// Writing the output (on the collector thread, while workers score).
    pub write: f64,
    pub commit: f64,
    /// Worker seconds spent waiting for a mini-batch: reading could not keep up.
    pub idle: f64,
    /// Worker seconds spent waiting for the writer to take a scored mini-batch.
    pub output_wait: f64,
    /// The workers' time, summed: from each one's first wait for work to its end.
    pub workers: f64,
    /// The stage that bounds the job's speed: `read` (workers idle), `write` (workers wait
    /// on the output), or the workers' own `decode` or `infer`.
    pub bound_by: &'static str,
}

impl StageTimings {
    /// Which stage bounds the job: a fifth of the workers' time spent waiting on one side points
    /// there; otherwise the larger of the workers' two stages.
    pub fn bounding_stage(&self) -> &'static str {
        let share = |x: f64| if self.workers > 0.0 { x / self.workers } else { 0.0 };
        if share(self.idle) >= 0.2 && self.idle >= self.output_wait {
            "read"
        } else if share(self.output_wait) >= 0.2 {
            "write"
        } else if self.decode > self.infer {
            "decode"
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
    pub info: crate::model::ModelInfo,
    pub feeder: crate::preprocess::Feeder,
    pub batch_size: usize,
    pub workers: usize,
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
    pub gpu: Option<crate::gpu::GpuReport>,
    pub model: ModelReport,
    pub settings: Settings,
    pub ignored_settings: Vec<String>,
    pub notes: Vec<String>,
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
    use super::StageTimings;

    fn t(decode: f64, infer: f64, idle: f64, output_wait: f64) -> StageTimings {
        StageTimings {
            decode,
            infer,
            idle,
            output_wait,
            workers: decode + infer + idle + output_wait,
            ..Default::default()
        }
    }

    #[test]
    fn the_bounding_stage_is_where_workers_wait_or_work_most() {
        assert_eq!(t(1.0, 8.0, 1.0, 0.0).bounding_stage(), "infer");
        assert_eq!(t(5.0, 4.0, 1.0, 0.0).bounding_stage(), "decode");
        assert_eq!(t(1.0, 5.0, 4.0, 0.0).bounding_stage(), "read");
        assert_eq!(t(1.0, 5.0, 0.5, 3.5).bounding_stage(), "write");
        // Both waits above a fifth: the larger one.
        assert_eq!(t(1.0, 1.0, 3.0, 5.0).bounding_stage(), "write");
        assert_eq!(StageTimings::default().bounding_stage(), "infer");
    }
}

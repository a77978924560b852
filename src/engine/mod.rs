//! The engine: one job, from a spec to an outcome, through one module per stage.
//!
//! ```text
//! plan ──► read ──► preprocess ──► infer ──► collect ──► commit
//! ```
//!
//! Callers (the `score` command, the catalog's job runner, later the server) use only the API
//! re-exported here: a [`JobSpec`] is [`prepare`]d (everything that can refuse the job, with a
//! typed [`PrepareError`]), then [`PreparedJob::run`] runs it under a [`JobControl`] (cancel from
//! any thread, progress and phase callbacks through an [`Observer`]) to a [`JobOutcome`]. The
//! engine imports nothing of the CLI, the server or the catalog.
//!
//! - [`settings`] resolves flags and a deployment file into one validated [`settings::Settings`].
//! - [`plan`] checks (and probes) the output path, lists the input files (skipping what cannot be
//!   scored) and cuts them into mini-batches.
//! - [`split`] cuts large tabular files into pieces (Parquet row groups, CSV record ranges) for
//!   mini-batches of rows or bytes, and reads and decodes those pieces.
//! - [`read`] fetches bytes through `object_store` on tokio, a few mini-batches ahead.
//! - [`preprocess`] turns bytes into model-ready rows: CSV/Parquet into columns, images into pixels.
//! - [`model`] reads what an ONNX file declares; [`infer`] owns ONNX Runtime sessions (one per
//!   worker) and runs packed batches with timeouts; [`runtime`] finds the ONNX Runtime library.
//! - [`collect`] turns model outputs into rows and writes CSV or Parquet.
//! - [`commit`] stages the output and publishes it create-only, with the job's logs; [`report`]
//!   is the job's record (`logs/job_result.json`).
//! - [`state`] is a job's progress in the store (plan, leases, parts): what resume and
//!   several processes sharing one job are built on.
//! - [`job`] is the coordinator that wires the stages together, retries and counts failures;
//!   [`gpu`] samples a GPU's use while a job runs.

pub mod collect;
pub mod commit;
pub mod csv_out;
pub mod float_text;
pub mod gpu;
pub mod infer;
pub mod job;
pub mod model;
pub mod parquet_out;
pub mod plan;
pub mod preprocess;
pub mod read;
pub mod report;
pub mod runtime;
pub mod settings;
pub mod split;
pub mod state;

pub use job::{
    JobControl, JobOptions, JobOutcome, JobSpec, Observer, Phase, PlanSummary, PrepareError, PreparedJob,
    ProgressUpdate, prepare, run,
};

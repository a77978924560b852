//! batchscore: a batch scoring engine for ONNX models.
//!
//! A job flows through one module per stage:
//!
//! ```text
//! plan ──► read ──► preprocess ──► infer ──► collect ──► commit
//! ```
//!
//! - [`settings`] resolves CLI flags and a deployment file into one validated [`settings::Settings`].
//! - [`plan`] checks (and probes) the output path, lists the input files (skipping what cannot be
//!   scored) and cuts them into mini-batches.
//! - [`split`] cuts large tabular files into pieces (Parquet row groups, CSV record ranges) for
//!   mini-batches of rows or bytes, and reads and decodes those pieces.
//! - [`read`] fetches bytes through `object_store` on tokio, a few mini-batches ahead.
//! - [`preprocess`] turns bytes into model-ready rows: CSV/Parquet into columns, images into pixels.
//! - [`infer`] owns ONNX Runtime sessions (one per worker) and runs packed batches with timeouts.
//! - [`collect`] turns model outputs into rows and writes CSV or Parquet.
//! - [`commit`] stages the output and publishes it create-only, with the job's logs.
//! - [`job`] is the coordinator that wires the stages together, retries and counts failures.
//! - [`cli`] is the command line; [`report`] the job's record; [`storage`] every store.
//! - [`secrets`] keeps credentials out of every message; [`text`] quotes data in messages as short
//!   excerpts.

pub mod cli;
pub mod collect;
pub mod commit;
pub mod gpu;
pub mod infer;
pub mod job;
pub mod model;
pub mod plan;
pub mod preprocess;
pub mod progress;
pub mod read;
pub mod report;
pub mod runtime;
pub mod secrets;
pub mod settings;
pub mod split;
pub mod storage;
pub mod text;

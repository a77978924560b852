//! batchscore: a batch scoring engine for ONNX models, and the batch endpoint workflow around it.
//!
//! ```text
//! cli ──┐                      ┌──► workspace (the SQLite catalog, azureml: references)
//!       ├──► service ──────────┤
//! (server)                     └──► engine (one job: plan ► read ► preprocess ► infer ► collect ► commit)
//! ```
//!
//! - [`engine`] scores one job; it knows nothing of the surfaces or the catalog.
//! - [`workspace`] is the catalog: models, environments, datastores, data assets, endpoints,
//!   deployments and jobs, in one SQLite file with versioned migrations.
//! - [`service`] holds the operations every surface shares (register a model, create a
//!   deployment, invoke an endpoint and run its job), on the catalog and the engine.
//! - [`cli`] is the command line, one file per command group; `score` calls the engine directly.
//! - [`storage`] builds every object store; [`secrets`] keeps credentials out of every message;
//!   [`text`] quotes data in messages as short excerpts.

pub mod cli;
pub mod engine;
pub mod secrets;
pub mod server;
pub mod service;
pub mod storage;
pub mod text;
pub mod workspace;

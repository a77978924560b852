//! The command line: `score` for a folder without a workspace, and Azure ML's command groups
//! for the batch endpoint workflow (one file each), with the doc comments that become `--help`,
//! and the mapping of outcomes to exit codes (DESIGN.md section 5): 0 the job Completed (or
//! the command succeeded), 1 the job Failed or was canceled, 2 the job could not start or the
//! command was refused.

mod common;
mod compute;
mod data;
mod datastore;
mod deployment;
mod endpoint;
mod environment;
mod job;
mod model;
pub mod output;
pub mod progress;
mod score;
mod serve;
mod token;
mod workspace;

use clap::{Args, Parser, Subcommand};

use crate::engine::settings::RawSettings;

#[derive(Debug, Parser)]
#[command(name = "batchscore", version, about = "Batch scoring for ONNX models", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a folder (or file) of inputs with an ONNX model into one output folder.
    Score(Box<ScoreArgs>),
    /// Create, show or delete the workspace (the catalog and the default datastore).
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCommand),
    /// Register and manage ONNX models.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Manage environments (the runtime a deployment runs on).
    #[command(subcommand)]
    Environment(environment::EnvironmentCommand),
    /// Manage datastores (named store locations).
    #[command(subcommand)]
    Datastore(datastore::DatastoreCommand),
    /// Manage data assets (named, versioned inputs).
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Manage batch endpoints and invoke them.
    #[command(subcommand, name = "batch-endpoint", alias = "endpoint")]
    BatchEndpoint(endpoint::EndpointCommand),
    /// Manage batch deployments of an endpoint.
    #[command(subcommand, name = "batch-deployment", alias = "deployment")]
    BatchDeployment(deployment::DeploymentCommand),
    /// Compute targets: where a deployment's jobs run their processes (local or Slurm).
    #[command(subcommand)]
    Compute(compute::ComputeCommand),
    /// List, follow, download and cancel jobs.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Access tokens for `batchscore serve`.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Serve the workspace over HTTP on loopback: the REST API (batch endpoint invoke, jobs, the
    /// registry; /openapi.json) and the studio web page at /.
    Serve(Box<serve::ServeArgs>),
}

/// `batchscore score`. Settings left out here come from `--config`, then from the defaults.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 the job completed, 1 the job failed (error threshold exceeded or nothing scored), \
                  2 the job could not start (bad settings, missing model or input, output already exists)."
)]
pub struct ScoreArgs {
    /// The ONNX model file.
    #[arg(long, env = "BATCHSCORE_MODEL", value_name = "PATH")]
    pub model: Option<String>,
    /// Folder (or single file) of inputs: CSV, Parquet, or images (PNG, JPEG, GIF, BMP, TIFF, WebP, ...).
    #[arg(long, value_name = "PATH")]
    pub input: Option<String>,
    /// Output folder; must not exist yet (or be empty). Nothing in it is ever overwritten.
    #[arg(long, value_name = "PATH")]
    pub output: Option<String>,
    /// A deployment YAML (Azure ML batch deployment schema); flags given here win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Files per mini-batch: the unit of scheduling, retry and failure accounting [default: 10].
    /// For tabular inputs, a size such as 64MB (KB, MB, GB, or bytes: 1048576B) means about that
    /// many input bytes per mini-batch instead: larger files are split into pieces.
    #[arg(long, value_name = "N|SIZE")]
    pub mini_batch_size: Option<String>,
    /// Tabular inputs: about N rows per mini-batch instead of a count of files; small files are
    /// grouped, larger ones split (Parquet by row groups, CSV at record boundaries).
    #[arg(long, value_name = "N")]
    pub mini_batch_rows: Option<String>,
    /// Parallel workers: each reads and decodes one mini-batch at a time for the model sessions
    /// [default: number of cores].
    #[arg(long, alias = "max-concurrency-per-instance", value_name = "N")]
    pub max_concurrency: Option<String>,
    /// append_row (write predictions) or summary_only (job report only) [default: append_row].
    #[arg(long, value_name = "ACTION")]
    pub output_action: Option<String>,
    /// Name of the predictions file; .csv or .parquet picks the format [default: predictions.csv].
    #[arg(long, value_name = "NAME")]
    pub output_file_name: Option<String>,
    /// Retries of a failed or timed-out mini-batch [default: 3].
    #[arg(long, value_name = "N")]
    pub max_retries: Option<String>,
    /// Seconds one mini-batch attempt may take before it is stopped and retried [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<String>,
    /// Failed items (files, or rows of tabular files) tolerated before the job fails; -1 ignores all [default: -1].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub error_threshold: Option<String>,
    /// warning, info or debug [default: info].
    #[arg(long, value_name = "LEVEL")]
    pub logging_level: Option<String>,
    /// Only score files whose path (relative to --input) matches this glob, e.g. '*.csv' or '**/*.png'.
    #[arg(long, value_name = "GLOB")]
    pub pattern: Option<String>,
    /// Tabular columns that feed the model's single 2-D input, in this order.
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    pub features: Option<Vec<String>>,
    /// Input columns copied into the output, after `file` and `row`, as stored: CSV text as
    /// written (leading zeros, long integers and decimals kept), Parquet values in their own type.
    /// `name:type` converts one (string, int64, uint64, float64, bool, date, timestamp, decimal(P,S)).
    #[arg(long, value_name = "A,B:TYPE")]
    pub passthrough: Option<Vec<String>>,
    /// CSV field delimiter: one character such as ';' or '|', or 'tab' [default: ,].
    #[arg(long, value_name = "CHAR")]
    pub csv_delimiter: Option<String>,
    /// Decimal mark of numbers in CSV text: '.' or ',' (needs another --csv-delimiter) [default: .].
    #[arg(long, value_name = "CHAR")]
    pub decimal_mark: Option<String>,
    /// Feed NaN and infinite feature values (NaN, inf, 1e309 in text; NaN/inf floats in
    /// Parquet) to the model, as models that treat NaN as missing want; by default such a row
    /// fails, naming the column and the value.
    #[arg(long)]
    pub allow_non_finite: bool,
    /// Feed missing feature values (empty cells, NA, null) to float inputs as NaN, for models
    /// that handle missing values (LightGBM, XGBoost); by default such a row fails.
    #[arg(long)]
    pub missing_as_nan: bool,
    /// A CSV record or JSON line longer than this fails alone (KB, MB, GB) [default: 32MB].
    #[arg(long, value_name = "SIZE")]
    pub max_record_size: Option<String>,
    /// Rows or images per model call, packed across files [default: 1024 rows, 32 images, or the model's fixed batch].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<String>,
    /// ONNX Runtime sessions the workers feed; each packs rows or images from several
    /// mini-batches up to --batch-size [default: one per worker on the CPU, 2 on a GPU].
    #[arg(long, value_name = "N")]
    pub sessions: Option<String>,
    /// ONNX Runtime threads per session [default: cores / sessions on the CPU, 1 on a GPU].
    #[arg(long, value_name = "N")]
    pub intra_threads: Option<String>,
    /// cpu, or cuda / cuda:N for ONNX Runtime's CUDA execution provider on GPU N (needs the
    /// onnxruntime-gpu library; a GPU that is not there is an error, never a CPU fallback) [default: cpu].
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Image size WIDTHxHEIGHT [default: the model's input size; a dynamic size keeps each image's own].
    #[arg(long, value_name = "WxH")]
    pub image_size: Option<String>,
    /// Image channels: 1 (gray), 3 (rgb) or 4 (rgba) [default: from the model's input shape].
    #[arg(long, value_name = "C")]
    pub channels: Option<String>,
    /// Factor applied to 0-255 pixel values before mean/std, e.g. 1/255 [default: 1/255].
    #[arg(long, value_name = "X")]
    pub scale: Option<String>,
    /// Per-channel mean subtracted after scaling [default: 0].
    #[arg(long, value_name = "M[,M,M]")]
    pub mean: Option<String>,
    /// Per-channel standard deviation divided by after the mean [default: 1].
    #[arg(long, value_name = "S[,S,S]")]
    pub std: Option<String>,
    /// Image tensor layout: nchw, nhwc or flat [default: from the model's input shape].
    #[arg(long, value_name = "LAYOUT")]
    pub layout: Option<String>,
    /// How images reach the model size: stretch, or crop (shorter side, then centre) [default: stretch].
    #[arg(long, value_name = "MODE")]
    pub resize: Option<String>,
    /// apply (rotate and flip photos as their EXIF orientation says, as viewers and PIL's
    /// exif_transpose do) or ignore (the pixels as stored) [default: apply].
    #[arg(long, value_name = "MODE")]
    pub exif_orientation: Option<String>,
    /// Images with more pixels are refused, as PIL refuses decompression bombs [default: 178956970].
    #[arg(long, value_name = "N")]
    pub max_image_pixels: Option<String>,
    /// scaled (a JPEG much larger than the model's input is decoded at 1/2, 1/4 or 1/8 of its
    /// size, in the DCT domain, as PIL's Image.draft does: several times faster) or full (every
    /// pixel decoded, then resized) [default: scaled].
    #[arg(long, value_name = "MODE")]
    pub jpeg_decode: Option<String>,
    /// A setting of the remote stores, KEY=VALUE, repeatable: object_store's keys such as
    /// aws_endpoint, aws_region, azure_storage_account_name, azure_storage_use_emulator, timeout.
    /// Credentials also come from AWS_*, AZURE_STORAGE_* and GOOGLE_* environment variables.
    /// Values are never logged or reported.
    #[arg(long = "storage-option", value_name = "KEY=VALUE")]
    pub storage_options: Vec<String>,
    /// auto (a bar on a terminal, lines otherwise), bar, plain or off [default: auto].
    #[arg(long, value_name = "MODE")]
    pub progress: Option<String>,
    /// Seconds between plain progress lines [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub progress_interval: Option<String>,
    /// Remove what jobs that were killed left in --output (`_staging/`) before starting; a job
    /// still running on this machine is never touched.
    #[arg(long)]
    pub clean_staging: bool,
    /// Go on with the job this --output holds (after a crash, kill -9, Ctrl-C, a full disk or
    /// a passed error threshold): score only the mini-batches it has not, then publish as if it
    /// had run in one go. The inputs, model and settings must be the job's (what differs is
    /// named); --max-retries, --timeout, --error-threshold and concurrency may change. Starts
    /// the job when there is none.
    #[arg(long)]
    pub resume: bool,
    /// Processes sharing this job (Azure ML's instance_count): start N processes with the same
    /// flags, on one machine or many, in any order; they claim mini-batches through the store
    /// and the last to finish publishes [default: 1].
    #[arg(long, value_name = "N")]
    pub instance_count: Option<String>,
    /// This process's index among --instance-count, 0 to N-1 [default: from
    /// JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX, else 0].
    #[arg(long, value_name = "I")]
    pub instance_index: Option<String>,
    /// Seconds a process of a shared job may go without its heartbeat before others take over
    /// its mini-batches (a new job records it; a job keeps its own) [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub lease_timeout: Option<String>,
}

impl ScoreArgs {
    /// The flags as raw settings, to lay over a deployment file's.
    pub fn raw(&self) -> RawSettings {
        RawSettings {
            model: self.model.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
            mini_batch_size: self.mini_batch_size.clone(),
            mini_batch_rows: self.mini_batch_rows.clone(),
            max_concurrency: self.max_concurrency.clone(),
            instance_count: self.instance_count.clone(),
            output_action: self.output_action.clone(),
            output_file_name: self.output_file_name.clone(),
            max_retries: self.max_retries.clone(),
            timeout: self.timeout.clone(),
            error_threshold: self.error_threshold.clone(),
            logging_level: self.logging_level.clone(),
            pattern: self.pattern.clone(),
            storage_options: (!self.storage_options.is_empty()).then(|| self.storage_options.clone()),
            features: self.features.clone(),
            passthrough: self
                .passthrough
                .as_ref()
                .map(|v| v.iter().flat_map(|s| crate::engine::settings::split_columns(s)).collect()),
            batch_size: self.batch_size.clone(),
            sessions: self.sessions.clone(),
            intra_threads: self.intra_threads.clone(),
            device: self.device.clone(),
            image_size: self.image_size.clone(),
            channels: self.channels.clone(),
            scale: self.scale.clone(),
            mean: self.mean.clone(),
            std: self.std.clone(),
            layout: self.layout.clone(),
            resize: self.resize.clone(),
            progress: self.progress.clone(),
            progress_interval: self.progress_interval.clone(),
            exif_orientation: self.exif_orientation.clone(),
            max_image_pixels: self.max_image_pixels.clone(),
            jpeg_decode: self.jpeg_decode.clone(),
            csv_delimiter: self.csv_delimiter.clone(),
            decimal_mark: self.decimal_mark.clone(),
            allow_non_finite: self.allow_non_finite.then(|| "true".to_string()),
            missing_as_nan: self.missing_as_nan.then(|| "true".to_string()),
            max_record_size: self.max_record_size.clone(),
            graph_optimization_level: None,
        }
    }
}

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The job completed.
    Completed,
    /// The job ran and failed: error threshold exceeded, or nothing scored.
    Failed,
    /// The job could not start: bad arguments or config, output exists, model or input missing.
    CouldNotStart,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Completed => 0,
            Exit::Failed => 1,
            Exit::CouldNotStart => 2,
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Score(args) => score::score_command(&args),
        Command::Workspace(c) => workspace::run(&c),
        Command::Model(c) => model::run(&c),
        Command::Environment(c) => environment::run(&c),
        Command::Datastore(c) => datastore::run(&c),
        Command::Data(c) => data::run(&c),
        Command::BatchEndpoint(c) => endpoint::run(&c),
        Command::BatchDeployment(c) => deployment::run(&c),
        Command::Compute(c) => compute::run(&c),
        Command::Job(c) => job::run(&c),
        Command::Token(c) => token::run(&c),
        Command::Serve(a) => serve::run(&a),
    }
}

//! The job coordinator, and the engine's API: a [`JobSpec`] is [`prepare`]d, then
//! [`PreparedJob::run`] runs it under a [`JobControl`] to a [`JobOutcome`].
//!
//! - `prepare`: everything that can refuse the job (exit 2) before any scoring: the output
//!   check and the probe write, the plan, the model and how the data feeds it.
//! - `pipeline`: the reader, workers and sessions, and what stops a job (cancel, signals).
//! - `work`: what a worker and a session do with one mini-batch: decode, score with retries,
//!   timeouts and narrowing, and account for every item.
//! - `collector`: results into the output in order, the error threshold, then the commit
//!   (see [`crate::engine::commit`]) and the job report.
//! - `control` and `error`: the caller's handle and the typed refusal.

mod collector;
mod control;
mod error;
mod pipeline;
mod prepare;
mod work;

use std::time::Instant;

pub use control::{JobControl, Observer, Phase, ProgressUpdate};
pub use error::PrepareError;

use crate::engine::report::JobResult;
use crate::engine::settings::{Deployment, Settings};

/// How a job is run, beside its settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobOptions {
    /// Remove the staging files that killed jobs left in the output first.
    pub clean_staging: bool,
    /// Ctrl-C and SIGTERM stop the job (a second one exits the process). For a command that runs
    /// one job; a server handles its own signals and cancels through [`JobControl`].
    pub signals: bool,
}

/// One job to run: what to score (the settings), where they came from, and how.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub settings: Settings,
    pub deployment: Deployment,
    pub options: JobOptions,
    /// The job's id (staging folder, report); made up from the time when `None`. A caller that
    /// names jobs (the catalog) passes its name, which must be a valid path segment.
    pub job_id: Option<String>,
}

impl JobSpec {
    pub fn new(settings: Settings, deployment: Deployment) -> JobSpec {
        JobSpec { settings, deployment, options: JobOptions::default(), job_id: None }
    }
}

/// What a finished job reports back.
#[derive(Debug)]
pub struct JobOutcome {
    pub result: JobResult,
    /// Where the job report was written; `None` when it could not be (or another job's is there).
    pub report_url: Option<String>,
    /// Why the report could not be written.
    pub report_error: Option<String>,
    /// Set when the commit lost a race: the output appeared while the job ran (exit 2).
    pub lost_race: bool,
}

/// When and as what a job started.
struct Started {
    instant: Instant,
    at: chrono::DateTime<chrono::Utc>,
    job_id: String,
}

/// A job that passed every check and holds its plan, model and probe; [`PreparedJob::run`]
/// scores it. Dropping it without running leaves its staging marker behind (named by the next
/// job's output check), so run it or let [`PreparedJob::abandon`] remove it.
pub struct PreparedJob {
    io: tokio::runtime::Runtime,
    spec: JobSpec,
    job: prepare::Prepared,
    started: Started,
    control: JobControl,
}

/// What a prepared job is about to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSummary {
    pub job_id: String,
    pub input: String,
    pub output: String,
    pub files: u64,
    pub files_skipped: u64,
    pub mini_batches: u64,
}

/// Checks everything that can refuse the job, under `control` (whose observer hears
/// [`Phase::Preparing`]).
pub fn prepare(spec: JobSpec, control: &JobControl) -> Result<PreparedJob, PrepareError> {
    let at = chrono::Utc::now();
    let job_id = spec.job_id.clone().unwrap_or_else(|| {
        format!("{}-{}", at.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8])
    });
    let started = Started { instant: Instant::now(), job_id, at };
    let settings = &spec.settings;
    crate::secrets::register_environment_and_url(&[&settings.input, &settings.output, &settings.model]);
    for value in settings.storage_options.secret_values() {
        crate::secrets::register(value);
    }
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("batchscore-io")
        .enable_all()
        .build()
        .map_err(PrepareError::Runtime)?;
    tracing::info!("job {}", started.job_id);
    control.phase(&started.job_id, Phase::Preparing);
    let job = prepare::prepare(&io, settings, &started.job_id, spec.options.clean_staging)?;
    Ok(PreparedJob { io, spec, job, started, control: control.clone() })
}

/// Prepares and runs a job: [`prepare`], then [`PreparedJob::run`].
pub fn run(spec: JobSpec, control: &JobControl) -> Result<JobOutcome, PrepareError> {
    prepare(spec, control)?.run()
}

impl PreparedJob {
    /// What the job will score.
    pub fn summary(&self) -> PlanSummary {
        PlanSummary {
            job_id: self.started.job_id.clone(),
            input: self.job.input.display.clone(),
            output: self.job.output.display.clone(),
            files: self.job.plan.files.len() as u64,
            files_skipped: self.job.plan.skipped.len() as u64,
            mini_batches: self.job.plan.mini_batches.len() as u64,
        }
    }

    /// Runs the job to its end. `Err` means its threads could not start (nothing was scored and
    /// its staging marker is removed).
    pub fn run(mut self) -> Result<JobOutcome, PrepareError> {
        let summary = self.summary();
        let (io, settings, control) = (&self.io, &self.spec.settings, &self.control);
        let running = match pipeline::start(io, settings, &mut self.job, control, self.spec.options.signals) {
            Ok(r) => r,
            Err(e) => {
                io.block_on(self.job.staging.cleanup());
                return Err(e);
            }
        };
        control.planned(&summary);
        control.phase(&self.started.job_id, Phase::Running);
        let mut collected = collector::collect(io, settings, &self.job, &running, control);
        let interrupted = running.interrupted.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (joined, gpu) = running.join(io);
        collected.add_threads(&joined);
        collected.list_not_run(io, &self.job.plan);
        control.phase(&self.started.job_id, Phase::Finalizing);
        let PreparedJob { io, spec, job, started, .. } = self;
        Ok(collector::commit(&io, spec.settings, spec.deployment, job, collected, interrupted, gpu, started))
    }

    /// Gives the job up without scoring: removes its staging marker.
    pub fn abandon(self) {
        self.io.block_on(self.job.staging.cleanup());
    }
}

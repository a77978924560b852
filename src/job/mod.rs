//! The job coordinator: prepare, run the pipeline, collect, commit.
//!
//! - `prepare`: everything that can refuse the job (exit 2) before any scoring: the output
//!   check and the probe write, the plan, the model and how the data feeds it.
//! - `pipeline`: the reader, workers and sessions, and the signals that stop a job.
//! - `work`: what a worker and a session do with one mini-batch: decode, score with retries,
//!   timeouts and narrowing, and account for every item.
//! - `collector`: results into the output in order, the error threshold, then the commit
//!   (see [`crate::commit`]) and the job report.

mod collector;
mod pipeline;
mod prepare;
mod work;

use std::time::Instant;

use crate::report::JobResult;
use crate::settings::{Deployment, Settings};

/// A job that could not start (exit 2), with the message to show.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// How a job is run, beside its settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobOptions {
    /// Remove the staging files that killed jobs left in the output first.
    pub clean_staging: bool,
}

/// What a finished job reports back to the CLI.
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

/// Runs a job to its end. `Err` means it could not start.
pub fn run(settings: Settings, deployment: Deployment, options: JobOptions) -> Result<JobOutcome, StartError> {
    let at = chrono::Utc::now();
    let started = Started {
        instant: Instant::now(),
        job_id: format!("{}-{}", at.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]),
        at,
    };
    crate::secrets::register_environment_and_url(&[&settings.input, &settings.output, &settings.model]);
    for value in settings.storage_options.secret_values() {
        crate::secrets::register(value);
    }
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("batchscore-io")
        .enable_all()
        .build()
        .map_err(|e| StartError(format!("cannot start the I/O runtime: {e}")))?;
    tracing::info!("job {}", started.job_id);
    let mut job = prepare::prepare(&io, &settings, &started.job_id, options.clean_staging)?;
    let running = match pipeline::start(&io, &settings, &mut job) {
        Ok(r) => r,
        Err(e) => {
            io.block_on(job.staging.cleanup());
            return Err(e);
        }
    };
    let mut collected = collector::collect(&io, &settings, &job, &running);
    let interrupted = *running.interrupted.lock().unwrap_or_else(|e| e.into_inner());
    let (joined, gpu) = running.join(&io);
    collected.add_threads(&joined);
    collected.list_not_run(&io, &job.plan);
    Ok(collector::commit(&io, settings, deployment, job, collected, interrupted, gpu, started))
}

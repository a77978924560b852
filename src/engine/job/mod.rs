//! The job coordinator, and the engine's API: a [`JobSpec`] is [`prepare`]d, then
//! [`PreparedJob::run`] runs it under a [`JobControl`] to a [`JobOutcome`].
//!
//! - `prepare`: everything that can refuse the job (exit 2) before any scoring: the output
//!   check and the probe write, the plan, the model and how the data feeds it.
//! - `pipeline`: the reader, workers and sessions, and what stops a job (cancel, signals).
//! - `work`: what a worker and a session do with one mini-batch: decode, score with retries,
//!   timeouts and narrowing, and account for every item.
//! - `resume`: which job a run is, new or continued, from the plan recorded in the store (see
//!   [`crate::engine::state`]).
//! - `encode`: a mini-batch's output rows encoded for its part on the session that scored it.
//! - `collector`: results in, each written as its mini-batch's part; the error threshold.
//! - `assemble` and `finish`: the parts in order into the output, the commit (see
//!   [`crate::engine::commit`]) and the job report; for a job of several processes, who
//!   publishes.
//! - `tally`: files counted as scored, failed or empty once all their items are in.
//! - `control` and `error`: the caller's handle and the typed refusal.

mod assemble;
mod collector;
mod control;
mod encode;
mod error;
mod finish;
mod pipeline;
mod prepare;
mod resume;
mod tally;
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
    /// Go on with the job recorded in the output (`--resume`): score only the mini-batches it
    /// has not, after a crash, a kill, Ctrl-C or a Failed end. Starts the job when there is none.
    pub resume: bool,
    /// This process's index among the settings' `instance_count` processes (0 when unset).
    pub instance_index: Option<usize>,
    /// How long a process's leases live without its heartbeat, for a new job of several
    /// processes (a job keeps the time its plan records).
    pub lease_seconds: Option<f64>,
}

impl JobOptions {
    /// How this process takes part, when several processes share the job.
    pub fn instance(&self, settings: &Settings) -> Option<crate::engine::state::lease::Instance> {
        (settings.instance_count > 1).then(|| crate::engine::state::lease::Instance {
            index: self.instance_index.unwrap_or(0).min(settings.instance_count - 1),
            count: settings.instance_count,
        })
    }
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
    /// Whether this process published the job's output and report. Of a job that several
    /// processes share one does; the others' results are their own share.
    pub published: bool,
}

/// Collects the pipeline's results into parts; alone in the job, a process assembles them as
/// they are written (see [`assemble::Assembly`]).
fn collect_and_assemble(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    job: &prepare::Prepared,
    settled: &resume::Settled,
    running: &pipeline::Running,
    claims: &std::sync::Arc<crate::engine::state::lease::Claims>,
    control: &JobControl,
) -> (collector::Collected, Option<assemble::Assembly>) {
    if settled.instance.is_some() {
        let written = collector::Written { claims: claims.clone(), assembly: None };
        return (collector::collect(io, settings, job, settled, running, control, written), None);
    }
    let (written, parts) = assemble::PartsWritten::channel();
    std::thread::scope(|s| {
        let assembler = std::thread::Builder::new()
            .name("batchscore-assemble".into())
            .spawn_scoped(s, || assemble::early(io, settings, &job.plan, &settled.state, &settled.prior.objects, parts))
            .ok();
        let written = collector::Written { claims: claims.clone(), assembly: Some(written) };
        let collected = collector::collect(io, settings, job, settled, running, control, written);
        // Without its thread (it could not start), the whole assembly is left to the job's end.
        (collected, assembler.and_then(|t| t.join().ok()))
    })
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
    settled: resume::Settled,
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
    /// Mini-batches scored already (by an earlier attempt, or other processes of the job).
    pub mini_batches_done: u64,
}

/// Checks everything that can refuse the job, under `control` (whose observer hears
/// [`Phase::Preparing`]).
pub fn prepare(spec: JobSpec, control: &JobControl) -> Result<PreparedJob, PrepareError> {
    let at = chrono::Utc::now();
    let fresh_id = spec.job_id.clone().unwrap_or_else(|| {
        format!("{}-{}", at.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8])
    });
    let settings = &spec.settings;
    if let Some(i) =
        spec.options.instance_index.filter(|i| settings.instance_count > 1 && *i >= settings.instance_count)
    {
        return Err(PrepareError::Setting(format!(
            "--instance-index {i} is out of range for instance_count {}: use 0 to {}",
            settings.instance_count,
            settings.instance_count.max(1) - 1
        )));
    }
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
    control.phase(&fresh_id, Phase::Preparing);
    let meet = prepare::Meeting { job_id: &fresh_id, named: spec.job_id.as_deref(), options: &spec.options };
    let (job, settled) = prepare::prepare(&io, settings, meet)?;
    let job_id = settled.state.job_id.clone();
    tracing::info!("job {job_id}");
    let started = Started { instant: Instant::now(), job_id, at };
    Ok(PreparedJob { io, spec, job, settled, started, control: control.clone() })
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
            mini_batches_done: self.settled.prior.parts.len() as u64,
        }
    }

    /// Runs the job to its end. `Err` means its threads could not start (nothing was scored and
    /// the job's state is as it was).
    pub fn run(mut self) -> Result<JobOutcome, PrepareError> {
        let summary = self.summary();
        let (io, settings, control) = (&self.io, &self.spec.settings, &self.control);
        let claims = crate::engine::state::lease::Claims::new();
        let signals = self.spec.options.signals;
        let running = match pipeline::start(io, settings, &mut self.job, &self.settled, &claims, control, signals) {
            Ok(r) => r,
            Err(e) => {
                self.undo();
                return Err(e);
            }
        };
        control.planned(&summary);
        control.phase(&self.started.job_id, Phase::Running);
        let (collected, early) =
            collect_and_assemble(io, settings, &self.job, &self.settled, &running, &claims, control);
        let interrupted = running.interrupted.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let cancel = running.shared.cancel.clone();
        let (joined, gpu) = running.join(io);
        control.phase(&self.started.job_id, Phase::Finalizing);
        let PreparedJob { io, spec, job, settled, started, .. } = self;
        let ending = finish::Ending {
            settings: spec.settings,
            deployment: spec.deployment,
            job,
            settled,
            collected,
            claims,
            interrupted,
            joined,
            cancel,
            gpu,
            started,
            early,
        };
        Ok(finish::finish(&io, ending))
    }

    /// Gives the job up without scoring: removes what this process wrote into its staging
    /// area (all of it, for a job this process started).
    pub fn abandon(self) {
        self.undo();
    }

    fn undo(&self) {
        let state = &self.settled.state;
        if self.settled.started_it && self.settled.prior.parts.is_empty() {
            self.io.block_on(state.staging().cleanup());
        } else {
            self.io.block_on(state.remove(&crate::engine::state::JobState::owner_name(&state.process)));
        }
    }
}

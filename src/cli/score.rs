//! `batchscore score`: resolve the settings, run the job, print how it ended, pick the exit code.

use super::{Exit, ScoreArgs};
use std::sync::Arc;

use super::progress::Shown;
use crate::engine::report::JobStatus;
use crate::engine::settings::{Deployment, LogLevel, Settings};
use crate::engine::{JobControl, JobOptions, JobOutcome, JobSpec};

/// Runs `batchscore score`.
pub fn score_command(args: &ScoreArgs) -> Exit {
    let (settings, deployment) = match resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", crate::secrets::scrub(&e.to_string()));
            return Exit::CouldNotStart;
        }
    };
    init_logging(settings.logging_level);
    for ignored in &deployment.ignored {
        tracing::warn!("deployment setting `{ignored}` has no meaning here and is ignored");
    }
    let options = match job_options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CouldNotStart;
        }
    };
    let shown = Arc::new(Shown::new(settings.progress, settings.progress_interval));
    let spec = JobSpec { options, ..JobSpec::new(settings, deployment) };
    let ended = crate::engine::run(spec, &JobControl::with_observer(shown));
    if crate::storage::latency::from_environment().is_some() {
        // For the scaling benchmark: what the job cost in store requests.
        eprintln!("store requests: {}", crate::storage::latency::requests());
    }
    match ended {
        Err(crate::engine::PrepareError::Plan(e @ crate::engine::plan::PlanError::AlreadyCompleted { .. })) => {
            // A process of a shared job started after the others finished it: nothing to do.
            eprintln!("{}", crate::secrets::scrub(&e.to_string()));
            Exit::Completed
        }
        Err(e) => {
            eprintln!("error: {}", crate::secrets::scrub(&e.to_string()));
            Exit::CouldNotStart
        }
        Ok(outcome) => {
            print_summary(&outcome);
            // The one line on stdout: where the predictions are, for scripts.
            if let Some(p) = &outcome.result.predictions {
                println!("{p}");
            }
            if outcome.lost_race {
                Exit::CouldNotStart
            } else if outcome.result.status == JobStatus::Completed {
                Exit::Completed
            } else {
                Exit::Failed
            }
        }
    }
}

/// The environment variables schedulers give each process of an array job its index in.
const INDEX_VARIABLES: [&str; 3] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "AWS_BATCH_JOB_ARRAY_INDEX"];

fn job_options(args: &ScoreArgs) -> Result<JobOptions, String> {
    let instance_index = instance_index(args.instance_index.as_deref(), "--instance-count")?;
    let lease_seconds = match &args.lease_timeout {
        Some(raw) => Some(
            raw.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && (0.5..=86_400.0).contains(s))
                .ok_or_else(|| format!("--lease-timeout {raw:?}: expected seconds from 0.5 to 86400"))?,
        ),
        None => None,
    };
    Ok(JobOptions {
        clean_staging: args.clean_staging,
        signals: true,
        resume: args.resume,
        instance_index,
        lease_seconds,
    })
}

/// This process's index among a job's processes: `--instance-index` (`raw`), else the
/// scheduler's ([`index_from_environment`]); `count` names where the count comes from.
pub(super) fn instance_index(raw: Option<&str>, count: &str) -> Result<Option<usize>, String> {
    match raw {
        Some(raw) => Ok(Some(
            raw.trim()
                .parse::<usize>()
                .map_err(|_| format!("--instance-index {raw:?}: expected a whole number from 0 to {count} minus 1"))?,
        )),
        None => index_from_environment(),
    }
}

/// The index a scheduler gave this process: Kubernetes' `JOB_COMPLETION_INDEX`, Slurm's
/// `SLURM_ARRAY_TASK_ID` (counted from `SLURM_ARRAY_TASK_MIN`, so `--array=1-4` works) or AWS
/// Batch's `AWS_BATCH_JOB_ARRAY_INDEX`.
fn index_from_environment() -> Result<Option<usize>, String> {
    for var in INDEX_VARIABLES {
        let Ok(raw) = std::env::var(var) else { continue };
        let n: usize =
            raw.trim().parse().map_err(|_| format!("{var}={raw:?} is not an index; set --instance-index"))?;
        let min = if var == "SLURM_ARRAY_TASK_ID" {
            std::env::var("SLURM_ARRAY_TASK_MIN").ok().and_then(|m| m.trim().parse().ok()).unwrap_or(0)
        } else {
            0
        };
        return Ok(Some(n.saturating_sub(min)));
    }
    Ok(None)
}

fn resolve(args: &ScoreArgs) -> Result<(Settings, Deployment), crate::engine::settings::ConfigError> {
    let (deployment, origin) = match &args.config {
        Some(path) => (Deployment::load(path)?, format!("flags and {}", path.display())),
        None => (Deployment::default(), "flags".to_string()),
    };
    let settings = args.raw().over(deployment.settings.clone()).resolve(&origin)?;
    Ok((settings, deployment))
}

/// Logs go to stderr, through [`crate::secrets::scrub`].
pub(super) fn init_logging(level: LogLevel) {
    let filter = match level {
        LogLevel::Warning => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug,ort=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATCHSCORE_LOG").unwrap_or_else(|_| {
        // ONNX Runtime's own messages are noisy at info; keep them at warnings unless debugging.
        tracing_subscriber::EnvFilter::new(if level == LogLevel::Debug {
            filter.to_string()
        } else {
            format!("{filter},ort=warn")
        })
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::secrets::ScrubbedStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

pub(super) fn print_summary(o: &JobOutcome) {
    let r = &o.result;
    let c = &r.counts;
    if !o.published {
        // One process of a shared job that another published (or that this one left).
        eprintln!(
            "{}: this process scored {} of the job's {} mini-batches; output {}",
            r.status.name(),
            c.mini_batches_run,
            c.mini_batches_total,
            r.output
        );
        if let Some(e) = &r.error {
            eprintln!("error: {e}");
        }
        if let Some(url) = &o.report_url {
            eprintln!("job report (written by the process that published): {url}");
        }
        return;
    }
    let extra = [(c.files_empty, "empty"), (c.files_skipped, "skipped")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!(", {n} {what}"))
        .collect::<String>();
    eprintln!(
        "{}: {} rows from {}/{} files scored in {:.1} s{extra}; {} items failed ({} files, {} rows); output {}",
        r.status.name(),
        c.rows_scored,
        c.files_scored,
        c.files_total,
        r.timings_seconds.wall,
        c.items_failed,
        c.files_failed,
        c.rows_failed,
        r.output
    );
    if let Some(f) = &r.first_failure {
        let at = match (&f.row, &f.piece) {
            (Some(row), _) => format!("{} row {row}", f.file),
            (None, Some(piece)) => format!("{}[{piece}]", f.file),
            (None, None) => f.file.clone(),
        };
        // Decode errors already start with the file name; say it once.
        let error = f.error.strip_prefix(&format!("{}: ", f.file)).unwrap_or(&f.error);
        eprintln!("first failure: {at}: {error}");
    }
    if let Some(e) = &r.error {
        eprintln!("error: {e}");
    }
    if o.lost_race {
        eprintln!(
            "error: another job published into {} while this one ran; this job's results were discarded, and the \
             report there is the other job's, not this one's",
            r.output
        );
    } else if let Some(url) = &o.report_url {
        eprintln!("job report: {url}");
    } else if let Some(e) = &o.report_error {
        eprintln!("error: the job report could not be written ({e}); the job counts as Failed");
    }
}

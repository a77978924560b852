//! `batchscore job list|show|stream|download|cancel`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, Name, fail};
use crate::service::jobs;
use crate::workspace::assets::JobStatus;

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// List jobs, oldest first.
    List(List),
    /// Show a job: status, times, inputs, output, effective settings, counts, first failure.
    Show(Name),
    /// Follow a job's progress until it ends (from any terminal).
    Stream(Name),
    /// Download a job's output into --download-path/named-outputs/<output-name>/.
    Download(Download),
    /// Cancel a job: a running one stops within seconds and publishes nothing.
    Cancel(Name),
    /// Go on with a Failed or Canceled job: score only the mini-batches it has not (its scored
    /// ones are kept in its output's staging area), then publish as if it had run in one go.
    Resume(Name),
    /// Run one process of a job launched on a compute target (what `invoke` starts on it, or a
    /// scheduler of your own: the index comes from --instance-index, JOB_COMPLETION_INDEX,
    /// SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX).
    Worker(Worker),
    /// List the staging areas unfinished jobs left in an output, and remove those whose job no
    /// longer runs (their scored mini-batches go with them: such a job cannot be resumed).
    Cleanup(Cleanup),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["name", "output_path"])))]
pub struct Cleanup {
    /// A catalog job (Failed or Canceled): its output's staging area.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Any output folder or prefix (as `score --output`): every staging area in it.
    #[arg(long = "output-path")]
    pub output_path: Option<String>,
    /// Storage options for --output-path (key=value), as `score`'s.
    #[arg(long = "storage-option", value_name = "KEY=VALUE")]
    pub storage_options: Vec<String>,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Worker {
    #[arg(long, short = 'n')]
    pub name: String,
    /// This process's index among the job's instance_count (default: from the scheduler's
    /// variables, else 0).
    #[arg(long)]
    pub instance_index: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct List {
    /// Only this endpoint's jobs.
    #[arg(long, short = 'e')]
    pub endpoint: Option<String>,
    /// Only jobs with this status (Running, Completed, Failed, ...).
    #[arg(long, short = 's')]
    pub status: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Download {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, default_value = "score")]
    pub output_name: String,
    #[arg(long, short = 'p', default_value = ".")]
    pub download_path: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(cmd: &JobCommand) -> Exit {
    match cmd {
        JobCommand::List(a) => a.common.show(
            a.common.open().and_then(|mut ws| jobs::list(&mut ws, a.endpoint.as_deref(), None, a.status.as_deref())),
        ),
        JobCommand::Show(a) => a.common.show(a.common.open().and_then(|mut ws| jobs::show(&mut ws, &a.name))),
        JobCommand::Stream(a) => {
            let ended = a.common.open().and_then(|mut ws| jobs::stream(&mut ws, &a.name, |line| eprintln!("{line}")));
            match ended {
                Ok(job) => {
                    eprintln!("job {}: {}", job.name, job.status.name());
                    if job.status == JobStatus::Completed { Exit::Completed } else { Exit::Failed }
                }
                Err(e) => fail(&e),
            }
        }
        JobCommand::Download(a) => {
            match a.common.open().and_then(|mut ws| jobs::download(&mut ws, &a.name, &a.output_name, &a.download_path))
            {
                Ok(files) => {
                    for f in files {
                        eprintln!("downloaded {}", f.display());
                    }
                    Exit::Completed
                }
                Err(e) => fail(&e),
            }
        }
        JobCommand::Cancel(a) => a.common.show(a.common.open().and_then(|mut ws| jobs::cancel(&mut ws, &a.name))),
        JobCommand::Resume(a) => {
            let ready = a.common.open().and_then(|mut ws| Ok((jobs::resume(&mut ws, &a.name)?, ws)));
            match ready {
                Ok((spec, ws)) => {
                    eprintln!("job {}: resuming", a.name);
                    run_to_end(&a.common, ws, &a.name, spec)
                }
                Err(e) => fail(&e),
            }
        }
        JobCommand::Worker(a) => worker(a),
        JobCommand::Cleanup(a) => cleanup(a),
    }
}

fn cleanup(a: &Cleanup) -> Exit {
    let cleaned = match (&a.name, &a.output_path) {
        (Some(name), _) => a.common.open().and_then(|mut ws| jobs::cleanup(&mut ws, name, a.dry_run)),
        (None, Some(url)) => (|| {
            let opts = crate::storage::StorageOptions::parse(&a.storage_options)?;
            let loc = crate::storage::Location::open(url, &opts)?;
            jobs::cleanup_output(&loc, a.dry_run)
        })(),
        (None, None) => unreachable!("clap requires one"),
    };
    let cleaned = match cleaned {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let verb = if a.dry_run { "would remove" } else { "removed" };
    let mut rows = Vec::new();
    for j in &cleaned.jobs {
        let action = if cleaned.removed.contains(&j.job) { verb } else { "kept" };
        eprintln!(
            "{action} job {}'s staging area: {} scored mini-batches, {} objects ({} bytes), last written {} ({})",
            j.job,
            j.parts,
            j.objects,
            j.bytes,
            j.last_activity.as_deref().unwrap_or("?"),
            j.state
        );
        let mut v = serde_json::to_value(j).expect("serialisable");
        v["action"] = action.into();
        rows.push(v);
    }
    if cleaned.jobs.is_empty() {
        eprintln!("no staging area there: nothing to clean up");
    }
    a.common.print(&serde_json::Value::Array(rows))
}

/// One launched process of a job: its share, then how it ended. Exit 0 when the job is
/// Completed or this process left it to another; 1 when the job failed; 2 when this process
/// could not take part.
fn worker(a: &Worker) -> Exit {
    let index = match super::score::instance_index(a.instance_index.as_deref(), "instance_count") {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CouldNotStart;
        }
    };
    let ready = a.common.open().and_then(|mut ws| Ok((jobs::worker_spec(&mut ws, &a.name, index)?, ws)));
    let (spec, mut ws) = match ready {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    super::score::init_logging(spec.settings.logging_level);
    let ran = match jobs::run_instance(&mut ws, &a.name, spec, None) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match &ran.outcome {
        Some(o) if o.published => super::score::print_summary(o),
        Some(o) => eprintln!(
            "job {}: this process scored {} mini-batches; another one publishes the job",
            a.name, o.result.counts.mini_batches_run
        ),
        None => eprintln!("job {}: {}", a.name, ran.job.error.as_deref().unwrap_or("this process did not take part")),
    }
    match (&ran.outcome, ran.job.status) {
        (None, JobStatus::Completed) => Exit::Completed,
        (None, _) => Exit::CouldNotStart,
        (Some(o), _) if !o.published => Exit::Completed,
        (Some(_), JobStatus::Completed) => Exit::Completed,
        _ => Exit::Failed,
    }
}

/// Runs a catalog job in this process with progress on stderr, prints how it ended and the
/// job record; the exit code is the job's (as `score`'s).
pub(super) fn run_to_end(
    common: &Common,
    mut ws: crate::workspace::Workspace,
    name: &str,
    spec: crate::engine::JobSpec,
) -> Exit {
    super::score::init_logging(spec.settings.logging_level);
    let shown =
        std::sync::Arc::new(super::progress::Shown::new(spec.settings.progress, spec.settings.progress_interval));
    let ran = match jobs::run(&mut ws, name, spec, Some(shown)) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match &ran.outcome {
        Some(o) => super::score::print_summary(o),
        None => eprintln!("error: {}", ran.job.error.as_deref().unwrap_or("the job could not start")),
    }
    let exit = match (ran.job.status, &ran.outcome) {
        (_, None) => Exit::CouldNotStart,
        (_, Some(o)) if o.lost_race => Exit::CouldNotStart,
        (JobStatus::Completed, _) => Exit::Completed,
        _ => Exit::Failed,
    };
    match common.print(&ran.job) {
        Exit::Completed => exit,
        other => other,
    }
}

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
    }
}

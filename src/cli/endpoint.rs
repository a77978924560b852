//! `batchscore batch-endpoint create|update|show|list|list-jobs|invoke|delete` (alias `endpoint`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, Name, Plain, UpdateArgs, confirm, fail, warn};
use crate::service::endpoints::{self, EndpointSpec};
use crate::service::jobs::{self, InvokeSpec};
use crate::service::{ServiceError, yaml::parse_tags};
use crate::workspace::assets::{BatchEndpoint, JobStatus};

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Create a batch endpoint from --file endpoint.yml or --name.
    Create(Create),
    /// Change description, tags or the default deployment (--set defaults.deployment_name=D).
    Update(Update),
    /// Show an endpoint (its scoring URI and default deployment).
    Show(Name),
    /// List the endpoints.
    List(Plain),
    /// List an endpoint's jobs.
    ListJobs(Name),
    /// Start a job on the endpoint (its default deployment, or --deployment-name) and run it.
    Invoke(Box<Invoke>),
    /// Delete an endpoint and its deployments (its jobs stay listed).
    Delete(Delete),
}

#[derive(Debug, Args)]
pub struct Create {
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    #[arg(long = "tag", alias = "tags", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Update {
    #[arg(long, short = 'n')]
    pub name: String,
    #[command(flatten)]
    pub change: UpdateArgs,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Delete {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 the job completed, 1 it failed or was canceled, 2 it could not start.")]
pub struct Invoke {
    #[arg(long, short = 'n')]
    pub name: String,
    /// The input: azureml:<data>:<version>, azureml:<data>@latest, azureml://datastores/<ds>/paths/<p>, a URL or a path.
    #[arg(long, short = 'i')]
    pub input: String,
    /// uri_folder or uri_file (default: the data asset's type, else uri_folder).
    #[arg(long)]
    pub input_type: Option<String>,
    /// A deployment other than the endpoint's default.
    #[arg(long, short = 'd')]
    pub deployment_name: Option<String>,
    /// Where the output goes (default: <default datastore>/azureml/<job name>/score/); must not exist.
    #[arg(long)]
    pub output_path: Option<String>,
    /// Override a deployment setting (key=value, Azure's names such as mini_batch_size or retry_settings.max_retries); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[arg(long)]
    pub mini_batch_size: Option<String>,
    #[arg(long)]
    pub instance_count: Option<String>,
    /// The job's name (default: batchjob-<uuid>).
    #[arg(long)]
    pub job_name: Option<String>,
    /// Queue the job for a running `batchscore serve` instead of running it here; prints the job.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub common: Common,
}

fn create(a: &Create) -> Result<BatchEndpoint, ServiceError> {
    let mut spec = match &a.file {
        Some(f) => EndpointSpec::from_file(f)?,
        None => EndpointSpec::default(),
    };
    if let Some(n) = &a.name {
        spec.name = n.clone();
    }
    if spec.name.is_empty() {
        return Err(ServiceError::invalid("batch-endpoint create", "give --name or --file endpoint.yml"));
    }
    spec.description = a.description.clone().or(spec.description);
    spec.tags.extend(parse_tags(&a.tags)?);
    warn(&spec.not_used.iter().map(|k| format!("`{k}` is not used here")).collect::<Vec<_>>());
    endpoints::create_endpoint(&mut a.common.open()?, spec)
}

fn invoke_spec(a: &Invoke) -> InvokeSpec {
    InvokeSpec {
        endpoint: a.name.clone(),
        deployment: a.deployment_name.clone(),
        input: a.input.clone(),
        input_type: a.input_type.clone(),
        output_path: a.output_path.clone(),
        sets: a.set.clone(),
        mini_batch_size: a.mini_batch_size.clone(),
        instance_count: a.instance_count.clone(),
        job_name: a.job_name.clone(),
    }
}

/// `--no-wait`: a Queued job for the server's executor (which looks every second).
fn queue(a: &Invoke) -> Exit {
    let queued = a.common.open().and_then(|mut ws| {
        jobs::submit(&mut ws, invoke_spec(a), jobs::Queueing { max_queued: usize::MAX, idempotency_key: None })
    });
    match queued {
        Ok((job, _)) => {
            eprintln!(
                "job {} queued for `batchscore serve`; follow it with `batchscore job stream -n {}`",
                job.name, job.name
            );
            a.common.print(&job)
        }
        Err(e) => fail(&e),
    }
}

fn invoke(a: &Invoke) -> Exit {
    let on_compute = a.common.open().and_then(|ws| jobs::compute_of(&ws, &invoke_spec(a)));
    match on_compute {
        Ok(Some(_)) => return launch(a),
        Ok(None) if a.no_wait => return queue(a),
        Ok(None) => {}
        Err(e) => return fail(&e),
    }
    let started = (|| {
        let mut ws = a.common.open()?;
        let (job, spec) = jobs::create(&mut ws, invoke_spec(a))?;
        Ok::<_, ServiceError>((ws, job, spec))
    })();
    let (ws, job, spec) = match started {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    warn(&job.warnings);
    eprintln!("job {} on {}/{}", job.name, job.endpoint_name, job.deployment_name);
    super::job::run_to_end(&a.common, ws, &job.name, spec)
}

/// A deployment on a compute target: the job's processes start there; this follows the job
/// until it ends (with `--no-wait`, prints it and returns).
fn launch(a: &Invoke) -> Exit {
    let launched = (|| {
        let mut ws = a.common.open()?;
        let (job, _) = jobs::create(&mut ws, invoke_spec(a))?;
        warn(&job.warnings);
        let job = jobs::start_on_compute(&mut ws, &job)?;
        Ok::<_, ServiceError>((ws, job))
    })();
    let (mut ws, job) = match launched {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let l = job.launch.clone().unwrap_or_default();
    eprintln!(
        "job {} on {}/{}: {} process(es) on compute {} ({}{}); logs in {}",
        job.name,
        job.endpoint_name,
        job.deployment_name,
        job.instance_count.max(1),
        l.compute,
        l.kind,
        l.slurm_job_id.as_deref().map(|id| format!(", Slurm job {id}")).unwrap_or_default(),
        l.logs
    );
    if a.no_wait {
        eprintln!("follow it with `batchscore job stream -n {}`", job.name);
        return a.common.print(&job);
    }
    eprintln!("following it (Ctrl-C stops following; `batchscore job cancel -n {}` cancels it)", job.name);
    match jobs::stream(&mut ws, &job.name, |line| eprintln!("{line}")) {
        Ok(job) => {
            eprintln!("job {}: {}", job.name, job.status.name());
            let exit = if job.status == JobStatus::Completed { Exit::Completed } else { Exit::Failed };
            match a.common.print(&job) {
                Exit::Completed => exit,
                other => other,
            }
        }
        Err(e) => fail(&e),
    }
}

pub fn run(cmd: &EndpointCommand) -> Exit {
    match cmd {
        EndpointCommand::Create(a) => a.common.show(create(a)),
        EndpointCommand::Update(a) => {
            a.common.show((|| endpoints::update_endpoint(&mut a.common.open()?, &a.name, a.change.change()?))())
        }
        EndpointCommand::Show(a) => {
            a.common.show(a.common.open().and_then(|ws| Ok(ws.get::<BatchEndpoint>(&a.name, "")?)))
        }
        EndpointCommand::List(a) => {
            a.common.show(a.common.open().and_then(|ws| Ok(ws.list::<BatchEndpoint>(None, &[])?)))
        }
        EndpointCommand::ListJobs(a) => {
            a.common.show(a.common.open().and_then(|mut ws| jobs::list(&mut ws, Some(&a.name), None, None)))
        }
        EndpointCommand::Invoke(a) => invoke(a),
        EndpointCommand::Delete(a) => match (|| {
            confirm(a.yes, &format!("batch endpoint {}", a.name))?;
            endpoints::delete_endpoint(&mut a.common.open()?, &a.name)
        })() {
            Ok(n) => {
                eprintln!("deleted batch endpoint {} and its {n} deployment(s); its jobs stay listed", a.name);
                Exit::Completed
            }
            Err(e) => fail(&e),
        },
    }
}

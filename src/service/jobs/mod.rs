//! Jobs: invoke an endpoint (a job record, then the engine run under a catalog-backed control),
//! list, show, stream, cancel, download, and the stale-job check.
//!
//! While a job runs, its process keeps the record alive: a heartbeat thread writes the phase,
//! progress and time every second, appends progress lines to `job_events` (what `job stream`
//! prints), and reads `cancel_requested` (set by `job cancel` from any process) to cancel the
//! engine. A job whose process died stops beating: the next read of it marks it Failed.

mod follow;
pub mod launch;
mod run;

use std::path::Path;
use std::time::Duration;

use super::{Result, ServiceError};
use crate::engine::settings::{Deployment, RawSettings};
use crate::engine::{JobOptions, JobSpec};
use crate::workspace::assets::{
    AssetRef, BatchDeployment, BatchEndpoint, Compute, Environment, Job, JobInput, JobStatus, Model,
};
use crate::workspace::{CatalogError, Window, Workspace, names, refs, store};

pub use follow::{download, events, output_files, stream};
pub use run::{Ran, run, run_instance};

/// A job whose heartbeat is older than this is taken for dead.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// What `invoke` was asked.
#[derive(Debug, Clone, Default)]
pub struct InvokeSpec {
    pub endpoint: String,
    pub deployment: Option<String>,
    pub input: String,
    pub input_type: Option<String>,
    pub output_path: Option<String>,
    /// `--set key=value` setting overrides.
    pub sets: Vec<String>,
    pub mini_batch_size: Option<String>,
    pub instance_count: Option<String>,
    pub job_name: Option<String>,
}

/// How a job is submitted to a server's queue.
#[derive(Debug, Clone, Default)]
pub struct Queueing {
    /// At most this many jobs may wait (Queued); beyond, [`ServiceError::QueueFull`].
    pub max_queued: usize,
    /// A retried submission with the same key returns the first one's job.
    pub idempotency_key: Option<String>,
}

/// Creates the job record (NotStarted) with its effective settings; returns it and the engine
/// spec to run it with.
pub fn create(ws: &mut Workspace, spec: InvokeSpec) -> Result<(Job, JobSpec)> {
    create_with(ws, spec, None).map(|(job, spec, _)| (job, spec))
}

/// Creates a Queued job for a server's executor, within the queue's bound; a known
/// idempotency key returns its job instead (the `bool` says whether the job is new).
pub fn submit(ws: &mut Workspace, spec: InvokeSpec, queue: Queueing) -> Result<(Job, bool)> {
    if let Some(key) = &queue.idempotency_key
        && let Some(job) = keyed_job(ws, key)?
    {
        return Ok((job, false));
    }
    let (job, _, new) = create_with(ws, spec, Some(&queue))?;
    Ok((job, new))
}

/// The job an idempotency key made, if any.
fn keyed_job(ws: &Workspace, key: &str) -> Result<Option<Job>> {
    let name = job_for_key(&ws.conn, key).map_err(|e| ws.sql(e))?;
    name.map(|n| Ok(ws.get::<Job>(&n, "")?)).transpose()
}

/// The name of the job an idempotency key made (a transaction passes as its connection).
fn job_for_key(conn: &rusqlite::Connection, key: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    conn.query_row("SELECT job FROM idempotency_keys WHERE key = ?1", [key], |r| r.get(0)).optional()
}

fn create_with(ws: &mut Workspace, spec: InvokeSpec, queue: Option<&Queueing>) -> Result<(Job, JobSpec, bool)> {
    let (ep, dep) = pick_deployment(ws, &spec)?;
    let model: Model = ws.get(&dep.model.name, &dep.model.version)?;
    let env: Environment = ws.get(&dep.environment.name, &dep.environment.version)?;
    let name = spec.job_name.clone().unwrap_or_else(|| format!("batchjob-{}", uuid::Uuid::new_v4()));
    names::check("job", &name)?;
    let input = ws.resolve(&spec.input).map_err(|e| named_ref("--input", e))?;
    let input_type = spec.input_type.clone().or(input.data_type.clone()).unwrap_or_else(|| "uri_folder".into());
    if !["uri_folder", "uri_file"].contains(&input_type.as_str()) {
        return Err(ServiceError::invalid(format!("--input-type {input_type}"), "use uri_folder or uri_file"));
    }
    let (output_path, output) = resolve_output(ws, &spec, &name)?;
    let mut raw = overrides(&spec)?.settings.over(dep.settings.clone());
    apply_runtime(&mut raw, &env)?;
    raw.model = Some(model.url.clone());
    raw.input = Some(input.url.clone());
    raw.output = Some(output.url.clone());
    raw.storage_options = Some(job_storage_options(ws, vec![input.storage_options, output.storage_options])?);
    let settings = raw.clone().resolve(&format!("deployment {}/{} and the invoke's flags", ep.name, dep.name))?;
    let compute = dep.compute.as_deref().map(|c| super::computes::find(ws, c)).transpose()?.flatten();
    if let Some(c) = &compute {
        super::computes::check(c, settings.instance_count)?;
    }
    let mut job = new_job(&name, &dep, &model, &env, &raw, settings.instance_count);
    if let (Some(c), None) = (&dep.compute, &compute) {
        job.warnings.push(super::computes::missing_warning(c));
    }
    let redact = crate::storage::redact;
    job.inputs
        .insert("input_data".into(), JobInput { kind: input_type, path: spec.input.clone(), url: redact(&input.url) });
    job.outputs
        .insert("score".into(), JobInput { kind: "uri_folder".into(), path: output_path, url: redact(&output.url) });
    if queue.is_some() {
        job.status = JobStatus::Queued;
    }
    let (job, new) = ws.write(|tx| insert_job(tx, job, queue))?;
    let deployment = Deployment { settings: raw, ignored: dep.not_used.clone(), notes: dep.notes.clone() };
    let options = JobOptions { signals: true, ..Default::default() };
    Ok((job, JobSpec { settings, deployment, options, job_id: Some(name) }, new))
}

/// Inserts a job; for a queue, inside its bound and under its idempotency key (a twin that won
/// the key first is returned instead).
fn insert_job(
    tx: &rusqlite::Transaction,
    job: Job,
    queue: Option<&Queueing>,
) -> std::result::Result<(Job, bool), CatalogError> {
    let Some(q) = queue else {
        store::insert(tx, &job)?;
        return Ok((job, true));
    };
    if let Some(key) = &q.idempotency_key
        && let Some(name) = job_for_key(tx, key).map_err(store::sqlite)?
    {
        let twin = store::find_in(tx, &name, "")?.ok_or_else(|| CatalogError::not_found("job", name))?;
        return Ok((twin, false));
    }
    let queued: i64 =
        tx.query_row("SELECT COUNT(*) FROM jobs WHERE status = 'Queued'", [], |r| r.get(0)).map_err(store::sqlite)?;
    if queued as usize >= q.max_queued {
        return Err(CatalogError::QueueFull { queued: queued as usize });
    }
    store::insert(tx, &job)?;
    if let Some(key) = &q.idempotency_key {
        tx.execute(
            "INSERT INTO idempotency_keys (key, job, created_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![key, job.name, crate::workspace::now()],
        )
        .map_err(store::sqlite)?;
    }
    Ok((job, true))
}

/// Takes the oldest Queued job for this process to run (marked Starting, with this process as
/// its runner, in one write: two executors never take the same job).
pub fn claim_next(ws: &mut Workspace) -> Result<Option<Job>> {
    use rusqlite::OptionalExtension;
    Ok(ws.write(|tx| {
        let name: Option<String> = tx
            .query_row("SELECT name FROM jobs WHERE status = 'Queued' ORDER BY seq LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(store::sqlite)?;
        let Some(name) = name else { return Ok(None) };
        let mut job: Job = store::find_in(tx, &name, "")?.ok_or_else(|| CatalogError::not_found("job", &name))?;
        job.status = JobStatus::Starting;
        job.runner = Some(crate::workspace::assets::Runner { pid: std::process::id(), host: run::host_name() });
        job.heartbeat_at = Some(crate::workspace::now());
        store::update(tx, &job)?;
        Ok(Some(job))
    })?)
}

/// The engine spec of a job from its record: the recorded effective settings, with the
/// storage options its datastores give now (the record keeps their keys only).
pub fn spec_for(ws: &Workspace, job: &Job) -> Result<JobSpec> {
    let mut raw = job.settings.clone();
    let mut lists = Vec::new();
    for j in job.inputs.values().chain(job.outputs.values()) {
        lists.push(ws.resolve(&j.path)?.storage_options);
    }
    raw.storage_options = Some(job_storage_options(ws, lists)?);
    let settings = raw.clone().resolve(&format!("job {}", job.name))?;
    let dep: Option<BatchDeployment> = ws.find(&job.endpoint_name, &job.deployment_name)?;
    let (ignored, notes) = dep.map(|d| (d.not_used, d.notes)).unwrap_or_default();
    let deployment = Deployment { settings: raw, ignored, notes };
    let options = JobOptions::default();
    Ok(JobSpec { settings, deployment, options, job_id: Some(job.name.clone()) })
}

/// The compute target the deployment an invoke picks runs on, if any.
pub fn compute_of(ws: &Workspace, spec: &InvokeSpec) -> Result<Option<Compute>> {
    let Some(c) = pick_deployment(ws, spec)?.1.compute else { return Ok(None) };
    super::computes::find(ws, &c)
}

/// Launches the job's processes on its deployment's compute target, when it has one: returns
/// the job as recorded then (Starting, with how it was launched), or `None` for a job that runs
/// in the calling process.
pub fn launch_on_compute(ws: &mut Workspace, job: &Job) -> Result<Option<Job>> {
    let dep: Option<BatchDeployment> = ws.find(&job.endpoint_name, &job.deployment_name)?;
    let Some(compute) = dep.and_then(|d| d.compute) else { return Ok(None) };
    let Some(compute) = super::computes::find(ws, &compute)? else { return Ok(None) };
    super::computes::check(&compute, job.instance_count)?;
    let launched = match launch::launch(ws, &job.name, &compute, job.instance_count.max(1)) {
        Ok(l) => l,
        Err(e) => {
            let error = crate::secrets::scrub(&e.to_string()).into_owned();
            update(ws, &job.name, |j, _| {
                j.status = JobStatus::Failed;
                j.error = Some(format!("its processes could not be launched on compute {}: {error}", compute.name));
                j.finished_at = Some(crate::workspace::now());
            })?;
            return Err(e);
        }
    };
    let lines = [format!(
        "{}: launched {} process(es) on compute {} ({}{}); their logs are in {}",
        crate::workspace::now(),
        job.instance_count.max(1),
        compute.name,
        compute.kind,
        launched.slurm_job_id.as_deref().map(|id| format!(", Slurm job {id}")).unwrap_or_default(),
        launched.logs
    )];
    run::append_events(ws, &job.name, &lines)?;
    let job = update(ws, &job.name, |j, _| {
        j.status = JobStatus::Starting;
        j.started_at = Some(crate::workspace::now());
        j.runner = None;
        j.launch = Some(launched.clone());
    })?;
    Ok(Some(job))
}

/// [`launch_on_compute`] for a job whose deployment has a compute target.
pub fn start_on_compute(ws: &mut Workspace, job: &Job) -> Result<Job> {
    launch_on_compute(ws, job)?.ok_or_else(|| {
        ServiceError::invalid(format!("job {}", job.name), "its deployment has no compute target to launch it on")
    })
}

/// The engine spec one launched process of a job runs ([`launch`]): the job's, as this
/// process's share (`index` among `instance_count`).
pub fn worker_spec(ws: &mut Workspace, name: &str, index: Option<usize>) -> Result<JobSpec> {
    let job = show(ws, name)?;
    if job.status.is_terminal() {
        return Err(ServiceError::invalid(format!("job {name}"), format!("has ended ({})", job.status.name())));
    }
    let mut spec = spec_for(ws, &job)?;
    spec.options = JobOptions { signals: true, instance_index: index, ..Default::default() };
    Ok(spec)
}

/// The endpoint, and the deployment asked for or its default.
fn pick_deployment(ws: &Workspace, spec: &InvokeSpec) -> Result<(BatchEndpoint, BatchDeployment)> {
    let ep: BatchEndpoint = ws.get(&spec.endpoint, "")?;
    let Some(deployment_name) = spec.deployment.clone().or(ep.defaults.deployment_name.clone()) else {
        return Err(ServiceError::invalid(
            format!("batch endpoint {}", ep.name),
            "has no default deployment; create one with `batch-deployment create` or pass --deployment-name",
        ));
    };
    let dep: BatchDeployment = ws.get(&ep.name, &deployment_name).map_err(|_| CatalogError::NotFound {
        kind: "batch deployment",
        name: deployment_name.clone(),
        hint: format!(" in endpoint {}", ep.name),
    })?;
    Ok((ep, dep))
}

/// Where the job writes: `--output-path` (resolved), else `azureml/<job>/score/` in the default
/// datastore. Returns the path to record (one that resolves from anywhere) and its location.
fn resolve_output(ws: &Workspace, spec: &InvokeSpec, name: &str) -> Result<(String, refs::Resolved)> {
    match &spec.output_path {
        Some(p) => {
            let resolved = ws.resolve(p).map_err(|e| named_ref("--output-path", e))?;
            let recorded = if p.starts_with("azureml:") { p.clone() } else { resolved.url.clone() };
            Ok((recorded, resolved))
        }
        None => {
            let ds = crate::workspace::DEFAULT_DATASTORE;
            let store: crate::workspace::assets::Datastore = ws.get(ds, "")?;
            let resolved = refs::Resolved {
                url: refs::join(&store.url, &format!("azureml/{name}/score")),
                storage_options: refs::datastore_options(&store),
                data_type: None,
            };
            Ok((format!("azureml://datastores/{ds}/paths/azureml/{name}/score"), resolved))
        }
    }
}

/// The record of a new job (inputs and outputs still to add).
fn new_job(
    name: &str,
    dep: &BatchDeployment,
    model: &Model,
    env: &Environment,
    raw: &RawSettings,
    instances: usize,
) -> Job {
    let mut warnings = Vec::new();
    if instances > 1 && dep.compute.is_none() {
        warnings.push(format!(
            "instance_count is {instances} but deployment {}/{} has no compute: the job runs in one process; give \
             the deployment compute: azureml:NAME (`batchscore compute create`) to run {instances}",
            dep.endpoint_name, dep.name
        ));
    }
    // Storage options by key only: their values may be secrets.
    let mut settings = raw.clone();
    settings.storage_options = settings
        .storage_options
        .map(|o| o.iter().map(|kv| kv.split('=').next().unwrap_or_default().to_string()).collect());
    Job {
        id: format!("azureml:{name}"),
        name: name.to_string(),
        kind: "pipeline".into(),
        endpoint_name: dep.endpoint_name.clone(),
        deployment_name: dep.name.clone(),
        status: JobStatus::NotStarted,
        created_at: crate::workspace::now(),
        started_at: None,
        finished_at: None,
        heartbeat_at: None,
        runner: None,
        launch: None,
        instances: Default::default(),
        inputs: Default::default(),
        outputs: Default::default(),
        model: AssetRef { name: model.name.clone(), version: model.version.clone() },
        environment: AssetRef { name: env.name.clone(), version: env.version.clone() },
        settings,
        instance_count: instances,
        progress: None,
        counts: None,
        first_failure: None,
        error: None,
        log_location: None,
        warnings,
    }
}

/// A reference error, naming the flag it came from.
fn named_ref(flag: &str, e: CatalogError) -> ServiceError {
    match e {
        CatalogError::NotFound { kind, name, hint } => {
            ServiceError::Catalog(CatalogError::NotFound { kind, name, hint: format!("{hint} (given as {flag})") })
        }
        e => ServiceError::Catalog(e),
    }
}

/// The invoke's own overrides: `--set` pairs, then the dedicated flags over them.
fn overrides(spec: &InvokeSpec) -> Result<Deployment> {
    let mut d = Deployment::from_sets(&spec.sets)?;
    if let Some(n) = &spec.mini_batch_size {
        d.settings.mini_batch_size = Some(n.clone());
    }
    if let Some(n) = &spec.instance_count {
        d.settings.instance_count = Some(n.clone());
    }
    Ok(d)
}

/// The environment's runtime, under settings that say otherwise.
fn apply_runtime(raw: &mut RawSettings, env: &Environment) -> Result<()> {
    let r = &env.runtime;
    if raw.device.is_none() {
        raw.device = Some(match (r.execution_provider.as_str(), r.device_id) {
            ("cuda", Some(n)) => format!("cuda:{n}"),
            ("cuda", None) => "cuda".into(),
            _ => "cpu".into(),
        });
    }
    if raw.intra_threads.is_none() {
        raw.intra_threads = r.intra_op_num_threads.map(|n| n.to_string());
    }
    if raw.graph_optimization_level.is_none() {
        raw.graph_optimization_level = r.graph_optimization_level.clone();
    }
    if let Some(lib) = &r.onnxruntime_library {
        crate::engine::runtime::prefer_library(Path::new(lib));
    }
    Ok(())
}

/// A job's storage options: its input's and output's datastores', then the default
/// datastore's (where the model is); the first value of a key wins.
fn job_storage_options(ws: &Workspace, mut lists: Vec<Vec<String>>) -> Result<Vec<String>> {
    lists.push(refs::datastore_options(&ws.get(crate::workspace::DEFAULT_DATASTORE, "")?));
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for kv in lists.into_iter().flatten() {
        if seen.insert(kv.split('=').next().unwrap_or_default().to_string()) {
            out.push(kv);
        }
    }
    Ok(out)
}

/// Changes a job's record in one write, after reading it inside the lock.
pub fn update(ws: &mut Workspace, name: &str, f: impl FnOnce(&mut Job, bool)) -> Result<Job> {
    Ok(ws.write(|tx| {
        let mut job: Job = store::find_in(tx, name, "")?.ok_or_else(|| CatalogError::not_found("job", name))?;
        let cancel: i64 = tx
            .query_row("SELECT cancel_requested FROM jobs WHERE name = ?1", [name], |r| r.get(0))
            .map_err(store::sqlite)?;
        f(&mut job, cancel != 0);
        store::update(tx, &job)?;
        Ok(job)
    })?)
}

/// A job, marked Failed first if its process died.
pub fn show(ws: &mut Workspace, name: &str) -> Result<Job> {
    let job: Job = ws.get(name, "")?;
    check_stale(ws, job)
}

/// Jobs, oldest first, optionally of one endpoint, deployment or status.
pub fn list(
    ws: &mut Workspace,
    endpoint: Option<&str>,
    deployment: Option<&str>,
    status: Option<&str>,
) -> Result<Vec<Job>> {
    let filters = filters(endpoint, deployment);
    if let Some(s) = status {
        JobStatus::parse(s).ok_or_else(|| {
            ServiceError::invalid(
                format!("--status {s}"),
                "use NotStarted, Queued, Starting, Running, Finalizing, CancelRequested, Completed, Failed or Canceled",
            )
        })?;
    }
    let jobs: Vec<Job> = ws.list(None, &filters)?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let job = if job.status.is_terminal() { job } else { check_stale(ws, job)? };
        if status.is_none_or(|s| job.status.name() == s) {
            out.push(job);
        }
    }
    Ok(out)
}

/// The catalog filters for the jobs of an endpoint (and deployment).
fn filters<'a>(endpoint: Option<&'a str>, deployment: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
    [("endpoint", endpoint), ("deployment", deployment)].into_iter().filter_map(|(col, v)| Some((col, v?))).collect()
}

/// One window of the jobs of an endpoint (and deployment), with how many there are in all;
/// reads only the window's rows (dead ones among them are marked Failed).
pub fn list_window(
    ws: &mut Workspace,
    endpoint: Option<&str>,
    deployment: Option<&str>,
    window: Window,
) -> Result<(Vec<Job>, usize)> {
    let filters = filters(endpoint, deployment);
    let (jobs, count) = ws.list_window::<Job>(None, &filters, window)?;
    let jobs = jobs.into_iter().map(|j| check_stale(ws, j)).collect::<Result<Vec<_>>>()?;
    Ok((jobs, count))
}

fn age_of(t: &str) -> Option<Duration> {
    let t = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().ok()
}

/// Why a job that is not finished is dead, if it is.
fn dead_because(job: &Job) -> Option<String> {
    if let Some(l) = &job.launch {
        return launched_dead_because(job, l);
    }
    let Some(runner) = job.runner.as_ref() else {
        // Created, never started: the invoking process stopped in between.
        let never = job.status == JobStatus::NotStarted && age_of(&job.created_at).is_some_and(|a| a > STALE_AFTER);
        return never
            .then(|| "the process that created it stopped before starting it; invoke the endpoint again".into());
    };
    let age = age_of(job.heartbeat_at.as_deref()?).unwrap_or_default();
    let here = runner.host == run::host_name();
    let gone = here && !Path::new(&format!("/proc/{}", runner.pid)).exists();
    (gone || age > STALE_AFTER).then(|| {
        format!(
            "the process running it (pid {} on {}) stopped without finishing (last heartbeat {}{}); it was probably \
             killed. Nothing was published; invoke the endpoint again",
            runner.pid,
            runner.host,
            job.heartbeat_at.as_deref().unwrap_or("never"),
            if gone { ", and the process is gone" } else { "" }
        )
    })
}

/// Why a job whose processes were launched on a compute target is dead: they are all gone (or,
/// where this machine cannot tell, none has beaten for [`STALE_AFTER`]) and none published it.
/// Each process writes the record before it exits, so one that published left it ended.
fn launched_dead_because(job: &Job, l: &crate::workspace::assets::Launch) -> Option<String> {
    let gone = match launch::alive(l) {
        Some(alive) => !alive,
        None => {
            job.heartbeat_at.as_deref().or(job.started_at.as_deref()).and_then(age_of).is_some_and(|a| a > STALE_AFTER)
        }
    };
    gone.then(|| {
        let last = job.error.as_deref().map(|e| format!(" The last error: {e}")).unwrap_or_default();
        format!(
            "its {} process(es) on compute {} ended without publishing it; their logs are in {}.{last}",
            job.instance_count.max(1),
            l.compute,
            l.logs
        )
    })
}

/// Marks a dead job Failed (re-checked inside the write, so a live one is never marked).
fn check_stale(ws: &mut Workspace, job: Job) -> Result<Job> {
    if job.status.is_terminal() || dead_because(&job).is_none() {
        return Ok(job);
    }
    update(ws, &job.name, |j, cancel| {
        if let (false, Some(why)) = (j.status.is_terminal(), dead_because(j)) {
            // A launched job whose processes were canceled before any could publish it.
            let canceled = cancel && j.launch.is_some();
            j.status = if canceled { JobStatus::Canceled } else { JobStatus::Failed };
            j.error = Some(if canceled { "canceled by `job cancel`".into() } else { why });
            j.finished_at = Some(crate::workspace::now());
        }
    })
}

/// Makes a Failed or Canceled job ready to go on from where it stopped (`job resume`): the
/// engine spec from its record, told to resume, so that only the mini-batches its staging
/// area has no part for are scored, and the output is published as if it had run in one go.
pub fn resume(ws: &mut Workspace, name: &str) -> Result<JobSpec> {
    let job = show(ws, name)?;
    if !matches!(job.status, JobStatus::Failed | JobStatus::Canceled) {
        return Err(ServiceError::invalid(
            format!("job {name}"),
            format!("is {}; only a Failed or Canceled job can be resumed", job.status.name()),
        ));
    }
    let mut spec = spec_for(ws, &job)?;
    spec.options = JobOptions { resume: true, signals: true, ..Default::default() };
    // Alone: it scores every mini-batch without a part at once, not after the leases of the
    // processes that ran it before have run out.
    spec.settings.instance_count = 1;
    ws.write(|tx| tx.execute("UPDATE jobs SET cancel_requested = 0 WHERE name = ?1", [name]).map_err(store::sqlite))?;
    update(ws, name, |j, _| {
        j.error = None;
        j.first_failure = None;
        j.finished_at = None;
        // It goes on in the calling process, whose heartbeat tells it alive: not the processes
        // a compute target ran it in before.
        j.launch = None;
        j.instances.clear();
    })?;
    Ok(spec)
}

/// Removes the staging area a Failed or Canceled job left in its output (its scored
/// mini-batches: it can no longer be resumed); a dry run says what it would remove.
pub fn cleanup(ws: &mut Workspace, name: &str, dry_run: bool) -> Result<crate::engine::plan::Cleaned> {
    let job = show(ws, name)?;
    if !job.status.is_terminal() {
        return Err(ServiceError::invalid(
            format!("job {name}"),
            format!(
                "is {}; its staging area is in use (cancel it first with `job cancel -n {name}`)",
                job.status.name()
            ),
        ));
    }
    let out = job.outputs.get("score").ok_or_else(|| ServiceError::invalid(format!("job {name}"), "has no output"))?;
    let loc = crate::service::datastores::locate(ws, &out.path)?;
    cleanup_output(&loc, dry_run)
}

/// Removes the staging areas of jobs no longer running from an output ([`cleanup`] for any
/// output, not only a catalog job's).
pub fn cleanup_output(loc: &crate::storage::Location, dry_run: bool) -> Result<crate::engine::plan::Cleaned> {
    let cleaned = crate::service::io_runtime()?.block_on(crate::engine::plan::clean_staging(loc, dry_run));
    cleaned.map_err(|e| ServiceError::Prepare(crate::engine::PrepareError::Plan(e)))
}

/// Asks a job to stop: one not started is Canceled at once; a running one is CancelRequested
/// and its process cancels it within a few seconds.
pub fn cancel(ws: &mut Workspace, name: &str) -> Result<Job> {
    let job = show(ws, name)?;
    if job.status.is_terminal() {
        return Err(ServiceError::invalid(format!("job {name}"), format!("has already ended ({})", job.status.name())));
    }
    ws.write(|tx| tx.execute("UPDATE jobs SET cancel_requested = 1 WHERE name = ?1", [name]).map_err(store::sqlite))?;
    update(ws, name, |j, _| {
        if j.status.is_terminal() {
            return;
        }
        if j.runner.is_none() && j.launch.is_none() {
            j.status = JobStatus::Canceled;
            j.finished_at = Some(crate::workspace::now());
        } else {
            j.status = JobStatus::CancelRequested;
        }
    })
    .inspect(launch::cancel_pending)
}

//! Jobs: invoke an endpoint (a job record, then the engine run under a catalog-backed control),
//! list, show, stream, cancel, download, and the stale-job check.
//!
//! While a job runs, its process keeps the record alive: a heartbeat thread writes the phase,
//! progress and time every second, appends progress lines to `job_events` (what `job stream`
//! prints), and reads `cancel_requested` (set by `job cancel` from any process) to cancel the
//! engine. A job whose process died stops beating: the next read of it marks it Failed.

mod run;

use std::path::Path;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::{Result, ServiceError};
use crate::engine::settings::{Deployment, RawSettings};
use crate::engine::{JobOptions, JobSpec};
use crate::storage::{Location, StorageOptions};
use crate::workspace::assets::{
    AssetRef, BatchDeployment, BatchEndpoint, Environment, Job, JobInput, JobStatus, Model,
};
use crate::workspace::{CatalogError, Workspace, names, refs, store};

pub use run::{Ran, run};

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

/// Creates the job record (NotStarted) with its effective settings; returns it and the engine
/// spec to run it with.
pub fn create(ws: &mut Workspace, spec: InvokeSpec) -> Result<(Job, JobSpec)> {
    let ep: BatchEndpoint = ws.get(&spec.endpoint, "")?;
    let deployment_name = match spec.deployment.clone().or(ep.defaults.deployment_name.clone()) {
        Some(d) => d,
        None => {
            return Err(ServiceError::invalid(
                format!("batch endpoint {}", ep.name),
                "has no default deployment; create one with `batch-deployment create` or pass --deployment-name",
            ));
        }
    };
    let dep: BatchDeployment = ws.get(&ep.name, &deployment_name).map_err(|_| CatalogError::NotFound {
        kind: "batch deployment",
        name: deployment_name.clone(),
        hint: format!(" in endpoint {}", ep.name),
    })?;
    let model: Model = ws.get(&dep.model.name, &dep.model.version)?;
    let env: Environment = ws.get(&dep.environment.name, &dep.environment.version)?;
    let name = spec.job_name.clone().unwrap_or_else(|| format!("batchjob-{}", uuid::Uuid::new_v4()));
    names::check("job", &name)?;
    let input = ws.resolve(&spec.input).map_err(|e| named_ref("--input", e))?;
    let input_type = spec.input_type.clone().or(input.data_type.clone()).unwrap_or_else(|| "uri_folder".into());
    if !["uri_folder", "uri_file"].contains(&input_type.as_str()) {
        return Err(ServiceError::invalid(format!("--input-type {input_type}"), "use uri_folder or uri_file"));
    }
    let output_given = spec.output_path.clone();
    let output = match &output_given {
        Some(p) => ws.resolve(p).map_err(|e| named_ref("--output-path", e))?,
        None => {
            let store: crate::workspace::assets::Datastore = ws.get(crate::workspace::DEFAULT_DATASTORE, "")?;
            refs::Resolved {
                url: refs::join(&store.url, &format!("azureml/{name}/score")),
                storage_options: refs::datastore_options(&store),
                data_type: None,
            }
        }
    };
    let overrides = overrides(&spec)?;
    let mut raw = overrides.settings.over(dep.settings.clone());
    apply_runtime(&mut raw, &env)?;
    raw.model = Some(model.url.clone());
    raw.input = Some(input.url.clone());
    raw.output = Some(output.url.clone());
    let default_opts = refs::datastore_options(&ws.get(crate::workspace::DEFAULT_DATASTORE, "")?);
    raw.storage_options = Some(merge_options(&[&input.storage_options, &output.storage_options, &default_opts]));
    let origin = format!("deployment {}/{} and the invoke's flags", ep.name, dep.name);
    let settings = raw.clone().resolve(&origin)?;
    let mut warnings = Vec::new();
    if settings.instance_count > 1 {
        warnings.push(format!(
            "instance_count {} is recorded, but this version runs a job in one process; scale-out comes later",
            settings.instance_count
        ));
    }
    let mut stored = raw.clone();
    stored.storage_options = stored
        .storage_options
        .map(|o| o.iter().map(|kv| kv.split('=').next().unwrap_or_default().to_string()).collect());
    let job = Job {
        id: format!("azureml:{name}"),
        name: name.clone(),
        kind: "pipeline".into(),
        endpoint_name: ep.name.clone(),
        deployment_name: dep.name.clone(),
        status: JobStatus::NotStarted,
        created_at: crate::workspace::now(),
        started_at: None,
        finished_at: None,
        heartbeat_at: None,
        runner: None,
        inputs: [(
            "input_data".to_string(),
            JobInput { kind: input_type, path: spec.input.clone(), url: crate::storage::redact(&input.url) },
        )]
        .into(),
        outputs: [(
            "score".to_string(),
            JobInput {
                kind: "uri_folder".into(),
                path: output_given.unwrap_or_else(|| {
                    format!("azureml://datastores/{}/paths/azureml/{name}/score", crate::workspace::DEFAULT_DATASTORE)
                }),
                url: crate::storage::redact(&output.url),
            },
        )]
        .into(),
        model: AssetRef { name: model.name.clone(), version: model.version.clone() },
        environment: AssetRef { name: env.name.clone(), version: env.version.clone() },
        settings: stored,
        instance_count: settings.instance_count,
        progress: None,
        counts: None,
        first_failure: None,
        error: None,
        log_location: None,
        warnings,
    };
    ws.write(|tx| store::insert(tx, &job))?;
    let deployment = Deployment { settings: raw, ignored: dep.not_used.clone(), notes: dep.notes.clone() };
    let spec = JobSpec {
        settings,
        deployment,
        options: JobOptions { clean_staging: false, signals: true },
        job_id: Some(name),
    };
    Ok((job, spec))
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

/// Storage options from several datastores; the first value of a key wins.
fn merge_options(lists: &[&Vec<String>]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for kv in lists.iter().flat_map(|l| l.iter()) {
        if seen.insert(kv.split('=').next().unwrap_or_default().to_string()) {
            out.push(kv.clone());
        }
    }
    out
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
    let mut filters = Vec::new();
    if let Some(e) = endpoint {
        filters.push(("endpoint", e));
    }
    if let Some(d) = deployment {
        filters.push(("deployment", d));
    }
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

/// Why a job that is not finished is dead, if it is.
fn dead_because(job: &Job) -> Option<String> {
    let runner = job.runner.as_ref()?;
    let beat = job.heartbeat_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())?;
    let age = (chrono::Utc::now() - beat.with_timezone(&chrono::Utc)).to_std().unwrap_or_default();
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

/// Marks a dead job Failed (re-checked inside the write, so a live one is never marked).
fn check_stale(ws: &mut Workspace, job: Job) -> Result<Job> {
    if job.status.is_terminal() || dead_because(&job).is_none() {
        return Ok(job);
    }
    update(ws, &job.name, |j, _| {
        if let (false, Some(why)) = (j.status.is_terminal(), dead_because(j)) {
            j.status = JobStatus::Failed;
            j.error = Some(why);
            j.finished_at = Some(crate::workspace::now());
        }
    })
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
        if j.runner.is_none() {
            j.status = JobStatus::Canceled;
            j.finished_at = Some(crate::workspace::now());
        } else {
            j.status = JobStatus::CancelRequested;
        }
    })
}

/// Progress lines after `after`, with their sequence numbers.
pub fn events(ws: &Workspace, name: &str, after: i64) -> Result<Vec<(i64, String)>> {
    let mut stmt = ws
        .conn
        .prepare("SELECT seq, line FROM job_events WHERE job = ?1 AND seq > ?2 ORDER BY seq")
        .map_err(|e| ws.sql(e))?;
    let rows = stmt
        .query_map(rusqlite::params![name, after], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|r| r.collect())
        .map_err(|e| ws.sql(e))?;
    Ok(rows)
}

/// Prints a job's progress lines as they come until it ends; returns it.
pub fn stream(ws: &mut Workspace, name: &str, mut print: impl FnMut(&str)) -> Result<Job> {
    let mut after = 0;
    loop {
        for (seq, line) in events(ws, name, after)? {
            print(&line);
            after = seq;
        }
        let job = show(ws, name)?;
        if job.status.is_terminal() {
            for (_, line) in events(ws, name, after)? {
                print(&line);
            }
            return Ok(job);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Copies a job output into `dir/named-outputs/<output>/` (as `az ml job download` does);
/// returns the files written.
pub fn download(ws: &mut Workspace, name: &str, output: &str, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let job = show(ws, name)?;
    let out = job.outputs.get(output).ok_or_else(|| {
        ServiceError::invalid(
            format!("--output-name {output}"),
            format!("job {name} has the outputs: {}", job.outputs.keys().cloned().collect::<Vec<_>>().join(", ")),
        )
    })?;
    let resolved = ws.resolve(&out.path)?;
    let loc = Location::open(&resolved.url, &StorageOptions::parse(&resolved.storage_options)?)?;
    let to = dir.join("named-outputs").join(output);
    let io = super::io_runtime()?;
    let store_err = |e: object_store::Error| ServiceError::Store {
        url: loc.display.clone(),
        message: crate::storage::describe(&e),
    };
    let listed: Vec<object_store::ObjectMeta> =
        io.block_on(loc.store.list(Some(&loc.path)).try_collect()).map_err(store_err)?;
    let mut written = Vec::new();
    for meta in listed {
        let rel: Vec<String> =
            meta.location.prefix_match(&loc.path).into_iter().flatten().map(|p| p.as_ref().to_string()).collect();
        if rel.first().is_some_and(|p| p == "_staging") || rel.is_empty() {
            continue;
        }
        let bytes = io.block_on(async { loc.store.get(&meta.location).await?.bytes().await }).map_err(store_err)?;
        let file = rel.iter().fold(to.clone(), |p, part| p.join(part));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| ServiceError::Io { path: parent.to_path_buf(), source })?;
        }
        std::fs::write(&file, &bytes).map_err(|source| ServiceError::Io { path: file.clone(), source })?;
        written.push(file);
    }
    if written.is_empty() {
        return Err(ServiceError::invalid(
            format!("job {name}"),
            format!("output {output} at {} holds nothing (yet)", loc.display),
        ));
    }
    Ok(written)
}

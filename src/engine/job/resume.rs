//! Which job a run is: a new one, or one it continues, told by the plan recorded in the store.
//!
//! A plain run starts a new job: its output must be new, and it records its plan as
//! `_staging/<job id>/plan.json` before scoring. A run that may continue one (`--resume`, or a
//! process of a job run by several) plans first, then looks in the output's staging area for a
//! job with the same plan ([`PlanDoc`]'s fingerprint) and joins it; finding none, it starts the
//! job under a name every process of it computes alike (`job-<fingerprint>`, unless the caller
//! names the job), so processes started in any order meet in one staging area. A staging area
//! whose plan differs is refused, naming what differs. With `--resume`, the logs of a job that
//! Failed (or was stopped or canceled) are moved into its staging area's `attempts/` and the
//! job goes on from its parts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::ObjectStoreExt;

use super::PrepareError;
use super::prepare::Prepared;
use crate::engine::plan::{PlanError, StagingOwner, Survey, ended_here, probe_output, running_here, survey_output};
use crate::engine::settings::Settings;
use crate::engine::state::lease::{Heartbeat, Instance};
use crate::engine::state::plan_doc::PlanDoc;
use crate::engine::state::{JobState, View};

/// The job a run belongs to, settled.
pub(super) struct Settled {
    pub state: Arc<JobState>,
    pub doc: PlanDoc,
    /// Set when several processes share the job: they claim mini-batches with leases.
    pub instance: Option<Instance>,
    pub lease: Duration,
    /// The staging area when this process joined: the parts already scored.
    pub prior: View,
    /// Whether this process started the job (wrote its plan), so that abandoning it before any
    /// scoring removes its staging area.
    pub started_it: bool,
}

/// How a run meets its job.
pub(super) struct Joining<'a> {
    pub settings: &'a Settings,
    /// This process's name among the job's ([`crate::engine::state::process_name`]).
    pub process: &'a str,
    /// The job's name when the caller gives one (the catalog), else `None`.
    pub named: Option<&'a str>,
    /// The id a new plain job takes.
    pub fresh_id: &'a str,
    pub resume: bool,
    pub instance: Option<Instance>,
    pub lease_seconds: f64,
    /// Whether this run may continue a job (`--resume`, or one of several processes); a plain
    /// run's output was checked to be new.
    pub joins: bool,
}

/// Settles the job: records its plan (or checks it against the recorded one) and this process
/// as taking part (the probe that the output can be written; a plain run probed before it
/// planned, see [`probe`]).
pub(super) async fn settle(job: &Prepared, how: Joining<'_>) -> Result<Settled, PrepareError> {
    let process = how.process.to_string();
    let sha = &job.model_report.sha256;
    let mut doc = PlanDoc::new("", &job.plan, how.settings, sha, how.lease_seconds, &process);
    let output = &job.output;
    let (job_id, started_it) = match how.joins {
        false => {
            doc.job_id = how.fresh_id.to_string();
            let state = JobState::new(output, &doc.job_id, &process);
            record_plan(&state, &doc).await?;
            (doc.job_id.clone(), true)
        }
        true => {
            let (id, recorded, state) = meet(output, &doc, &how).await?;
            doc.job_id = id.clone();
            // Alone, a resumed job scores everything that is missing: not beside itself.
            if how.instance.is_none()
                && let Some(o) = running_here(output, &id).await
            {
                return Err(PrepareError::Plan(PlanError::InUse {
                    output: output.display.clone(),
                    job: format!("job {id} (pid {} on this machine, started {})", o.pid, o.started_at),
                }));
            }
            let started_it = match recorded {
                Some(d) => {
                    doc = d;
                    false
                }
                None => match state.create("plan.json", plan_bytes(&doc)).await {
                    Ok(true) => true,
                    Ok(false) => {
                        // Another process of this job got there first: its plan is the job's.
                        doc =
                            read_plan(&state).await.filter(|d| d.fingerprint == doc.fingerprint).ok_or_else(|| {
                                PrepareError::Plan(PlanError::PlanDiffers {
                                    output: output.display.clone(),
                                    job: id.clone(),
                                    differences: "another process recorded a different plan at the same moment".into(),
                                })
                            })?;
                        false
                    }
                    Err(e) => return Err(not_writable(output, &e.to_string())),
                },
            };
            probe(&state, how.instance).await?;
            if how.resume && state.view().await.is_ok_and(|v| v.stopped) {
                tracing::info!("job {id} was stopped; --resume goes on with it");
                state.remove("stop.json").await;
            }
            (id, started_it)
        }
    };
    let state = Arc::new(JobState::new(output, &job_id, &process));
    let prior = match state.view().await {
        Ok(v) => v,
        Err(e) => {
            state.remove(&JobState::owner_name(&process)).await;
            return Err(store_error(output, e));
        }
    };
    if how.joins && prior.stopped {
        let why = state.stop_reason().await.map_or_else(String::new, |s| format!(" ({})", s.reason));
        state.remove(&JobState::owner_name(&process)).await;
        return Err(PrepareError::Setting(format!(
            "job {job_id} in {} was stopped{why}; run with --resume to go on with it",
            output.display
        )));
    }
    if !prior.parts.is_empty() {
        tracing::info!(
            "job {job_id}: {} of {} mini-batches are scored already; scoring the rest",
            prior.parts.len(),
            doc.mini_batches.len()
        );
    }
    let lease = Duration::from_secs_f64(doc.lease_seconds.max(0.5));
    Ok(Settled { state, doc, instance: how.instance, lease, prior, started_it })
}

/// How long a process that finds a job's predictions published but not its report waits for
/// the report: the publisher writes the logs and then the report right after the predictions.
const PUBLISHING_WAIT: Duration = Duration::from_secs(30);

/// Looks at the output and finds the job this run continues ([`find_job`]), checking what the
/// output's report says ([`check_report`]). The output may be changing under it: another
/// process of the job may be publishing it, so that a look finds the predictions but not yet
/// the report. It looks again then, while that process's staging area is there.
async fn meet(
    output: &crate::storage::Location,
    doc: &PlanDoc,
    how: &Joining<'_>,
) -> Result<(String, Option<PlanDoc>, JobState), PrepareError> {
    let started = std::time::Instant::now();
    for look in 0.. {
        let survey = survey_output(output).await.map_err(PrepareError::from)?;
        let (id, recorded) = find_job(output, &survey, doc, how.named).await?;
        let state = JobState::new(output, &id, how.process);
        let ours = Ours { id: &id, fingerprint: &doc.fingerprint, staged: recorded.is_some() };
        match check_report(output, &survey, ours, how.resume, &state).await {
            Err(PrepareError::Plan(PlanError::OutputExists { .. }))
                if survey.report.is_none()
                    && (look == 0 || survey.staging_jobs.contains(&id))
                    && started.elapsed() < PUBLISHING_WAIT =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e @ PrepareError::Plan(PlanError::AlreadyCompleted { .. })) => {
                sweep_completed(output, &survey).await;
                return Err(e);
            }
            Err(e) => return Err(e),
            Ok(()) => return Ok((id, recorded, state)),
        }
    }
    unreachable!("the loop returns")
}

/// Removes what is left of a Completed job's staging area: its publisher was stopped (killed,
/// say) after it wrote the report and before it removed the staging area.
async fn sweep_completed(output: &crate::storage::Location, survey: &Survey) {
    let Some((job, _, _)) = &survey.report else { return };
    if survey.staging_jobs.contains(job) {
        JobState::new(output, job, "").staging().cleanup().await;
        tracing::info!("removed what was left of completed job {job}'s staging files in {}", output.display);
    }
}

/// Finds the job this run continues: the staging area whose plan is this run's. Returns its id
/// and recorded plan, or the id to start it under (and `None`).
async fn find_job(
    output: &crate::storage::Location,
    survey: &Survey,
    doc: &PlanDoc,
    named: Option<&str>,
) -> Result<(String, Option<PlanDoc>), PrepareError> {
    let id = named.map_or_else(|| format!("job-{}", &doc.fingerprint[..16]), str::to_string);
    let mut differing: Option<(String, PlanDoc)> = None;
    let mut unplanned = Vec::new();
    for job in &survey.staging_jobs {
        let state = JobState::new(output, job, "");
        match read_plan(&state).await {
            Some(d) if d.fingerprint == doc.fingerprint && named.is_none_or(|n| n == job) => {
                return Ok((job.clone(), Some(d)));
            }
            Some(d) if differing.as_ref().is_none_or(|(_, o)| d.created_at > o.created_at) => {
                differing = Some((job.clone(), d));
            }
            Some(_) => {}
            // Killed before it recorded its plan (so before it scored anything): nothing to
            // resume or to keep.
            None if *job != id && ended_here(output, job).await => {
                JobState::new(output, job, "").staging().cleanup().await;
                tracing::info!("removed the staging files of job {job}, killed before it planned (nothing was scored)");
            }
            None if *job != id => unplanned.push(format!("job {job}")),
            None => {}
        }
    }
    if let Some((job, then)) = differing {
        return Err(PrepareError::Plan(PlanError::PlanDiffers {
            output: output.display.clone(),
            job,
            differences: then.differences(doc, 6).join("; "),
        }));
    }
    if !unplanned.is_empty() {
        return Err(PrepareError::Plan(PlanError::StaleStaging {
            output: output.display.clone(),
            jobs: unplanned.join("; "),
        }));
    }
    Ok((id, None))
}

/// The job this run continues, as [`check_report`] compares it with what the output holds.
struct Ours<'a> {
    id: &'a str,
    fingerprint: &'a str,
    /// Whether its staging area (with its plan) is there.
    staged: bool,
}

/// What the output's report says about continuing the job there: a Completed one (the same id,
/// or the same plan) is done; the logs of one that Failed are moved aside with `--resume`;
/// predictions without a report are the job's own being published, when its staging area is
/// there (another process is finishing it).
async fn check_report(
    output: &crate::storage::Location,
    survey: &Survey,
    ours: Ours<'_>,
    resume: bool,
    state: &JobState,
) -> Result<(), PrepareError> {
    let plan_err = |e| Err(PrepareError::Plan(e));
    let id = ours.id;
    match &survey.report {
        Some((rid, status, fp)) if status == "Completed" && (rid == id || fp == ours.fingerprint) => {
            plan_err(PlanError::AlreadyCompleted { output: output.display.clone(), job: rid.clone() })
        }
        None if survey.other.is_some() && ours.staged => Ok(()),
        _ if survey.other.is_some() => plan_err(PlanError::OutputExists {
            output: output.display.clone(),
            existing: survey.other.clone().expect("checked"),
        }),
        Some((rid, _, _)) if rid != id => {
            plan_err(PlanError::FailedJobLogs { output: output.display.clone(), job_id: rid.clone(), error: None })
        }
        Some((_, status, _)) if !resume => Err(PrepareError::Setting(format!(
            "job {id} in {} ended {status}; run with --resume to go on with it",
            output.display
        ))),
        Some(_) => move_logs_aside(output, state).await,
        None => Ok(()),
    }
}

/// Moves the logs of the job's earlier attempt into `_staging/<job>/attempts/<time>/`.
async fn move_logs_aside(output: &crate::storage::Location, state: &JobState) -> Result<(), PrepareError> {
    let attempt = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    // The report last: while it is there, the output says what happened to the job.
    for name in ["mini_batches.csv", "failures.jsonl", "job_result.json"] {
        let from = output.join(&format!("logs/{name}"));
        let to = output.join(&format!("_staging/{}/attempts/{attempt}/{name}", state.job_id));
        let store = &output.store;
        match crate::storage::with_retries("keep logs", |_| store.copy(&from.path, &to.path)).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(store_error(output, e)),
        }
        crate::storage::with_retries("move logs", |_| store.delete(&from.path))
            .await
            .map_err(|e| store_error(output, e))?;
    }
    if let Some(local) = &output.local {
        let _ = std::fs::remove_dir(local.join("logs"));
    }
    tracing::info!(
        "the logs of job {}'s earlier attempt are kept in {}",
        state.job_id,
        state.display(&format!("attempts/{attempt}"))
    );
    Ok(())
}

/// Writes this process's marker (its first heartbeat) create-only.
pub(super) async fn probe(state: &JobState, instance: Option<Instance>) -> Result<(), PrepareError> {
    let beat = Heartbeat {
        owner: StagingOwner::this_process(&state.job_id),
        process: state.process.clone(),
        instance_index: instance.map(|i| i.index),
        beat_at: chrono::Utc::now().to_rfc3339(),
    };
    let rel = format!("_staging/{}/{}", state.job_id, JobState::owner_name(&state.process));
    probe_output(&state.output, &rel, serde_json::to_vec_pretty(&beat).expect("serialisable"))
        .await
        .map_err(PrepareError::from)
}

async fn record_plan(state: &JobState, doc: &PlanDoc) -> Result<(), PrepareError> {
    match state.create("plan.json", plan_bytes(doc)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(not_writable(&state.output, &format!("{} exists already", state.display("plan.json")))),
        Err(e) => Err(not_writable(&state.output, &e.to_string())),
    }
}

fn plan_bytes(doc: &PlanDoc) -> Bytes {
    Bytes::from(serde_json::to_vec(doc).expect("serialisable plan"))
}

/// A job's recorded plan, when it has a readable, intact one.
async fn read_plan(state: &JobState) -> Option<PlanDoc> {
    let doc: PlanDoc = serde_json::from_slice(&state.read("plan.json").await.ok()?).ok()?;
    doc.is_intact().then_some(doc)
}

fn not_writable(output: &crate::storage::Location, hint: &str) -> PrepareError {
    PrepareError::Plan(PlanError::NotWritable { output: output.display.clone(), hint: hint.to_string() })
}

fn store_error(output: &crate::storage::Location, source: object_store::Error) -> PrepareError {
    PrepareError::Plan(PlanError::Store { url: output.display.clone(), hint: output.hint(&source), source })
}

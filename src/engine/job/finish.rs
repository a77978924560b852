//! How a job ends: decide whether it completed, assemble its parts, publish, report.
//!
//! A job that ran in one process assembles and publishes when its pipeline is done. Of a job
//! that several processes share, the first to see every part takes the assembly lease and
//! publishes; the others wait until the report is there and end as the job did. A threshold
//! passed, Ctrl-C or a cancel stops the whole job (`stop.json`; the process that stopped it
//! publishes the Failed job's logs); SIGTERM (a scheduler taking a process back) and a process's
//! own write errors stop only that process, whose leases then pass to the others.
//!
//! The job is Completed only if everything it promises was written: the predictions published,
//! the logs published and the report written. A job whose report cannot be written is Failed,
//! and its report path is not printed (it does not exist). A Completed job's staging area is
//! removed; a Failed one's is kept (its plan and parts), so that `--resume` goes on from there.

use std::time::Instant;

use bytes::Bytes;

use super::assemble::{Assembled, assemble, staged_name};
use super::collector::Collected;
use super::control::Interrupt;
use super::pipeline::Joined;
use super::prepare::Prepared;
use super::resume::Settled;
use super::{JobOutcome, Started};
use crate::engine::commit::{CommitError, put_create};
use crate::engine::report::{JobResult, JobStatus, Versions};
use crate::engine::settings::{Deployment, OutputAction, Settings};
use crate::engine::state::JobState;
use crate::engine::state::lease::{Claims, Turn, assembly_turn};

/// Everything a job's end needs.
pub(super) struct Ending {
    pub settings: Settings,
    pub deployment: Deployment,
    pub job: Prepared,
    pub settled: Settled,
    pub collected: Collected,
    pub claims: std::sync::Arc<Claims>,
    pub interrupted: Option<Interrupt>,
    pub joined: Joined,
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub gpu: Option<crate::engine::gpu::GpuReport>,
    pub started: Started,
    /// The assembly this process made while the job ran, when it ran alone.
    pub early: Option<super::assemble::Assembly>,
}

/// How far a process's part in the job goes.
enum Part {
    /// Assemble and publish (with the predictions when the job has no error).
    Publish(Option<String>),
    /// Leave the job: another process publishes, or the job goes on without this one.
    Leave { error: Option<String>, published: bool },
}

pub(super) fn finish(io: &tokio::runtime::Runtime, mut e: Ending) -> JobOutcome {
    let error = job_error(&mut e);
    let state = e.settled.state.clone();
    let part = match (e.settled.instance.is_some(), error) {
        (false, error) => Part::Publish(error),
        (true, Some(error)) => stop_or_leave(io, &e, &state, error),
        (true, None) => match io.block_on(assembly_turn(&state, &e.claims, e.settled.lease, &e.cancel)) {
            Turn::Assemble => Part::Publish(None),
            Turn::Published => Part::Leave { error: None, published: true },
            Turn::Stopped => Part::Leave { error: stopped_by(io, &e, &state), published: true },
        },
    };
    match part {
        Part::Publish(error) => publish(io, e, error),
        Part::Leave { error, published } => {
            io.block_on(e.claims.stop_heartbeat());
            io.block_on(state.remove(&JobState::owner_name(&state.process)));
            leave(io, e, error, published)
        }
    }
}

/// Why the job failed, if it did, before the assembly.
fn job_error(e: &mut Ending) -> Option<String> {
    let c = &mut e.collected;
    let mut error = c.job_error.take();
    if let Some(why) = e.claims.stopped_by.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        error.get_or_insert(why);
    }
    match &e.interrupted {
        Some(Interrupt::Signal(signal)) => {
            error.get_or_insert_with(|| format!("interrupted by {signal}; the output was not published"));
        }
        Some(Interrupt::Canceled(reason)) => {
            error.get_or_insert_with(|| format!("canceled ({reason}); the output was not published"));
        }
        None => {}
    }
    if let Some(w) = c.write_error.take() {
        error.get_or_insert(w);
    }
    if e.joined.panicked {
        error.get_or_insert_with(|| "a worker or session thread panicked".into());
    }
    error
}

/// A process of a shared job with an error: a threshold, Ctrl-C or a cancel stops the job for
/// every process (this one publishes the logs if it stopped it first); anything else (SIGTERM,
/// this process's own write errors) only takes this process out of the job.
fn stop_or_leave(io: &tokio::runtime::Runtime, e: &Ending, state: &JobState, error: String) -> Part {
    if e.claims.stopped_by.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
        return Part::Leave { error: Some(error), published: true };
    }
    let whole_job = e.collected.job_error.is_some()
        || matches!(e.interrupted, Some(Interrupt::Canceled(_)) | Some(Interrupt::Signal("Ctrl-C")));
    if !whole_job {
        tracing::warn!("{error}: this process leaves the job; its leases pass to the other processes");
        return Part::Leave {
            error: Some(format!("{error}; this process left the job, which goes on in the others")),
            published: false,
        };
    }
    match io.block_on(state.stop(&error)) {
        Ok(true) => Part::Publish(Some(error)),
        Ok(false) => Part::Leave { error: stopped_by(io, e, state).or(Some(error)), published: true },
        Err(err) => {
            tracing::warn!("cannot record that the job stopped: {err}");
            Part::Publish(Some(error))
        }
    }
}

fn stopped_by(io: &tokio::runtime::Runtime, e: &Ending, state: &JobState) -> Option<String> {
    if e.cancel.load(std::sync::atomic::Ordering::Relaxed) && e.interrupted.is_some() {
        return Some("canceled".into());
    }
    let stop = io.block_on(state.stop_reason())?;
    Some(format!("process {} stopped the job: {}", stop.by, stop.reason))
}

/// Assembles the parts, publishes what the job made (the predictions only if it Completed),
/// then its logs, then the report.
fn publish(io: &tokio::runtime::Runtime, mut e: Ending, mut job_error: Option<String>) -> JobOutcome {
    let commit_started = Instant::now();
    let state = e.settled.state.clone();
    let objects = match io.block_on(state.view()) {
        Ok(v) => v.objects,
        Err(err) => {
            job_error.get_or_insert_with(|| format!("cannot list {}: {err}", state.display("parts")));
            e.settled.prior.objects.clone()
        }
    };
    let with_predictions = job_error.is_none() && e.settings.output_action == OutputAction::AppendRow;
    let assembling = Instant::now();
    let early = e.early.take();
    let mut a = assemble(io, &e.settings, &e.job, &state, (&objects, &e.collected.stopped), with_predictions, early);
    a.timings.assemble = assembling.elapsed().as_secs_f64();
    a.counts.mini_batches_resumed = e.settled.prior.parts.len() as u64;
    a.counts.model_calls = e.joined.model_calls;
    if let Some(err) = a.error.take() {
        job_error.get_or_insert(err);
    }
    check_assembled(&mut job_error, &a, e.settings.error_threshold);
    let staging = state.staging();
    let mut lost_race = false;
    let mut predictions_url = None;
    let note = |r: Result<(), CommitError>, job_error: &mut Option<String>, lost_race: &mut bool| match r {
        Ok(()) => true,
        Err(err) => {
            *lost_race |= matches!(err, CommitError::AlreadyExists { .. });
            job_error.get_or_insert(err.to_string());
            false
        }
    };
    let staged = |name: &str| staged_name(&state, name);
    if job_error.is_none() && a.predictions {
        let name = &e.settings.output_file_name;
        if note(io.block_on(staging.publish(&staged(name), name)), &mut job_error, &mut lost_race) {
            predictions_url = Some(e.job.output.join(name).display);
        }
    }
    if !lost_race {
        for name in ["mini_batches.csv", "failures.jsonl"] {
            let published = io.block_on(staging.publish(&staged(name), &format!("logs/{name}")));
            note(published, &mut job_error, &mut lost_race);
        }
    }
    for name in [e.settings.output_file_name.as_str(), "mini_batches.csv", "failures.jsonl"] {
        io.block_on(state.remove(&staged(name)));
    }
    let mut timings = std::mem::take(&mut a.timings);
    timings.commit = commit_started.elapsed().as_secs_f64();
    let mut result = result(&mut e, &a, job_error, predictions_url, lost_race);
    timings.write = e.collected.write;
    timings.encode = e.collected.encode;
    timings.plan = e.job.plan_seconds;
    timings.workers.add(&e.joined.workers);
    timings.sessions.add(&e.joined.sessions);
    timings.wall = e.started.instant.elapsed().as_secs_f64();
    timings.bound_by = timings.bounding_stage();
    result.timings_seconds = timings;
    let outcome = write_report(io, &e.job.output, result, lost_race);
    if outcome.result.status != JobStatus::Completed && e.settled.instance.is_some() && published_here(io, &e) {
        // Another process of this job, which this one took for dead, published it first.
        io.block_on(e.claims.stop_heartbeat());
        return leave(io, e, None, true);
    }
    io.block_on(e.claims.stop_heartbeat());
    // A job that lost the race, for the predictions or only for the report (another job's
    // there first), can never be resumed into this output: nothing of its staging is needed.
    if outcome.result.status == JobStatus::Completed || outcome.lost_race {
        io.block_on(staging.cleanup());
    } else {
        io.block_on(state.remove(&JobState::owner_name(&state.process)));
        tracing::info!(
            "the job's plan and scored mini-batches are kept in {}: run again with --resume to score only the rest",
            state.display("")
        );
    }
    outcome
}

/// Whether the output holds this job's Completed report.
fn published_here(io: &tokio::runtime::Runtime, e: &Ending) -> bool {
    published_report(io, e).is_some_and(|r| completes(&r, e))
}

/// The report at the output, when there is a readable one.
fn published_report(io: &tokio::runtime::Runtime, e: &Ending) -> Option<serde_json::Value> {
    let report = e.job.output.join("logs/job_result.json");
    let bytes = io.block_on(crate::storage::get_bytes(&e.job.output.store, &report.path)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `report` says this job Completed.
fn completes(report: &serde_json::Value, e: &Ending) -> bool {
    report["status"] == "Completed" && report["job_id"] == e.settled.state.job_id.as_str()
}

/// Errors only the whole job's parts show: nothing scored, or the threshold passed by failures
/// of several attempts or processes together.
fn check_assembled(job_error: &mut Option<String>, a: &Assembled, threshold: i64) {
    let counts = &a.counts;
    if job_error.is_none() && !a.missing.is_empty() {
        *job_error = Some(format!(
            "{} mini-batch(es) have no scored part (the first: {}); run again with --resume to score them",
            a.missing.len(),
            a.missing[0]
        ));
    }
    if job_error.is_none() && threshold >= 0 && counts.items_failed > threshold as u64 {
        *job_error = Some(format!(
            "{} failed items exceed error_threshold {threshold}; the job was stopped",
            counts.items_failed
        ));
    }
    if job_error.is_none() && counts.rows_scored == 0 && counts.files_total > 0 {
        *job_error = Some(if counts.items_failed > 0 {
            "nothing was scored: every item failed (see logs/failures.jsonl)".into()
        } else if counts.files_empty == counts.files_total {
            "nothing was scored: every input file is empty (a header and no rows)".into()
        } else {
            "nothing was scored: the input files hold no rows".into()
        });
    }
}

/// The job's report, from what the assembly counted.
fn result(
    e: &mut Ending,
    a: &Assembled,
    job_error: Option<String>,
    predictions: Option<String>,
    lost_race: bool,
) -> JobResult {
    let mut notes = std::mem::take(&mut e.deployment.notes);
    notes.extend(a.note_lines());
    let status = match (&job_error, &e.interrupted) {
        (None, _) => JobStatus::Completed,
        (Some(_), Some(Interrupt::Canceled(_))) if !lost_race => JobStatus::Canceled,
        (Some(_), _) => JobStatus::Failed,
    };
    JobResult {
        job_id: e.settled.state.job_id.clone(),
        plan_fingerprint: e.settled.doc.fingerprint.clone(),
        status,
        error: job_error.map(|err| crate::secrets::scrub(&err).into_owned()),
        first_failure: a.first_failure.clone(),
        started_at: e.started.at.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        input: e.job.input.display.clone(),
        output: e.job.output.display.clone(),
        predictions,
        counts: a.counts.clone(),
        timings_seconds: Default::default(),
        gpu: e.gpu.take(),
        model: e.job.model_report.clone(),
        settings: e.settings.clone(),
        ignored_settings: std::mem::take(&mut e.deployment.ignored),
        notes,
        skipped_files: e.job.plan.skipped.clone(),
        empty_files: a.empty_files.clone(),
        processes: a.processes.clone(),
        versions: Versions {
            batchscore: env!("CARGO_PKG_VERSION"),
            onnxruntime: crate::engine::runtime::loaded_version(),
        },
    }
}

/// A process that does not publish: another one did (or stopped the job), or this one left.
/// Its report is its own part in the job; the job's is the published one, when there is one.
fn leave(io: &tokio::runtime::Runtime, mut e: Ending, error: Option<String>, published: bool) -> JobOutcome {
    let report_at = e.job.output.join("logs/job_result.json");
    let report = if published { published_report(io, &e) } else { None };
    let a = Assembled {
        counts: crate::engine::report::Counts {
            files_total: e.job.plan.files.len() as u64,
            mini_batches_total: e.job.plan.mini_batches.len() as u64,
            mini_batches_run: e.collected.mini_batches,
            items_failed: e.collected.items_failed,
            model_calls: e.joined.model_calls,
            ..Default::default()
        },
        ..Default::default()
    };
    let predictions = report.as_ref().and_then(|r| r["predictions"].as_str().map(str::to_string));
    let published_status = report.as_ref().and_then(|r| r["status"].as_str().map(str::to_string));
    let error = match (&error, published_status.as_deref()) {
        (None, Some("Completed")) => None,
        (None, Some(other)) => Some(format!("the job ended {other} (see its report)")),
        (None, None) => Some("the job's report cannot be read".to_string()),
        (Some(err), _) => Some(err.clone()),
    };
    let done = report.as_ref().is_some_and(|r| completes(r, &e));
    if done {
        // What this process wrote after the job was published (a part it finished late, its
        // marker) is all that can be left in the staging area: nothing of it is needed.
        io.block_on(e.settled.state.staging().cleanup());
    }
    let mut result = result(&mut e, &a, error, predictions, false);
    result.processes = [(e.settled.state.process.clone(), e.collected.mini_batches)].into();
    result.timings_seconds.write = e.collected.write;
    result.timings_seconds.wall = e.started.instant.elapsed().as_secs_f64();
    JobOutcome {
        report_url: report.is_some().then(|| report_at.display.clone()),
        result,
        report_error: None,
        lost_race: false,
        published: false,
    }
}

/// Writes `logs/job_result.json` create-only (not when another job took the output).
fn write_report(
    io: &tokio::runtime::Runtime,
    output: &crate::storage::Location,
    mut result: JobResult,
    mut lost_race: bool,
) -> JobOutcome {
    let mut report_error = None;
    let mut report_url = None;
    if !lost_race {
        let json = serde_json::to_vec_pretty(&result).expect("serialisable report");
        match io.block_on(put_create(output, "logs/job_result.json", Bytes::from(json))) {
            Ok(()) => report_url = Some(output.join("logs/job_result.json").display),
            Err(e) => {
                // The report is what tells a scheduler the job completed: without it (or with
                // another job's there first, whose output is the one published), it did not.
                lost_race = matches!(e, CommitError::AlreadyExists { .. });
                result.status = JobStatus::Failed;
                result.predictions = None;
                let why = if lost_race { e.to_string() } else { crate::storage::io_hint(&e.to_string()) };
                result.error.get_or_insert_with(|| why.clone());
                if !lost_race {
                    report_error = Some(why);
                }
            }
        }
    }
    JobOutcome { result, report_url, report_error, lost_race, published: true }
}

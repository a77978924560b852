//! Running a job's record: the engine under a control whose observer and heartbeat keep the
//! catalog current, and whose cancel comes from `job cancel` in any process.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::{JobControl, JobOutcome, JobSpec, Observer, Phase, PlanSummary, ProgressUpdate};
use crate::service::Result;
use crate::workspace::Workspace;
use crate::workspace::assets::{InstanceState, Job, JobProgress, JobStatus, Runner};

/// How often the running process writes its heartbeat and reads cancel requests.
const BEAT: Duration = Duration::from_secs(1);

/// How a run ended.
#[derive(Debug)]
pub struct Ran {
    pub job: Job,
    /// The engine's outcome; `None` when the job could not start (the reason is in `job.error`).
    pub outcome: Option<JobOutcome>,
}

/// What the observer has seen, for the heartbeat to write.
#[derive(Default)]
struct Seen {
    phase: Option<Phase>,
    progress: Option<ProgressUpdate>,
    /// The first progress update: what was done before this process joined the job.
    first: Option<ProgressUpdate>,
    lines: Vec<String>,
}

struct CatalogObserver {
    seen: Arc<Mutex<Seen>>,
    /// `instance N: ` for a launched process's lines, else empty.
    label: String,
    also: Option<Arc<dyn Observer>>,
}

impl CatalogObserver {
    fn note(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.seen.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl Observer for CatalogObserver {
    fn phase(&self, job_id: &str, phase: Phase) {
        self.note(|s| {
            s.phase = Some(phase);
            s.lines.push(format!("{}: {}{phase:?}", crate::workspace::now(), self.label));
        });
        if let Some(o) = &self.also {
            o.phase(job_id, phase);
        }
    }

    fn planned(&self, summary: &PlanSummary) {
        self.note(|s| {
            // The totals are known now: a job's record shows them before its first mini-batch.
            s.progress = Some(ProgressUpdate {
                files_total: summary.files,
                mini_batches_total: summary.mini_batches,
                ..Default::default()
            });
            s.lines.push(format!(
                "{}: {}planned {} files ({} skipped) in {} mini-batches, output {}",
                crate::workspace::now(),
                self.label,
                summary.files,
                summary.files_skipped,
                summary.mini_batches,
                summary.output
            ))
        });
        if let Some(o) = &self.also {
            o.planned(summary);
        }
    }

    fn progress(&self, u: &ProgressUpdate) {
        self.note(|s| {
            s.progress = Some(*u);
            s.first.get_or_insert(*u);
        });
        if let Some(o) = &self.also {
            o.progress(u);
        }
    }
}

/// This machine's name, as recorded with a running job.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

/// Runs the job `name` (created by [`super::create`]) in this process; `also` hears its
/// progress too (the CLI's bar).
pub fn run(ws: &mut Workspace, name: &str, spec: JobSpec, also: Option<Arc<dyn Observer>>) -> Result<Ran> {
    run_as(ws, name, spec, also, None)
}

/// Runs this process's share of a job launched on a compute target ([`super::launch`]): its
/// record is the job's, which every process of it writes, and the one that publishes the job
/// ends it (another that leaves, or cannot start, only says so in the job's events).
pub fn run_instance(ws: &mut Workspace, name: &str, spec: JobSpec, also: Option<Arc<dyn Observer>>) -> Result<Ran> {
    let index = spec.options.instance(&spec.settings).map_or(0, |i| i.index);
    run_as(ws, name, spec, also, Some(index))
}

fn run_as(
    ws: &mut Workspace,
    name: &str,
    spec: JobSpec,
    also: Option<Arc<dyn Observer>>,
    instance: Option<usize>,
) -> Result<Ran> {
    let me = Runner { pid: std::process::id(), host: host_name() };
    super::update(ws, name, |j, _| {
        j.heartbeat_at = Some(crate::workspace::now());
        if instance.is_none() {
            j.status = JobStatus::Starting;
            j.started_at = Some(crate::workspace::now());
            j.runner = Some(me.clone());
        }
    })?;
    if let Some(i) = instance {
        let line = format!("{}: instance {i} started (pid {} on {})", crate::workspace::now(), me.pid, me.host);
        append_events(ws, name, &[line])?;
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let label = instance.map(|i| format!("instance {i}: ")).unwrap_or_default();
    let control = JobControl::with_observer(Arc::new(CatalogObserver { seen: seen.clone(), label, also }));
    // Dropping `stop` ends the heartbeat at once (not after its next sleep).
    let (stop, stopped) = channel::<()>();
    let beat = {
        let (root, name, seen, control) = (ws.root.clone(), name.to_string(), seen.clone(), control.clone());
        let who = Beating { control, instance, me: me.clone() };
        std::thread::Builder::new()
            .name("batchscore-heartbeat".into())
            .spawn(move || heartbeat(root, &name, &seen, &stopped, &who))
            .map_err(|source| crate::service::ServiceError::Io { path: "heartbeat thread".into(), source })?
    };
    let ended = crate::engine::prepare(spec, &control).and_then(|p| p.run());
    drop(stop);
    let _ = beat.join();
    let lines = std::mem::take(&mut seen.lock().unwrap_or_else(|e| e.into_inner()).lines);
    append_events(ws, name, &lines)?;
    match (ended, instance) {
        (Ok(outcome), Some(i)) if !outcome.published => {
            let line = format!(
                "{}: instance {i} left the job after scoring {} mini-batches; another process publishes it",
                crate::workspace::now(),
                outcome.result.counts.mini_batches_run
            );
            append_events(ws, name, &[line])?;
            Ok(Ran { job: super::show(ws, name)?, outcome: Some(outcome) })
        }
        (Ok(outcome), _) => Ok(Ran { job: finish(ws, name, &outcome)?, outcome: Some(outcome) }),
        (Err(e), Some(i)) => {
            let error = crate::secrets::scrub(&e.to_string()).into_owned();
            let done = matches!(
                &e,
                crate::engine::PrepareError::Plan(crate::engine::plan::PlanError::AlreadyCompleted { .. })
            );
            let line = if done {
                format!("{}: instance {i}: the job is published already", crate::workspace::now())
            } else {
                format!("{}: instance {i} could not take part: {error}", crate::workspace::now())
            };
            append_events(ws, name, &[line])?;
            let job = super::update(ws, name, |j, _| {
                if !done && !j.status.is_terminal() {
                    j.error = Some(error.clone());
                }
            })?;
            Ok(Ran { job, outcome: None })
        }
        (Err(e), None) => {
            let error = crate::secrets::scrub(&e.to_string()).into_owned();
            let job = super::update(ws, name, |j, _| {
                j.status = JobStatus::Failed;
                j.error = Some(error.clone());
                j.finished_at = Some(crate::workspace::now());
            })?;
            append_events(ws, name, &[format!("{}: Failed: {error}", crate::workspace::now())])?;
            Ok(Ran { job, outcome: None })
        }
    }
}

/// Records how the engine's job ended.
fn finish(ws: &mut Workspace, name: &str, outcome: &JobOutcome) -> Result<Job> {
    use crate::engine::report::JobStatus as Engine;
    let r = &outcome.result;
    let status = match r.status {
        _ if outcome.lost_race => JobStatus::Failed,
        Engine::Completed => JobStatus::Completed,
        Engine::Failed => JobStatus::Failed,
        Engine::Canceled => JobStatus::Canceled,
    };
    let job = super::update(ws, name, |j, _| {
        j.status = status;
        j.finished_at = Some(crate::workspace::now());
        j.counts = serde_json::to_value(&r.counts).ok();
        j.first_failure = r.first_failure.as_ref().and_then(|f| serde_json::to_value(f).ok());
        j.error = r.error.clone().or_else(|| outcome.report_error.clone());
        j.log_location = outcome.report_url.clone();
    })?;
    let line = format!(
        "{}: {}: {} rows from {}/{} files scored, {} items failed{}",
        crate::workspace::now(),
        status.name(),
        r.counts.rows_scored,
        r.counts.files_scored,
        r.counts.files_total,
        r.counts.items_failed,
        r.error.as_deref().map(|e| format!("; {e}")).unwrap_or_default()
    );
    append_events(ws, name, &[line])?;
    Ok(job)
}

/// Who beats: the job's one process, or one of its launched ones.
struct Beating {
    control: JobControl,
    instance: Option<usize>,
    me: Runner,
}

/// Every [`BEAT`]: writes phase, progress and the time; turns a cancel request into a cancel.
fn heartbeat(root: PathBuf, name: &str, seen: &Mutex<Seen>, stopped: &Receiver<()>, who: &Beating) {
    let mut ws = match Workspace::open(&root) {
        Ok(ws) => ws,
        Err(e) => {
            tracing::warn!("job {name}: cannot open the catalog for its heartbeat ({e}); it may be taken for dead");
            return;
        }
    };
    let mut last_line = None;
    loop {
        let (phase, progress, joined_at, mut lines) = {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            (s.phase, s.progress, s.first, std::mem::take(&mut s.lines))
        };
        if let Some(p) = &progress {
            let line = format!(
                "progress{}: {}/{} files, {} rows, {} failed",
                who.instance.map(|i| format!(" of instance {i}")).unwrap_or_default(),
                p.files_done,
                p.files_total,
                p.rows_scored,
                p.items_failed
            );
            if last_line.as_ref() != Some(&line) {
                lines.push(format!("{}: {line}", crate::workspace::now()));
                last_line = Some(line);
            }
        }
        let beat = Beat { phase, progress, joined_at };
        let written = append_events(&mut ws, name, &lines)
            .and_then(|_| super::update(&mut ws, name, |j, cancel| beat_into(j, cancel, &beat, who)));
        if let Err(e) = written {
            tracing::warn!("job {name}: heartbeat not written: {e}");
        }
        if stopped.recv_timeout(BEAT) != Err(RecvTimeoutError::Timeout) {
            return;
        }
    }
}

/// What one heartbeat writes.
struct Beat {
    phase: Option<Phase>,
    progress: Option<ProgressUpdate>,
    joined_at: Option<ProgressUpdate>,
}

fn job_progress(p: &ProgressUpdate) -> JobProgress {
    JobProgress {
        files_total: p.files_total,
        files_done: p.files_done,
        mini_batches_total: p.mini_batches_total,
        mini_batches_done: p.mini_batches_done,
        rows_scored: p.rows_scored,
        items_failed: p.items_failed,
    }
}

/// One heartbeat's changes to the record.
fn beat_into(j: &mut Job, cancel: bool, beat: &Beat, who: &Beating) {
    let now = crate::workspace::now();
    j.heartbeat_at = Some(now.clone());
    let status = match (cancel, beat.phase) {
        (true, _) => JobStatus::CancelRequested,
        (false, Some(Phase::Running)) => JobStatus::Running,
        (false, Some(Phase::Finalizing)) => JobStatus::Finalizing,
        (false, _) => JobStatus::Starting,
    };
    match who.instance {
        None => {
            j.progress = beat.progress.as_ref().map(job_progress);
            j.status = status;
        }
        Some(i) => {
            if let (Some(p), Some(base)) = (&beat.progress, &beat.joined_at) {
                let (p, base) = (job_progress(p), job_progress(base));
                let own = JobProgress {
                    files_done: p.files_done - base.files_done,
                    mini_batches_done: p.mini_batches_done - base.mini_batches_done,
                    rows_scored: p.rows_scored - base.rows_scored,
                    items_failed: p.items_failed - base.items_failed,
                    ..p
                };
                let state = InstanceState {
                    pid: who.me.pid,
                    host: who.me.host.clone(),
                    heartbeat_at: now,
                    progress: own,
                    joined_at_progress: base,
                };
                j.instances.insert(i.to_string(), state);
                j.progress = Some(sum_of_instances(j));
            }
            // Several processes write the status: it only moves on.
            if !j.status.is_terminal() && rank(status) > rank(j.status) {
                j.status = status;
            }
        }
    }
    if cancel {
        who.control.cancel("canceled by `job cancel`");
    }
}

/// How far a job its launched processes share is: what was done before the first of them
/// joined, and what each did since.
fn sum_of_instances(j: &Job) -> JobProgress {
    let all: Vec<&InstanceState> = j.instances.values().collect();
    let first = all.iter().map(|s| s.joined_at_progress).min_by_key(|p| p.mini_batches_done).unwrap_or_default();
    let mut total = first;
    for s in &all {
        total.files_total = total.files_total.max(s.progress.files_total);
        total.mini_batches_total = total.mini_batches_total.max(s.progress.mini_batches_total);
        total.files_done += s.progress.files_done;
        total.mini_batches_done += s.progress.mini_batches_done;
        total.rows_scored += s.progress.rows_scored;
        total.items_failed += s.progress.items_failed;
    }
    total.files_done = total.files_done.min(total.files_total);
    total.mini_batches_done = total.mini_batches_done.min(total.mini_batches_total);
    total
}

/// The order a running job's status moves in.
fn rank(s: JobStatus) -> u8 {
    match s {
        JobStatus::NotStarted | JobStatus::Queued => 0,
        JobStatus::Starting => 1,
        JobStatus::Running => 2,
        JobStatus::Finalizing => 3,
        _ => 4,
    }
}

pub(super) fn append_events(ws: &mut Workspace, name: &str, lines: &[String]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    ws.write(|tx| {
        let next: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM job_events WHERE job = ?1", [name], |r| r.get(0))
            .map_err(crate::workspace::store::sqlite)?;
        for (i, line) in lines.iter().enumerate() {
            tx.execute(
                "INSERT INTO job_events (job, seq, at, line) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![name, next + 1 + i as i64, crate::workspace::now(), line],
            )
            .map_err(crate::workspace::store::sqlite)?;
        }
        Ok(())
    })?;
    Ok(())
}

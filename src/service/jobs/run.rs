//! Running a job's record: the engine under a control whose observer and heartbeat keep the
//! catalog current, and whose cancel comes from `job cancel` in any process.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::{JobControl, JobOutcome, JobSpec, Observer, Phase, PlanSummary, ProgressUpdate};
use crate::service::Result;
use crate::workspace::Workspace;
use crate::workspace::assets::{Job, JobProgress, JobStatus, Runner};

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
    lines: Vec<String>,
}

struct CatalogObserver {
    seen: Arc<Mutex<Seen>>,
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
            s.lines.push(format!("{}: {phase:?}", crate::workspace::now()));
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
                "{}: planned {} files ({} skipped) in {} mini-batches, output {}",
                crate::workspace::now(),
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
        self.note(|s| s.progress = Some(*u));
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
    super::update(ws, name, |j, _| {
        j.status = JobStatus::Starting;
        j.started_at = Some(crate::workspace::now());
        j.heartbeat_at = Some(crate::workspace::now());
        j.runner = Some(Runner { pid: std::process::id(), host: host_name() });
    })?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let control = JobControl::with_observer(Arc::new(CatalogObserver { seen: seen.clone(), also }));
    // Dropping `stop` ends the heartbeat at once (not after its next sleep).
    let (stop, stopped) = channel::<()>();
    let beat = {
        let (root, name, seen, control) = (ws.root.clone(), name.to_string(), seen.clone(), control.clone());
        std::thread::Builder::new()
            .name("batchscore-heartbeat".into())
            .spawn(move || heartbeat(root, &name, &seen, &stopped, &control))
            .map_err(|source| crate::service::ServiceError::Io { path: "heartbeat thread".into(), source })?
    };
    let ended = crate::engine::prepare(spec, &control).and_then(|p| p.run());
    drop(stop);
    let _ = beat.join();
    let lines = std::mem::take(&mut seen.lock().unwrap_or_else(|e| e.into_inner()).lines);
    append_events(ws, name, &lines)?;
    let (job, outcome) = match ended {
        Ok(outcome) => (finish(ws, name, &outcome)?, Some(outcome)),
        Err(e) => {
            let error = crate::secrets::scrub(&e.to_string()).into_owned();
            let job = super::update(ws, name, |j, _| {
                j.status = JobStatus::Failed;
                j.error = Some(error.clone());
                j.finished_at = Some(crate::workspace::now());
            })?;
            append_events(ws, name, &[format!("{}: Failed: {error}", crate::workspace::now())])?;
            (job, None)
        }
    };
    Ok(Ran { job, outcome })
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

/// Every [`BEAT`]: writes phase, progress and the time; turns a cancel request into a cancel.
fn heartbeat(root: PathBuf, name: &str, seen: &Mutex<Seen>, stopped: &Receiver<()>, control: &JobControl) {
    let mut ws = match Workspace::open(&root) {
        Ok(ws) => ws,
        Err(e) => {
            tracing::warn!("job {name}: cannot open the catalog for its heartbeat ({e}); it may be taken for dead");
            return;
        }
    };
    let mut last_line = None;
    loop {
        let (phase, progress, mut lines) = {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            (s.phase, s.progress, std::mem::take(&mut s.lines))
        };
        if let Some(p) = &progress {
            let line = format!(
                "progress: {}/{} files, {} rows, {} failed",
                p.files_done, p.files_total, p.rows_scored, p.items_failed
            );
            if last_line.as_ref() != Some(&line) {
                lines.push(format!("{}: {line}", crate::workspace::now()));
                last_line = Some(line);
            }
        }
        let written = append_events(&mut ws, name, &lines)
            .and_then(|_| super::update(&mut ws, name, |j, cancel| beat_into(j, cancel, phase, progress, control)));
        if let Err(e) = written {
            tracing::warn!("job {name}: heartbeat not written: {e}");
        }
        if stopped.recv_timeout(BEAT) != Err(RecvTimeoutError::Timeout) {
            return;
        }
    }
}

/// One heartbeat's changes to the record.
fn beat_into(j: &mut Job, cancel: bool, phase: Option<Phase>, progress: Option<ProgressUpdate>, control: &JobControl) {
    j.heartbeat_at = Some(crate::workspace::now());
    if let Some(p) = progress {
        j.progress = Some(JobProgress {
            files_total: p.files_total,
            files_done: p.files_done,
            mini_batches_total: p.mini_batches_total,
            mini_batches_done: p.mini_batches_done,
            rows_scored: p.rows_scored,
            items_failed: p.items_failed,
        });
    }
    j.status = match (cancel, phase) {
        (true, _) => JobStatus::CancelRequested,
        (false, Some(Phase::Running)) => JobStatus::Running,
        (false, Some(Phase::Finalizing)) => JobStatus::Finalizing,
        (false, _) => JobStatus::Starting,
    };
    if cancel {
        control.cancel("canceled by `job cancel`");
    }
}

fn append_events(ws: &mut Workspace, name: &str, lines: &[String]) -> Result<()> {
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

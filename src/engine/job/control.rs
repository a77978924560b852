//! The handle a caller keeps on a running job: cancel it from any thread, and hear how it goes.

use std::sync::{Arc, Mutex};

/// Where a job is. Reported to the [`Observer`] as the job moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Checking the output, listing and planning the inputs, loading the model.
    Preparing,
    /// Scoring mini-batches.
    Running,
    /// Every mini-batch is in: publishing the output, the logs and the report.
    Finalizing,
}

/// How far a running job is, after each mini-batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressUpdate {
    pub files_total: u64,
    /// Files whose every item is in (scored, failed or empty).
    pub files_done: u64,
    pub mini_batches_total: u64,
    pub mini_batches_done: u64,
    pub rows_scored: u64,
    pub items_failed: u64,
}

/// Hears a job's phases and progress. Called from the job's own threads, so keep it quick.
pub trait Observer: Send + Sync {
    /// The job entered `phase`; `job_id` names it from then on.
    fn phase(&self, _job_id: &str, _phase: Phase) {}
    /// The job is planned and about to score.
    fn planned(&self, _summary: &super::PlanSummary) {}
    /// One more mini-batch is in.
    fn progress(&self, _update: &ProgressUpdate) {}
}

/// A caller's handle on a job. Clones share the job: cancel one and the job stops.
#[derive(Clone, Default)]
pub struct JobControl {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    canceled: Mutex<Option<String>>,
    wake: tokio::sync::Notify,
    observer: Option<Arc<dyn Observer>>,
}

impl JobControl {
    /// A handle with no observer.
    pub fn new() -> JobControl {
        JobControl::default()
    }

    /// A handle that reports to `observer`.
    pub fn with_observer(observer: Arc<dyn Observer>) -> JobControl {
        JobControl { inner: Arc::new(Inner { observer: Some(observer), ..Default::default() }) }
    }

    /// Asks the job to stop: running model calls are stopped, nothing is published, and the job
    /// ends Canceled with `reason`. Safe from any thread, before or while the job runs; the first
    /// reason wins.
    pub fn cancel(&self, reason: impl Into<String>) {
        self.inner.canceled.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| reason.into());
        self.inner.wake.notify_one();
    }

    /// Why the job was canceled, if it was.
    pub fn canceled(&self) -> Option<String> {
        self.inner.canceled.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Resolves once [`JobControl::cancel`] was called (at once if it already was).
    pub(super) async fn wait_canceled(&self) -> String {
        loop {
            if let Some(reason) = self.canceled() {
                return reason;
            }
            self.inner.wake.notified().await;
        }
    }

    pub(super) fn phase(&self, job_id: &str, phase: Phase) {
        if let Some(o) = &self.inner.observer {
            o.phase(job_id, phase);
        }
    }

    pub(super) fn planned(&self, summary: &super::PlanSummary) {
        if let Some(o) = &self.inner.observer {
            o.planned(summary);
        }
    }

    pub(super) fn progress(&self, update: &ProgressUpdate) {
        if let Some(o) = &self.inner.observer {
            o.progress(update);
        }
    }
}

impl std::fmt::Debug for JobControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobControl").field("canceled", &self.canceled()).finish_non_exhaustive()
    }
}

/// What stopped a job before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Interrupt {
    /// Ctrl-C or SIGTERM (the job fails, as before there were handles).
    Signal(&'static str),
    /// [`JobControl::cancel`] (the job is Canceled).
    Canceled(String),
}

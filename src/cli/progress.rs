//! Progress of a running job: an indicatif bar on a terminal, plain periodic lines otherwise
//! (CI logs, batch schedulers), nothing with `--progress off`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::settings::ProgressMode;
use crate::engine::{Observer, Phase, PlanSummary, ProgressUpdate};

pub struct Progress {
    kind: Kind,
    total_files: u64,
    started: Instant,
    files: u64,
    rows: u64,
    failed: u64,
}

enum Kind {
    Bar(ProgressBar),
    Plain { every: Duration, last: Instant },
    Off,
}

impl Progress {
    pub fn new(mode: ProgressMode, total_files: u64, interval_seconds: f64) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let kind = match mode {
            ProgressMode::Off => Kind::Off,
            ProgressMode::Bar => Kind::Bar(bar(total_files)),
            ProgressMode::Auto if terminal => Kind::Bar(bar(total_files)),
            ProgressMode::Auto | ProgressMode::Plain => {
                Kind::Plain { every: Duration::from_secs_f64(interval_seconds), last: Instant::now() }
            }
        };
        Progress { kind, total_files, started: Instant::now(), files: 0, rows: 0, failed: 0 }
    }

    /// Shows the job's totals after one more mini-batch.
    pub fn update(&mut self, files: u64, rows: u64, failed_items: u64) {
        self.files = files;
        self.rows = rows;
        self.failed = failed_items;
        let rate = self.rows as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        match &mut self.kind {
            Kind::Bar(b) => {
                b.set_position(self.files);
                b.set_message(format!("{} rows, {:.0} rows/s, {} failed", self.rows, rate, self.failed));
            }
            Kind::Plain { every, last } => {
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    eprintln!("{}", self.line(rate));
                }
            }
            Kind::Off => {}
        }
    }

    fn line(&self, rate: f64) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if self.files > 0 {
            let per_file = elapsed / self.files as f64;
            format!(", ETA {:.0} s", per_file * (self.total_files - self.files) as f64)
        } else {
            String::new()
        };
        format!(
            "progress: {}/{} files, {} rows, {:.0} rows/s, {} failed, {:.0} s elapsed{eta}",
            self.files, self.total_files, self.rows, rate, self.failed, elapsed
        )
    }

    /// Prints something without tearing the bar.
    pub fn println(&self, msg: &str) {
        match &self.kind {
            Kind::Bar(b) => b.suspend(|| eprintln!("{msg}")),
            _ => eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        if let Kind::Bar(b) = &self.kind {
            b.finish_and_clear();
        }
    }
}

/// The engine's progress as [`Progress`] shows it (bar, plain lines or nothing).
pub struct Shown {
    mode: ProgressMode,
    interval_seconds: f64,
    progress: std::sync::Mutex<Option<Progress>>,
}

impl Shown {
    pub fn new(mode: ProgressMode, interval_seconds: f64) -> Shown {
        Shown { mode, interval_seconds, progress: std::sync::Mutex::new(None) }
    }

    fn with(&self, f: impl FnOnce(&mut Option<Progress>)) {
        f(&mut self.progress.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Observer for Shown {
    fn planned(&self, summary: &PlanSummary) {
        self.with(|p| *p = Some(Progress::new(self.mode, summary.files, self.interval_seconds)));
    }

    fn progress(&self, u: &ProgressUpdate) {
        self.with(|p| {
            if let Some(p) = p {
                p.update(u.files_done, u.rows_scored, u.items_failed)
            }
        });
    }

    fn phase(&self, _job_id: &str, phase: Phase) {
        if phase == Phase::Finalizing {
            self.with(|p| {
                if let Some(p) = p.take() {
                    p.finish()
                }
            });
        }
    }
}

fn bar(total: u64) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files, {msg}, ETA {eta}")
            .expect("valid template"),
    );
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

//! Progress of a running job: an indicatif bar on a terminal, plain periodic lines otherwise
//! (CI logs, batch schedulers), nothing with `--progress off`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::settings::ProgressMode;

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

    /// Records one finished mini-batch.
    pub fn add(&mut self, files: u64, rows: u64, failed_items: u64) {
        self.files += files;
        self.rows += rows;
        self.failed += failed_items;
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

fn bar(total: u64) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files, {msg}, ETA {eta}")
            .expect("valid template"),
    );
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

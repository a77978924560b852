//! The engine's API as its callers use it: a spec is prepared (typed errors that keep their
//! source), then run under a control handle that cancels from another thread and reports
//! phases and progress to an observer.

mod common;

use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batchscore::engine::plan::PlanError;
use batchscore::engine::report::JobStatus;
use batchscore::engine::settings::{Deployment, RawSettings, Settings};
use batchscore::engine::{JobControl, JobSpec, Observer, Phase, PlanSummary, PrepareError, ProgressUpdate};
use common::*;

fn settings(model_file: &str, input: &str, output: &str) -> Settings {
    RawSettings {
        model: Some(model(model_file)),
        input: Some(input.into()),
        output: Some(output.into()),
        passthrough: Some(vec!["id".into()]),
        mini_batch_size: Some("1".into()),
        progress: Some("off".into()),
        logging_level: Some("warning".into()),
        ..Default::default()
    }
    .resolve("test")
    .unwrap()
}

#[derive(Default)]
struct Heard {
    phases: Mutex<Vec<Phase>>,
    planned: Mutex<Option<PlanSummary>>,
    last: Mutex<Option<ProgressUpdate>>,
}

impl Observer for Heard {
    fn phase(&self, _job_id: &str, phase: Phase) {
        self.phases.lock().unwrap().push(phase);
    }
    fn planned(&self, summary: &PlanSummary) {
        *self.planned.lock().unwrap() = Some(summary.clone());
    }
    fn progress(&self, update: &ProgressUpdate) {
        *self.last.lock().unwrap() = Some(*update);
    }
}

#[test]
fn an_observer_hears_every_phase_and_the_progress() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let heard = Arc::new(Heard::default());
    let control = JobControl::with_observer(heard.clone());
    let mut spec =
        JobSpec::new(settings("iris_zipmap.onnx", &data("iris"), out.to_str().unwrap()), Deployment::default());
    spec.job_id = Some("named-job".into());
    let prepared = batchscore::engine::prepare(spec, &control).unwrap();
    assert_eq!(prepared.summary().files, 3);
    assert_eq!(prepared.summary().job_id, "named-job");
    let outcome = prepared.run().unwrap();
    assert_eq!(outcome.result.status, JobStatus::Completed);
    assert_eq!(outcome.result.job_id, "named-job");
    assert_eq!(*heard.phases.lock().unwrap(), [Phase::Preparing, Phase::Running, Phase::Finalizing]);
    assert_eq!(heard.planned.lock().unwrap().as_ref().unwrap().mini_batches, 3);
    let last = heard.last.lock().unwrap().unwrap();
    assert_eq!((last.files_done, last.files_total, last.mini_batches_done, last.rows_scored), (3, 3, 3, 150));
}

#[test]
fn refusals_are_typed_and_keep_their_source() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("predictions.csv"), "x").unwrap();
    let spec = JobSpec::new(settings("iris_zipmap.onnx", &data("iris"), out.to_str().unwrap()), Deployment::default());
    let err = batchscore::engine::run(spec, &JobControl::new()).unwrap_err();
    assert!(matches!(err, PrepareError::Plan(PlanError::OutputExists { .. })), "{err:?}");
    assert!(err.source().and_then(|s| s.downcast_ref::<PlanError>()).is_some(), "the source is kept");
    let spec = JobSpec::new(
        settings("no-such-model.onnx", &data("iris"), tmp.path().join("o2").to_str().unwrap()),
        Deployment::default(),
    );
    let err = batchscore::engine::run(spec, &JobControl::new()).unwrap_err();
    assert!(matches!(err, PrepareError::Model(_)), "{err:?}");
    assert!(err.to_string().contains("no-such-model.onnx"), "{err}");
}

#[test]
fn cancel_from_another_thread_stops_a_running_model_call() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let heard = Arc::new(Heard::default());
    let control = JobControl::with_observer(heard.clone());
    let spec = JobSpec::new(
        settings("slow.onnx", &data("broken/tabular/good.csv"), out.to_str().unwrap()),
        Deployment::default(),
    );
    let canceller = {
        let (control, heard) = (control.clone(), heard.clone());
        std::thread::spawn(move || {
            while !heard.phases.lock().unwrap().contains(&Phase::Running) {
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(500));
            control.cancel("test says stop");
            Instant::now()
        })
    };
    let outcome = batchscore::engine::run(spec, &control).unwrap();
    let asked = canceller.join().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(40), "the 80 s model call was stopped: {:?}", asked.elapsed());
    assert_eq!(outcome.result.status, JobStatus::Canceled);
    assert!(outcome.result.error.as_deref().unwrap().contains("test says stop"), "{:?}", outcome.result.error);
    assert_eq!(control.canceled().as_deref(), Some("test says stop"));
    assert!(!out.join("predictions.csv").exists(), "nothing published");
    assert_eq!(job_result(&out)["status"], "Canceled");
}

//! A deployment on a Slurm compute target, against a real single-node Slurm started here
//! (tests/common/servers.rs, `Slurm`): `invoke` submits the job's processes as one `sbatch
//! --array`, they share the job and publish what one process would; `job cancel` stops the
//! running ones and `scancel`s the pending ones. Skips, saying why, where Slurm cannot run (not
//! root, not installed: `scripts/test-servers.sh` installs Debian's slurm-wlm and munge).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::catalog::bs_cmd;
use common::servers::Slurm;
use common::*;
use serde_json::Value;

/// `batchscore <args>` against `ws`, with Slurm's configuration in the environment.
fn bs(slurm: &Slurm, ws: &Path, args: &[&str]) -> Run {
    let mut cmd = bs_cmd(ws, args);
    cmd.envs(slurm.env());
    run_command(cmd)
}

fn json(slurm: &Slurm, ws: &Path, args: &[&str]) -> Value {
    let run = bs(slurm, ws, &[args, &["-o", "json"]].concat());
    run.expect_code(0).no_panic();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout))
}

fn setup(slurm: &Slurm, tmp: &Path, model_name: &str, instances: usize) -> PathBuf {
    let ws = tmp.join("ws");
    std::fs::create_dir(&ws).unwrap();
    bs(slurm, &ws, &["workspace", "create", "--name", "slurm-ws"]).expect_code(0);
    bs(slurm, &ws, &["model", "create", "-n", "m", "-p", &model(model_name)]).expect_code(0);
    bs(slurm, &ws, &["batch-endpoint", "create", "-n", "slurm-ep"]).expect_code(0);
    let c = json(slurm, &ws, &["compute", "create", "--name", "cluster", "--type", "slurm", "--partition", "debug"]);
    assert_eq!(c["partition"], "debug");
    let yaml = format!(
        "name: wide\nendpoint_name: slurm-ep\nmodel: azureml:m:1\ncompute: azureml:cluster\n\
         resources:\n  instance_count: {instances}\nsettings:\n  mini_batch_size: 3\n  max_concurrency_per_instance: 1\n{}",
        if model_name == "slow.onnx" { "batchscore:\n  passthrough: [id]\n" } else { "" }
    );
    std::fs::write(ws.join("wide.yml"), yaml).unwrap();
    bs(slurm, &ws, &["batch-deployment", "create", "-f", "wide.yml"]).expect_code(0).no_panic();
    ws
}

fn skip() -> bool {
    match Slurm::available() {
        Ok(()) => false,
        Err(why) => {
            eprintln!("skipped: Slurm cannot run here: {why}");
            true
        }
    }
}

#[test]
fn a_deployment_on_slurm_runs_its_job_as_one_array_and_publishes_what_one_process_would() {
    if skip() {
        return;
    }
    let slurm = Slurm::start();
    let tmp = tempdir();
    let ws = setup(&slurm, tmp.path(), "digits_mlp.onnx", 4);
    let d = data("digits");
    let reference = digits_reference(tmp.path());
    let mut cmd =
        bs_cmd(&ws, &["batch-endpoint", "invoke", "-n", "slurm-ep", "-i", &d, "--job-name", "arr", "-o", "json"]);
    // Delayed store requests (inherited by the tasks through sbatch's --export=ALL), so that
    // the job lasts long enough for the array's tasks to meet in it.
    cmd.envs(slurm.env()).env("BATCHSCORE_TEST_STORE_LATENCY", "20ms");
    let run = run_command(cmd);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, slurm.log_tail());
    run.stderr_has(&["4 process(es) on compute cluster (slurm, Slurm job", "job arr: Completed"]);
    let job: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(job["status"], "Completed", "{job}");
    let slurm_job = job["launch"]["slurm_job_id"].as_str().unwrap().to_string();
    let script = std::fs::read_to_string(ws.join("jobs/arr/submit.sbatch")).unwrap();
    assert!(script.contains("--array=0-3") && script.contains("--partition=debug"), "{script}");
    assert!(!script.contains("KEY") && !script.contains("SECRET"), "no setting or secret in the script");
    let out = ws.join(".batchscore/workspaceblobstore/azureml/arr/score");
    assert_same_predictions(&out.join("predictions.csv"), &reference.join("predictions.csv"));
    let report = job_result(&out);
    assert_eq!(report["counts"]["mini_batches_run"], 100);
    assert!(!out.join("_staging").exists(), "nothing staged is left");
    // Every task ran and ended; the ones that found the job done said so and exited 0.
    wait_gone(&slurm, &slurm_job);
    for i in 0..4 {
        let log = std::fs::read_to_string(ws.join(format!("jobs/arr/worker-{i}.log"))).unwrap_or_default();
        assert!(!log.contains("panicked"), "task {i}: {log}");
    }
    let events = bs(&slurm, &ws, &["job", "stream", "-n", "arr"]).stderr;
    assert!(events.contains(&format!("Slurm job {slurm_job}")), "{events}");
}

fn wait_gone(slurm: &Slurm, id: &str) {
    let started = Instant::now();
    while !slurm.squeue(id).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(120), "Slurm job {id}: {}", slurm.squeue(id));
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn job_cancel_stops_the_running_tasks_and_scancels_the_pending_ones() {
    if skip() {
        return;
    }
    let slurm = Slurm::start();
    let tmp = tempdir();
    // Three one-core tasks on a two-core node: one waits in the queue.
    let ws = setup(&slurm, tmp.path(), "slow.onnx", 3);
    let input = data("broken/tabular/good.csv");
    let queued = json(
        &slurm,
        &ws,
        &["batch-endpoint", "invoke", "-n", "slurm-ep", "-i", &input, "--job-name", "stop-me", "--no-wait"],
    );
    let id = queued["launch"]["slurm_job_id"].as_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let s = json(&slurm, &ws, &["job", "show", "-n", "stop-me"]);
        if s["status"] == "Running" {
            break;
        }
        assert!(!s["status"].as_str().unwrap().ends_with("ed"), "{s}\n{}", slurm.log_tail());
        assert!(started.elapsed() < Duration::from_secs(120), "{s}\n{}", slurm.squeue(&id));
        std::thread::sleep(Duration::from_millis(300));
    }
    let asked = Instant::now();
    assert_eq!(json(&slurm, &ws, &["job", "cancel", "-n", "stop-me"])["status"], "CancelRequested");
    let mut follow = bs_cmd(&ws, &["job", "stream", "-n", "stop-me"]);
    follow.envs(slurm.env());
    let followed = run_command(follow);
    assert_eq!(followed.code, 1, "{}", followed.stderr);
    assert!(asked.elapsed() < Duration::from_secs(70), "inside the 80 s model call: {:?}", asked.elapsed());
    let job = json(&slurm, &ws, &["job", "show", "-n", "stop-me"]);
    assert_eq!(job["status"], "Canceled", "{job}");
    let out = ws.join(".batchscore/workspaceblobstore/azureml/stop-me/score");
    assert!(!out.join("predictions.csv").exists(), "nothing published");
    wait_gone(&slurm, &id);
    let states = Command::new("scontrol").args(["show", "job", &id]).envs(slurm.env()).output().unwrap();
    let states = String::from_utf8_lossy(&states.stdout);
    assert!(states.contains("JobState=CANCELLED"), "the pending task was scancel'ed:\n{states}");
}

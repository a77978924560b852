//! Compute targets and the local launcher: `compute create|list|show|delete`, a deployment's
//! `compute:` with `resources.instance_count`, `invoke` starting that many processes, which
//! share one job through the output's staging area and publish what one process would; `job
//! cancel` stopping all of them; a job whose processes all die marked Failed, naming their logs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::catalog::{bs, bs_cmd, json};
use common::serve::workspace;
use common::*;

/// Endpoint `slow-ep` on the slow model (an 80 s call) with two processes on compute `here`;
/// starts job `name` and waits until it runs.
fn slow_job_on_compute(ws: &Path, name: &str) {
    bs(ws, &["model", "create", "-n", "slow", "-p", &model("slow.onnx")]).expect_code(0);
    bs(ws, &["batch-endpoint", "create", "-n", "slow-ep"]).expect_code(0);
    bs(ws, &["compute", "create", "--name", "here", "--type", "local"]).expect_code(0);
    let yaml = "name: only\nendpoint_name: slow-ep\nmodel: azureml:slow:1\ncompute: azureml:here\n\
                resources:\n  instance_count: 2\nbatchscore:\n  passthrough: [id]\n";
    std::fs::write(ws.join("slow.yml"), yaml).unwrap();
    bs(ws, &["batch-deployment", "create", "-f", "slow.yml"]).expect_code(0);
    let input = data("broken/tabular/good.csv");
    bs(ws, &["batch-endpoint", "invoke", "-n", "slow-ep", "-i", &input, "--job-name", name, "--no-wait"])
        .expect_code(0);
    wait_status(ws, name, &["Running"]);
}

/// Endpoint `digits-ep` with deployment `spread` on compute `here` (local), `instances` processes.
fn digits_on_compute(ws: &Path, model_file: &str, instances: usize) {
    bs(ws, &["model", "create", "-n", "digits", "-p", &model(model_file)]).expect_code(0);
    bs(ws, &["batch-endpoint", "create", "-n", "digits-ep"]).expect_code(0);
    bs(ws, &["compute", "create", "--name", "here", "--type", "local", "--max-instances", "8"]).expect_code(0);
    let yaml = format!(
        "name: spread\nendpoint_name: digits-ep\nmodel: azureml:digits:1\ncompute: azureml:here\n\
         resources:\n  instance_count: {instances}\nsettings:\n  mini_batch_size: 3\n  max_concurrency_per_instance: 1\n"
    );
    std::fs::write(ws.join("spread.yml"), yaml).unwrap();
    bs(ws, &["batch-deployment", "create", "-f", "spread.yml"]).expect_code(0).no_panic();
}

fn score_dir(ws: &Path, job: &str) -> PathBuf {
    ws.join(format!(".batchscore/workspaceblobstore/azureml/{job}/score"))
}

fn status(ws: &Path, job: &str) -> String {
    bs(ws, &["job", "show", "-n", job, "--query", "status", "-o", "tsv"]).stdout.trim().to_string()
}

fn wait_status(ws: &Path, job: &str, want: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let s = status(ws, job);
        if want.contains(&s.as_str()) {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "job {job} is {s}, not {want:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
}

#[test]
fn compute_targets_are_managed_and_checked_where_they_are_used() {
    let (_tmp, ws) = workspace();
    let c = json(&ws, &["compute", "create", "--name", "cpu-here", "--type", "local", "--max-instances", "2"]);
    assert_eq!(c["type"], "local");
    assert_eq!(c["max_instances"], 2);
    // Azure's compute YAML: the fields that mean nothing here are reported, not refused.
    std::fs::write(ws.join("c.yml"), "name: from-file\ntype: local\nsize: STANDARD_DS3_V2\nmin_instances: 0\n")
        .unwrap();
    bs(&ws, &["compute", "create", "-f", "c.yml"]).expect_code(0).stderr_has(&["`size`", "not used"]);
    let names: Vec<String> = json(&ws, &["compute", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["cpu-here", "from-file"]);
    assert_eq!(json(&ws, &["compute", "show", "-n", "from-file"])["type"], "local");
    // Bad input names the flag and what to do.
    bs(&ws, &["compute", "create", "--name", "x1", "--type", "kubernetes"])
        .expect_code(2)
        .stderr_has(&["--type", "slurm"]);
    // Azure's walkthroughs create an amlcompute cluster: here, local processes.
    let aml = bs(&ws, &["compute", "create", "--name", "batch-cluster", "--type", "amlcompute", "-o", "json"]);
    aml.expect_code(0).stderr_has(&["amlcompute", "local"]);
    bs(&ws, &["compute", "delete", "-n", "batch-cluster"]).expect_code(0);
    bs(&ws, &["compute", "create", "--name", "x2", "--partition", "p"]).expect_code(2).stderr_has(&["--partition"]);
    bs(&ws, &["compute", "create", "--name", "x3", "--max-instances", "0"])
        .expect_code(2)
        .stderr_has(&["--max-instances 0"]);
    bs(&ws, &["compute", "create", "--name", "cpu-here"]).expect_code(2).stderr_has(&["already exists"]);
    // A deployment names a compute that exists, and asks no more processes than it allows.
    bs(&ws, &["model", "create", "-n", "digits", "-p", &model("digits_mlp.onnx")]).expect_code(0);
    bs(&ws, &["batch-endpoint", "create", "-n", "digits-ep"]).expect_code(0);
    let dep = |name: &str, compute: &str, n: usize| {
        let y = format!(
            "name: {name}\nendpoint_name: digits-ep\nmodel: azureml:digits:1\ncompute: {compute}\nresources:\n  instance_count: {n}\n"
        );
        std::fs::write(ws.join("d.yml"), y).unwrap();
        bs(&ws, &["batch-deployment", "create", "-f", "d.yml"])
    };
    // Azure's files name their cluster: without it here, the jobs run in the invoking process.
    dep("d0", "azureml:nowhere", 1)
        .expect_code(0)
        .stderr_has(&["compute nowhere is not in this workspace", "compute create"]);
    dep("d1", "azureml:cpu-here", 3).expect_code(2).stderr_has(&["instance_count", "max_instances 2"]);
    let created = dep("d1", "azureml:cpu-here", 2);
    created.expect_code(0);
    assert!(!created.stderr.contains("compute` means nothing"), "{}", created.stderr);
    let d = json(&ws, &["batch-deployment", "show", "-n", "d1", "--endpoint-name", "digits-ep"]);
    assert_eq!(d["compute"], "cpu-here");
    assert_eq!(d["instance_count"], 2);
    // An invoke may not ask for more either.
    let on_d1 = ["batch-endpoint", "invoke", "-n", "digits-ep", "-d", "d1", "-i", &data("digits")];
    bs(&ws, &[&on_d1[..], &["--instance-count", "5"]].concat()).expect_code(2).stderr_has(&["max_instances 2"]);
    // In use: not deleted; once free, deleted.
    bs(&ws, &["compute", "delete", "-n", "cpu-here"]).expect_code(2).stderr_has(&["in use", "digits-ep/d1"]);
    // Once created, the compute a deployment named is used.
    assert_eq!(
        json(&ws, &["batch-deployment", "show", "-n", "d0", "--endpoint-name", "digits-ep"])["compute"],
        "nowhere"
    );
    bs(&ws, &["compute", "delete", "-n", "from-file"]).expect_code(0);
    bs(&ws, &["compute", "show", "-n", "from-file"]).expect_code(2).stderr_has(&["not found"]);
}

#[test]
fn a_deployment_on_local_compute_runs_its_job_in_four_processes_as_one_would() {
    let (tmp, ws) = workspace();
    digits_on_compute(&ws, "digits_mlp.onnx", 4);
    let reference = digits_reference(tmp.path());
    let d = data("digits");
    // Store requests delayed, so that the job lasts long enough for every process to take part.
    let mut cmd =
        bs_cmd(&ws, &["batch-endpoint", "invoke", "-n", "digits-ep", "-i", &d, "--job-name", "wide", "-o", "json"]);
    cmd.env("BATCHSCORE_TEST_STORE_LATENCY", "20ms");
    let run = run_command(cmd);
    run.expect_code(0).no_panic().stderr_has(&["4 process(es) on compute here", "job wide: Completed"]);
    let job: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(job["status"], "Completed", "{job}");
    assert_eq!(job["launch"]["pids"].as_array().unwrap().len(), 4, "{job}");
    assert_eq!(job["counts"]["rows_scored"], 300);
    for i in 0..4 {
        assert!(ws.join(format!("jobs/wide/worker-{i}.log")).exists(), "worker {i}'s log");
    }
    let out = score_dir(&ws, "wide");
    assert_same_predictions(&out.join("predictions.csv"), &reference.join("predictions.csv"));
    let report = job_result(&out);
    let by_process = report["processes"].as_object().unwrap();
    assert!(by_process.len() >= 2, "the job was shared: {by_process:?}");
    assert_eq!(by_process.values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 100);
    assert!(!out.join("_staging").exists(), "nothing staged is left");
    let events = bs(&ws, &["job", "stream", "-n", "wide"]).stderr;
    assert!(events.contains("instance 3 started") && events.contains("launched 4 process(es)"), "{events}");
}

#[test]
fn job_cancel_stops_every_process_of_a_job_on_local_compute() {
    let (_tmp, ws) = workspace();
    slow_job_on_compute(&ws, "stop-me");
    let asked = Instant::now();
    assert_eq!(json(&ws, &["job", "cancel", "-n", "stop-me"])["status"], "CancelRequested");
    let mut follow = bs_cmd(&ws, &["job", "stream", "-n", "stop-me"]);
    follow.stdout(Stdio::null()).stderr(Stdio::piped());
    let followed = follow.output().unwrap();
    assert_eq!(followed.status.code(), Some(1), "{}", String::from_utf8_lossy(&followed.stderr));
    // Inside the 80 s model call, not after it.
    assert!(asked.elapsed() < Duration::from_secs(70), "{:?}", asked.elapsed());
    let job = json(&ws, &["job", "show", "-n", "stop-me"]);
    assert_eq!(job["status"], "Canceled", "{job}");
    assert!(!score_dir(&ws, "stop-me").join("predictions.csv").exists(), "nothing published");
    let started = Instant::now();
    for pid in job["launch"]["pids"].as_array().unwrap() {
        while alive(pid.as_u64().unwrap()) {
            assert!(started.elapsed() < Duration::from_secs(60), "process {pid} still runs");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn a_job_whose_processes_all_die_is_failed_naming_their_logs() {
    let (_tmp, ws) = workspace();
    slow_job_on_compute(&ws, "doomed");
    bs(&ws, &["job", "cleanup", "-n", "doomed"]).expect_code(2).stderr_has(&["in use", "job cancel"]);
    let job = json(&ws, &["job", "show", "-n", "doomed"]);
    for pid in job["launch"]["pids"].as_array().unwrap() {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    let s = wait_status(&ws, "doomed", &["Failed", "Canceled", "Completed"]);
    assert_eq!(s, "Failed");
    let job = json(&ws, &["job", "show", "-n", "doomed"]);
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("ended without publishing") && error.contains("jobs/doomed"), "{error}");
    // Its staging area is kept for `job resume`, until `job cleanup` removes it.
    assert!(score_dir(&ws, "doomed").join("_staging/doomed/plan.json").exists());
    let cleaned = json(&ws, &["job", "cleanup", "-n", "doomed"]);
    assert_eq!(cleaned[0]["job"], "doomed", "{cleaned}");
    assert_eq!(cleaned[0]["action"], "removed", "{cleaned}");
    assert!(!score_dir(&ws, "doomed").join("_staging").exists());
}

#[test]
fn a_rest_invoke_of_a_deployment_on_local_compute_launches_its_processes() {
    use common::serve::{Serve, invoke_body, token, wait_for};
    let (_tmp, ws) = workspace();
    digits_on_compute(&ws, "digits_mlp.onnx", 3);
    let admin = token(&ws, "ops", "admin");
    let s = Serve::start(&ws, &[]);
    let (st, _, job) =
        s.call("POST", "/batchEndpoints/digits-ep/jobs", Some(&admin), Some(&invoke_body(&data("digits"))));
    assert_eq!(st, 202, "{job}");
    let name = job["name"].as_str().unwrap().to_string();
    let done = wait_for(&s, &format!("/batchEndpoints/digits-ep/jobs/{name}"), &admin);
    assert_eq!(done["properties"]["status"], "Completed", "{done}");
    assert_eq!(done["properties"]["counts"]["rows_scored"], 300, "{done}");
    s.stop();
    let record = json(&ws, &["job", "show", "-n", &name]);
    assert_eq!(record["launch"]["pids"].as_array().unwrap().len(), 3, "{record}");
    assert_eq!(job_result(&score_dir(&ws, &name))["counts"]["mini_batches_run"], 100);
}

#[test]
fn a_job_whose_processes_were_all_killed_goes_on_with_job_resume() {
    let (tmp, ws) = workspace();
    digits_on_compute(&ws, "digits_mlp.onnx", 3);
    let d = data("digits");
    let reference = digits_reference(tmp.path());
    let mut cmd =
        bs_cmd(&ws, &["batch-endpoint", "invoke", "-n", "digits-ep", "-i", &d, "--job-name", "again", "--no-wait"]);
    cmd.env("BATCHSCORE_TEST_STORE_LATENCY", "50ms");
    run_command(cmd).expect_code(0);
    let started = Instant::now();
    while json(&ws, &["job", "show", "-n", "again"])["progress"]["mini_batches_done"].as_u64().unwrap_or(0) < 5 {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in json(&ws, &["job", "show", "-n", "again"])["launch"]["pids"].as_array().unwrap() {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    assert_eq!(wait_status(&ws, "again", &["Failed", "Completed"]), "Failed");
    // It goes on in this process; the dead processes' record does not make it look dead.
    let run = bs(&ws, &["job", "resume", "-n", "again", "-o", "json"]);
    run.expect_code(0).no_panic();
    let job: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(job["status"], "Completed", "{job}");
    assert!(job.get("launch").is_none(), "{job}");
    let out = score_dir(&ws, "again");
    assert_same_predictions(&out.join("predictions.csv"), &reference.join("predictions.csv"));
    assert!(job_result(&out)["counts"]["mini_batches_resumed"].as_u64().unwrap() >= 5);
}

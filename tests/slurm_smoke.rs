//! The Slurm harness (tests/common/servers.rs, `Slurm`) against a real single-node Slurm: an
//! array job runs every task with its `SLURM_ARRAY_TASK_ID`, and `scancel` stops a running array
//! (its processes included). Skips, saying why, where Slurm cannot run (not root, not installed:
//! `scripts/test-servers.sh` installs Debian's slurm-wlm and munge as root).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::servers::{Slurm, process_alive};

/// How long the jobs here may take (seconds on an idle machine; generous for a loaded CI one).
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// `sbatch --parsable args...` run in `dir`; the job id.
fn sbatch(slurm: &Slurm, dir: &Path, args: &[&str]) -> String {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .envs(slurm.env())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run sbatch");
    assert!(
        out.status.success(),
        "sbatch {args:?} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        slurm.log_tail()
    );
    // --parsable: "<id>" or "<id>;<cluster>".
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    assert!(!id.is_empty() && id.chars().all(|c| c.is_ascii_digit()), "sbatch printed {text:?}");
    id
}

/// Polls `done` every 200 ms until it is true; panics after `timeout` with `what` and the logs.
fn wait_until(slurm: &Slurm, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "{what}: not within {timeout:?}\n{}", slurm.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    started.elapsed()
}

/// `scontrol show job <id>`'s `JobState=` values, one per task.
fn job_states(slurm: &Slurm, id: &str) -> Vec<String> {
    let out = Command::new("scontrol")
        .args(["show", "job", id])
        .envs(slurm.env())
        .stdin(Stdio::null())
        .output()
        .expect("run scontrol");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|kv| kv.strip_prefix("JobState="))
        .map(str::to_string)
        .collect()
}

#[test]
fn array_job_runs_every_task_and_scancel_stops_a_running_array() {
    if let Err(why) = Slurm::available() {
        eprintln!("skipped: Slurm cannot run here: {why}");
        return;
    }
    let started = Instant::now();
    let slurm = Slurm::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display().to_string();

    // An array of 4: every task writes its index.
    let script = dir.path().join("task.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$SLURM_ARRAY_TASK_ID\" > {d}/task-$SLURM_ARRAY_TASK_ID.txt\n"))
        .unwrap();
    let id = sbatch(&slurm, dir.path(), &["--array=0-3", &format!("--output={d}/out-%a.log"), "task.sh"]);
    let took = wait_until(&slurm, &format!("array job {id} to finish"), JOB_TIMEOUT, || slurm.squeue(&id).is_empty());
    eprintln!("array job {id} (4 tasks) done in {took:.1?}");
    for task in 0..4 {
        let path = dir.path().join(format!("task-{task}.txt"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; job states {:?}\n{}", path.display(), job_states(&slurm, &id), slurm.log_tail())
        });
        assert_eq!(text.trim(), task.to_string(), "{}", path.display());
        assert!(dir.path().join(format!("out-{task}.log")).exists(), "out-{task}.log");
    }
    let states = job_states(&slurm, &id);
    assert_eq!(states, vec!["COMPLETED"; 4], "scontrol show job {id}");

    // An array of 2 that sleeps: cancelled once a task runs.
    std::fs::write(
        dir.path().join("sleep.sh"),
        format!("#!/bin/sh\necho $$ > {d}/pid-$SLURM_ARRAY_TASK_ID\nexec sleep 300\n"),
    )
    .unwrap();
    let id = sbatch(&slurm, dir.path(), &["--array=0-1", &format!("--output={d}/sleep-%a.log"), "sleep.sh"]);
    let took = wait_until(&slurm, &format!("a task of {id} to run"), JOB_TIMEOUT, || {
        slurm.squeue(&id).lines().any(|l| l.ends_with(" RUNNING"))
    });
    eprintln!("sleep array {id} running after {took:.1?}: {}", slurm.squeue(&id));
    // The running tasks' processes (a task is RUNNING a moment before its script starts).
    let mut pids = Vec::new();
    wait_until(&slurm, "a running task's pid file", JOB_TIMEOUT, || {
        pids = (0..2)
            .filter_map(|t| std::fs::read_to_string(dir.path().join(format!("pid-{t}"))).ok())
            .filter_map(|s| s.trim().parse::<u32>().ok())
            .collect();
        !pids.is_empty()
    });
    let out = Command::new("scancel").arg(&id).envs(slurm.env()).stdin(Stdio::null()).output().expect("run scancel");
    assert!(out.status.success(), "scancel {id}: {}", String::from_utf8_lossy(&out.stderr));
    let took = wait_until(&slurm, &format!("job {id} to leave squeue after scancel"), JOB_TIMEOUT, || {
        slurm.squeue(&id).is_empty()
    });
    eprintln!("sleep array {id} gone {took:.1?} after scancel");
    wait_until(&slurm, &format!("the processes of {id} ({pids:?}) to end"), JOB_TIMEOUT, || {
        !pids.iter().any(|&p| process_alive(p))
    });
    let states = job_states(&slurm, &id);
    assert!(!states.is_empty() && states.iter().all(|s| s == "CANCELLED"), "scontrol show job {id}: {states:?}");

    let stopping = Instant::now();
    drop(slurm);
    eprintln!("Slurm stopped in {:.1?}; the whole test took {:.1?}", stopping.elapsed(), started.elapsed());
}

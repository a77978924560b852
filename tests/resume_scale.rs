//! Resume and scale-out under faults: jobs killed with SIGKILL at random moments and resumed,
//! four processes sharing one job (on a local folder and on S3, moto) with one of them killed and
//! replaced as a scheduler would, one paused past its lease, all of them killed, and plans that
//! changed. Every trial checks the output against an uninterrupted single-process run: every
//! input row exactly once, in order, the same predictions (1e-6), counts that add up, no
//! staging left, and that no partial predictions file was ever visible at the output name.
//!
//! Store requests are delayed (`BATCHSCORE_TEST_STORE_LATENCY`) so that a job runs long enough
//! to be interrupted anywhere: while it plans, claims, scores, writes parts or assembles.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::servers::Moto;
use common::*;

/// Three digits per mini-batch: 100 mini-batches.
fn job_args(out: &str) -> Vec<String> {
    let (m, i) = (model("digits_mlp.onnx"), data("digits"));
    ["--model", &m, "--input", &i, "--output", out, "--mini-batch-size", "3", "--max-concurrency", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn spawn(dir: &Path, args: &[String], extra: &[&str], latency: &str) -> Child {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    let mut cmd = score_cmd(dir, &all);
    cmd.env("BATCHSCORE_TEST_STORE_LATENCY", latency).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("start batchscore")
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A pseudo-random number in `0..n`, different per call (no dependency for it).
fn random(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish() % n.max(1)
}

fn kill(child: &mut Child, signal: &str) {
    let ok = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success();
    assert!(ok || signal != "-KILL", "kill {signal}");
}

/// The uninterrupted single-process run every trial is compared with.
fn reference(dir: &Path) -> PathBuf {
    let out = dir.join("reference");
    let run = run_command({
        let args = job_args(&out.display().to_string());
        score_cmd(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
    });
    run.expect_code(0);
    out
}

/// Watches `out/predictions.csv` until stopped: every time it is there, it must already be
/// the whole file (publication is create-only and atomic).
struct Watcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Vec<u8>>>,
}

impl Watcher {
    fn start(out: &Path) -> Watcher {
        let (stop, file) = (Arc::new(AtomicBool::new(false)), out.join("predictions.csv"));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(bytes) = std::fs::read(&file)
                    && seen.last() != Some(&bytes)
                {
                    seen.push(bytes);
                }
                std::thread::sleep(Duration::from_millis(3));
            }
            seen
        });
        Watcher { stop, thread }
    }

    /// Everything seen at the output name was the final file.
    fn check(self, want: &[u8]) {
        self.stop.store(true, Ordering::Relaxed);
        for seen in self.thread.join().unwrap() {
            assert!(seen == want, "a partial or different predictions file was visible: {} bytes", seen.len());
        }
    }
}

/// The output equals the reference: the same rows in the same order, predictions within 1e-6,
/// counts that add up, and nothing left in `_staging/`.
fn check_output(out: &Path, reference: &Path) {
    let (head, rows) = read_csv(&out.join("predictions.csv"));
    let (want_head, want) = read_csv(&reference.join("predictions.csv"));
    assert_eq!(head, want_head);
    assert_eq!(rows.len(), want.len(), "every input row once");
    for (i, (got, want)) in rows.iter().zip(&want).enumerate() {
        assert_eq!(got[0], want[0], "row {i}: the same file in the same place");
        for (g, w) in got.iter().zip(want).skip(1) {
            let tol = Tol { abs: 1e-6, rel: 1e-6 };
            if let Some(d) = diff(&cell_value(g), &cell_value(w), tol, &format!("row {i}")) {
                panic!("{d}");
            }
        }
    }
    let jr = job_result(out);
    assert_eq!(jr["status"], "Completed", "{jr}");
    let c = &jr["counts"];
    assert_eq!(c["rows_scored"], 300);
    assert_eq!(c["files_scored"], 300);
    assert_eq!(c["mini_batches_run"], 100);
    assert_eq!(c["mini_batches_total"], 100);
    let by_process: u64 = jr["processes"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(by_process, 100, "each mini-batch scored once: {}", jr["processes"]);
    let (_, mbs) = mini_batches(out);
    assert_eq!(mbs.len(), 100);
    assert!(mbs.iter().enumerate().all(|(i, m)| m["id"] == i.to_string() && m["status"] == "completed"));
    let left: Vec<_> = snapshot(&out.join("_staging")).into_keys().collect();
    assert!(!out.join("_staging").exists(), "staging removed: {left:?}");
}

/// Mini-batches with a part in the output's staging areas (not the temporary files of writes
/// that were killed): a part is `<mb>.part`, or `<first>-<last>.part` for a run of them.
fn parts_in(out: &Path) -> usize {
    let Ok(jobs) = std::fs::read_dir(out.join("_staging")) else { return 0 };
    let parts = jobs.flatten().filter_map(|j| std::fs::read_dir(j.path().join("parts")).ok());
    let names = parts.flat_map(|d| d.flatten()).map(|e| e.file_name().to_string_lossy().into_owned());
    names.filter_map(|n| batchscore::engine::state::part_range(&n)).map(|(first, last)| last - first + 1).sum()
}

#[test]
fn a_job_killed_at_any_moment_resumes_and_scores_only_what_is_missing() {
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let want = std::fs::read(reference.join("predictions.csv")).unwrap();
    for trial in 0..5 {
        let out = tmp.path().join(format!("out-{trial}"));
        let args = job_args(&out.display().to_string());
        let watcher = Watcher::start(&out);
        let mut child = spawn(tmp.path(), &args, &[], "20ms");
        std::thread::sleep(Duration::from_millis(200 + random(1200)));
        kill(&mut child, "-KILL");
        let _ = child.wait();
        let scored = parts_in(&out);
        let (code, stderr) = finish(spawn(tmp.path(), &args, &["--resume"], "0ms"));
        assert_eq!(code, Some(0), "trial {trial}: {stderr}");
        watcher.check(&want);
        check_output(&out, &reference);
        let jr = job_result(&out);
        if jr["processes"].as_object().unwrap().len() == 2 {
            // The killed run published nothing (it was killed before its end): the resumed run
            // scored only the mini-batches without a part.
            assert_eq!(jr["counts"]["mini_batches_resumed"], scored as u64, "trial {trial}");
        }
    }
}

#[test]
fn a_resumed_plan_that_differs_is_refused_naming_what_differs() {
    let tmp = tempdir();
    let input = tmp.path().join("digits");
    std::fs::create_dir(&input).unwrap();
    for n in 0..60 {
        let name = format!("digit-{n:04}.png");
        std::fs::copy(data(&format!("digits/{name}")), input.join(name)).unwrap();
    }
    let out = tmp.path().join("out").display().to_string();
    let m = model("digits_mlp.onnx");
    let args = |extra: &[&str]| {
        let mut a = vec!["--model", &m, "--input", input.to_str().unwrap(), "--output", &out];
        if !extra.contains(&"--mini-batch-size") {
            a.extend(["--mini-batch-size", "2"]);
        }
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    // A job that stopped at its error threshold: one file that is not an image.
    std::fs::write(input.join("digit-0001.png"), b"not a png").unwrap();
    let planned = std::fs::metadata(input.join("digit-0002.png")).unwrap().modified().unwrap();
    let (code, stderr) = finish(spawn(tmp.path(), &args(&["--error-threshold", "0"]), &[], "0ms"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    // Plain rerun: refused, pointing at --resume.
    let (code, stderr) = finish(spawn(tmp.path(), &args(&[]), &[], "0ms"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    // Another mini-batch size, and a changed input file: both named.
    let (code, stderr) = finish(spawn(tmp.path(), &args(&["--mini-batch-size", "3"]), &["--resume"], "0ms"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("mini_batch_size: 2 then, 3 now"), "{stderr}");
    std::fs::write(input.join("digit-0002.png"), std::fs::read(input.join("digit-0003.png")).unwrap()).unwrap();
    let (code, stderr) = finish(spawn(tmp.path(), &args(&[]), &["--resume"], "0ms"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("input file digit-0002.png"), "{stderr}");
    // Back as it was, with a higher threshold (a setting that may change): the job goes on.
    let changed = input.join("digit-0002.png");
    std::fs::copy(data("digits/digit-0002.png"), &changed).unwrap();
    std::fs::File::options().write(true).open(&changed).unwrap().set_modified(planned).unwrap();
    let (code, stderr) = finish(spawn(tmp.path(), &args(&["--error-threshold", "5"]), &["--resume"], "0ms"));
    let out = Path::new(&out);
    if code == Some(2) && stderr.contains("digit-0002.png changed") {
        // The copy's time could not be set back exactly on this file system: nothing to test.
        return;
    }
    assert_eq!(code, Some(0), "{stderr}");
    let jr = job_result(out);
    assert_eq!(jr["status"], "Completed");
    assert_eq!(jr["counts"]["items_failed"], 1);
    assert_eq!(jr["counts"]["rows_scored"], 59, "{}", jr["counts"]);
    assert_eq!(jr["counts"]["mini_batches_run"], 30, "{}", jr["counts"]);
    assert!(jr["counts"]["mini_batches_resumed"].as_u64().unwrap() >= 1, "{}", jr["counts"]);
    let attempts = std::fs::read_dir(out.join("_staging")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(attempts, 0, "the Failed attempt's logs went with the staging area");
    assert_eq!(failures(out).len(), 1, "the failed file is listed once");
}

/// Four processes of one job; `fault` does something to them while they run.
fn four_processes(dir: &Path, out: &str, extra: &[&str], latency: &str) -> Vec<Child> {
    (0..4)
        .map(|i| {
            let index = i.to_string();
            let mut all = vec!["--instance-count", "4", "--instance-index", &index, "--lease-timeout", "2"];
            all.extend_from_slice(extra);
            spawn(dir, &job_args(out), &all, latency)
        })
        .collect()
}

fn wait_all(children: Vec<Child>) {
    for (i, c) in children.into_iter().enumerate() {
        let (code, stderr) = finish(c);
        assert_eq!(code, Some(0), "process {i}: {stderr}");
    }
}

#[test]
fn four_processes_share_a_job_and_survive_kill_9_of_any_of_them() {
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let want = std::fs::read(reference.join("predictions.csv")).unwrap();
    for trial in 0..20 {
        let out = tmp.path().join(format!("out-{trial}"));
        let o = out.display().to_string();
        let watcher = Watcher::start(&out);
        let mut procs = four_processes(tmp.path(), &o, &[], "10ms");
        std::thread::sleep(Duration::from_millis(100 + random(2000)));
        let victim = random(4) as usize;
        kill(&mut procs[victim], "-KILL");
        let _ = procs.remove(victim).wait();
        // The scheduler starts a replacement with the same index (it may find the job done).
        let index = victim.to_string();
        let extra = ["--instance-count", "4", "--instance-index", &index, "--lease-timeout", "2"];
        procs.push(spawn(tmp.path(), &job_args(&o), &extra, "10ms"));
        wait_all(procs);
        watcher.check(&want);
        check_output(&out, &reference);
    }
}

#[test]
fn a_paused_process_loses_its_leases_and_its_late_part_is_not_a_second_one() {
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let out = tmp.path().join("out");
    let o = out.display().to_string();
    let mut procs = four_processes(tmp.path(), &o, &[], "20ms");
    std::thread::sleep(Duration::from_millis(700));
    kill(&mut procs[1], "-STOP");
    let mut paused = procs.remove(1);
    // The others take its mini-batches once its lease (2 s) runs out, and finish the job.
    wait_all(procs);
    check_output(&out, &reference);
    kill(&mut paused, "-CONT");
    let (code, stderr) = finish(paused);
    assert_eq!(code, Some(0), "{stderr}");
    // What it wrote late went with it: the job's output is as published, nothing added.
    check_output(&out, &reference);
    assert_eq!(names(&out), ["logs", "predictions.csv"]);
}

#[test]
fn every_process_killed_then_resumed_by_one() {
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let out = tmp.path().join("out");
    let o = out.display().to_string();
    let mut procs = four_processes(tmp.path(), &o, &[], "10ms");
    std::thread::sleep(Duration::from_millis(800 + random(800)));
    for p in &mut procs {
        kill(p, "-KILL");
    }
    for mut p in procs {
        let _ = p.wait();
    }
    let started = Instant::now();
    let (code, stderr) = finish(spawn(tmp.path(), &job_args(&o), &["--resume"], "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(120));
    check_output(&out, &reference);
    // Starting one more process of the finished job is a no-op that succeeds.
    let extra = ["--instance-count", "4", "--instance-index", "2"];
    let (code, stderr) = finish(spawn(tmp.path(), &job_args(&o), &extra, "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("already completed"), "{stderr}");
}

#[test]
fn a_completed_jobs_leftover_staging_is_swept_by_the_next_process() {
    // The publisher of a job can be killed after it wrote the report and before it removed the
    // staging area: a process started later finds the job done and removes what is left.
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let out = tmp.path().join("out");
    let o = out.display().to_string();
    let (code, stderr) = finish(spawn(tmp.path(), &job_args(&o), &["--resume"], "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    let job = job_result(&out)["job_id"].as_str().unwrap().to_string();
    let lease = out.join(format!("_staging/{job}/leases/00000007"));
    std::fs::create_dir_all(&lease).unwrap();
    std::fs::write(lease.join("0000"), b"{}").unwrap();
    let extra = ["--instance-count", "4", "--instance-index", "1"];
    let (code, stderr) = finish(spawn(tmp.path(), &job_args(&o), &extra, "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("already completed"), "{stderr}");
    assert!(stderr.contains("removed what was left"), "{stderr}");
    check_output(&out, &reference);
}

/// The part objects of the output's one staging area: the first and last mini-batch of each.
fn part_objects(out: &Path) -> Vec<(usize, usize)> {
    let jobs: Vec<_> = std::fs::read_dir(out.join("_staging")).unwrap().flatten().collect();
    assert_eq!(jobs.len(), 1, "one staging area");
    let names = std::fs::read_dir(jobs[0].path().join("parts")).unwrap().flatten();
    let mut objects: Vec<_> =
        names.filter_map(|e| batchscore::engine::state::part_range(&e.file_name().to_string_lossy())).collect();
    objects.sort();
    objects
}

#[test]
fn a_job_alone_writes_runs_of_mini_batches_as_one_part_and_resumes_from_them() {
    // 300 digits and one broken file at the end: 101 mini-batches, the last one failing. With
    // error_threshold 0 the job fails when it reaches it and keeps its parts; resumed with a
    // threshold that allows it, it publishes from those parts without scoring anything again.
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let input = tmp.path().join("digits");
    std::fs::create_dir(&input).unwrap();
    for e in std::fs::read_dir(data("digits")).unwrap().flatten() {
        std::fs::copy(e.path(), input.join(e.file_name())).unwrap();
    }
    std::fs::write(input.join("zz-broken.png"), b"not a png").unwrap();
    let out = tmp.path().join("out");
    let mut args = job_args(&out.display().to_string());
    args[3] = input.display().to_string();
    let (code, stderr) = finish(spawn(tmp.path(), &args, &["--error-threshold", "0"], "0ms"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("error_threshold"), "{stderr}");
    let objects = part_objects(&out);
    let covered: Vec<usize> = objects.iter().flat_map(|&(a, b)| a..=b).collect();
    assert_eq!(covered, (0..101).collect::<Vec<_>>(), "every mini-batch once: {objects:?}");
    assert!(objects.len() < 101 / 2, "runs of mini-batches in one part each: {objects:?}");
    let (code, stderr) = finish(spawn(tmp.path(), &args, &["--error-threshold", "1", "--resume"], "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    let jr = job_result(&out);
    let c = &jr["counts"];
    assert_eq!((c["mini_batches_resumed"].as_u64(), c["mini_batches_run"].as_u64()), (Some(101), Some(101)), "{c}");
    assert_eq!((c["files_scored"].as_u64(), c["files_failed"].as_u64()), (Some(300), Some(1)), "{c}");
    let got = std::fs::read(out.join("predictions.csv")).unwrap();
    assert!(got == std::fs::read(reference.join("predictions.csv")).unwrap(), "the broken file adds no row");
    let (_, mbs) = mini_batches(&out);
    assert_eq!(mbs.len(), 101);
    assert!(mbs.iter().enumerate().all(|(i, m)| m["id"] == i.to_string()), "in order");
    assert_eq!(mbs[100]["failed_items"], "1");
    assert!(!out.join("_staging").exists());
}

#[test]
fn job_cleanup_lists_what_a_killed_job_left_and_removes_it() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let o = out.display().to_string();
    let mut child = spawn(tmp.path(), &job_args(&o), &[], "20ms");
    while parts_in(&out) == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(&mut child, "-KILL");
    let _ = child.wait();
    let scored = parts_in(&out);
    let cleanup = |extra: &[&str]| {
        let mut args = vec!["job", "cleanup", "--output-path", &o, "-o", "json"];
        args.extend_from_slice(extra);
        let run = run_command({
            let mut c = bin_cmd();
            c.current_dir(tmp.path()).args(&args);
            c
        });
        run.expect_code(0).no_panic();
        (serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap(), run.stderr)
    };
    let (listed, stderr) = cleanup(&["--dry-run"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["state"], "abandoned", "a killed process on this machine is known dead");
    assert_eq!(listed[0]["parts"], scored as u64);
    assert_eq!(listed[0]["action"], "would remove");
    assert!(stderr.contains("would remove job"), "{stderr}");
    assert_eq!(parts_in(&out), scored, "a dry run removes nothing");
    let (removed, _) = cleanup(&[]);
    assert_eq!(removed[0]["action"], "removed");
    assert!(!out.join("_staging").exists());
    // The output is free again: a plain run scores it from the start.
    let (code, stderr) = finish(spawn(tmp.path(), &job_args(&o), &[], "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(job_result(&out)["counts"]["mini_batches_resumed"], 0);
}

#[test]
fn a_parquet_job_of_big_parts_killed_and_resumed_equals_one_run() {
    // Parts of 12,000 rows are encoded as Parquet where they are scored and their row groups
    // copied into the output; the result must be the file one uninterrupted run writes.
    let tmp = tempdir();
    let input = tmp.path().join("big");
    std::fs::create_dir(&input).unwrap();
    let rows: Vec<String> =
        std::fs::read_to_string(data("iris/part-0.csv")).unwrap().lines().skip(1).map(String::from).collect();
    for f in 0..8 {
        let mut text = String::from("id,sepal_length,sepal_width,petal_length,petal_width\n");
        for i in 0..12_000 {
            let r = &rows[i % rows.len()];
            text.push_str(&format!("{f}-{i}{}\n", &r[r.find(',').unwrap()..]));
        }
        std::fs::write(input.join(format!("f{f}.csv")), text).unwrap();
    }
    let args = |out: &Path| -> Vec<String> {
        let (m, i, o) = (model("iris_zipmap.onnx"), input.display().to_string(), out.display().to_string());
        ["--model", &m, "--input", &i, "--output", &o, "--mini-batch-size", "1", "--passthrough", "id"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--output-file-name".into(), "p.parquet".into()])
            .collect()
    };
    let whole = tmp.path().join("whole");
    let (code, stderr) = finish(spawn(tmp.path(), &args(&whole), &[], "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    let out = tmp.path().join("resumed");
    let mut child = spawn(tmp.path(), &args(&out), &[], "30ms");
    let started = Instant::now();
    while parts_in(&out) < 3 && child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&mut child, "-KILL");
    let _ = child.wait();
    let (code, stderr) = finish(spawn(tmp.path(), &args(&out), &["--resume"], "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    let got = read_parquet(&out.join("p.parquet"));
    let want = read_parquet(&whole.join("p.parquet"));
    let concat = |b: &[arrow::array::RecordBatch]| arrow::compute::concat_batches(&b[0].schema(), b).unwrap();
    let (got, want) = (concat(&got), concat(&want));
    assert_eq!(got.num_rows(), 96_000);
    assert_eq!(got, want, "the same rows, types and values as one run");
}

#[test]
fn a_job_killed_before_it_planned_is_no_obstacle_to_resume() {
    // Killed while it listed the inputs or loaded the model: its marker is there, its plan not.
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let out = tmp.path().join("out");
    let owners = out.join("_staging/20260101T000000Z-deadbeef/owners");
    std::fs::create_dir_all(&owners).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let marker = format!(
        r#"{{"job_id":"20260101T000000Z-deadbeef","host":"{host}","pid":4194303,"started_at":"2026-01-01T00:00:00Z"}}"#
    );
    std::fs::write(owners.join("vm-4194303-aaaaaa.json"), marker).unwrap();
    // Two more, killed while they wrote their markers: one left its owners folder empty, one
    // a marker cut short.
    std::fs::create_dir_all(out.join("_staging/20260101T000001Z-deadbee1/owners")).unwrap();
    let cut = out.join("_staging/20260101T000002Z-deadbee2/owners");
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::write(cut.join("vm-4194302-bbbbbb.json"), r#"{"job_id":"2026"#).unwrap();
    let o = out.display().to_string();
    let (code, stderr) = finish(spawn(tmp.path(), &job_args(&o), &["--resume"], "0ms"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr.matches("killed before it planned").count(), 3, "{stderr}");
    check_output(&out, &reference);
}

#[test]
fn four_processes_share_a_job_on_s3_and_survive_kill_9() {
    if !Moto::program().exists() {
        eprintln!("skipped: moto is not installed (scripts/test-servers.sh)");
        return;
    }
    let moto = Moto::start();
    moto.create_bucket("jobs");
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let opts: Vec<String> = moto.storage_options().iter().map(|(k, v)| format!("{k}={v}")).collect();
    for trial in 0..3 {
        let url = moto.url("jobs", &format!("out-{trial}"));
        // moto on two busy cores can take a second to answer: a longer lease.
        let mut extra = vec!["--instance-count".to_string(), "4".into(), "--lease-timeout".into(), "5".into()];
        for o in &opts {
            extra.push("--storage-option".into());
            extra.push(o.clone());
        }
        let start = |i: usize| {
            let mut e: Vec<&str> = extra.iter().map(String::as_str).collect();
            let index = i.to_string();
            e.extend(["--instance-index", &index]);
            spawn(tmp.path(), &job_args(&url), &e, "0ms")
        };
        let mut procs: Vec<Child> = (0..4).map(start).collect();
        std::thread::sleep(Duration::from_millis(500 + random(2500)));
        let victim = random(4) as usize;
        kill(&mut procs[victim], "-KILL");
        let _ = procs.remove(victim).wait();
        procs.push(start(victim));
        wait_all(procs);
        // Read the published output back into a local folder and check it there.
        let local = tmp.path().join(format!("s3-out-{trial}"));
        let store = moto.store("jobs");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listed: Vec<object_store::ObjectMeta> = rt.block_on(async {
            use futures::TryStreamExt;
            store.list(Some(&object_store::path::Path::from(format!("out-{trial}")))).try_collect().await.unwrap()
        });
        let names: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
        assert!(names.iter().all(|n| !n.contains("_staging")), "staging removed: {names:?}");
        for meta in listed {
            use object_store::ObjectStoreExt;
            let bytes = rt.block_on(async { store.get(&meta.location).await.unwrap().bytes().await.unwrap() });
            let rel = meta.location.to_string().trim_start_matches(&format!("out-{trial}/")).to_string();
            std::fs::create_dir_all(local.join(&rel).parent().unwrap()).unwrap();
            std::fs::write(local.join(&rel), bytes).unwrap();
        }
        check_output(&local, &reference);
    }
}

#[test]
fn an_endpoint_job_killed_mid_way_goes_on_with_job_resume() {
    use common::catalog::{bs, bs_cmd, json};
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    bs(&ws, &["workspace", "create", "--name", "resume-ws"]).expect_code(0);
    bs(&ws, &["model", "create", "--name", "digits", "--path", &model("digits_mlp.onnx")]).expect_code(0);
    bs(&ws, &["batch-endpoint", "create", "--name", "digits-ep"]).expect_code(0);
    let yaml = "name: blue\nendpoint_name: digits-ep\nmodel: azureml:digits:1\nmini_batch_size: 3\nmax_concurrency_per_instance: 1\n";
    std::fs::write(ws.join("blue.yml"), yaml).unwrap();
    bs(&ws, &["batch-deployment", "create", "--file", "blue.yml"]).expect_code(0);
    let input = data("digits");
    let mut cmd = bs_cmd(&ws, &["batch-endpoint", "invoke", "-n", "digits-ep", "--input", &input, "--job-name", "j1"]);
    cmd.env("BATCHSCORE_TEST_STORE_LATENCY", "20ms").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let out = ws.join(".batchscore/workspaceblobstore/azureml/j1/score");
    let started = Instant::now();
    while parts_in(&out) < 10 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&mut child, "-KILL");
    let _ = child.wait();
    let scored = parts_in(&out) as u64;
    assert!(scored >= 10, "the job was killed while it ran");
    assert_eq!(json(&ws, &["job", "show", "-n", "j1"])["status"], "Failed");
    let run = bs(&ws, &["job", "resume", "-n", "j1"]);
    run.expect_code(0).stderr_has(&["resuming"]);
    let job = json(&ws, &["job", "show", "-n", "j1"]);
    assert_eq!(job["status"], "Completed", "{job}");
    check_output(&out, &reference);
    let resumed = job_result(&out)["counts"]["mini_batches_resumed"].as_u64().unwrap();
    assert!(resumed >= scored, "{resumed} resumed, {scored} scored before the kill");
    bs(&ws, &["job", "resume", "-n", "j1"]).expect_code(2).stderr_has(&["only a Failed or Canceled job"]);
}

#[test]
fn the_index_comes_from_the_schedulers_variables() {
    let tmp = tempdir();
    let reference = reference(tmp.path());
    let out = tmp.path().join("out");
    let o = out.display().to_string();
    let start = |vars: &[(&str, &str)]| {
        let mut all: Vec<String> = job_args(&o);
        all.extend(["--instance-count", "2"].map(String::from));
        let mut cmd = score_cmd(tmp.path(), &all.iter().map(String::as_str).collect::<Vec<_>>());
        for v in ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "AWS_BATCH_JOB_ARRAY_INDEX"] {
            cmd.env_remove(v);
        }
        cmd.envs(vars.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    // Slurm's --array=4-5: task 5 is index 1; Kubernetes gives index 0.
    let a = start(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "4")]);
    let b = start(&[("JOB_COMPLETION_INDEX", "0")]);
    wait_all(vec![a, b]);
    check_output(&out, &reference);
    // An index past --instance-count is a setting error, named.
    let other = tmp.path().join("other").display().to_string();
    let mut all: Vec<String> = job_args(&other);
    all.extend(["--instance-count", "2"].map(String::from));
    let mut cmd = score_cmd(tmp.path(), &all.iter().map(String::as_str).collect::<Vec<_>>());
    cmd.env("AWS_BATCH_JOB_ARRAY_INDEX", "7");
    run_command(cmd).expect_code(2).stderr_has(&["--instance-index 7", "instance_count 2"]);
}

//! Faults around the edges: outputs that cannot be written (a file in the way, no permission, a
//! read-only or full disk), SIGTERM and kill -9 and what they leave, reruns into the output of
//! a failed job, hostile models, models with external weights, typos in deployment files, and
//! records far longer than any real one.
//!
//! The disk tests mount small tmpfs file systems and the permission test drops to `nobody`:
//! both need root (CI runs as root); without it they say so and skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::servers::StaticHttp;
use common::*;

fn iris_args<'a>(m: &'a str, i: &'a str, o: &'a str) -> Vec<&'a str> {
    vec!["--model", m, "--input", i, "--output", o, "--passthrough", "id"]
}

/// Everything under `dir`, relative paths.
fn tree(dir: &Path) -> Vec<String> {
    snapshot(dir).keys().map(|p| p.display().to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Outputs that cannot be written

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs at {} (needs root)", dir.display());
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }

    fn remount_read_only(&self) {
        let s = std::process::Command::new("mount").args(["-o", "remount,ro"]).arg(&self.0).status().unwrap();
        assert!(s.success(), "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_file_in_the_way_is_found_before_any_scoring() {
    let tmp = tempdir();
    std::fs::write(tmp.path().join("taken"), "a file").unwrap();
    let (m, i) = (model("iris_zipmap.onnx"), data("iris"));
    let o = tmp.path().join("taken/out").display().to_string();
    let run = score(tmp.path(), &iris_args(&m, &i, &o));
    run.expect_code(2).no_panic().stderr_has(&["cannot be written", "is a file", "taken"]);
    assert!(!run.stderr.contains("job report"), "{}", run.stderr);
}

#[test]
fn no_permission_is_found_before_any_scoring() {
    if std::process::Command::new("id").arg("-u").output().map(|o| o.stdout != b"0\n").unwrap_or(true) {
        eprintln!("skipped: needs root to run the job as nobody");
        return;
    }
    let tmp = tempfile::Builder::new().prefix("batchscore-perm-").tempdir_in("/tmp").unwrap();
    let locked = tmp.path().join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (m, i, o) = (model("iris_zipmap.onnx"), data("iris"), locked.join("out").display().to_string());
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin()).current_dir(tmp.path());
    cmd.args(["score", "--progress", "off"]).args(iris_args(&m, &i, &o));
    if let Some(lib) = ort_library() {
        cmd.env("ORT_DYLIB_PATH", lib);
    }
    let run = run_command(cmd);
    run.expect_code(2).no_panic().stderr_has(&["permission denied", &locked.display().to_string(), "--output"]);
    assert!(tree(&locked).is_empty());
}

#[test]
fn a_read_only_disk_is_found_before_any_scoring() {
    let tmp = tempdir();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("ro"), "1m") else { return };
    fs.remount_read_only();
    let (m, i, o) = (model("iris_zipmap.onnx"), data("iris"), tmp.path().join("ro/out").display().to_string());
    score(tmp.path(), &iris_args(&m, &i, &o)).expect_code(2).no_panic().stderr_has(&["read-only", "--output"]);
}

#[test]
fn a_full_disk_is_found_before_scoring_or_fails_the_job_with_nothing_published() {
    let tmp = tempdir();
    let Some(_fs) = Tmpfs::mount(&tmp.path().join("full"), "64k") else { return };
    // Full before the job: the probe finds it.
    std::fs::write(tmp.path().join("full/ballast"), vec![0u8; 64 * 1024]).unwrap_or_default();
    let _ = std::fs::write(tmp.path().join("full/more"), vec![0u8; 4096]);
    let (m, i) = (model("digits_mlp.onnx"), data("digits"));
    let o = tmp.path().join("full/out").display().to_string();
    score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o]).expect_code(2).no_panic().stderr_has(&["full"]);
    // Room for the probe but not for the output: the job fails, nothing partial is published,
    // and no report path is printed that does not exist.
    std::fs::remove_file(tmp.path().join("full/ballast")).unwrap();
    let _ = std::fs::remove_file(tmp.path().join("full/more"));
    // 44k free: the job's plan (300 files, about 30k) and marker fit, its parts do not.
    std::fs::write(tmp.path().join("full/ballast"), vec![0u8; 20 * 1024]).unwrap();
    let o = tmp.path().join("full/out2").display().to_string();
    let run = score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--output-file-name", "p.csv"]);
    run.expect_code(1).no_panic().stderr_has(&["full"]);
    let out = tmp.path().join("full/out2");
    assert!(!out.join("p.csv").exists(), "no partial predictions");
    if !out.join("logs/job_result.json").exists() {
        assert!(!run.stderr.contains("job report:"), "a report path that does not exist: {}", run.stderr);
        assert!(run.stderr.contains("could not be written"), "{}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// Signals and leftovers

/// Starts the slow model (an 80 s call) and waits until its model call runs.
fn start_slow(tmp: &Path, out: &Path) -> std::process::Child {
    let (m, i, o) = (model("slow.onnx"), data("broken/tabular/good.csv"), out.display().to_string());
    let mut cmd = score_cmd(tmp, &["--model", &m, "--input", &i, "--output", &o, "--passthrough", "id"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("start batchscore");
    let started = Instant::now();
    while !out.join("_staging").exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    child
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_stops_the_job_like_ctrl_c_and_publishes_the_failed_report() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let child = start_slow(tmp.path(), &out);
    let sent = Instant::now();
    signal(&child, "-TERM");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(sent.elapsed() < Duration::from_secs(40), "the model call was stopped: {:?}", sent.elapsed());
    assert!(stderr.contains("SIGTERM") && stderr.contains("job report:"), "{stderr}");
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Failed");
    assert!(jr["error"].as_str().unwrap().contains("SIGTERM"), "{}", jr["error"]);
    assert!(!out.join("predictions.csv").exists());
    let kept: Vec<_> = std::fs::read_dir(out.join("_staging")).unwrap().collect();
    assert_eq!(kept.len(), 1, "the job's plan and parts are kept for --resume");
}

#[test]
fn a_killed_jobs_leftovers_are_named_and_removable() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let mut child = start_slow(tmp.path(), &out);
    signal(&child, "-KILL");
    child.wait().unwrap();
    assert!(out.join("_staging").exists(), "kill -9 leaves the staging area");
    let (m, i, o) = (model("iris_zipmap.onnx"), data("iris"), out.display().to_string());
    let run = score(tmp.path(), &iris_args(&m, &i, &o));
    run.expect_code(2).no_panic().stderr_has(&["_staging", "did not finish", "--clean-staging"]);
    assert!(!out.join("predictions.csv").exists(), "nothing written beside the leftovers");
    let mut args = iris_args(&m, &i, &o);
    args.push("--clean-staging");
    score(tmp.path(), &args).expect_code(0).no_panic().stderr_has(&["removed the staging files"]);
    assert_eq!(names(&out), ["logs", "predictions.csv"], "the killed job's files are gone");
    assert_eq!(csv_preds(&out.join("predictions.csv")).1.len(), 150);
}

#[test]
fn a_rerun_into_a_failed_jobs_output_says_so() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, o) = (model("iris_zipmap.onnx"), out.display().to_string());
    let bad = data("broken/tabular/not_parquet.parquet");
    score(tmp.path(), &["--model", &m, "--input", &bad, "--output", &o]).expect_code(1);
    let run = score(tmp.path(), &iris_args(&m, &data("iris"), &o));
    run.expect_code(2).no_panic().stderr_has(&["only the logs of job", "Failed", "never published"]);
}

// ---------------------------------------------------------------------------------------------
// Hostile models

#[test]
fn hostile_models_exit_2_naming_the_model_and_the_shape() {
    let tmp = tempdir();
    let cases: &[(&str, &str, &[&str])] = &[
        ("hostile_batch1e9.onnx", "iris", &["hostile_batch1e9.onnx", "\"input\"", "1000000000", "fixed batch"]),
        ("hostile_scalar_out.onnx", "iris", &["hostile_scalar_out.onnx", "scalar", "shape []"]),
        ("hostile_image_huge.onnx", "photos", &["hostile_image_huge.onnx", "\"image\"", "100000"]),
    ];
    for (name, input, needles) in cases {
        let out = tmp.path().join(name);
        let (m, i, o) = (model(name), data(input), out.display().to_string());
        let run = score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o]);
        run.expect_code(2).no_panic().stderr_has(needles);
        assert!(!out.exists(), "{name}: nothing left behind");
    }
    // A model whose output is not the shape it declares: the rows hold what it gives.
    let out = tmp.path().join("lie");
    let (m, i, o) = (model("hostile_shape_lie.onnx"), data("iris"), out.display().to_string());
    score(tmp.path(), &iris_args(&m, &i, &o)).expect_code(0).no_panic();
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(preds[0].cols["output"].as_array().map(Vec::len), Some(4));
}

#[test]
fn a_model_with_external_weights_loads_from_any_folder_and_from_a_store() {
    let tmp = tempdir();
    let want: Vec<RefRow> =
        std::fs::read_to_string(repo().join("models/reference/realworld/external__iris-part-0.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| RefRow {
                file: v["file"].as_str().unwrap().into(),
                row: v["row"].as_u64(),
                outputs: v["outputs"].as_object().unwrap().clone(),
            })
            .collect();
    let i = data("iris/part-0.csv");
    // From a working directory that has nothing to do with the model's.
    let out = tmp.path().join("local");
    let (m, o) = (model("external/model.onnx"), out.display().to_string());
    score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--passthrough", "id"]).expect_code(0).no_panic();
    assert_parity(&csv_preds(&out.join("predictions.csv")).1, &want, TOL);
    assert_eq!(job_result(&out)["model"]["external_data"], serde_json::json!(["weights.bin"]));
    // From an HTTP store: the weights file beside it is downloaded too.
    let http = StaticHttp::start(&repo().join("models/external"));
    let out = tmp.path().join("http");
    let (m, o) = (http.url("model.onnx"), out.display().to_string());
    score(
        tmp.path(),
        &["--model", &m, "--input", &i, "--output", &o, "--passthrough", "id", "--storage-option", "allow_http=true"],
    )
    .expect_code(0)
    .no_panic();
    assert_parity(&csv_preds(&out.join("predictions.csv")).1, &want, TOL);
}

// ---------------------------------------------------------------------------------------------
// Settings and hostile inputs

#[test]
fn a_typo_in_a_deployment_file_suggests_the_key() {
    let tmp = tempdir();
    let yml = tmp.path().join("deployment.yml");
    std::fs::write(&yml, "settings:\n  mini_batch_sise: 5\n  retry_settings:\n    max_retries: 1\n").unwrap();
    let (m, i, o) = (model("iris_zipmap.onnx"), data("iris"), tmp.path().join("out").display().to_string());
    let y = yml.display().to_string();
    score(tmp.path(), &["--config", &y, "--model", &m, "--input", &i, "--output", &o]).expect_code(2).stderr_has(&[
        "settings.mini_batch_sise",
        "did you mean `mini_batch_size`",
        "deployment.yml",
    ]);
    // Azure's own keys that mean nothing here are reported, not refused.
    std::fs::write(&yml, "settings:\n  environment_variables: {A: b}\n  mini_batch_size: 2\n").unwrap();
    score(tmp.path(), &["--config", &y, "--model", &m, "--input", &i, "--output", &o, "--passthrough", "id"])
        .expect_code(0)
        .stderr_has(&["settings.environment_variables", "ignored"]);
}

#[test]
fn a_200_mb_record_fails_alone_in_about_the_time_it_takes_to_read() {
    use std::io::Write;
    let tmp = tempdir();
    let input = tmp.path().join("long.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    writeln!(f, "id,sepal_length,sepal_width,petal_length,petal_width").unwrap();
    writeln!(f, "0,5.1,3.5,1.4,0.2").unwrap();
    write!(f, "1,").unwrap();
    let chunk = vec![b'7'; 1 << 20];
    for _ in 0..200 {
        f.write_all(&chunk).unwrap();
    }
    writeln!(f, ",3.0,1.4,0.2").unwrap();
    writeln!(f, "2,4.7,3.2,1.3,0.2").unwrap();
    drop(f);
    let (m, i, o) =
        (model("iris_zipmap.onnx"), input.display().to_string(), tmp.path().join("out").display().to_string());
    let started = Instant::now();
    let run = score(tmp.path(), &iris_args(&m, &i, &o));
    run.expect_code(0).no_panic();
    let took = started.elapsed();
    eprintln!("a 200 MB record: {took:?}");
    // Generous: reading 200 MB takes a second or two; quadratic behaviour would take hours.
    assert!(took < Duration::from_secs(120), "{took:?}");
    let out = tmp.path().join("out");
    let f = failures(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["row"], 1);
    let e = f[0]["error"].as_str().unwrap();
    assert!(e.contains("max_record_size") && e.len() < 400, "{e}");
    assert_eq!(csv_preds(&out.join("predictions.csv")).1.len(), 2);
}

#[test]
fn a_parquet_footer_claiming_gigabytes_fails_its_file_only() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let good = std::fs::read(data("wine/part-0.parquet")).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 8..n - 4].copy_from_slice(&0xF000_0000u32.to_le_bytes());
    std::fs::write(input.join("a-bad.parquet"), &bad).unwrap();
    std::fs::write(input.join("b-good.parquet"), &good).unwrap();
    let (m, i) = (model("wine_tensor.onnx"), input.display().to_string());
    for (name, extra) in [("whole", vec![]), ("split", vec!["--mini-batch-rows", "30"])] {
        let out = tmp.path().join(name);
        let o = out.display().to_string();
        let mut args =
            vec!["--model", m.as_str(), "--input", i.as_str(), "--output", o.as_str(), "--passthrough", "id"];
        args.extend(extra);
        let started = Instant::now();
        score(tmp.path(), &args).expect_code(0).no_panic();
        assert!(started.elapsed() < Duration::from_secs(60));
        let f = failures(&out);
        assert!(f.iter().all(|x| x["file"] == "a-bad.parquet"), "{f:?}");
        assert!(!f.is_empty());
        assert_eq!(csv_preds(&out.join("predictions.csv")).1.len(), 89, "{name}: the good file is whole");
    }
}

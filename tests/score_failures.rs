//! Failures: existing outputs, corrupt inputs and error_threshold, timeouts, and a missing
//! ONNX Runtime library.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Iris reference outputs by global row id (the `id` column of the sample data).
fn iris_by_id() -> BTreeMap<u64, serde_json::Map<String, Value>> {
    let files = ["part-0.csv", "part-1.csv", "part-2.csv"];
    reference("iris_zipmap__iris.jsonl")
        .into_iter()
        .map(|r| {
            let part = files.iter().position(|f| *f == r.file).expect("a known file") as u64;
            (part * 50 + r.row.expect("tabular"), r.outputs)
        })
        .collect()
}

/// Checks each prediction row (which must carry an `id`) against the iris reference.
#[track_caller]
fn assert_iris_rows(preds: &[Pred]) {
    let by_id = iris_by_id();
    for p in preds {
        let id = p.cols["id"].as_u64().unwrap_or_else(|| panic!("id of {p:?}"));
        for (name, want) in &by_id[&id] {
            if let Some(d) = diff(&p.cols[name], want, TOL, &format!("{} row {:?} (id {id}) {name}", p.file, p.row)) {
                panic!("{d}");
            }
        }
    }
}

/// Runs a model over a folder with extra flags into `<tmp>/out`.
fn run_into(tmp: &Path, model_name: &str, input: &str, extra: &[&str]) -> (std::path::PathBuf, Run) {
    let out = tmp.join("out");
    let (m, o) = (model(model_name), out.display().to_string());
    let mut args = vec!["--model", &m, "--input", input, "--output", &o];
    args.extend_from_slice(extra);
    let run = score(tmp, &args);
    run.no_panic();
    (out, run)
}

/// (file, row) of each failure record.
fn failed_items(out: &Path) -> Vec<(String, Option<u64>, String)> {
    failures(out)
        .into_iter()
        .map(|f| {
            (
                f["file"].as_str().expect("file").to_string(),
                f.get("row").and_then(Value::as_u64),
                f["error"].as_str().expect("error").to_string(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Existing outputs

#[test]
fn second_run_into_the_same_output_exits_2_and_leaves_it_untouched() {
    let tmp = tempdir();
    let (out, _) = run_into(tmp.path(), "iris_zipmap.onnx", &data("iris"), &["--passthrough", "id"]);
    let before = snapshot(&out);
    assert!(before.contains_key(Path::new("predictions.csv")), "{:?}", before.keys());
    assert!(before.contains_key(Path::new("logs/job_result.json")));

    // Another model and input, so that any overwrite would change the bytes.
    let (_, run) = run_into(tmp.path(), "wine_tensor.onnx", &data("wine"), &["--passthrough", "id"]);
    run.expect_code(2).stderr_has(&[&out.display().to_string(), "already", "new --output"]);
    let after = snapshot(&out);
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "same files");
    for (path, bytes) in &before {
        assert!(after[path] == *bytes, "{} changed", path.display());
    }
    assert_eq!(run.stdout.trim(), "", "no predictions path printed");
}

#[test]
fn a_non_empty_output_folder_is_refused_before_any_work() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine\n").unwrap();
    let (_, run) = run_into(tmp.path(), "iris_zipmap.onnx", &data("iris"), &["--passthrough", "id"]);
    run.expect_code(2).stderr_has(&[&out.display().to_string(), "keep.txt", "--output"]);
    assert_eq!(names(&out), ["keep.txt"], "no logs or staging written into it");
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "mine\n");
}

#[test]
fn an_output_path_that_is_a_file_is_refused() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    std::fs::write(&out, "a file\n").unwrap();
    let (_, run) = run_into(tmp.path(), "iris_zipmap.onnx", &data("iris"), &["--passthrough", "id"]);
    run.expect_code(2).stderr_has(&[&out.display().to_string(), "--output"]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "a file\n");
}

// ---------------------------------------------------------------------------------------------
// Corrupt tabular files

#[test]
fn corrupt_tabular_files_fail_alone_when_failures_are_ignored() {
    let tmp = tempdir();
    let (out, run) = run_into(
        tmp.path(),
        "iris_zipmap.onnx",
        &data("broken/tabular"),
        &["--passthrough", "id", "--error-threshold", "-1"],
    );
    run.expect_code(0);

    // Each bad file or row is named, with a reason.
    let failed = failed_items(&out);
    let keys: Vec<(&str, Option<u64>)> = failed.iter().map(|(f, r, _)| (f.as_str(), *r)).collect();
    assert_eq!(
        keys,
        [
            ("bad_value.csv", Some(3)),
            ("bad_value.csv", Some(6)),
            ("empty.csv", None),
            ("not_parquet.parquet", None),
            ("ragged.csv", Some(4)),
            ("truncated.parquet", None),
        ]
    );
    let reason = |file: &str, row: Option<u64>| {
        failed.iter().find(|(f, r, _)| f == file && *r == row).map(|(_, _, e)| e.clone()).unwrap()
    };
    assert!(reason("bad_value.csv", Some(3)).contains("abc"), "{}", reason("bad_value.csv", Some(3)));
    assert!(reason("bad_value.csv", Some(3)).contains("sepal_width"));
    assert!(reason("bad_value.csv", Some(6)).contains("petal_length"));
    assert!(reason("bad_value.csv", Some(6)).contains("missing"));
    assert!(reason("ragged.csv", Some(4)).contains("fields"));
    assert!(reason("empty.csv", None).contains("empty"));
    assert!(reason("not_parquet.parquet", None).contains("Parquet"));
    assert!(reason("truncated.parquet", None).contains("Parquet"));

    // The good rows, and only those, are scored: same values as on the clean data.
    let (header, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(header, ["file", "row", "id", "output_label", "output_probability"]);
    let got: Vec<(&str, u64)> = preds.iter().map(|p| (p.file.as_str(), p.row.unwrap())).collect();
    let mut want: Vec<(&str, u64)> = Vec::new();
    want.extend((0..10).filter(|r| *r != 3 && *r != 6).map(|r| ("bad_value.csv", r)));
    want.extend((0..10).map(|r| ("good.csv", r)));
    want.extend((0..10).filter(|r| *r != 4).map(|r| ("ragged.csv", r)));
    assert_eq!(got, want);
    assert_iris_rows(&preds);

    let jr = job_result(&out);
    assert_eq!(jr["status"], "Completed");
    assert_eq!(jr["counts"]["rows_scored"], 27);
    assert_eq!(jr["counts"]["rows_failed"], 3);
    assert_eq!(jr["counts"]["files_failed"], 3);
    assert_eq!(jr["counts"]["items_failed"], 6);
    assert_eq!(jr["first_failure"]["file"], "bad_value.csv");
    // The CLI's last lines name the first failure and the report.
    run.stderr_has(&["bad_value.csv", "job_result.json"]);

    // Default mini-batch size 10: all seven files shared one mini-batch, and the good ones
    // were not failed with the bad.
    let (_, mbs) = mini_batches(&out);
    assert_eq!(mbs.len(), 1);
    assert_eq!(mbs[0]["status"], "partial");
    assert_eq!(mbs[0]["rows"], "27");
    assert_eq!(mbs[0]["failed_items"], "6");
    assert!(mbs[0]["files"].contains("good.csv") && mbs[0]["files"].contains("truncated.parquet"), "{:?}", mbs[0]);
}

#[test]
fn corrupt_tabular_files_fail_the_job_at_threshold_zero() {
    let tmp = tempdir();
    let (out, run) = run_into(
        tmp.path(),
        "iris_zipmap.onnx",
        &data("broken/tabular"),
        &["--passthrough", "id", "--error-threshold", "0"],
    );
    run.expect_code(1).stderr_has(&["error_threshold"]);
    assert!(!out.join("predictions.csv").exists(), "no predictions published by a failed job");
    // The plan and the scored parts stay, for --resume.
    assert_eq!(names(&out), ["_staging", "logs"]);
    assert!(run.stderr.contains("--resume"), "{}", run.stderr);
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Failed");
    assert!(jr["error"].as_str().is_some_and(|e| e.contains("error_threshold")), "{:?}", jr["error"]);
    assert_eq!(jr["predictions"], Value::Null);
    assert!(!failures(&out).is_empty());
    assert_eq!(run.stdout.trim(), "");
}

#[test]
fn a_misspelt_passthrough_column_is_named() {
    let tmp = tempdir();
    let (out, run) = run_into(tmp.path(), "iris_zipmap.onnx", &data("iris"), &["--passthrough", "idd"]);
    run.expect_code(1).stderr_has(&["--passthrough column \"idd\" not found", "part-0.csv"]);
    assert!(!out.join("predictions.csv").exists());
    let items = failed_items(&out);
    assert_eq!(items.len(), 3, "{items:?}");
    for (file, row, error) in &items {
        assert_eq!(*row, None, "{file}");
        assert!(error.contains("--passthrough column \"idd\" not found; the file has columns: id, "), "{error}");
    }
}

#[test]
fn tabular_error_threshold_counts_rows_and_files() {
    // 3 bad rows + 3 bad files = 6 failed items.
    let tmp = tempdir();
    let (out, run) = run_into(
        tmp.path(),
        "iris_zipmap.onnx",
        &data("broken/tabular"),
        &["--passthrough", "id", "--error-threshold", "6"],
    );
    run.expect_code(0);
    assert_eq!(job_result(&out)["counts"]["items_failed"], 6);
    assert_eq!(csv_preds(&out.join("predictions.csv")).1.len(), 27);

    let tmp = tempdir();
    let (out, run) = run_into(
        tmp.path(),
        "iris_zipmap.onnx",
        &data("broken/tabular"),
        &["--passthrough", "id", "--error-threshold", "5"],
    );
    run.expect_code(1);
    assert_eq!(job_result(&out)["status"], "Failed");
    assert!(!out.join("predictions.csv").exists());
}

// ---------------------------------------------------------------------------------------------
// Corrupt images

#[test]
fn corrupt_images_fail_alone_when_failures_are_ignored() {
    let tmp = tempdir();
    let (out, run) = run_into(tmp.path(), "digits_mlp.onnx", &data("broken/images"), &["--error-threshold", "-1"]);
    run.expect_code(0);
    let failed = failed_items(&out);
    let files: Vec<&str> = failed.iter().map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(files, ["empty.png", "text.png", "truncated.png"]);
    assert!(failed.iter().all(|(_, row, e)| row.is_none() && !e.is_empty()), "{failed:?}");
    assert!(failed[0].2.contains("empty"), "{:?}", failed[0]);
    for f in failures(&out) {
        assert_eq!(f["attempts"], 1, "a file that cannot be decoded is not retried: {f}");
    }

    // The good neighbours (same mini-batch) are scored, with the digits' reference values.
    let (header, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(header, ["file", "label", "probabilities"]);
    let got: Vec<&str> = preds.iter().map(|p| p.file.as_str()).collect();
    assert_eq!(got, ["good-0.png", "good-1.png"]);
    let digits = reference("digits_mlp__digits.jsonl");
    for (p, r) in preds.iter().zip(&digits[..2]) {
        for (name, want) in &r.outputs {
            if let Some(d) = diff(&p.cols[name], want, TOL, &format!("{} {name}", p.file)) {
                panic!("{d}");
            }
        }
    }
    let (_, mbs) = mini_batches(&out);
    assert_eq!(mbs.len(), 1, "all five images in one mini-batch");
    assert_eq!(mbs[0]["status"], "partial");
    assert_eq!(mbs[0]["rows"], "2");
    assert_eq!(mbs[0]["failed_items"], "3");
    let jr = job_result(&out);
    assert_eq!(jr["counts"]["files_scored"], 2);
    assert_eq!(jr["counts"]["files_failed"], 3);
}

fn images_with_threshold(threshold: &str) -> (tempfile::TempDir, std::path::PathBuf, Run) {
    let tmp = tempdir();
    let (out, run) = run_into(tmp.path(), "digits_mlp.onnx", &data("broken/images"), &["--error-threshold", threshold]);
    (tmp, out, run)
}

#[test]
fn three_bad_images_pass_threshold_three() {
    let (_tmp, out, run) = images_with_threshold("3");
    run.expect_code(0);
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Completed");
    assert_eq!(jr["settings"]["error_threshold"], 3);
    assert_eq!(jr["counts"]["items_failed"], 3);
    assert_eq!(csv_preds(&out.join("predictions.csv")).1.len(), 2);
}

#[test]
fn three_bad_images_fail_threshold_two() {
    let (_tmp, out, run) = images_with_threshold("2");
    run.expect_code(1).stderr_has(&["error_threshold"]);
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Failed");
    assert!(jr["error"].as_str().is_some_and(|e| e.contains("error_threshold")), "{:?}", jr["error"]);
    assert!(!out.join("predictions.csv").exists());
}

#[test]
fn three_bad_images_fail_threshold_one() {
    let (_tmp, out, run) = images_with_threshold("1");
    run.expect_code(1);
    assert_eq!(job_result(&out)["status"], "Failed");
    assert!(!out.join("predictions.csv").exists());
}

#[test]
fn three_bad_images_fail_threshold_zero() {
    let (_tmp, out, run) = images_with_threshold("0");
    run.expect_code(1);
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Failed");
    assert!(jr["error"].as_str().is_some_and(|e| e.contains("error_threshold")), "{:?}", jr["error"]);
    assert!(!out.join("predictions.csv").exists());
}

// ---------------------------------------------------------------------------------------------
// Timeouts

#[test]
fn a_model_call_past_the_timeout_is_stopped_and_retried() {
    let tmp = tempdir();
    let (out, run) = run_into(
        tmp.path(),
        "slow.onnx",
        &data("broken/tabular/good.csv"),
        &["--passthrough", "id", "--timeout", "2", "--max-retries", "1"],
    );
    run.expect_code(1);
    // Two attempts of 2 s each, then done: nowhere near one full call (~80 s).
    assert!(run.elapsed < Duration::from_secs(30), "took {:?}", run.elapsed);
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["file"], "good.csv");
    assert_eq!(f[0]["attempts"], 2);
    assert!(f[0]["error"].as_str().unwrap().contains("timed out"), "{}", f[0]);
    let (_, mbs) = mini_batches(&out);
    assert_eq!(mbs.len(), 1);
    assert_eq!(mbs[0]["attempts"], "2");
    assert_eq!(mbs[0]["status"], "failed");
    assert!(mbs[0]["error"].contains("timed out"), "{:?}", mbs[0]);
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Failed");
    assert_eq!(jr["counts"]["rows_scored"], 0);
    assert_eq!(jr["counts"]["retries"], 1);
    assert!(!out.join("predictions.csv").exists());
}

// ---------------------------------------------------------------------------------------------
// ONNX Runtime missing

#[test]
fn an_ort_dylib_path_naming_no_file_says_how_to_install() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, i, o) = (model("iris_zipmap.onnx"), data("iris"), out.display().to_string());
    let mut cmd = score_cmd(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--passthrough", "id"]);
    cmd.env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so");
    let run = run_command(cmd);
    run.expect_code(2).no_panic().stderr_has(&["/nonexistent/libonnxruntime.so", "onnxruntime==1.31.1"]);
    assert!(!out.exists(), "no output folder for a job that could not start");
}

#[test]
fn no_onnx_runtime_anywhere_says_not_found_without_panicking() {
    // A copy of the binary outside the repository, run from there: no .venv beside it or above.
    let tmp = tempdir();
    let exe = tmp.path().join("batchscore");
    if std::fs::hard_link(bin(), &exe).is_err() {
        std::fs::copy(bin(), &exe).expect("copy the binary");
    }
    let out = tmp.path().join("out");
    let (m, i, o) = (model("iris_zipmap.onnx"), data("iris"), out.display().to_string());
    let mut cmd = std::process::Command::new(&exe);
    cmd.current_dir(tmp.path()).env_remove("ORT_DYLIB_PATH").args([
        "score",
        "--progress",
        "off",
        "--model",
        &m,
        "--input",
        &i,
        "--output",
        &o,
        "--passthrough",
        "id",
    ]);
    let run = run_command(cmd);
    run.expect_code(2).no_panic().stderr_has(&["not found", "pip install", "make setup", "ORT_DYLIB_PATH"]);
    assert!(!out.exists(), "no output folder for a job that could not start");
}

// ---------------------------------------------------------------------------------------------
// Interrupted

#[test]
fn ctrl_c_stops_the_model_call_and_fails_the_job_without_predictions() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, i, o) = (model("slow.onnx"), data("broken/tabular/good.csv"), out.display().to_string());
    let mut cmd = score_cmd(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--passthrough", "id"]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let started = std::time::Instant::now();
    let child = cmd.spawn().expect("start batchscore");
    // Let the (80 s) model call start, then interrupt as a terminal's Ctrl-C would.
    std::thread::sleep(Duration::from_secs(2));
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "the model call was not stopped: {:?}", started.elapsed());
    assert!(stderr.contains("interrupted"), "{stderr}");
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Failed");
    assert!(jr["error"].as_str().is_some_and(|e| e.contains("interrupted")), "{:?}", jr["error"]);
    assert!(!out.join("predictions.csv").exists());
    assert_eq!(mini_batches(&out).1[0]["status"], "stopped");
}

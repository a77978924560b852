//! Settings: flags, deployment files, and the choices they make (input filter, feature order,
//! batch size, image options). Every bad value exits 2, names the setting, and creates nothing.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Runs `score` with `args` plus `--output <tmp>/out`; returns the output path and the run.
fn run_with(tmp: &Path, args: &[&str]) -> (PathBuf, Run) {
    let out = tmp.join("out");
    let o = out.display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--output", &o]);
    let run = score(tmp, &all);
    run.no_panic();
    (out, run)
}

/// A run that must be refused before any work: exit 2, each needle on stderr, no output folder.
#[track_caller]
fn refused(args: &[&str], needles: &[&str]) -> Run {
    let tmp = tempdir();
    let (out, run) = run_with(tmp.path(), args);
    run.expect_code(2).stderr_has(needles);
    assert!(!out.exists(), "a refused job created {}", out.display());
    assert_eq!(run.stdout.trim(), "", "nothing on stdout");
    run
}

fn iris_args<'a>(m: &'a str, i: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--model", m, "--input", i];
    v.extend_from_slice(extra);
    v
}

// ---------------------------------------------------------------------------------------------
// Bad flags

#[test]
fn bad_flag_values_name_the_setting_and_create_nothing() {
    let (m, i) = (model("iris_zipmap.onnx"), data("iris"));
    let cases: &[(&[&str], &[&str])] = &[
        (&["--mini-batch-size", "0"], &["mini_batch_size", "\"0\"", ">= 1"]),
        (&["--mini-batch-size", "ten"], &["mini_batch_size", "ten"]),
        (&["--max-concurrency", "0"], &["max_concurrency"]),
        (&["--max-retries=-1"], &["max_retries"]),
        (&["--timeout", "0"], &["timeout", "> 0"]),
        (&["--timeout", "soon"], &["timeout", "soon"]),
        (&["--error-threshold", "-2"], &["error_threshold", "-1"]),
        (&["--output-action", "overwrite"], &["output_action", "append_row or summary_only"]),
        (&["--output-file-name", "predictions.txt"], &["output_file_name", ".csv or .parquet"]),
        (&["--output-file-name", "sub/predictions.csv"], &["output_file_name", "plain file name"]),
        (&["--logging-level", "loud"], &["logging_level", "warning, info or debug"]),
        (&["--pattern", "part-[0"], &["pattern", "glob"]),
        (&["--batch-size", "0"], &["batch_size"]),
        (&["--sessions", "0"], &["sessions", ">= 1"]),
        (&["--sessions", "two"], &["sessions", "two"]),
        (&["--features", "sepal_length,sepal_length"], &["features", "twice"]),
        (&["--features", "sepal_length", "--passthrough", "sepal_length"], &["passthrough", "both"]),
        (&["--channels", "2"], &["channels", "1 (gray), 3 (rgb) or 4 (rgba)"]),
        (&["--layout", "chw"], &["layout", "nchw, nhwc or flat"]),
        (&["--image-size", "big"], &["image_size"]),
        (&["--progress", "fancy"], &["progress"]),
    ];
    for (extra, needles) in cases {
        let run = refused(&iris_args(&m, &i, extra), needles);
        assert!(run.stderr.contains("error"), "{extra:?}: {}", run.stderr);
    }
}

#[test]
fn unknown_and_missing_flags_exit_2() {
    let (m, i) = (model("iris_zipmap.onnx"), data("iris"));
    refused(&iris_args(&m, &i, &["--bogus"]), &["--bogus"]);
    refused(&["--input", &i], &["model", "--model"]);
    let tmp = tempdir();
    score(tmp.path(), &["--model", &m, "--input", &i]).expect_code(2).stderr_has(&["output"]);
}

#[test]
fn missing_model_or_input_is_named() {
    let (m, i) = (model("iris_zipmap.onnx"), data("iris"));
    let missing_model = model("no_such_model.onnx");
    refused(&iris_args(&missing_model, &i, &[]), &["no_such_model.onnx", "--model"]);
    let missing_input = data("no_such_folder");
    refused(&iris_args(&m, &missing_input, &[]), &["no_such_folder", "does not exist", "--input"]);
    // A file that is not an ONNX model.
    let not_model = data("iris/part-0.csv");
    refused(&iris_args(&not_model, &i, &[]), &["part-0.csv"]);
}

#[test]
fn inputs_that_do_not_fit_the_model_are_refused() {
    let (iris, digits) = (model("iris_zipmap.onnx"), model("digits_mlp.onnx"));
    // Images given to a tabular model: not scored as 2x2 "images".
    refused(&iris_args(&iris, &data("digits"), &[]), &["takes 4 values per row", "tabular", "--input"]);
    // Tabular rows given to an image model: columns are known only once each file is read, so
    // every file fails with the reason, and a job that scored nothing fails (exit 1).
    let tmp = tempdir();
    let (out, run) = run_with(tmp.path(), &iris_args(&digits, &data("iris"), &[]));
    run.expect_code(1).stderr_has(&["first failure: part-0.csv: model input", "takes 64 values", "--features"]);
    assert!(!out.join("predictions.csv").exists());
    assert_eq!(failures(&out).len(), 3);
    // Feature names the file does not have: the column is named.
    let tmp = tempdir();
    let (out, run) = run_with(
        tmp.path(),
        &iris_args(
            &iris,
            &data("iris"),
            &["--features", "sepal_length,sepal_width,petal_length,petal_size", "--error-threshold", "0"],
        ),
    );
    assert_ne!(run.code, 0);
    run.stderr_has(&["petal_size"]);
    assert!(!out.join("predictions.csv").exists());
    // A folder with both images and tables.
    let mixed = tempdir();
    std::fs::copy(data("iris/part-0.csv"), mixed.path().join("a.csv")).unwrap();
    std::fs::copy(data("digits/digit-0000.png"), mixed.path().join("b.png")).unwrap();
    let mixed_dir = mixed.path().display().to_string();
    refused(&iris_args(&iris, &mixed_dir, &[]), &["a.csv", "b.png"]);
    // A folder with nothing to score.
    let empty = tempdir();
    let empty_dir = empty.path().display().to_string();
    refused(&iris_args(&iris, &empty_dir, &[]), &[&empty_dir]);
}

#[test]
fn a_fixed_batch_model_refuses_another_batch_size() {
    let (m, i) = (model("digits_mlp_b1.onnx"), data("digits"));
    refused(&iris_args(&m, &i, &["--batch-size", "8"]), &["--batch-size 8", "fixed batch dimension of 1"]);
}

// ---------------------------------------------------------------------------------------------
// Deployment files

/// The predictions of the committed deployment file's job, by (file, row).
#[test]
fn the_committed_deployment_file_runs_and_reports_ignored_fields() {
    let tmp = tempdir();
    let config = repo().join("models/deployment-iris.yml").display().to_string();
    let (out, run) = run_with(tmp.path(), &["--config", &config, "--input", &data("iris")]);
    run.expect_code(0);
    // Azure ML fields that do not apply here are named, not silently dropped.
    run.stderr_has(&["compute", "environment", "code_configuration"]);
    let jr = job_result(&out);
    let s = &jr["settings"];
    assert_eq!(s["mini_batch_size"], 2);
    assert_eq!(s["max_concurrency"], 2);
    assert_eq!(s["max_retries"], 3);
    assert_eq!(s["timeout"], 30.0);
    assert_eq!(s["passthrough"], serde_json::json!(["id"]));
    assert_eq!(jr["model"]["path"], model("iris_zipmap.onnx"), "model.path is relative to the YAML file");
    assert_eq!(mini_batches(&out).1.len(), 2);
    let (header, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(header, ["file", "row", "id", "output_label", "output_probability"]);
    assert_parity(&preds, &reference("iris_zipmap__iris.jsonl"), TOL);
}

#[test]
fn flags_win_over_the_deployment_file() {
    let tmp = tempdir();
    let config = repo().join("models/deployment-iris.yml").display().to_string();
    let (out, run) = run_with(
        tmp.path(),
        &[
            "--config",
            &config,
            "--input",
            &data("iris"),
            "--mini-batch-size",
            "1",
            "--output-file-name",
            "scores.parquet",
            "--max-retries",
            "0",
        ],
    );
    run.expect_code(0);
    let jr = job_result(&out);
    assert_eq!(jr["settings"]["mini_batch_size"], 1);
    assert_eq!(jr["settings"]["max_retries"], 0);
    assert_eq!(jr["settings"]["max_concurrency"], 2, "not overridden: from the file");
    assert_eq!(mini_batches(&out).1.len(), 3);
    assert!(out.join("scores.parquet").exists());
    let (_, preds) = parquet_preds(&out.join("scores.parquet"));
    assert_parity(&preds, &reference("iris_zipmap__iris.jsonl"), TOL);
}

/// Writes `text` as `deployment.yml` in a fresh folder and runs the iris job with it.
fn with_config(text: &str, needles: &[&str]) {
    let dir = tempdir();
    let path = dir.path().join("deployment.yml");
    std::fs::write(&path, text).unwrap();
    let p = path.display().to_string();
    let run = refused(&["--config", &p, "--model", &model("iris_zipmap.onnx"), "--input", &data("iris")], needles);
    assert!(run.stderr.contains("deployment.yml"), "the file is named: {}", run.stderr);
}

#[test]
fn bad_deployment_files_name_the_file_and_the_field() {
    with_config("settings:\n  mini_batch_size: [1, 2\n", &["YAML"]);
    with_config("- just\n- a list\n", &["mapping"]);
    with_config("settings:\n  mini_batch_size: 0\n", &["mini_batch_size", ">= 1"]);
    with_config("settings:\n  mini_batch_size: ten\n", &["mini_batch_size", "ten"]);
    with_config("settings:\n  retry_settings: 3\n", &["settings.retry_settings", "max_retries"]);
    with_config("settings:\n  retry_settings:\n    timeout: -5\n", &["timeout"]);
    with_config("settings:\n  output_action: overwrite\n", &["output_action"]);
    with_config("error_threshold: -7\n", &["error_threshold"]);
    with_config("batchscore:\n  batchsize: 8\n", &["batchscore.batchsize", "unknown", "batch_size"]);
    with_config("settings: 5\n", &["settings", "mapping"]);
    with_config("model: [1, 2]\n", &["model"]);
}

#[test]
fn a_missing_deployment_file_is_named() {
    refused(
        &["--config", "/no/such/deployment.yml", "--model", &model("iris_zipmap.onnx"), "--input", &data("iris")],
        &["/no/such/deployment.yml"],
    );
}

// ---------------------------------------------------------------------------------------------
// Choices: input filter, features, batch size, image options

#[test]
fn pattern_selects_the_input_files() {
    let tmp = tempdir();
    let (out, run) = run_with(
        tmp.path(),
        &iris_args(&model("iris_zipmap.onnx"), &data("iris"), &["--pattern", "part-[02].csv", "--passthrough", "id"]),
    );
    run.expect_code(0);
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    let files: Vec<&str> = preds.iter().map(|p| p.file.as_str()).collect();
    assert_eq!(files.len(), 100);
    assert!(files.iter().all(|f| *f == "part-0.csv" || *f == "part-2.csv"), "{files:?}");
    let want: Vec<RefRow> =
        reference("iris_zipmap__iris.jsonl").into_iter().filter(|r| r.file != "part-1.csv").collect();
    assert_parity(&preds, &want, TOL);
    assert_eq!(job_result(&out)["counts"]["files_total"], 2);

    // A pattern that matches nothing is an error, not an empty output.
    refused(&iris_args(&model("iris_zipmap.onnx"), &data("iris"), &["--pattern", "*.parquet"]), &["*.parquet"]);
}

#[test]
fn features_choose_the_columns_and_their_order() {
    let (m, i) = (model("iris_zipmap.onnx"), data("iris"));
    // The training order, named explicitly: the reference predictions.
    let tmp = tempdir();
    let (out, run) =
        run_with(tmp.path(), &iris_args(&m, &i, &["--features", "sepal_length,sepal_width,petal_length,petal_width"]));
    run.expect_code(0);
    let (header, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(header, ["file", "row", "output_label", "output_probability"], "no id: not a feature, not passed");
    assert_parity(&preds, &reference("iris_zipmap__iris.jsonl"), TOL);

    // The same columns reversed feed the model other numbers: the order is the one given.
    let tmp = tempdir();
    let (out, run) =
        run_with(tmp.path(), &iris_args(&m, &i, &["--features", "petal_width,petal_length,sepal_width,sepal_length"]));
    run.expect_code(0);
    let (_, reversed) = csv_preds(&out.join("predictions.csv"));
    let reference = reference("iris_zipmap__iris.jsonl");
    let differing = reversed
        .iter()
        .zip(&reference)
        .filter(|(p, r)| diff(&p.cols["output_probability"], &r.outputs["output_probability"], TOL, "").is_some())
        .count();
    assert!(differing > 100, "only {differing} of 150 rows changed with the feature order reversed");
}

#[test]
fn batch_size_changes_calls_not_predictions() {
    let tmp = tempdir();
    let (out, run) = run_with(
        tmp.path(),
        &iris_args(&model("iris_zipmap.onnx"), &data("iris"), &["--batch-size", "7", "--passthrough", "id"]),
    );
    run.expect_code(0);
    assert_eq!(job_result(&out)["model"]["batch_size"], 7);
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(preds.len(), 150);
    assert_parity(&preds, &reference("iris_zipmap__iris.jsonl"), TOL);
}

#[test]
fn image_options_are_checked_against_the_model() {
    let digits = model("digits_mlp.onnx");
    // The defaults from the model's shape, spelled out: same predictions.
    let tmp = tempdir();
    let (out, run) = run_with(
        tmp.path(),
        &iris_args(&digits, &data("digits"), &["--image-size", "8x8", "--channels", "1", "--layout", "flat"]),
    );
    run.expect_code(0);
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    assert_parity(&preds, &reference("digits_mlp__digits.jsonl"), TOL);
    // Options the model's input cannot take.
    refused(&iris_args(&digits, &data("digits"), &["--image-size", "16x16"]), &["16x16", "64"]);
    refused(&iris_args(&model("digits_nchw.onnx"), &data("digits"), &["--channels", "3"]), &["--channels 3", "1"]);
    refused(&iris_args(&model("digits_nchw.onnx"), &data("digits"), &["--layout", "flat"]), &["flat"]);
}

#[test]
fn mean_color_with_a_dynamic_size_follows_the_options() {
    // mean_color takes [N, 3, H, W] with H and W dynamic: each image keeps its own size unless
    // --image-size is given, and --scale / --mean / --std change the numbers it sees.
    let m = model("mean_color.onnx");
    let png = data("photos/china-00.png");
    let tmp = tempdir();
    let (out, run) = run_with(tmp.path(), &iris_args(&m, &png, &[]));
    run.expect_code(0);
    let jr = job_result(&out);
    assert_eq!(jr["model"]["feeder"]["spec"]["layout"], "nchw");
    let (_, plain) = csv_preds(&out.join("predictions.csv"));
    let plain: Vec<f64> = plain[0].cols["mean_rgb"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();

    let tmp = tempdir();
    let (out, run) = run_with(
        tmp.path(),
        &iris_args(&m, &png, &["--image-size", "32x32", "--scale", "1", "--mean", "10", "--std", "2"]),
    );
    run.expect_code(0);
    let (_, scaled) = csv_preds(&out.join("predictions.csv"));
    let scaled: Vec<f64> = scaled[0].cols["mean_rgb"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    // (255 * x - 10) / 2 per channel, up to the change of size (a resize keeps a mean close).
    for (p, s) in plain.iter().zip(&scaled) {
        let want = (255.0 * p - 10.0) / 2.0;
        assert!((s - want).abs() < 2.0, "mean {s} vs {want} (plain {p})");
    }
    let spec = &job_result(&out)["model"]["feeder"]["spec"];
    assert_eq!(spec["size"], serde_json::json!([32, 32]), "{spec}");
    assert_ne!(spec, &Value::Null);
}

#[test]
fn a_gpu_that_is_not_there_is_an_error_not_a_cpu_fallback() {
    // CI has ONNX Runtime's CPU build and no GPU: --device cuda must refuse to start.
    let (m, i) = (model("digits_mlp.onnx"), data("digits"));
    let run = refused(
        &iris_args(&m, &i, &["--device", "cuda"]),
        &["--device cuda:0", "CUDA execution provider", "--device cpu"],
    );
    assert!(!run.stderr.contains("cannot load it"), "{}", run.stderr);
    refused(&iris_args(&m, &i, &["--device", "tpu"]), &["device", "cuda:N"]);
    // --device cpu is the default, spelled out.
    let tmp = tempdir();
    let (out, run) = run_with(tmp.path(), &iris_args(&m, &i, &["--device", "cpu"]));
    run.expect_code(0);
    assert_eq!(job_result(&out)["settings"]["device"], "cpu");
}

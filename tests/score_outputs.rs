//! End to end: each input type and output format, checked against the reference predictions
//! that Python onnxruntime computed (models/reference), plus the job's logs and determinism.

mod common;

use common::*;
use serde_json::Value;

/// Scores `input` with `model` into `<tmp>/out` and returns the temp dir and the output path.
fn score_ok(model_name: &str, input: &str, extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, Run) {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let m = model(model_name);
    let o = out.display().to_string();
    let mut args = vec!["--model", &m, "--input", input, "--output", &o];
    args.extend_from_slice(extra);
    let run = score(tmp.path(), &args);
    run.expect_code(0).no_panic();
    (tmp, out, run)
}

#[test]
fn iris_zipmap_csv_matches_reference() {
    let (_tmp, out, run) = score_ok("iris_zipmap.onnx", &data("iris"), &["--passthrough", "id"]);
    let path = out.join("predictions.csv");
    // The CLI prints the predictions path on stdout.
    assert_eq!(run.stdout.trim(), path.display().to_string());
    let header = std::fs::read_to_string(&path).unwrap().lines().next().unwrap().to_string();
    assert_eq!(header, "file,row,id,output_label,output_probability");
    let (_, preds) = csv_preds(&path);
    assert_eq!(preds.len(), 150);
    // File then row order, and the id pass-through is the global row.
    let files = ["part-0.csv", "part-1.csv", "part-2.csv"];
    for (i, p) in preds.iter().enumerate() {
        assert_eq!(p.file, files[i / 50], "row {i}");
        assert_eq!(p.row, Some((i % 50) as u64), "row {i}");
        assert_eq!(p.cols["id"], Value::from(i as u64), "row {i}");
        assert!(p.cols["output_probability"].is_object(), "row {i}: {:?}", p.cols["output_probability"]);
    }
    assert_parity(&preds, &reference("iris_zipmap__iris.jsonl"), TOL);
}

#[test]
fn wine_parquet_input_to_csv_matches_reference() {
    let (_tmp, out, _) = score_ok("wine_tensor.onnx", &data("wine"), &["--passthrough", "id"]);
    let (header, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(header, ["file", "row", "id", "label", "probabilities"]);
    assert_eq!(preds.len(), 178);
    for (i, p) in preds.iter().enumerate() {
        assert_eq!(p.cols["id"], Value::from(i as u64), "row {i}");
        assert_eq!(p.cols["probabilities"].as_array().map(Vec::len), Some(3), "row {i}");
    }
    assert_parity(&preds, &reference("wine_tensor__wine.jsonl"), TOL);
}

#[test]
fn wine_parquet_output_has_list_columns_and_matches_reference() {
    let (_tmp, out, _) = score_ok(
        "wine_tensor.onnx",
        &data("wine"),
        &["--passthrough", "id", "--output-file-name", "predictions.parquet"],
    );
    assert!(!out.join("predictions.csv").exists());
    let (columns, preds) = parquet_preds(&out.join("predictions.parquet"));
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["file", "row", "id", "label", "probabilities"]);
    let ty = |name: &str| columns.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()).unwrap();
    assert!(matches!(ty("file"), arrow::datatypes::DataType::Utf8), "{:?}", ty("file"));
    assert_eq!(ty("id"), arrow::datatypes::DataType::Int64);
    assert_eq!(ty("label"), arrow::datatypes::DataType::Int64);
    match ty("probabilities") {
        arrow::datatypes::DataType::List(item) => {
            assert_eq!(item.data_type(), &arrow::datatypes::DataType::Float32, "list<float>")
        }
        other => panic!("probabilities is {other}, want list<float>"),
    }
    for (i, p) in preds.iter().enumerate() {
        assert_eq!(p.cols["id"], Value::from(i as u64), "row {i}");
    }
    assert_parity(&preds, &reference("wine_tensor__wine.jsonl"), TOL);
    let jr = job_result(&out);
    assert_eq!(jr["settings"]["output_format"], "parquet");
    assert_eq!(jr["predictions"], out.join("predictions.parquet").display().to_string());
}

#[test]
fn diabetes_one_input_per_column_matches_reference() {
    let (_tmp, out, _) = score_ok("diabetes_multi.onnx", &data("diabetes"), &["--passthrough", "id"]);
    let (header, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(header, ["file", "row", "id", "prediction"]);
    assert_eq!(preds.len(), 442);
    // A regression target around 25..350: 1e-5 absolute would be tighter than float32 allows
    // on other threads; models/README.md asks for 1e-3 relative, we take 1e-5 relative.
    assert_parity(&preds, &reference("diabetes_multi__diabetes.jsonl"), Tol { abs: 1e-5, rel: 1e-5 });
    assert_eq!(job_result(&out)["model"]["feeder"]["mode"], "named");
}

fn digits_parity(model_name: &str, reference_name: &str) -> Value {
    let (_tmp, out, _) = score_ok(model_name, &data("digits"), &[]);
    let path = out.join("predictions.csv");
    let header = std::fs::read_to_string(&path).unwrap().lines().next().unwrap().to_string();
    assert_eq!(header, "file,label,probabilities");
    let (_, preds) = csv_preds(&path);
    assert_eq!(preds.len(), 300, "exactly one row per image");
    for (i, p) in preds.iter().enumerate() {
        assert_eq!(p.file, format!("digit-{i:04}.png"));
        assert_eq!(p.row, None);
    }
    assert_parity(&preds, &reference(reference_name), TOL);
    job_result(&out)
}

#[test]
fn digits_mlp_flat_pixels_match_reference() {
    let jr = digits_parity("digits_mlp.onnx", "digits_mlp__digits.jsonl");
    assert_eq!(jr["counts"]["rows_scored"], 300);
}

#[test]
fn digits_mlp_fixed_batch_of_one_matches_reference() {
    let jr = digits_parity("digits_mlp_b1.onnx", "digits_mlp_b1__digits.jsonl");
    assert_eq!(jr["model"]["info"]["fixed_batch"], 1);
    assert_eq!(jr["model"]["batch_size"], 1);
    assert_eq!(jr["counts"]["rows_scored"], 300);
}

#[test]
fn digits_nchw_matches_reference() {
    let jr = digits_parity("digits_nchw.onnx", "digits_nchw__digits.jsonl");
    assert_eq!(jr["model"]["feeder"]["spec"]["layout"], "nchw");
}

#[test]
fn mean_color_photos_every_format_scored_png_parity() {
    let (_tmp, out, _) = score_ok("mean_color.onnx", &data("photos"), &[]);
    let (header, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(header, ["file", "mean_rgb"]);
    let files: Vec<&str> = preds.iter().map(|p| p.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "china-00.png",
            "china-01.png",
            "china-02.png",
            "china-03.png",
            "china-04.jpg",
            "china-05.bmp",
            "china-06.webp",
            "flower-00.png",
            "flower-01.png",
            "flower-02.png",
            "flower-03.png",
            "flower-04.jpg",
            "flower-05.gif",
        ]
    );
    for p in &preds {
        let v = p.cols["mean_rgb"].as_array().unwrap_or_else(|| panic!("{}: {:?}", p.file, p.cols));
        assert_eq!(v.len(), 3, "{}", p.file);
        for x in v {
            let x = x.as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{}: {x}", p.file);
        }
    }
    let pngs: Vec<Pred> = preds.into_iter().filter(|p| p.file.ends_with(".png")).collect();
    assert_parity(&pngs, &reference("mean_color__photos.jsonl"), TOL);
    let jr = job_result(&out);
    assert_eq!(jr["counts"]["files_scored"], 13);
    assert_eq!(jr["counts"]["items_failed"], 0);
}

#[test]
fn summary_only_writes_the_report_but_no_predictions() {
    let (_tmp, out, run) =
        score_ok("iris_zipmap.onnx", &data("iris"), &["--passthrough", "id", "--output-action", "summary_only"]);
    assert_eq!(names(&out), ["logs"]);
    assert_eq!(run.stdout.trim(), "", "no predictions path printed");
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Completed");
    assert_eq!(jr["predictions"], Value::Null);
    assert_eq!(jr["settings"]["output_action"], "summary_only");
    assert_eq!(jr["counts"]["rows_scored"], 150);
    assert_eq!(jr["counts"]["files_scored"], 3);
    assert_eq!(jr["counts"]["items_failed"], 0);
    let (_, mbs) = mini_batches(&out);
    assert_eq!(mbs.len(), 1);
    assert_eq!(mbs[0]["rows"], "150");
}

#[test]
fn logs_of_a_clean_job() {
    let (_tmp, out, _) =
        score_ok("iris_zipmap.onnx", &data("iris"), &["--passthrough", "id", "--mini-batch-size", "2"]);
    assert_eq!(names(&out), ["logs", "predictions.csv"], "no staging leftovers");
    assert_eq!(names(&out.join("logs")), ["failures.jsonl", "job_result.json", "mini_batches.csv"]);

    let jr = job_result(&out);
    assert_eq!(jr["status"], "Completed");
    assert!(jr.get("error").is_none_or(Value::is_null), "{:?}", jr["error"]);
    assert_eq!(jr["counts"]["rows_scored"], 150);
    assert_eq!(jr["counts"]["files_total"], 3);
    assert_eq!(jr["counts"]["files_scored"], 3);
    assert_eq!(jr["counts"]["mini_batches_total"], 2);
    assert_eq!(jr["counts"]["mini_batches_run"], 2);
    assert_eq!(jr["predictions"], out.join("predictions.csv").display().to_string());
    assert_eq!(jr["output"], out.display().to_string());
    assert_eq!(jr["input"], data("iris"));
    let s = &jr["settings"];
    assert_eq!(s["mini_batch_size"], 2);
    assert_eq!(s["max_retries"], 3);
    assert_eq!(s["timeout"], 30.0);
    assert_eq!(s["error_threshold"], -1);
    assert_eq!(s["output_action"], "append_row");
    assert_eq!(s["output_file_name"], "predictions.csv");
    assert_eq!(s["passthrough"], serde_json::json!(["id"]));
    assert_eq!(jr["model"]["path"], model("iris_zipmap.onnx"));
    assert_eq!(jr["model"]["sha256"].as_str().map(str::len), Some(64));
    // The per-stage breakdown: the sessions' (here each worker's own) busy and waiting time
    // fit in their whole time.
    let t = &jr["timings_seconds"];
    let secs = |v: &Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("timings_seconds.{k}: {t}"));
    for k in ["wall", "plan", "read", "decode", "infer", "encode", "write", "commit"] {
        assert!(secs(t, k) >= 0.0, "{k}: {t}");
    }
    let sessions = &t["sessions"];
    assert_eq!(sessions["threads"], jr["model"]["sessions"], "{t}");
    assert_eq!(t["workers"]["threads"], 0, "one session per worker: no workers apart: {t}");
    let alive = secs(sessions, "alive");
    assert!(alive > 0.0 && alive <= 2.0 * secs(t, "wall"), "{t}");
    let accounted = secs(t, "decode")
        + secs(t, "infer")
        + secs(sessions, "waiting_for_input")
        + secs(sessions, "waiting_for_output");
    assert!(accounted <= alive * 1.01 + 0.001, "{t}");
    assert!(["read", "decode", "infer", "encode", "write"].contains(&t["bound_by"].as_str().unwrap()), "{t}");
    // 150 rows, 1024 per call: the two mini-batches make one call, or one each.
    assert!((1..=2).contains(&jr["counts"]["model_calls"].as_u64().unwrap()), "{}", jr["counts"]);

    let (header, mbs) = mini_batches(&out);
    assert_eq!(header, ["id", "files", "attempts", "status", "seconds", "rows", "failed_items", "error"]);
    assert_eq!(mbs.len(), 2);
    assert_eq!(mbs[0]["id"], "0");
    assert_eq!(mbs[0]["files"], "part-0.csv;part-1.csv");
    assert_eq!(mbs[0]["rows"], "100");
    assert_eq!(mbs[1]["id"], "1");
    assert_eq!(mbs[1]["files"], "part-2.csv");
    assert_eq!(mbs[1]["rows"], "50");
    for m in &mbs {
        assert_eq!(m["attempts"], "1");
        assert_eq!(m["status"], "completed");
        assert_eq!(m["failed_items"], "0");
        assert_eq!(m["error"], "");
        assert!(m["seconds"].parse::<f64>().is_ok_and(|s| s >= 0.0), "{m:?}");
    }
    let failures_text = std::fs::read_to_string(out.join("logs/failures.jsonl")).unwrap();
    assert_eq!(failures_text, "", "nothing failed");
}

#[test]
fn mini_batch_size_one_gives_the_same_predictions() {
    let (_t1, default_out, _) = score_ok("iris_zipmap.onnx", &data("iris"), &["--passthrough", "id"]);
    let (_t2, one_out, _) =
        score_ok("iris_zipmap.onnx", &data("iris"), &["--passthrough", "id", "--mini-batch-size", "1"]);
    let a = std::fs::read(default_out.join("predictions.csv")).unwrap();
    let b = std::fs::read(one_out.join("predictions.csv")).unwrap();
    assert!(a == b, "predictions differ between mini-batch sizes 10 and 1");
    assert_eq!(mini_batches(&one_out).1.len(), 3);
    assert_eq!(mini_batches(&default_out).1.len(), 1);
}

#[test]
fn output_order_is_the_same_at_any_concurrency() {
    let digits = data("digits");
    let (_t1, serial, _) = score_ok("digits_mlp.onnx", &digits, &["--mini-batch-size", "1", "--max-concurrency", "1"]);
    let (_t4, parallel, _) =
        score_ok("digits_mlp.onnx", &digits, &["--mini-batch-size", "1", "--max-concurrency", "4"]);
    assert_eq!(job_result(&parallel)["settings"]["max_concurrency"], 4);
    let a = std::fs::read(serial.join("predictions.csv")).unwrap();
    let b = std::fs::read(parallel.join("predictions.csv")).unwrap();
    assert!(a == b, "predictions.csv differs between --max-concurrency 1 and 4");
    let (_, preds) = csv_preds(&parallel.join("predictions.csv"));
    assert_parity(&preds, &reference("digits_mlp__digits.jsonl"), TOL);
    let (_, mbs) = mini_batches(&parallel);
    let ids: Vec<String> = mbs.iter().map(|m| m["id"].clone()).collect();
    let want: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    assert_eq!(ids, want, "mini_batches.csv in mini-batch order");
    // A job alone takes its parts into the output while it runs (they came in any order).
    let early = job_result(&parallel)["timings_seconds"]["assemble_early"].as_f64().unwrap();
    assert!(early > 0.0, "assemble_early {early}");
}

#[test]
fn an_empty_existing_output_folder_is_used() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (m, i, o) = (model("iris_zipmap.onnx"), data("iris"), out.display().to_string());
    score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--passthrough", "id"]).expect_code(0);
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    assert_parity(&preds, &reference("iris_zipmap__iris.jsonl"), TOL);
}

#[test]
fn progress_lines_off_a_terminal_and_a_final_summary() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, i, o) = (model("digits_mlp.onnx"), data("digits"), out.display().to_string());
    let mut cmd = bin_cmd();
    cmd.current_dir(tmp.path()).args(["score", "--model", &m, "--input", &i, "--output", &o]).args([
        "--progress",
        "plain",
        "--progress-interval",
        "0.005",
        "--mini-batch-size",
        "1",
        "--max-concurrency",
        "1",
    ]);
    let run = run_command(cmd);
    run.expect_code(0).no_panic();
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("progress: ")).collect();
    assert!(!lines.is_empty(), "no progress lines: {}", run.stderr);
    for l in &lines {
        assert!(l.contains("/300 files") && l.contains("rows/s") && l.contains("failed") && l.contains("ETA"), "{l}");
    }
    run.stderr_has(&["Completed: 300 rows from 300/300 files", &o, "job_result.json"]);
    assert_eq!(run.stdout.trim(), out.join("predictions.csv").display().to_string());

    // --progress off: the summary only.
    let (_tmp, _, run) = score_ok("digits_mlp.onnx", &i, &[]);
    assert!(!run.stderr.contains("progress: "), "{}", run.stderr);
    run.stderr_has(&["Completed: 300 rows"]);
}

//! The pipeline's shape: workers that decode for fewer model sessions (as on a GPU), small
//! mini-batches packed into full model calls, and a failing model call inside a packed group
//! that fails only its own file.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Scores `input` with `model` into `<tmp>/out`; the run must complete.
fn score_ok(tmp: &Path, model_name: &str, input: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = tmp.join("out");
    let (m, o) = (model(model_name), out.display().to_string());
    let mut args = vec!["--model", &m, "--input", input, "--output", &o];
    args.extend_from_slice(extra);
    score(tmp, &args).expect_code(0).no_panic();
    out
}

fn count(jr: &Value, path: &[&str]) -> u64 {
    let mut v = jr;
    for k in path {
        v = &v[*k];
    }
    v.as_u64().unwrap_or_else(|| panic!("{}: {v}", path.join(".")))
}

fn secs(t: &Value, k: &str) -> f64 {
    t[k].as_f64().unwrap_or_else(|| panic!("timings_seconds.{k}: {t}"))
}

/// The workers' and sessions' time is accounted for: what they did and waited for fits in their
/// lifetimes, which fit in the wall time.
#[track_caller]
fn assert_thread_times(jr: &Value) {
    let t = &jr["timings_seconds"];
    let wall = secs(t, "wall");
    let mut alive = 0.0;
    let mut waits = 0.0;
    for kind in ["workers", "sessions"] {
        let k = &t[kind];
        let threads = count(jr, &["timings_seconds", kind, "threads"]) as f64;
        let a = secs(k, "alive");
        assert!(a >= 0.0 && a <= threads * wall * 1.01 + 0.01, "{kind}: {t}");
        assert!(secs(k, "waiting_for_input") >= 0.0 && secs(k, "waiting_for_output") >= 0.0, "{kind}: {t}");
        alive += a;
        waits += secs(k, "waiting_for_input") + secs(k, "waiting_for_output");
    }
    let busy = secs(t, "decode") + secs(t, "infer");
    assert!(busy + waits <= alive * 1.01 + 0.01, "{t}");
    assert!(["read", "decode", "infer", "encode", "write"].contains(&t["bound_by"].as_str().unwrap()), "{t}");
}

#[test]
fn sessions_fed_by_workers_score_what_one_session_per_worker_scores() {
    let digits = data("digits");
    let (t1, t2) = (tempdir(), tempdir());
    // One session per worker (the CPU default): each worker decodes its own mini-batches.
    let own = score_ok(t1.path(), "digits_mlp.onnx", &digits, &["--mini-batch-size", "1", "--max-concurrency", "2"]);
    // Two workers decoding for one session, which packs 8 one-image mini-batches per call.
    let fed = score_ok(
        t2.path(),
        "digits_mlp.onnx",
        &digits,
        &["--mini-batch-size", "1", "--max-concurrency", "2", "--sessions", "1", "--batch-size", "8"],
    );
    for out in [&own, &fed] {
        let (_, preds) = csv_preds(&out.join("predictions.csv"));
        let files: Vec<String> = preds.iter().map(|p| p.file.clone()).collect();
        let want: Vec<String> = (0..300).map(|i| format!("digit-{i:04}.png")).collect();
        assert_eq!(files, want, "one row per image, in input order");
        assert_parity(&preds, &reference("digits_mlp__digits.jsonl"), TOL);
        let (_, mbs) = mini_batches(out);
        assert_eq!(mbs.len(), 300);
        assert!(mbs.iter().all(|m| m["status"] == "completed" && m["attempts"] == "1"), "{mbs:?}");
    }

    let jr = job_result(&fed);
    assert_eq!(jr["model"]["workers"], 2);
    assert_eq!(jr["model"]["sessions"], 1);
    assert_eq!(jr["settings"]["sessions"], 1);
    assert_eq!(count(&jr, &["timings_seconds", "workers", "threads"]), 2);
    assert_eq!(count(&jr, &["timings_seconds", "sessions", "threads"]), 1);
    // 300 images, 8 per call: 37 full calls and one of 4.
    assert_eq!(count(&jr, &["counts", "model_calls"]), 38);
    assert_thread_times(&jr);

    let jr = job_result(&own);
    assert_eq!(jr["model"]["sessions"], 2);
    assert_eq!(jr["settings"]["sessions"], Value::Null, "not set: one per worker");
    assert_eq!(count(&jr, &["timings_seconds", "workers", "threads"]), 0, "no workers apart from the sessions");
    assert_eq!(count(&jr, &["timings_seconds", "sessions", "threads"]), 2);
    // Each session packs 32 (the image default) one-image mini-batches per call: at most one
    // short call each at the end.
    let calls = count(&jr, &["counts", "model_calls"]);
    assert!((300u64.div_ceil(32)..=300 / 32 + 2).contains(&calls), "{calls} model calls");
    assert_thread_times(&jr);
}

/// Six small CSV files for lookup.onnx (`y = 10 * int(x) + 1` for x in 0..10), three rows each;
/// `bad.csv` (the fourth) has an x out of the model's range, which fails any call it is in.
fn lookup_inputs(dir: &Path) -> Vec<(String, Vec<f64>)> {
    std::fs::create_dir_all(dir).unwrap();
    let files: Vec<(String, Vec<f64>)> = vec![
        ("a.csv".into(), vec![0.0, 1.0, 2.0]),
        ("b.csv".into(), vec![3.0, 4.5, 5.0]),
        ("c.csv".into(), vec![6.0, 7.0, 8.0]),
        ("d-bad.csv".into(), vec![9.0, 50.0, 1.0]),
        ("e.csv".into(), vec![2.0, 3.0, 4.0]),
        ("f.csv".into(), vec![5.0, 6.0, 9.9]),
    ];
    for (k, (name, xs)) in files.iter().enumerate() {
        let mut text = String::from("id,x\n");
        for (r, x) in xs.iter().enumerate() {
            text += &format!("{},{x}\n", k * 10 + r);
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
    files
}

#[test]
fn a_model_call_that_fails_on_one_file_fails_only_that_file() {
    // Single-file mini-batches packed by one session fed by two workers; by one session per
    // worker; and three-file mini-batches, which are narrowed down to the bad file.
    let cases: [&[&str]; 3] = [
        &["--mini-batch-size", "1", "--max-concurrency", "2", "--sessions", "1"],
        &["--mini-batch-size", "1", "--max-concurrency", "2"],
        &["--mini-batch-size", "3", "--max-concurrency", "1"],
    ];
    for extra in cases {
        let tmp = tempdir();
        let input = tmp.path().join("in");
        let files = lookup_inputs(&input);
        let mut args = vec!["--passthrough", "id", "--max-retries", "1"];
        args.extend_from_slice(extra);
        let out = score_ok(tmp.path(), "lookup.onnx", &input.display().to_string(), &args);

        // Every row of the good files, with the model's value; none of the bad file's.
        let (header, preds) = csv_preds(&out.join("predictions.csv"));
        assert_eq!(header, ["file", "row", "id", "y"], "{extra:?}");
        let mut want = Vec::new();
        for (k, (name, xs)) in files.iter().enumerate().filter(|(_, (n, _))| !n.contains("bad")) {
            for (r, x) in xs.iter().enumerate() {
                want.push((name.clone(), r as u64, (k * 10 + r) as u64, 10.0 * x.trunc() + 1.0));
            }
        }
        let got: Vec<(String, u64, u64, f64)> = preds
            .iter()
            .map(|p| {
                let y = p.cols["y"].as_array().and_then(|a| a[0].as_f64()).or_else(|| p.cols["y"].as_f64());
                (p.file.clone(), p.row.unwrap(), p.cols["id"].as_u64().unwrap(), y.unwrap_or(f64::NAN))
            })
            .collect();
        assert_eq!(got, want, "{extra:?}");

        // The bad file fails as a whole, after its retries, with ONNX Runtime's reason.
        let f = failures(&out);
        assert_eq!(f.len(), 1, "{extra:?}: {f:?}");
        assert_eq!(f[0]["file"], "d-bad.csv");
        assert_eq!(f[0]["items"], 3, "its three rows");
        assert_eq!(f[0]["attempts"], 2);
        assert!(f[0]["error"].as_str().unwrap().contains("out of data bounds"), "{}", f[0]["error"]);
        let jr = job_result(&out);
        assert_eq!(jr["status"], "Completed");
        assert_eq!(count(&jr, &["counts", "rows_scored"]), 15);
        assert_eq!(count(&jr, &["counts", "rows_failed"]), 3);
        assert_eq!(count(&jr, &["counts", "files_failed"]), 1);
        assert_thread_times(&jr);

        let (_, mbs) = mini_batches(&out);
        let bad: Vec<_> = mbs.iter().filter(|m| m["files"].contains("d-bad.csv")).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0]["attempts"], "2", "{extra:?}");
        for m in mbs.iter().filter(|m| !m["files"].contains("d-bad.csv")) {
            assert_eq!((m["status"].as_str(), m["attempts"].as_str()), ("completed", "1"), "{extra:?}: {m:?}");
        }
        if extra.contains(&"--sessions") {
            // One packed call over all six files, which failed; then each file's own: five
            // good ones and the bad one twice.
            assert_eq!(count(&jr, &["counts", "model_calls"]), 8, "{extra:?}");
        }
        if extra.contains(&"3") {
            assert_eq!(bad[0]["status"], "partial", "d-bad.csv failed, e.csv and f.csv scored");
        } else {
            assert_eq!(bad[0]["status"], "failed");
        }
    }
}

#[test]
fn one_input_per_column_scores_the_same_in_place_and_gathered_across_files() {
    // diabetes_multi takes one input per column. One file: each call reads the file's columns
    // in place. The same rows in 20-row CSV and Parquet files, one mini-batch: each call
    // gathers rows from several files' columns.
    let text = std::fs::read_to_string(repo().join("sample-data/diabetes/diabetes.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let rows: Vec<&str> = lines.collect();
    let tmp = tempdir();
    let (csv_dir, pq_dir) = (tmp.path().join("csv"), tmp.path().join("parquet"));
    std::fs::create_dir_all(&csv_dir).unwrap();
    std::fs::create_dir_all(&pq_dir).unwrap();
    for (k, chunk) in rows.chunks(20).enumerate() {
        let body = format!("{header}\n{}\n", chunk.join("\n"));
        std::fs::write(csv_dir.join(format!("part-{k:02}.csv")), &body).unwrap();
        // The same rows as Parquet, float64 columns, as pandas would write them.
        let mut rdr = csv::Reader::from_reader(body.as_bytes());
        let names: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
        let recs: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
        let cols: Vec<(String, arrow::array::ArrayRef)> = names
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let a: arrow::array::ArrayRef = if n == "id" {
                    std::sync::Arc::new(arrow::array::Int64Array::from_iter_values(
                        recs.iter().map(|r| r[j].parse::<i64>().unwrap()),
                    ))
                } else {
                    std::sync::Arc::new(arrow::array::Float64Array::from_iter_values(
                        recs.iter().map(|r| r[j].parse::<f64>().unwrap()),
                    ))
                };
                (n.clone(), a)
            })
            .collect();
        let batch = arrow::array::RecordBatch::try_from_iter(cols).unwrap();
        let file = std::fs::File::create(pq_dir.join(format!("part-{k:02}.parquet"))).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    let whole_tmp = tempdir();
    let whole = score_ok(whole_tmp.path(), "diabetes_multi.onnx", &data("diabetes"), &["--passthrough", "id"]);
    let (_, want) = csv_preds(&whole.join("predictions.csv"));
    assert_eq!(want.len(), 442);
    for dir in [&csv_dir, &pq_dir] {
        let run_tmp = tempdir();
        let out = score_ok(
            run_tmp.path(),
            "diabetes_multi.onnx",
            &dir.display().to_string(),
            &["--passthrough", "id", "--mini-batch-size", "100", "--batch-size", "64"],
        );
        let (_, got) = csv_preds(&out.join("predictions.csv"));
        assert_eq!(got.len(), 442, "{}", dir.display());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.cols["id"], w.cols["id"]);
            let at = format!("{} id {}", dir.display(), g.cols["id"]);
            if let Some(d) = diff(&g.cols["prediction"], &w.cols["prediction"], Tol { abs: 1e-5, rel: 1e-5 }, &at) {
                panic!("{d}");
            }
        }
        let jr = job_result(&out);
        assert_eq!(jr["model"]["feeder"]["mode"], "named");
        // 442 rows in one mini-batch, 64 per call.
        assert_eq!(count(&jr, &["counts", "model_calls"]), 7, "{}", dir.display());
    }
}

#[test]
fn more_sessions_than_workers_are_not_opened() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, i, o) = (model("digits_mlp.onnx"), data("digits"), out.display().to_string());
    let run =
        score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--max-concurrency", "1", "--sessions", "3"]);
    run.expect_code(0).no_panic().stderr_has(&["--sessions 3", "only 1 worker(s)", "using 1"]);
    let jr = job_result(&out);
    assert_eq!(jr["model"]["sessions"], 1);
    assert_eq!(count(&jr, &["timings_seconds", "sessions", "threads"]), 1, "one thread reads, decodes and scores");
    assert_eq!(count(&jr, &["counts", "rows_scored"]), 300);
}

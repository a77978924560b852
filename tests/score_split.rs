//! Mini-batches of rows or bytes: large tabular files split below file level (Parquet by row
//! groups, CSV at record boundaries), with the same predictions, row numbers and per-item
//! failure accounting as unsplit runs.
//!
//! Byte-for-byte comparisons with an unsplit run pin `--batch-size 1`, so that every model call
//! has one row in both runs. ONNX Runtime's kernels do not promise the same last float bit for
//! a row whatever the size of the call it is in (a one-row call takes a matrix-vector path in
//! the linear iris model; the wine tree ensemble sums its trees in another order past a few
//! dozen rows), and splitting changes call sizes, as `--mini-batch-size 1` already does. Runs at
//! the default batch size are checked against the reference predictions instead.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Runs a model over `input` with extra flags into `<tmp>/<name>`; must exit `code`.
#[track_caller]
fn run(tmp: &Path, name: &str, model_name: &str, input: &str, extra: &[&str], code: i32) -> PathBuf {
    let out = tmp.join(name);
    let (m, o) = (model(model_name), out.display().to_string());
    let mut args = vec!["--model", &m, "--input", input, "--output", &o];
    args.extend_from_slice(extra);
    let r = score(tmp, &args);
    r.expect_code(code).no_panic();
    out
}

fn predictions(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("predictions.csv")).unwrap_or_else(|e| panic!("read {}: {e}", out.display()))
}

/// The `files` column of `mini_batches.csv`.
fn mini_batch_files(out: &Path) -> Vec<String> {
    mini_batches(out).1.into_iter().map(|m| m["files"].clone()).collect()
}

#[track_caller]
fn assert_same_predictions(a: &Path, b: &Path) {
    let (pa, pb) = (predictions(a), predictions(b));
    if pa != pb {
        let (ta, tb) = (String::from_utf8_lossy(&pa), String::from_utf8_lossy(&pb));
        let first = ta.lines().zip(tb.lines()).position(|(x, y)| x != y);
        panic!(
            "{} and {} differ (line {first:?}): {:?} vs {:?}",
            a.display(),
            b.display(),
            first.and_then(|i| ta.lines().nth(i)),
            first.and_then(|i| tb.lines().nth(i))
        );
    }
}

/// Checks a split run against the unsplit one (same `pin` flags), the reference, and its plan.
#[track_caller]
fn check_split(
    tmp: &Path,
    model_name: &str,
    input: &str,
    reference_name: &str,
    split: &[&str],
    mini_batch_count: usize,
    unsplit_pinned: &Path,
) -> PathBuf {
    let tag = split.join("_").replace("--", "");
    // Byte for byte, with one-row model calls in both runs.
    let mut pinned: Vec<&str> = vec!["--passthrough", "id", "--batch-size", "1"];
    pinned.extend_from_slice(split);
    let out = run(tmp, &format!("pinned_{tag}"), model_name, input, &pinned, 0);
    assert_same_predictions(unsplit_pinned, &out);
    assert_eq!(mini_batches(&out).1.len(), mini_batch_count, "mini-batches with {split:?}");
    // At the default batch size: the reference predictions.
    let mut args: Vec<&str> = vec!["--passthrough", "id"];
    args.extend_from_slice(split);
    let out = run(tmp, &tag, model_name, input, &args, 0);
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    assert_parity(&preds, &reference(reference_name), TOL);
    let jr = job_result(&out);
    assert_eq!(jr["counts"]["mini_batches_total"], mini_batch_count as u64);
    assert_eq!(jr["counts"]["files_scored"], jr["counts"]["files_total"], "every file counted once");
    assert_eq!(jr["counts"]["items_failed"], 0);
    assert_eq!(mini_batches(&out).1.len(), mini_batch_count);
    out
}

#[test]
fn iris_csv_split_by_rows_and_size() {
    let tmp = tempdir();
    let t = tmp.path();
    let iris = data("iris");
    let default = run(t, "default", "iris_zipmap.onnx", &iris, &["--passthrough", "id"], 0);
    let pinned = run(t, "pinned", "iris_zipmap.onnx", &iris, &["--passthrough", "id", "--batch-size", "1"], 0);

    // 50 rows per file: pieces of 20, 20 and 10 rows, counted exactly (the files are small).
    let rows20 =
        check_split(t, "iris_zipmap.onnx", &iris, "iris_zipmap__iris.jsonl", &["--mini-batch-rows", "20"], 9, &pinned);
    let files = mini_batch_files(&rows20);
    assert_eq!(files[0], "part-0.csv[bytes 0-422]");
    assert!(files.iter().all(|f| f.contains(".csv[bytes ")), "{files:?}");
    let rows: Vec<String> = mini_batches(&rows20).1.iter().map(|m| m["rows"].clone()).collect();
    assert_eq!(rows, ["20", "20", "10", "20", "20", "10", "20", "20", "10"]);
    assert_eq!(job_result(&rows20)["settings"]["mini_batch_rows"], 20);
    // This model happens to give the same bits for calls of 10 to 150 rows.
    assert_same_predictions(&default, &rows20);

    check_split(t, "iris_zipmap.onnx", &iris, "iris_zipmap__iris.jsonl", &["--mini-batch-rows", "1"], 150, &pinned);

    // 993, 1003 and 1053 bytes: two files whole, the third cut at byte 1024.
    let kb =
        check_split(t, "iris_zipmap.onnx", &iris, "iris_zipmap__iris.jsonl", &["--mini-batch-size", "1KB"], 4, &pinned);
    assert_eq!(
        mini_batch_files(&kb),
        ["part-0.csv", "part-1.csv", "part-2.csv[bytes 0-1023]", "part-2.csv[bytes 1024-1052]"]
    );
    let s = &job_result(&kb)["settings"];
    assert_eq!((s["mini_batch_size"].as_str(), s["mini_batch_bytes"].as_u64()), (Some("1KB"), Some(1024)));
}

#[test]
fn wine_parquet_split_by_row_groups() {
    let tmp = tempdir();
    let t = tmp.path();
    let wine = data("wine");
    let pinned = run(t, "pinned", "wine_tensor.onnx", &wine, &["--passthrough", "id", "--batch-size", "1"], 0);
    // Two files of 89 rows in row groups of 25: a row group is the smallest piece.
    let want = [
        "part-0.parquet[rows 0-24]",
        "part-0.parquet[rows 25-49]",
        "part-0.parquet[rows 50-74]",
        "part-0.parquet[rows 75-88]",
        "part-1.parquet[rows 0-24]",
        "part-1.parquet[rows 25-49]",
        "part-1.parquet[rows 50-74]",
        "part-1.parquet[rows 75-88]",
    ];
    for split in [["--mini-batch-rows", "20"], ["--mini-batch-rows", "1"], ["--mini-batch-size", "1KB"]] {
        let out = check_split(t, "wine_tensor.onnx", &wine, "wine_tensor__wine.jsonl", &split, 8, &pinned);
        assert_eq!(mini_batch_files(&out), want, "{split:?}");
    }
    // Row groups are grouped up to the target.
    let out =
        check_split(t, "wine_tensor.onnx", &wine, "wine_tensor__wine.jsonl", &["--mini-batch-rows", "60"], 4, &pinned);
    assert_eq!(mini_batch_files(&out)[1], "part-0.parquet[rows 50-88]");
    // Small files are grouped whole.
    let out = check_split(
        t,
        "wine_tensor.onnx",
        &wine,
        "wine_tensor__wine.jsonl",
        &["--mini-batch-rows", "1000"],
        1,
        &pinned,
    );
    assert_eq!(mini_batch_files(&out), ["part-0.parquet;part-1.parquet"]);
}

// ---------------------------------------------------------------------------------------------
// Generated CSV files

const IRIS_FEATURES: &str = "sepal_length,sepal_width,petal_length,petal_width";

/// The 150 iris rows as (id, the four features as written in the sample data).
fn iris_rows() -> Vec<(u64, Vec<String>)> {
    let mut rows = Vec::new();
    for part in 0..3 {
        let (header, recs) = read_csv(Path::new(&data(&format!("iris/part-{part}.csv"))));
        assert_eq!(header.join(","), format!("id,{IRIS_FEATURES}"));
        for r in recs {
            rows.push((r[0].parse().unwrap(), r[1..].to_vec()));
        }
    }
    rows
}

/// A note that needs quoting: commas, newlines (LF and CRLF), doubled quotes, or nothing.
fn note(i: u64) -> String {
    match i % 5 {
        0 => format!("plain {i}"),
        1 => format!("a, b, c {i}"),
        2 => format!("line one\nline two, {i}\nline three"),
        3 => format!("she said \"hi\"\r\nthen left {i}"),
        _ => String::new(),
    }
}

/// Writes `rows` times the iris rows (ids made unique) with a note column to `path`.
fn write_noted_csv(path: &Path, copies: u64, crlf: bool) -> u64 {
    let iris = iris_rows();
    let mut w = csv::WriterBuilder::new()
        .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
        .from_path(path)
        .unwrap();
    w.write_record(["id", "note", "sepal_length", "sepal_width", "petal_length", "petal_width"]).unwrap();
    let mut n = 0;
    for c in 0..copies {
        for (id, f) in &iris {
            let id = c * 1000 + id;
            let mut rec = vec![id.to_string(), note(id)];
            rec.extend(f.iter().cloned());
            w.write_record(&rec).unwrap();
            n += 1;
        }
    }
    w.flush().unwrap();
    n
}

/// Every prediction's `row` is its position in its file, and the pass-through columns came along.
#[track_caller]
fn assert_rows_in_file_order(out: &Path, rows_per_file: &BTreeMap<String, u64>) {
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    for p in &preds {
        let n = next.entry(p.file.clone()).or_default();
        assert_eq!(p.row, Some(*n), "{} rows in order", p.file);
        *n += 1;
        let id = p.cols["id"].as_u64().expect("id");
        assert_eq!(p.cols["note"], cell_value(&note(id)), "note of id {id}");
    }
    assert_eq!(&next, rows_per_file);
}

#[test]
fn quoted_fields_with_commas_and_newlines_keep_exact_row_numbers() {
    let tmp = tempdir();
    let t = tmp.path();
    let input = t.join("notes");
    std::fs::create_dir(&input).unwrap();
    // A small file (counted exactly at plan time), and one larger than the 64 KiB plan-time
    // sample (cut by bytes at its estimated row width), with CRLF line ends.
    let small = write_noted_csv(&input.join("a.csv"), 1, false);
    let large = write_noted_csv(&input.join("b.csv"), 16, true);
    assert!(std::fs::metadata(input.join("b.csv")).unwrap().len() > 64 * 1024);
    let want = BTreeMap::from([("a.csv".to_string(), small), ("b.csv".to_string(), large)]);
    let input = input.display().to_string();
    let pass = ["--passthrough", "id,note", "--batch-size", "1"];
    let unsplit = run(t, "unsplit", "iris_zipmap.onnx", &input, &pass, 0);
    assert_rows_in_file_order(&unsplit, &want);

    for (name, split) in [
        ("rows7", ["--mini-batch-rows", "7"]),
        ("rows100", ["--mini-batch-rows", "100"]),
        ("b64", ["--mini-batch-size", "64B"]),
    ] {
        let mut args = pass.to_vec();
        args.extend_from_slice(&split);
        let out = run(t, name, "iris_zipmap.onnx", &input, &args, 0);
        assert_same_predictions(&unsplit, &out);
        assert_rows_in_file_order(&out, &want);
        let jr = job_result(&out);
        assert_eq!(jr["counts"]["rows_scored"], small + large);
        assert_eq!(jr["counts"]["files_scored"], 2);
        let mbs = jr["counts"]["mini_batches_total"].as_u64().unwrap();
        assert!(mbs > 10, "{name}: {mbs} mini-batches");
        // Pieces that no record starts in are empty, not errors.
        assert_eq!(jr["counts"]["items_failed"], 0, "{name}");
    }
}

#[test]
fn a_bad_row_in_a_split_csv_fails_alone_with_its_row_number() {
    let tmp = tempdir();
    let t = tmp.path();
    let input = t.join("in");
    std::fs::create_dir(&input).unwrap();
    let mut text = format!("id,{IRIS_FEATURES}\n");
    for (id, f) in iris_rows() {
        let f = if id == 37 { vec![f[0].clone(), "abc".into(), f[2].clone(), f[3].clone()] } else { f };
        text.push_str(&format!("{id},{}\n", f.join(",")));
    }
    std::fs::write(input.join("x.csv"), text).unwrap();
    let input = input.display().to_string();
    for split in [["--mini-batch-rows", "10"], ["--mini-batch-size", "200B"]] {
        let mut args = vec!["--passthrough", "id"];
        args.extend_from_slice(&split);
        let out = run(t, &split[1].to_lowercase(), "iris_zipmap.onnx", &input, &args, 0);
        let f = failures(&out);
        assert_eq!(f.len(), 1, "{split:?}: {f:?}");
        assert_eq!((f[0]["file"].as_str(), f[0]["row"].as_u64()), (Some("x.csv"), Some(37)));
        assert!(f[0]["error"].as_str().unwrap().contains("\"abc\""), "{f:?}");
        let jr = job_result(&out);
        assert_eq!((jr["counts"]["rows_scored"].as_u64(), jr["counts"]["rows_failed"].as_u64()), (Some(149), Some(1)));
        assert_eq!(jr["first_failure"]["row"], 37);
        let partial: Vec<_> = mini_batches(&out).1.into_iter().filter(|m| m["status"] == "partial").collect();
        assert_eq!(partial.len(), 1, "{split:?}");
        let (_, preds) = csv_preds(&out.join("predictions.csv"));
        let rows: Vec<u64> = preds.iter().map(|p| p.row.unwrap()).collect();
        let want: Vec<u64> = (0..150).filter(|r| *r != 37).collect();
        assert_eq!(rows, want, "{split:?}");
    }
}

#[test]
fn a_damaged_row_group_fails_its_piece_only() {
    let tmp = tempdir();
    let t = tmp.path();
    let input = t.join("wine");
    std::fs::create_dir(&input).unwrap();
    for f in ["part-0.parquet", "part-1.parquet"] {
        std::fs::copy(data(&format!("wine/{f}")), input.join(f)).unwrap();
    }
    // Overwrite the page header of the first column chunk of row group 1 of part-0.
    let path = input.join("part-0.parquet");
    let start = {
        use parquet::file::reader::FileReader;
        let r =
            parquet::file::serialized_reader::SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let col = r.metadata().row_group(1).column(0);
        col.dictionary_page_offset().unwrap_or(col.data_page_offset()) as usize
    };
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[start..start + 16].fill(0xff);
    std::fs::write(&path, bytes).unwrap();

    let input = input.display().to_string();
    let out = run(t, "out", "wine_tensor.onnx", &input, &["--passthrough", "id", "--mini-batch-rows", "25"], 0);
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["file"], "part-0.parquet");
    assert_eq!(f[0]["piece"], "rows 25-49");
    assert_eq!(f[0]["rows"], serde_json::json!([25, 49]));
    assert_eq!(f[0]["items"], 1);
    assert!(f[0].get("row").is_none_or(Value::is_null));
    let jr = job_result(&out);
    assert_eq!(jr["counts"]["rows_scored"], 178 - 25);
    assert_eq!((jr["counts"]["files_scored"].as_u64(), jr["counts"]["files_failed"].as_u64()), (Some(1), Some(1)));
    let (_, mbs) = mini_batches(&out);
    let failed: Vec<&str> = mbs.iter().filter(|m| m["status"] == "failed").map(|m| m["files"].as_str()).collect();
    assert_eq!(failed, ["part-0.parquet[rows 25-49]"]);
    // The other pieces' rows are all there, in order, and match the reference.
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    let reference: Vec<RefRow> = reference("wine_tensor__wine.jsonl")
        .into_iter()
        .filter(|r| !(r.file == "part-0.parquet" && (25..50).contains(&r.row.unwrap())))
        .collect();
    assert_parity(&preds, &reference, TOL);
}

// ---------------------------------------------------------------------------------------------
// Settings

#[test]
fn bad_split_settings_exit_2_naming_the_setting() {
    let (m, iris, digits) = (model("iris_zipmap.onnx"), data("iris"), data("digits"));
    let digits_model = model("digits_mlp.onnx");
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (&m, &iris, &["--mini-batch-rows", "0"], &["mini_batch_rows", "\"0\"", ">= 1"]),
        (&m, &iris, &["--mini-batch-rows", "many"], &["mini_batch_rows", "many"]),
        (&m, &iris, &["--mini-batch-size", "12XB"], &["mini_batch_size", "12XB", "64MB"]),
        (&m, &iris, &["--mini-batch-size", "0KB"], &["mini_batch_size", "0KB"]),
        (
            &m,
            &iris,
            &["--mini-batch-rows", "10", "--mini-batch-size", "64MB"],
            &["mini_batch_rows", "mini_batch_size (64MB)", "only one"],
        ),
        (
            &digits_model,
            &digits,
            &["--mini-batch-rows", "10"],
            &["--mini-batch-rows 10", "images", "--mini-batch-size 32"],
        ),
        (&digits_model, &digits, &["--mini-batch-size", "1MB"], &["--mini-batch-size 1MB", "images"]),
    ];
    for (model_path, input, extra, needles) in cases {
        let tmp = tempdir();
        let out = tmp.path().join("out");
        let o = out.display().to_string();
        let mut args = vec!["--model", model_path, "--input", input, "--output", &o];
        args.extend_from_slice(extra);
        let r = score(tmp.path(), &args);
        r.expect_code(2).no_panic().stderr_has(needles);
        assert!(!out.exists(), "{extra:?} created {}", out.display());
    }
}

#[test]
fn deployment_files_give_the_split_forms() {
    let tmp = tempdir();
    let t = tmp.path();
    let m = model("iris_zipmap.onnx");
    let write = |name: &str, text: &str| {
        let p = t.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    // Azure ML's own form for tabular data.
    let size = write("size.yml", "settings:\n  mini_batch_size: 1KB\nbatchscore:\n  passthrough: [id]\n");
    let out = run(t, "size", "iris_zipmap.onnx", &data("iris"), &["--config", &size], 0);
    assert_eq!(job_result(&out)["settings"]["mini_batch_bytes"], 1024);
    assert_eq!(mini_batches(&out).1.len(), 4);
    let rows = write("rows.yml", "batchscore:\n  mini_batch_rows: 20\n  passthrough: [id]\n");
    let out = run(t, "rows", "iris_zipmap.onnx", &data("iris"), &["--config", &rows], 0);
    assert_eq!(job_result(&out)["settings"]["mini_batch_rows"], 20);
    assert_eq!(mini_batches(&out).1.len(), 9);
    // A flag for one form replaces the file's other form.
    let out = run(t, "flag", "iris_zipmap.onnx", &data("iris"), &["--config", &rows, "--mini-batch-size", "2"], 0);
    let s = &job_result(&out)["settings"];
    assert_eq!((s["mini_batch_size"].as_u64(), s.get("mini_batch_rows")), (Some(2), None));
    // Both in one file: refused.
    let both = write("both.yml", "settings:\n  mini_batch_size: 64MB\nbatchscore:\n  mini_batch_rows: 20\n");
    let o = t.join("both").display().to_string();
    let r = score(t, &["--model", &m, "--input", &data("iris"), "--output", &o, "--config", &both]);
    r.expect_code(2).no_panic().stderr_has(&["both.yml", "mini_batch_rows", "only one"]);
}

//! Tabular files as the tools users have write them (pandas, polars, duckdb, pyarrow, Spark;
//! `models/generate_realworld.py`), scored end to end and compared with what Python
//! onnxruntime gives on the same files read by pandas (`models/reference/realworld/`):
//! predictions, pass-through columns copied verbatim, the policy for missing and non-finite
//! values, compressed and JSON Lines inputs, pandas index columns, files that disagree on a
//! column's type, empty files, and outputs of every rank.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use common::*;
use serde_json::Value;

const IRIS_FEATURES: &str = "sepal_length,sepal_width,petal_length,petal_width";

fn folder(name: &str) -> String {
    data(&format!("realworld/tabular/{name}"))
}

/// `models/reference/realworld/<name>.jsonl`, one value per line.
fn reference_lines(name: &str) -> Vec<Value> {
    let path = repo().join("models/reference/realworld").join(format!("{name}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("JSON")).collect()
}

/// Runs the iris classifier (or `model_name`) over a folder into `<tmp>/<out>`.
fn job(tmp: &Path, model_name: &str, input: &str, out: &str, extra: &[&str]) -> (PathBuf, Run) {
    let out = tmp.join(out);
    let (m, o) = (model(model_name), out.display().to_string());
    let mut args = vec!["--model", m.as_str(), "--input", input, "--output", o.as_str()];
    args.extend_from_slice(extra);
    let run = score(tmp, &args);
    run.no_panic();
    (out, run)
}

/// Checks every reference row: scored rows match Python's predictions, failing rows fail
/// alone with the column and value named.
#[track_caller]
fn assert_reference(out: &Path, preds: &[Pred], reference: &str) {
    assert_reference_of(out, preds, reference, None)
}

/// [`assert_reference`] for the reference rows of one file only.
#[track_caller]
fn assert_reference_of(out: &Path, preds: &[Pred], reference: &str, only: Option<&str>) {
    let by_row: BTreeMap<(String, u64), &Pred> =
        preds.iter().map(|p| ((p.file.clone(), p.row.expect("tabular")), p)).collect();
    let failures: BTreeMap<(String, u64), String> = failures(out)
        .into_iter()
        .filter_map(|f| Some(((f["file"].as_str()?.to_string(), f["row"].as_u64()?), f["error"].as_str()?.to_string())))
        .collect();
    let mut lines = reference_lines(reference);
    lines.retain(|l| only.is_none_or(|f| l["file"] == f));
    assert!(!lines.is_empty(), "{reference}: no reference rows");
    let mut scored = 0;
    for r in &lines {
        let key = (r["file"].as_str().unwrap().to_string(), r["row"].as_u64().unwrap());
        if let Some(col) = r["fails"].as_str() {
            let err =
                failures.get(&key).unwrap_or_else(|| panic!("{key:?} should fail ({col}); failures: {failures:?}"));
            let value = r["value"].as_str().unwrap_or_default();
            assert!(err.contains(col), "{key:?}: {err}");
            if value.is_empty() || value == "null" {
                assert!(err.contains("missing"), "{key:?}: {err}");
            } else {
                assert!(err.contains(value) || err.contains(&value.to_lowercase()), "{key:?} value {value}: {err}");
            }
            assert!(!by_row.contains_key(&key), "{key:?} failed and yet has a prediction");
            continue;
        }
        let p =
            by_row.get(&key).unwrap_or_else(|| panic!("{key:?}: no prediction (failures: {:?})", failures.get(&key)));
        for (name, want) in r["outputs"].as_object().unwrap() {
            if let Some(d) = diff(&p.cols[name], want, TOL, &format!("{key:?} {name}")) {
                panic!("{d}");
            }
        }
        scored += 1;
    }
    assert_eq!(preds.len(), scored, "{reference}: every prediction is a reference row");
}

/// The pass-through values a CSV-writing tool stored, as raw text by (file, row).
fn passthrough_text(name: &str) -> BTreeMap<(String, u64), serde_json::Map<String, Value>> {
    reference_lines(&format!("{name}.passthrough"))
        .into_iter()
        .map(|r| {
            let key = (r["file"].as_str().unwrap().to_string(), r["row"].as_u64().unwrap());
            (key, r["passthrough"].as_object().unwrap().clone())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CSV as pandas writes it

#[test]
fn pandas_csv_files_plain_and_compressed_keep_their_text_verbatim() {
    let tmp = tempdir();
    let pass = "--passthrough=code,big,price,when";
    for (out, format) in [("csv", "predictions.csv"), ("pq", "predictions.parquet")] {
        let (out, run) =
            job(tmp.path(), "iris_zipmap.onnx", &folder("pandas-csv"), out, &[pass, "--output-file-name", format]);
        run.expect_code(0);
        let preds = if format.ends_with(".csv") {
            csv_preds(&out.join(format)).1
        } else {
            let (cols, preds) = parquet_preds(&out.join(format));
            // CSV text stays text, whatever it looks like.
            for (name, ty) in &cols {
                if ["code", "big", "price", "when"].contains(&name.as_str()) {
                    assert_eq!(ty, &DataType::Utf8, "{name}");
                }
            }
            preds
        };
        assert_reference(&out, &preds, "pandas-csv");
        let want = passthrough_text("pandas-csv");
        let raw = |p: &Pred, c: &str| -> String {
            match &p.cols[c] {
                Value::String(s) => s.clone(),
                // A CSV output cell that parses as a number: compare its text.
                other => other.to_string(),
            }
        };
        for p in &preds {
            let w = &want[&(p.file.clone(), p.row.unwrap())];
            for c in ["code", "big", "price", "when"] {
                let got = if format.ends_with(".csv") { cell_text(&out.join(format), p, c) } else { raw(p, c) };
                assert_eq!(got, w[c].as_str().unwrap(), "{} row {:?} {c}", p.file, p.row);
            }
        }
        let files: std::collections::BTreeSet<&str> = preds.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(
            files.into_iter().collect::<Vec<_>>(),
            ["bzip2.csv.bz2", "gzip.csv.gz", "plain.csv", "zstd.csv.zst"]
        );
        // The pandas index column is no feature, and the report says so.
        let notes = job_result(&out)["notes"].to_string();
        assert!(notes.contains("Unnamed: 0") && notes.contains("pandas index"), "{notes}");
    }
}

/// The raw text of one cell of a predictions CSV (the helpers parse numbers).
fn cell_text(csv: &Path, p: &Pred, column: &str) -> String {
    let (header, rows) = read_csv(csv);
    let (fi, ri, ci) = (
        header.iter().position(|h| h == "file").unwrap(),
        header.iter().position(|h| h == "row").unwrap(),
        header.iter().position(|h| h == column).unwrap(),
    );
    let row = p.row.unwrap().to_string();
    rows.iter().find(|r| r[fi] == p.file && r[ri] == row).map(|r| r[ci].clone()).expect("the row")
}

#[test]
fn a_semicolon_file_names_the_options_and_reads_with_them() {
    let tmp = tempdir();
    let (out, run) = job(tmp.path(), "iris_zipmap.onnx", &folder("pandas-european"), "plain", &[]);
    run.expect_code(1).stderr_has(&["european.csv", "--csv-delimiter ';'", "--decimal-mark ','"]);
    assert!(!out.join("predictions.csv").exists());
    let (out, run) = job(
        tmp.path(),
        "iris_zipmap.onnx",
        &folder("pandas-european"),
        "dialect",
        &["--csv-delimiter", ";", "--decimal-mark", ",", "--passthrough", "name,amount,datum"],
    );
    run.expect_code(0);
    let preds = csv_preds(&out.join("predictions.csv")).1;
    assert_reference(&out, &preds, "pandas-european");
    let want = passthrough_text("pandas-european");
    for p in &preds {
        let w = &want[&(p.file.clone(), p.row.unwrap())];
        for c in ["name", "amount", "datum"] {
            assert_eq!(cell_text(&out.join("predictions.csv"), p, c), w[c].as_str().unwrap(), "{c}");
        }
    }
}

#[test]
fn json_lines_from_polars_and_pandas() {
    let tmp = tempdir();
    let (out, run) = job(tmp.path(), "iris_zipmap.onnx", &folder("polars"), "out", &["--passthrough", "id,label,when"]);
    run.expect_code(0);
    let preds = csv_preds(&out.join("predictions.csv")).1;
    assert_reference(&out, &preds, "polars");
    let files: std::collections::BTreeSet<&str> = preds.iter().map(|p| p.file.as_str()).collect();
    assert!(files.contains("polars.jsonl") && files.contains("polars.ndjson"), "{files:?}");
    let want = passthrough_text("polars");
    for p in preds.iter().filter(|p| p.file.ends_with(".csv") || p.file.ends_with("json")) {
        let w = &want[&(p.file.clone(), p.row.unwrap())];
        let label = cell_text(&out.join("predictions.csv"), p, "label");
        assert_eq!(label, w["label"].as_str().unwrap(), "{} {:?}", p.file, p.row);
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet types kept

/// The pass-through columns of a Parquet input, read with the parquet crate.
fn input_columns(path: &Path, names: &[&str]) -> Vec<(String, arrow::array::ArrayRef)> {
    let batches = read_parquet(path);
    let schema = batches[0].schema();
    names
        .iter()
        .map(|n| {
            let i = schema.index_of(n).unwrap_or_else(|_| panic!("{n} in {}", path.display()));
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            (n.to_string(), arrow::compute::concat(&parts).unwrap())
        })
        .collect()
}

/// Scores one Parquet folder into Parquet and CSV and checks the pass-through columns: the
/// same Arrow type and values in Parquet, each value's own text in CSV.
fn parquet_passthrough_kept(name: &str, file: &str, columns: &[&str], extra: &[&str]) {
    let tmp = tempdir();
    let pass = format!("--passthrough={}", columns.join(","));
    let mut args = vec![pass.as_str(), "--features", IRIS_FEATURES];
    args.extend_from_slice(extra);
    let input = folder(name);
    let source = input_columns(&Path::new(&input).join(file), columns);
    let mut pq_args = args.clone();
    pq_args.extend(["--output-file-name", "p.parquet"]);
    let (out, run) = job(tmp.path(), "iris_zipmap.onnx", &input, "pq", &pq_args);
    run.expect_code(0);
    let batches = read_parquet(&out.join("p.parquet"));
    let rows: Vec<u64> = batches
        .iter()
        .flat_map(|b| b.column_by_name("row").unwrap().as_primitive::<arrow::datatypes::UInt64Type>().values().to_vec())
        .collect();
    for (col, src) in &source {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column_by_name(col).unwrap().as_ref()).collect();
        let got = arrow::compute::concat(&parts).unwrap();
        assert_eq!(got.data_type(), src.data_type(), "{name}/{file} {col}: the type as stored");
        for (k, row) in rows.iter().enumerate() {
            let (g, w) = (got.slice(k, 1), src.slice(*row as usize, 1));
            assert_eq!(
                arrow::util::display::array_value_to_string(&g, 0).unwrap(),
                arrow::util::display::array_value_to_string(&w, 0).unwrap(),
                "{name}/{file} {col} row {row}"
            );
            assert_eq!(g.is_null(0), w.is_null(0), "{col} row {row}");
        }
    }
    let (out, run) = job(tmp.path(), "iris_zipmap.onnx", &input, "csv", &args);
    run.expect_code(0);
    let (header, rows) = read_csv(&out.join("predictions.csv"));
    let ri = header.iter().position(|h| h == "row").unwrap();
    for (col, src) in &source {
        let ci = header.iter().position(|h| h == col).unwrap();
        for r in &rows {
            let row: usize = r[ri].parse().unwrap();
            let want = if src.is_null(row) {
                String::new()
            } else {
                arrow::util::display::array_value_to_string(src, row).unwrap()
            };
            assert!(want.is_empty() || !r[ci].is_empty(), "{col} row {row}: written empty");
            assert_eq!(r[ci], want, "{name}/{file} {col} row {row}");
        }
    }
}

#[test]
fn pyarrow_decimals_dictionaries_and_zoned_timestamps_are_kept() {
    parquet_passthrough_kept(
        "pyarrow",
        "types.parquet",
        &["amount", "tag", "ts_berlin", "ts_offset", "ts_naive", "flag", "id"],
        &["--pattern", "types.parquet"],
    );
}

#[test]
fn pandas_parquet_categories_nullable_ints_and_berlin_time_are_kept() {
    parquet_passthrough_kept(
        "pandas-parquet",
        "pandas.parquet",
        &["species_name", "count", "when", "__index_level_0__"],
        &[],
    );
    // Without --features, the pandas index is left out of the features with a note.
    let tmp = tempdir();
    let (out, run) = job(
        tmp.path(),
        "iris_zipmap.onnx",
        &folder("pandas-parquet"),
        "out",
        &["--passthrough", "species_name,count,when"],
    );
    run.expect_code(0);
    assert_reference(&out, &csv_preds(&out.join("predictions.csv")).1, "pandas-parquet");
    assert!(job_result(&out)["notes"].to_string().contains("__index_level_0__"), "{}", job_result(&out)["notes"]);
}

#[test]
fn duckdb_decimal_and_timestamptz_are_kept() {
    parquet_passthrough_kept("duckdb", "duckdb.parquet", &["amount", "ts", "name"], &["--pattern", "*.parquet"]);
}

#[test]
fn spark_int96_timestamps_and_decimals_are_kept_and_its_markers_skipped() {
    parquet_passthrough_kept(
        "spark",
        "part-00000-d98b5a7a-4431-5c3e-a936-ecd44ea1ec31-c000.snappy.parquet",
        &["ts", "amount", "name"],
        &[],
    );
    let tmp = tempdir();
    let (out, run) = job(tmp.path(), "iris_zipmap.onnx", &folder("spark"), "out", &["--passthrough", "ts,amount,name"]);
    run.expect_code(0);
    assert_reference(&out, &csv_preds(&out.join("predictions.csv")).1, "spark");
    // _SUCCESS and .crc files are Spark's markers: left out silently, as Hadoop tools do.
    assert_eq!(job_result(&out)["counts"]["files_total"], 1);
    assert_eq!(job_result(&out)["counts"]["files_skipped"], 0);
}

#[test]
fn files_that_disagree_on_a_column_type_unify_without_failing() {
    let tmp = tempdir();
    let (out, run) = job(
        tmp.path(),
        "iris_zipmap.onnx",
        &folder("mixed-types"),
        "out",
        &["--passthrough", "id,ts", "--output-file-name", "p.parquet"],
    );
    run.expect_code(0);
    let (cols, preds) = parquet_preds_raw(&out.join("p.parquet"));
    // int32 + int64 + string: text, each value as its own type writes it; ns + us in UTC: ns.
    assert_eq!(cols["id"], DataType::Utf8);
    assert!(
        matches!(&cols["ts"], DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, Some(z)) if z.as_ref() == "UTC"),
        "{:?}",
        cols["ts"]
    );
    assert_eq!(preds.len(), 30);
    let want = reference_lines("mixed-types.passthrough");
    for (p, w) in preds.iter().zip(&want) {
        assert_eq!(p["id"], w["passthrough"]["id"]["text"].as_str().unwrap(), "{p:?}");
        assert!(!p["ts"].is_empty(), "{p:?}");
    }
    assert_reference(&out, &parquet_preds(&out.join("p.parquet")).1, "mixed-types");
}

/// Parquet output rows as text per column, and the column types.
fn parquet_preds_raw(path: &Path) -> (BTreeMap<String, DataType>, Vec<BTreeMap<String, String>>) {
    let batches = read_parquet(path);
    let schema = batches[0].schema();
    let cols = schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    let mut rows = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            rows.push(
                schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(k, f)| {
                        (f.name().clone(), arrow::util::display::array_value_to_string(b.column(k), i).unwrap())
                    })
                    .collect(),
            );
        }
    }
    (cols, rows)
}

// ---------------------------------------------------------------------------------------------
// Non-finite values

#[test]
fn nan_and_infinities_fail_their_rows_unless_let_through() {
    let tmp = tempdir();
    let args = ["--pattern", "nonfinite.parquet", "--passthrough", "id"];
    let (out, run) = job(tmp.path(), "iris_zipmap.onnx", &folder("pyarrow"), "default", &args);
    run.expect_code(0);
    assert_reference_of(&out, &csv_preds(&out.join("predictions.csv")).1, "pyarrow", Some("nonfinite.parquet"));
    let errors: Vec<String> = failures(&out).iter().map(|f| f["error"].as_str().unwrap().to_string()).collect();
    assert!(errors.iter().any(|e| e.contains("NaN")) && errors.iter().any(|e| e.contains("inf")), "{errors:?}");
    for e in &errors {
        let hint = if e.contains("missing") { "--missing-as-nan" } else { "--allow-non-finite" };
        assert!(e.contains(hint), "{e}");
    }

    // A model that reads NaN as missing (LightGBM, converted by onnxmltools), fed everything.
    let mut all = args.to_vec();
    all.extend(["--allow-non-finite", "--missing-as-nan"]);
    let (out, run) = job(tmp.path(), "lgbm_iris.onnx", &folder("pyarrow"), "lgbm", &all);
    run.expect_code(0);
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    assert_parity(&preds, &reference_rows("lgbm_iris__nonfinite"), Tol { abs: 1e-5, rel: 0.0 });
    assert!(failures(&out).is_empty());
}

/// A reference file in the `RefRow` form.
fn reference_rows(name: &str) -> Vec<RefRow> {
    reference_lines(name)
        .into_iter()
        .map(|v| RefRow {
            file: v["file"].as_str().unwrap().to_string(),
            row: v["row"].as_u64(),
            outputs: v["outputs"].as_object().unwrap().clone(),
        })
        .collect()
}

#[test]
fn non_finite_outputs_are_written_the_same_way_in_csv_and_parquet() {
    let tmp = tempdir();
    let input = tmp.path().join("x.csv");
    std::fs::write(&input, "a,b,c,d,e,f\n1,NaN,inf,-inf,1e309,6\n").unwrap();
    let i = input.display().to_string();
    let (out, run) = job(tmp.path(), "nested3.onnx", &i, "csv", &["--allow-non-finite"]);
    run.expect_code(0);
    let (header, rows) = read_csv(&out.join("predictions.csv"));
    let y = &rows[0][header.iter().position(|h| h == "y").unwrap()];
    assert_eq!(y, "[[1,NaN,Infinity],[-Infinity,Infinity,6]]");
    let parsed: Value =
        serde_json::from_str(&y.replace("-Infinity", "-1e999").replace("Infinity", "1e999").replace("NaN", "null"))
            .unwrap_or(Value::Null);
    assert!(parsed.is_array() || parsed.is_null());
    let (out, run) =
        job(tmp.path(), "nested3.onnx", &i, "pq", &["--allow-non-finite", "--output-file-name", "p.parquet"]);
    run.expect_code(0);
    let b = &read_parquet(&out.join("p.parquet"))[0];
    let y = b.column_by_name("y").unwrap().as_list::<i32>().value(0);
    let inner = y.as_list::<i32>();
    let first = inner.value(0);
    let v = first.as_primitive::<arrow::datatypes::Float32Type>().values().to_vec();
    assert!(v[0] == 1.0 && v[1].is_nan() && v[2] == f32::INFINITY, "{v:?}");
}

// ---------------------------------------------------------------------------------------------
// Shapes of outputs

#[test]
fn outputs_of_rank_three_and_more_keep_their_shape() {
    let tmp = tempdir();
    let input = tmp.path().join("x.csv");
    std::fs::write(&input, "a,b,c,d,e,f\n1,2,3,4,5,6\n7,8,9,10,11,12\n").unwrap();
    let i = input.display().to_string();
    let (out, run) = job(tmp.path(), "nested3.onnx", &i, "csv", &[]);
    run.expect_code(0);
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    assert_eq!(preds[1].cols["y"], serde_json::json!([[7, 8, 9], [10, 11, 12]]));
    assert_eq!(preds[0].cols["z"], serde_json::json!([[[1], [2]], [[3], [4]], [[5], [6]]]));
    let (out, run) = job(tmp.path(), "nested3.onnx", &i, "pq", &["--output-file-name", "p.parquet"]);
    run.expect_code(0);
    let (cols, preds) = parquet_preds(&out.join("p.parquet"));
    let z = &cols.iter().find(|(n, _)| n == "z").unwrap().1;
    assert_eq!(z.to_string(), "List(List(List(Float32)))", "nested lists, one level per dimension");
    assert_eq!(preds[0].cols["z"], serde_json::json!([[[1.0], [2.0]], [[3.0], [4.0]], [[5.0], [6.0]]]));
}

// ---------------------------------------------------------------------------------------------
// What is not a scoreable file

#[test]
fn empty_files_are_recorded_not_silently_scored() {
    let tmp = tempdir();
    let (out, run) = job(tmp.path(), "iris_zipmap.onnx", &folder("empty"), "out", &[]);
    run.expect_code(1).stderr_has(&["empty"]);
    let jr = job_result(&out);
    assert_eq!(jr["counts"]["files_empty"], 2);
    assert_eq!(jr["counts"]["files_scored"], 0);
    assert_eq!(jr["empty_files"], serde_json::json!(["empty.csv", "empty.parquet"]));
    assert!(jr["error"].as_str().unwrap().contains("empty"), "{}", jr["error"]);

    // Beside files with rows, an empty one is listed and the job completes.
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    std::fs::copy(Path::new(&folder("empty")).join("empty.csv"), mixed.join("a-empty.csv")).unwrap();
    std::fs::copy(data("iris/part-0.csv"), mixed.join("b.csv")).unwrap();
    let (out, run) =
        job(tmp.path(), "iris_zipmap.onnx", &mixed.display().to_string(), "mixed-out", &["--features", IRIS_FEATURES]);
    run.expect_code(0);
    let jr = job_result(&out);
    assert_eq!((jr["counts"]["files_empty"].as_u64(), jr["counts"]["files_scored"].as_u64()), (Some(1), Some(1)));
    assert_eq!(jr["empty_files"], serde_json::json!(["a-empty.csv"]));
}

#[test]
fn stray_files_and_unusable_names_are_skipped_and_reported() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    for f in ["part-0.csv", "part-1.csv"] {
        std::fs::copy(data(&format!("iris/{f}")), input.join(f)).unwrap();
    }
    std::fs::write(input.join("Thumbs.db"), [0u8, 1, 2, 3]).unwrap();
    std::fs::write(input.join("sub/notes.txt"), "hello").unwrap();
    std::fs::copy(data("photos/china-04.jpg"), input.join("photo.jfif")).unwrap();
    std::fs::write(input.join("new\nline.csv"), "id,a\n1,2\n").unwrap();
    std::fs::write(input.join(std::ffi::OsStr::from_bytes(b"bad\xffname.csv")), "id,a\n1,2\n").unwrap();
    let (out, run) = job(tmp.path(), "iris_zipmap.onnx", &input.display().to_string(), "out", &["--passthrough", "id"]);
    run.expect_code(0).stderr_has(&["skipped"]);
    let jr = job_result(&out);
    assert_eq!(jr["counts"]["files_total"], 2);
    assert_eq!(jr["counts"]["files_skipped"], 5);
    let skipped: Vec<(String, String)> = jr["skipped_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["file"].as_str().unwrap().to_string(), s["reason"].as_str().unwrap().to_string()))
        .collect();
    let reason = |f: &str| {
        skipped.iter().find(|(n, _)| n == f).map(|(_, r)| r.clone()).unwrap_or_else(|| panic!("{f} in {skipped:?}"))
    };
    assert!(reason("Thumbs.db").contains("not a file type"));
    assert!(reason("sub/notes.txt").contains("not a file type"));
    assert!(reason("photo.jfif").contains("an image among"), "{}", reason("photo.jfif"));
    assert!(reason("new\nline.csv").contains("control character"));
    assert!(reason("bad\u{FFFD}name.csv").contains("UTF-8"));
    assert_eq!(csv_preds(&out.join("predictions.csv")).1.len(), 100);
}

#[test]
fn a_type_asked_for_converts_the_text_and_fails_values_that_do_not_fit() {
    let tmp = tempdir();
    let (out, run) = job(
        tmp.path(),
        "iris_zipmap.onnx",
        &format!("{}/plain.csv", folder("pandas-csv")),
        "out",
        &[
            "--passthrough",
            "code:int64,price:decimal(10,2),big:int64",
            "--features",
            IRIS_FEATURES,
            "--output-file-name",
            "p.parquet",
        ],
    );
    run.expect_code(0);
    let (cols, rows) = parquet_preds_raw(&out.join("p.parquet"));
    assert_eq!(
        (&cols["code"], &cols["price"], &cols["big"]),
        (&DataType::Int64, &DataType::Decimal128(10, 2), &DataType::Int64)
    );
    let want = passthrough_text("pandas-csv");
    assert!(!rows.is_empty());
    for r in &rows {
        let w = &want[&("plain.csv".to_string(), r["row"].parse().unwrap())];
        let code: i64 = w["code"].as_str().unwrap().parse().unwrap();
        assert_eq!(r["code"], code.to_string());
        assert_eq!(r["price"], w["price"].as_str().unwrap(), "decimals keep their scale");
    }
    // 12345678901234567890 is no int64: its row fails, naming the column and the value.
    let f = failures(&out);
    let big = f.iter().find(|x| x["row"] == 0).expect("row 0 fails");
    let e = big["error"].as_str().unwrap();
    assert!(e.contains("\"big\"") && e.contains("12345678901234567890") && e.contains("Int64"), "{e}");
}

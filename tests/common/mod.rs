//! Shared helpers for the integration tests: run the real `batchscore` binary, read what a job
//! wrote (predictions CSV or Parquet, `logs/`), load reference predictions, compare with a
//! tolerance.
//!
//! Every test runs the binary in its own temporary folder with `--progress off`; committed
//! models and sample data are reached through `CARGO_MANIFEST_DIR`.

#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use serde_json::Value;

pub mod catalog;
pub mod serve;
pub mod servers;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `models/<name>`.
pub fn model(name: &str) -> String {
    repo().join("models").join(name).display().to_string()
}

/// `sample-data/<rel>`.
pub fn data(rel: &str) -> String {
    repo().join("sample-data").join(rel).display().to_string()
}

/// The built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_batchscore"))
}

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Panics with the run's output unless it exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit code; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Panics unless stderr contains every needle.
    #[track_caller]
    pub fn stderr_has(&self, needles: &[&str]) -> &Run {
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}:\n{}", self.stderr);
        }
        self
    }

    /// No Rust panic message anywhere.
    #[track_caller]
    pub fn no_panic(&self) -> &Run {
        assert!(!self.stderr.contains("panicked"), "panic in stderr:\n{}", self.stderr);
        assert!(!self.stdout.contains("panicked"), "panic in stdout:\n{}", self.stdout);
        self
    }
}

/// Runs a prepared command to its end.
pub fn run_command(mut cmd: Command) -> Run {
    let started = Instant::now();
    let out = cmd.output().expect("start the batchscore binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// The repository's ONNX Runtime library (`.venv`, from `make setup`), if it is there.
pub fn ort_library() -> Option<PathBuf> {
    let lib = repo().join(".venv/lib");
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(lib).ok()?.flatten().map(|e| e.path()).collect();
    pythons.sort();
    pythons.iter().rev().find_map(|py| {
        let capi = py.join("site-packages/onnxruntime/capi");
        let mut libs: Vec<PathBuf> = std::fs::read_dir(capi)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so")))
            .collect();
        libs.sort();
        libs.pop()
    })
}

/// The binary, told where ONNX Runtime is: it runs from a temporary folder, and the build may
/// live outside the repository (`CARGO_TARGET_DIR`), so it would not find the repo's `.venv`.
pub fn bin_cmd() -> Command {
    let mut cmd = Command::new(bin());
    if std::env::var_os("ORT_DYLIB_PATH").is_none()
        && let Some(lib) = ort_library()
    {
        cmd.env("ORT_DYLIB_PATH", lib);
    }
    cmd
}

/// `batchscore score --progress off <args>` with `dir` as the working directory.
pub fn score_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = bin_cmd();
    cmd.current_dir(dir).arg("score").arg("--progress").arg("off").args(args);
    // Keep the tests independent of the caller's environment.
    cmd.env_remove("BATCHSCORE_MODEL").env_remove("BATCHSCORE_LOG");
    cmd
}

/// Runs `batchscore score --progress off <args>` in `dir`.
pub fn score(dir: &Path, args: &[&str]) -> Run {
    run_command(score_cmd(dir, args))
}

/// A fresh temporary folder for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("batchscore-it-").tempdir().expect("create a temp dir")
}

/// A path inside `dir`, as a string argument.
pub fn arg(dir: &Path, rel: &str) -> String {
    dir.join(rel).display().to_string()
}

// ---------------------------------------------------------------------------------------------
// Reading outputs

/// One prediction row: file, row (tabular only) and every other column by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Pred {
    pub file: String,
    pub row: Option<u64>,
    pub cols: BTreeMap<String, Value>,
}

/// A CSV cell as a JSON value: numbers, arrays and objects parse; other text stays text;
/// an empty cell is null.
pub fn cell_value(cell: &str) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(cell).unwrap_or_else(|_| Value::String(cell.to_string()))
}

/// Reads a CSV file with the csv crate: header and records.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let header: Vec<String> = rdr.headers().expect("csv header").iter().map(str::to_string).collect();
    let rows: Vec<Vec<String>> = rdr
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("csv record in {}: {e}", path.display())))
        .map(|r| r.iter().map(str::to_string).collect())
        .collect();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            r.len(),
            header.len(),
            "{}: record {i} has {} fields, header {}",
            path.display(),
            r.len(),
            header.len()
        );
    }
    (header, rows)
}

/// Reads a predictions CSV: its header and rows as [`Pred`]s.
pub fn csv_preds(path: &Path) -> (Vec<String>, Vec<Pred>) {
    let (header, rows) = read_csv(path);
    assert_eq!(header.first().map(String::as_str), Some("file"), "first column of {}", path.display());
    let preds = rows
        .into_iter()
        .map(|r| {
            let mut p = Pred { file: r[0].clone(), row: None, cols: BTreeMap::new() };
            for (name, cell) in header.iter().zip(&r).skip(1) {
                if name == "row" {
                    p.row = Some(cell.parse().unwrap_or_else(|e| panic!("row {cell:?}: {e}")));
                } else {
                    p.cols.insert(name.clone(), cell_value(cell));
                }
            }
            p
        })
        .collect();
    (header, preds)
}

/// Reads a Parquet file into record batches.
pub fn read_parquet(path: &Path) -> Vec<arrow::array::RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet footer")
        .build()
        .expect("a Parquet reader");
    reader.map(|b| b.expect("a Parquet record batch")).collect()
}

/// One Arrow value as JSON (enough types for predictions files).
pub fn arrow_value(a: &ArrayRef, i: usize) -> Value {
    use arrow::datatypes::*;
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>().value(i);
            // ZipMap outputs are JSON objects held as text.
            if s.starts_with('{') {
                serde_json::from_str(s).expect("JSON object")
            } else {
                Value::String(s.to_string())
            }
        }
        DataType::LargeUtf8 => Value::String(a.as_string::<i64>().value(i).to_string()),
        DataType::Int64 => Value::from(a.as_primitive::<Int64Type>().value(i)),
        DataType::Int32 => Value::from(a.as_primitive::<Int32Type>().value(i)),
        DataType::UInt64 => Value::from(a.as_primitive::<UInt64Type>().value(i)),
        DataType::UInt32 => Value::from(a.as_primitive::<UInt32Type>().value(i)),
        DataType::Float32 => Value::from(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Value::from(a.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Value::from(a.as_boolean().value(i)),
        DataType::List(_) => {
            let v = a.as_list::<i32>().value(i);
            Value::Array((0..v.len()).map(|j| arrow_value(&v, j)).collect())
        }
        DataType::LargeList(_) => {
            let v = a.as_list::<i64>().value(i);
            Value::Array((0..v.len()).map(|j| arrow_value(&v, j)).collect())
        }
        // Pass-through columns keep their type: decimals, dates, timestamps, dictionaries, ...
        _ => Value::String(arrow::util::display::array_value_to_string(a, i).expect("displayable")),
    }
}

/// Reads a predictions Parquet file: its columns (name, type) and rows as [`Pred`]s.
pub fn parquet_preds(path: &Path) -> (Vec<(String, DataType)>, Vec<Pred>) {
    let batches = read_parquet(path);
    assert!(!batches.is_empty(), "{} holds no record batch", path.display());
    let schema = batches[0].schema();
    let columns: Vec<(String, DataType)> =
        schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    let mut preds = Vec::new();
    for b in &batches {
        assert_eq!(b.schema().fields(), schema.fields(), "every batch has the file's schema");
        for i in 0..b.num_rows() {
            let mut p = Pred { file: String::new(), row: None, cols: BTreeMap::new() };
            for (k, (name, _)) in columns.iter().enumerate() {
                let v = arrow_value(b.column(k), i);
                match name.as_str() {
                    "file" => p.file = v.as_str().expect("file is text").to_string(),
                    "row" => p.row = Some(v.as_u64().expect("row is a whole number")),
                    _ => {
                        p.cols.insert(name.clone(), v);
                    }
                }
            }
            preds.push(p);
        }
    }
    (columns, preds)
}

// ---------------------------------------------------------------------------------------------
// Reference predictions

/// One line of `models/reference/<model>__<dataset>.jsonl`.
#[derive(Debug, Clone)]
pub struct RefRow {
    pub file: String,
    pub row: Option<u64>,
    pub outputs: serde_json::Map<String, Value>,
}

/// Loads `models/reference/<name>` (e.g. `iris_zipmap__iris.jsonl`).
pub fn reference(name: &str) -> Vec<RefRow> {
    let path = repo().join("models/reference").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            RefRow {
                file: v["file"].as_str().expect("file").to_string(),
                row: v["row"].as_u64(),
                outputs: v["outputs"].as_object().expect("outputs").clone(),
            }
        })
        .collect()
}

/// How close floats must be: `|got - want| <= max(abs, rel * |want|)`.
#[derive(Debug, Clone, Copy)]
pub struct Tol {
    pub abs: f64,
    pub rel: f64,
}

/// 1e-5 absolute: probabilities and means (see models/README.md).
pub const TOL: Tol = Tol { abs: 1e-5, rel: 0.0 };

/// Compares two JSON values: integers (labels) exactly, other numbers within `tol`, arrays
/// element by element, objects key by key. Returns the first difference.
pub fn diff(got: &Value, want: &Value, tol: Tol, at: &str) -> Option<String> {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) => {
            if w.is_i64() || w.is_u64() {
                // An integer in the reference is a label: exact.
                if g.as_f64() == w.as_f64()
                    && (g.is_i64() || g.is_u64() || g.as_f64().is_some_and(|x| x.fract() == 0.0))
                {
                    None
                } else {
                    Some(format!("{at}: got {g}, want exactly {w}"))
                }
            } else {
                let (g, w) = (g.as_f64().expect("number"), w.as_f64().expect("number"));
                let limit = tol.abs.max(tol.rel * w.abs());
                if (g - w).abs() <= limit {
                    None
                } else {
                    Some(format!("{at}: got {g}, want {w} (diff {:e} > {limit:e})", (g - w).abs()))
                }
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            if g.len() != w.len() {
                return Some(format!("{at}: got {} values, want {}", g.len(), w.len()));
            }
            g.iter().zip(w).enumerate().find_map(|(i, (a, b))| diff(a, b, tol, &format!("{at}[{i}]")))
        }
        (Value::Object(g), Value::Object(w)) => {
            let gk: Vec<&String> = g.keys().collect();
            let wk: Vec<&String> = w.keys().collect();
            if gk != wk {
                return Some(format!("{at}: got keys {gk:?}, want {wk:?}"));
            }
            w.iter().find_map(|(k, wv)| diff(&g[k], wv, tol, &format!("{at}.{k}")))
        }
        (g, w) if g == w => None,
        (g, w) => Some(format!("{at}: got {g}, want {w}")),
    }
}

/// Asserts that the predictions hold exactly the reference's rows, in its order, with every
/// reference output equal within `tol` (labels exactly).
#[track_caller]
pub fn assert_parity(preds: &[Pred], reference: &[RefRow], tol: Tol) {
    assert_eq!(preds.len(), reference.len(), "number of prediction rows");
    for (i, (p, r)) in preds.iter().zip(reference).enumerate() {
        assert_eq!((&p.file, p.row), (&r.file, r.row), "row {i}: file and row number");
        for (name, want) in &r.outputs {
            let got = p.cols.get(name).unwrap_or_else(|| panic!("row {i}: no column {name:?} in {:?}", p.cols.keys()));
            if let Some(d) = diff(got, want, tol, &format!("{}:{:?} {name}", r.file, r.row)) {
                panic!("row {i}: {d}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Logs

/// `<out>/logs/job_result.json`.
pub fn job_result(out: &Path) -> Value {
    let path = out.join("logs/job_result.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("job_result.json is JSON")
}

/// `<out>/logs/failures.jsonl`, one JSON value per line.
pub fn failures(out: &Path) -> Vec<Value> {
    let path = out.join("logs/failures.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// `<out>/logs/mini_batches.csv` as maps from column name to cell.
pub fn mini_batches(out: &Path) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let (header, rows) = read_csv(&out.join("logs/mini_batches.csv"));
    let rows = rows.into_iter().map(|r| header.iter().cloned().zip(r).collect()).collect();
    (header, rows)
}

/// Every file under `dir` (relative path → bytes), for before/after comparisons.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).expect("inside").to_path_buf(), std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// The sorted file names directly in `dir`.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Two predictions CSV files hold the same rows in the same order: the same first column (the
/// file), the other cells within 1e-6.
#[track_caller]
pub fn assert_same_predictions(got: &Path, want: &Path) {
    let (head, rows) = read_csv(got);
    let (want_head, want) = read_csv(want);
    assert_eq!(head, want_head);
    assert_eq!(rows.len(), want.len(), "every row once");
    for (i, (g, w)) in rows.iter().zip(&want).enumerate() {
        assert_eq!(g[0], w[0], "row {i}: the same file in the same place");
        for (a, b) in g.iter().zip(w).skip(1) {
            if let Some(d) = diff(&cell_value(a), &cell_value(b), Tol { abs: 1e-6, rel: 1e-6 }, &format!("row {i}")) {
                panic!("{d}");
            }
        }
    }
}

/// `sample-data/digits` scored by `digits_mlp.onnx` in one plain run, 3 images a mini-batch,
/// into `dir/reference`: what a job of several processes must reproduce.
pub fn digits_reference(dir: &Path) -> PathBuf {
    let out = dir.join("reference");
    let o = out.display().to_string();
    let (m, d) = (model("digits_mlp.onnx"), data("digits"));
    score(dir, &["--model", &m, "--input", &d, "--output", &o, "--mini-batch-size", "3"]).expect_code(0);
    out
}

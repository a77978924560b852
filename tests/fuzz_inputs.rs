//! A seeded mutation (fuzz) suite on stable Rust: thousands of damaged CSV, JSON Lines,
//! compressed CSV, Parquet and image files, damaged ONNX models and damaged deployment YAML,
//! generated at test time from the seeds in `tests/fuzz/seeds/` by `tests/fuzz/mod.rs`.
//!
//! For every run of the binary: no panic, no death by a signal (an abort in ONNX Runtime or a
//! decoder), no hang, bounded memory, an exit code that means something; and for input jobs,
//! every input file accounted for (scored, failed with a reason, empty, or skipped).
//!
//! `BATCHSCORE_FUZZ_SCALE=10` multiplies the case counts (default 1, what CI runs);
//! `BATCHSCORE_FUZZ_SEED` changes the seed (default [`fuzz::DEFAULT_SEED`]). A finding's input
//! is copied to `target/tmp/fuzz-findings/`; reproducers worth keeping go to
//! `tests/fuzz/crashes/`, which [`committed_crash_reproducers`] runs.

mod common;
mod fuzz;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use fuzz::{Format, Monitored, Rng};

/// Peak resident memory allowed to one run of the binary.
const MAX_KIB: u64 = 2_500 * 1024;
/// Wall-clock limit of one job over a corpus folder: past it, a hang.
const JOB_LIMIT: Duration = Duration::from_secs(180);
/// Wall-clock limit of one model or YAML case.
const CASE_LIMIT: Duration = Duration::from_secs(90);
/// Time limit of one in-process load of a deployment file.
const YAML_LIMIT: Duration = Duration::from_secs(20);
/// A deployment file that takes longer than this to load is reported as slow (debug build).
const YAML_SLOW: Duration = Duration::from_secs(8);
/// The iris model's features, by name (the seeds have more columns).
const IRIS_FEATURES: &str = "sepal_length,sepal_width,petal_length,petal_width";

/// Where findings' inputs are copied for triage.
fn findings_dir(label: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings").join(label)
}

fn banner(label: &str, what: &str) {
    eprintln!(
        "[fuzz {label}] seed {:#018x}, scale {} (BATCHSCORE_FUZZ_SEED / BATCHSCORE_FUZZ_SCALE): {what}",
        fuzz::seed(),
        fuzz::scale()
    );
}

/// A corpus folder and how each of its files was made.
struct Corpus {
    dir: PathBuf,
    made: BTreeMap<String, String>,
}

fn corpus(tmp: &Path, label: &str, seeds_folder: &str, format: Format, n: usize, big: usize) -> Corpus {
    let seeds = fuzz::seeds(seeds_folder);
    let mut rng = Rng::derive(fuzz::seed(), label);
    let dir = tmp.join(format!("in-{label}"));
    let t = Instant::now();
    let made = fuzz::write_corpus(&dir, &mut rng, &seeds, format, n, big);
    let bytes: u64 = made.iter().map(|(f, _)| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len())).sum();
    eprintln!(
        "[fuzz {label}] {} files ({n} mutated + {} seeds), {:.1} MB, generated in {:.1?}",
        made.len(),
        seeds.len(),
        bytes as f64 / 1e6,
        t.elapsed()
    );
    Corpus { dir, made: made.into_iter().collect() }
}

/// What one job over a corpus folder found wrong (empty when all is well).
fn check_job(tmp: &Path, label: &str, corpus: &Corpus, model_name: &str, extra: &[&str]) -> Vec<String> {
    let _ = std::fs::remove_dir_all(findings_dir(label));
    let out = tmp.join(format!("out-{label}"));
    let (m, i, o) = (model(model_name), corpus.dir.display().to_string(), out.display().to_string());
    let mut args = vec!["--model", &m, "--input", &i, "--output", &o, "--error-threshold", "-1", "--timeout", "60"];
    args.extend_from_slice(extra);
    let run = fuzz::run_monitored(score_cmd(tmp, &args), JOB_LIMIT);
    let mut problems: Vec<String> = run.crash_problems(MAX_KIB).into_iter().map(|p| format!("[{label}] {p}")).collect();
    let code = run.code();
    if !matches!(code, Some(0 | 1)) && !run.hung && !run.killed_for_memory {
        problems.push(format!(
            "[{label}] exit code {code:?}, want 0 or 1; stderr tail:\n{}",
            fuzz::tail(&run.stderr, 3000)
        ));
    }
    let mut suspects: BTreeSet<String> = BTreeSet::new();
    let mut summary = String::new();
    if matches!(code, Some(0 | 1)) {
        let (acc, crashed) = account(&out);
        let inputs: BTreeSet<&String> = corpus.made.keys().collect();
        let unaccounted: Vec<&&String> = inputs.iter().filter(|f| !acc.all.contains(**f)).collect();
        if !unaccounted.is_empty() {
            let list: Vec<String> =
                unaccounted.iter().take(40).map(|f| format!("  {f}: {}", corpus.made[**f])).collect();
            problems.push(format!(
                "[{label}] {} of {} input files are in none of predictions.csv, failures.jsonl, empty_files, \
                 skipped_files:\n{}",
                unaccounted.len(),
                inputs.len(),
                list.join("\n")
            ));
            suspects.extend(unaccounted.iter().map(|f| f.to_string()));
        }
        let strangers: Vec<&String> = acc.all.iter().filter(|f| !corpus.made.contains_key(*f)).collect();
        if !strangers.is_empty() {
            problems.push(format!("[{label}] the logs name files that are not inputs: {strangers:?}"));
        }
        if !crashed.is_empty() {
            let crashed: BTreeMap<String, String> = crashed.into_iter().collect();
            let list: Vec<String> = crashed
                .iter()
                .take(20)
                .map(|(f, e)| format!("  {f}: {e}\n    made as: {}", corpus.made.get(f).map_or("?", String::as_str)))
                .collect();
            problems.push(format!(
                "[{label}] {} files failed with a caught panic (decoder crash or internal error):\n{}",
                crashed.len(),
                list.join("\n")
            ));
            suspects.extend(crashed.keys().cloned());
        }
        let jr = job_result(&out);
        let (c, t) = (&jr["counts"], &jr["timings_seconds"]);
        summary = format!(
            "files scored {}, failed {}, empty {}, skipped {} (a file may be both scored and failed); \
             {} mini-batches, {} retries, {} model calls; decode {:.1} s, infer {:.1} s",
            acc.scored.len(),
            acc.failed.len(),
            acc.empty.len(),
            acc.skipped.len(),
            c["mini_batches_run"],
            c["retries"],
            c["model_calls"],
            t["decode"].as_f64().unwrap_or(0.0),
            t["infer"].as_f64().unwrap_or(0.0),
        );
    }
    // Which files to keep for triage: those named in a panic message, else the unaccounted ones.
    if run.stderr.contains("panicked") {
        for f in corpus.made.keys() {
            if run.stderr.contains(f.as_str()) {
                suspects.insert(f.clone());
            }
        }
    }
    eprintln!(
        "[fuzz {label}] {} files, exit {code:?}, {:.1?}, peak {} MiB: {summary}",
        corpus.made.len(),
        run.elapsed,
        run.peak_kib / 1024
    );
    if !problems.is_empty() {
        let keep = findings_dir(label);
        let _ = std::fs::create_dir_all(&keep);
        for f in &suspects {
            let _ = std::fs::copy(corpus.dir.join(f), keep.join(f));
        }
        let _ = std::fs::write(keep.join("stderr.txt"), &run.stderr);
        problems.push(format!(
            "[{label}] command: batchscore score --progress off {}; suspects copied to {}",
            args.join(" "),
            keep.display()
        ));
    }
    problems
}

/// The files a job's outputs name, by where.
#[derive(Default)]
struct Accounted {
    scored: BTreeSet<String>,
    failed: BTreeSet<String>,
    empty: BTreeSet<String>,
    skipped: BTreeSet<String>,
    all: BTreeSet<String>,
}

/// Reads predictions.csv's `file` column, failures.jsonl, and job_result.json's empty and
/// skipped files; also returns the failures whose reason is a caught panic.
fn account(out: &Path) -> (Accounted, Vec<(String, String)>) {
    let mut a = Accounted::default();
    let preds = out.join("predictions.csv");
    if preds.exists() {
        let mut rdr = csv::Reader::from_path(&preds).expect("open predictions.csv");
        let col = rdr.headers().expect("a header").iter().position(|h| h == "file").expect("a file column");
        for r in rdr.records() {
            let r = r.expect("a predictions record");
            a.scored.insert(r[col].to_string());
        }
    }
    let mut crashed = Vec::new();
    if out.join("logs/failures.jsonl").exists() {
        for f in failures(out) {
            let file = f["file"].as_str().expect("a failure names its file").to_string();
            let error = f["error"].as_str().unwrap_or_default();
            if contained_in_dependency(error) {
                eprintln!("[fuzz] contained: {file}: {error}");
            } else if error.contains("crashed") || error.contains("internal error") || error.contains("panicked") {
                crashed.push((file.clone(), error.to_string()));
            }
            a.failed.insert(file);
        }
    }
    let jr = job_result(out);
    for f in jr["empty_files"].as_array().into_iter().flatten() {
        a.empty.insert(f.as_str().expect("a file name").to_string());
    }
    for f in jr["skipped_files"].as_array().into_iter().flatten() {
        a.skipped.insert(f["file"].as_str().expect("a file name").to_string());
    }
    a.all = a.scored.iter().chain(&a.failed).chain(&a.empty).chain(&a.skipped).cloned().collect();
    (a, crashed)
}

#[track_caller]
fn assert_clean(problems: Vec<String>) {
    assert!(problems.is_empty(), "{} problem(s):\n\n{}", problems.len(), problems.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// Input files

#[test]
fn mutated_csv_files() {
    banner("csv", "iris CSV seeds (iris, pandas, polars)");
    let tmp = tempdir();
    let c = corpus(tmp.path(), "csv", "csv", Format::Csv, fuzz::scaled(1200), fuzz::scaled(8));
    let mut p = check_job(tmp.path(), "csv", &c, "iris_zipmap.onnx", &["--features", IRIS_FEATURES]);
    // The same corpus cut into pieces of 25 rows (CSV split at record boundaries), with a record
    // limit the long lines pass.
    p.extend(check_job(
        tmp.path(),
        "csv-split",
        &c,
        "iris_zipmap.onnx",
        &["--features", IRIS_FEATURES, "--mini-batch-rows", "25", "--max-record-size", "1MB"],
    ));
    assert_clean(p);
}

#[test]
fn mutated_compressed_csv_files() {
    banner("csv-compressed", "gzip, zstd and bzip2 CSV seeds; half mutated inside, then recompressed");
    let tmp = tempdir();
    let c =
        corpus(tmp.path(), "csv-compressed", "csv-compressed", Format::Compressed, fuzz::scaled(500), fuzz::scaled(3));
    assert_clean(check_job(tmp.path(), "csv-compressed", &c, "iris_zipmap.onnx", &["--features", IRIS_FEATURES]));
}

#[test]
fn mutated_jsonl_files() {
    banner("jsonl", "polars JSON Lines seed");
    let tmp = tempdir();
    let c = corpus(tmp.path(), "jsonl", "jsonl", Format::Jsonl, fuzz::scaled(1500), fuzz::scaled(4));
    assert_clean(check_job(tmp.path(), "jsonl", &c, "iris_zipmap.onnx", &["--features", IRIS_FEATURES]));
}

#[test]
fn mutated_parquet_files() {
    banner("parquet", "wine and pyarrow-types Parquet seeds; footer-only, body-only and anywhere mutations");
    let tmp = tempdir();
    let c = corpus(tmp.path(), "parquet", "parquet", Format::Parquet, fuzz::scaled(2500), 0);
    let mut p = check_job(tmp.path(), "parquet", &c, "wine_tensor.onnx", &["--passthrough", "id"]);
    // Pieces of 10 rows: the splitter reads the footer and row groups itself.
    p.extend(check_job(
        tmp.path(),
        "parquet-split",
        &c,
        "wine_tensor.onnx",
        &["--passthrough", "id", "--mini-batch-rows", "10"],
    ));
    assert_clean(p);
}

#[test]
fn mutated_image_files() {
    banner(
        "images",
        "one seed per codec: PNG (rgb, rgba, p, l, la, i16), JPEG, GIF, BMP, TIFF, WebP, ICO, TGA, PNM, QOI",
    );
    let tmp = tempdir();
    let c = corpus(tmp.path(), "images", "images", Format::Image, fuzz::scaled(2500), 0);
    // Each image at its own size, 3 channels.
    let mut p = check_job(tmp.path(), "images-mean-color", &c, "mean_color.onnx", &["--scale", "1"]);
    // Resized to 8x8, one channel (luma).
    p.extend(check_job(tmp.path(), "images-digits", &c, "digits_nchw.onnx", &[]));
    assert_clean(p);
}

// ---------------------------------------------------------------------------------------------
// Models

#[test]
fn mutated_models() {
    let n = fuzz::scaled(200);
    banner("models", &format!("{n} mutated copies of iris_zipmap, wine_tensor and digits_mlp, one process each"));
    let tmp = tempdir();
    let seeds = fuzz::seeds("models");
    let mut rng = Rng::derive(fuzz::seed(), "models");
    let digits = tmp.path().join("digits");
    std::fs::create_dir(&digits).unwrap();
    for k in 0..6 {
        let name = format!("digit-{k:04}.png");
        std::fs::copy(Path::new(&data("digits")).join(&name), digits.join(&name)).unwrap();
    }
    let mut problems = Vec::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let (mut peak, mut slowest) = (0u64, Duration::ZERO);
    let started = Instant::now();
    let mut budget = fuzz::Budget { big: 0 };
    for i in 1..=n {
        // Half the cases with offsets anywhere (weights, attributes), half biased to the
        // start and end (header, graph inputs and outputs, opset imports).
        rng.uniform_offsets = i % 2 == 0;
        let m = fuzz::mutate(&mut rng, &seeds, Format::Onnx, &mut budget);
        let name = fuzz::case_name(i, n, "onnx");
        let path = tmp.path().join(&name);
        std::fs::write(&path, &m.bytes).unwrap();
        let seed = &seeds[m.seed].name;
        let (input, extra): (String, &[&str]) = match seed.as_str() {
            "iris_zipmap.onnx" => (data("iris"), &["--passthrough", "id"]),
            "wine_tensor.onnx" => (data("wine"), &["--passthrough", "id"]),
            _ => (digits.display().to_string(), &[]),
        };
        let out = tmp.path().join(format!("out-{i}"));
        let (p, o) = (path.display().to_string(), out.display().to_string());
        let mut args = vec![
            "--model",
            &p,
            "--input",
            &input,
            "--output",
            &o,
            "--error-threshold",
            "-1",
            "--timeout",
            "20",
            "--max-retries",
            "1",
        ];
        args.extend_from_slice(extra);
        let run = fuzz::run_monitored(score_cmd(tmp.path(), &args), CASE_LIMIT);
        peak = peak.max(run.peak_kib);
        slowest = slowest.max(run.elapsed);
        *codes.entry(format!("{:?}", run.code())).or_default() += 1;
        if let Some(e) = run.stderr.lines().find(|l| l.starts_with("error:")) {
            // The kind of error, without the file's name and details.
            let kind: String = e.replace(&p, "M").chars().take(110).collect();
            *errors.entry(kind).or_default() += 1;
        }
        let mut p = run.crash_problems(MAX_KIB);
        if !matches!(run.code(), Some(0..=2)) && p.is_empty() {
            p.push(format!("exit code {:?}", run.code()));
        }
        if run.code() == Some(2) && !run.stderr.contains("error") {
            p.push(format!("exit 2 without an error message:\n{}", fuzz::tail(&run.stderr, 2000)));
        }
        if !p.is_empty() {
            let keep = findings_dir("models");
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::copy(&path, keep.join(&name));
            problems.push(format!(
                "[models] {name} ({}): {}\n  command: batchscore score --progress off {}",
                m.describe(&seeds),
                p.join("; "),
                args.join(" ")
            ));
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    let mut errors: Vec<(usize, String)> = errors.into_iter().map(|(k, v)| (v, k)).collect();
    errors.sort_by(|a, b| b.cmp(a));
    let errors: Vec<String> = errors.iter().take(8).map(|(n, e)| format!("  {n} x {e}")).collect();
    eprintln!(
        "[fuzz models] {n} cases in {:.1?} (slowest {slowest:.1?}), peak {} MiB, exit codes {codes:?}; \
         most common errors:\n{}",
        started.elapsed(),
        peak / 1024,
        errors.join("\n")
    );
    assert_clean(problems);
}

// ---------------------------------------------------------------------------------------------
// Deployment YAML

/// Mutated deployment files beside a copy of the model their `model.path` names.
fn yaml_corpus(tmp: &Path, label: &str, n: usize) -> (PathBuf, Vec<(String, String)>) {
    let seeds = fuzz::seeds("yaml");
    let mut rng = Rng::derive(fuzz::seed(), label);
    let dir = tmp.join(label);
    let made = fuzz::write_corpus(&dir, &mut rng, &seeds, Format::Yaml, n, fuzz::scaled(6));
    std::fs::copy(model("iris_zipmap.onnx"), dir.join("iris_zipmap.onnx")).unwrap();
    (dir, made)
}

#[test]
fn mutated_deployment_yaml_in_process() {
    let n = fuzz::scaled(3000);
    banner("yaml", &format!("{n} mutated deployment-iris.yml loaded in process"));
    let tmp = tempdir();
    let (dir, made) = yaml_corpus(tmp.path(), "yaml", n);
    let (mut ok, mut err) = (0, 0);
    let mut problems = Vec::new();
    let mut times: Vec<(Duration, String)> = Vec::new();
    let started = Instant::now();
    // Each file is loaded on a thread of its own; one that does not return within the limit is
    // a hang (its thread is left behind, and the test fails).
    let never_written = tmp.path().join("never-written").display().to_string();
    let load = move |path: PathBuf, never_written: String| {
        let (tx, rx) = std::sync::mpsc::channel::<Result<Result<(), String>, String>>();
        std::thread::spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                let dep = batchscore::engine::settings::Deployment::load(&path).map_err(|e| e.to_string())?;
                let mut raw = dep.settings;
                raw.input = Some(data("iris"));
                raw.output = Some(never_written);
                raw.resolve(&path.display().to_string()).map(|_| ()).map_err(|e| e.to_string())
            }))
            .map_err(|panic| {
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            });
            let _ = tx.send(result);
        });
        rx.recv_timeout(YAML_LIMIT)
    };
    for (name, how) in &made {
        let t = Instant::now();
        let result = match load(dir.join(name), never_written.clone()) {
            Ok(r) => r,
            Err(_) => {
                let keep = findings_dir("yaml");
                let _ = std::fs::create_dir_all(&keep);
                let _ = std::fs::copy(dir.join(name), keep.join(name));
                problems.push(format!(
                    "{name} ({how}): Deployment::load + resolve did not return within {YAML_LIMIT:?} (a hang); \
                     copied to {}",
                    keep.display()
                ));
                continue;
            }
        };
        let took = t.elapsed();
        times.push((took, format!("{name}: {how}")));
        match result {
            Ok(Ok(())) => ok += 1,
            Ok(Err(msg)) => {
                err += 1;
                if msg.trim().is_empty() {
                    problems.push(format!("{name} ({how}): an error without a message"));
                }
            }
            Err(text) => problems.push(format!("{name} ({how}): Deployment::load or resolve panicked: {text}")),
        }
        if took > YAML_SLOW {
            problems.push(format!("{name} ({how}): took {took:.1?}"));
        }
    }
    let deep: Vec<&(Duration, String)> = times.iter().filter(|(_, how)| how.contains("deep-nesting10000")).collect();
    eprintln!(
        "[fuzz yaml] {} cases nest 10,000 deep; they took {:.1?} in all (the parser is quadratic in the depth)",
        deep.len(),
        deep.iter().map(|(t, _)| *t).sum::<Duration>()
    );
    let slow: Vec<&(Duration, String)> = times.iter().filter(|(t, _)| *t > Duration::from_millis(100)).collect();
    eprintln!(
        "[fuzz yaml] {} cases took over 100 ms each, {:.1?} in all",
        slow.len(),
        slow.iter().map(|(t, _)| *t).sum::<Duration>()
    );
    times.sort_by_key(|t| std::cmp::Reverse(t.0));
    let slowest: Vec<String> = times.iter().take(5).map(|(t, what)| format!("  {t:.2?} {what}")).collect();
    eprintln!(
        "[fuzz yaml] {} files in {:.1?}: {ok} loaded and resolved, {err} refused; slowest:\n{}",
        made.len(),
        started.elapsed(),
        slowest.join("\n")
    );
    if !problems.is_empty() {
        let keep = findings_dir("yaml");
        let _ = std::fs::create_dir_all(&keep);
        for p in &problems {
            let name = p.split_whitespace().next().unwrap_or_default();
            let _ = std::fs::copy(dir.join(name), keep.join(name));
        }
    }
    assert_clean(problems);
}

#[test]
fn mutated_deployment_yaml_through_the_binary() {
    let n = fuzz::scaled(40);
    banner("yaml-binary", &format!("{n} mutated deployment-iris.yml through `score --config`"));
    let tmp = tempdir();
    let (dir, made) = yaml_corpus(tmp.path(), "yaml-binary", n);
    let mut problems = Vec::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    for (i, (name, how)) in made.iter().enumerate() {
        let out = tmp.path().join(format!("out-{i}"));
        let (c, input, o) = (dir.join(name).display().to_string(), data("iris"), out.display().to_string());
        let args = ["--config", &c, "--input", &input, "--output", &o, "--timeout", "20"];
        let run = fuzz::run_monitored(score_cmd(tmp.path(), &args), CASE_LIMIT);
        *codes.entry(format!("{:?}", run.code())).or_default() += 1;
        if let Some(e) = run.stderr.lines().find(|l| l.starts_with("error:")) {
            let kind: String = e.replace(&c, "Y").chars().take(100).collect();
            *errors.entry(kind).or_default() += 1;
        }
        let mut p = run.crash_problems(MAX_KIB);
        match run.code() {
            Some(0 | 1) => {}
            Some(2) if run.stderr.contains("error:") => {}
            Some(2) => p.push(format!("exit 2 without \"error:\":\n{}", fuzz::tail(&run.stderr, 2000))),
            other if p.is_empty() => p.push(format!("exit code {other:?}")),
            _ => {}
        }
        if !p.is_empty() {
            problems.push(format!(
                "{name} ({how}): {}\n  command: batchscore score --progress off {}",
                p.join("; "),
                args.join(" ")
            ));
        }
    }
    let mut errors: Vec<(usize, String)> = errors.into_iter().map(|(k, v)| (v, k)).collect();
    errors.sort_by(|a, b| b.cmp(a));
    let errors: Vec<String> = errors.iter().take(6).map(|(n, e)| format!("  {n} x {e}")).collect();
    eprintln!(
        "[fuzz yaml-binary] {} runs in {:.1?}, exit codes {codes:?}; most common errors:\n{}",
        made.len(),
        started.elapsed(),
        errors.join("\n")
    );
    assert_clean(problems);
}

// ---------------------------------------------------------------------------------------------
// Reproducers of past findings

/// Every file under `tests/fuzz/crashes/` is a minimal input that once broke the binary (see
/// the README there): each is scored alone with the model its kind needs (tabular files also in
/// pieces), and must not panic (caught or not), hang, die or blow up, and must be accounted for.
#[test]
fn committed_crash_reproducers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/crashes");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e != "md"));
    files.sort();
    banner("crashes", &format!("{} committed reproducers", files.len()));
    let mut problems = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let kind = name.split_once('.').map(|(_, e)| e.to_string()).unwrap_or_default();
        let tmp = tempdir();
        let input = tmp.path().join("in");
        std::fs::create_dir(&input).unwrap();
        let path = f.display().to_string();
        let iris = data("iris");
        let in_dir = input.display().to_string();
        // (what, flags before --input, the input, more flags)
        let runs: Vec<(&str, Vec<&str>, &str, Vec<&str>)> = match kind.as_str() {
            "onnx" => vec![("model", vec!["--model", &path], &iris, vec!["--passthrough", "id"])],
            "yml" | "yaml" => vec![("config", vec!["--config", &path], &iris, vec![])],
            k => {
                std::fs::copy(f, input.join(&name)).unwrap();
                let (m, flags): (&str, Vec<&str>) = if k.starts_with("csv") || k.starts_with("jsonl") {
                    ("iris_zipmap.onnx", vec!["--features", IRIS_FEATURES])
                } else if k == "parquet" {
                    ("wine_tensor.onnx", vec!["--passthrough", "id"])
                } else {
                    ("mean_color.onnx", vec!["--scale", "1"])
                };
                let m = Box::leak(model(m).into_boxed_str()) as &str;
                let mut v = vec![("whole", vec!["--model", m], in_dir.as_str(), flags.clone())];
                if k == "csv" || k == "parquet" {
                    let mut split = flags;
                    split.extend(["--mini-batch-rows", "10"]);
                    v.push(("pieces", vec!["--model", m], in_dir.as_str(), split));
                }
                v
            }
        };
        for (i, (what, head, input, tail)) in runs.into_iter().enumerate() {
            let out = tmp.path().join(format!("out-{i}"));
            let o = out.display().to_string();
            let mut args = head;
            args.extend(["--input", input, "--output", &o, "--error-threshold", "-1", "--timeout", "60"]);
            args.extend(tail);
            // A deployment file is refused or read in well under a second; 20 s is a hang.
            let limit = if what == "config" { Duration::from_secs(20) } else { CASE_LIMIT };
            let run: Monitored = fuzz::run_monitored(score_cmd(tmp.path(), &args), limit);
            let mut p = run.crash_problems(MAX_KIB);
            match run.code() {
                Some(0 | 1) if what == "whole" || what == "pieces" => {
                    let (acc, crashed) = account(&out);
                    if !acc.all.contains(&name) {
                        p.push(
                            "the file is in none of predictions.csv, failures.jsonl, empty_files, skipped_files".into(),
                        );
                    }
                    for (_, e) in crashed {
                        p.push(format!("a panic in batchscore's own code: {e}"));
                    }
                }
                Some(0..=2) => {}
                other if p.is_empty() => p.push(format!("exit code {other:?}")),
                _ => {}
            }
            eprintln!(
                "[fuzz crashes] {name} ({what}): exit {:?}, {:.1?}, peak {} MiB{}",
                run.code(),
                run.elapsed,
                run.peak_kib / 1024,
                if p.is_empty() { String::new() } else { format!(": {}", p.join("; ")) }
            );
            if !p.is_empty() {
                problems.push(format!(
                    "{name} ({what}): {}\n  command: batchscore score --progress off {}",
                    p.join("; "),
                    args.join(" ")
                ));
            }
        }
    }
    assert_clean(problems);
}

/// Whether a failure is a panic inside a third-party decoder (parquet, arrow, image codecs) that
/// the engine contained: the file failed alone, named, with the panic's location in a crate
/// (`parquet-60.1.0/src/...`). Those are upstream bugs, not crashes of the job, and are
/// accepted (listed on stderr); a panic in batchscore's own code (`src/...`, or "internal error
/// while scoring") is not.
fn contained_in_dependency(error: &str) -> bool {
    let Some(rest) = error.split("the decoder crashed on this file (").nth(1) else { return false };
    let Some(at) = rest.rsplit(", at ").next() else { return false };
    let krate = at.split('/').next().unwrap_or_default();
    // `name-1.2.3`: a crate from the registry, never batchscore itself.
    krate.rsplit_once('-').is_some_and(|(name, version)| {
        !name.is_empty() && name != "batchscore" && version.starts_with(|c: char| c.is_ascii_digit())
    })
}

#[test]
fn only_panics_inside_dependencies_count_as_contained() {
    let dep = "x.parquet: the decoder crashed on this file (index out of bounds, at parquet-60.1.0/src/encodings/decoding/byte_stream_split_decoder.rs:67); it is likely damaged";
    assert!(contained_in_dependency(dep));
    assert!(!contained_in_dependency(
        "x.csv: the decoder crashed on this file (boom, at src/preprocess/tabular/text.rs:10); it is likely damaged"
    ));
    assert!(!contained_in_dependency("internal error while scoring: boom (please report it)"));
}

/// The generator is deterministic: the same seed gives the same bytes.
#[test]
fn the_corpus_is_deterministic() {
    let seeds = fuzz::seeds("csv");
    let generate = || {
        let mut rng = Rng::derive(fuzz::seed(), "determinism");
        let mut budget = fuzz::Budget { big: 0 };
        (0..200).map(|_| fuzz::mutate(&mut rng, &seeds, Format::Csv, &mut budget).bytes).collect::<Vec<_>>()
    };
    assert_eq!(generate(), generate());
}

//! One conformance suite for every store: the same job, through the binary as a user runs it,
//! with its model, input and output on the store: listing and reading, the output's bytes (equal
//! to a local run's), create-only commit (a second run exits 2 and changes nothing), two jobs
//! racing for one output (exactly one wins, nothing partial is left), Parquet output, and no
//! credential in any output. Stores: the local disk (`file://`), S3 (moto), Azure Blob
//! (Azurite), read-only HTTP (`serve`), and in-memory (in process: `memory://` lives in one
//! process). The servers are installed by scripts/test-servers.sh (`make setup`).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::servers::{Azurite, Moto, StaticHttp, upload_dir_blocking};
use common::*;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

/// A store under test, as the CLI reaches it.
struct Target {
    name: &'static str,
    /// The store's URL for a prefix, e.g. `s3://bucket/<prefix>`.
    url: Box<dyn Fn(&str) -> String>,
    /// `--storage-option` pairs.
    options: Vec<(String, String)>,
    /// The same store for the test's own reads and writes, rooted where `url("")` is.
    store: Arc<dyn ObjectStore>,
    /// Strings that must appear in no output, log or message.
    secrets: Vec<String>,
    /// How long the second racer starts after the first. 0 for stores whose create-only check
    /// is atomic. moto checks, then writes, without a lock: two commits within the same
    /// millisecond could both pass there (AWS itself is atomic), so its racers commit a little
    /// apart: both still pass the output check (nothing is in the output until the commit) and
    /// the second commit must still be refused.
    stagger: std::time::Duration,
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn get(store: &dyn ObjectStore, path: &str) -> Vec<u8> {
    block_on(async { store.get(&StorePath::from(path)).await.unwrap().bytes().await.unwrap().to_vec() })
}

/// Every object under `prefix`, relative to it, sorted.
fn listing(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let p = StorePath::from(prefix);
    let metas: Vec<_> = block_on(store.list(Some(&p)).try_collect::<Vec<_>>()).unwrap();
    let mut names: Vec<String> = metas
        .iter()
        .map(|m| m.location.prefix_match(&p).unwrap().map(|x| x.as_ref().to_string()).collect::<Vec<_>>().join("/"))
        .collect();
    names.sort();
    names
}

fn score_cmd_on(t: &Target, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = score_cmd(dir, args);
    for (k, v) in &t.options {
        cmd.arg("--storage-option").arg(format!("{k}={v}"));
    }
    cmd
}

#[track_caller]
fn no_secrets(t: &Target, what: &str, text: &str) {
    for s in &t.secrets {
        assert!(!text.contains(s.as_str()), "{}: a credential appears in {what}", t.name);
    }
}

/// The predictions of the iris job on the local disk: what every store must hold, byte for byte.
fn local_iris(output_file_name: &str) -> Vec<u8> {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, i, o) = (model("iris_zipmap.onnx"), data("iris"), out.display().to_string());
    score(
        tmp.path(),
        &["--model", &m, "--input", &i, "--output", &o, "--passthrough", "id", "--output-file-name", output_file_name],
    )
    .expect_code(0);
    std::fs::read(out.join(output_file_name)).unwrap()
}

fn conformance(t: &Target) {
    let tmp = tempdir();
    upload_dir_blocking(t.store.as_ref(), Path::new(&data("iris")), &StorePath::from("in/iris"));
    block_on(
        t.store.put(&StorePath::from("models/iris.onnx"), std::fs::read(model("iris_zipmap.onnx")).unwrap().into()),
    )
    .unwrap();
    let (m, i) = ((t.url)("models/iris.onnx"), (t.url)("in/iris"));
    let job = |out: &str, extra: &[&str]| {
        let o = (t.url)(out);
        let mut args =
            vec!["--model", m.as_str(), "--input", i.as_str(), "--output", o.as_str(), "--passthrough", "id"];
        args.extend_from_slice(extra);
        score_cmd_on(t, tmp.path(), &args)
    };

    // 1. List, read, score, commit: the same bytes as on the local disk.
    let run = run_command(job("out/run-1", &[]));
    run.expect_code(0).no_panic();
    no_secrets(t, "stderr", &run.stderr);
    // The predictions' location as the CLI shows it (a local path for file://).
    let shown = (t.url)("out/run-1/predictions.csv");
    assert_eq!(run.stdout.trim(), shown.strip_prefix("file://").unwrap_or(&shown), "{}", t.name);
    let local = local_iris("predictions.csv");
    assert!(
        get(t.store.as_ref(), "out/run-1/predictions.csv") == local,
        "{}: predictions differ from a local run",
        t.name
    );
    assert_eq!(
        listing(t.store.as_ref(), "out/run-1"),
        ["logs/failures.jsonl", "logs/job_result.json", "logs/mini_batches.csv", "predictions.csv"],
        "{}: nothing else (no staging) in the output",
        t.name
    );
    let report = String::from_utf8(get(t.store.as_ref(), "out/run-1/logs/job_result.json")).unwrap();
    no_secrets(t, "job_result.json", &report);
    let jr: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(jr["status"], "Completed", "{}", t.name);
    assert_eq!(jr["counts"]["rows_scored"], 150);
    assert_eq!(jr["input"], i.strip_prefix("file://").unwrap_or(&i));
    let keys: Vec<String> = t.options.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(jr["settings"]["storage_options"], serde_json::json!(keys), "options reported by key only");
    no_secrets(
        t,
        "mini_batches.csv",
        &String::from_utf8(get(t.store.as_ref(), "out/run-1/logs/mini_batches.csv")).unwrap(),
    );

    // 2. The output exists: refused before any work, nothing changed.
    let before: Vec<(String, Vec<u8>)> = listing(t.store.as_ref(), "out/run-1")
        .into_iter()
        .map(|n| {
            let bytes = get(t.store.as_ref(), &format!("out/run-1/{n}"));
            (n, bytes)
        })
        .collect();
    let run = run_command(job("out/run-1", &["--output-file-name", "other.csv"]));
    run.expect_code(2).stderr_has(&["already holds"]);
    for (n, bytes) in &before {
        assert!(get(t.store.as_ref(), &format!("out/run-1/{n}")) == *bytes, "{}: {n} changed", t.name);
    }
    assert_eq!(listing(t.store.as_ref(), "out/run-1").len(), before.len());

    // 3. Two jobs racing for one output: exactly one publishes, the other exits 2.
    let spawn = || {
        let mut c = job("out/race", &["--mini-batch-size", "1", "--max-concurrency", "1"]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let a = spawn();
    std::thread::sleep(t.stagger);
    let b = spawn();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code().unwrap(), b.status.code().unwrap()];
    codes.sort();
    assert_eq!(
        codes,
        [0, 2],
        "{}: {}\n---\n{}",
        t.name,
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    // The loser was refused by the output check (if the winner's staging was already there), by
    // the create-only commit itself (usually, when both start together), or, when both got as far
    // as publishing, by finding the winner's report there: either way, by name.
    let loser = if a.status.code() == Some(2) { &a } else { &b };
    let loser_err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        ["while this job ran", "while this one ran", "already holds", "is being written by"]
            .iter()
            .any(|m| loser_err.contains(m)),
        "{}: {loser_err}",
        t.name
    );
    assert!(get(t.store.as_ref(), "out/race/predictions.csv") == local, "{}: the winner's output is whole", t.name);
    assert_eq!(
        listing(t.store.as_ref(), "out/race").len(),
        4,
        "{}: {:?}",
        t.name,
        listing(t.store.as_ref(), "out/race")
    );

    // 4. Parquet output (a streamed upload, then the create-only copy).
    run_command(job("out/parquet", &["--output-file-name", "predictions.parquet"])).expect_code(0);
    let pq = get(t.store.as_ref(), "out/parquet/predictions.parquet");
    assert!(pq == local_iris("predictions.parquet"), "{}: Parquet differs from a local run", t.name);
}

#[test]
fn conformance_local_disk() {
    let root = tempdir();
    let base = format!("file://{}", root.path().display());
    let store: Arc<dyn ObjectStore> = Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(root.path()).unwrap().with_automatic_cleanup(true),
    );
    conformance(&Target {
        name: "file",
        url: Box::new(move |p| format!("{base}/{p}")),
        options: Vec::new(),
        store,
        secrets: Vec::new(),
        stagger: std::time::Duration::ZERO,
    });
}

#[test]
fn conformance_s3_moto() {
    let moto = Moto::start();
    moto.create_bucket("batchscore-test");
    let secret = "moto-secret-that-must-not-leak-8f3a".to_string();
    let mut options = moto.storage_options();
    for (k, v) in options.iter_mut() {
        if k == "aws_secret_access_key" {
            *v = secret.clone();
        }
    }
    // batchscore picks create-only settings that work on AWS itself: leave them to it.
    options.retain(|(k, _)| k != "aws_conditional_put" && k != "aws_copy_if_not_exists");
    let store = moto.store("batchscore-test");
    conformance(&Target {
        name: "s3",
        url: Box::new(|p| format!("s3://batchscore-test/{p}")),
        options,
        store,
        secrets: vec![secret],
        stagger: std::time::Duration::from_millis(30),
    });
}

#[test]
fn conformance_azure_azurite() {
    let azurite = Azurite::start();
    azurite.create_container("batchscore-test");
    let store = azurite.store("batchscore-test");
    conformance(&Target {
        name: "azure",
        url: Box::new(|p| format!("az://batchscore-test/{p}")),
        options: azurite.storage_options(),
        store,
        secrets: vec![azurite.key.clone()],
        stagger: std::time::Duration::ZERO,
    });
}

#[test]
fn conformance_in_memory_in_process() {
    use batchscore::engine::settings::{Deployment, RawSettings};
    let mem = batchscore::storage::memory_store();
    upload_dir_blocking(mem.as_ref(), Path::new(&data("iris")), &StorePath::from("conformance/in"));
    let settings = |out: &str| {
        RawSettings {
            model: Some(model("iris_zipmap.onnx")),
            input: Some("memory://conformance/in".into()),
            output: Some(out.into()),
            passthrough: Some(vec!["id".into()]),
            progress: Some("off".into()),
            logging_level: Some("warning".into()),
            ..Default::default()
        }
        .resolve("test")
        .unwrap()
    };
    let outcome = batchscore::engine::run(
        batchscore::engine::JobSpec::new(settings("memory://conformance/out"), Deployment::default()),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(outcome.result.counts.rows_scored, 150);
    assert!(get(mem.as_ref(), "conformance/out/predictions.csv") == local_iris("predictions.csv"));
    assert_eq!(listing(mem.as_ref(), "conformance/out").len(), 4);
    let before = get(mem.as_ref(), "conformance/out/predictions.csv");
    let err = batchscore::engine::run(
        batchscore::engine::JobSpec::new(settings("memory://conformance/out"), Deployment::default()),
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("already holds"), "{err}");
    assert!(get(mem.as_ref(), "conformance/out/predictions.csv") == before);
    // Two jobs racing in one process, one store.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                batchscore::engine::run(
                    batchscore::engine::JobSpec::new(settings("memory://conformance/race"), Deployment::default()),
                    &Default::default(),
                )
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won =
        results.iter().filter(|r| r.as_ref().is_ok_and(|o| !o.lost_race && o.result.counts.rows_scored == 150)).count();
    assert_eq!(won, 1, "exactly one job publishes");
    assert!(get(mem.as_ref(), "conformance/race/predictions.csv") == before);
    assert_eq!(listing(mem.as_ref(), "conformance/race").len(), 4);
}

#[test]
fn http_inputs_are_single_files() {
    let http = StaticHttp::start(Path::new(&data("iris")));
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let o = out.display().to_string();
    let url = http.url("part-1.csv");
    let mut cmd = score_cmd(
        tmp.path(),
        &["--model", &model("iris_zipmap.onnx"), "--input", &url, "--output", &o, "--passthrough", "id"],
    );
    cmd.args(["--storage-option", "allow_http=true"]);
    run_command(cmd).expect_code(0).no_panic();
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    let want: Vec<RefRow> =
        reference("iris_zipmap__iris.jsonl").into_iter().filter(|r| r.file == "part-1.csv").collect();
    assert_parity(&preds, &want, TOL);
    assert_eq!(job_result(&out)["input"], url);

    // A model over HTTP too, and Parquet (ranged reads) over HTTP.
    let wine = StaticHttp::start(&repo().join("sample-data/wine"));
    let models = StaticHttp::start(&repo().join("models"));
    let out2 = tmp.path().join("out2");
    let o2 = out2.display().to_string();
    let (m, i) = (models.url("wine_tensor.onnx"), wine.url("part-0.parquet"));
    let mut cmd = score_cmd(tmp.path(), &["--model", &m, "--input", &i, "--output", &o2, "--passthrough", "id"]);
    cmd.args(["--storage-option", "allow_http=true"]);
    run_command(cmd).expect_code(0);
    let (_, preds) = csv_preds(&out2.join("predictions.csv"));
    let want: Vec<RefRow> =
        reference("wine_tensor__wine.jsonl").into_iter().filter(|r| r.file == "part-0.parquet").collect();
    assert_parity(&preds, &want, TOL);

    // A folder cannot be listed over plain HTTP: a clear error before any work.
    let folder = http.url("");
    let out3 = tmp.path().join("out3");
    let o3 = out3.display().to_string();
    let mut cmd = score_cmd(tmp.path(), &["--model", &model("iris_zipmap.onnx"), "--input", &folder, "--output", &o3]);
    cmd.args(["--storage-option", "allow_http=true"]);
    run_command(cmd).expect_code(2).stderr_has(&["cannot list", "single files", "WebDAV"]);
    assert!(!out3.exists());
}

#[test]
fn a_wrong_key_is_refused_at_once_naming_the_url() {
    let azurite = Azurite::start();
    azurite.create_container("batchscore-test");
    let tmp = tempdir();
    let mut options = azurite.storage_options();
    for (k, v) in options.iter_mut() {
        if k == "azure_storage_account_key" {
            *v = "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleSB0aGF0IG11c3Qgbm90IGxlYWs=".into();
        }
    }
    let t = Target {
        name: "azure-wrong-key",
        url: Box::new(|p| format!("az://batchscore-test/{p}")),
        options,
        store: azurite.store("batchscore-test"),
        secrets: vec!["d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleSB0aGF0IG11c3Qgbm90IGxlYWs=".into()],
        stagger: std::time::Duration::ZERO,
    };
    let (i, o) = ((t.url)("in"), (t.url)("out"));
    let started = std::time::Instant::now();
    let run = run_command(score_cmd_on(
        &t,
        tmp.path(),
        &["--model", &model("iris_zipmap.onnx"), "--input", &i, "--output", &o],
    ));
    run.expect_code(2).stderr_has(&["az://batchscore-test/out", "credentials"]);
    no_secrets(&t, "stderr", &run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "not retried: {:?}", started.elapsed());
}

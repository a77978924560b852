//! The studio in a real browser: Debian's headless Chromium, driven by playwright-core
//! (tests/studio/walk.cjs), against `batchscore serve` on a workspace with 200 model versions
//! and 1,000 jobs. The walk follows the seed's workflow (sign in, deploy a model through the
//! wizard, a job with overridden settings on a datastore path, a second deployment made the
//! default, an output that exists refused before submit, delete the endpoint and keep its
//! jobs), refuses a wrong token, shows a read-only token no buttons that would fail, and
//! checks labels, keyboard reach and a 390-px viewport. Screenshots go to
//! target/studio-screenshots/.

mod common;

use std::path::Path;
use std::process::Command;

use batchscore::service::jobs::{self, InvokeSpec};
use batchscore::service::models::{self, ModelSpec};
use batchscore::workspace::Workspace;
use batchscore::workspace::assets::JobStatus;
use common::catalog::{bs, slow_endpoint};
use common::serve::{Serve, token, workspace};
use common::*;

fn chromium() -> String {
    let found = Command::new("sh").args(["-c", "command -v chromium"]).output().unwrap();
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    assert!(!path.is_empty(), "Debian's chromium is missing: run `make test-setup` (scripts/test-servers.sh)");
    path
}

/// 200 versions of one model and 1,000 finished jobs on endpoint `bulk-ep`, through the
/// service layer (what the CLI and the API call).
fn many_things(root: &Path) {
    let mut ws = Workspace::open(root).unwrap();
    for _ in 0..200 {
        let spec = ModelSpec { name: "bulk-model".into(), path: model("iris_zipmap.onnx"), ..Default::default() };
        models::create(&mut ws, spec).unwrap();
    }
    drop(ws);
    bs(root, &["batch-endpoint", "create", "-n", "bulk-ep"]).expect_code(0);
    let yaml = "name: only\nendpoint_name: bulk-ep\nmodel: azureml:bulk-model:1\nbatchscore:\n  passthrough: [id]\n";
    std::fs::write(root.join("bulk.yml"), yaml).unwrap();
    bs(root, &["batch-deployment", "create", "-f", "bulk.yml"]).expect_code(0);
    let mut ws = Workspace::open(root).unwrap();
    for _ in 0..1000 {
        let spec = InvokeSpec { endpoint: "bulk-ep".into(), input: data("iris"), ..Default::default() };
        let (job, _) = jobs::create(&mut ws, spec).unwrap();
        jobs::update(&mut ws, &job.name, |j, _| {
            j.status = JobStatus::Completed;
            j.started_at = Some(j.created_at.clone());
            j.finished_at = Some(j.created_at.clone());
        })
        .unwrap();
    }
}

#[test]
fn the_studio_walks_the_batch_endpoint_workflow_in_a_real_browser() {
    let browser = chromium();
    let playwright = repo().join(".tools/node_modules/playwright-core");
    assert!(playwright.exists(), "playwright-core is missing: run `make test-setup`");
    let (_tmp, ws) = workspace();
    many_things(&ws);
    // A job that is still running when the walk cancels it.
    slow_endpoint(&ws);
    // The model the walk deploys is the newest, so the models page shows it first.
    bs(&ws, &["model", "create", "-n", "iris", "-p", &model("iris_zipmap.onnx")]).expect_code(0);
    let asset = "azureml://datastores/workspaceblobstore/paths/inputs/iris";
    bs(&ws, &["data", "create", "-n", "iris-data", "-t", "uri_folder", "-p", asset]).expect_code(0);
    let inputs = ws.join(".batchscore/workspaceblobstore/inputs/iris");
    std::fs::create_dir_all(&inputs).unwrap();
    for f in std::fs::read_dir(repo().join("sample-data/iris")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, inputs.join(f.file_name().unwrap())).unwrap();
    }
    let admin = token(&ws, "studio-admin", "admin");
    let reader = token(&ws, "studio-reader", "read");
    let invoker = token(&ws, "studio-invoker", "invoke");
    let shots = target_dir().join("studio-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let s = Serve::start(&ws, &[]);
    let out = Command::new("node")
        .arg(repo().join("tests/studio/walk.cjs"))
        .env("STUDIO_URL", format!("http://127.0.0.1:{}", s.port))
        .env("ADMIN_TOKEN", &admin)
        .env("READ_TOKEN", &reader)
        .env("INVOKE_TOKEN", &invoker)
        // Some files score, some fail (a bad value, a ragged row, a truncated Parquet file).
        .env("BROKEN_INPUT", data("broken/tabular"))
        .env("SHOTS", &shots)
        .env("CHROMIUM", &browser)
        .env("PLAYWRIGHT", &playwright)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the walk failed:\n{stdout}\n{stderr}\nserver log:\n{}", s.log.lock().unwrap());
    // Measured, reported, not asserted tightly.
    let timings = stdout.lines().last().unwrap_or_default();
    eprintln!("studio timings (ms, navigation to first row): {timings}");
    let t: serde_json::Value = serde_json::from_str(timings).unwrap();
    assert!(t["jobs_tab_ms"].as_u64().is_some() && t["models_page_ms"].as_u64().is_some(), "{t}");

    // What the walk did is in the catalog and the store, as the CLI sees it.
    bs(&ws, &["batch-endpoint", "show", "-n", "iris-studio"]).expect_code(2).stderr_has(&["not found"]);
    let jobs = common::catalog::json(&ws, &["job", "list", "--query", "[?endpoint_name=='iris-studio']"]);
    let jobs = jobs.as_array().unwrap();
    let seen: Vec<(&str, &str)> =
        jobs.iter().map(|j| (j["deployment_name"].as_str().unwrap(), j["status"].as_str().unwrap())).collect();
    assert_eq!(
        seen,
        [("blue", "Completed"), ("green", "Completed"), ("blue", "Completed"), ("green", "Completed")],
        "the endpoint's jobs stay"
    );
    let slow = common::catalog::json(&ws, &["job", "list", "--query", "[?endpoint_name=='slow-ep'].status"]);
    assert_eq!(slow, serde_json::json!(["Canceled"]));
    assert_eq!(jobs[0]["settings"]["mini_batch_size"], "2", "{}", jobs[0]["settings"]);
    let store = ws.join(".batchscore/workspaceblobstore/studio-out");
    for run in ["run1", "run2", "run3"] {
        let (_, rows) = read_csv(&store.join(run).join("predictions.csv"));
        assert_eq!(rows.len(), 150, "{run}");
    }
    for shot in [
        "models.png",
        "wizard-review.png",
        "endpoint.png",
        "create-job.png",
        "job.png",
        "jobs.png",
        "mobile-endpoint.png",
    ] {
        assert!(shots.join(shot).metadata().map(|m| m.len() > 1000).unwrap_or(false), "{shot} was not saved");
    }
    s.stop();
}

/// Where cargo builds (target/, or CARGO_TARGET_DIR).
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|| repo().join("target"))
}

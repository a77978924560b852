//! Two jobs racing for one output folder: exactly one publishes, the other exits 2 and leaves
//! nothing of its own behind (DESIGN.md section 4, commit).

mod common;

use std::path::Path;
use std::process::Stdio;

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p).display().to_string()
}

#[test]
fn two_jobs_racing_for_one_output_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let spawn = || {
        common::bin_cmd()
            .args(["score", "--progress", "off", "--mini-batch-size", "1", "--max-concurrency", "1"])
            .args(["--model", &repo("models/digits_mlp.onnx"), "--input", &repo("sample-data/digits")])
            .arg("--output")
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code().unwrap(), b.status.code().unwrap()];
    codes.sort();
    let loser = if a.status.code() == Some(2) { &a } else { &b };
    assert_eq!(codes, [0, 2], "one wins, one exits 2\n{}", String::from_utf8_lossy(&loser.stderr));
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        err.contains("already holds") || err.contains("created by someone else") || err.contains("is being written by"),
        "{err}"
    );

    assert!(!err.contains("job report:"), "the loser does not present the winner's report as its own: {err}");

    // The winner's output is whole: 300 rows, a Completed report, and no staging left over.
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(csv.lines().count(), 301);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("logs/job_result.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "Completed");
    assert_eq!(report["counts"]["rows_scored"], 300);
    assert!(!out.join("_staging").exists(), "the losing job cleaned up its staging area");
}

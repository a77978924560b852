//! The README's batch endpoint walkthrough, run as written (with `bs` as this build's binary),
//! so the documented commands keep working.

mod common;

use common::*;

#[test]
fn the_readme_batch_endpoint_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme.split("## Batch endpoints").nth(1).expect("a Batch endpoints section");
    let script = section.split("```sh\n").nth(1).and_then(|b| b.split("\n```").next()).expect("a sh block");
    let tmp = tempdir();
    for dir in ["models", "sample-data"] {
        std::os::unix::fs::symlink(repo().join(dir), tmp.path().join(dir)).unwrap();
    }
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    let prelude = format!("set -euo pipefail\nbs() {{ {:?} \"$@\"; }}\n", bin().display().to_string());
    let mut bash = std::process::Command::new("bash");
    bash.current_dir(tmp.path()).env_remove("BATCHSCORE_WORKSPACE").arg("-c").arg(format!("{prelude}{script}"));
    if let Some(lib) = ort_library().filter(|_| std::env::var_os("ORT_DYLIB_PATH").is_none()) {
        bash.env("ORT_DYLIB_PATH", lib);
    }
    let run = run_command(bash);
    run.expect_code(0).no_panic();
    assert!(run.stdout.contains("part-0.csv"), "the predictions' head is printed:\n{}", run.stdout);
    let preds = tmp.path().join("out/results/named-outputs/score/predictions.csv");
    assert_eq!(csv_preds(&preds).1.len(), 150);
}

//! Running catalog commands against one workspace: `batchscore <args>` in `ws`, with
//! `BATCHSCORE_WORKSPACE` pointing at it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{Run, bin_cmd, model, run_command};

/// `batchscore <args>` against the workspace `ws`, run in `ws`.
pub fn bs_cmd(ws: &Path, args: &[&str]) -> Command {
    let mut cmd = bin_cmd();
    cmd.current_dir(ws).args(args).env("BATCHSCORE_WORKSPACE", ws).env_remove("BATCHSCORE_LOG");
    cmd
}

pub fn bs(ws: &Path, args: &[&str]) -> Run {
    run_command(bs_cmd(ws, args))
}

/// Runs a command with `-o json`, expecting exit 0, and returns what it printed.
#[track_caller]
pub fn json(ws: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let run = bs(ws, &all);
    run.expect_code(0).no_panic();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout))
}

/// Endpoint `slow-ep` with deployment `only` on `slow.onnx` (an 80 s model call): a job that is
/// still running when a test cancels, kills or stops it.
pub fn slow_endpoint(ws: &Path) {
    bs(ws, &["model", "create", "-n", "slow", "-p", &model("slow.onnx")]).expect_code(0);
    bs(ws, &["batch-endpoint", "create", "-n", "slow-ep"]).expect_code(0);
    let yaml = "name: only\nendpoint_name: slow-ep\nmodel: azureml:slow:1\nbatchscore:\n  passthrough: [id]\n";
    std::fs::write(ws.join("slow.yml"), yaml).unwrap();
    bs(ws, &["batch-deployment", "create", "-f", "slow.yml"]).expect_code(0);
}

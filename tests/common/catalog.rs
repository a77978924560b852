//! Running catalog commands against one workspace: `batchscore <args>` in `ws`, with
//! `BATCHSCORE_WORKSPACE` pointing at it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{Run, bin_cmd, run_command};

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

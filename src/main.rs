//! The `batchscore` binary: parse, dispatch, map the outcome to an exit code.
//! Everything else lives in the library so tests and benches reach it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = <batchscore::cli::Cli as clap::Parser>::parse();
    ExitCode::from(batchscore::cli::run(cli).code())
}

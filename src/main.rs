//! The `batchscore` binary: parse, dispatch, map the outcome to an exit code.
//! Everything else lives in the library so tests and benches reach it.

use std::process::ExitCode;

fn main() -> ExitCode {
    limit_arenas();
    let cli = <batchscore::cli::Cli as clap::Parser>::parse();
    ExitCode::from(batchscore::cli::run(cli).code())
}

/// Caps glibc's malloc arenas at one per core (its default is eight per core), before any
/// thread starts. Each of a job's threads (I/O, sessions, ONNX Runtime's, the collector) would
/// otherwise keep the large buffers it freed in an arena of its own, to be faulted in afresh
/// by the next thread: on bench-compare's W1-linear job this cuts the peak memory by a quarter
/// (830 MB to 600 MB) and the time by a tenth (BENCHMARKS.md). `MALLOC_ARENA_MAX`, when set,
/// is left to glibc. The project's one `unsafe`: a C call with no pointers.
#[allow(unsafe_code)]
fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a glibc tunable; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.clamp(1, 64) as libc::c_int);
        }
    }
}

//! The `batchscore` binary: parse, dispatch, map the outcome to an exit code.
//! Everything else lives in the library so tests and benches reach it.

use std::process::ExitCode;

fn main() -> ExitCode {
    tune_malloc();
    let cli = <batchscore::cli::Cli as clap::Parser>::parse();
    ExitCode::from(batchscore::cli::run(cli).code())
}

/// Tunes glibc's malloc for a job's memory traffic, before any thread starts: each input file
/// and each mini-batch's model input is a buffer of megabytes, allocated, filled, freed and
/// allocated again for the next.
///
/// - Arenas are capped at one per core (glibc's default is eight per core). Each of a job's
///   threads (I/O, sessions, ONNX Runtime's, the collector) would otherwise keep the large
///   buffers it freed in an arena of its own, to be faulted in afresh by the next thread: on
///   bench-compare's W1-linear job this cut the peak memory by a quarter (830 MB to 600 MB) and
///   the time by a tenth (BENCHMARKS.md).
/// - Buffers up to 32 MiB (glibc's own ceiling for this) come from the heap, and up to 128 MiB
///   of freed memory is kept at its top, instead of glibc's start of 128 KiB for both, which it
///   raises only as such buffers are freed: a fresh page is zeroed and faulted in on first
///   touch. With the two changes of the same round to the output's columns, on bench-compare's
///   W1-gbdt job the page faults fell from 166-178k to 115-135k and the job's own CPU time
///   besides the model by about 9%; W1-linear (CSV output) took 8% less time (BENCHMARKS.md,
///   round 6).
///
/// A setting the user made (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_TRIM_THRESHOLD_`, or the same tunable in `GLIBC_TUNABLES`) is left to glibc. The
/// project's one `unsafe`: C calls with no pointers.
#[allow(unsafe_code)]
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        // Neither the variable nor its tunable (`glibc.malloc.arena_max=...`) is set.
        let unset = |var: &str, tunable: &str| {
            std::env::var_os(var).is_none() && !tunables.contains(&format!("glibc.malloc.{tunable}="))
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a glibc tunable; no other thread exists yet.
        unsafe {
            if unset("MALLOC_ARENA_MAX", "arena_max") {
                libc::mallopt(libc::M_ARENA_MAX, cores.clamp(1, 64) as libc::c_int);
            }
            if unset("MALLOC_MMAP_THRESHOLD_", "mmap_threshold") && unset("MALLOC_TRIM_THRESHOLD_", "trim_threshold") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
            }
        }
    }
}

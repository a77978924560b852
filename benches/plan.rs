//! Planning time as the dataset grows: listing a local folder of 10k, 100k and 1M files,
//! sorting them and cutting them into mini-batches of 10 (`list_inputs` then `plan_job`, what
//! `batchscore score` does before it reads anything).
//!
//! `cargo bench --bench plan` (BENCHMARKS.md: "Cost as the work grows"). The files are empty
//! `.png` files, 1000 to a folder (`target/bench-data/plan/<n>/dNNNN/img-NNNNNNN.png`), made once
//! and kept (a stamp file marks a complete set); the listing reads names and sizes only, so
//! their content does not matter. Throughput is in files. `BATCHSCORE_BENCH_PLAN_MAX` (default
//! 1000000; 10000 when `cargo test` runs the bench once) leaves out the larger sets.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use batchscore::engine::plan::{list_inputs, plan_job};
use batchscore::engine::settings::MiniBatchTarget;
use batchscore::storage::Location;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn folder(n: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/plan").join(n.to_string());
    let stamp = root.join(".complete");
    if stamp.exists() {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    eprintln!("plan: making {n} empty files under {}", root.display());
    for i in 0..n {
        let dir = root.join(format!("d{:04}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).expect("folder");
        }
        std::fs::File::create(dir.join(format!("img-{i:07}.png"))).expect("file");
    }
    std::fs::write(&stamp, b"").expect("stamp");
    root
}

fn benches(c: &mut Criterion) {
    // `cargo test --all-targets` runs each bench once, without `--bench`: the smallest set only,
    // so that a clean clone's test run does not make a million files.
    let default_max = if std::env::args().any(|a| a == "--bench") { 1_000_000 } else { 10_000 };
    let max: usize =
        std::env::var("BATCHSCORE_BENCH_PLAN_MAX").ok().and_then(|v| v.parse().ok()).unwrap_or(default_max);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut g = c.benchmark_group("plan");
    for n in [10_000, 100_000, 1_000_000].into_iter().filter(|n| *n <= max) {
        let root = folder(n);
        let input = Location::parse(root.to_str().expect("utf-8 path")).expect("location");
        let plan = |input: &Location| {
            rt.block_on(async {
                let listing = list_inputs(input, None, None).await.expect("listing");
                plan_job(input, listing, MiniBatchTarget::Files(10), &|_| b',').await.expect("plan")
            })
        };
        let p = plan(&input);
        assert_eq!((p.files.len(), p.mini_batches.len()), (n, n / 10));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("list_sort_cut_{n}_files"), |b| b.iter(|| plan(black_box(&input)).mini_batches.len()));
    }
    g.finish();
}

criterion_group! {
    name = all;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).sample_size(10);
    targets = benches
}
criterion_main!(all);

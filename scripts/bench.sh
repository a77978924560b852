#!/usr/bin/env bash
# Benchmarks behind BENCHMARKS.md.
#
#   scripts/bench.sh criterion   the criterion benches (cargo bench --bench job), a few minutes
#   scripts/bench.sh e2e         the release binary end to end on ~1M generated rows, with
#                                /usr/bin/time -v (wall time, peak RSS) and the job report's
#                                per-stage timings
#   scripts/bench.sh catalog     the batch endpoint layer: `cargo bench --bench catalog`
#                                (model/job list with 10,000 rows, invoke against score on one
#                                job), then the release binary's `model list` and `job list` on
#                                that 10,000-row catalog, 5 runs each, wall seconds
#   scripts/bench.sh serve       the REST API under load: `cargo bench --bench serve_load`
#                                (64 keep-alive clients for 30 s polling job status, one request
#                                in 16 an invoke; BENCH_CONCURRENCY, BENCH_SECONDS), 2 runs
#   scripts/bench.sh             criterion and e2e
#
# The e2e dataset is wine-like (models/wine_tensor.onnx: `id` + 13 float64 feature columns),
# 100 files x 10,000 rows, generated once from fixed seeds by Python with numpy and pyarrow
# (PYTHON, default .venv-models/bin/python; see models/README.md) into $BENCH_DATA
# (default target/bench-data): parquet/part-NNNN.parquet (snappy, row groups of 1000) and the same
# rows as csv/part-NNNN.csv. Outputs go to a new folder under target/bench-out/ per run.
# MAX_CONCURRENCY (default 2) sets --max-concurrency.
set -euo pipefail
BIN="${CARGO_TARGET_DIR:-target}/release/batchscore"
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv-models/bin/python}
DATA=${BENCH_DATA:-target/bench-data}
MAX_CONCURRENCY=${MAX_CONCURRENCY:-2}
FILES=100
ROWS=10000

machine() {
  echo "== machine"
  echo "cores (nproc): $(nproc)"
  grep -m1 'model name' /proc/cpuinfo || true
  grep -m1 MemTotal /proc/meminfo || true
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  rustc --version
}

criterion() {
  echo "== cargo bench --bench job"
  cargo bench --bench job
}

generate() {
  if [ -f "$DATA/.done-$FILES-$ROWS" ]; then
    return
  fi
  echo "== generating $FILES x $ROWS rows into $DATA"
  rm -rf "$DATA"
  mkdir -p "$DATA/parquet" "$DATA/csv"
  "$PYTHON" scripts/gen-wine.py "$DATA/parquet" "$FILES" "$ROWS" --seed 1000 --row-group 1000 --csv
  touch "$DATA/.done-$FILES-$ROWS"
  du -sh "$DATA/parquet" "$DATA/csv"
}

# run INPUT_KIND OUTPUT_FILE_NAME: one timed job, then its report's counts and timings.
run() {
  local kind=$1 name=$2
  local out
  out="target/bench-out/$kind-to-${name##*.}-$(date -u +%Y%m%dT%H%M%S)-$$"
  mkdir -p target/bench-out
  echo "== $kind -> $name (--max-concurrency $MAX_CONCURRENCY)"
  local cmd=("$BIN" score --model models/wine_tensor.onnx --input "$DATA/$kind"
    --output "$out" --output-file-name "$name" --passthrough id
    --max-concurrency "$MAX_CONCURRENCY" --progress off --logging-level warning)
  echo "+ /usr/bin/time -v ${cmd[*]}"
  /usr/bin/time -v "${cmd[@]}" > /dev/null 2> "$out.time" || { cat "$out.time"; exit 1; }
  grep -E 'Elapsed \(wall clock\)|Maximum resident set size|User time|System time|Percent of CPU' "$out.time"
  grep -E '^(Completed|Failed):' "$out.time" || true
  "$PYTHON" - "$out/logs/job_result.json" "$out/$name" <<'EOF'
import json, os, sys
r = json.load(open(sys.argv[1]))
c, t = r["counts"], r["timings_seconds"]
print(f"rows_scored {c['rows_scored']}  files {c['files_scored']}/{c['files_total']}  "
      f"mini_batches {c['mini_batches_total']}  workers {r['model']['workers']} x "
      f"{r['model']['intra_threads']} threads  batch {r['model']['batch_size']}")
print("timings_seconds " + "  ".join(f"{k} {v:.3f}" for k, v in t.items()))
print(f"rows/s (wall) {c['rows_scored'] / t['wall']:.0f}  output {os.path.getsize(sys.argv[2]) / 1e6:.1f} MB")
EOF
  rm -rf "$out" "$out.time"
}

e2e() {
  generate
  echo "== cargo build --release"
  cargo build --release --quiet
  run parquet predictions.parquet
  run parquet predictions.csv
  run csv predictions.csv
}

# catalog: the criterion bench leaves its 10,000-row workspace in target/bench-catalog/ws.
catalog() {
  echo "== cargo bench --bench catalog"
  cargo bench --bench catalog
  echo "== cargo build --release"
  cargo build --release --quiet
  local ws=target/bench-catalog/ws
  for cmd in "model list -o json" "model list" "job list -o json" "job list" "job show -n batchjob-5000"; do
    local walls=()
    for _ in 1 2 3 4 5; do
      # shellcheck disable=SC2086
      walls+=("$( { /usr/bin/time -f %e "$BIN" $cmd --workspace "$ws" > /dev/null; } 2>&1 | tail -n 1)")
    done
    echo "batchscore $cmd (10,000 rows): wall seconds ${walls[*]}"
  done
}

# serve: the load generator runs on the same machine as the server (it takes cores from it).
serve() {
  echo "== cargo bench --bench serve_load (x2)"
  cargo bench --bench serve_load
  cargo bench --bench serve_load
}

case "${1:-all}" in
  criterion) machine; criterion ;;
  e2e) machine; e2e ;;
  catalog) machine; catalog ;;
  serve) machine; serve ;;
  all) machine; criterion; e2e ;;
  *) echo "usage: $0 [criterion|e2e|catalog|serve|all]" >&2; exit 2 ;;
esac

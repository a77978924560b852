#!/usr/bin/env bash
# `make bench-compare`: batchscore side by side with the alternatives, into BENCHMARKS.md.
#
# One command does it all on a fresh machine: installs ONNX Runtime (scripts/setup.sh) and the
# benchmark's Python environment (.venv-bench: pandas, pyarrow, onnxruntime, Ray, ...), builds
# batchscore and the raw-limit loop (benches/raw_limit.rs) in release mode, generates the
# datasets and models from fixed seeds (once, into $BENCH_DATA), then runs every workload
# through (a) batchscore, (b) the raw ONNX Runtime limit, (c) a Python multiprocessing pool
# scoring script, (d) Ray Data, (e) Daft, and rewrites the comparison section of BENCHMARKS.md and
# BENCHMARKS-compare.png.
#
#   SCALE=small benches/compare/run.sh     a quick run on small data (does not touch BENCHMARKS.md)
#   benches/compare/run.sh --only W1-linear   extra arguments go to harness.py
set -euo pipefail
cd "$(dirname "$0")/../.."

SCALE=${SCALE:-full}
DATA=${BENCH_DATA:-target/bench-data/compare}
PY=.venv-bench/bin/python

scripts/setup.sh
benches/compare/setup.sh
cargo build --release --quiet
RAW=$(cargo bench --bench raw_limit --no-run 2>&1 | grep -o '[^ (]*/release/deps/raw_limit-[0-9a-f]*' | tail -n 1)
[ -x "$RAW" ] || { echo "error: could not build the raw-limit bench (cargo bench --bench raw_limit --no-run)" >&2; exit 1; }

"$PY" benches/compare/gen_data.py --out "$DATA" --scale "$SCALE"
"$PY" benches/compare/gen_models.py --data "$DATA" --out "$DATA/models"
update=()
[ "$SCALE" = full ] && update=(--update-benchmarks)
"$PY" benches/compare/harness.py --scale "$SCALE" --data "$DATA" --batchscore "${CARGO_TARGET_DIR:-target}/release/batchscore" \
  --raw "$RAW" "${update[@]}" "$@"

#!/usr/bin/env bash
# The per-part cost figures in BENCHMARKS.md ("Resume and scale-out"): makes the two datasets
# and times `batchscore score` on them, A (this checkout's release build) against B (another
# build, e.g. of the commit before parts), in turn, whole-process wall time with /usr/bin/time.
#   scripts/bench-parts.sh OLD_BATCHSCORE [RUNS]
# Needs Python 3 with pyarrow for the Parquet dataset (pip install pyarrow; PYTHON=... picks one).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: scripts/bench-parts.sh OLD_BATCHSCORE [RUNS]}
RUNS=${2:-5}
NEW=${CARGO_TARGET_DIR:-target}/release/batchscore
DATA=${BENCH_DATA:-target/bench-data/parts}
mkdir -p "$DATA/w1" "$DATA/w2" "$DATA/out"
# W1-shaped: 1,000,000 rows in 20 Parquet files of 50,000, from sample-data/iris.
${PYTHON:-python3} - "$DATA/w1" <<'PY'
import sys, pyarrow as pa, pyarrow.parquet as pq, pyarrow.csv as pc
t = pc.read_csv('sample-data/iris/part-0.csv')
for f in range(20):
    n = 50_000
    idx = [i % t.num_rows for i in range(n)]
    cols = {'id': pa.array([f"{f}-{i}" for i in range(n)])}
    cols.update({c: pa.array([t[c][i].as_py() for i in idx]) for c in t.column_names if c != 'id'})
    pq.write_table(pa.table(cols), f'{sys.argv[1]}/part-{f:03}.parquet')
PY
# W2-shaped: 2,100 PNG digits (7 copies of sample-data/digits).
for k in 0 1 2 3 4 5 6; do for f in sample-data/digits/*.png; do cp "$f" "$DATA/w2/c$k-$(basename "$f")"; done; done
common=(--progress off --max-concurrency 2 --intra-threads 1 --output-file-name p.parquet)
run() { # name, then score's arguments
  local name=$1; shift
  for i in $(seq "$RUNS"); do
    for side in A B; do
      bin=$NEW; [ $side = B ] && bin=$OLD
      /usr/bin/time -f "$name $side %e s" "$bin" score "$@" "${common[@]}" --output "$DATA/out/$name-$side-$i-$RANDOM" >/dev/null 2>>"$DATA/times.txt" || true
    done
  done
}
: > "$DATA/times.txt"
run w1 --model models/iris_zipmap.onnx --input "$DATA/w1" --passthrough id
for mb in 100 10 2; do run "w2-mb$mb" --model models/digits_mlp.onnx --input "$DATA/w2" --mini-batch-size $mb; done
grep -E '^(w1|w2)' "$DATA/times.txt"

#!/usr/bin/env bash
# Peak memory as the dataset grows 20x: the release binary scores a 1x and a 20x Parquet
# dataset (models/wine_tensor.onnx, predictions.parquet) under /usr/bin/time -v and prints wall
# time, peak RSS and rows/s for each. Reading is bounded (a few mini-batches ahead, bounded
# channels) and the output is a streamed upload, so peak RSS should not grow with the dataset.
#
#   scripts/bench-memory.sh            1x = 100 files x 130,000 rows (0.7 GB), 20x = 2000 files (13.4 GB)
#   FILES=10 scripts/bench-memory.sh   a quick check (10 and 200 files)
#
# The 1x files are generated once from fixed seeds (numpy + pyarrow from .venv-models, see
# models/README.md; PYTHON overrides) into $BENCH_DATA/mem (default target/bench-data/mem); the
# 20x dataset holds 20 hard links to each, so it takes no extra disk for inputs. Outputs go to
# target/bench-out/ and are removed after each run. MAX_CONCURRENCY (default: cores) and
# MINI_BATCH (default 16MB, --mini-batch-size) are passed on.
set -euo pipefail
BIN="${CARGO_TARGET_DIR:-target}/release/batchscore"
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv-models/bin/python}
DATA=${BENCH_DATA:-target/bench-data}/mem
FILES=${FILES:-100}
ROWS=${ROWS:-130000}
MAX_CONCURRENCY=${MAX_CONCURRENCY:-$(nproc)}
# Memory in flight is a few mini-batches (prefetch + channels + workers): with the default of 10
# files of 7 MB each that bound is over 1 GB and a short job never reaches it; a mini-batch of
# 16 MB keeps the bound small and is reached by both datasets.
MINI_BATCH=${MINI_BATCH:-16MB}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(grep -m1 MemTotal /proc/meminfo | awk '{printf "%.0f GB", $2/1048576}'), $(date -u +%Y-%m-%dT%H:%M:%SZ)"

if [ ! -f "$DATA/.done-$FILES-$ROWS" ]; then
  echo "== generating $FILES x $ROWS rows into $DATA/x1"
  rm -rf "$DATA"
  mkdir -p "$DATA/x1" "$DATA/x20"
  "$PYTHON" scripts/gen-wine.py "$DATA/x1" "$FILES" "$ROWS" --seed 5000 --row-group 10000
  for f in "$DATA"/x1/*.parquet; do
    base=$(basename "$f" .parquet)
    for k in $(seq -w 0 19); do ln "$f" "$DATA/x20/$base-copy$k.parquet"; done
  done
  touch "$DATA/.done-$FILES-$ROWS"
fi
echo "inputs: x1 $(du -sh "$DATA/x1" | cut -f1) in $(ls "$DATA/x1" | wc -l) files; x20 $(du -shl "$DATA/x20" | cut -f1) in $(ls "$DATA/x20" | wc -l) files"

[ -x "$BIN" ] || cargo build --release --quiet
mkdir -p target/bench-out
printf '\n| dataset | files | rows | input | wall | rows/s | peak RSS | output |\n|---|---|---|---|---|---|---|---|\n' > target/bench-out/memory.md
for set in x1 x20; do
  out="target/bench-out/memory-$set-$$"
  cmd=("$BIN" score --model models/wine_tensor.onnx --input "$DATA/$set" --output "$out"
    --output-file-name predictions.parquet --passthrough id --max-concurrency "$MAX_CONCURRENCY" --mini-batch-size "$MINI_BATCH"
    --progress off --logging-level warning)
  echo "+ /usr/bin/time -v ${cmd[*]}"
  /usr/bin/time -v "${cmd[@]}" > /dev/null 2> "$out.time" || { cat "$out.time"; exit 1; }
  rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out.time")
  "$PYTHON" - "$out" "$set" "$rss_kb" "$(du -shl "$DATA/$set" | cut -f1)" >> target/bench-out/memory.md <<'EOF'
import json, os, sys
out, name, rss_kb, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = json.load(open(f"{out}/logs/job_result.json"))
c, t = r["counts"], r["timings_seconds"]
mb = os.path.getsize(f"{out}/predictions.parquet") / 1e6
print(f"| {name} | {c['files_scored']} | {c['rows_scored']:,} | {size} | {t['wall']:.0f} s | "
      f"{c['rows_scored'] / t['wall']:,.0f} | {rss_kb / 1024:.0f} MB | {mb:,.0f} MB |")
EOF
  tail -n 1 target/bench-out/memory.md
  rm -rf "$out" "$out.time"
done
cat target/bench-out/memory.md

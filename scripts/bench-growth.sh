#!/usr/bin/env bash
# Cost as the work grows: bench-compare's workloads over 1x, 4x and 16x their data, with the
# wall time and peak memory of each job per item, and the slope of a straight line through the
# three (the cost of one more item) beside its intercept (the fixed cost of a job).
#
#   scripts/bench-growth.sh            1x = 10 W1 files (500k rows) and 500 W2 images
#   BASE_FILES=2 BASE_IMAGES=100 scripts/bench-growth.sh    a quick check
#
# The inputs are hard links into bench-compare's full-scale data (benches/compare/gen_data.py;
# `make bench-compare` or `SCALE=full` makes it): W1's 100 Parquet files are linked again
# under new names where 16x needs more, W2's 10,000 images are all distinct. Each job is the
# release binary's `score` with the CLI's defaults (2 workers on this machine, CSV output)
# under /usr/bin/time -v; its output is removed after the run. Figures go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-target}/release/batchscore
DATA=${BENCH_DATA:-target/bench-data/compare}
WORK=${BENCH_DIR:-target/bench-growth}
BASE_FILES=${BASE_FILES:-10}
BASE_IMAGES=${BASE_IMAGES:-500}
W1="$DATA/full/w1"
W2="$DATA/full/w2"
MODELS="$DATA/models"
for need in "$W1/part-0000.parquet" "$W2" "$MODELS/gbdt.onnx" "$MODELS/linear.onnx" "$MODELS/cnn.onnx"; do
  [ -e "$need" ] || { echo "bench-growth: $need is missing; run SCALE=full benches/compare/run.sh (or gen_data.py and gen_models.py) first" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench-growth: /usr/bin/time is missing (Debian: apt-get install time)" >&2; exit 1; }
cargo build --release --quiet

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(grep -m1 MemTotal /proc/meminfo | awk '{printf "%.0f GB", $2/1048576}'), $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD)"

# dataset KIND FACTOR -> prints the folder holding FACTOR x the base count of inputs
dataset() {
  local kind=$1 factor=$2 dir="$WORK/in-$1-$2"
  if [ ! -e "$dir/.complete" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    if [ "$kind" = w1 ]; then
      local files=("$W1"/part-*.parquet) n=$((BASE_FILES * factor)) i
      for ((i = 0; i < n; i++)); do ln "${files[i % ${#files[@]}]}" "$dir/$(printf 'part-%05d.parquet' "$i")"; done
    else
      local files=("$W2"/img-*) n=$((BASE_IMAGES * factor)) i
      [ "$n" -le "${#files[@]}" ] || { echo "bench-growth: $n images asked for, $W2 has ${#files[@]}" >&2; exit 1; }
      for ((i = 0; i < n; i++)); do ln "${files[i]}" "$dir/"; done
    fi
    touch "$dir/.complete"
  fi
  echo "$dir"
}

echo
echo "| workload | data | items | wall s | peak MB | us per item | KB per item |"
echo "|---|---|---|---|---|---|---|"
summary=()
for wl in W1-gbdt W1-linear W2-cnn; do
  case $wl in
    W1-gbdt) kind=w1 model=gbdt.onnx extra=(--passthrough id) ;;
    W1-linear) kind=w1 model=linear.onnx extra=(--passthrough id) ;;
    W2-cnn) kind=w2 model=cnn.onnx extra=(--image-size 128x128) ;;
  esac
  points=()
  for factor in 1 4 16; do
    in=$(dataset "$kind" "$factor")
    out="$WORK/out-$wl-$factor"
    rm -rf "$out"
    /usr/bin/time -v "$BIN" score --model "$MODELS/$model" --input "$in" --output "$out" --progress off \
      --logging-level warning "${extra[@]}" > /dev/null 2> "$WORK/time-$wl-$factor.txt" ||
      { cat "$WORK/time-$wl-$factor.txt" >&2; exit 1; }
    read -r items wall < <(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(r["counts"]["rows_scored"], r["timings_seconds"]["wall"])' "$out/logs/job_result.json")
    peak=$(awk '/Maximum resident set size/ { print $NF / 1024 }' "$WORK/time-$wl-$factor.txt")
    awk -v w="$wl" -v f="$factor" -v n="$items" -v t="$wall" -v m="$peak" 'BEGIN {
      printf "| %s | %dx | %d | %.2f | %.0f | %.2f | %.3f |\n", w, f, n, t, m, t / n * 1e6, m * 1024 / n }'
    points+=("$items $wall $peak")
    rm -rf "$out"
  done
  # Least squares through the three points: seconds = fixed + slope * items.
  summary+=("$(printf '%s\n' "${points[@]}" | awk -v w="$wl" '{ n++; x += $1; y += $2; xx += $1 * $1; xy += $1 * $2; m[n] = $3; t[n] = $2 / $1 }
    END { s = (n * xy - x * y) / (n * xx - x * x); b = (y - s * x) / n;
      printf "| %s | %.2f | %.3f | %.2f | %.0f -> %.0f |\n", w, s * 1e6, b, t[3] / t[1], m[1], m[3] }')")
done
echo
echo "| workload | slope, us per item | fixed s | time per item 16x / 1x | peak MB 1x -> 16x |"
echo "|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"

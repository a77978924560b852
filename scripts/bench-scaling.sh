#!/usr/bin/env bash
# One job run by 1, 2, 4 and 8 processes on this machine against a store whose every request
# takes 20-50 ms (BATCHSCORE_TEST_STORE_LATENCY, a local folder behind a delay): the wall time
# of each, the speedup over one process, and the store requests per mini-batch (summed over the
# processes). `scripts/bench-scaling.sh [FILES] [MINI_BATCH_SIZE]`; figures go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-600}
MBS=${2:-2}
BIN=${CARGO_TARGET_DIR:-target}/release/batchscore
WORK=${BENCH_DIR:-target/bench-scaling}
cargo build --release --quiet
rm -rf "$WORK" && mkdir -p "$WORK/in"
# The digits sample, copied to FILES images.
n=0
while [ "$n" -lt "$FILES" ]; do
  for f in sample-data/digits/*.png; do
    [ "$n" -ge "$FILES" ] && break
    cp "$f" "$WORK/in/$(printf 'img-%06d.png' "$n")"; n=$((n + 1))
  done
done
export BATCHSCORE_TEST_STORE_LATENCY=20-50ms BATCHSCORE_LOG=warn
echo "| processes | wall s | speedup | store requests | per mini-batch |"
echo "|---|---|---|---|---|"
base=""
for procs in 1 2 4 8; do
  out="$WORK/out-$procs"
  start=$(date +%s.%N)
  for i in $(seq 0 $((procs - 1))); do
    "$BIN" score --model models/digits_mlp.onnx --input "$WORK/in" --output "$out" --progress off \
      --mini-batch-size "$MBS" --max-concurrency 1 --instance-count "$procs" --instance-index "$i" \
      2> "$WORK/log-$procs-$i" > /dev/null &
  done
  wait
  end=$(date +%s.%N)
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
  [ -z "$base" ] && base=$wall
  reqs=$(cat "$WORK"/log-"$procs"-* | sed -n 's/^store requests: //p' | awk '{ s += $1 } END { print s }')
  mbs=$(( (FILES + MBS - 1) / MBS ))
  grep -q '"status": "Completed"' "$out/logs/job_result.json" || { echo "job with $procs processes did not complete" >&2; exit 1; }
  awk -v p="$procs" -v w="$wall" -v b="$base" -v r="$reqs" -v m="$mbs" \
    'BEGIN { printf "| %d | %.1f | %.2fx | %d | %.1f |\n", p, w, b / w, r, r / m }'
done

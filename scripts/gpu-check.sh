#!/usr/bin/env bash
# On a GPU host (../shared/gpu/README.md): the CUDA path of batchscore, checked and timed.
#   1. digits through --device cuda and --device cpu: same predictions (max abs difference).
#   2. ResNet-50 (torchvision, weights=None, fp32, exported here) over N JPEG photos of mixed
#      sizes made from skimage.data, resized to 224x224, --device cuda at batch 64, 256 and 512
#      (default layout on a GPU: every core decoding for 2 sessions);
#      wall time, images/s and the job's per-stage timings, GPU utilisation sampled by nvidia-smi.
# Needs: ORT_DYLIB_PATH at the onnxruntime-gpu build (source .gpu-ort/bin/env.sh), python3 with
# torch, torchvision, onnx, scikit-image, pillow. BIN (default target/gpu/batchscore), N (2000),
# OUT (results folder, default target/gpu-out).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/gpu/batchscore}
N=${N:-2000}
OUT=${OUT:-target/gpu-out}
WORK=${WORK:-/tmp/gpu-check}
mkdir -p "$OUT" "$WORK"
TIME=""
[ -x /usr/bin/time ] && TIME='/usr/bin/time -f wall_%e_s_peak_RSS_%M_KB'
{
  echo "== host: $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader)"
  echo "== date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"

  echo "== 1. digits, cuda vs cpu"
  rm -rf "$WORK/digits-cuda" "$WORK/digits-cpu"
  "$BIN" score --model models/digits_mlp.onnx --input sample-data/digits --output "$WORK/digits-cuda" --device cuda --progress off
  "$BIN" score --model models/digits_mlp.onnx --input sample-data/digits --output "$WORK/digits-cpu" --device cpu --progress off
  python3 - "$WORK" <<'EOF'
import csv, json, sys
w = sys.argv[1]
def rows(p):
    with open(p) as f:
        return list(csv.DictReader(f))
a, b = rows(f"{w}/digits-cuda/predictions.csv"), rows(f"{w}/digits-cpu/predictions.csv")
assert len(a) == len(b) == 300, (len(a), len(b))
labels = sum(x["label"] == y["label"] for x, y in zip(a, b))
diff = max(abs(p - q) for x, y in zip(a, b) for p, q in zip(json.loads(x["probabilities"]), json.loads(y["probabilities"])))
print(f"digits: {labels}/300 labels equal, max |p_cuda - p_cpu| = {diff:.2e}")
print("device in report:", json.load(open(f"{w}/digits-cuda/logs/job_result.json"))["settings"]["device"])
EOF

  echo "== 2. ResNet-50 over $N photos"
  if [ ! -f "$WORK/resnet50.onnx" ]; then
    python3 - "$WORK/resnet50.onnx" <<'EOF'
import sys, torch, torchvision
m = torchvision.models.resnet50(weights=None).eval()
torch.onnx.export(m, torch.randn(1, 3, 224, 224), sys.argv[1], opset_version=17, input_names=["input"],
                  output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, dynamo=False)
EOF
  fi
  if [ ! -d "$WORK/photos-$N" ]; then
    python3 - "$WORK/photos-$N" "$N" <<'EOF'
import os, sys
from concurrent.futures import ProcessPoolExecutor
import numpy as np
from PIL import Image
from skimage import data
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
srcs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field()]
def make(i):
    rng = np.random.default_rng(i)
    img = Image.fromarray(srcs[i % len(srcs)])
    w, h = img.size
    cw, ch = int(w * rng.uniform(0.5, 1)), int(h * rng.uniform(0.5, 1))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    s = rng.uniform(300, 600) / max(cw, ch)
    img.crop((x, y, x + cw, y + ch)).resize((int(cw * s), int(ch * s))).save(f"{out}/photo-{i:06d}.jpg", quality=90)
with ProcessPoolExecutor(16) as ex:
    list(ex.map(make, range(n), chunksize=64))
EOF
  fi
  du -sh "$WORK/photos-$N"
  for bs in 64 256 512; do
    o="$WORK/r50-$bs"; rm -rf "$o"
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -lms 500 > "$OUT/nvsmi-$bs.txt" &
    smi=$!
    $TIME "$BIN" score --model "$WORK/resnet50.onnx" --input "$WORK/photos-$N" \
      --output "$o" --device cuda --batch-size "$bs" --image-size 224x224 --mean 0.485,0.456,0.406 \
      --std 0.229,0.224,0.225 --output-file-name predictions.parquet --progress off \
      --logging-level warning
    kill $smi || true
    python3 - "$o" "$bs" "$OUT/nvsmi-$bs.txt" <<'EOF'
import json, sys
r = json.load(open(f"{sys.argv[1]}/logs/job_result.json"))
c, t = r["counts"], r["timings_seconds"]
u = [int(l.split(",")[0].split()[0]) for l in open(sys.argv[3]) if l.strip()]
m = r["model"]
print(f"batch {sys.argv[2]}: {c['rows_scored']} images in {t['wall']:.1f} s = {c['rows_scored'] / t['wall']:.0f} images/s; "
      f"{m['workers']} workers feed {m['sessions']} sessions x {m['intra_threads']} threads; "
      f"{c['model_calls']} model calls ({c['rows_scored'] / max(c['model_calls'], 1):.0f} images each); "
      f"nvidia-smi at 500 ms: GPU util mean {sum(u) / max(len(u), 1):.0f}% max {max(u or [0])}%")
print("timings_seconds", json.dumps(t))
print("gpu", json.dumps(r.get("gpu")))
EOF
  done
} 2>&1 | tee "$OUT/gpu-check.txt"

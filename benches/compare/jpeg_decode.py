"""PIL's JPEG decoding beside batchscore's: speed per core, and what a scaled decode changes.

    jpeg_decode.py --input DIR --model cnn.onnx [--image-size 128]
                   [--batchscore-full OUT1 --batchscore-scaled OUT2] [--repeat 3]

Over the JPEGs of DIR (sorted), one process, one thread:

- speed: PIL `Image.open` + `convert("RGB")` + `resize((S, S), BILINEAR)` + `/255` as float32,
  with and without `draft("RGB", (S, S))` first (libjpeg-turbo's DCT-domain downscale to 1/2,
  1/4 or 1/8 of the size, the largest that keeps the image at least SxS); the best of
  --repeat passes, in images per second of one core.
- accuracy: the model's `probabilities` (the first output) for every image both ways, and the
  largest and mean absolute difference between them: the tolerance PIL's own draft path gives.
  With --batchscore-full/--batchscore-scaled (two `batchscore score` outputs over the same DIR
  with `--jpeg-decode full` and the default `scaled`, as predictions.parquet), the same figures
  for batchscore's two paths, and for each of them against PIL's full decode.

Prints a JSON object.
"""

import argparse
import glob
import json
import os
import time

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq
from PIL import Image


def pixels(path, size, draft):
    with Image.open(path) as img:
        if draft:
            img.draft("RGB", (size, size))
        img = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1)


def timed(files, size, draft, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        for f in files:
            pixels(f, size, draft)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return len(files) / best


def probabilities(sess, files, size, draft):
    name = sess.get_inputs()[0].name
    out = []
    for i in range(0, len(files), 64):
        x = np.stack([pixels(f, size, draft) for f in files[i:i + 64]])
        out.append(sess.run(None, {name: x})[0])
    return np.concatenate(out)


def batchscore_probabilities(out_dir, rels):
    t = pq.read_table(os.path.join(out_dir, "predictions.parquet")).to_pydict()
    by_file = dict(zip(t["file"], t["probabilities"]))
    return np.array([by_file[r] for r in rels], dtype=np.float64)


def diff(a, b):
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return {"max": float(d.max()), "mean": float(d.mean())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batchscore-full")
    ap.add_argument("--batchscore-scaled")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.input, "**", "*.jpg"), recursive=True))
    if not files:
        raise SystemExit(f"no .jpg files under {a.input}")
    rels = [os.path.relpath(f, a.input) for f in files]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    result = {
        "jpegs": len(files),
        "pil_full_images_per_s": round(timed(files, a.image_size, False, a.repeat), 1),
        "pil_draft_images_per_s": round(timed(files, a.image_size, True, a.repeat), 1),
    }
    full = probabilities(sess, files, a.image_size, False)
    result["pil_draft_vs_pil_full"] = diff(probabilities(sess, files, a.image_size, True), full)
    if a.batchscore_full and a.batchscore_scaled:
        bs_full = batchscore_probabilities(a.batchscore_full, rels)
        bs_scaled = batchscore_probabilities(a.batchscore_scaled, rels)
        result["batchscore_scaled_vs_batchscore_full"] = diff(bs_scaled, bs_full)
        result["batchscore_full_vs_pil_full"] = diff(bs_full, full)
        result["batchscore_scaled_vs_pil_full"] = diff(bs_scaled, full)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

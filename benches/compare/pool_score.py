"""Baseline (c) of the comparison benchmark: batch scoring the way an Azure ML parallel-run
(ParallelRunStep / batch endpoint) scoring script does it, with a Python multiprocessing Pool.

    pool_score.py --model M --input DIR --output OUTDIR --workers N --kind tabular|image
                  [--mini-batch-files 10] [--batch-size B] [--image-size 128]

The parent lists the input files (sorted, recursively), cuts them into mini-batches of
--mini-batch-files files (Azure's default, 10) and hands them to a Pool of N processes with
`imap` (ordered). Each process runs `init()` once: one onnxruntime InferenceSession with
intra_op_num_threads=1 and inter_op_num_threads=1, so N processes use N threads for the model,
as batchscore's N workers x 1 thread do. `run(mini_batch)` reads each file (tabular:
pandas.read_parquet, features = every column except `id` as float32; image: PIL open,
`draft("RGB", (S, S))` so that libjpeg-turbo decodes a large JPEG at 1/2, 1/4 or 1/8 of its size
in the DCT domain, as a speed-minded script does, convert RGB, resize to SxS bilinear, /255,
NCHW), calls the model in calls of --batch-size rows or
images packed across the files of the mini-batch (default: 1024 rows / 32 images, batchscore's
defaults), and returns a DataFrame. The parent appends each DataFrame to ONE file,
OUTDIR/predictions.parquet, with a pyarrow ParquetWriter (Azure's append_row).

Output columns mirror batchscore's: tabular `file` (path relative to DIR), `row` (uint64, row in
the file), `id`, `label`, `probabilities` (list<float>); image `file`, `probabilities`. The
probabilities column is built as an Arrow list column inside the DataFrame (pandas.ArrowDtype),
not as an object column of small numpy arrays, so neither pickling it back to the parent nor
writing it is slower than it needs to be.

Refuses an existing OUTDIR (exit 2). Prints one JSON line at the end:
{"items": N, "seconds": wall since the process started, "startup_seconds": process start until
every worker had its session open, "workers": N, "batch_size": B}.
"""

import time

from started import process_start

T_START = process_start()

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}

# Per-process state, set by init() (as an Azure scoring script keeps its model in a global).
_SESSION = None
_CFG = None


def init(model, kind, batch_size, image_size, barrier):
    global _SESSION, _CFG
    import onnxruntime as ort

    try:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        _SESSION = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        _CFG = {"kind": kind, "batch_size": batch_size, "image_size": image_size,
                "input": _SESSION.get_inputs()[0].name}
    except BaseException:
        barrier.abort()  # the parent stops instead of waiting for this worker forever
        raise
    barrier.wait()


def _probabilities_column(proba):
    """[n, k] float32 -> an Arrow-backed pandas Series of list<float>."""
    n, k = proba.shape
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    arr = pa.ListArray.from_arrays(offsets, pa.array(proba.reshape(-1)))
    return pd.Series(arr, dtype=pd.ArrowDtype(arr.type))


def _predict(x):
    """Model calls of at most batch_size rows; returns the outputs by name, concatenated."""
    b = _CFG["batch_size"]
    names = [o.name for o in _SESSION.get_outputs()]
    parts = {name: [] for name in names}
    for start in range(0, len(x), b):
        outs = _SESSION.run(names, {_CFG["input"]: x[start:start + b]})
        for name, out in zip(names, outs, strict=True):
            parts[name].append(out)
    return {name: np.concatenate(p) for name, p in parts.items()}


def run(mini_batch):
    """Score one mini-batch: a list of (absolute path, path relative to the input folder)."""
    if _CFG["kind"] == "tabular":
        frames, files, rows = [], [], []
        for path, rel in mini_batch:
            df = pd.read_parquet(path)
            frames.append(df)
            files.append(np.full(len(df), rel, dtype=object))
            rows.append(np.arange(len(df), dtype=np.uint64))
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        x = df.drop(columns=["id"]).to_numpy(dtype=np.float32)
        out = _predict(x)
        return pd.DataFrame({
            "file": np.concatenate(files),
            "row": np.concatenate(rows),
            "id": df["id"].to_numpy(),
            "label": out["label"],
            "probabilities": _probabilities_column(out["probabilities"]),
        })
    from PIL import Image

    s = _CFG["image_size"]
    x = np.empty((len(mini_batch), 3, s, s), dtype=np.float32)
    for i, (path, _) in enumerate(mini_batch):
        with Image.open(path) as img:
            img.draft("RGB", (s, s))  # JPEG only: a no-op for other formats
            img = img.convert("RGB").resize((s, s), Image.Resampling.BILINEAR)
        x[i] = (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1)
    out = _predict(x)
    return pd.DataFrame({
        "file": [rel for _, rel in mini_batch],
        "probabilities": _probabilities_column(out["probabilities"]),
    })


def list_files(root, kind):
    found = []
    for d, _, names in os.walk(root):
        for name in names:
            ext = os.path.splitext(name)[1].lower()
            if (kind == "tabular" and ext == ".parquet") or (
                    kind == "image" and ext in IMAGE_EXTENSIONS):
                path = os.path.join(d, name)
                found.append((path, os.path.relpath(path, root)))
    return sorted(found, key=lambda f: f[1])


def schema(kind):
    fields = [pa.field("file", pa.string())]
    if kind == "tabular":
        fields += [pa.field("row", pa.uint64()), pa.field("id", pa.int64()),
                   pa.field("label", pa.int64())]
    return pa.schema(fields + [pa.field("probabilities", pa.list_(pa.float32()))])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--kind", choices=["tabular", "image"], required=True)
    p.add_argument("--mini-batch-files", type=int, default=10)
    p.add_argument("--batch-size", type=int, help="rows or images per model call "
                   "[default: 1024 rows, 32 images]")
    p.add_argument("--image-size", type=int, default=128)
    a = p.parse_args()
    if os.path.exists(a.output):
        print(f"pool_score: output {a.output} already exists; refusing to write into it",
              file=sys.stderr)
        return 2
    batch_size = a.batch_size or (1024 if a.kind == "tabular" else 32)
    files = list_files(a.input, a.kind)
    if not files:
        print(f"pool_score: no {a.kind} files under {a.input}", file=sys.stderr)
        return 2
    n = a.mini_batch_files
    mini_batches = [files[i:i + n] for i in range(0, len(files), n)]
    os.makedirs(a.output)

    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(a.workers + 1)
    items = 0
    with ctx.Pool(a.workers, initializer=init,
                  initargs=(a.model, a.kind, batch_size, a.image_size, barrier)) as pool:
        try:
            barrier.wait(timeout=300)
        except threading.BrokenBarrierError:
            pool.terminate()
            print("pool_score: a worker could not open the model (see above)", file=sys.stderr)
            return 1
        startup = time.time() - T_START
        with pq.ParquetWriter(os.path.join(a.output, "predictions.parquet"), schema(a.kind),
                              compression="snappy") as writer:
            for df in pool.imap(run, mini_batches):
                writer.write_table(pa.Table.from_pandas(df, schema=schema(a.kind),
                                                        preserve_index=False))
                items += len(df)
    seconds = time.time() - T_START
    print(json.dumps({"items": items, "seconds": round(seconds, 4),
                      "startup_seconds": round(startup, 4), "workers": a.workers,
                      "batch_size": batch_size}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

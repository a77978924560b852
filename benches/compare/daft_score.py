"""Baseline (e) of the comparison benchmark: batch scoring with Daft, written the way Daft's
batch-inference documentation does it.

    daft_score.py --model M --input DIR --output OUTDIR --workers N --kind tabular|image
                  [--batch-size B] [--image-size 128] [--use-process auto|yes|no]

Daft's native (local) runner. The input is read with Daft's own readers:
`daft.read_parquet(DIR/*.parquet, file_path_column="path")` (tabular), or
`daft.from_glob_path(DIR/**)` then `col("path").download().decode_image(mode="RGB")
.resize(S, S)` (images). The model is a `@daft.cls(max_concurrency=N)` class whose `__init__`
opens one onnxruntime InferenceSession with intra_op_num_threads=1 and inter_op_num_threads=1
(batchscore's N workers x 1 thread), and whose `@daft.method.batch(batch_size=B)` method scores
a batch: B defaults to 1024 rows / 32 images, batchscore's defaults. Predictions come back as
Arrow arrays over one flat buffer (a Python list of numpy rows measures Python, not Daft: about
20x slower on 1M rows). Finally `write_parquet(OUTDIR)`.

Output columns mirror batchscore's: tabular `file` (path relative to DIR), `id`, `label`,
`probabilities` (list<float>); image `file`, `probabilities`. Daft does not know a row's
position in its file, so there is no `row` column.

Refuses an existing OUTDIR (exit 2). Prints one JSON line at the end: {"items": rows written,
"seconds": wall since the process started, "startup_seconds": process start until Daft was
imported, ...}.
"""

import time

from started import process_start

T_START = process_start()

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

# No usage reporting: the benchmark machine has no internet. Set before daft is imported.
os.environ.setdefault("DAFT_ANALYTICS_ENABLED", "0")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("DAFT_PROGRESS_BAR", "0")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def _session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _probabilities(proba):
    """[n, k] floats -> a fixed-size list array over the one flat buffer."""
    n, k = proba.shape
    return pa.FixedSizeListArray.from_arrays(pa.array(proba.reshape(-1)), k)


def score(a):
    import daft
    from daft import DataType, col

    startup = time.time() - T_START
    root = os.path.abspath(a.input)
    model = os.path.abspath(a.model)
    s = a.image_size
    prefix = root.rstrip("/") + "/"
    use_process = {"auto": None, "yes": True, "no": False}[a.use_process]
    proba_type = DataType.fixed_size_list(DataType.float32(), a.classes)

    @daft.cls(max_concurrency=a.workers, use_process=use_process)
    class TabularModel:
        def __init__(self, path):
            self.session = _session(path)
            self.input = self.session.get_inputs()[0].name

        @daft.method.batch(return_dtype=DataType.struct({"label": DataType.int64(), "probabilities": proba_type}),
                           batch_size=a.batch_size)
        def __call__(self, *features):
            x = np.column_stack([f.to_arrow().to_numpy(zero_copy_only=False) for f in features])
            label, proba = self.session.run(["label", "probabilities"], {self.input: x.astype(np.float32, copy=False)})
            return pa.StructArray.from_arrays([pa.array(label.astype(np.int64)), _probabilities(proba)],
                                              names=["label", "probabilities"])

    @daft.cls(max_concurrency=a.workers, use_process=use_process)
    class ImageModel:
        def __init__(self, path):
            self.session = _session(path)
            self.input = self.session.get_inputs()[0].name

        @daft.method.batch(return_dtype=proba_type, batch_size=a.batch_size)
        def __call__(self, images):
            x = np.stack(images.to_pylist()).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
            (proba,) = self.session.run(["probabilities"], {self.input: np.ascontiguousarray(x)})
            return _probabilities(proba)

    if a.kind == "tabular":
        df = daft.read_parquet(os.path.join(root, "*.parquet"), file_path_column="path")
        features = [c for c in df.column_names if c not in ("id", "path")]
        scored = TabularModel(model)(*[col(c) for c in features])
        df = df.select(col("path").replace(prefix, "").alias("file"), col("id"), scored.alias("p"))
        df = df.select(col("file"), col("id"), col("p").get("label").alias("label"),
                       col("p").get("probabilities").alias("probabilities"))
    else:
        df = daft.from_glob_path(os.path.join(root, "**"))
        df = df.where(col("path").endswith(".jpg") | col("path").endswith(".jpeg")
                      | col("path").endswith(".png"))
        df = df.with_column("image", col("path").download().decode_image(mode="RGB").resize(s, s))
        # from_glob_path gives file:// URLs.
        df = df.select(col("path").replace("file://", "").replace(prefix, "").alias("file"),
                       ImageModel(model)(col("image")).alias("probabilities"))
    df.write_parquet(os.path.abspath(a.output))
    return startup


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="model instances")
    p.add_argument("--kind", choices=["tabular", "image"], required=True)
    p.add_argument("--batch-size", type=int, help="rows or images per model call "
                   "[default: 1024 rows, 32 images]")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--classes", type=int, help="width of the model's probabilities [from the model]")
    p.add_argument("--use-process", choices=["auto", "yes", "no"], default="auto",
                   help="daft.cls(use_process=...): auto lets Daft choose")
    p.add_argument("--mini-batch-files", type=int, help="accepted for a common command line with "
                   "pool_score.py; Daft plans its own partitions")
    a = p.parse_args()
    if os.path.exists(a.output):
        print(f"daft_score: output {a.output} already exists; refusing to write into it", file=sys.stderr)
        return 2
    a.batch_size = a.batch_size or (1024 if a.kind == "tabular" else 32)
    if a.classes is None:
        out = {o.name: o for o in _session(os.path.abspath(a.model)).get_outputs()}["probabilities"]
        a.classes = out.shape[-1]
    startup = score(a)
    items = sum(pq.read_metadata(f).num_rows
                for f in glob.glob(os.path.join(a.output, "**", "*.parquet"), recursive=True))
    seconds = time.time() - T_START
    print(json.dumps({"items": items, "seconds": round(seconds, 4), "startup_seconds": round(startup, 4),
                      "workers": a.workers, "batch_size": a.batch_size, "use_process": a.use_process}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

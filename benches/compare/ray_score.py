"""Baseline (d) of the comparison benchmark: batch scoring with Ray Data, written the way Ray's
batch-inference guide does it.

    ray_score.py --model M --input DIR --output OUTDIR --workers N --kind tabular|image
                 [--batch-size B] [--image-size 128] [--cluster-cpus 2N] [--actor-cpus 1]
                 [--read-cpus 1] [--write-cpus 1] [--parquet-reader v1|v2] [--stats]

A local Ray cluster (`ray.init(num_cpus=...)`, no dashboard, usage stats off: the benchmark
machine has no internet). The input is read with Ray's own readers:
`ray.data.read_parquet(DIR, include_paths=True)` (tabular) or
`ray.data.read_images(DIR, size=(S, S), mode="RGB", include_paths=True)` (images: PIL decode and
bilinear resize inside the read tasks), then `map_batches(Predictor,
compute=ActorPoolStrategy(size=N), batch_size=B, num_cpus=..., batch_format="pyarrow"|"numpy")`:
N actors, each with one onnxruntime InferenceSession with intra_op_num_threads=1 and
inter_op_num_threads=1, as batchscore's N workers x 1 thread; B defaults to 1024 rows / 32
images, batchscore's defaults. Finally `write_parquet(OUTDIR, min_rows_per_file=...)` (Ray's
layout: files of at least 250,000 rows or 10,000 images, rather than one small file per block).

Ray's CPUs are logical scheduling slots, not cores, and the setting that works best here is
not the obvious one. With `ray.init(num_cpus=N)` and the actors at `num_cpus=1` (the usual
setting), the N actors hold every slot for the whole job and the read tasks never get one: the
job hangs. With the actors, read and write tasks at 0.5 slot each it runs, but Ray Data's
resource allocator throttles the pipeline on so few slots (1M W1 rows through the GBDT: 20-21 s
of execution against 14-17 s). So the cluster gets 2N logical CPUs (--cluster-cpus) and actors,
read and write tasks 1 each: still N actors with one 1-thread session each (the model gets the
same N threads as batchscore's), plus up to N read or write tasks beside them, which is what
batchscore runs too (a reader beside its N workers).

Parquet is read with Ray Data's V1 reader (`DataContext.use_datasource_v2 = False`; Ray 2.60
defaults to V2): V2 packs W1's 100 files into a few read tasks of very unequal size (blocks of
20k to 710k rows; 2 blocks for 20 files) and ignores `override_num_blocks`, so one actor does
most of the scoring while the other waits; V1 reads one task per file and splits its output
into even blocks (1M W1 rows through the GBDT: 14 s of execution against 20 s with V2).
--parquet-reader v2 restores the default.

Output columns mirror batchscore's where Ray has the information: tabular `file` (path relative
to DIR), `id`, `label`, `probabilities` (list<float>); image `file`, `probabilities`. Ray Data
does not know a row's position in its file, so there is no `row` column.

Refuses an existing OUTDIR (exit 2). Prints one JSON line at the end: {"items": rows written,
"seconds": wall since the process started, "startup_seconds": process start until ray.init
returned, ...}. Shuts Ray down before it exits.
"""

import time

from started import process_start

T_START = process_start()

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

# No usage reporting and no dashboard: the machine has no internet, and neither is part of
# scoring. Set before ray is imported.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_DOCKER_CPU_WARNING", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def _session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _relative(paths, root):
    """Arrow string array of absolute paths -> paths relative to root."""
    prefix = root.rstrip("/") + "/"
    return pc.utf8_slice_codeunits(paths, len(prefix))


def _probabilities(proba):
    n, k = proba.shape
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(proba.reshape(-1)))


class TabularPredictor:
    def __init__(self, model, root):
        self.session = _session(model)
        self.input = self.session.get_inputs()[0].name
        self.root = root

    def __call__(self, batch: pa.Table) -> pa.Table:
        features = [c for c in batch.column_names if c not in ("id", "path")]
        x = np.column_stack([batch.column(c).to_numpy() for c in features])
        x = x.astype(np.float32, copy=False)
        label, proba = self.session.run(["label", "probabilities"], {self.input: x})
        return pa.table({
            "file": _relative(batch.column("path"), self.root),
            "id": batch.column("id"),
            "label": pa.array(label),
            "probabilities": _probabilities(proba),
        })


class ImagePredictor:
    def __init__(self, model, root):
        self.session = _session(model)
        self.input = self.session.get_inputs()[0].name
        self.root = root

    def __call__(self, batch: dict) -> pa.Table:
        # batch["image"]: uint8 [B, S, S, 3], decoded and resized by read_images.
        x = batch["image"].astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
        (proba,) = self.session.run(["probabilities"], {self.input: np.ascontiguousarray(x)})
        return pa.table({
            "file": _relative(pa.array(batch["path"]), self.root),
            "probabilities": _probabilities(proba),
        })


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="CPUs of the Ray cluster "
                   "and number of predictor actors")
    p.add_argument("--kind", choices=["tabular", "image"], required=True)
    p.add_argument("--batch-size", type=int, help="rows or images per model call "
                   "[default: 1024 rows, 32 images]")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--cluster-cpus", type=float, help="num_cpus of ray.init [2 x --workers]")
    p.add_argument("--actor-cpus", type=float, default=1.0, help="num_cpus of each predictor actor")
    p.add_argument("--read-cpus", type=float, default=1.0, help="num_cpus of each read task")
    p.add_argument("--write-cpus", type=float, default=1.0, help="num_cpus of each write task")
    p.add_argument("--min-rows-per-file", type=int, help="write_parquet's min_rows_per_file "
                   "[default: 250,000 rows, 10,000 images]")
    p.add_argument("--parquet-reader", choices=["v1", "v2"], default="v1",
                   help="Ray Data's Parquet reader (DataContext.use_datasource_v2) [v1]")
    p.add_argument("--stats", action="store_true", help="print Ray Data's per-operator "
                   "statistics to stderr at the end")
    p.add_argument("--mini-batch-files", type=int, help="accepted for a common command line with "
                   "pool_score.py; Ray Data plans its own read tasks")
    a = p.parse_args()
    if os.path.exists(a.output):
        print(f"ray_score: output {a.output} already exists; refusing to write into it",
              file=sys.stderr)
        return 2
    batch_size = a.batch_size or (1024 if a.kind == "tabular" else 32)
    if a.min_rows_per_file is None:
        a.min_rows_per_file = 250_000 if a.kind == "tabular" else 10_000
    root = os.path.abspath(a.input)
    model = os.path.abspath(a.model)
    output = os.path.abspath(a.output)

    import ray

    ray.init(num_cpus=a.cluster_cpus or 2 * a.workers, include_dashboard=False, log_to_driver=True,
             logging_level="warning", configure_logging=True)
    try:
        startup = time.time() - T_START
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.use_datasource_v2 = a.parquet_reader == "v2"
        s = a.image_size
        if a.kind == "tabular":
            ds = ray.data.read_parquet(root, include_paths=True, num_cpus=a.read_cpus)
            ds = ds.map_batches(TabularPredictor, fn_constructor_args=(model, root),
                                compute=ray.data.ActorPoolStrategy(size=a.workers),
                                num_cpus=a.actor_cpus, batch_size=batch_size,
                                batch_format="pyarrow")
        else:
            ds = ray.data.read_images(root, size=(s, s), mode="RGB", include_paths=True,
                                      num_cpus=a.read_cpus)
            ds = ds.map_batches(ImagePredictor, fn_constructor_args=(model, root),
                                compute=ray.data.ActorPoolStrategy(size=a.workers),
                                num_cpus=a.actor_cpus, batch_size=batch_size,
                                batch_format="numpy")
        ds.write_parquet(output, min_rows_per_file=a.min_rows_per_file,
                         ray_remote_args={"num_cpus": a.write_cpus})
        if a.stats:
            print(ds.stats(), file=sys.stderr)
    finally:
        ray.shutdown()
    items = sum(pq.read_metadata(f).num_rows
                for f in glob.glob(os.path.join(output, "**", "*.parquet"), recursive=True))
    seconds = time.time() - T_START
    print(json.dumps({"items": items, "seconds": round(seconds, 4),
                      "startup_seconds": round(startup, 4), "workers": a.workers,
                      "cluster_cpus": a.cluster_cpus or 2 * a.workers,
                      "actor_cpus": a.actor_cpus, "read_cpus": a.read_cpus,
                      "write_cpus": a.write_cpus, "min_rows_per_file": a.min_rows_per_file,
                      "parquet_reader": a.parquet_reader,
                      "batch_size": batch_size}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

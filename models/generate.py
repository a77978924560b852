#!/usr/bin/env python3
"""Deterministic generator for batchscore's test models, sample data and reference predictions.

Run from the repository root:

    python3 -m venv .venv-models
    .venv-models/bin/pip install -r models/requirements.txt
    .venv-models/bin/python models/generate.py              # everything (about half a minute)
    .venv-models/bin/python models/generate.py --time-slow  # also time one full call of slow.onnx

It overwrites models/*.onnx (the names below), models/reference/ and the generator-owned folders
of sample-data/ (iris, wine, diabetes, digits, photos, broken). Every random choice is seeded and
BLAS / ONNX Runtime run single-threaded, so two runs give byte-identical files.
"""

import os

# Single-threaded BLAS before numpy/scipy load: training results must not depend on core count.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from PIL import Image, features  # noqa: E402
from skl2onnx import convert_sklearn  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_diabetes,
    load_digits,
    load_iris,
    load_sample_images,
    load_wine,
)
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
REFERENCE = MODELS / "reference"
DATA = ROOT / "sample-data"

IR_VERSION = 8  # ORT 1.31 refuses the IR 14 that onnx >= 1.23 helpers default to
OPSET = 17
SKL_OPSET = {"": OPSET, "ai.onnx.ml": 3}

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
DIABETES_COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]

# slow.onnx: a chain of SLOW_STEPS x (MatMul [K,K]x[K,K] -> Tanh). One MatMul at K=1536 takes
# about 0.05 s with 2 threads and 0.09 s with 1 thread on the 2-core development machine.
SLOW_K = 1536
SLOW_STEPS = 1500


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# ONNX helpers
# --------------------------------------------------------------------------------------------


def finalize(model, name, doc):
    """Normalise what skl2onnx/onnx.helper produced and return the serialised bytes."""
    model.graph.name = name  # skl2onnx names the graph with a random UUID
    # skl2onnx can list the same domain twice in opset_import; keep one entry (the highest).
    versions = {}
    for op in model.opset_import:
        versions[op.domain] = max(op.version, versions.get(op.domain, 0))
    del model.opset_import[:]
    for domain in sorted(versions):
        model.opset_import.append(helper.make_opsetid(domain, versions[domain]))
    model.ir_version = IR_VERSION
    model.doc_string = doc
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)


def rename_tensor(graph, old, new):
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name == old:
            vi.name = new


def set_shape(value_info, dims):
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        elif isinstance(d, str):
            dim.dim_param = d
        # None: leave the dimension unknown and unnamed


def find(items, name):
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)


def to_onnx(model, n_features, options=None, batch=None):
    kwargs = {}
    if options is not None:
        kwargs["options"] = {id(model): options}
    return convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([batch, n_features]))],
        target_opset=SKL_OPSET,
        **kwargs,
    )


def session(path_or_bytes, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    src = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def write_bytes(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def build_wine():
    X, y = load_wine(return_X_y=True)
    clf = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0, n_jobs=1)
    clf.fit(X, y)
    onx = to_onnx(clf, 13, {"zipmap": False})
    g = onx.graph
    names = [o.name for o in g.output]
    for old, new in zip(names, ["label", "probabilities"]):
        if old != new:
            rename_tensor(g, old, new)
    return finalize(
        onx, "wine_tensor",
        "batchscore fixture: RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0) "
        "on sklearn load_wine; input float32 [N,13]; outputs label int64 [N], "
        "probabilities float32 [N,3].",
    ), clf


def build_iris():
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000)
    clf.fit(X, y)
    onx = to_onnx(clf, 4)  # default options: ZipMap probabilities
    return finalize(
        onx, "iris_zipmap",
        "batchscore fixture: LogisticRegression(max_iter=1000) on sklearn load_iris, default "
        "skl2onnx options; input float32 [N,4]; outputs output_label int64 [N], "
        "output_probability seq(map(int64,float)).",
    ), clf


def build_diabetes():
    X, y = load_diabetes(return_X_y=True)
    reg = Ridge(alpha=1.0)
    reg.fit(X, y)
    onx = to_onnx(reg, 10)
    g = onx.graph
    rename_tensor(g, g.output[0].name, "prediction")
    # Replace the single [N,10] input by one [N,1] input per column, concatenated in front.
    rename_tensor(g, "input", "concat_features")
    del g.input[:]
    for col in DIABETES_COLUMNS:
        g.input.append(helper.make_tensor_value_info(col, TensorProto.FLOAT, [None, 1]))
    concat = helper.make_node("Concat", DIABETES_COLUMNS, ["concat_features"], axis=1, name="Concat")
    g.node.insert(0, concat)
    if not any(op.domain == "" for op in onx.opset_import):
        onx.opset_import.append(helper.make_opsetid("", OPSET))
    return finalize(
        onx, "diabetes_multi",
        "batchscore fixture: Ridge(alpha=1.0) on sklearn load_diabetes, one float32 [N,1] input "
        "per column (age, sex, bmi, bp, s1..s6) concatenated in the graph; output prediction "
        "float32 [N,1].",
    ), reg


def build_digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    doc = "MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=0) on sklearn " \
          "load_digits X/16.0"

    onx = to_onnx(clf, 64, {"zipmap": False})
    mlp = finalize(onx, "digits_mlp",
                   f"batchscore fixture: {doc}; input float32 [N,64]; outputs label int64 [N], "
                   "probabilities float32 [N,10].")

    b1 = to_onnx(clf, 64, {"zipmap": False}, batch=1)
    g = b1.graph
    set_shape(find(g.input, "input"), [1, 64])
    set_shape(find(g.output, "label"), [1])
    set_shape(find(g.output, "probabilities"), [1, 10])
    mlp_b1 = finalize(b1, "digits_mlp_b1",
                      f"batchscore fixture: {doc}; FIXED batch of 1: input float32 [1,64]; "
                      "outputs label int64 [1], probabilities float32 [1,10].")

    nchw = to_onnx(clf, 64, {"zipmap": False})
    g = nchw.graph
    rename_tensor(g, "input", "flat_image")
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8]))
    g.initializer.append(numpy_helper.from_array(np.array([-1, 64], dtype=np.int64), "flat_shape"))
    g.node.insert(0, helper.make_node("Reshape", ["image", "flat_shape"], ["flat_image"],
                                      name="ReshapeImage"))
    set_shape(find(g.output, "label"), ["N"])
    set_shape(find(g.output, "probabilities"), ["N", 10])
    digits_nchw = finalize(nchw, "digits_nchw",
                           f"batchscore fixture: {doc}, with a Reshape in front; input image "
                           "float32 [N,1,8,8] (pixels/255); outputs label int64 [N], "
                           "probabilities float32 [N,10].")
    return mlp, mlp_b1, digits_nchw, clf


def build_mean_color():
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"], name="Pool"),
        helper.make_node("Flatten", ["pooled"], ["mean_rgb"], axis=1, name="Flatten"),
    ]
    graph = helper.make_graph(
        nodes,
        "mean_color",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("mean_rgb", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="batchscore-generate")
    return finalize(model, "mean_color",
                    "batchscore fixture: per-channel mean of an NCHW RGB image; input image "
                    "float32 [N,3,H,W]; output mean_rgb float32 [N,3].")


def build_lookup():
    """y = table[int(x)] with table[i] = 10 i + 1: a model call that fails on a value out of range.

    ORT's Gather refuses an index outside [-10, 9] ("indices element out of data bounds"), so one
    bad row fails the whole call it is in, as a model does that breaks on some input.
    """
    table = numpy_helper.from_array(np.arange(10, dtype=np.float32) * 10 + 1, "table")
    nodes = [
        helper.make_node("Cast", ["x"], ["idx"], to=TensorProto.INT64, name="Index"),
        helper.make_node("Gather", ["table", "idx"], ["y"], axis=0, name="Lookup"),
    ]
    graph = helper.make_graph(
        nodes,
        "lookup",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[table],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="batchscore-generate")
    return finalize(model, "lookup",
                    "batchscore fixture: y = table[int(x)], table[i] = 10 i + 1 for i in 0..9; "
                    "input x float32 [N,1]; output y float32 [N,1]. A call with x outside "
                    "[-10, 10) fails (Gather index out of bounds).")


def build_slow(k=SLOW_K, steps=SLOW_STEPS):
    """A long chain of small-ish nodes whose every step depends on the input (no constant folding).

    W (the [k,k] weight) and M0 are computed inside the graph from Range with a cheap hash, so the
    file stays tiny; W alone is foldable (done once at load, milliseconds), the chain is not:
    M0 = Tanh(hash matrix + ReduceMean(input)), M_i = Tanh(MatMul(M_{i-1}, W)),
    y = ReduceSum(input, axis 1, keepdims) + ReduceMean(M_steps).
    """
    f32 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)  # noqa: E731
    inits = [
        f32("zero", 0.0),
        f32("count", float(k * k)),
        f32("one", 1.0),
        f32("big", 43758.5453),
        f32("half", 0.5),
        f32("w_gain", math.sqrt(12.0 * 2.0 / k)),  # uniform(-.5,.5) has variance 1/12: var(W)=2/k
        f32("m_gain", 2.0),
        f32("m_off", 1.7),
        numpy_helper.from_array(np.array([k, k], dtype=np.int64), "kk"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    n = []
    # hash(x) = frac(sin(x) * 43758.5453) in [0, 1)
    n.append(helper.make_node("Range", ["zero", "count", "one"], ["idx"]))

    def hashed(src, out):
        n.append(helper.make_node("Sin", [src], [out + "_s"]))
        n.append(helper.make_node("Mul", [out + "_s", "big"], [out + "_m"]))
        n.append(helper.make_node("Floor", [out + "_m"], [out + "_f"]))
        n.append(helper.make_node("Sub", [out + "_m", out + "_f"], [out]))

    hashed("idx", "hw")
    n.append(helper.make_node("Sub", ["hw", "half"], ["hw_c"]))
    n.append(helper.make_node("Mul", ["hw_c", "w_gain"], ["hw_g"]))
    n.append(helper.make_node("Reshape", ["hw_g", "kk"], ["W_const"]))
    # W must not be a load-time constant: ORT would prepack a private copy of it for every MatMul
    # (1500 x 9 MB, seconds of session creation). Adding 0 * (a value of the input) prevents that.
    n.append(helper.make_node("ReduceMean", ["input"], ["s"], keepdims=0))
    n.append(helper.make_node("Mul", ["s", "zero"], ["s0"]))
    n.append(helper.make_node("Add", ["W_const", "s0"], ["W"]))
    n.append(helper.make_node("Add", ["idx", "m_off"], ["idx2"]))
    hashed("idx2", "hm")
    n.append(helper.make_node("Sub", ["hm", "half"], ["hm_c"]))
    n.append(helper.make_node("Mul", ["hm_c", "m_gain"], ["hm_g"]))
    n.append(helper.make_node("Reshape", ["hm_g", "kk"], ["M"]))
    n.append(helper.make_node("Add", ["M", "s"], ["Ms"]))
    n.append(helper.make_node("Tanh", ["Ms"], ["t0"]))
    prev = "t0"
    for i in range(1, steps + 1):
        n.append(helper.make_node("MatMul", [prev, "W"], [f"m{i}"]))
        n.append(helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]))
        prev = f"t{i}"
    n.append(helper.make_node("ReduceMean", [prev], ["r"], keepdims=0))
    n.append(helper.make_node("ReduceSum", ["input", "axis1"], ["rs"], keepdims=1))
    n.append(helper.make_node("Add", ["rs", "r"], ["y"]))
    graph = helper.make_graph(
        n,
        "slow",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="batchscore-generate")
    return finalize(
        model, "slow",
        f"batchscore fixture for per-call timeouts: {steps} x (MatMul [{k},{k}] + Tanh), each node "
        "well under 0.5 s, a whole call over 60 s on 2 cores; input float32 [N,4]; output y "
        "float32 [N,1] = ReduceSum(input, axis 1) + a constant-ish scalar.",
    )


# --------------------------------------------------------------------------------------------
# Sample data
# --------------------------------------------------------------------------------------------


def fnum(x):
    """Shortest repr that round-trips the float64 value (5.1 stays 5.1)."""
    return repr(float(x))


def write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(r)


def iris_rows(start, stop):
    X = load_iris().data
    return [[i] + [fnum(v) for v in X[i]] for i in range(start, stop)]


def iris_parquet_bytes():
    X = load_iris().data
    cols = {"id": pa.array(np.arange(len(X), dtype=np.int64))}
    for j, c in enumerate(IRIS_COLUMNS):
        cols[c] = pa.array(X[:, j].astype(np.float64))
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf, row_group_size=50)
    return buf.getvalue()


def digit_png_bytes(index):
    img = load_digits().images[index]  # 0..16 floats
    px = np.array([[int(round(v * 255 / 16)) for v in row] for row in img], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px, mode="L").save(buf, format="PNG")
    return buf.getvalue()


# (source, crop box in the 640x427 original, output (width, height), file name)
PHOTO_VARIANTS = [
    ("china", None, (160, 107), "china-00.png"),
    ("china", (160, 60, 480, 380), (64, 64), "china-01.png"),
    ("china", (0, 0, 300, 200), (150, 100), "china-02.png"),
    ("china", (400, 150, 560, 390), (49, 73), "china-03.png"),
    ("flower", None, (128, 85), "flower-00.png"),
    ("flower", (170, 50, 470, 350), (100, 100), "flower-01.png"),
    ("flower", (0, 200, 256, 427), (128, 113), "flower-02.png"),
    ("flower", (300, 0, 640, 170), (160, 80), "flower-03.png"),
    ("china", (100, 100, 400, 300), (120, 80), "china-04.jpg"),
    ("flower", (200, 100, 380, 280), (90, 90), "flower-04.jpg"),
    ("china", (250, 50, 450, 250), (56, 56), "china-05.bmp"),
    ("flower", (100, 50, 500, 350), (80, 60), "flower-05.gif"),
    ("china", (0, 100, 480, 420), (96, 64), "china-06.webp"),
]


def write_photos(folder):
    data = load_sample_images()
    sources = {}
    for fn, arr in zip(data.filenames, data.images):
        sources[Path(fn).stem] = Image.fromarray(arr).convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    webp = features.check("webp")
    for src, box, size, name in PHOTO_VARIANTS:
        img = sources[src]
        if box is not None:
            img = img.crop(box)
        img = img.resize(size, Image.Resampling.LANCZOS)
        path = folder / name
        ext = path.suffix
        if ext == ".png":
            img.save(path, format="PNG")
        elif ext == ".jpg":
            img.save(path, format="JPEG", quality=90)
        elif ext == ".bmp":
            img.save(path, format="BMP")
        elif ext == ".gif":
            img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                path, format="GIF")
        elif ext == ".webp":
            if not webp:
                log("  Pillow has no WebP support here: skipping " + name)
                continue
            img.save(path, format="WEBP", quality=85, method=4)
        else:
            raise ValueError(name)


def write_sample_data():
    for sub in ("iris", "wine", "diabetes", "digits", "photos", "broken"):
        shutil.rmtree(DATA / sub, ignore_errors=True)

    # iris: 3 x 50 rows in dataset order
    header = ["id"] + IRIS_COLUMNS
    for p in range(3):
        write_csv(DATA / "iris" / f"part-{p}.csv", header, iris_rows(50 * p, 50 * (p + 1)))

    # wine: 2 parquet files, row groups of 25
    wine = load_wine()
    X = wine.data
    half = (len(X) + 1) // 2
    for p, (a, b) in enumerate([(0, half), (half, len(X))]):
        cols = {"id": pa.array(np.arange(a, b, dtype=np.int64))}
        for j, c in enumerate(wine.feature_names):
            cols[c] = pa.array(X[a:b, j].astype(np.float64))
        path = DATA / "wine" / f"part-{p}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), path, row_group_size=25)

    # diabetes: one CSV, sklearn's scaled values at full precision
    dX = load_diabetes().data
    write_csv(DATA / "diabetes" / "diabetes.csv", ["id"] + DIABETES_COLUMNS,
              [[i] + [fnum(v) for v in dX[i]] for i in range(len(dX))])

    # digits: first 300 as 8-bit grayscale PNG
    for i in range(300):
        write_bytes(DATA / "digits" / f"digit-{i:04d}.png", digit_png_bytes(i))

    write_photos(DATA / "photos")

    # broken tabular inputs
    bt = DATA / "broken" / "tabular"
    write_csv(bt / "good.csv", header, iris_rows(0, 10))
    bad = iris_rows(50, 60)
    bad[3][2] = "abc"  # sepal_width
    bad[6][3] = ""  # petal_length
    write_csv(bt / "bad_value.csv", header, bad)
    ragged = iris_rows(100, 110)
    ragged[4] = ragged[4] + ["9.9"]
    write_csv(bt / "ragged.csv", header, ragged)
    write_bytes(bt / "empty.csv", b"")
    write_bytes(bt / "header_only.csv", (",".join(header) + "\n").encode())
    pbytes = iris_parquet_bytes()
    write_bytes(bt / "truncated.parquet", pbytes[: len(pbytes) // 2])
    write_bytes(bt / "not_parquet.parquet",
                b"this is not a parquet file, just text pretending to be one\n")

    # broken image inputs
    bi = DATA / "broken" / "images"
    write_bytes(bi / "good-0.png", digit_png_bytes(0))
    write_bytes(bi / "good-1.png", digit_png_bytes(1))
    png = digit_png_bytes(2)
    write_bytes(bi / "truncated.png", png[: int(len(png) * 0.4)])
    write_bytes(bi / "text.png", b"this is a text file with a .png name\n")
    write_bytes(bi / "empty.png", b"")


# --------------------------------------------------------------------------------------------
# Reference predictions
# --------------------------------------------------------------------------------------------


def jvalue(arr_row):
    """One row of an output: a number for [N] / [N,1], a list for [N,K]."""
    a = np.asarray(arr_row)
    if a.ndim == 0 or (a.ndim == 1 and a.size == 1):
        return a.reshape(()).item()
    if a.ndim == 1:
        return [x.item() for x in a]
    raise ValueError(f"unexpected output row shape {a.shape}")


def rows_from_outputs(names, results):
    """Turn the outputs of one run into one {name: value} dict per row."""
    n = len(results[0])
    out = [dict() for _ in range(n)]
    for name, res in zip(names, results):
        if isinstance(res, list):  # ZipMap: a list of dicts
            for i, m in enumerate(res):
                out[i][name] = {str(k): float(np.float32(v)) for k, v in m.items()}
        else:
            for i in range(n):
                out[i][name] = jvalue(res[i])
    return out


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, allow_nan=False) + "\n")


def read_csv_features(path, columns):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = [[float(r[c]) for c in columns] for r in reader]  # float64
    return np.array(rows, dtype=np.float64).astype(np.float32)


def read_image(path, mode):
    with Image.open(path) as img:
        arr = np.asarray(img.convert(mode), dtype=np.uint8)
    return arr.astype(np.float32) / np.float32(255.0)


def write_references():
    shutil.rmtree(REFERENCE, ignore_errors=True)
    REFERENCE.mkdir(parents=True)

    def tabular(model, dataset, files, load):
        s = session(MODELS / f"{model}.onnx")
        names = [o.name for o in s.get_outputs()]
        records = []
        for path in files:
            feeds = load(path, s)
            for i, outputs in enumerate(rows_from_outputs(names, s.run(names, feeds))):
                records.append({"file": path.name, "row": i, "outputs": outputs})
        write_jsonl(REFERENCE / f"{model}__{dataset}.jsonl", records)
        return records

    iris_files = sorted((DATA / "iris").glob("*.csv"))
    tabular("iris_zipmap", "iris", iris_files,
            lambda p, s: {"input": read_csv_features(p, IRIS_COLUMNS)})

    wine_files = sorted((DATA / "wine").glob("*.parquet"))

    def load_wine_file(p, s):
        t = pq.read_table(p)
        cols = [c for c in t.column_names if c != "id"]
        X = np.column_stack([t.column(c).to_numpy().astype(np.float64) for c in cols])
        return {"input": X.astype(np.float32)}

    tabular("wine_tensor", "wine", wine_files, load_wine_file)

    def load_diabetes_file(p, s):
        X = read_csv_features(p, DIABETES_COLUMNS)
        return {c: X[:, j:j + 1].copy() for j, c in enumerate(DIABETES_COLUMNS)}

    tabular("diabetes_multi", "diabetes", [DATA / "diabetes" / "diabetes.csv"], load_diabetes_file)

    digit_files = sorted((DATA / "digits").glob("*.png"))
    digits = np.stack([read_image(p, "L").reshape(64) for p in digit_files])  # [300, 64]

    def image_refs(model, dataset, files, feeds_per_file):
        s = session(MODELS / f"{model}.onnx")
        names = [o.name for o in s.get_outputs()]
        records = []
        for p in files:
            (outputs,) = rows_from_outputs(names, s.run(names, feeds_per_file(p)))
            records.append({"file": p.name, "row": None, "outputs": outputs})
        write_jsonl(REFERENCE / f"{model}__{dataset}.jsonl", records)
        return records

    # Each image is scored alone (as a batch of one); a whole-batch run gives the same values
    # (checked below).
    index = {p: i for i, p in enumerate(digit_files)}
    mlp = image_refs("digits_mlp", "digits", digit_files,
                     lambda p: {"input": digits[index[p]].reshape(1, 64)})
    image_refs("digits_mlp_b1", "digits", digit_files,
               lambda p: {"input": digits[index[p]].reshape(1, 64)})
    image_refs("digits_nchw", "digits", digit_files,
               lambda p: {"image": digits[index[p]].reshape(1, 1, 8, 8)})

    # batch-vs-single consistency for the dynamic-batch digits model
    s = session(MODELS / "digits_mlp.onnx")
    batch = rows_from_outputs(["label", "probabilities"], s.run(None, {"input": digits}))
    diff = max(abs(a - b) for r, m in zip(batch, mlp)
               for a, b in zip(r["probabilities"], m["outputs"]["probabilities"]))
    log(f"  digits_mlp: whole-batch vs one-at-a-time max |diff| = {diff:.3g}")

    photo_files = sorted((DATA / "photos").glob("*.png"))
    image_refs("mean_color", "photos", photo_files,
               lambda p: {"image": np.ascontiguousarray(
                   read_image(p, "RGB").transpose(2, 0, 1)[np.newaxis])})


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def describe(path):
    s = session(path)
    ins = [(i.name, i.type, i.shape) for i in s.get_inputs()]
    outs = [(o.name, o.type, o.shape) for o in s.get_outputs()]
    return ins, outs


def check_models(fitted):
    wine_clf, iris_clf, diab_reg, digits_clf = fitted
    for name in MODEL_NAMES:
        path = MODELS / f"{name}.onnx"
        ins, outs = describe(path)
        log(f"  {name}.onnx ({path.stat().st_size} bytes)")
        for kind, items in (("in ", ins), ("out", outs)):
            for n, t, shape in items:
                log(f"      {kind} {n}: {t} {shape}")

    # Agreement with scikit-learn on the training data.
    X, _ = load_wine(return_X_y=True)
    lab, prob = session(MODELS / "wine_tensor.onnx").run(None, {"input": X.astype(np.float32)})
    assert prob.shape == (178, 3) and lab.dtype == np.int64
    agree = float(np.mean(lab == wine_clf.predict(X)))
    log(f"  wine_tensor agrees with sklearn on {agree:.1%} of rows")
    assert agree > 0.97

    X, _ = load_iris(return_X_y=True)
    lab, prob = session(MODELS / "iris_zipmap.onnx").run(None, {"input": X.astype(np.float32)})
    assert isinstance(prob, list) and isinstance(prob[0], dict)
    assert np.array_equal(lab, iris_clf.predict(X))

    X, _ = load_diabetes(return_X_y=True)
    feeds = {c: X[:, j:j + 1].astype(np.float32) for j, c in enumerate(DIABETES_COLUMNS)}
    (pred,) = session(MODELS / "diabetes_multi.onnx").run(None, feeds)
    assert pred.shape == (442, 1)
    err = float(np.max(np.abs(pred[:, 0] - diab_reg.predict(X))))
    log(f"  diabetes_multi max |onnx - sklearn| = {err:.3g}")
    assert err < 1e-2

    X, _ = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    lab, prob = session(MODELS / "digits_mlp.onnx").run(None, {"input": X})
    assert np.mean(lab == digits_clf.predict(X)) > 0.99
    lab2, prob2 = session(MODELS / "digits_nchw.onnx").run(None, {"image": X.reshape(-1, 1, 8, 8)})
    assert np.array_equal(lab, lab2) and np.allclose(prob, prob2, atol=1e-6)
    b1 = session(MODELS / "digits_mlp_b1.onnx")
    lab3, prob3 = b1.run(None, {"input": X[:1]})
    assert lab3.shape == (1,) and prob3.shape == (1, 10) and lab3[0] == lab[0]
    try:
        b1.run(None, {"input": X[:2]})
    except Exception as e:  # noqa: BLE001
        log(f"  digits_mlp_b1 refuses a batch of 2: {str(e).splitlines()[0][:160]}")
    else:
        raise AssertionError("digits_mlp_b1 accepted a batch of 2")

    img = np.random.default_rng(0).random((2, 3, 5, 7), dtype=np.float32)
    (m,) = session(MODELS / "mean_color.onnx").run(None, {"image": img})
    assert m.shape == (2, 3) and np.allclose(m, img.mean(axis=(2, 3)), atol=1e-6)


def check_slow(full_timing=False):
    path = MODELS / "slow.onnx"
    size = path.stat().st_size
    assert size < 100_000, size
    x = np.arange(8, dtype=np.float32).reshape(2, 4)

    # Two short chains with the same shapes give the time of one MatMul+Tanh step.
    def timed(steps):
        short = session(build_slow(steps=steps), threads=0)
        short.run(None, {"input": x})
        t0 = time.perf_counter()
        for _ in range(3):
            short.run(None, {"input": x})
        return (time.perf_counter() - t0) / 3

    t5, t25 = timed(5), timed(25)
    per_pair = (t25 - t5) / 20
    log(f"  one MatMul+Tanh step: {per_pair * 1000:.1f} ms (default threads) -> full call "
        f"estimated {per_pair * SLOW_STEPS:.0f} s")

    t0 = time.perf_counter()
    s = session(path, threads=0)  # ORT default: one intra-op thread per core
    created = time.perf_counter() - t0
    log(f"  slow.onnx: {size} bytes, {SLOW_STEPS} x MatMul[{SLOW_K}]+Tanh, "
        f"session creation {created:.2f} s")
    assert created < 2.0, created

    # RunOptions.terminate from another thread stops the run between nodes.
    ro = ort.RunOptions()
    timer = threading.Timer(1.0, lambda: setattr(ro, "terminate", True))
    t0 = time.perf_counter()
    timer.start()
    try:
        s.run(None, {"input": x}, ro)
        raise AssertionError("slow.onnx finished within the terminate test")
    except ort.capi.onnxruntime_pybind11_state.Fail as e:  # RunOptions terminate
        took = time.perf_counter() - t0
        log(f"  terminate after 1.0 s: run returned after {took:.2f} s "
            f"({str(e).splitlines()[0][:100]})")
        assert took < 2.0, took
    finally:
        timer.cancel()

    if full_timing:
        t0 = time.perf_counter()
        (y,) = s.run(None, {"input": x})
        took = time.perf_counter() - t0
        log(f"  one full call of slow.onnx: {took:.1f} s, y = {y.ravel().tolist()}")


MODEL_NAMES = ["wine_tensor", "iris_zipmap", "diabetes_multi", "digits_mlp", "digits_mlp_b1",
               "digits_nchw", "mean_color", "lookup", "slow"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-slow", action="store_true",
                    help="also time one full call of slow.onnx (over a minute)")
    args = ap.parse_args()
    np.random.seed(0)

    log(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}")
    log("building models")
    wine, wine_clf = build_wine()
    iris, iris_clf = build_iris()
    diabetes, diab_reg = build_diabetes()
    mlp, mlp_b1, nchw, digits_clf = build_digits()
    built = {
        "wine_tensor": wine,
        "iris_zipmap": iris,
        "diabetes_multi": diabetes,
        "digits_mlp": mlp,
        "digits_mlp_b1": mlp_b1,
        "digits_nchw": nchw,
        "mean_color": build_mean_color(),
        "lookup": build_lookup(),
        "slow": build_slow(),
    }
    for name in MODEL_NAMES:
        write_bytes(MODELS / f"{name}.onnx", built[name])

    log("checking models")
    check_models((wine_clf, iris_clf, diab_reg, digits_clf))
    check_slow(full_timing=args.time_slow)

    log("writing sample-data")
    write_sample_data()
    log("writing reference predictions")
    write_references()
    for p in sorted(REFERENCE.glob("*.jsonl")):
        log(f"  {p.relative_to(ROOT)}: {sum(1 for _ in open(p))} lines")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())

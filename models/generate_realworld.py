#!/usr/bin/env python3
"""Deterministic generator of "real-world" inputs: files as users' tools write them.

Run from the repository root (Python 3.11, Java 17 on PATH for the Spark case):

    python3 -m venv .venv-realworld
    .venv-realworld/bin/pip install -r models/requirements-realworld.txt
    .venv-realworld/bin/python models/generate_realworld.py             # about 30 s on 2 cores
    .venv-realworld/bin/python models/generate_realworld.py --no-spark  # keep the Spark folder

It overwrites sample-data/realworld/, models/reference/realworld/ and the model files listed in
NEW_MODELS (models/identity_rgb.onnx, ..., models/external/). It reads models/iris_zipmap.onnx and
sample-data/iris/part-0.csv (made by models/generate.py) and never writes them.

Every random choice is seeded, no writer is given the current time, compression is set
explicitly, and ONNX Runtime / BLAS / LightGBM / DuckDB / Spark run single-threaded, so two runs
give byte-identical files (check: sha256sum before and after a second run).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import bz2  # noqa: E402
import contextlib  # noqa: E402
import csv  # noqa: E402
import datetime as dt  # noqa: E402
import decimal  # noqa: E402
import gzip  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import duckdb  # noqa: E402
import lightgbm  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxmltools  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import zstandard  # noqa: E402
from onnx import TensorProto, external_data_helper, helper, numpy_helper  # noqa: E402
from onnxmltools.convert.common.data_types import FloatTensorType  # noqa: E402
from PIL import Image, ImageDraw, ImageFile, ImageFont, ImageOps  # noqa: E402
from sklearn.datasets import load_iris, load_sample_image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
REF = MODELS / "reference" / "realworld"
RW = ROOT / "sample-data" / "realworld"
TAB = RW / "tabular"
IMG = RW / "images"

IR_VERSION = 8
OPSET = 17
# onnxmltools 1.16 refuses target_opset > 15 ("higher than ... the converter support (15)").
LGBM_OPSET = 15
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

# Model files this script owns (relative to models/).
NEW_MODELS = [
    "identity_rgb.onnx", "identity_gray.onnx", "lgbm_iris.onnx", "ppocr_cls.onnx",
    "nested3.onnx", "dynamic_map.onnx", "hostile_batch1e9.onnx", "hostile_image_huge.onnx",
    "hostile_scalar_out.onnx", "hostile_shape_lie.onnx", "external",
]

IRIS = load_iris().data  # float64 [150, 4]
BERLIN = "Europe/Berlin"

# UTC instants around the two 2024 DST changes in Europe/Berlin (31 Mar 02:00 CET -> 03:00 CEST,
# 27 Oct 03:00 CEST -> 02:00 CET: 02:30 local happens twice) plus ordinary days.
UTC_INSTANTS = [
    "2024-01-15T08:00:00", "2024-03-31T00:30:00", "2024-03-31T00:59:59", "2024-03-31T01:00:00",
    "2024-03-31T01:30:00", "2024-06-01T12:00:00", "2024-10-27T00:30:00", "2024-10-27T00:59:59",
    "2024-10-27T01:00:00", "2024-10-27T01:30:00", "2024-12-31T23:59:59", "2025-07-04T10:15:30",
]


def log(msg):
    print(msg, flush=True)


def utc(i, frac_us=0):
    s = UTC_INSTANTS[i % len(UTC_INSTANTS)]
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc) + dt.timedelta(
        microseconds=frac_us)


def iris_rows(idx):
    return IRIS[np.asarray(idx)].copy()


@contextlib.contextmanager
def cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def session(src, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(src) if isinstance(src, Path) else src, so,
                                providers=["CPUExecutionProvider"])


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, allow_nan=False, ensure_ascii=False) + "\n")


def f32(v):
    """Shortest repr of the float32 value widened to float64 (as in models/reference/)."""
    return float(np.float32(v))


def jnested(a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return [jnested(x) for x in a] if a.ndim else f32(a)
    return a.tolist()


def jvalue(arr_row):
    a = np.asarray(arr_row)
    if a.ndim == 0 or (a.ndim == 1 and a.size == 1):
        v = a.reshape(()).item()
        return f32(v) if isinstance(v, float) else v
    if a.ndim == 1:
        return [f32(x) if isinstance(x, float) else x for x in a.tolist()]
    return jnested(a)


def rows_from_outputs(names, results):
    n = len(results[0])
    out = [dict() for _ in range(n)]
    for name, res in zip(names, results):
        if isinstance(res, list):  # ZipMap: list of dicts
            for i, m in enumerate(res):
                out[i][name] = {str(k): f32(v) for k, v in m.items()}
        else:
            for i in range(n):
                out[i][name] = jvalue(res[i])
    return out


def finalize(model, name, doc, full_check=True):
    model.graph.name = name
    versions = {}
    for op in model.opset_import:
        versions[op.domain] = max(op.version, versions.get(op.domain, 0))
    del model.opset_import[:]
    for domain in sorted(versions):
        model.opset_import.append(helper.make_opsetid(domain, versions[domain]))
    model.ir_version = IR_VERSION
    model.producer_name = "batchscore-generate-realworld"
    model.doc_string = doc
    onnx.checker.check_model(model, full_check=full_check)
    return model


def save_model(model, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString(deterministic=True))


def make_model(nodes, name, inputs, outputs, doc, initializers=(), full_check=True):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    return finalize(model, name, doc, full_check=full_check)


def vi(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


# --------------------------------------------------------------------------------------------
# A. Tabular files
# --------------------------------------------------------------------------------------------


def frame_features(idx):
    x = iris_rows(idx)
    return {c: x[:, j] for j, c in enumerate(FEATURES)}


def write_pandas_csv(folder):
    idx = list(range(0, 150, 13))  # 12 rows
    n = len(idx)
    d = frame_features(idx)
    d["sepal_width"] = d["sepal_width"].copy()
    d["petal_length"][3] = np.nan  # written as an empty field
    d["sepal_width"][7] = np.inf  # written as inf
    df = pd.DataFrame(d)
    df["code"] = pd.Series([f"{v:05d}" for v in [37, 1, 0, 420, 99999, 7, 10, 5, 12345, 3, 80,
                                                  9]], dtype=object)
    df["big"] = pd.Series(["12345678901234567890", "9223372036854775808", "-9223372036854775809",
                           "18446744073709551616", "123456789012345678901234567890", "0",
                           "9223372036854775807", "-1", "99999999999999999999", "42",
                           "18446744073709551615", "1"], dtype=object)
    df["price"] = pd.Series(["0.50", "12.10", "3.00", "0.05", "1000.00", "7.70", "0.10", "2.50",
                             "19.99", "0.00", "5.40", "100.01"], dtype=object)
    df["when"] = pd.Series([utc(i) for i in range(n)]).dt.tz_convert(BERLIN)
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "plain.csv", lineterminator="\n")
    df.to_csv(folder / "gzip.csv.gz", lineterminator="\n",
              compression={"method": "gzip", "compresslevel": 9, "mtime": 0})
    df.to_csv(folder / "bzip2.csv.bz2", lineterminator="\n",
              compression={"method": "bz2", "compresslevel": 9})
    df.to_csv(folder / "zstd.csv.zst", lineterminator="\n",
              compression={"method": "zstd", "level": 3})
    return {"nan": (3, "petal_length"), "inf": (7, "sepal_width"), "rows": idx}


def write_pandas_european(folder):
    idx = list(range(5, 150, 15))  # 10 rows
    df = pd.DataFrame(frame_features(idx))
    df["name"] = ["Müller, Hans", "Dupont; Jean", "Øster", "Łukasz", "José \"Pepe\"",
                  "Straße 1", "Zoë", "Ärger", "François", "Größe"]
    df["amount"] = [1234.5, 0.25, -3.0, 1e6, 12.1, 0.5, 99.99, 7.0, 100.01, 2.5]
    df["datum"] = ["31.12.2024", "01.03.2024", "29.02.2024", "15.07.2024", "02.01.2025",
                   "30.06.2024", "11.11.2024", "24.12.2024", "14.07.2024", "03.10.2024"]
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "european.csv", sep=";", decimal=",", index=False, lineterminator="\n")
    return {"rows": idx}


def write_pandas_parquet(folder):
    idx = [120, 3, 77, 51, 140, 9, 66, 101, 33, 88, 14, 129, 45, 60]  # 14 rows, shuffled
    d = frame_features(idx)
    d["sepal_length"][5] = np.nan
    species = np.array(load_iris().target_names)[load_iris().target[idx]]
    df = pd.DataFrame(d, index=pd.Index([f"s-{i:03d}" for i in idx]))
    df["species_name"] = pd.Categorical(species, categories=["setosa", "versicolor", "virginica"])
    df["count"] = pd.array([3, 1, None, 7, 0, 2, 5, 8, 1, 1, 4, 9, 6, 2], dtype="Int64")
    df["when"] = (pd.Series([utc(i) for i in range(len(idx))], index=df.index)
                  .dt.tz_convert(BERLIN).astype(f"datetime64[ns, {BERLIN}]"))
    folder.mkdir(parents=True, exist_ok=True)
    df.to_parquet(folder / "pandas.parquet", engine="pyarrow", compression="snappy")
    return {"nan": (5, "sepal_length"), "rows": idx}


def write_polars(folder):
    idx = list(range(2, 150, 10))  # 15 rows
    x = iris_rows(idx)
    df = pl.DataFrame({
        **{c: x[:, j] for j, c in enumerate(FEATURES)},
        "id": pl.Series("id", [1000 + i for i in idx], dtype=pl.Int64),
        "label": [f"row {i}: é, \"q\"" if i % 3 == 0 else f"row {i}" for i in idx],
        "when": pl.Series("when", [utc(i, frac_us=123456 * (i % 2)) for i in range(len(idx))],
                          dtype=pl.Datetime("us", "UTC")).dt.convert_time_zone(BERLIN),
    })
    assert df.schema["when"] == pl.Datetime("us", BERLIN), df.schema
    folder.mkdir(parents=True, exist_ok=True)
    df.write_parquet(folder / "polars.parquet", compression="zstd", compression_level=3,
                     statistics=True)
    df.write_csv(folder / "polars.csv")
    df.write_ndjson(folder / "polars.ndjson")
    df.write_ndjson(folder / "polars.jsonl")
    return {"rows": idx}


def write_duckdb(folder):
    idx = list(range(7, 150, 12))  # 12 rows
    x = iris_rows(idx)
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    con.execute("SET threads = 1")
    con.execute("SET TimeZone = 'Europe/Berlin'")
    con.execute("CREATE TABLE t (sepal_length DOUBLE, sepal_width DOUBLE, petal_length DOUBLE, "
                "petal_width DOUBLE, amount DECIMAL(10,2), ts TIMESTAMPTZ, name VARCHAR)")
    local = ["2024-01-15 09:00:00", "2024-03-31 01:30:00", "2024-03-31 03:00:00",
             "2024-03-31 03:30:00", "2024-06-01 14:00:00", "2024-10-27 01:59:59",
             "2024-10-27 02:30:00", "2024-10-27 03:00:00", "2024-12-31 23:59:59.5",
             "2025-07-04 12:15:30", "2024-02-29 00:00:00", "1999-12-31 23:59:59"]
    amounts = ["0.50", "12.10", "-3.00", "99999999.99", "0.01", "7.70", "100.00", "2.50",
               "19.99", "0.00", "-0.05", "1234.56"]
    names = ["alpha", "Ünïcödé", "", "with,comma", "with \"quote\"", "x" * 40, "NULL", "null",
             "line", "tab\tsep", "end", "ω"]
    for r, (row, t, a, nm) in enumerate(zip(x, local, amounts, names)):
        con.execute("INSERT INTO t VALUES (?, ?, ?, ?, CAST(? AS DECIMAL(10,2)), "
                    "CAST(? AS TIMESTAMPTZ), ?)",
                    [float(row[0]), float(row[1]), float(row[2]), float(row[3]), a, t,
                     None if r == 8 else nm])
    pq_path = str(folder / "duckdb.parquet").replace("'", "''")
    csv_path = str(folder / "duckdb.csv").replace("'", "''")
    con.execute(f"COPY t TO '{pq_path}' (FORMAT PARQUET, COMPRESSION 'snappy')")
    con.execute(f"COPY t TO '{csv_path}' (HEADER)")
    con.close()
    return {"rows": idx}


def write_pyarrow(folder):
    idx = list(range(1, 150, 7))[:20]  # 20 rows
    x = iris_rows(idx)
    n = len(idx)
    cols = {c: pa.array(x[:, j], pa.float64()) for j, c in enumerate(FEATURES)}
    cols["amount"] = pa.array([decimal.Decimal(f"{(i * 137) % 10000 - 2500}.{i * 7 % 100:02d}")
                               for i in range(n)], pa.decimal128(10, 2))
    tags = ["red", "green", "blue", "red", "red", "blue", None, "green", "blue", "red"] * 2
    cols["tag"] = pa.array(tags, pa.string()).dictionary_encode()
    assert cols["tag"].type == pa.dictionary(pa.int32(), pa.string())
    cols["ts_berlin"] = pa.array([utc(i, frac_us=1000 * i) for i in range(n)],
                                 pa.timestamp("ms", tz=BERLIN))
    cols["ts_offset"] = pa.array([utc(i, frac_us=i) for i in range(n)],
                                 pa.timestamp("us", tz="+05:30"))
    base = 1711848600 * 10**9
    cols["ts_naive"] = pa.array([base + i * 86_400_123_456_789 for i in range(n)],
                                pa.timestamp("ns"))
    cols["flag"] = pa.array([i % 3 == 0 if i != 4 else None for i in range(n)], pa.bool_())
    cols["id"] = pa.array([2**63 + i * 1_000_000_007 if i % 2 == 0 else i for i in range(n)],
                          pa.uint64())
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), folder / "types.parquet", row_group_size=6,
                   compression="snappy")

    # nonfinite.parquet: iris rows with NaN / +inf / -inf / null features.
    nidx = list(range(4, 150, 12))  # 13 rows
    nx = iris_rows(nidx)
    bad = {2: ("sepal_length", np.nan), 4: ("petal_width", np.inf),
           6: ("sepal_width", -np.inf), 9: ("petal_length", np.nan),
           11: ("sepal_length", np.inf)}
    for r, (c, v) in bad.items():
        nx[r, FEATURES.index(c)] = v
    nx[9, FEATURES.index("petal_width")] = np.inf  # row 9: NaN and +inf
    ncols = {}
    for j, c in enumerate(FEATURES):
        vals = [float(v) for v in nx[:, j]]
        if c == "petal_length":
            vals[10] = None  # a Parquet null
        ncols[c] = pa.array(vals, pa.float64())
    ncols["id"] = pa.array(nidx, pa.int64())
    pq.write_table(pa.table(ncols), folder / "nonfinite.parquet", compression="snappy")
    return {"rows": idx, "nonfinite_rows": nidx}


def write_mixed(folder):
    folder.mkdir(parents=True, exist_ok=True)
    specs = [("a.parquet", pa.int32(), pa.timestamp("ns", tz="UTC"), list(range(40, 50))),
             ("b.parquet", pa.int64(), pa.timestamp("us", tz="UTC"), list(range(90, 100))),
             ("c.parquet", pa.string(), pa.timestamp("us", tz="UTC"), list(range(140, 150)))]
    for name, id_type, ts_type, idx in specs:
        x = iris_rows(idx)
        cols = {c: pa.array(x[:, j], pa.float64()) for j, c in enumerate(FEATURES)}
        ids = [f"{i:04d}" for i in idx] if id_type == pa.string() else idx
        cols["id"] = pa.array(ids, id_type)
        cols["ts"] = pa.array([utc(i, frac_us=7 * i) for i in range(len(idx))], ts_type)
        pq.write_table(pa.table(cols), folder / name, compression="snappy")


def write_empty(folder):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({c: pd.Series([], dtype="float64") for c in FEATURES}).to_csv(
        folder / "empty.csv", index=False, lineterminator="\n")
    schema = pa.schema([(c, pa.float64()) for c in FEATURES])
    pq.write_table(schema.empty_table(), folder / "empty.parquet", compression="snappy")


# parquet-mr collects each column chunk's encodings in a java.util.HashSet<Encoding>: its order
# (written to the footer) follows the enums' identity hash codes, which differ per JVM start.
# hashCode=2 makes every identity hash 1 (HotSpot option), so the set keeps insertion order.
JVM_HASH_FLAGS = "-XX:+UnlockExperimentalVMOptions -XX:hashCode=2"

SPARK_JOB_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "batchscore/realworld/spark"))

JAVA_COMMIT_PROTOCOL = """
package batchscore;

/** Spark's default commit protocol with a fixed job id, so the part file's name is stable. */
public class FixedJobIdCommitProtocol
        extends org.apache.spark.sql.execution.datasources.SQLHadoopMapReduceCommitProtocol {
    public FixedJobIdCommitProtocol(String jobId, String path, boolean dynamicPartitionOverwrite) {
        super("%s", path, dynamicPartitionOverwrite);
    }
}
""" % SPARK_JOB_UUID


def write_spark(folder):
    import pyspark
    from pyspark.sql import SparkSession
    from pyspark.sql import types as T

    jars = Path(pyspark.__file__).parent / "jars"
    with tempfile.TemporaryDirectory(prefix="batchscore-spark-") as tmp:
        tmp = Path(tmp)
        src = tmp / "src" / "batchscore" / "FixedJobIdCommitProtocol.java"
        src.parent.mkdir(parents=True)
        src.write_text(JAVA_COMMIT_PROTOCOL)
        classes = tmp / "classes"
        subprocess.run(["javac", "-nowarn", "-cp", str(jars / "*"), "-d", str(classes), str(src)],
                       check=True)
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        spark = (SparkSession.builder.master("local[1]").appName("batchscore-realworld")
                 .config("spark.driver.extraClassPath", str(classes))
                 .config("spark.sql.sources.commitProtocolClass",
                         "batchscore.FixedJobIdCommitProtocol")
                 .config("spark.sql.session.timeZone", "UTC")
                 .config("spark.sql.parquet.outputTimestampType", "INT96")
                 .config("spark.sql.parquet.compression.codec", "snappy")
                 .config("spark.sql.shuffle.partitions", "1")
                 .config("spark.ui.enabled", "false")
                 .config("spark.driver.host", "127.0.0.1")
                 .config("spark.driver.bindAddress", "127.0.0.1")
                 .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
                 .config("spark.driver.extraJavaOptions",
                         f"-Djava.io.tmpdir={tmp} {JVM_HASH_FLAGS}")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        try:
            idx = list(range(3, 150, 10))  # 15 rows
            x = iris_rows(idx)
            schema = T.StructType(
                [T.StructField(c, T.DoubleType(), False) for c in FEATURES]
                + [T.StructField("ts", T.TimestampType(), True),
                   T.StructField("amount", T.DecimalType(12, 3), True),
                   T.StructField("name", T.StringType(), True)])
            rows = []
            for r, i in enumerate(idx):
                rows.append(tuple(float(v) for v in x[r])
                            + (utc(r, frac_us=654321 * (r % 3)),
                               decimal.Decimal(f"{(i * 7919) % 1000000 - 500000}.{i % 1000:03d}"),
                               None if r == 4 else f"spark-{i}"))
            df = spark.createDataFrame(rows, schema)
            shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            df.coalesce(1).write.parquet(str(folder))
            version = spark.version
        finally:
            spark.stop()
    names = sorted(p.name for p in folder.iterdir())
    log(f"  spark {version}: {names}")
    return {"rows": idx, "version": version}


# --------------------------------------------------------------------------------------------
# B. Tabular reference predictions
# --------------------------------------------------------------------------------------------


def is_data_file(p):
    return not (p.name.startswith("_") or p.name.startswith("."))


def raw_csv_rows(path, delimiter=","):
    if path.suffix == ".gz":
        data = gzip.decompress(path.read_bytes())
    elif path.suffix == ".bz2":
        data = bz2.decompress(path.read_bytes())
    elif path.suffix == ".zst":
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(path.read_bytes())).read()
    else:
        data = path.read_bytes()
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter)
    rows = list(reader)
    return rows[0], rows[1:]


def fail_text(v):
    if v is None:
        return "null"
    v = float(v)
    if math.isnan(v):
        return "NaN"
    return "inf" if v > 0 else "-inf"


def read_user(path, european):
    """Read a file as a Python user would; return (features float64 [N,4], fails, passthrough)."""
    name = path.name
    fails = {}
    passthrough = []
    if ".csv" in name:
        delim = ";" if european else ","
        kwargs = {"sep": ";", "decimal": ","} if european else {}
        df = pd.read_csv(path, **kwargs)  # compression inferred from the suffix
        header, raw = raw_csv_rows(path, delim)
        for r, fields in enumerate(raw):
            rec = dict(zip(header, fields))
            passthrough.append({h: rec[h] for h in header if h not in FEATURES})
            for c in FEATURES:
                v = df[c].iloc[r]
                if not np.isfinite(float(v)):
                    fails.setdefault(r, (c, rec[c]))
    elif name.endswith(".parquet"):
        df = pd.read_parquet(path)
        t = pq.read_table(path)
        for r in range(t.num_rows):
            rec = {}
            for field in t.schema:
                if field.name in FEATURES:
                    continue
                s = t.column(field.name)[r]
                v = s.as_py()
                if v is None:
                    text = None
                elif pa.types.is_timestamp(field.type):
                    text = v.isoformat()
                else:
                    text = str(v)
                rec[field.name] = {"arrow_type": str(field.type), "text": text}
            passthrough.append(rec)
            for c in FEATURES:
                v = t.column(c)[r].as_py()
                if v is None or not math.isfinite(v):
                    fails.setdefault(r, (c, fail_text(v)))
    elif name.endswith(".ndjson") or name.endswith(".jsonl"):
        df = pd.read_json(path, lines=True)
        with open(path, encoding="utf-8") as f:
            for r, line in enumerate(f):
                obj = json.loads(line)
                passthrough.append({k: v for k, v in obj.items() if k not in FEATURES})
                for c in FEATURES:
                    v = obj.get(c)
                    if v is None or not math.isfinite(float(v)):
                        fails.setdefault(r, (c, fail_text(v)))
    else:
        raise ValueError(path)
    X = df[FEATURES].to_numpy(dtype=np.float64) if len(df) else np.zeros((0, 4))
    assert len(X) == len(passthrough), (path, len(X), len(passthrough))
    return X, fails, passthrough


def tabular_references():
    s = session(MODELS / "iris_zipmap.onnx")
    names = [o.name for o in s.get_outputs()]
    summary = {}
    for folder in sorted(p for p in TAB.iterdir() if p.is_dir()):
        records, pass_records = [], []
        files = sorted(p for p in folder.rglob("*") if p.is_file() and is_data_file(p))
        for path in files:
            rel = path.relative_to(folder).as_posix()
            X, fails, passthrough = read_user(path, european=folder.name == "pandas-european")
            ok = [r for r in range(len(X)) if r not in fails and np.all(np.isfinite(X[r]))]
            outs = {}
            if ok:
                feeds = {"input": X[ok].astype(np.float32)}
                for r, o in zip(ok, rows_from_outputs(names, s.run(names, feeds))):
                    outs[r] = o
            for r in range(len(X)):
                if r in outs:
                    records.append({"file": rel, "row": r, "outputs": outs[r]})
                else:
                    c, v = fails[r]
                    records.append({"file": rel, "row": r, "fails": c, "value": v})
                pass_records.append({"file": rel, "row": r, "passthrough": passthrough[r]})
            summary[f"{folder.name}/{rel}"] = (len(X), len(X) - len(ok))
        write_jsonl(REF / f"{folder.name}.jsonl", records)
        write_jsonl(REF / f"{folder.name}.passthrough.jsonl", pass_records)
    for k, (n, bad) in summary.items():
        log(f"  {k}: {n} rows, {bad} not scored")
    return summary


# --------------------------------------------------------------------------------------------
# C. Images
# --------------------------------------------------------------------------------------------

BARS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255),
        (255, 255, 255), (0, 0, 0)]


def china():
    return Image.fromarray(load_sample_image("china.jpg")).convert("RGB")


def upright_image():
    """24x16 RGB: a 24x10 crop of china.jpg over 8 saturated colour bars 3 px wide (6 rows)."""
    img = Image.new("RGB", (24, 16))
    img.paste(china().crop((320, 330, 344, 340)), (0, 0))
    d = ImageDraw.Draw(img)
    for k, c in enumerate(BARS):
        d.rectangle((3 * k, 10, 3 * k + 2, 15), fill=c)
    return img


# The transpose that Pillow's exif_transpose applies for each orientation, and its inverse
# (what a camera stores so that applying the orientation gives the upright image).
T = Image.Transpose
EXIF_APPLY = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM,
              5: T.TRANSPOSE, 6: T.ROTATE_270, 7: T.TRANSVERSE, 8: T.ROTATE_90}
EXIF_STORE = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM,
              5: T.TRANSPOSE, 6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270}


def exif_bytes(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def write_exif(folder, up):
    folder.mkdir(parents=True, exist_ok=True)
    for o in range(1, 9):
        stored = up if EXIF_STORE[o] is None else up.transpose(EXIF_STORE[o])
        back = stored if EXIF_APPLY[o] is None else stored.transpose(EXIF_APPLY[o])
        assert back.tobytes() == up.tobytes(), o
        stored.save(folder / f"orient-{o}.jpg", format="JPEG", quality=95, subsampling=2,
                    exif=exif_bytes(o))
    up.transpose(EXIF_STORE[6]).save(folder / "orient-6.png", format="PNG", compress_level=6,
                                     exif=exif_bytes(6))


def write_codecs(folder, up):
    folder.mkdir(parents=True, exist_ok=True)
    w, h = up.size
    rgba = up.copy()
    rgba.putalpha(Image.fromarray(
        np.fromfunction(lambda y, x: (x * 255 // (w - 1)), (h, w), dtype=np.int64)
        .astype(np.uint8), mode="L"))
    gray = up.convert("L")
    la = gray.copy()
    la.putalpha(rgba.getchannel("A"))
    pal = up.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    g16 = Image.fromarray((np.asarray(gray, dtype=np.uint16) * 257)
                          .astype(np.uint16))  # mode I;16, 0..65535
    assert g16.mode == "I;16", g16.mode
    files = [
        ("png-rgb.png", up, dict(format="PNG", compress_level=6)),
        ("png-rgba.png", rgba, dict(format="PNG", compress_level=6)),
        ("png-l.png", gray, dict(format="PNG", compress_level=6)),
        ("png-la.png", la, dict(format="PNG", compress_level=6)),
        ("png-p.png", pal, dict(format="PNG", compress_level=6)),
        ("png-i16.png", g16, dict(format="PNG", compress_level=6)),
        ("jpeg-baseline.jpg", up, dict(format="JPEG", quality=90, subsampling=2)),
        ("jpeg-444.jpg", up, dict(format="JPEG", quality=90, subsampling=0)),
        ("jpeg-progressive.jpg", up, dict(format="JPEG", quality=90, subsampling=2,
                                          progressive=True)),
        ("jpeg-gray.jpg", gray, dict(format="JPEG", quality=90)),
        ("jpeg-cmyk.jpg", up.convert("CMYK"), dict(format="JPEG", quality=90)),
        ("gif-p.gif", up, dict(format="GIF")),
        ("bmp-rgb.bmp", up, dict(format="BMP")),
        ("bmp-p.bmp", pal, dict(format="BMP")),
        ("tiff-raw.tif", up, dict(format="TIFF", compression="raw")),
        ("tiff-lzw.tif", up, dict(format="TIFF", compression="tiff_lzw")),
        ("tiff-deflate.tif", up, dict(format="TIFF", compression="tiff_deflate")),
        ("tiff-packbits.tif", up, dict(format="TIFF", compression="packbits")),
        ("webp-lossless.webp", up, dict(format="WEBP", lossless=True, quality=100, method=4)),
        ("webp-lossy.webp", up, dict(format="WEBP", lossless=False, quality=80, method=4)),
        ("ico-rgb.ico", up, dict(format="ICO", sizes=[(w, h)])),
        ("tga-raw.tga", up, dict(format="TGA", rle=False)),
        ("tga-rle.tga", up, dict(format="TGA", rle=True)),
        ("ppm-rgb.ppm", up, dict(format="PPM")),
        ("pgm-l.pgm", gray, dict(format="PPM")),
        ("pbm-1.pbm", gray.convert("1"), dict(format="PPM")),
        ("qoi-rgb.qoi", up, dict(format="QOI")),
    ]
    for name, im, kw in files:
        im.save(folder / name, **kw)
    shutil.copyfile(folder / "jpeg-baseline.jpg", folder / "photo.jfif")


FLIP_SOURCES = ["png-rgb.png", "jpeg-baseline.jpg", "gif-p.gif", "bmp-rgb.bmp", "tiff-lzw.tif",
                "webp-lossy.webp", "qoi-rgb.qoi"]


def write_broken(folder, codecs):
    folder.mkdir(parents=True, exist_ok=True)
    for p in sorted(codecs.iterdir()):
        data = p.read_bytes()
        (folder / f"trunc-{p.name}").write_bytes(data[: int(len(data) * 0.6)])
    for name in FLIP_SOURCES:
        data = bytearray((codecs / name).read_bytes())
        mid = len(data) // 2 - 16
        for i in range(mid, mid + 32):
            data[i] ^= 0xFF
        (folder / f"flip-{name}").write_bytes(bytes(data))
    (folder / "empty.png").write_bytes(b"")


def write_gray(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, c in [("red", (255, 0, 0)), ("green", (0, 255, 0)), ("blue", (0, 0, 255)),
                    ("orange", (255, 128, 0))]:
        Image.new("RGB", (8, 8), c).save(folder / f"gray-{name}.png", format="PNG",
                                         compress_level=6)
    bars = Image.new("RGB", (24, 8))
    d = ImageDraw.Draw(bars)
    for k, c in enumerate(BARS):
        d.rectangle((3 * k, 0, 3 * k + 2, 7), fill=c)
    bars.save(folder / "gray-bars.png", format="PNG", compress_level=6)
    china().crop((180, 120, 500, 440)).resize((32, 32), Image.Resampling.LANCZOS).save(
        folder / "gray-photo.png", format="PNG", compress_level=6)


def chw(img):
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    return a.transpose(2, 0, 1).tolist()


def pil_record(path, with_709=False):
    with Image.open(path) as im:
        im.load()
        up = ImageOps.exif_transpose(im)
        rgb = up.convert("RGB")
        gray = up.convert("L")
    rec = {"file": path.name, "rgb": chw(rgb), "gray": chw(gray), "size": list(rgb.size)}
    if with_709:
        a = np.asarray(rgb, dtype=np.uint32)
        g = (2126 * a[..., 0] + 7152 * a[..., 1] + 722 * a[..., 2]) // 10000
        rec["gray_rec709"] = chw(g.astype(np.uint8))
    return rec


def image_references():
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    verdicts = {}
    for sub in ("exif", "codecs", "broken", "gray"):
        folder = IMG / sub
        records = []
        for p in sorted(folder.iterdir()):
            if sub != "broken":
                records.append(pil_record(p, with_709=sub == "gray"))
                continue
            try:
                with cwd(folder):  # relative name in PIL's messages
                    rec = pil_record(Path(p.name))
                rec["pil_decodes_truncated"] = True
                verdicts[p.name] = "decodes"
            except Exception as e:  # noqa: BLE001
                text = f"{type(e).__name__}: {e}"
                rec = {"file": p.name, "pil_error": text}
                verdicts[p.name] = text
            records.append(rec)
        write_jsonl(REF / f"images-{sub}.jsonl", records)
    return verdicts


TEXTS = [("text-0-up.png", "batchscore 42", False), ("text-1-up.png", "Hello, world!", False),
         ("text-2-down.png", "OCR test line", True), ("text-3-down.png", "Upside down 7", True)]


def write_textlines(folder):
    folder.mkdir(parents=True, exist_ok=True)
    font = ImageFont.load_default(size=24)
    for name, text, flip in TEXTS:
        img = Image.new("RGB", (192, 48), (255, 255, 255))
        d = ImageDraw.Draw(img)
        d.text((8, 10), text, fill=(0, 0, 0), font=font)
        if flip:
            img = img.transpose(Image.Transpose.ROTATE_180)
        img.save(folder / name, format="PNG", compress_level=6)


# --------------------------------------------------------------------------------------------
# D. Models
# --------------------------------------------------------------------------------------------


def build_simple_models():
    save_model(make_model(
        [helper.make_node("Identity", ["image"], ["pixels"])], "identity_rgb",
        [vi("image", ["N", 3, "H", "W"])], [vi("pixels", ["N", 3, "H", "W"])],
        "batchscore fixture: Identity; input image float32 [N,3,H,W]; output pixels (same)."),
        MODELS / "identity_rgb.onnx")
    save_model(make_model(
        [helper.make_node("Identity", ["image"], ["pixels"])], "identity_gray",
        [vi("image", ["N", 1, "H", "W"])], [vi("pixels", ["N", 1, "H", "W"])],
        "batchscore fixture: Identity; input image float32 [N,1,H,W]; output pixels (same)."),
        MODELS / "identity_gray.onnx")
    save_model(make_model(
        [helper.make_node("Reshape", ["x", "s3"], ["y"]),
         helper.make_node("Reshape", ["x", "s4"], ["z"])], "nested3",
        [vi("x", ["N", 6])], [vi("y", ["N", 2, 3]), vi("z", ["N", 3, 2, 1])],
        "batchscore fixture: y = Reshape(x, [-1,2,3]), z = Reshape(x, [-1,3,2,1]); input x "
        "float32 [N,6].",
        [numpy_helper.from_array(np.array([-1, 2, 3], np.int64), "s3"),
         numpy_helper.from_array(np.array([-1, 3, 2, 1], np.int64), "s4")]),
        MODELS / "nested3.onnx")
    save_model(make_model(
        [helper.make_node("AveragePool", ["image"], ["map"], kernel_shape=[2, 2],
                          strides=[2, 2])], "dynamic_map",
        [vi("image", ["N", 1, "H", "W"])], [vi("map", ["N", 1, "h", "w"])],
        "batchscore fixture: 2x2/stride-2 AveragePool; input image float32 [N,1,H,W]; output "
        "map float32 [N,1,h,w] with h = floor(H/2), w = floor(W/2)."),
        MODELS / "dynamic_map.onnx")


def build_hostile_models():
    save_model(make_model(
        [helper.make_node("Identity", ["input"], ["output"])], "hostile_batch1e9",
        [vi("input", [1_000_000_000, 4])], [vi("output", [1_000_000_000, 4])],
        "batchscore hostile fixture: FIXED batch of 1e9 rows (16 GB per call); Identity."),
        MODELS / "hostile_batch1e9.onnx")
    save_model(make_model(
        [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=0)],
        "hostile_image_huge",
        [vi("image", ["N", 3, 100_000, 100_000])], [vi("mean", ["N", 3])],
        "batchscore hostile fixture: input image float32 [N,3,100000,100000] (120 GB per image); "
        "output mean float32 [N,3]."),
        MODELS / "hostile_image_huge.onnx")
    save_model(make_model(
        [helper.make_node("ReduceSum", ["input"], ["total"], keepdims=0)], "hostile_scalar_out",
        [vi("input", ["N", 4])], [vi("total", [])],
        "batchscore hostile fixture: output total is a scalar (shape []): the sum of all inputs "
        "of the whole batch, no batch dimension."),
        MODELS / "hostile_scalar_out.onnx")
    save_model(make_model(
        [helper.make_node("Identity", ["input"], ["output"])], "hostile_shape_lie",
        [vi("input", ["N", 4])], [vi("output", ["N", 3])],
        "batchscore hostile fixture: output declared float32 [N,3] but Identity gives [N,4].",
        full_check=False),
        MODELS / "hostile_shape_lie.onnx")

    # external data: MatMul with a [4,3] weight stored in weights.bin next to model.onnx
    w = np.array([[0.5, -1.0, 0.25], [1.5, 0.125, -0.75], [-2.0, 0.0625, 1.0],
                  [0.375, 2.0, -0.5]], dtype=np.float32)
    model = make_model(
        [helper.make_node("MatMul", ["input", "W"], ["y"])], "external_matmul",
        [vi("input", ["N", 4])], [vi("y", ["N", 3])],
        "batchscore fixture: y = input @ W, W float32 [4,3] stored as external data in "
        "weights.bin (relative location).",
        [numpy_helper.from_array(w, "W")])
    ext = MODELS / "external"
    shutil.rmtree(ext, ignore_errors=True)
    ext.mkdir(parents=True)
    external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0,
        convert_attribute=False)
    with cwd(ext):  # onnx appends to the weights file: it was removed above
        external_data_helper.write_external_data_tensors(model, str(ext))
    (ext / "model.onnx").write_bytes(model.SerializeToString(deterministic=True))
    onnx.checker.check_model(str(ext / "model.onnx"))
    return w


def build_lgbm():
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    rng = np.random.default_rng(0)
    mask = rng.random(X.shape) < 0.10
    X[mask] = np.nan
    clf = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=7, learning_rate=0.1,
                                  min_child_samples=5, random_state=0, n_jobs=1,
                                  deterministic=True, force_row_wise=True, verbose=-1)
    clf.fit(X, y)
    onx = onnxmltools.convert_lightgbm(
        clf, name="lgbm_iris", initial_types=[("input", FloatTensorType([None, 4]))],
        target_opset=LGBM_OPSET, zipmap=False)
    # onnxmltools declares label as int64 [1] (ORT then warns "Expected shape from model of {1}
    # does not match actual shape of {N}"); declare the batch dimension it really has.
    label = [o for o in onx.graph.output if o.name == "label"][0]
    dims = label.type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1], dims
    dims[0].Clear()
    ml = [op.version for op in onx.opset_import if op.domain == "ai.onnx.ml"]
    assert ml and max(ml) <= 3, onx.opset_import
    finalize(onx, "lgbm_iris",
             "batchscore fixture: lightgbm.LGBMClassifier(n_estimators=30, num_leaves=7, "
             "random_state=0) on sklearn load_iris with ~10% of feature values set to NaN "
             "(default_rng(0)), onnxmltools.convert_lightgbm(zipmap=False); input float32 [N,4];"
             " outputs label int64 [N], probabilities float32 [N,3].")
    save_model(onx, MODELS / "lgbm_iris.onnx")
    return clf, X, int(mask.sum())


def copy_ppocr():
    import rapidocr_onnxruntime
    src = Path(rapidocr_onnxruntime.__file__).parent / "models"
    cls = src / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
    shutil.copyfile(cls, MODELS / "ppocr_cls.onnx")
    dets = sorted(src.glob("*det*.onnx"))
    det_info = [(p.name, p.stat().st_size) for p in dets]
    small = [p for p in dets if p.stat().st_size <= 2_500_000]
    if small:
        shutil.copyfile(small[0], MODELS / "ppocr_det.onnx")
    return det_info, bool(small)


def ppocr_input(path):
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255.0)
    a = (a - np.float32(0.5)) / np.float32(0.5)
    return np.ascontiguousarray(a.transpose(2, 0, 1)[np.newaxis])


def model_references(lgbm_clf):
    # lgbm_iris on nonfinite.parquet, all rows fed
    s = session(MODELS / "lgbm_iris.onnx")
    names = [o.name for o in s.get_outputs()]
    path = TAB / "pyarrow" / "nonfinite.parquet"
    X = pd.read_parquet(path)[FEATURES].to_numpy(dtype=np.float64)
    res = s.run(names, {"input": X.astype(np.float32)})
    records = [{"file": path.name, "row": r, "outputs": o}
               for r, o in enumerate(rows_from_outputs(names, res))]
    write_jsonl(REF / "lgbm_iris__nonfinite.jsonl", records)
    probs = res[names.index("probabilities")]
    assert np.all(np.isfinite(probs)), probs
    ref = lgbm_clf.predict_proba(X)
    log(f"  lgbm_iris on nonfinite.parquet: probabilities finite; max |ORT - LightGBM| = "
        f"{np.max(np.abs(probs - ref)):.3g}")

    # external/model.onnx on sample-data/iris/part-0.csv
    s = session(MODELS / "external" / "model.onnx")
    names = [o.name for o in s.get_outputs()]
    part0 = ROOT / "sample-data" / "iris" / "part-0.csv"
    with open(part0, newline="") as f:
        Xi = np.array([[float(r[c]) for c in FEATURES] for r in csv.DictReader(f)],
                      dtype=np.float64).astype(np.float32)
    records = [{"file": part0.name, "row": r, "outputs": o}
               for r, o in enumerate(rows_from_outputs(names, s.run(names, {"input": Xi})))]
    write_jsonl(REF / "external__iris-part-0.jsonl", records)

    # ppocr_cls on the text lines, one image per run
    s = session(MODELS / "ppocr_cls.onnx")
    names = [o.name for o in s.get_outputs()]
    in_name = s.get_inputs()[0].name
    records = []
    for p in sorted((IMG / "textlines").glob("*.png")):
        (o,) = rows_from_outputs(names, s.run(names, {in_name: ppocr_input(p)}))
        records.append({"file": p.name, "row": None, "outputs": o})
        log(f"  ppocr_cls {p.name}: {o}")
    write_jsonl(REF / "ppocr_cls__textlines.jsonl", records)
    if (MODELS / "ppocr_det.onnx").exists():
        s = session(MODELS / "ppocr_det.onnx")
        names = [o.name for o in s.get_outputs()]
        in_name = s.get_inputs()[0].name
        records = []
        for p in sorted((IMG / "textlines").glob("*.png")):
            (out,) = s.run(names[:1], {in_name: ppocr_input(p)})
            records.append({"file": p.name, "row": None, "shape": list(out.shape),
                            "outputs": {names[0]: jnested(out[0])}})
        write_jsonl(REF / "ppocr_det__textlines.jsonl", records)


def try_session(path):
    """Load and run a model in a fresh interpreter; return what ORT printed and raised."""
    code = r"""
import sys, numpy as np, onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
try:
    s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
except Exception as e:
    print("LOAD FAILED:", type(e).__name__, " ".join(str(e).split())[:400]); sys.exit(0)
i = s.get_inputs()[0]; o = s.get_outputs()
print("loaded:", i.name, i.shape, "->", [(x.name, x.shape) for x in o])
shape = [2 if not isinstance(d, int) else d for d in i.shape]
shape = [2 if d > 64 else d for d in shape]
x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
try:
    r = s.run(None, {i.name: x})
    print("run", shape, "->", [getattr(v, "shape", None) for v in r])
except Exception as e:
    print("RUN FAILED", shape, ":", type(e).__name__, " ".join(str(e).split())[:400])
"""
    p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                       timeout=120)
    return (p.stdout + p.stderr).strip()


def check_models(lgbm_clf, lgbm_X, w):
    for name in sorted(NEW_MODELS) + ["ppocr_det.onnx"]:
        path = MODELS / name
        if name == "external":
            path = path / "model.onnx"
        if not path.exists():
            continue
        if name.startswith("hostile_"):
            log(f"  {name}: " + try_session(path).replace("\n", "\n      "))
            continue
        s = session(path)
        m = onnx.load(str(path), load_external_data=False)
        log(f"  {path.relative_to(MODELS)} ({path.stat().st_size} bytes, IR {m.ir_version}, "
            f"opsets {[(o.domain or 'ai.onnx', o.version) for o in m.opset_import]})")
        for kind, items in (("in ", s.get_inputs()), ("out", s.get_outputs())):
            for it in items:
                log(f"      {kind} {it.name}: {it.type} {it.shape}")

    img = np.random.default_rng(1).random((2, 3, 5, 7), dtype=np.float32)
    (out,) = session(MODELS / "identity_rgb.onnx").run(None, {"image": img})
    assert np.array_equal(out, img)
    (out,) = session(MODELS / "identity_gray.onnx").run(None, {"image": img[:, :1]})
    assert np.array_equal(out, img[:, :1])
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    y, z = session(MODELS / "nested3.onnx").run(None, {"x": x})
    assert y.shape == (2, 2, 3) and z.shape == (2, 3, 2, 1)
    (mp,) = session(MODELS / "dynamic_map.onnx").run(None, {"image": img[:, :1]})
    assert mp.shape == (2, 1, 2, 3), mp.shape
    xi = IRIS[:5].astype(np.float32)
    (ye,) = session(MODELS / "external" / "model.onnx").run(None, {"input": xi})
    assert np.allclose(ye, xi @ w, atol=1e-5)
    lab, prob = session(MODELS / "lgbm_iris.onnx").run(None, {"input": lgbm_X.astype(np.float32)})
    assert np.all(np.isfinite(prob)) and prob.shape == (150, 3)
    agree = float(np.mean(lab == lgbm_clf.predict(lgbm_X)))
    diff = float(np.max(np.abs(prob - lgbm_clf.predict_proba(lgbm_X))))
    log(f"  lgbm_iris on its NaN'd training data: labels agree with LightGBM on {agree:.1%}, "
        f"max |prob diff| = {diff:.3g}")
    assert agree == 1.0 and diff < 1e-5


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-spark", action="store_true",
                    help="leave sample-data/realworld/tabular/spark as it is (no Java needed)")
    args = ap.parse_args()
    np.random.seed(0)
    log(f"pandas {pd.__version__}, pyarrow {pa.__version__}, polars {pl.__version__}, duckdb "
        f"{duckdb.__version__}, lightgbm {lightgbm.__version__}, onnxruntime {ort.__version__}")

    spark_dir = TAB / "spark"
    keep = None
    if args.no_spark and spark_dir.exists():
        keep = Path(tempfile.mkdtemp(prefix="batchscore-keep-spark-")) / "spark"
        shutil.copytree(spark_dir, keep)
    shutil.rmtree(RW, ignore_errors=True)
    shutil.rmtree(REF, ignore_errors=True)
    for name in NEW_MODELS + ["ppocr_det.onnx"]:
        p = MODELS / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()

    log("A. tabular files")
    write_pandas_csv(TAB / "pandas-csv")
    write_pandas_european(TAB / "pandas-european")
    write_pandas_parquet(TAB / "pandas-parquet")
    write_polars(TAB / "polars")
    write_duckdb(TAB / "duckdb")
    write_pyarrow(TAB / "pyarrow")
    write_mixed(TAB / "mixed-types")
    write_empty(TAB / "empty")
    if keep is not None:
        shutil.copytree(keep, spark_dir)
        shutil.rmtree(keep.parent)
    elif not args.no_spark:
        write_spark(spark_dir)

    log("B. tabular references")
    tabular_references()

    log("C. images")
    up = upright_image()
    write_exif(IMG / "exif", up)
    write_codecs(IMG / "codecs", up)
    write_broken(IMG / "broken", IMG / "codecs")
    write_gray(IMG / "gray")
    write_textlines(IMG / "textlines")
    verdicts = image_references()
    for k, v in verdicts.items():
        log(f"  {k}: {v}")

    log("D. models")
    build_simple_models()
    w = build_hostile_models()
    lgbm_clf, lgbm_X, n_nan = build_lgbm()
    log(f"  lgbm_iris trained with {n_nan} NaN feature values of 600")
    det_info, det_copied = copy_ppocr()
    log(f"  rapidocr det models: {det_info}; copied: {det_copied}")
    check_models(lgbm_clf, lgbm_X, w)
    model_references(lgbm_clf)

    total = sum(p.stat().st_size for p in list(RW.rglob("*")) + list(REF.rglob("*"))
                if p.is_file())
    total += sum((MODELS / n).stat().st_size for n in NEW_MODELS + ["ppocr_det.onnx"]
                 if (MODELS / n).is_file())
    total += sum(p.stat().st_size for p in (MODELS / "external").iterdir())
    log(f"total size of generated files: {total} bytes")
    assert total < 3_500_000, total
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wine-like benchmark data (models/wine_tensor.onnx: `id` + 13 float64 feature columns), from
fixed seeds: each feature uniform in load_wine's (rough) range, rounded to 3 decimals.

    gen-wine.py OUT FILES ROWS [--seed S] [--row-group N] [--csv]

writes OUT/part-NNNN.parquet (snappy, row groups of N rows), file i with ids i*ROWS.. and seed
S+i; with --csv also the same rows as OUT/../csv/part-NNNN.csv. Needs numpy and pyarrow (the
.venv-models environment, see models/README.md).
"""
import argparse
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

COLUMNS = [
    ("alcohol", 11.0, 14.9), ("malic_acid", 0.7, 5.8), ("ash", 1.3, 3.3),
    ("alcalinity_of_ash", 10.6, 30.0), ("magnesium", 70.0, 162.0), ("total_phenols", 0.98, 3.88),
    ("flavanoids", 0.34, 5.08), ("nonflavanoid_phenols", 0.13, 0.66), ("proanthocyanins", 0.41, 3.58),
    ("color_intensity", 1.28, 13.0), ("hue", 0.48, 1.71), ("od280/od315_of_diluted_wines", 1.27, 4.0),
    ("proline", 278.0, 1680.0),
]

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("files", type=int)
p.add_argument("rows", type=int)
p.add_argument("--seed", type=int, default=1000)
p.add_argument("--row-group", type=int, default=1000)
p.add_argument("--csv", action="store_true")
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
csv_dir = os.path.join(os.path.dirname(os.path.abspath(a.out)), "csv")
if a.csv:
    os.makedirs(csv_dir, exist_ok=True)
for i in range(a.files):
    rng = np.random.default_rng(a.seed + i)
    data = {"id": pa.array(np.arange(i * a.rows, (i + 1) * a.rows, dtype=np.int64))}
    for name, lo, hi in COLUMNS:
        data[name] = pa.array(np.round(rng.uniform(lo, hi, a.rows), 3))
    table = pa.table(data)
    pq.write_table(table, f"{a.out}/part-{i:04d}.parquet", row_group_size=a.row_group, compression="snappy")
    if a.csv:
        pacsv.write_csv(table, f"{csv_dir}/part-{i:04d}.csv")

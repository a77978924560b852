"""Inputs of the comparison benchmark (benches/compare/), generated from fixed seeds.

    gen_data.py --out DIR [--scale full|small]

writes
  DIR/<scale>/w1/part-NNNN.parquet  W1, tabular: `id` (int64, global row id) then 28 float32
                                    features f00..f27 (normal, uniform, skewed, correlated and
                                    integer-valued columns); snappy, row groups of 10,000 rows.
                                    full: 100 files x 50,000 rows (5 M rows); small: 10 x 5,000.
  DIR/<scale>/w2/img-NNNNN.{jpg,png} W2, images: random crops of scikit-image's bundled sample
                                    photos, long side 160..1024 px, aspect ratio 1:1..2:1 either
                                    way; 90% JPEG (quality 85..95), 10% PNG.
                                    full: 10,000 images; small: 200.
  DIR/w1-train.parquet              50,000 rows drawn like W1 but from their own seed, with a
                                    synthetic binary `label`: what gen_models.py trains on. It does
                                    not depend on the scale, so both scales are scored by the
                                    same models.

Each scale lives in its own folder so that both can sit side by side. A stamp DIR/.done-<scale>
(holding the generator's parameters) makes a second call with the same parameters a no-op; a
stamp with other parameters makes it regenerate that scale. Every file is a pure function of
its index and the seed, so two machines generate the same bytes (for the same pinned numpy,
pyarrow and Pillow).
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

GEN_VERSION = 1
SEED_W1 = 1_000
SEED_W2 = 2_000
SEED_TRAIN = 3_000
N_FEATURES = 28
ROW_GROUP = 10_000
TRAIN_ROWS = 50_000
SCALES = {
    "full": {"w1_files": 100, "w1_rows": 50_000, "w2_images": 10_000},
    "small": {"w1_files": 10, "w1_rows": 5_000, "w2_images": 200},
}
FEATURES = [f"f{i:02d}" for i in range(N_FEATURES)]


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# W1: tabular
# --------------------------------------------------------------------------------------------


def features(rng, n):
    """n rows of the 28 features as a float32 [n, 28] array.

    f00..f09 normal (various means and scales), f10..f17 uniform (various ranges), f18..f23
    linear mixes of f00..f05 plus noise (correlated), f24..f25 log-normal (skewed), f26..f27
    small integers stored as floats (category-like).
    """
    x = np.empty((n, N_FEATURES), dtype=np.float64)
    means = np.linspace(-2.0, 2.0, 10)
    scales = np.linspace(0.5, 3.0, 10)
    x[:, 0:10] = rng.normal(means, scales, size=(n, 10))
    lows = np.arange(8) * -1.0
    highs = 1.0 + np.arange(8) * 2.0
    x[:, 10:18] = rng.uniform(lows, highs, size=(n, 8))
    mix = np.array([
        [0.8, 0.2, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.7, -0.5, 0.0, 0.0, 0.0],
        [0.3, 0.0, 0.0, 0.9, 0.0, 0.0],
        [0.0, 0.0, 0.4, 0.0, -0.6, 0.2],
        [0.5, 0.5, 0.5, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.3, 0.3, -0.9],
    ])
    x[:, 18:24] = x[:, 0:6] @ mix.T + rng.normal(0.0, 0.3, size=(n, 6))
    x[:, 24:26] = rng.lognormal(0.0, 1.0, size=(n, 2))
    x[:, 26] = rng.integers(0, 10, size=n)
    x[:, 27] = rng.integers(0, 4, size=n)
    return x.astype(np.float32)


def w1_table(index, rows):
    rng = np.random.default_rng(SEED_W1 + index)
    x = features(rng, rows)
    cols = {"id": pa.array(np.arange(index * rows, (index + 1) * rows, dtype=np.int64))}
    for j, name in enumerate(FEATURES):
        cols[name] = pa.array(x[:, j])
    return pa.table(cols)


def synthetic_label(x, rng):
    """A nonlinear function of a few features plus noise, thresholded at its median."""
    z = (
        1.5 * np.sin(1.3 * x[:, 0])
        + 0.6 * x[:, 1] * x[:, 2] / 4.0
        + 1.2 * (x[:, 10] > 0.5)
        - 0.8 * np.abs(x[:, 18])
        + 0.5 * np.log1p(x[:, 24])
        + 0.3 * (x[:, 26] >= 7)
        + rng.normal(0.0, 0.7, size=len(x))
    )
    return (z > np.median(z)).astype(np.int64)


def gen_train(path):
    if os.path.exists(path):
        return
    rng = np.random.default_rng(SEED_TRAIN)
    x = features(rng, TRAIN_ROWS)
    y = synthetic_label(x, rng)
    cols = {"id": pa.array(np.arange(TRAIN_ROWS, dtype=np.int64))}
    for j, name in enumerate(FEATURES):
        cols[name] = pa.array(x[:, j])
    cols["label"] = pa.array(y)
    tmp = path + ".tmp"
    pq.write_table(pa.table(cols), tmp, compression="snappy", row_group_size=ROW_GROUP)
    os.replace(tmp, path)
    log(f"train: {TRAIN_ROWS} rows, {y.mean():.3f} positive -> {path}")


def gen_w1(out, files, rows):
    os.makedirs(out, exist_ok=True)
    total = 0
    for i in range(files):
        path = os.path.join(out, f"part-{i:04d}.parquet")
        pq.write_table(w1_table(i, rows), path, compression="snappy", row_group_size=ROW_GROUP)
        total += os.path.getsize(path)
    log(f"w1: {files} files x {rows} rows = {files * rows} rows, {total:,} bytes -> {out}")


# --------------------------------------------------------------------------------------------
# W2: images
# --------------------------------------------------------------------------------------------

# scikit-image's bundled photos (all ship inside the wheel: nothing is downloaded).
COLOR_SOURCES = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
                 "immunohistochemistry", "retina", "colorwheel"]
GRAY_SOURCES = ["camera", "coins", "moon", "brick", "grass", "gravel", "clock"]


def load_sources():
    import skimage.data

    images = []
    for name in COLOR_SOURCES + GRAY_SOURCES:
        a = getattr(skimage.data, name)()
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        images.append(Image.fromarray(np.ascontiguousarray(a[:, :, :3]).astype(np.uint8), "RGB"))
    return images


def w2_image(index, sources):
    """Image `index`: returns (PIL image, extension, save kwargs)."""
    rng = np.random.default_rng([SEED_W2, index])
    src = sources[int(rng.integers(len(sources)))]
    long_side = int(rng.integers(160, 1025))
    ratio = float(rng.uniform(1.0, 2.0))
    short_side = max(16, int(round(long_side / ratio)))
    w, h = (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)
    # Crop a random window of the target aspect ratio covering 30%..100% of the source's
    # largest such window, then scale it to (w, h).
    sw, sh = src.size
    max_cw = min(sw, sh * w / h)
    frac = float(rng.uniform(0.3, 1.0))
    cw = max(8.0, max_cw * frac)
    ch = cw * h / w
    x0 = float(rng.uniform(0, sw - cw))
    y0 = float(rng.uniform(0, sh - ch))
    img = src.resize((w, h), Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.1:
        return img, "png", {"format": "PNG", "compress_level": 6}
    quality = int(rng.integers(85, 96))
    return img, "jpg", {"format": "JPEG", "quality": quality}


def gen_w2(out, count):
    os.makedirs(out, exist_ok=True)
    sources = load_sources()
    total = 0
    kinds = {"jpg": 0, "png": 0}
    t0 = time.time()
    for i in range(count):
        img, ext, kw = w2_image(i, sources)
        path = os.path.join(out, f"img-{i:05d}.{ext}")
        img.save(path, **kw)
        total += os.path.getsize(path)
        kinds[ext] += 1
        if (i + 1) % 1000 == 0:
            log(f"  w2: {i + 1}/{count} images, {time.time() - t0:.0f} s")
    log(f"w2: {count} images ({kinds['jpg']} JPEG, {kinds['png']} PNG), {total:,} bytes total "
        f"({total / count / 1e3:.0f} kB each on average) -> {out}")
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="data folder, e.g. target/bench-data/compare")
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    a = p.parse_args()

    params = dict(SCALES[a.scale], version=GEN_VERSION, seeds=[SEED_W1, SEED_W2, SEED_TRAIN])
    os.makedirs(a.out, exist_ok=True)
    gen_train(os.path.join(a.out, "w1-train.parquet"))
    stamp = os.path.join(a.out, f".done-{a.scale}")
    if os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == params:
                log(f"{a.scale}: already generated in {a.out} ({stamp}); nothing to do")
                return 0
    root = os.path.join(a.out, a.scale)
    if os.path.exists(root):
        shutil.rmtree(root)
    t0 = time.time()
    gen_w1(os.path.join(root, "w1"), params["w1_files"], params["w1_rows"])
    gen_w2(os.path.join(root, "w2"), params["w2_images"])
    with open(stamp, "w") as f:
        json.dump(params, f)
    log(f"{a.scale}: done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Models of the comparison benchmark (benches/compare/), built from fixed seeds.

    gen_models.py --data DIR --out DIR/models

writes
  gbdt.onnx    W1's compute-heavy model: scikit-learn HistGradientBoostingClassifier, 200 trees
               of depth <= 6 (up to 64 leaves), trained on DIR/w1-train.parquet (50,000 rows,
               written by gen_data.py) to a synthetic binary label.
  linear.onnx  W1's light, I/O-bound model: LogisticRegression on the same rows.
  cnn.onnx     W2's model: a small CNN built with onnx.helper from seeded numpy weights:
               4 x (Conv 3x3 stride 2 + Relu) 3->16->32->64->64, GlobalAveragePool, Flatten,
               Gemm 64->10, Softmax.

IO: the tabular models take `input` float32 [N, 28] and give `label` int64 [N] and
`probabilities` float32 [N, 2] (skl2onnx with zipmap off; opset 17, ai.onnx.ml 3, IR 8 so that
ONNX Runtime 1.31 loads them). The CNN takes `input` float32 [N, 3, 128, 128] and gives
`probabilities` float32 [N, 10]. Each model is loaded and run in ONNX Runtime after it is
written, and its speed with 1 thread at batch 1024 rows / 32 images is printed as a sanity figure.
"""

import argparse
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow.parquet as pq
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

IR_VERSION = 8  # ORT 1.31 refuses the IR versions that onnx >= 1.23 helpers default to
OPSET = 17
SKL_OPSET = {"": OPSET, "ai.onnx.ml": 3}
N_FEATURES = 28
SEED = 4_000
IMAGE = 128


def log(msg):
    print(msg, flush=True)


def finalize(model, name, doc):
    """Normalise the model (one entry per opset domain, IR 8, fixed graph name), check it and
    return its bytes."""
    model.graph.name = name  # skl2onnx names the graph with a random UUID
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


def _patch_skl2onnx():
    """skl2onnx 1.20 passes HistGradientBoosting's `missing_go_to_left` to onnx as a Python bool
    for leaves (np.uint8 for branches), which protobuf 7 refuses in an ints attribute ("Expected
    an int, got a boolean"). Cast it to int; the model is the same."""
    import skl2onnx.common.tree_ensemble as te

    if getattr(te.add_node, "_int_missing", False):
        return
    original = te.add_node

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true),
                        **kwargs)

    add_node._int_missing = True
    te.add_node = add_node


def sklearn_to_onnx(model):
    _patch_skl2onnx()
    return convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
        target_opset=SKL_OPSET,
        options={id(model): {"zipmap": False}},
    )


def load_train(data):
    t = pq.read_table(os.path.join(data, "w1-train.parquet"))
    y = t.column("label").to_numpy()
    x = np.column_stack([t.column(f"f{i:02d}").to_numpy() for i in range(N_FEATURES)])
    return x.astype(np.float32), y


def gbdt(x, y):
    clf = HistGradientBoostingClassifier(
        max_iter=200, max_depth=6, max_leaf_nodes=None, learning_rate=0.1,
        early_stopping=False, random_state=SEED,
    )
    clf.fit(x, y)
    assert clf.n_iter_ == 200, clf.n_iter_
    leaves = sum(p.nodes["is_leaf"].sum() for it in clf._predictors for p in it)
    log(f"gbdt: {clf.n_iter_} trees, {leaves} leaves, train accuracy {clf.score(x, y):.3f}")
    doc = ("HistGradientBoostingClassifier, 200 trees of depth <= 6, 28 float features "
           "(benches/compare/gen_models.py)")
    return finalize(sklearn_to_onnx(clf), "gbdt", doc), clf


def linear(x, y):
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    clf.fit(x, y)
    log(f"linear: train accuracy {clf.score(x, y):.3f}")
    doc = "StandardScaler + LogisticRegression, 28 float features (benches/compare/gen_models.py)"
    return finalize(sklearn_to_onnx(clf), "linear", doc), clf


def cnn():
    rng = np.random.default_rng(SEED)
    inits, nodes = [], []
    prev, channels = "input", [3, 16, 32, 64, 64]
    for i in range(4):
        cin, cout = channels[i], channels[i + 1]
        # He-normal weights so activations neither vanish nor explode through the layers.
        w = rng.normal(0.0, np.sqrt(2.0 / (cin * 9)), size=(cout, cin, 3, 3)).astype(np.float32)
        b = rng.normal(0.0, 0.01, size=cout).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"conv{i}_w"),
                  numpy_helper.from_array(b, f"conv{i}_b")]
        nodes.append(helper.make_node("Conv", [prev, f"conv{i}_w", f"conv{i}_b"], [f"conv{i}"],
                                      kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                      name=f"Conv{i}"))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"Relu{i}"))
        prev = f"relu{i}"
    fc_w = rng.normal(0.0, np.sqrt(1.0 / 64), size=(10, 64)).astype(np.float32)
    fc_b = np.zeros(10, dtype=np.float32)
    inits += [numpy_helper.from_array(fc_w, "fc_w"), numpy_helper.from_array(fc_b, "fc_b")]
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["pooled"], name="Pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1, name="Flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="Fc"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="Softmax"),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, IMAGE, IMAGE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="benches/compare/gen_models.py")
    doc = ("Small CNN: 4 x (Conv 3x3 stride 2 + Relu) 3->16->32->64->64, GlobalAveragePool, "
           "Gemm 64->10, Softmax; seeded random weights (benches/compare/gen_models.py)")
    return finalize(model, "cnn", doc)


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def speed(sess, batch, what, seconds=1.0):
    sess.run(None, {"input": batch})  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sess.run(None, {"input": batch})
        n += 1
    dt = time.perf_counter() - t0
    return f"{n * len(batch) / dt:,.0f} {what}/s at batch {len(batch)}, 1 thread"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="data folder written by gen_data.py")
    p.add_argument("--out", required=True, help="models folder, e.g. DATA/models")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)

    x, y = load_train(a.data)
    probe = x[:1024]
    for name, build in [("gbdt", gbdt), ("linear", linear)]:
        t0 = time.time()
        data, clf = build(x, y)
        path = os.path.join(a.out, f"{name}.onnx")
        with open(path, "wb") as f:
            f.write(data)
        sess = session(path)
        label, proba = sess.run(["label", "probabilities"], {"input": probe})
        assert label.dtype == np.int64 and label.shape == (1024,), (label.dtype, label.shape)
        assert proba.dtype == np.float32 and proba.shape == (1024, 2), (proba.dtype, proba.shape)
        want = clf.predict_proba(probe)
        err = float(np.abs(proba - want).max())
        assert err < 1e-4, f"{name}: ONNX and scikit-learn disagree by {err}"
        log(f"{name}.onnx: {len(data):,} bytes, built in {time.time() - t0:.1f} s, "
            f"max |ORT - sklearn| {err:.1e}; {speed(sess, probe, 'rows')}")

    data = cnn()
    path = os.path.join(a.out, "cnn.onnx")
    with open(path, "wb") as f:
        f.write(data)
    sess = session(path)
    rng = np.random.default_rng(SEED + 1)
    images = rng.random((32, 3, IMAGE, IMAGE), dtype=np.float32)
    (proba,) = sess.run(["probabilities"], {"input": images})
    assert proba.shape == (32, 10) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    log(f"cnn.onnx: {len(data):,} bytes; {speed(sess, images, 'images')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

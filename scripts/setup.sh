#!/usr/bin/env bash
# Installs what batchscore needs at run time beside Rust: the ONNX Runtime library, from PyPI's
# onnxruntime wheel, into .venv/ (where the binary looks for it). Idempotent: a second run
# returns at once. Only the wheel itself is installed (--no-deps): the shared library needs
# nothing but libc and libstdc++.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_VERSION=1.31.1
PYTHON=${PYTHON:-python3}
lib() { ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION 2>/dev/null | head -n1; }
if [ -f ".venv/.ort-$ORT_VERSION" ] && [ -n "$(lib)" ]; then
  exit 0
fi
command -v "$PYTHON" >/dev/null || { echo "setup: $PYTHON not found; install Python 3 with pip" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --disable-pip-version-check --quiet --no-deps "onnxruntime==$ORT_VERSION"
[ -n "$(lib)" ] || { echo "setup: onnxruntime $ORT_VERSION installed but libonnxruntime.so.$ORT_VERSION is missing" >&2; exit 1; }
touch ".venv/.ort-$ORT_VERSION"
echo "setup: ONNX Runtime $ORT_VERSION at $(lib)"

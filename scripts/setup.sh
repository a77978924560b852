#!/usr/bin/env bash
# Installs what batchscore needs beside Rust:
# - to build: cmake and nasm, which build the bundled libjpeg-turbo with its SIMD code (the
#   turbojpeg crate); from apt-get when missing and this runs as root, else it says what to
#   install;
# - to run: the ONNX Runtime library, from PyPI's onnxruntime wheel, into .venv/ (where the
#   binary looks for it). Only the wheel itself is installed (--no-deps): the shared library
#   needs nothing but libc and libstdc++.
# Idempotent: a second run returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null || ! command -v nasm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake nasm; } >/dev/null ||
      { echo "setup: apt-get install cmake nasm failed" >&2; exit 1; }
  else
    echo "setup: building batchscore needs cmake and nasm (libjpeg-turbo): sudo apt-get install cmake nasm" >&2
    exit 1
  fi
fi
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

#!/usr/bin/env bash
# Installs the comparison benchmark's Python environment (benches/compare/requirements.txt,
# exact pins) into the git-ignored venv .venv-bench at the repository root. Idempotent: a stamp
# holding the requirements' hash makes a second call instant; a changed requirements file
# reinstalls. PYTHON (default python3, 3.11) creates the venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv-bench
REQ=benches/compare/requirements.txt
STAMP="$VENV/.installed-$(sha256sum "$REQ" | cut -c1-16)"

if [ -f "$STAMP" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
echo "== installing $REQ into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
"$VENV/bin/python" -m pip check
rm -f "$VENV"/.installed-*
touch "$STAMP"
echo "== $VENV ready"

#!/usr/bin/env bash
# Installs the real storage servers that the object-store integration tests start and stop
# (tests/common/servers.rs), all from the package registries, all inside the repository:
#   - Azurite (Microsoft's Azure Storage emulator) and `serve` (a static HTTP server with Range
#     and HEAD support) from npm, into .tools/ (`npm ci` from the committed package-lock.json);
#   - moto's S3 server (`moto_server`) from PyPI, into its own virtual environment .venv-servers/
#     (kept apart from .venv/, which holds only the onnxruntime wheel installed with --no-deps),
#     with openapi-spec-validator and requests (the REST tests);
#   - for the studio's browser test: playwright-core from npm (.tools/) and Debian's `chromium`
#     (apt-get, when it is missing and this runs as root; otherwise it says what to install);
#   - for the Slurm tests (a single-node Slurm on 127.0.0.1, tests/common/servers.rs): Debian's
#     `slurm-wlm` and `munge` (apt-get, when sbatch, slurmctld, slurmd or munged is missing and
#     this runs as root; otherwise it says what to install and goes on: those tests skip).
# Every version is pinned in scripts/test-servers/ (package.json, package-lock.json,
# requirements.txt). Idempotent: a second run returns at once (stamp files named after a hash of
# those pins, so changing a pin reinstalls).
set -euo pipefail
cd "$(dirname "$0")/.."
PINS=scripts/test-servers
PYTHON=${PYTHON:-python3}

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
NPM_STAMP=".tools/.installed-$(hash_of "$PINS/package.json" "$PINS/package-lock.json")"
PY_STAMP=".venv-servers/.installed-$(hash_of "$PINS/requirements.txt")"

npm_ok() {
  [ -f "$NPM_STAMP" ] && [ -x .tools/node_modules/.bin/azurite-blob ] && [ -x .tools/node_modules/.bin/serve ] &&
    [ -f .tools/node_modules/playwright-core/package.json ]
}
chromium_ok() { command -v chromium >/dev/null; }
# slurmctld, slurmd and munged live in /usr/sbin, which a non-root PATH may lack.
slurm_ok() {
  local b
  for b in sbatch slurmctld slurmd munged; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "$b" >/dev/null || return 1
  done
}
py_ok() { [ -f "$PY_STAMP" ] && [ -x .venv-servers/bin/moto_server ] && [ -x .venv-servers/bin/openapi-spec-validator ]; }

if npm_ok && py_ok && chromium_ok && slurm_ok; then
  exit 0
fi

started=$SECONDS

install_npm() {
  command -v npm >/dev/null || { echo "test-servers: npm not found; install Node.js 20 or newer" >&2; return 1; }
  rm -rf .tools
  mkdir -p .tools
  cp "$PINS/package.json" "$PINS/package-lock.json" .tools/
  npm ci --prefix .tools --no-audit --no-fund --loglevel=error
  [ -x .tools/node_modules/.bin/azurite-blob ] && [ -x .tools/node_modules/.bin/serve ] || {
    echo "test-servers: npm ci finished but azurite-blob or serve is missing under .tools/" >&2
    return 1
  }
  touch "$NPM_STAMP"
}

install_py() {
  command -v "$PYTHON" >/dev/null || { echo "test-servers: $PYTHON not found; install Python 3 with pip" >&2; return 1; }
  rm -rf .venv-servers
  "$PYTHON" -m venv .venv-servers
  .venv-servers/bin/python -m pip install --disable-pip-version-check --quiet -r "$PINS/requirements.txt"
  [ -x .venv-servers/bin/moto_server ] || { echo "test-servers: moto installed but moto_server is missing" >&2; return 1; }
  touch "$PY_STAMP"
}

install_chromium() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null ||
      { echo "test-servers: apt-get install chromium failed" >&2; return 1; }
  else
    echo "test-servers: the studio test needs Debian's chromium: sudo apt-get install chromium" >&2
    return 1
  fi
}

# Not fatal: without Slurm only the Slurm tests skip (they say why).
install_slurm() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } >/dev/null ||
      echo "test-servers: apt-get install slurm-wlm munge failed; the Slurm tests will skip" >&2
  else
    echo "test-servers: the Slurm tests need Debian's slurm-wlm and munge (and root):" \
      "sudo apt-get install slurm-wlm munge; without them they skip" >&2
  fi
  return 0
}

# chromium and Slurm both come from apt-get, which holds dpkg's lock: one after the other.
install_debian() {
  local rc=0
  chromium_ok || install_chromium || rc=1
  slurm_ok || install_slurm
  return "$rc"
}

# The installs are mostly network waits: run them side by side.
pids=()
if ! npm_ok; then install_npm & pids+=($!); fi
if ! py_ok; then install_py & pids+=($!); fi
if ! chromium_ok || ! slurm_ok; then install_debian & pids+=($!); fi
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" = 0 ] || { echo "test-servers: install failed (see above)" >&2; exit 1; }

echo "test-servers: Azurite $(.tools/node_modules/.bin/azurite-blob --version 2>/dev/null | tail -n1)," \
  "serve $(node -p 'require("./.tools/node_modules/serve/package.json").version')," \
  "moto $(.venv-servers/bin/python -c 'import moto; print(moto.__version__)')$(slurm_ok && echo ", $(sinfo -V)")" \
  "installed in $((SECONDS - started)) s"

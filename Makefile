# The two commands of the README: `make demo` (set up, score the sample data) and `make test`
# (set up, run every test). Everything they need is installed by scripts/setup.sh (ONNX Runtime)
# and scripts/test-servers.sh (the storage servers the object-store tests start: Azurite, moto,
# serve; pinned in scripts/test-servers/).
CARGO ?= cargo
STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
# Where cargo builds: target/, or CARGO_TARGET_DIR when set (many users set it globally).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BIN := $(TARGET_DIR)/release/batchscore

.PHONY: setup test-setup build demo test check bench bench-compare models clean-out

# What running batchscore needs: the ONNX Runtime library.
setup:
	@scripts/setup.sh

# What the tests need besides: the storage servers.
test-setup: setup
	@scripts/test-servers.sh

build: setup
	$(CARGO) build --release

# Each demo run writes to a new folder: batchscore never writes into an existing output.
demo: build
	$(BIN) score --model models/iris_zipmap.onnx --input sample-data/iris \
	  --output out/demo-iris-$(STAMP) --passthrough id
	@echo; head -n 4 out/demo-iris-$(STAMP)/predictions.csv; echo
	$(BIN) score --model models/digits_mlp.onnx --input sample-data/digits \
	  --output out/demo-digits-$(STAMP) --output-file-name predictions.parquet
	@echo; echo "Outputs: out/demo-iris-$(STAMP) and out/demo-digits-$(STAMP) (predictions + logs/)"

test: test-setup
	$(CARGO) test --all-targets

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Criterion benches and end-to-end runs of the release binary; figures go to BENCHMARKS.md.
bench: build
	scripts/bench.sh

# batchscore vs the raw ONNX Runtime limit, a Python multiprocessing pool and Ray Data on the
# same data and machine; rewrites the comparison section of BENCHMARKS.md (about 15 minutes on
# 2 cores; SCALE=small for a quick look). See benches/compare/run.sh.
bench-compare:
	benches/compare/run.sh

# Regenerate models, sample data and reference predictions (needs PyPI; see models/README.md).
models:
	python3 -m venv .venv-models
	.venv-models/bin/pip install --quiet -r models/requirements.txt
	.venv-models/bin/python models/generate.py

clean-out:
	rm -rf out

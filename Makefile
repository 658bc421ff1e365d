# predlog — the two commands that matter:
#   make demo   run predlog's main job on embedded defaults (no servers)
#   make test   install everything, start the real stack, run the whole suite, stop the stack
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# native/ (the compiled decoder) builds with cargo: rustup's default location, or the system's.
export PATH := $(HOME)/.cargo/bin:$(PATH)
# NannyML, the oracle for CBPE (tests/oracle), in its own venv: its dependencies (lightgbm,
# FLAML, plotly, ...) stay out of predlog's pinned set. Its usage telemetry is always off.
NML_VENV := .venv-nannyml
NML_STAMP := $(NML_VENV)/.installed
NML_CONSTRAINTS := tests/oracle/nannyml-constraints.txt
export NML_DISABLE_USAGE_LOGGING := 1
NATIVE_SRC := native/pyproject.toml native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)

.PHONY: venv nannyml-env demo test unit integration lint stack-up stack-down stack-status lock proto clean \
	deploy-tools deploy-test image image-test chaos

$(STAMP): pyproject.toml constraints.txt $(NATIVE_SRC)
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 1; }
	@command -v cargo >/dev/null || native/ensure-toolchain.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# the compiled decoder fast path (maturin, pinned in native/pyproject.toml, builds it)
	$(BIN)/pip install -q ./native
	touch $@

venv: $(STAMP)

# statsmodels: nannyml 0.13.1 imports it (plots) without declaring it.
$(NML_STAMP): $(NML_CONSTRAINTS)
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 1; }
	test -x $(NML_VENV)/bin/python || $(PY) -m venv $(NML_VENV)
	$(NML_VENV)/bin/pip install -q --upgrade pip
	$(NML_VENV)/bin/pip install -q -c $(NML_CONSTRAINTS) nannyml==0.13.1 statsmodels
	touch $@

nannyml-env: $(NML_STAMP)

demo: venv
	$(BIN)/predlog demo

unit: venv
	$(BIN)/pytest -m "not integration"

# Starts the stack (installing Kafka, Elasticsearch, Prometheus, Alertmanager and
# MLflow where missing), runs every test, and stops the stack even when tests fail.
test: venv deploy-tools nannyml-env
	@set -o pipefail; trap '$(BIN)/predlog stack down' EXIT; \
	  $(BIN)/predlog stack up && $(BIN)/pytest

integration: venv
	$(BIN)/pytest -m integration

# kubectl (kustomize), promtool, amtool for the deploy tests.
deploy-tools:
	deploy/tools/ensure-tools.sh

deploy-test: venv deploy-tools nannyml-env
	$(BIN)/pytest tests/deploy -m "not image and not integration"

# The container image, built with buildah on a debootstrap base (no Docker engine here).
image:
	deploy/tools/ensure-tools.sh --image && deploy/image/build.sh

image-test: venv
	deploy/tools/ensure-tools.sh --image && $(BIN)/pytest tests/deploy -m image

# ruff on everything; mypy on stream/ and sinks/ (its configuration: [tool.mypy] in
# pyproject.toml). Not part of `make test`: a cold mypy run takes 1-3 minutes here.
lint: venv
	$(BIN)/ruff check stream agents sinks tests bench
	$(BIN)/mypy

# The chaos harness on the running stack (`make stack-up` first; not part of `make test`):
# 1,000,000 events with labels through two workers under 10 SIGKILLs and broker,
# Elasticsearch and MLflow outages, compared with `predlog replay` (bench/chaos.py).
chaos: venv
	$(BIN)/python bench/chaos.py --events 1000000 --kills 10

stack-up: venv
	$(BIN)/predlog stack up
stack-down: venv
	$(BIN)/predlog stack down
stack-status: venv
	$(BIN)/predlog stack status

lock: venv
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^predlog'; } > constraints.tmp
	mv constraints.tmp constraints.txt

proto: venv
	cd stream/decode/oip && ../../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. inference.proto

clean:
	rm -rf $(VENV) $(NML_VENV) .pytest_cache .ruff_cache native/target

# predlog — the two commands that matter:
#   make demo   run predlog's main job on embedded defaults (no servers)
#   make test   install everything, start the real stack, run the whole suite, stop the stack
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test unit integration lint stack-up stack-down stack-status lock proto clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/predlog replay

unit: venv
	$(BIN)/pytest -m "not integration"

# Starts the stack (installing Kafka, Elasticsearch, Prometheus, Alertmanager and
# MLflow where missing), runs every test, and stops the stack even when tests fail.
test: venv
	@set -o pipefail; trap '$(BIN)/predlog stack down' EXIT; \
	  $(BIN)/predlog stack up && $(BIN)/pytest

integration: venv
	$(BIN)/pytest -m integration

lint: venv
	$(BIN)/ruff check stream agents sinks tests

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
	rm -rf $(VENV) .pytest_cache .ruff_cache

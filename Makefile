# Two commands on a fresh machine: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1

.PHONY: help setup demo test test-team test-fast lint format bench gpu-check gpu-wheels data clean lock

help:
	@echo "make demo   - set up, materialise the default dataset, run the pipeline once"
	@echo "make test   - set up and run the test suite"
	@echo "make lint   - ruff, ruff format --check, mypy"
	@echo "make bench  - benchmarks into benchmarks/results/ and benchmarks/REPORT.md"

# torch goes first and pinned: a bare `torch` requirement would pull several GB of CUDA wheels.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,transformer,team]"
	touch $@

setup: $(STAMP)

# KServe's client for the /v2 tests, in its own environment: its pins conflict with ours.
KSERVE_VENV := .venvs/kserve
KSERVE_STAMP := $(KSERVE_VENV)/.installed-stamp
$(KSERVE_STAMP): tests/integration/kserve-requirements.txt
	rm -rf $(KSERVE_VENV) && $(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/python -m pip install -q -r tests/integration/kserve-requirements.txt
	touch $@

data: $(STAMP)
	@test -d data || $(BIN)/flywheel data init --path data

demo: data
	@test -d .dvc || (echo "not a DVC repository: run from the flywheel checkout" && exit 1)
	$(BIN)/flywheel run

test: $(STAMP) $(KSERVE_STAMP)
	FLYWHEEL_KSERVE_PYTHON=$(abspath $(KSERVE_VENV))/bin/python $(BIN)/python -m pytest

# Team mode alone (PostgreSQL 15, two workers on the object store, DDP); `make test` runs
# them too.
test-team: $(STAMP)
	$(BIN)/python -m pytest -m team

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src flows tests benchmarks
	$(BIN)/ruff format --check src flows tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src flows tests benchmarks
	$(BIN)/ruff check --fix src flows tests benchmarks

bench: data
	@$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python -m benchmarks.run_all

# The GPU check runs here on the CPU (every GPU part skipped with its reason) and, as one
# command, on a lent GPU machine: see benchmarks/gpu_check/__init__.py.
gpu-check: $(STAMP)
	$(BIN)/python -m benchmarks.gpu_check --out benchmarks/results/gpu_check

# Python 3.12 wheels of what the GPU machine's image lacks, for the device call to carry.
gpu-wheels: $(STAMP)
	grep -v '^#' benchmarks/gpu_check/carry.txt | xargs $(BIN)/python -m pip download -q \
	  --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl

clean:
	rm -rf artifacts registry .flywheel .prefect feedback

# Re-pin after changing dependencies; torch's local "+cpu" label is dropped so the pin
# also matches the same release elsewhere.
lock: $(STAMP)
	(echo "# Pinned versions tested with this project (pip install -c constraints.txt). Regenerate with 'make lock'."; \
	 $(BIN)/python -m pip freeze --exclude-editable | grep -v '^flywheel' | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/') > constraints.txt

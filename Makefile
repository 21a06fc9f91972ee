# BreachBench: `make run` runs the default suite, `make test` runs every test, `make lint` runs
# ruff (lint and format check) and mypy. All create .venv once (Python 3.11+) and install the
# project with its test, siem, dask and lint extras.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PERF_OUT ?= .benchmarks/perf.json

BASE ?= main
THRESHOLD ?= 0.15
# make test's pytest-xdist workers (one per core with auto); TEST_WORKERS=0 runs in one process.
# --dist loadgroup keeps the tests of one module fixture on one worker; --no-loadscope-reorder hands
# the groups out in collection order, which tests/conftest.py sets longest first on the workers.
TEST_WORKERS ?= auto

.PHONY: run test lint perf perf-compare setup clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "BreachBench needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,siem,dask,lint]'
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/breachbench run configs/default.toml --out runs/default --workers 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# the same checks as .pre-commit-config.yaml; settings in pyproject.toml ([tool.ruff], [tool.mypy])
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

perf: $(STAMP)
	@mkdir -p $(dir $(PERF_OUT))
	$(BIN)/python -m pytest benchmarks -q --benchmark-only --benchmark-json=$(PERF_OUT)
	@echo "pytest-benchmark JSON: $(PERF_OUT)"

# head (the working tree) against BASE, side by side in this job; fails on a slowdown > THRESHOLD
perf-compare: $(STAMP)
	$(BIN)/python benchmarks/compare.py --base $(BASE) --threshold $(THRESHOLD)

clean:
	rm -rf $(VENV) runs .benchmarks .perf .pytest_cache .mypy_cache .ruff_cache *.egg-info

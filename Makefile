# Two commands do all set-up on a fresh machine:
#   make demo   -- runs the main job on embedded defaults (CPU)
#   make test   -- runs the test suite (fast tests; `make test-all` adds the slow end-to-end ones)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKDIR ?= workdir/demo
DEMO_CONFIG ?= configs/demo.py
PYTEST_ARGS ?=

.PHONY: demo test test-slow test-long test-all venv clean

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/python -m lrm_jax.main --config=$(DEMO_CONFIG) --workdir=$(WORKDIR)

test: venv
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

test-slow: venv
	$(BIN)/python -m pytest -q -m "slow and not long" --durations=0 $(PYTEST_ARGS) tests

test-long: venv
	$(BIN)/python -m pytest -q -m long $(PYTEST_ARGS) tests

test-all: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests

clean:
	rm -rf $(VENV) workdir .pytest_cache

# The front door: `make train` and `make test` set up .venv on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/ddpg_pendulum.yaml
TORCH := torch==2.13.0

.PHONY: train test test-all lint format bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch pulls several GB of CUDA packages
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

train: $(VENV)/.installed
	$(PY) -m lit_rl fit --config $(CONFIG)

test: $(VENV)/.installed
	$(PY) -m ruff check lit_rl tests bench
	$(PY) -m pytest -m "not slow" tests

test-all: $(VENV)/.installed
	$(PY) -m pytest tests

lint: $(VENV)/.installed
	$(PY) -m ruff check lit_rl tests bench
	$(PY) -m ruff format --check lit_rl tests bench

format: $(VENV)/.installed
	$(PY) -m ruff format lit_rl tests bench
	$(PY) -m ruff check --fix lit_rl tests bench

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/run.py

clean:
	rm -rf runs bench_runs .pytest_cache .ruff_cache

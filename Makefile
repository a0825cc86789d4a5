# The front door: `make train` and `make test` set up .venv on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/ddpg_pendulum.yaml
TORCH := torch==2.13.0

.PHONY: train test test-all lint format bench bench-quick clean osmesa

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch pulls several GB of CUDA packages
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# OSMesa: offscreen MuJoCo rendering for record_video on machines without a GPU (tests/test_video.py).
# Idempotent: installs libosmesa6 only when it is missing and apt-get can be used (root).
osmesa: $(VENV)/.installed
	@if $(PY) -c "import ctypes.util, sys; sys.exit(ctypes.util.find_library('OSMesa') is None)"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing libosmesa6 (offscreen rendering for record_video)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null \
			|| echo "apt-get install libosmesa6 failed: MuJoCo video tests will be skipped"; \
	else \
		echo "libOSMesa is missing and apt-get cannot be used here (not root, or no apt-get): MuJoCo video" \
			"tests will be skipped. Install it with: sudo apt-get install libosmesa6"; \
	fi

train: $(VENV)/.installed
	$(PY) -m lit_rl fit --config $(CONFIG)

test: $(VENV)/.installed osmesa
	$(PY) -m ruff check lit_rl tests bench
	$(PY) -m pytest -m "not slow" tests

test-all: $(VENV)/.installed osmesa
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

# The regression check: the same benchmarks, one seed, short budgets (under 10 minutes on 2 cores).
bench-quick: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/run.py --quick

clean:
	rm -rf runs bench_runs .pytest_cache .ruff_cache

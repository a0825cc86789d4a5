# The front door: `make train` and `make test` set up .venv on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/ddpg_pendulum.yaml
TORCH := torch==2.13.0

.PHONY: train test test-all lint format bench bench-quick bench-learning bench-walk bench-probes deprl-fixture deprl-golden bench-deprl myosuite-tasks clean osmesa

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

# The tests spend most of their time in one process at a time (a CLI run, its env workers), so they
# run in TEST_WORKERS pytest processes, a test file each (TEST_WORKERS=8 on a bigger machine), with
# one torch thread per process: torch's idle threads spin on the cores the other processes need.
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile
test: $(VENV)/.installed osmesa
	$(PY) -m ruff check lit_rl tests bench
	$(PYTEST) -m "not slow" tests

test-all: $(VENV)/.installed osmesa
	$(PYTEST) tests

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

# CrossQ against sb3-contrib's CrossQ (rl-zoo settings) on Pendulum-v1 and HalfCheetah-v5, seeds 0-2, one torch thread,
# into BENCHMARKS.md's CrossQ section: about 4 hours beside other jobs, an estimated 3 alone (not part of `make bench`),
# a seed at a time in ~/lit_rl_runs/crossq; started again it skips the seeds kept in bench/results/crossq/.
.PHONY: bench-crossq
bench-crossq: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	OMP_NUM_THREADS=1 $(PY) bench/run.py --only crossq

# DEP-MPO myoLegWalk against deprl's published curve, with three ablations: about 4 hours on 2 cores
# (bench/myoleg_learning.py; runs in ~/lit_rl_runs/myoleg_learning, finished ones skipped when it is started again).
bench-learning: $(VENV)/.installed
	$(PY) bench/myoleg_learning.py

# The walk: deprl's published myoLegWalk protocol (100 envs as 2 x 50) until 400,000 steps after its first
# full-length test episode (or 10 M), run outside the checkout in WALK_DIR; started again, it resumes.
# About 6 hours on 2 cores when alone; its logs go to bench/results/myoleg_walk/ every minute. Alone, leave torch its
# 2 threads (the learner is the bottleneck); beside other jobs run it with OMP_NUM_THREADS=1 (idle torch threads spin
# on busy cores: 31 env steps/s against 150 with one thread, measured beside a test suite).
WALK_DIR ?= $(HOME)/lit_rl_runs/myoleg_walk
bench-walk: $(VENV)/.installed osmesa
	$(PY) bench/myoleg_learning.py --runs dep_mpo:0 --steps 10000000 --save 200000 --parallel 2 --sequential 50 \
		--after_full_length 400000 --out $(WALK_DIR) --section myoleg-walk-table \
		--compare bench/results/myoleg_walk_clipped_sigmoid/dep_mpo_clipped_sigmoid_seed0 \
		bench/results/myoleg_walk_lost/dep_mpo_lost_home_seed0

# 300,000-step learning probes of the MyoSuite DEP-MPO configs (bench/myosuite_probes.py), in ~/lit_rl_runs:
# roughly an hour a probe on 2 cores, 10 probes (Soccer, TableTennis longer); started again, it resumes.
bench-probes: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) bench/myosuite_probes.py

# deprl itself (python -m deprl.main, in a throwaway venv with the MyoSuite 3 shim) and lit_rl side by side
# on myoLegWalk-v0 (bench/deprl_side_by_side.py): several hours on 2 cores; runs in ~/lit_rl_runs/deprl_side_by_side,
# interrupted ones resume.
# DEPRL_SOURCE as for deprl-golden, e.g. make bench-deprl DEPRL_SOURCE=../shared/reference/deprl-790df86.tar.gz
bench-deprl: $(VENV)/.installed
	$(PY) bench/deprl_side_by_side.py --deprl-source $(DEPRL_SOURCE)

# The exploration comparison on myoLegWalk-v0 (bench/exploration_myoleg.py): DEP-MPO, DEP-CrossQ, DEP-SAC, Lattice-SAC,
# pink-noise SAC and plain SAC in bench-deprl's shrunk protocol, seed 0 each, then seed 1 of the two best; runs in
# ~/lit_rl_runs/exploration_myoleg, resumed when started again, logs kept in bench/results/exploration_myoleg/.
# Roughly 3.5-4 hours on 2 cores alone (estimated, not measured); beside other jobs: OMP_NUM_THREADS=1 make ...
.PHONY: bench-exploration
bench-exploration: $(VENV)/.installed
	$(PY) bench/exploration_myoleg.py

# docs/myosuite_tasks.md, the compatibility table: every env id MyoSuite registers through lit_rl's env path
# (bench/myosuite_tasks.py), each in a process of its own with about 1 s of random-action stepping: about an hour
# on 2 cores (TableTennis alone takes 45 s to make). NOTE="..." adds a sentence to its header (what shared the machine).
myosuite-tasks: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) bench/myosuite_tasks.py --out docs/myosuite_tasks.md --note "$(NOTE)"

# Regenerates tests/fixtures/deprl_dep/deprl_dep.npz: deprl 0.3.2's own DEP on recorded muscle states.
# deprl needs gym 0.13 and numpy < 2, so it gets a throwaway venv of its own.
DEPRL_VENV ?= /tmp/lit_rl_deprl_venv
deprl-fixture: $(VENV)/.installed
	test -x $(DEPRL_VENV)/bin/python || $(PYTHON) -m venv $(DEPRL_VENV)
	$(DEPRL_VENV)/bin/pip install --quiet $(TORCH)
	$(DEPRL_VENV)/bin/pip install --quiet --no-deps deprl==0.3.2 gym==0.13.0
	$(DEPRL_VENV)/bin/pip install --quiet six "numpy<2"
	$(PY) tests/fixtures/deprl_dep/make_fixture.py inputs
	$(DEPRL_VENV)/bin/python tests/fixtures/deprl_dep/make_fixture.py actions

# Regenerates tests/fixtures/deprl_head/{mpo,env_path,replay}.npz: deprl's current source (GitHub HEAD 790df86,
# gymnasium-based) on MyoSuite 3.0, patched at import by tests/fixtures/deprl_head/shim.py, in a throwaway
# venv. DEPRL_SOURCE: the GitHub archive (default) or a local tarball of it, e.g.
#   make deprl-golden DEPRL_SOURCE=../shared/reference/deprl-790df86.tar.gz
# replay.npz is deprl's replay Buffer fed env_path.npz's transitions, so it is made after it.
DEPRL_SOURCE ?= https://github.com/martius-lab/depRL/archive/790df86.tar.gz
DEPRL_HEAD_VENV ?= /tmp/lit_rl_deprl_head_venv
deprl-golden: $(VENV)/.installed
	$(PY) tests/fixtures/deprl_head/shim.py $(DEPRL_HEAD_VENV) --source $(DEPRL_SOURCE)
	OMP_NUM_THREADS=1 $(DEPRL_HEAD_VENV)/bin/python tests/fixtures/deprl_head/make_mpo_fixture.py \
		--deprl-source $(DEPRL_HEAD_VENV)/deprl-src
	OMP_NUM_THREADS=1 $(DEPRL_HEAD_VENV)/bin/python tests/fixtures/deprl_head/make_env_fixture.py \
		--deprl-source $(DEPRL_HEAD_VENV)/deprl-src
	OMP_NUM_THREADS=1 $(DEPRL_HEAD_VENV)/bin/python tests/fixtures/deprl_head/make_replay_fixture.py \
		--deprl-source $(DEPRL_HEAD_VENV)/deprl-src

# Regenerate the golden fixtures of tests/test_crossq.py (sb3-contrib's CrossQ) and tests/test_lattice.py (the Lattice
# reference's distributions, amathislab/lattice 846d02f, which imports stable-baselines3), in one throwaway venv with
# stable-baselines3 and sb3-contrib pinned. LATTICE_SOURCE: the reference's tarball (or unpacked directory).
SB3_VENV ?= /tmp/lit_rl_sb3_venv
SB3_VERSION := 2.9.2
LATTICE_SOURCE ?= ../shared/reference/lattice-846d02f.tar.gz
.PHONY: sb3-venv crossq-golden lattice-golden
sb3-venv:
	test -x $(SB3_VENV)/bin/python || $(PYTHON) -m venv $(SB3_VENV)
	# torch first, pinned: an unpinned torch pulls several GB of CUDA packages
	$(SB3_VENV)/bin/pip install --quiet $(TORCH)
	$(SB3_VENV)/bin/pip install --quiet stable-baselines3==$(SB3_VERSION) sb3-contrib==$(SB3_VERSION)
crossq-golden: sb3-venv
	OMP_NUM_THREADS=1 $(SB3_VENV)/bin/python tests/fixtures/crossq/make_fixture.py
lattice-golden: sb3-venv
	OMP_NUM_THREADS=1 $(SB3_VENV)/bin/python tests/fixtures/lattice/make_fixture.py --lattice-source $(LATTICE_SOURCE)

clean:
	rm -rf runs bench_runs .pytest_cache .ruff_cache

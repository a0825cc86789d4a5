import contextlib
import csv
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke" / "ddpg_pendulum.yaml"
DATA_KEY = "RolloutDataModule"  # the DataModule's state in a checkpoint


def cli_env() -> dict[str, str]:
    """The environment of a ``python -m lit_rl`` subprocess: W&B offline and quiet, this checkout
    importable, and its own W&B service: a service a test started in the pytest process (an
    in-process ``lit_rl.api.train``) sets ``WANDB_SERVICE``, and a run killed while connected to it
    would keep its run id in use for the resumed run."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    return {**env, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m lit_rl`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "lit_rl", *args],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"
    return result


def load_ckpt(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


def logged_rows(directory: Path) -> list[dict]:
    """The rows of the one CSVLogger ``metrics.csv`` under ``directory`` (cells as written)."""
    (path,) = directory.glob("**/metrics.csv")
    with open(path) as f:
        return list(csv.DictReader(f))


def last_logged(rows: list[dict], name: str) -> float:
    return [float(r[name]) for r in rows if r.get(name)][-1]


@pytest.fixture
def smoke_config() -> Path:
    return SMOKE


# Left out of the check below: caches, the venv, benchmark output, MuJoCo's warning log (written
# to the working directory, ignored on purpose), and hand-edited sources (changed during a session).
UNWATCHED_NAMES = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "bench_runs", "MUJOCO_LOG.TXT"}
UNWATCHED_SUFFIXES = (".egg-info", ".py", ".md")


def untracked_files() -> dict[str, int] | None:
    """{path: mtime} of the checkout's files git does not track, and {folder/: 0} of its folders
    (a new one counts, a changed one not: None outside a git checkout)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    except OSError:  # no git
        return None
    if listed.returncode != 0:
        return None
    tracked = set(listed.stdout.split("\0"))
    files = {}
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in UNWATCHED_NAMES and not d.endswith(UNWATCHED_SUFFIXES)]
        files.update({os.path.relpath(os.path.join(folder, d), ROOT) + "/": 0 for d in dirs})
        for name in names:
            path = os.path.relpath(os.path.join(folder, name), ROOT)
            if name not in UNWATCHED_NAMES and not name.endswith(UNWATCHED_SUFFIXES) and path not in tracked:
                with contextlib.suppress(FileNotFoundError):  # deleted since listed (a temporary file)
                    files[path] = os.stat(os.path.join(folder, name)).st_mtime_ns
    return files


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean():
    """Tests write into tmp dirs only: a CLI run without ``--working_dir`` lands in ``runs/`` of the
    checkout (cwd is its root), as ``validate`` did here unnoticed. Fails the session on CI, where
    nothing else runs in the checkout; elsewhere (a training run of your own may be writing
    ``runs/`` meanwhile) it warns."""
    before = untracked_files()
    yield
    if before is None:
        return
    written = sorted(path for path, mtime in untracked_files().items() if before.get(path) != mtime)
    message = f"the tests wrote into the checkout (pass --working_dir tmp_path to CLI runs): {written[:20]}"
    if written and os.environ.get("CI"):
        pytest.fail(message)
    if written:
        warnings.warn(f"{message}, or something else ran in it meanwhile", stacklevel=1)

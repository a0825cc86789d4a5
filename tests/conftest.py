import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke" / "ddpg_pendulum.yaml"
DATA_KEY = "RolloutDataModule"  # the DataModule's state in a checkpoint


def cli_env() -> dict[str, str]:
    """The environment of a ``python -m lit_rl`` subprocess: W&B offline and quiet, this checkout importable."""
    return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}


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

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke" / "ddpg_pendulum.yaml"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m lit_rl`` in a subprocess, as a user would."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "lit_rl", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"
    return result


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

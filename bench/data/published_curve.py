"""Writes deprl_myolegwalk_curve.csv from deprl's own log of its published myoLegWalk run
(``myosuite/agents/baselines_DEPRL/myoLegWalk_20230514/myoLeg/log.csv``, shipped in MyoSuite's
wheels 1.7.0 to 2.x; Apache-2.0): every 200,000-step epoch to 2e7 env steps, the episode
statistics and MPO's own (critic Q and loss, E-step temperature), rounded.

    python bench/data/published_curve.py [--log path/to/log.csv]

Without ``--log`` it downloads MyoSuite 1.7.0's wheel from PyPI (``pip download``) into a
temporary directory and reads the log from there.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).with_name("deprl_myolegwalk_curve.csv")
MEMBER = "myosuite/agents/baselines_DEPRL/myoLegWalk_20230514/myoLeg/log.csv"
LAST_STEP = 20_000_000
COLUMNS = {  # ours: (deprl's column, decimals or None for 4 significant digits)
    "env_steps": ("train/steps", 0),
    "train_episode_length": ("train/episode_length/mean", 1),
    "train_episode_return": ("train/episode_score/mean", 1),
    "test_episode_length_mean": ("test/episode_length/mean", 1),
    "test_episode_length_max": ("test/episode_length/max", 0),
    "test_episode_return": ("test/episode_score/mean", 1),
    "wall_s": ("train/seconds", 0),
    "steps_per_s": ("train/steps_per_second", 0),
    "critic_q": ("critic/q", None),
    "critic_loss": ("critic/loss", None),
    "temperature": ("actor/temperature", None),
}


def wheel_log() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "myosuite==1.7.0", "-d", tmp]
        subprocess.run(command, check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(MEMBER).decode()


def rounded(text: str, decimals: int | None) -> str:
    if text in ("", "None"):  # MPO's statistics before its first update
        return ""
    value = float(text)
    if decimals is None:
        return f"{value:.4g}"
    return f"{round(value):d}" if decimals == 0 else f"{value:.{decimals}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, help="deprl's log.csv (default: from MyoSuite 1.7.0's wheel)")
    args = parser.parse_args()
    text = args.log.read_text() if args.log else wheel_log()
    rows = [r for r in csv.DictReader(io.StringIO(text)) if float(r["train/steps"]) <= LAST_STEP]
    with open(OUT, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(rounded(row[theirs], decimals) for theirs, decimals in COLUMNS.values())
    print(f"{OUT}: {len(rows)} epochs")


if __name__ == "__main__":
    main()

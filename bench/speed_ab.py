"""Env steps/s of two checkouts on the same workloads, runs alternating (before, after, before,
...) so that other load on the machine hits both alike: the check that a refactor left the speed
alone. Workloads: DEP-MPO on myoLegWalk-v0 (2 workers x 10 envs, hidden 1024, float32, 12,000
steps, the first 6,000 DEP-only) and DDPG on Pendulum-v1 (one env, an update per env step,
4,000 steps). Each is timed by ``fit_clock.FitClock`` (training only, no start-up).

    git worktree add /tmp/before <revision>
    python bench/speed_ab.py /tmp/before [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {
    "DEP-MPO myoLegWalk-v0, 2 x 10 envs, float32": [
        "--config", "configs/dep_mpo_myolegwalk.yaml", "--data.init_args.parallel", "2",
        "--data.init_args.sequential", "10", "--data.init_args.total_steps", "12000",
        "--data.init_args.epoch_steps", "12000", "--data.init_args.test_episodes", "0",
        "--data.init_args.replay.steps_before_batches", "6000", "--data.init_args.replay.size", "100000",
    ],
    "DDPG Pendulum-v1, 1 env": [
        "--config", "configs/ddpg_pendulum.yaml", "--data.init_args.total_steps", "4000",
        "--data.init_args.epoch_steps", "4000", "--data.init_args.test_episodes", "0",
        "--model.init_args.random_steps", "500", "--data.init_args.replay.steps_before_batches", "500",
    ],
}  # fmt: skip


def rate(tree: Path, args: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clock.json"
        clock = json.dumps({"class_path": "fit_clock.FitClock", "init_args": {"out": str(out)}})
        command = [sys.executable, "-m", "lit_rl", "fit", *args, "--working_dir", tmp, "--name", "ab"]
        command += ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
        command += ["--trainer.enable_checkpointing", "false", f"--trainer.callbacks+={clock}"]
        env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT / 'bench'}", "WANDB_MODE": "offline"}
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{tree}: {done.stderr[-3000:]}")
        clocked = json.loads(out.read_text())
        return clocked["env_steps"] / clocked["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="a checkout of the earlier revision")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": ROOT}
    rates = {(name, side): [] for name in WORKLOADS for side in trees}
    for _ in range(args.repeats):
        for name, workload in WORKLOADS.items():
            for side, tree in trees.items():
                rates[name, side].append(rate(tree, workload))
                print(f"{name} | {side} | {rates[name, side][-1]:.1f}", flush=True)
    print("| workload | before | after | after / before |\n|---|---|---|---|")
    for name in WORKLOADS:
        before, after = (statistics.median(rates[name, side]) for side in trees)
        print(f"| {name} | {before:.1f} | {after:.1f} | {after / before:.3f} |")


if __name__ == "__main__":
    main()

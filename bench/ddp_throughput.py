"""Environment steps per second with 1 and 2 training processes (DDP over gloo, CPU), through the
real CLI (``--trainer.devices N``): DDPG on Pendulum-v1 and DEP-MPO on myoLegWalk-v0.

Each process keeps the config's envs (``parallel x sequential`` per process), so 2 processes
step twice as many envs; every count (total_steps, batch_size, ...) stays global. Evaluation,
checkpoints and logging are off. Rewrites the DDP table in BENCHMARKS.md.

    python bench/ddp_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from summary import machine_line, rewrite_section, section

ROOT = Path(__file__).resolve().parents[1]

# name: (config, overrides, total steps full/quick)
WORKLOADS = {
    "DDPG Pendulum-v1, 1 env per process, 50 updates of 256 every 50 steps": (
        "configs/ddpg_pendulum.yaml",
        ["--data.init_args.epoch_steps", "{total}", "--data.init_args.save_steps", "{total}"],
        (20_000, 6_000),
    ),
    "DEP-MPO myoLegWalk-v0, 10 envs per process, hidden 1024, DEP then 30 batches of 256 every 1,000 steps": (
        "configs/dep_mpo_myolegwalk.yaml",
        [
            "--data.init_args.parallel", "1", "--data.init_args.sequential", "10",
            "--data.init_args.epoch_steps", "{total}", "--data.init_args.save_steps", "{total}",
            "--data.init_args.replay.steps_before_batches", "{half}",
            "--trainer.precision", "bf16-mixed",
        ],
        (20_000, 6_000),
    ),
}  # fmt: skip


def rate(config: str, overrides: list[str], total: int, processes: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clock.json"
        clock = {"class_path": "fit_clock.FitClock", "init_args": {"out": str(out)}}
        fields = {"total": total, "half": total // 2}
        args = [
            sys.executable, "-m", "lit_rl", "fit", "--config", config, "--working_dir", tmp, "--name", "bench",
            "--trainer.accelerator", "cpu", "--trainer.devices", str(processes), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.enable_checkpointing", "false", "--data.init_args.test_episodes", "0",
            "--data.init_args.total_steps", str(total), "--trainer.callbacks+=" + json.dumps(clock),
            *(arg.format(**fields) for arg in overrides),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")])}
        subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text())
    return result["env_steps"] / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (make bench-quick)")
    args = parser.parse_args()
    header = ["| workload | 1 process | 2 processes | 2 / 1 |", "|---|---|---|---|"]
    lines = [machine_line("mujoco", "myosuite"), "", *header]
    for name, (config, overrides, totals) in WORKLOADS.items():
        total = totals[args.quick]
        one, two = (rate(config, overrides, total, n) for n in (1, 2))
        lines.append(f"| {name} ({total:,} steps) | {one:,.0f} | {two:,.0f} | {two / one:.2f} |")
        print(lines[-1], flush=True)
    report = "\n".join(lines)
    print(report)
    rewrite_section(section("ddp-table", args.quick), report)


if __name__ == "__main__":
    main()

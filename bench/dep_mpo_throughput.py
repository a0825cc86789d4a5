"""DEP-MPO throughput on myoLegWalk-v0 with 2 workers x 10 envs (DEP mode 3, hidden 1024,
return_steps 3), the issue-3 workload, all in one run so the numbers compare as ratios:

(a) raw simulator rate of the same 20 envs, random actions, no learning;
(b) collection rate with DEP acting and no updates (10,000 steps, all before
    ``steps_before_batches``), through the real CLI and DataModule;
(c) end to end: 20,000 steps, the first 10,000 DEP-only, then 30 batches of 256 every 1,000
    steps, no evaluation; in float32 and in bf16-mixed;
(d) one DEP controller step for 200 envs x 80 muscles (tau 40), 1 and 2 threads.

Rewrites the throughput table in BENCHMARKS.md.

    python bench/dep_mpo_throughput.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from dep_controller import MYOLEG as MYOLEG_DEP
from dep_controller import ms_per_step
from env_throughput import measure
from lightning.pytorch import Callback
from summary import rewrite_section

from lit_rl.cli import LitRLCLI

CONFIG = "configs/dep_mpo_myolegwalk.yaml"


class Clock(Callback):
    def on_fit_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


def fit_rate(total_steps: int, steps_before_batches: int, precision: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "--config", CONFIG, "--working_dir", tmp, "--name", "bench", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.enable_checkpointing", "false", "--trainer.precision", precision,
            "--data.init_args.parallel", "2", "--data.init_args.sequential", "10",
            "--data.init_args.total_steps", str(total_steps), "--data.init_args.epoch_steps", str(total_steps),
            "--data.init_args.test_episodes", "0",
            "--data.init_args.replay.steps_before_batches", str(steps_before_batches),
        ]  # fmt: skip
        cli = LitRLCLI(args=args, run=False)
        clock = Clock()
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, cli.datamodule)
    return total_steps / clock.seconds


def dep_step_ms(threads: int) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return ms_per_step(MYOLEG_DEP, envs=200, muscles=80, steps=300, device="cpu")
    finally:
        torch.set_num_threads(before)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    raw = measure(2, 10, steps=300, muscle_states=True)
    collect = fit_rate(10_000, 10_000_000, "32-true")
    float32 = fit_rate(20_000, 10_000, "32-true")
    bf16 = fit_rate(20_000, 10_000, "bf16-mixed")
    dep_1, dep_2 = dep_step_ms(1), dep_step_ms(2)
    lines = [
        "| measurement | env steps/s | target |",
        "|---|---|---|",
        f"| (a) raw simulator, random actions, muscle states on | {raw:,.0f} | |",
        f"| (b) collection, DEP acting, no updates | {collect:,.0f} ({collect / raw:.0%} of a) | >= 75% of a |",
        f"| (c) end to end, float32 | {float32:,.0f} | >= 465 |",
        f"| (c) end to end, bf16-mixed | {bf16:,.0f} | >= 465 |",
        "",
        f"DEP controller step, 200 envs x 80 muscles, tau 40: **{dep_1:.2f} ms** (1 thread), "
        f"**{dep_2:.2f} ms** (2 threads); target under 2 ms.",
        "",
        f"Measured {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, torch {torch.__version__}, one run.",
    ]  # fmt: skip
    report = "\n".join(lines)
    print(report)
    rewrite_section("throughput-table", report)


if __name__ == "__main__":
    main()

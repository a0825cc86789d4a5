"""DEP-MPO throughput on myoLegWalk-v0 with 2 workers x 10 envs (DEP mode 3, hidden 1024,
return_steps 3), the issue-3 workload, all in one run so the numbers compare as ratios:

(a) raw simulator rate of the same 20 envs, random actions, no learning;
(b) collection rate with DEP acting and no updates (10,000 steps, all before
    ``steps_before_batches``), through the real CLI and DataModule;
(c) end to end: 20,000 steps, the first 10,000 DEP-only, then 30 batches of 256 every 1,000
    steps, no evaluation; in float32 and in bf16-mixed;
(d) one DEP controller step for 200 envs x 80 muscles (tau 40), 1 and 2 threads.

(a) and (b) swing with whatever else runs on the machine, so they are measured interleaved
(a, b, a, b, ...) and reported as median (min–max); (b)'s share of (a) is the ratio of medians.
Rewrites the throughput table in BENCHMARKS.md. ``--quick``: the shorter ``QUICK`` budgets (the
same DEP-only/MPO mix in (c)), written to the quick-throughput-table section.

    python bench/dep_mpo_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass

import torch
from dep_controller import MYOLEG as MYOLEG_DEP
from dep_controller import step_ms
from env_throughput import measure
from fit_clock import FitClock
from summary import machine_line, rewrite_section, section, spread

from lit_rl.commands.cli import LitRLCLI

CONFIG = "configs/dep_mpo_myolegwalk.yaml"


@dataclass(frozen=True)
class Budget:
    repeats: int  # interleaved (a), (b) pairs
    raw_steps: int  # (a): vector steps of 20 envs
    collect_steps: int  # (b): env steps
    fit_steps: int  # (c): env steps, the first half DEP-only
    dep_steps: int  # (d): timed controller steps per thread count


FULL = Budget(repeats=3, raw_steps=300, collect_steps=10_000, fit_steps=20_000, dep_steps=300)
QUICK = Budget(repeats=2, raw_steps=150, collect_steps=4_000, fit_steps=6_000, dep_steps=100)


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
        clock = FitClock()
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, cli.datamodule)
    return total_steps / clock.seconds


def dep_step_ms(threads: int, steps: int) -> list[float]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return step_ms(MYOLEG_DEP, envs=200, muscles=80, steps=steps, device="cpu")
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="QUICK budgets, the quick-throughput-table section")
    args = parser.parse_args()
    budget = QUICK if args.quick else FULL
    raw, collect = [], []
    for _ in range(budget.repeats):
        raw.append(measure(2, 10, steps=budget.raw_steps, muscle_states=True))
        collect.append(fit_rate(budget.collect_steps, 10_000_000, "32-true"))
    float32 = fit_rate(budget.fit_steps, budget.fit_steps // 2, "32-true")
    bf16 = fit_rate(budget.fit_steps, budget.fit_steps // 2, "bf16-mixed")
    dep_1, dep_2 = dep_step_ms(1, budget.dep_steps), dep_step_ms(2, budget.dep_steps)
    share = statistics.median(collect) / statistics.median(raw)
    rate, ms = (lambda v: f"{v:,.0f}"), (lambda v: f"{v:.2f}")
    lines = [
        machine_line("mujoco", "myosuite"),
        "",
        "| measurement | env steps/s | target |",
        "|---|---|---|",
        f"| (a) raw simulator, random actions, muscle states on | {spread(raw, rate)} | |",
        f"| (b) collection, DEP acting, no updates | {spread(collect, rate)} ({share:.0%} of a) | >= 75% of a |",
        f"| (c) end to end, float32 | {rate(float32)} | >= 465 |",
        f"| (c) end to end, bf16-mixed | {rate(bf16)} | >= 465 |",
        "",
        f"DEP controller step, 200 envs x 80 muscles, tau 40: **{spread(dep_1, ms)} ms** (1 thread), "
        f"**{spread(dep_2, ms)} ms** (2 threads), median (min–max) of {budget.dep_steps} steps; "
        "target: a median under 2 ms.",
        "",
        f"(a) and (b): median (min–max) of {budget.repeats} runs each, interleaved ({budget.raw_steps} vector "
        f"steps, {budget.collect_steps:,} env steps); (b)'s share of (a) is the ratio of medians. (c): one run "
        f"each of {budget.fit_steps:,} steps, the first {budget.fit_steps // 2:,} DEP-only.",
    ]  # fmt: skip
    report = "\n".join(lines)
    print(report)
    rewrite_section(section("throughput-table", args.quick), report)


if __name__ == "__main__":
    main()

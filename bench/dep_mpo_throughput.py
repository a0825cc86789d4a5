"""DEP-MPO throughput on myoLegWalk-v0 with 2 workers x 10 envs (DEP mode 3, hidden 1024,
return_steps 3), the issue-3 workload, in one process run:

(a) raw simulator rate of the same 20 envs, random actions, no learning;
(b) collection rate with DEP acting and no updates (10,000 steps, all before
    ``steps_before_batches``), through the real CLI and DataModule;
(c) end to end: 20,000 steps, the first 10,000 DEP-only, then 30 batches of 256 every 1,000
    steps, no evaluation.

    python bench/dep_mpo_throughput.py [--precision 32-true]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from env_throughput import measure
from lightning.pytorch import Callback

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="32-true", help="Lightning precision, e.g. 32-true or bf16-mixed")
    args = parser.parse_args()
    raw = measure(2, 10, steps=200, muscle_states=True)
    collect = fit_rate(10_000, 10_000_000, args.precision)
    end_to_end = fit_rate(20_000, 10_000, args.precision)
    print(f"| (a) raw simulator, random actions | {raw:,.0f} |")
    print(f"| (b) collection, DEP acting, no updates | {collect:,.0f} ({collect / raw:.0%} of a) |")
    print(f"| (c) end to end, precision {args.precision} | {end_to_end:,.0f} |")


if __name__ == "__main__":
    main()

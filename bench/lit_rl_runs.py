"""Learning speed and wall time of a lit_rl config over several seeds (the lit_rl side of the
SB3 comparisons).

Runs ``--config`` (default ``configs/ddpg_pendulum.yaml``) in-process through the CLI, evaluates every epoch (the
config's ``epoch_steps``) and reports, per seed, the training wall time (evaluation excluded,
as for the SB3 baseline), the final test return and the first environment step at which the
mean test return is >= -200 (the Pendulum-v1 criterion). Each seed's run directory
(``--runs-dir``/<config>_seed<seed>: config.yaml, a CSVLogger metrics.csv, checkpoints) is kept
for ``python -m lit_rl plot``; a rerun replaces it.

    python bench/lit_rl_runs.py --seeds 0 1 2 --out bench_runs/lit_rl_ddpg.json
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback
from summary import out_dir, report

from lit_rl.commands.cli import LitRLCLI


class Timer(Callback):
    """Training time without evaluation; the test-return curve over env steps, with the training time at each."""

    def __init__(self):
        self.curve: list[tuple[int, float]] = []
        self.train_seconds_at: list[float] = []  # training time (evaluation excluded) at each evaluation
        self.eval_seconds = 0.0
        self._eval_start = 0.0
        self.train_seconds = 0.0

    def on_fit_start(self, trainer, pl_module):
        # not on_train_start: Lightning's first fetch (the warm-up collection) happens before it
        self._start = time.perf_counter()

    def on_validation_start(self, trainer, pl_module):
        self._eval_start = time.perf_counter()
        self.train_seconds_at.append(self._eval_start - self._start - self.eval_seconds)

    def on_validation_end(self, trainer, pl_module):
        self.eval_seconds += time.perf_counter() - self._eval_start
        ret = float(trainer.callback_metrics["test/episode_return"])
        self.curve.append((trainer.datamodule.env_steps, ret))
        print(f"  env steps {trainer.datamodule.env_steps}: test return {ret:.1f}", flush=True)

    def on_train_end(self, trainer, pl_module):
        self.train_seconds = time.perf_counter() - self._start - self.eval_seconds


def run(config: str, seed: int, overrides: list[str], runs_dir: Path) -> dict:
    name = f"{Path(config).stem}_seed{seed}"
    run_dir = runs_dir / name
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, not a resume of the last benchmark's
    args = [
        "--config", config, "--seed_everything", str(seed), "--working_dir", str(runs_dir), "--name", name,
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",  # the curves for `python -m lit_rl plot`
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        *overrides,
    ]  # fmt: skip
    cli = LitRLCLI(args=args, run=False)
    timer = Timer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, cli.datamodule)
    reached = next((steps for steps, ret in timer.curve if ret >= -200), None)
    result = {
        "seed": seed,
        "train_seconds": timer.train_seconds,
        "steps_to_minus_200": reached,
        "final_return": timer.curve[-1][1],
        "curve": timer.curve,
        "train_seconds_at": timer.train_seconds_at,
        "run_dir": str(run_dir),
        "env": cli.datamodule.env_config.id,
    }
    if hasattr(cli.model, "seconds"):  # Dyna: wall seconds of each part of its flow
        result["part_seconds"] = dict(cli.model.seconds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/ddpg_pendulum.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out")
    parser.add_argument(
        "--runs-dir", type=Path, default=out_dir(False) / "pendulum_runs", help="parent of the run dirs"
    )
    parser.add_argument("overrides", nargs="*", help="extra CLI overrides, e.g. --model.init_args.actor_lr=3e-4")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    runs = [run(args.config, seed, args.overrides, args.runs_dir) for seed in args.seeds]
    report(f"lit_rl:{Path(args.config).stem}", runs, args.out, config=args.config, overrides=args.overrides,
           env=runs[0]["env"])  # fmt: skip


if __name__ == "__main__":
    main()

"""``python -m lit_rl sweep --config C --seeds 0-4 [--set KEY=V1,V2 ...] [--jobs N] [--print]
[--dir DIR] [-- FIT_ARGS ...]``: the grid of overrides x seeds as separate ``fit`` processes.

Every combination of the ``--set`` values (``KEY`` is a ``fit`` key such as
``model.init_args.lr_actor``; values are split at commas) and every seed is one run, in its own
run directory ``DIR/<key>=<value>_..._seed<S>`` (``DIR`` defaults to ``sweeps/<config name>``;
each run's output goes to ``DIR/.sweep/<run>.log``).
``--jobs`` runs go at a time (default: one per two cores), each with its share of the cores as
torch threads. A sweep started again skips the runs that finished and resumes the others from
their ``last.ckpt`` (a run killed before its first save starts again, what it wrote moved to
``DIR/.sweep/``; a run that another sweep process still runs is waited for), so a killed
sweep loses at most the steps since each run's last save. At the end it prints a table: each
run's final ``test/episode_return`` and, per value, the IQM over seeds with its 95% bootstrap
interval (``python -m lit_rl compare``; none below 3 seeds). ``--print`` only prints the commands,
one per line, for a SLURM job array or a W&B sweep agent to run; they start with the Python that
ran the sweep (``.venv/bin/python`` from the project's root). Arguments after ``--`` go to every
``fit``.

The grid is a product of lists (``itertools.product``); a search over ranges with pruning is a
job for Optuna or W&B sweeps, which can run the ``--print`` commands.
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lit_rl.commands import lit_rl_command

DONE = "sweep_done.json"  # in a run directory: the run finished (its command and exit status)


class SweepError(ValueError):
    """Bad sweep arguments; printed as one line."""


@dataclass
class Run:
    name: str
    seed: int
    overrides: dict[str, str]
    command: list[str]
    run_dir: Path

    @property
    def done(self) -> bool:
        return (self.run_dir / DONE).is_file()

    @property
    def log(self) -> Path:
        """The run's output, outside its run directory (which the CLI would move aside if it
        held anything before the run), in ``DIR/.sweep/`` so ``DIR/*`` lists run directories only."""
        return self.run_dir.parent / ".sweep" / f"{self.name}.log"


def parse_seeds(text: str) -> list[int]:
    """``0-4``, ``0,2,5`` or ``3``."""
    seeds = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise SweepError(f"--seeds {text!r}: give seeds as 0-4, 0,2,5 or 3") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: no seeds, or a seed twice")
    return seeds


def parse_set(text: str) -> tuple[str, list[str]]:
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise SweepError(f"--set {text!r}: give KEY=V1,V2,... (e.g. model.init_args.lr_actor=1e-3,3e-4)")
    return key.removeprefix("--"), values.split(",")


def _short(key: str) -> str:
    return key.split(".")[-1]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]", "_", text)


def grid(
    config: Path, seeds: list[int], sets: list[tuple[str, list[str]]], directory: Path, fit_args: list[str]
) -> list[Run]:
    shorts = [_short(key) for key, _ in sets]
    if len(set(shorts)) != len(shorts):
        raise SweepError(f"--set keys must end in different names, got {', '.join(shorts)}")
    runs = []
    for values in itertools.product(*(values for _, values in sets)):
        overrides = {key: value for (key, _), value in zip(sets, values, strict=True)}
        for seed in seeds:
            name = "_".join([*(f"{_short(k)}={_safe(v)}" for k, v in overrides.items()), f"seed{seed}"])
            command = [sys.executable, "-m", "lit_rl", "fit", "--config", str(config), "--seed_everything", str(seed)]
            for key, value in overrides.items():
                command += [f"--{key}", value]
            command += ["--working_dir", str(directory), "--name", name, "--resume", "true"]
            command += ["--trainer.enable_progress_bar", "false", *fit_args]
            runs.append(Run(name, seed, overrides, command, directory / name))
    return runs


def check_overrides(config: Path, sets: list[tuple[str, list[str]]], fit_args: list[str]) -> None:
    """Parse every ``--set`` value (with the arguments after ``--``) as ``fit`` does, before any run
    starts: a misspelled key or a value of the wrong type fails here, once, instead of in every run."""
    from lit_rl.commands.cli import ConfigError, LitRLCLI

    for key, value in [("", ""), *((key, value) for key, values in sets for value in values)]:
        override = [f"--{key}", value] if key else []  # first the config and the arguments after -- alone
        try:
            LitRLCLI.check_args(["fit", "--config", str(config), *override, *fit_args])
        except ConfigError as error:
            raise SweepError(f"--set {key}={value}: {error}" if key else str(error)) from None


def _start(run: Run, threads: int) -> tuple[subprocess.Popen, object] | None:
    """Start ``run`` holding its lock (inherited by the ``fit`` process, so it stays held while the
    run lives even if this sweep process dies); None if another process holds it."""
    run.log.parent.mkdir(parents=True, exist_ok=True)
    lock = open(run.log.with_suffix(".lock"), "w")  # noqa: SIM115 - kept open with the run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    if (
        run.run_dir.is_dir()
        and any(run.run_dir.iterdir())
        and not (run.run_dir / "checkpoints" / "last.ckpt").is_file()
    ):
        # Killed before its first save: start again, keeping what it wrote out of DIR/* (fit would
        # move it aside next to the run directories).
        run.run_dir.rename(run.log.with_name(f"{run.name}.unsaved-{time.strftime('%Y%m%d-%H%M%S')}"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    log = open(run.log, "a")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(run.command, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(lock.fileno(),))
    log.close()
    return process, lock


def execute(runs: list[Run], jobs: int) -> dict[str, int]:
    """Run every unfinished run, ``jobs`` at a time; exit status per run name (0 for runs done
    before). A run whose lock another process holds waits until it is free, then runs if that
    process did not finish it."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    status, queue = {}, list(runs)
    running: dict[str, tuple[Run, subprocess.Popen, object]] = {}
    told = set()
    while queue or running:
        for run in list(queue):
            if run.done:  # before, or by the process that held it
                queue.remove(run)
                status[run.name] = 0
                continue
            if len(running) >= jobs:
                continue
            started = _start(run, threads)
            if started is None:
                if run.name not in told:
                    print(f"{run.name}: running in another process; waiting for it", flush=True)
                    told.add(run.name)
                continue
            queue.remove(run)
            running[run.name] = (run, *started)
            print(f"{run.name}: started", flush=True)
        for name, (run, process, lock) in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            if code == 0:
                (run.run_dir / DONE).write_text(json.dumps({"command": run.command, "exit": code}))
            print(f"{name}: finished" if code == 0 else f"{name}: failed (exit {code}), see {run.log}", flush=True)
            status[name] = code
            lock.close()
            del running[name]
        time.sleep(0.2)
    return status


def summary(runs: list[Run], status: dict[str, int], metric: str = "test/episode_return") -> str:
    from lit_rl.commands.compare import score
    from lit_rl.commands.plot import PlotError
    from lit_rl.commands.stats import estimate_text, iqm_interval

    lines = [f"| run | seed | status | final {metric} |", "|---|---|---|---|"]
    by_values: dict[tuple, list[float]] = {}
    for run in runs:
        code = status.get(run.name)
        state = "finished" if code == 0 else f"failed (exit {code})"
        try:
            value = score(run.run_dir, metric)
            by_values.setdefault(tuple(run.overrides.items()), []).append(value)
            shown = f"{value:.1f}"
        except PlotError:
            shown = "-"
        lines.append(f"| {run.name} | {run.seed} | {state} | {shown} |")
    lines += ["", f"| overrides | seeds | IQM of final {metric} [95% CI] |", "|---|---|---|"]
    for values, scores in by_values.items():
        label = ", ".join(f"{_short(k)}={v}" for k, v in values) or "(the config)"
        lines.append(f"| {label} | {len(scores)} | {estimate_text(*iqm_interval(scores), len(scores))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    fit_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="python -m lit_rl sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--seeds", default="0", help="0-4, 0,2,5 or 3")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2", help="values of a fit key to sweep")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--dir", type=Path, help="where the run directories go (default: sweeps/<config name>)")
    parser.add_argument("--print", action="store_true", help="print one fit command per line instead of running")
    args = parser.parse_args(argv)
    try:
        if not args.config.is_file():
            raise SweepError(f"--config {args.config} does not exist")
        if args.jobs < 1:
            raise SweepError(f"--jobs must be >= 1, got {args.jobs}")
        directory = args.dir or Path("sweeps") / args.config.stem
        sets = [parse_set(s) for s in args.set]
        runs = grid(args.config, parse_seeds(args.seeds), sets, directory, fit_args)
        check_overrides(args.config, sets, fit_args)
    except SweepError as error:
        print(f"lit_rl: error: {error}", file=sys.stderr)
        return 2
    if args.print:
        for run in runs:
            print(lit_rl_command(*run.command[3:]))  # the interpreter of this sweep, not a `python` on PATH
        return 0
    done = sum(run.done for run in runs)
    print(
        f"{len(runs)} runs in {directory}: {done} finished before, {len(runs) - done} to run, {args.jobs} at a time",
        flush=True,
    )
    status = execute(runs, args.jobs)
    print(summary(runs, status))
    return 0 if all(code == 0 for code in status.values()) else 1

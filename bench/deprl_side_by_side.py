"""deprl itself and lit_rl side by side: DEP-MPO on myoLegWalk-v0, MyoSuite 3.0, the same protocol.

deprl (its current source, GitHub HEAD 790df86, gymnasium-based) is installed in a throwaway venv
(``OUT/deprl_venv``: torch 2.13.0, myosuite 3.0.0, its few pure-Python dependencies; the source is
unpacked next to it, not installed) with the MyoSuite 3 compatibility shim of
tests/fixtures/deprl_head/shim.py, applied in every process of that venv (deprl's spawned env
workers too) through a ``sitecustomize.py``. deprl trains with its own entry point,
``python -m deprl.main FILE.yaml``; lit_rl with ``python -m lit_rl fit``. The protocol
(``Protocol``) is deprl's myoLegWalk.yaml (its DEP block, MPO learning rates, 3-step replay,
``reset_type: random``, ``scaled_actions: false``) shrunk the same way on both sides: 2 x 10 envs,
hidden 256, 200,000 DEP-only steps, 1,000,000 steps, 100,000-step epochs with 10 test episodes,
saves every 200,000 steps. deprl on MyoSuite 3 passes its [-1, 1] actions to the env, which clips
them to [0, 1]: lit_rl runs with ``muscle_sigmoid: false``, the same mapping. Both sides run in
float32 (deprl has no mixed precision); lit_rl in bf16-mixed is a row of its own.

Test episodes follow deprl's protocol on both sides: deprl seeds its test env once and continues
its generator, so every epoch's 10 test episodes start from new states; lit_rl runs with
``test_seeds: continued``, the same.

Each run (``OUT/<side>_seed<seed>``: lit_rl's run directory or deprl's config, and ``result.json``;
the command's output and each segment's machine beside it, ``OUT/<side>_seed<seed>.output.log`` and
``.machines.json``; deprl's own files in ``OUT/deprl_runs/deprl_seed<seed>/<date>/``) resumes with its
own program's resume (deprl: ``resume: 1`` and ``full_save``; lit_rl: ``last.ckpt``) when the script is
started again; a finished run (its ``result.json``, there or kept in bench/results) is skipped. A
finished run's per-epoch logs
(lit_rl's ``metrics.csv``, deprl's own ``log.csv``) and ``result.json`` (wall time, and the machine's
load average while it ran: a run that shared the cores is marked, and the speed ratio is given over
the runs that did not) are copied to ``bench/results/<OUT's name>/<side>_seed<seed>/``, committed;
the tables are drawn from those copies, and ``--report`` only rewrites the ``deprl-side-by-side``
section of BENCHMARKS.md from them.

    python bench/deprl_side_by_side.py [--deprl-source URL_OR_TARBALL] [--runs deprl:0 lit_rl:0 ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml
from myoleg_learning import epochs, fmt, read_rows
from summary import RESULTS, ROOT, LoadSampler, keep_logs, machine_line, rewrite_section, segment_machines

from lit_rl.commands.stats import interval_text, iqm_interval

OUT = Path.home() / "lit_rl_runs" / "deprl_side_by_side"  # outside the checkout: it is laid anew, the home kept
SOURCE = "https://github.com/martius-lab/depRL/archive/790df86.tar.gz"
DEPRL_CONFIG = ROOT / "tests" / "fixtures" / "deprl" / "myoLegWalk.yaml"  # deprl's file, as published
LIT_RL_CONFIG = "configs/dep_mpo_myolegwalk.yaml"  # the same file converted, with deprl's computation
SHIM = ROOT / "tests" / "fixtures" / "deprl_head"
SIDES = {  # name: (label, lit_rl precision or None for deprl)
    "deprl": ("deprl 790df86, float32", None),
    "lit_rl": ("lit_rl, float32", "32-true"),
    "lit_rl_bf16": ("lit_rl, bf16-mixed", "bf16-mixed"),
}
DEFAULT_RUNS = ["deprl:0", "lit_rl:0", "deprl:1", "lit_rl:1", "deprl:2", "lit_rl:2", "lit_rl_bf16:0"]


@dataclass(frozen=True)
class Protocol:
    parallel: int = 2
    sequential: int = 10
    hidden: int = 256
    warmup: int = 200_000  # DEP-only env steps (steps_before_batches)
    steps: int = 1_000_000
    epoch: int = 100_000
    save: int = 200_000
    test_episodes: int = 10  # lit_rl's; deprl's trainer always plays 10


# ----------------------------------------------------------------------------------- deprl


def deprl_python(out: Path, source: str) -> Path:
    """The throwaway venv's python (``shim.make_venv``: packages, deprl's source, the shim)."""
    sys.path.insert(0, str(SHIM))
    from shim import make_venv

    return make_venv(out / "deprl_venv", source)


def deprl_config(protocol: Protocol, seed: int, out: Path, name: str) -> dict:
    """deprl's myoLegWalk.yaml with the protocol's counts (the agent, trainer and counts are
    strings deprl evaluates: the numbers are replaced in them, nothing else)."""
    config = yaml.safe_load(DEPRL_CONFIG.read_text())
    tonic = config["tonic"]
    agent = tonic["agent"]
    assert "steps_before_batches=2e5" in agent, agent
    tonic["agent"] = agent.replace("steps_before_batches=2e5", f"steps_before_batches=int({protocol.warmup})")
    tonic["trainer"] = (
        f"deprl.custom_trainer.Trainer(steps=int({protocol.steps}), epoch_steps=int({protocol.epoch}), "
        f"save_steps=int({protocol.save}))"  # its test_mujoco plays 10 episodes whatever Trainer is given
    )
    tonic.update(parallel=protocol.parallel, sequential=protocol.sequential, seed=seed, name=name, resume=1,
                 full_save=1, cpu_override=1)  # fmt: skip
    config["mpo_args"]["hidden_size"] = protocol.hidden
    config["working_dir"] = str(out / "deprl_runs")  # deprl writes <working_dir>/<name>/<date>/
    return config


def deprl_log(directory: Path) -> Path | None:
    """deprl's log.csv of the run whose lit_rl-side directory is ``directory`` (its resume continues
    the newest dated folder)."""
    logs = sorted((directory.parent / "deprl_runs" / directory.name).glob("*/log.csv"))
    return logs[-1] if logs else None


def deprl_epochs(directory: Path) -> dict[int, dict[str, float]]:
    """Per epoch end (env steps): deprl's mean train and test episode lengths and env steps/s, from
    the ``log.csv`` in ``directory`` (the copy in bench/results) or else deprl's own."""
    log = directory / "log.csv" if (directory / "log.csv").is_file() else deprl_log(directory)
    if log is None:
        return {}

    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:  # deprl writes None for a key an epoch did not log
            return None

    with open(log, newline="") as f:
        rows = [{k: number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return {
        int(row["train/steps"]): {
            "train": row.get("train/episode_length/mean"),
            "test": row.get("test/episode_length/mean"),
            "steps_per_s": row.get("train/steps_per_second"),
        }
        for row in rows
    }


# ----------------------------------------------------------------------------------- runs


def lit_rl_command(protocol: Protocol, seed: int, out: Path, name: str, precision: str) -> list[str]:
    p = protocol
    return [
        sys.executable, "-m", "lit_rl", "fit", "--config", LIT_RL_CONFIG,
        "--data.init_args.env.muscle_sigmoid", "false",
        "--data.init_args.parallel", str(p.parallel), "--data.init_args.sequential", str(p.sequential),
        "--model.init_args.hidden_size", str(p.hidden),
        "--data.init_args.replay.steps_before_batches", str(p.warmup),
        "--data.init_args.total_steps", str(p.steps), "--data.init_args.epoch_steps", str(p.epoch),
        "--data.init_args.save_steps", str(p.save), "--data.init_args.test_episodes", str(p.test_episodes),
        "--data.init_args.test_seeds", "continued",  # deprl's test starts: seeded once, then new each epoch
        "--seed_everything", str(seed), "--trainer.precision", precision,
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.enable_progress_bar", "false",
        "--working_dir", str(out), "--name", name,
    ]  # fmt: skip


def reached(side: str, directory: Path, protocol: Protocol) -> int:
    """The env steps a run's log reached."""
    if side == "deprl":
        return max(deprl_epochs(directory), default=0)
    rows = [r for m in directory.glob("**/metrics.csv") for r in read_rows(m) if "env_steps" in r]
    return int(max((r["env_steps"] for r in rows), default=0))


def train(out: Path, side: str, seed: int, protocol: Protocol, source: str) -> None:
    name = f"{side}_seed{seed}"
    directory = out / name
    if (directory / "result.json").is_file():
        keep(out, name)
        print(f"{name}: done already", flush=True)
        return
    if (RESULTS / out.name / name / "result.json").is_file():  # finished in a session whose home is gone
        print(f"{name}: done already (its logs are kept in bench/results)", flush=True)
        return
    directory.mkdir(parents=True, exist_ok=True)
    if side == "deprl":
        python = deprl_python(out, source)
        config = directory / "deprl_config.yaml"
        config.write_text(yaml.safe_dump(deprl_config(protocol, seed, out, name), sort_keys=False))
        args = [str(python), "-m", "deprl.main", str(config)]
        env = {**os.environ, "LIT_RL_DEPRL_SOURCE": str(out / "deprl_venv" / "deprl-src")}
    else:
        args = lit_rl_command(protocol, seed, out, name, SIDES[side][1])
        env = dict(os.environ)
    print(f"{name}: {' '.join(args)}", flush=True)
    # Beside the run directory, not in it: lit_rl's fit moves a non-empty run directory without last.ckpt aside.
    machines, output_log = out / f"{name}.machines.json", out / f"{name}.output.log"
    machines_so_far = segment_machines(machines)
    machines.write_text(json.dumps(machines_so_far))
    start = time.perf_counter()
    with open(output_log, "a") as output, LoadSampler() as load:
        subprocess.run(args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, check=True)
    wall = directory / "wall_s.json"  # per segment: a resumed run has several
    segments = [*(json.loads(wall.read_text()) if wall.is_file() else []), time.perf_counter() - start]
    wall.write_text(json.dumps(segments))
    steps = reached(side, directory, protocol)
    if steps < protocol.steps:  # deprl's trainer logs an exception and exits 0
        raise RuntimeError(f"{name} stopped at {steps:,} env steps of {protocol.steps:,}: see {output_log}")
    result = {"side": side, "seed": seed, **asdict(protocol), "wall_s": sum(segments), "segments": len(segments),
              **load.record(own=protocol.parallel + 1), "machines": machines_so_far}  # fmt: skip
    (directory / "result.json").write_text(json.dumps(result))
    keep(out, name)


def keep(out: Path, name: str) -> None:
    """A run's per-epoch logs into bench/results/<out name>/<name>/: lit_rl's metrics.csv, deprl's
    own log.csv, and result.json (wall time, machine load)."""
    results = RESULTS / out.name / name
    keep_logs(out / name, results)
    log = deprl_log(out / name)
    if log is not None:
        shutil.copyfile(log, results / "log.csv")


# ----------------------------------------------------------------------------------- report


def per_epoch(out: Path, side: str, seed: int, protocol: Protocol) -> dict[int, dict[str, float]]:
    directory = out / f"{side}_seed{seed}"
    return deprl_epochs(directory) if side == "deprl" else epochs(directory, protocol.epoch)


def finished(out: Path, runs: list[tuple[str, int]]) -> dict[str, list[int]]:
    seeds: dict[str, list[int]] = {}
    for side, seed in runs:
        if (out / f"{side}_seed{seed}" / "result.json").is_file():
            seeds.setdefault(side, []).append(seed)
    return seeds


def machine_of(result: dict) -> str:
    """The machine a run ran on (cores, CPU model, GPU), from its result.json: 'several' when its
    segments ran on different ones, 'not recorded' for a run from before the record."""
    kinds = {line.split("; ")[0].split(" on ", 1)[1] for line in result.get("machines", [])}
    return kinds.pop() if len(kinds) == 1 else ("several" if kinds else "not recorded")


def report(out: Path, runs: list[tuple[str, int]], protocol: Protocol) -> str:
    seeds = finished(out, runs)
    sides = [s for s in SIDES if s in seeds]
    data = {(s, seed): per_epoch(out, s, seed, protocol) for s in sides for seed in seeds[s]}
    points = list(range(protocol.epoch, protocol.steps + 1, protocol.epoch))
    lines = [machine_line("mujoco", "myosuite"), ""]
    for kind in ("train", "test"):
        header = " | ".join(f"{SIDES[s][0]}, seed {seed}" for s in sides for seed in seeds[s])
        iqms = [s for s in sides if len(seeds[s]) >= 3]
        lines += [f"**{kind.capitalize()} episode length** per epoch:", "",
                  f"| env steps | {header} |" + "".join(f" {SIDES[s][0]}: IQM [95% CI] |" for s in iqms),
                  "|---" * (1 + sum(len(seeds[s]) for s in sides) + len(iqms)) + "|"]  # fmt: skip
        for step in points:
            cells = [fmt(data[(s, seed)].get(step, {}).get(kind)) for s in sides for seed in seeds[s]]
            for s in iqms:
                values = [data[(s, seed)].get(step, {}).get(kind) for seed in seeds[s]]
                if None in values:
                    cells.append("–")
                else:
                    cells.append(interval_text(*(float(v) for v in iqm_interval(np.array(values)))))
            lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["**Speed**: env steps/s per epoch (evaluation included), the median over the DEP-only and over the "
              "learning epochs (robust to an epoch slowed by another job on the machine) and the mean; wall time of "
              "the run; the highest 1-minute load average seen during it (the run itself keeps about "
              f"{protocol.parallel + 1} processes busy; more means it shared the machine); the machine it ran on "
              "(speed ratios compare runs on one machine):", "",
              "| run | DEP-only epochs: median | learning epochs: median | learning epochs: mean | per epoch | "
              "wall time (min) | highest load | machine |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    learning = [p for p in points if p > protocol.warmup]
    warmup = [p for p in points if p <= protocol.warmup]
    rates: dict[tuple[str, str], list[float]] = {}  # per (machine, side), each run's median
    alone: dict[tuple[str, str], list[float]] = {}  # the same, of the runs that did not share the machine
    for s in sides:
        for seed in seeds[s]:
            rows = data[(s, seed)]

            def epoch_rates(ps, rows=rows):
                return [rows[p]["steps_per_s"] for p in ps if rows.get(p, {}).get("steps_per_s")]

            result = json.loads((out / f"{s}_seed{seed}" / "result.json").read_text())
            learned = epoch_rates(learning)
            median = float(np.median(learned)) if learned else None
            machine = machine_of(result)
            if median is not None:
                rates.setdefault((machine, s), []).append(median)
                if result.get("shared") is False:
                    alone.setdefault((machine, s), []).append(median)
            every = ", ".join(f"{r:.0f}" for r in epoch_rates(points))
            dep_only = epoch_rates(warmup)
            load = fmt(result.get("load_max")) + (" (shared)" if result.get("shared") else "")
            lines.append(
                f"| {SIDES[s][0]}, seed {seed} | {fmt(np.median(dep_only) if dep_only else None, 0)} | {fmt(median, 0)}"
                f" | {fmt(np.mean(learned) if learned else None, 0)} | {every} | {result['wall_s'] / 60:.0f} | {load}"
                f" | {machine} |"
            )
    for label, medians in (("runs that had the machine to themselves", alone), ("all runs", rates)):
        for machine in sorted({m for m, _ in medians} - {"several", "not recorded"}):
            if (machine, "deprl") not in medians:
                continue
            base = float(np.mean(medians[(machine, "deprl")]))
            for s in sides:
                if s != "deprl" and (machine, s) in medians:
                    ratio = float(np.mean(medians[(machine, s)])) / base
                    lines += ["", f"{SIDES[s][0]} / deprl, median env steps/s in the learning epochs, {label} on "
                                  f"{machine}: **{ratio:.2f}x**"]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deprl-source", default=SOURCE, help="deprl's source archive: URL or tarball path")
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="side:seed, in order (default: %(default)s)")
    for key, value in asdict(Protocol()).items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=value, help="(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="run directories (default: %(default)s)")
    parser.add_argument("--report", action="store_true", help="only rewrite the table")
    parser.add_argument("--section", default="deprl-side-by-side", help="BENCHMARKS.md section; 'none' prints only")
    args = parser.parse_args()
    runs = [(side, int(seed)) for side, seed in (r.split(":") for r in args.runs)]
    for side, _ in runs:
        if side not in SIDES:
            parser.error(f"unknown side {side!r}; one of {', '.join(SIDES)}")
    protocol = Protocol(**{k: getattr(args, k) for k in asdict(Protocol())})
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for side, seed in runs:
            train(args.out.resolve(), side, seed, protocol, args.deprl_source)
    text = report(RESULTS / args.out.name, runs, protocol)
    print(text)
    if args.section != "none":
        rewrite_section(args.section, text)


if __name__ == "__main__":
    main()

"""DEP-MPO on myoLegWalk-v0 against deprl's published learning curve, three ablations and DEP-SAC.

The published curve (``PUBLISHED``, deprl's myoLegWalk run of 2023-05-14 shipped with MyoSuite)
ran on the MyoSuite of that time (1.6: the ``myoleg_v0.52`` legs model, actions in [-1, 1]
through a sigmoid), ``reset_type: init``, 10 x 10 envs and 1e6 DEP-only steps; its reward
weights match no MyoSuite release and MyoSuite 3's myoLegWalk-v0 is another model
(``myolegs_with_torso.xml``), so episode lengths are compared, not returns. Every run here is
``configs/dep_mpo_myolegwalk.yaml`` with that protocol (``PROTOCOL``): ``reset_type: init``,
``muscle_sigmoid: true``, 1e6 DEP-only steps, 2 workers x 10 envs, bf16-mixed, 200,000-step
epochs with 10 test episodes, to ``--steps`` (1.6e6). Runs (``VARIANTS``, one
``python -m lit_rl fit`` process each, one after the other):

- ``dep_mpo``: the config as it is (deprl's computation: DEP ``normalization: independent``, the
  actor on raw observations, float32 normaliser statistics, the terminal muscle state in DEP's
  range, deprl's phase timing; docs/dep.md);
- ``dep_mpo_actor_normalized``: ``normalize_observations: true`` (the actor normalises too);
- ``dep_mpo_exact_statistics``: ``normalizer_statistics: exact`` (float64 running statistics);
- ``dep_mpo_rows``: ``normalization: independent_rows`` (each row of C to norm kappa);
- ``mpo_no_dep``: ``dep_mode: 0``, plain MPO from the first step (no DEP);
- ``dep_mpo_raw_actions``: ``muscle_sigmoid: false``, MyoSuite 3's raw [0, 1] activations;
- ``dep_sac``: DEP-SAC, ``configs/dep_sac_myolegwalk.yaml`` (the same env, DEP, replay and schedule).

Each run's directory (``bench_runs/myoleg_learning/<variant>_seed<seed>``: config.yaml, CSVLogger
metrics.csv, checkpoints every ``--save`` steps) is kept; a run that finished (it has
``result.json``) is not run again and an interrupted one resumes from its last checkpoint, so the
script can be stopped and started again, and ``--report`` only rewrites the table and figures
from what is there (a run still going is shown up to its last logged epoch). Writes the
``myoleg-learning-table`` section of BENCHMARKS.md and docs/myoleg_learning_{test,train}.png
(drawn by ``python -m lit_rl plot``, with the published curve in
``bench_runs/myoleg_learning/deprl_published/metrics.csv``, lit_rl's metric names).

    python bench/myoleg_learning.py [--runs dep_mpo:0 dep_sac:0 ...] [--steps 1600000] [--report]

The walk to full-length episodes (deprl's published run reached its first 1,000-step test episode at
6.4 M steps), in its own directory and BENCHMARKS.md section, saving every 200,000 steps::

    python bench/myoleg_learning.py --runs dep_mpo:0 --steps 7000000 --save 200000 \
        --out bench_runs/myoleg_walk --section myoleg-walk-table
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from summary import ROOT, machine_line, rewrite_section

# From MyoSuite's myosuite/agents/baselines_DEPRL/myoLegWalk_20230514/myoLeg/log.csv, every 200k-step epoch
PUBLISHED = ROOT / "bench" / "data" / "deprl_myolegwalk_curve.csv"
OUT = ROOT / "bench_runs" / "myoleg_learning"
FULL_LENGTH = 1000  # myoLegWalk-v0's max_episode_steps: an episode that long did not fall
CONFIG = "configs/dep_mpo_myolegwalk.yaml"
PROTOCOL = [
    "--data.init_args.env.make_kwargs", '{"reset_type": "init"}',
    "--data.init_args.env.muscle_sigmoid", "true",
    "--data.init_args.test_episodes", "10",
    "--trainer.precision", "bf16-mixed",
    "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
    "--trainer.enable_progress_bar", "false",
]  # fmt: skip
VARIANTS = {  # name: (label, config, overrides)
    "dep_mpo": ("DEP-MPO, deprl's computation", CONFIG, []),
    "dep_mpo_actor_normalized": (
        "DEP-MPO, actor on normalised observations",
        CONFIG,
        ["--model.init_args.normalize_observations", "true"],
    ),
    "dep_mpo_exact_statistics": (
        "DEP-MPO, exact normaliser statistics",
        CONFIG,
        ["--model.init_args.normalizer_statistics", "exact"],
    ),
    "dep_mpo_rows": (
        "DEP-MPO, `independent_rows`",
        CONFIG,
        ["--model.init_args.dep.normalization", "independent_rows"],
    ),
    "mpo_no_dep": ("plain MPO (`dep_mode: 0`)", CONFIG, ["--model.init_args.dep_mode", "0"]),
    "dep_mpo_raw_actions": (
        "DEP-MPO, `muscle_sigmoid: false`",
        CONFIG,
        ["--data.init_args.env.muscle_sigmoid", "false"],
    ),
    "dep_sac": ("DEP-SAC (`configs/dep_sac_myolegwalk.yaml`)", "configs/dep_sac_myolegwalk.yaml", []),
}
DEFAULT_RUNS = [
    "dep_mpo:0", "dep_mpo_actor_normalized:0", "dep_mpo_exact_statistics:0", "dep_mpo:1",
    "dep_mpo_rows:0", "mpo_no_dep:0", "dep_mpo_raw_actions:0", "dep_sac:0",
]  # fmt: skip


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / f"{variant}_seed{seed}"


@dataclass(frozen=True)
class Budget:
    steps: int = 1_600_000  # env steps per run
    epoch: int = 200_000  # env steps per epoch (an evaluation after each)
    warmup: int = 1_000_000  # DEP-only env steps (steps_before_batches)
    save: int = 400_000  # env steps between checkpoints (with the replay): an interrupted run resumes there
    parallel: int = 2  # worker processes
    sequential: int = 10  # envs per worker: parallel x sequential envs in all (deprl's published run: 100)


def command(out: Path, variant: str, seed: int, budget: Budget) -> list[str]:
    return [
        sys.executable, "-m", "lit_rl", "fit", "--config", VARIANTS[variant][1], *PROTOCOL, *VARIANTS[variant][2],
        "--seed_everything", str(seed), "--data.init_args.total_steps", str(budget.steps),
        "--data.init_args.epoch_steps", str(budget.epoch), "--data.init_args.save_steps", str(budget.save),
        "--data.init_args.replay.steps_before_batches", str(budget.warmup),
        "--data.init_args.parallel", str(budget.parallel), "--data.init_args.sequential", str(budget.sequential),
        "--working_dir", str(out), "--name", run_dir(out, variant, seed).name,
    ]  # fmt: skip


def train(out: Path, variant: str, seed: int, budget: Budget) -> None:
    directory = run_dir(out, variant, seed)
    if (directory / "result.json").is_file():
        print(f"{directory.name}: done already", flush=True)
        return
    if not (directory / "checkpoints" / "last.ckpt").is_file():
        shutil.rmtree(directory, ignore_errors=True)  # killed before its first save: start again
    wall = directory / "wall_s.json"  # the wall time of the finished segments (a resumed run has several)
    start = time.perf_counter()
    args = command(out, variant, seed, budget)
    print(f"{directory.name}: python {' '.join(args[1:])}", flush=True)
    subprocess.run(args, cwd=ROOT, check=True)
    segments = [*(json.loads(wall.read_text()) if wall.is_file() else []), time.perf_counter() - start]
    wall.write_text(json.dumps(segments))
    result = {"variant": variant, "seed": seed, **asdict(budget), "wall_s": sum(segments), "segments": len(segments)}
    (directory / "result.json").write_text(json.dumps(result))


def read_rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def epochs(directory: Path, epoch_steps: int) -> dict[int, dict[str, float]]:
    """Per epoch end (env steps): the mean train episode length over the epoch's episodes (each
    logged point is a mean over the episodes since the previous one, ``train/episodes`` counts
    them), the test episode length, and env steps/s over the epoch."""
    rows: list[dict[str, float]] = []
    for metrics in sorted(directory.glob("**/metrics.csv"), key=lambda p: p.stat().st_mtime):
        segment = [r for r in read_rows(metrics) if "env_steps" in r]
        if segment:  # a resumed segment replaces what the killed one logged after its last save
            rows = [r for r in rows if r["env_steps"] < min(r["env_steps"] for r in segment)] + segment
    rows.sort(key=lambda r: r["env_steps"])
    out: dict[int, dict[str, float]] = {}
    episodes, steps = 0.0, 0.0
    sums: dict[int, list[float]] = {}  # epoch -> [length sum, episodes, env steps, seconds]
    for row in rows:
        epoch = int(-(-row["env_steps"] // epoch_steps) * epoch_steps)
        acc = sums.setdefault(epoch, [0.0, 0.0, 0.0, 0.0])
        if "train/episode_length" in row:
            count = row["train/episodes"] - episodes
            acc[0] += row["train/episode_length"] * count
            acc[1] += count
            episodes = row["train/episodes"]
        if "perf/env_steps_per_s" in row:  # a rate since the previous point
            acc[2] += row["env_steps"] - steps
            acc[3] += (row["env_steps"] - steps) / row["perf/env_steps_per_s"]
            steps = row["env_steps"]
        if "test/episode_length" in row:
            out.setdefault(epoch, {})["test"] = row["test/episode_length"]
        if "test/episode_length_max" in row:
            out[epoch]["test_max"] = row["test/episode_length_max"]
    for epoch, (length_sum, count, epoch_steps, seconds) in sums.items():
        entry = out.setdefault(epoch, {})
        if count:
            entry["train"] = length_sum / count
        if seconds:
            entry["steps_per_s"] = epoch_steps / seconds
    return out


def published() -> dict[int, dict[str, float]]:
    return {
        int(r["env_steps"]): {
            "train": r["train_episode_length"],
            "test": r["test_episode_length_mean"],
            "test_max": r["test_episode_length_max"],
        }
        for r in read_rows(PUBLISHED)
    }


def has_metrics(directory: Path) -> bool:
    """A run that has logged (finished, or interrupted and resumable: its table so far is shown)."""
    return any(directory.glob("**/metrics.csv"))


def full_length(per_epoch: dict[int, dict[str, float]], kind: str, length: int = FULL_LENGTH) -> int | None:
    """The first epoch whose test episodes reached ``length`` steps: one of them (``test_max``) or all (``test``)."""
    return next((e for e, values in sorted(per_epoch.items()) if values.get(kind, 0) >= length), None)


def write_published_run(out: Path) -> Path:
    """The published curve as a run directory that ``python -m lit_rl plot`` reads (metrics.csv in
    lit_rl's metric names)."""
    directory = out / "deprl_published"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["env_steps", "train/episode_length", "test/episode_length"])
        for steps, values in sorted(published().items()):
            writer.writerow([steps, values["train"], values["test"]])
    return directory


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(out: Path, runs: list[tuple[str, int]], budget: Budget) -> str:
    ref = published()
    lines = [
        machine_line("mujoco", "myosuite"),
        "",
        "| run | env steps | train ep. length | published | test ep. length | published | env steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, seed in runs:
        directory = run_dir(out, variant, seed)
        if not has_metrics(directory):
            continue
        running = "" if (directory / "result.json").is_file() else " (running, resumable)"
        label = f"{VARIANTS[variant][0]}, seed {seed}{running}"
        for epoch, values in sorted(epochs(directory, budget.epoch).items()):
            if epoch > budget.steps:
                continue
            theirs = ref.get(epoch, {})
            lines.append(
                f"| {label} | {epoch:,} | {fmt(values.get('train'))} | {fmt(theirs.get('train'))} | "
                f"{fmt(values.get('test'))} | {fmt(theirs.get('test'))} | {fmt(values.get('steps_per_s'), 0)} |"
            )
            label = ""
    return "\n".join([*lines, "", *summary(out, runs, budget)])


def summary(out: Path, runs: list[tuple[str, int]], budget: Budget) -> list[str]:
    """Per run, the means over the learning epochs (after the warm-up), published run first."""
    ref = published()
    learning = [e for e in range(budget.warmup + budget.epoch, budget.steps + 1, budget.epoch)]
    if not learning:
        return []
    span = f"{learning[0] / 1e6:g}-{learning[-1] / 1e6:g} M"

    def mean(values: list[float | None]) -> float | None:
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    def steps(epoch: int | None) -> str:
        return "–" if epoch is None else f"{epoch / 1e6:g} M"

    lines = [
        f"Means over the learning epochs ({span} steps), the first epoch with a full-length "
        f"({FULL_LENGTH:,}-step) test episode and with all test episodes full-length (– : not within the "
        "steps run), and the wall time:",
        "",
        "| run | env steps run | train ep. length | test ep. length | first full-length test episode | "
        "all test episodes full-length | wall time (min) |",
        "|---|---|---|---|---|---|---|",
        f"| deprl, published | {steps(max(ref))} | {fmt(mean([ref.get(e, {}).get('train') for e in learning]))} | "
        f"{fmt(mean([ref.get(e, {}).get('test') for e in learning]))} | {steps(full_length(ref, 'test_max'))} | "
        f"{steps(full_length(ref, 'test'))} | |",
    ]
    for variant, seed in runs:
        directory = run_dir(out, variant, seed)
        if not has_metrics(directory):
            continue
        per_epoch = {e: v for e, v in epochs(directory, budget.epoch).items() if e <= budget.steps}
        train, test = (mean([per_epoch.get(e, {}).get(kind) for e in learning]) for kind in ("train", "test"))
        result = directory / "result.json"
        wall = f"{json.loads(result.read_text())['wall_s'] / 60:.0f}" if result.is_file() else "running"
        lines.append(
            f"| {VARIANTS[variant][0]}, seed {seed} | {steps(max(per_epoch, default=None))} | {fmt(train)} | "
            f"{fmt(test)} | {steps(full_length(per_epoch, 'test_max'))} | {steps(full_length(per_epoch, 'test'))} "
            f"| {wall} |"
        )
    return lines


def figures(out: Path, runs: list[tuple[str, int]], steps: int, figure_dir: Path) -> list[str]:
    from lit_rl.commands.plot import plot

    directories = [write_published_run(out)] if min(published()) <= steps else []
    directories += [run_dir(out, v, s) for v, s in runs if has_metrics(run_dir(out, v, s))]
    lines = []
    for kind in ("test", "train"):
        figure = figure_dir / f"{out.name}_{kind}.png"  # myoleg_learning_test.png for the default --out
        metric = f"{kind}/episode_length"
        plot(directories, metric, "env_steps", figure, steps)
        dirs = " ".join(str(relative(d)) for d in directories)
        redraw = f"python -m lit_rl plot {dirs} --metric {metric} --x-max {steps} --out {relative(figure)}"
        lines += [f"![{kind} episode length, myoLegWalk-v0]({relative(figure)})", "", f"Drawn by `{redraw}`.", ""]
    return lines


def relative(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="variant:seed, in order (default: %(default)s)")
    for key, value in asdict(Budget()).items():
        parser.add_argument(f"--{key}", type=int, default=value, help="(default: %(default)s)")
    parser.add_argument("--report", action="store_true", help="only rewrite the table and figures")
    parser.add_argument("--out", type=Path, default=OUT, help="run directories (default: %(default)s)")
    parser.add_argument(
        "--section", default="myoleg-learning-table", help="BENCHMARKS.md section; 'none' only prints the table"
    )
    args = parser.parse_args()
    runs = [(v, int(s)) for v, s in (r.split(":") for r in args.runs)]
    budget = Budget(**{key: getattr(args, key) for key in asdict(Budget())})
    for variant, _ in runs:
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    if not args.report:
        for variant, seed in runs:
            train(args.out, variant, seed, budget)
    figure_dir = ROOT / "docs" if args.section != "none" else args.out
    report = "\n".join([table(args.out, runs, budget), "", *figures(args.out, runs, budget.steps, figure_dir)])
    print(report.rstrip())
    if args.section != "none":
        rewrite_section(args.section, report.rstrip())


if __name__ == "__main__":
    main()

"""``python -m lit_rl compare RUN_DIR [RUN_DIR ...] [--metric test/episode_return] [--last 1]
[--out compare.png]``: configs compared over their seeds with honest statistics.

Runs are grouped as ``plot`` groups them (configs that differ only in seed and name). Each
run's score is the mean of its last ``--last`` logged values of ``--metric``. Per config: the
interquartile mean over runs with its 95% stratified bootstrap interval; per pair of configs:
the probability of improvement with its interval (``lit_rl.commands.stats``). A config with
fewer than 3 runs gets no interval (``no CI: N runs``), nor does a pair that includes it: a
bootstrap of 1 or 2 runs would claim a certainty they do not give. Prints a Markdown table and,
with ``--out``, draws both as a figure (nothing is written without it).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lit_rl.commands.plot import PlotError, config_key, run_curve
from lit_rl.commands.stats import MIN_RUNS, estimate_text, improvement_interval, iqm_interval


@dataclass
class Group:
    label: str
    runs: list[Path]
    scores: np.ndarray  # [runs]
    interval: tuple[float, float, float] = ()  # IQM over runs, and its 95% interval

    def __post_init__(self):
        self.interval = tuple(float(v) for v in iqm_interval(self.scores))

    @property
    def has_interval(self) -> bool:
        return len(self.runs) >= MIN_RUNS


Improvement = tuple[Group, Group, tuple[float, float, float]]  # X, Y, P(X > Y) and its interval


def improvements(groups: list[Group]) -> list[Improvement]:
    return [(x, y, improvement_interval(x.scores, y.scores)) for x, y in itertools.permutations(groups, 2)]


def score(run_dir: Path, metric: str, x: str = "env_steps", last: int = 1) -> float:
    """The mean of the run's last ``last`` logged values of ``metric``."""
    _, ys = run_curve(run_dir, metric, x)
    return float(np.mean(ys[-last:]))


def group_runs(run_dirs: list[Path], metric: str, last: int = 1) -> list[Group]:
    groups: dict[str, tuple[str, list[Path]]] = {}
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise PlotError(f"{run_dir} is not a run directory")
        key, label = config_key(run_dir)
        groups.setdefault(key, (label, []))[1].append(run_dir)
    out, labels = [], set()
    for label, runs in groups.values():
        while label in labels:
            label += "'"
        labels.add(label)
        out.append(Group(label, runs, np.array([score(run, metric, last=last) for run in runs])))
    return out


def table(groups: list[Group], pairs: list[Improvement], metric: str) -> str:
    lines = [
        f"| config | runs | IQM of {metric} [95% CI] | mean | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for g in groups:
        lines.append(
            f"| {g.label} | {len(g.runs)} | {estimate_text(*g.interval, len(g.runs))} | {g.scores.mean():.1f} | "
            f"{g.scores.min():.1f} | {g.scores.max():.1f} |"
        )
    if pairs:
        lines += ["", "| X | Y | P(X > Y) [95% CI] |", "|---|---|---|"]
        for x, y, interval in pairs:
            runs = min(len(x.runs), len(y.runs))
            lines.append(f"| {x.label} | {y.label} | {estimate_text(*interval, runs, lambda v: f'{v:.2f}')} |")
    if not all(g.has_interval for g in groups):
        lines += [
            "",
            f"No 95% CI where a config has fewer than {MIN_RUNS} runs (no CI: N runs): resampling 1 or 2 runs "
            "gives an interval as narrow as it is meaningless. More seeds (sweep --seeds 0-4) give one.",
        ]
    return "\n".join(lines)


def figure(groups: list[Group], pairs: list[Improvement], metric: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, 2 if pairs else 1, figsize=(11 if pairs else 6, 0.6 * max(len(groups), len(pairs)) + 1.6)
    )
    axes = np.atleast_1d(axes)
    for i, g in enumerate(groups):
        value, low, high = g.interval
        if g.has_interval:
            axes[0].errorbar(value, i, xerr=[[value - low], [high - value]], fmt="o", capsize=4)
        else:  # a hollow marker and no bar: no interval from fewer than MIN_RUNS runs
            axes[0].plot(value, i, "o", mfc="none")
        axes[0].scatter(g.scores, [i] * len(g.scores), color="grey", s=10, zorder=3)
    names = [f"{g.label} ({len(g.runs)}{'' if g.has_interval else ', no CI'})" for g in groups]
    axes[0].set_yticks(range(len(groups)), names)
    axes[0].set_xlabel(f"IQM of {metric}, 95% CI (dots: runs)")
    if pairs:
        for i, (x, y, (p, low, high)) in enumerate(pairs):
            if x.has_interval and y.has_interval:
                axes[1].errorbar(p, i, xerr=[[p - low], [high - p]], fmt="o", capsize=4)
            else:
                axes[1].plot(p, i, "o", mfc="none")
        axes[1].axvline(0.5, color="grey", linestyle="--", linewidth=1)
        axes[1].set_yticks(range(len(pairs)), [f"{x.label} > {y.label}" for x, y, _ in pairs])
        axes[1].set_xlim(0, 1)
        axes[1].set_xlabel("probability of improvement, 95% CI")
    for ax in axes:
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lit_rl compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories (<working_dir>/<name>)")
    parser.add_argument("--metric", default="test/episode_return")
    parser.add_argument("--last", type=int, default=1, help="score: the mean of the last N logged values")
    parser.add_argument("--out", type=Path, help="draw the figure into this file (.png, .pdf); none without it")
    args = parser.parse_args(argv)
    try:
        groups = group_runs(args.run_dirs, args.metric, args.last)
    except PlotError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pairs = improvements(groups)
    if args.out is not None:
        figure(groups, pairs, args.metric, args.out)
    print(table(groups, pairs, args.metric))
    print(f"\nwrote {args.out}" if args.out is not None else "\n(--out compare.png draws the figure)")
    return 0

"""Dyna against DDPG on Pendulum-v1 by real environment steps: seeds 0-2, one run each.

Runs ``configs/dyna_pendulum.yaml`` and ``configs/ddpg_pendulum.yaml`` through the CLI with the
same evaluation protocol: every ``--eval-steps`` real steps (default 250, for both configs),
5 test episodes with the deterministic policy, episode ``i`` from seed ``seed + 1_000_000 + i``.
Reports per seed the first real step whose mean test return is >= -200, the final return and
the training wall time per real step (evaluation excluded); writes bench_runs/dyna_pendulum.json,
bench/plots/dyna_vs_ddpg_pendulum.png (return against real steps, kept in the repository) and
the Dyna table in BENCHMARKS.md.

    python bench/dyna_pendulum.py [--seeds 0 1 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from lit_rl_pendulum import run
from summary import report, rewrite_section

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench_runs"
PLOT = ROOT / "bench" / "plots" / "dyna_vs_ddpg_pendulum.png"
CONFIGS = {"Dyna": "configs/dyna_pendulum.yaml", "DDPG": "configs/ddpg_pendulum.yaml"}


def fmt_steps(value) -> str:
    return "never" if value is None or value == float("inf") else f"{int(value):,}"


def per_step_ms(result: dict) -> float:
    return 1e3 * result["train_seconds"] / result["curve"][-1][0]


def breakdown(runs: list[dict]) -> dict[str, float]:
    """Median ms per real step of each part of Dyna's flow; "other" is env stepping, acting and
    Lightning's loop."""
    rows = []
    for r in runs:
        seconds, steps = r["part_seconds"], r["curve"][-1][0]
        ddpg = seconds["train_algo_real"] + seconds["train_algo_model"] - seconds["rollout"]
        row = {
            "DDPG updates": ddpg,
            "model training": seconds["train_dynamics"],
            "model rollouts": seconds["rollout"],
            "model tests": seconds["test_dynamics"],
        }
        row["other"] = r["train_seconds"] - sum(row.values())
        rows.append({name: 1e3 * value / steps for name, value in row.items()})
    return {name: statistics.median(row[name] for row in rows) for name in rows[0]}


def table(results: dict[str, dict], eval_steps: int, threads: int) -> str:
    lines = [
        "| algorithm | seed | real steps to test return >= -200 | final test return (real steps) "
        "| training time (s) | ms per real step |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for r in result["runs"]:
            final_steps = r["curve"][-1][0]
            lines.append(
                f"| {name} | {r['seed']} | {fmt_steps(r['steps_to_minus_200'])} | {r['final_return']:.1f} "
                f"({final_steps:,}) | {r['train_seconds']:.1f} | {per_step_ms(r):.1f} |"
            )
        median_ms = statistics.median(per_step_ms(r) for r in result["runs"])
        lines.append(
            f"| **{name}** | median | **{fmt_steps(result['median_steps_to_minus_200'])}** | | "
            f"{result['median_train_seconds']:.1f} | **{median_ms:.1f}** |"
        )
    parts = breakdown(results["Dyna"]["runs"])
    dyna, ddpg = results["Dyna"]["median_steps_to_minus_200"], results["DDPG"]["median_steps_to_minus_200"]
    ratio = f"{dyna / ddpg:.2f}" if dyna not in (None, float("inf")) and ddpg not in (None, float("inf")) else "n/a"
    lines += [
        "",
        f"Dyna / DDPG median real steps to -200: **{ratio}** (target: <= 0.5). Evaluation every "
        f"{eval_steps} real steps for both. Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
        f"{platform.python_version()}, torch threads {threads}, one `python bench/dyna_pendulum.py` run.",
        "",
        "Dyna's training time per real step, by part of its flow (median over seeds, ms): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in parts.items())
        + ".",
        "",
        f"![test return against real environment steps]({PLOT.relative_to(ROOT)})",
    ]
    return "\n".join(lines)


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colors = {"Dyna": "tab:blue", "DDPG": "tab:orange"}
    for name, result in results.items():
        curves = [r["curve"] for r in result["runs"]]
        for r in result["runs"]:
            steps, returns = zip(*r["curve"], strict=True)
            ax.plot(steps, returns, color=colors[name], alpha=0.3, linewidth=1)
        length = min(len(c) for c in curves)
        steps = [c[0] for c in curves[0][:length]]
        median = [statistics.median(c[i][1] for c in curves) for i in range(length)]
        ax.plot(steps, median, color=colors[name], linewidth=2.2, label=f"{name} (median of {len(curves)} seeds)")
    ax.axhline(-200, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel("real environment steps")
    ax.set_ylabel("test episode return (mean of 5)")
    # DDPG's 20,000 steps would squeeze the interesting part: show the first 10,000
    ax.set_xlim(0, min(10_000, max(r["curve"][-1][0] for result in results.values() for r in result["runs"])))
    ax.set_ylim(-1700, 0)
    ax.set_title("Pendulum-v1: Dyna vs DDPG")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-steps", type=int, default=250, help="real steps between evaluations (both configs)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads: the networks are small, and extra threads spin-wait on a shared machine",
    )
    parser.add_argument("--only", choices=sorted(CONFIGS), help="run one side only (no table, no plot)")
    parser.add_argument("--dyna-config", default=CONFIGS["Dyna"])
    parser.add_argument("overrides", nargs="*", help="extra CLI overrides for the Dyna config")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # the runs get their arguments from `run`, not from this command line
    torch.set_num_threads(args.threads)
    OUT.mkdir(exist_ok=True)
    configs = {**CONFIGS, "Dyna": args.dyna_config}
    results = {}
    for name, config in configs.items():
        if args.only and name != args.only:
            continue
        overrides = [f"--data.init_args.epoch_steps={args.eval_steps}"]
        if name == "Dyna":
            # Dyna's own test period knob, if the config sets one, must agree with the protocol
            overrides += [f"--model.init_args.test_algo_every_real_sample_count={args.eval_steps}", *args.overrides]
        print(f"{name}: {config}", flush=True)
        runs = [run(config, seed, overrides) for seed in args.seeds]
        results[name] = report(f"lit_rl:{Path(config).stem}", runs, config=config, overrides=overrides)
    if args.only:
        (OUT / f"dyna_bench_{args.only.lower()}.json").write_text(json.dumps(results, indent=1))
        return
    (OUT / "dyna_pendulum.json").write_text(json.dumps(results, indent=1))
    PLOT.parent.mkdir(exist_ok=True)
    plot(results, PLOT)
    text = table(results, args.eval_steps, args.threads)
    print(text)
    rewrite_section("dyna-table", text)


if __name__ == "__main__":
    main()

"""Dyna against DDPG on Pendulum-v1 by real environment steps: seeds 0-2, one run each.

Runs ``configs/dyna_pendulum.yaml`` and ``configs/ddpg_pendulum.yaml`` through the CLI with the
same evaluation protocol: every ``--eval-steps`` real steps (default 250, for both configs),
5 test episodes with the deterministic policy, episode ``i`` from seed ``seed + 1_000_000 + i``.
Reports per seed the first real step whose mean test return is >= -200, the final return and
the training wall time per real step (evaluation excluded); writes bench_runs/dyna_pendulum.json,
the run directories (bench_runs/dyna_runs), bench/plots/dyna_vs_ddpg_pendulum.png (return against
real steps, drawn by `python -m lit_rl plot`, kept in the repository) and the Dyna table in
BENCHMARKS.md. ``--quick``: shorter budgets (``QUICK_STEPS``), everything under
bench_runs/quick and the quick-dyna-table section.

    python bench/dyna_pendulum.py [--seeds 0 1 2] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import torch
from lit_rl_runs import run
from summary import (
    figure_path,
    fmt_steps,
    iqm_ci,
    machine_line,
    out_dir,
    plot_curves,
    report,
    rewrite_section,
    section,
    spread,
    steps_iqm,
)

CONFIGS = {"Dyna": "configs/dyna_pendulum.yaml", "DDPG": "configs/ddpg_pendulum.yaml"}
# Real-step budgets of --quick: past where seed 0 reaches -200 in the full runs (Dyna 1,000, DDPG 3,250).
QUICK_STEPS = {"Dyna": 1_500, "DDPG": 6_000}
# The figure stops at DDPG's quick budget: past it DDPG is flat and the comparison is over.
PLOT_X_MAX = 6_000


def real_steps(result: dict) -> int:
    """The real env steps a run trained for (its last evaluation's)."""
    return result["curve"][-1][0]


def per_step_ms(result: dict) -> float:
    return 1e3 * result["train_seconds"] / real_steps(result)


def breakdown(runs: list[dict]) -> dict[str, float]:
    """Median ms per real step of each part of Dyna's flow; "other" is env stepping, acting and
    Lightning's loop."""
    rows = []
    for r in runs:
        seconds, steps = r["part_seconds"], real_steps(r)
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


def table(results: dict[str, dict], eval_steps: int, threads: int, quick: bool, figure: str) -> str:
    lines = [
        machine_line(),
        "",
        "| algorithm | seed | real steps to test return >= -200 | final test return (real steps) "
        "| training time (s) | ms per real step |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        runs = result["runs"]
        for r in runs:
            lines.append(
                f"| {name} | {r['seed']} | {fmt_steps(r['steps_to_minus_200'])} | {r['final_return']:.1f} "
                f"({real_steps(r):,}) | {r['train_seconds']:.1f} | {per_step_ms(r):.1f} |"
            )
        lines.append(
            f"| **{name}** | IQM [95% CI]; times: median (min–max) | **{steps_iqm(runs)}** | "
            f"{iqm_ci([r['final_return'] for r in runs])} | {spread([r['train_seconds'] for r in runs])} | "
            f"**{spread([per_step_ms(r) for r in runs])}** |"
        )
    parts = breakdown(results["Dyna"]["runs"])
    dyna, ddpg = results["Dyna"]["median_steps_to_minus_200"], results["DDPG"]["median_steps_to_minus_200"]
    ratio = f"{dyna / ddpg:.2f}" if math.isfinite(dyna) and math.isfinite(ddpg) else "n/a"  # inf: never reached
    command = "python bench/dyna_pendulum.py" + (" --quick" if quick else "")
    lines += [
        "",
        f"Dyna / DDPG median real steps to -200: **{ratio}** (target: <= 0.5). Evaluation every "
        f"{eval_steps} real steps for both; torch threads {threads}; one `{command}` run.",
        "",
        "Dyna's training time per real step, by part of its flow (median over seeds, ms): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in parts.items())
        + ".",
        "",
        figure,
    ]
    return "\n".join(lines)


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
    parser.add_argument("--quick", action="store_true", help="QUICK_STEPS budgets, output under bench_runs/quick")
    parser.add_argument("--report", action="store_true", help="only rebuild the table and figure from the last run")
    parser.add_argument("overrides", nargs="*", help="extra CLI overrides for the Dyna config")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # the runs get their arguments from `run`, not from this command line
    torch.set_num_threads(args.threads)
    out = out_dir(args.quick)
    configs = {**CONFIGS, "Dyna": args.dyna_config}
    results = json.loads((out / "dyna_pendulum.json").read_text()) if args.report else {}
    for name, config in configs.items():
        if args.report or args.only and name != args.only:
            continue
        overrides = [f"--data.init_args.epoch_steps={args.eval_steps}"]
        if args.quick:
            overrides.append(f"--data.init_args.total_steps={QUICK_STEPS[name]}")
        if name == "Dyna":
            # Dyna's own test period knob, if the config sets one, must agree with the protocol
            overrides += [f"--model.init_args.test_algo_every_real_sample_count={args.eval_steps}", *args.overrides]
        print(f"{name}: {config}", flush=True)
        runs = [run(config, seed, overrides, out / "dyna_runs") for seed in args.seeds]
        results[name] = report(f"lit_rl:{Path(config).stem}", runs, config=config, overrides=overrides)
    if args.only:
        (out / f"dyna_bench_{args.only.lower()}.json").write_text(json.dumps(results, indent=1))
        return
    if not args.report:
        (out / "dyna_pendulum.json").write_text(json.dumps(results, indent=1))
    run_dirs = [Path(r["run_dir"]) for result in results.values() for r in result["runs"]]
    figure = plot_curves(
        run_dirs,
        figure_path("dyna_vs_ddpg_pendulum.png", args.quick),
        "test return against real environment steps",
        PLOT_X_MAX,
    )
    text = table(results, args.eval_steps, args.threads, args.quick, figure)
    print(text)
    rewrite_section(section("dyna-table", args.quick), text)


if __name__ == "__main__":
    main()

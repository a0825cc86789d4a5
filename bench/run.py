"""`make bench` and `make bench-quick`: every benchmark, one after the other on this machine.

They run in one go so that their wall times compare as ratios. The steps (``STEPS``, in order):

1. DDPG on Pendulum-v1, lit_rl against Stable-Baselines3 with rl-zoo settings (bench/lit_rl_runs.py,
   bench/sb3_baseline.py): seeds 0-2, 20,000 steps each, and the lit_rl learning curves
   (docs/ddpg_pendulum.png, drawn by `python -m lit_rl plot`);
2. TD3 and SAC on Pendulum-v1, the same against SB3's TD3 and SAC (docs/td3_sac_pendulum.png);
3. DEP-MPO myoLegWalk throughput and DEP controller timings (bench/dep_mpo_throughput.py);
4. Dyna against DDPG on Pendulum-v1 by real environment steps (bench/dyna_pendulum.py);
5. DDPG Pendulum and DEP-MPO myoLegWalk env steps/s with 1 and 2 DDP processes (bench/ddp_throughput.py);
6. TD3 and SAC on HalfCheetah-v5 against SB3 at 30,000 steps, seed 0 (not in ``--quick``).

Writes bench_runs/ (JSON, run directories) and the figures in docs/, and rewrites the tables in
BENCHMARKS.md and its runtime section: the wall time of each step, the CPU other jobs used
meanwhile, and the checks.

``--quick`` (`make bench-quick`) checks that nothing regressed: seed 0 only, 15,000 Pendulum
steps and one torch thread for both sides, and each script's own ``--quick`` budgets; everything goes to
bench_runs/quick and to the quick-* sections of BENCHMARKS.md, never to the full tables.

Runtime (run.py writes each step's wall time to the runtime sections of BENCHMARKS.md), on this
2-core machine, quiet, 2026-11-21: `make bench` 22.9 min (Pendulum 7.0, DEP-MPO 5.0, Dyna 5.5,
DDP 5.4), `make bench-quick` 7.0 min (1.8, 2.3, 0.8, 2.2). Under load the quick run has taken
8.5 min without the DDP step, DEP-MPO's hidden-1024 updates on 2 threads slowing most.

The checks (exit status 1 if one fails, after every table is written): lit_rl DDPG, TD3 and SAC
reach a test return of -200 within their budget for every seed; Dyna reaches it in at most half
DDPG's median real steps.

``--report`` rebuilds the learning tables (summary rows: IQM with 95% stratified bootstrap
intervals over seeds) and their figures from the JSON and run directories of the last run.

    python bench/run.py [--quick] [--seeds 0 1 2] [--report]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from summary import (
    ROOT,
    figure_path,
    fmt_steps,
    iqm_ci,
    machine_line,
    out_dir,
    plot_curves,
    rewrite_section,
    section,
    spread,
    steps_iqm,
)

# Both Pendulum sides' budget; quick: still past SB3's learning_starts (10,000) and its -200 (13,000).
PENDULUM_STEPS = {False: 20_000, True: 15_000}
# Quick: one torch thread on both sides. When another job holds a core, the second thread's
# spin-waits make these 64-unit updates 10-30x slower (measured on this machine).
PENDULUM_THREADS = {False: [], True: ["--threads", "1"]}
Check = tuple[str, bool]


def run_script(script: str, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, check=True)


def pendulum_table(pairs: list[tuple[str, dict, dict]], steps: int, figure: str) -> str:
    """One table of (algorithm, lit_rl result, SB3 result) pairs."""
    lines = [
        machine_line("stable-baselines3"),
        "",
        "| implementation | seed | steps to test return >= -200 | final test return | training time (s) |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for algo, ours, sb3 in pairs:
        for name, result in ((f"lit_rl {algo}", ours), (f"SB3 {algo} (rl-zoo)", sb3)):
            runs = result["runs"]
            for r in runs:
                lines.append(
                    f"| {name} | {r['seed']} | {fmt_steps(r['steps_to_minus_200'])} | "
                    f"{r['final_return']:.1f} | {r['train_seconds']:.1f} |"
                )
            lines.append(
                f"| **{name}** | IQM [95% CI]; time: median (min–max) | **{steps_iqm(runs)}** | "
                f"{iqm_ci([r['final_return'] for r in runs])} | **{spread([r['train_seconds'] for r in runs])}** |"
            )
        ratios.append(f"{algo} **{ours['median_train_seconds'] / sb3['median_train_seconds']:.2f}**")
    lines += ["", f"lit_rl / SB3 median training time over {steps:,} steps: {', '.join(ratios)}.", "", figure]
    return "\n".join(lines)


REPORT_ONLY = False  # --report: rebuild the tables and figures from the JSON of the last run


def compare_with_sb3(algo: str, config: str, env: str, seeds: list[str], steps: int, threads: list[str],
                     quick: bool, eval_every: int = 1_000) -> tuple[dict, dict]:  # fmt: skip
    """lit_rl's ``config`` and SB3's ``algo`` with rl-zoo settings, the same seeds, budget and evaluation."""
    out = out_dir(quick)
    stem = Path(config).stem
    ours_json, sb3_json = out / f"lit_rl_{stem}.json", out / f"sb3_{algo}_{env}.json"
    if REPORT_ONLY:
        return json.loads(ours_json.read_text()), json.loads(sb3_json.read_text())
    common, runs_dir = ["--seeds", *seeds, *threads], out / f"{env.split('-')[0].lower()}_runs"
    run_script("lit_rl_runs.py", *common, "--config", config, "--out", str(ours_json), "--runs-dir", str(runs_dir),
               "--", f"--data.init_args.total_steps={steps}", f"--data.init_args.epoch_steps={eval_every}")  # fmt: skip
    run_script("sb3_baseline.py", *common, "--algo", algo, "--env", env, "--out", str(sb3_json),
               "--total-steps", str(steps), "--eval-every", str(eval_every))  # fmt: skip
    return json.loads(ours_json.read_text()), json.loads(sb3_json.read_text())


def pendulum(algos: tuple[str, ...], section_name: str, figure_name: str):
    """A step: lit_rl against SB3 on Pendulum-v1 for ``algos``, one table and one figure."""

    def step(seeds: list[str], quick: bool) -> list[Check]:
        steps, threads = PENDULUM_STEPS[quick], PENDULUM_THREADS[quick]
        pairs, run_dirs = [], []
        for algo in algos:
            ours, sb3 = compare_with_sb3(algo, f"configs/{algo}_pendulum.yaml", "Pendulum-v1", seeds, steps, threads,
                                         quick)  # fmt: skip
            pairs.append((algo.upper(), ours, sb3))
            run_dirs += [Path(r["run_dir"]) for r in ours["runs"]]
        title = f"lit_rl {' and '.join(a.upper() for a in algos)} test return, Pendulum-v1"
        report = pendulum_table(pairs, steps, plot_curves(run_dirs, figure_path(figure_name, quick), title))
        print(report)
        rewrite_section(section(section_name, quick), report)
        return [
            (f"lit_rl {algo} reaches -200 within {steps:,} steps, every seed",
             all(r["steps_to_minus_200"] is not None for r in ours["runs"]))
            for algo, ours, _ in pairs
        ]  # fmt: skip

    return step


HALFCHEETAH_STEPS = 30_000  # 10,000 random, then 20,000 with one update each (rl-zoo's learning_starts)


def halfcheetah(seeds: list[str], quick: bool) -> list[Check]:
    """TD3 and SAC on HalfCheetah-v5 against SB3 at an equal budget: the return reached and the
    training time (seed 0 only: a run of either takes minutes here)."""
    lines = [
        machine_line("stable-baselines3", "mujoco"),
        "",
        "| algorithm | implementation | test return at 10k / 20k / 30k steps | training time (s) |",
        "|---|---|---|---|",
    ]
    ratios = []
    for algo in ("td3", "sac"):
        ours, sb3 = compare_with_sb3(algo, f"configs/{algo}_halfcheetah.yaml", "HalfCheetah-v5", seeds[:1],
                                     HALFCHEETAH_STEPS, [], quick, eval_every=10_000)  # fmt: skip
        for name, result in (("lit_rl", ours), ("SB3 (rl-zoo)", sb3)):
            run = result["runs"][0]
            returns = " / ".join(f"{value:.0f}" for _, value in run["curve"])
            lines.append(f"| {algo.upper()} | {name} | {returns} | {run['train_seconds']:.0f} |")
        ratios.append(f"{algo.upper()} **{ours['median_train_seconds'] / sb3['median_train_seconds']:.2f}**")
    lines += ["", f"lit_rl / SB3 training time over {HALFCHEETAH_STEPS:,} steps, seed 0: {', '.join(ratios)}."]
    report = "\n".join(lines)
    print(report)
    rewrite_section("halfcheetah-table", report)
    return []


def timings(script: str) -> Callable[[list[str], bool], list[Check]]:
    """A step that runs a timing script (one run, no seeds): timings on a shared machine are read, not checked."""

    def step(seeds: list[str], quick: bool) -> list[Check]:
        run_script(script, *(["--quick"] if quick else []))
        return []

    return step


def dyna(seeds: list[str], quick: bool) -> list[Check]:
    run_script(
        "dyna_pendulum.py", "--seeds", *seeds, *(["--quick"] if quick else []), *(["--report"] if REPORT_ONLY else [])
    )
    results = json.loads((out_dir(quick) / "dyna_pendulum.json").read_text())
    dyna_steps, ddpg_steps = (results[name]["median_steps_to_minus_200"] for name in ("Dyna", "DDPG"))
    reached = dyna_steps != float("inf") and dyna_steps <= 0.5 * ddpg_steps
    return [("Dyna reaches -200 in <= 0.5x DDPG's median real steps", reached)]


STEPS: dict[str, Callable[[list[str], bool], list[Check]]] = {
    "DDPG Pendulum-v1, lit_rl vs SB3": pendulum(("ddpg",), "pendulum-table", "ddpg_pendulum.png"),
    "TD3 and SAC Pendulum-v1, lit_rl vs SB3": pendulum(
        ("td3", "sac"), "td3-sac-pendulum-table", "td3_sac_pendulum.png"
    ),
    "DEP-MPO throughput, DEP controller": timings("dep_mpo_throughput.py"),
    "Dyna vs DDPG Pendulum-v1": dyna,
    "DDP throughput, 1 vs 2 processes": timings("ddp_throughput.py"),
    "TD3 and SAC HalfCheetah-v5, lit_rl vs SB3": halfcheetah,
}
QUICK_SKIPS = ("TD3 and SAC HalfCheetah-v5, lit_rl vs SB3",)
LEARNING_STEPS = (
    "DDPG Pendulum-v1, lit_rl vs SB3",
    "TD3 and SAC Pendulum-v1, lit_rl vs SB3",
    "Dyna vs DDPG Pendulum-v1",
)  # minutes per run: not a quick check


def busy_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (/proc/stat, not idle or iowait)."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of the benchmark processes it has waited for."""
    usages = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(u.ru_utime + u.ru_stime for u in usages)


def fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def runtime_report(seconds: dict[str, float], other_cores: float, checks: list[Check], quick: bool) -> str:
    lines = [
        machine_line("mujoco", "myosuite", "stable-baselines3"),
        "",
        "| step | wall time |",
        "|---|---|",
        *(f"| {name} | {fmt_minutes(s)} |" for name, s in seconds.items()),
        f"| **total** (`make {'bench-quick' if quick else 'bench'}`) | **{fmt_minutes(sum(seconds.values()))}** |",
        "",
        f"Other jobs used {other_cores:.1f} of the {os.cpu_count()} cores on average meanwhile (machine CPU "
        "time from /proc/stat less this run's own).",
        "",
        "Checks: " + "; ".join(f"{name}: **{'pass' if passed else 'FAIL'}**" for name, passed in checks) + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick regression check (make bench-quick)")
    parser.add_argument("--seeds", nargs="+", help="default: 0 1 2, with --quick 0")
    parser.add_argument(
        "--report", action="store_true", help="only rebuild the learning tables and figures from bench_runs/*.json"
    )
    args = parser.parse_args()
    if args.report:
        global REPORT_ONLY
        REPORT_ONLY = True
        for name in LEARNING_STEPS:
            STEPS[name](args.seeds or ["0", "1", "2"], args.quick)
        return
    seeds = args.seeds or (["0"] if args.quick else ["0", "1", "2"])
    seconds, checks = {}, []
    start, busy_start, own_start = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    for name, step in STEPS.items():
        if args.quick and name in QUICK_SKIPS:
            continue
        step_start = time.perf_counter()
        checks += step(seeds, args.quick)
        seconds[name] = time.perf_counter() - step_start
        print(f"== {name}: {fmt_minutes(seconds[name])}", flush=True)
    wall = time.perf_counter() - start
    other_cores = max(0.0, (busy_cpu_seconds() - busy_start) - (own_cpu_seconds() - own_start)) / wall
    report = runtime_report(seconds, other_cores, checks, args.quick)
    print(report)
    rewrite_section(section("runtime", args.quick), report)
    if not all(passed for _, passed in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()

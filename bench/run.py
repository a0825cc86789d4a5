"""`make bench` and `make bench-quick`: every benchmark, one after the other on this machine.

They run in one go so that their wall times compare as ratios. The steps (``STEPS``, in order):

1. DDPG on Pendulum-v1, lit_rl against Stable-Baselines3 with rl-zoo settings (bench/lit_rl_runs.py,
   bench/sb3_baseline.py): seeds 0-2, 20,000 steps each, and the lit_rl learning curves
   (docs/ddpg_pendulum.png, drawn by `python -m lit_rl plot`);
2. TD3 and SAC on Pendulum-v1, the same against SB3's TD3 and SAC (docs/td3_sac_pendulum.png);
3. DEP-MPO myoLegWalk throughput and DEP controller timings (bench/dep_mpo_throughput.py);
4. Dyna against DDPG on Pendulum-v1 by real environment steps (bench/dyna_pendulum.py);
5. DDPG Pendulum and DEP-MPO myoLegWalk env steps/s with 1 and 2 DDP processes (bench/ddp_throughput.py);
6. TD3 and SAC on HalfCheetah-v5 against SB3 at 30,000 steps, seed 0 (not in ``--quick``);
7. CrossQ on Pendulum-v1 and HalfCheetah-v5 against sb3-contrib's CrossQ, both with rl-zoo's settings, seeds 0-2:
   hours here, so only when named (`make bench-crossq`, ``--only crossq``), never in `make bench` or ``--quick``;
   a seed at a time, in ~/lit_rl_runs/crossq, and a finished seed is kept, so it goes on over several sessions.

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

``--only WORD ...`` runs (or with ``--report`` rebuilds) only the steps whose name holds one of the
words (case-insensitive), e.g. ``--only crossq``; the runtime section is then left as it is (it
times a whole `make bench`), the wall times are printed.

    python bench/run.py [--quick] [--seeds 0 1 2] [--report] [--only WORD ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from summary import (
    RESULTS,
    ROOT,
    LoadSampler,
    figure_path,
    fmt_steps,
    iqm_ci,
    keep_logs,
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


def run_lit_rl(config: str, seeds: list[str], steps: int, eval_every: int, threads: list[str], out: Path,
               runs_dir: Path, overrides: tuple[str, ...] = ()) -> None:  # fmt: skip
    """lit_rl's ``config`` (with CLI ``overrides``) over ``seeds``, its result JSON written to ``out``."""
    run_script("lit_rl_runs.py", "--seeds", *seeds, *threads, "--config", config, "--out", str(out),
               "--runs-dir", str(runs_dir), "--", f"--data.init_args.total_steps={steps}",
               f"--data.init_args.epoch_steps={eval_every}", *overrides)  # fmt: skip


def run_sb3(algo: str, env: str, seeds: list[str], steps: int, eval_every: int, threads: list[str], out: Path,
            log_dir: Path | None = None) -> None:  # fmt: skip
    """SB3's ``algo`` with rl-zoo settings over ``seeds``, the same budget and evaluation as ``run_lit_rl``;
    ``log_dir``: where each seed's evaluations are kept as a CSV."""
    logs = [] if log_dir is None else ["--log-dir", str(log_dir)]
    run_script("sb3_baseline.py", "--seeds", *seeds, *threads, "--algo", algo, "--env", env, "--out", str(out),
               "--total-steps", str(steps), "--eval-every", str(eval_every), *logs)  # fmt: skip


def compare_with_sb3(algo: str, config: str, env: str, seeds: list[str], steps: int, threads: list[str],
                     quick: bool, eval_every: int = 1_000,
                     overrides: tuple[str, ...] = ()) -> tuple[dict, dict]:  # fmt: skip
    """lit_rl's ``config`` (with CLI ``overrides``) and SB3's ``algo`` with rl-zoo settings, the same seeds, budget
    and evaluation."""
    out = out_dir(quick)
    ours_json, sb3_json = out / f"lit_rl_{Path(config).stem}.json", out / f"sb3_{algo}_{env}.json"
    if not REPORT_ONLY:
        runs_dir = out / f"{env.split('-')[0].lower()}_runs"
        run_lit_rl(config, seeds, steps, eval_every, threads, ours_json, runs_dir, overrides)
        run_sb3(algo, env, seeds, steps, eval_every, threads, sb3_json)
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


@dataclass(frozen=True)
class CrossQRun:
    """One env of the CrossQ step: lit_rl's ``config`` made rl-zoo's by ``overrides``, against sb3-contrib."""

    env: str
    config: str
    steps: int
    updates_from: int  # the evaluation from which every env step brings one update: the steps/s window starts there
    shown: tuple[int, ...]  # the evaluations the table shows
    overrides: tuple[str, ...]  # where the config's documented choices differ from rl-zoo's hyperparams/crossq.yml


CROSSQ_RUNS = (
    # rl-zoo's Pendulum-v1 entry: 256-256 for the policy and the critics, policy delay 2, sb3-contrib's gamma 0.99 and
    # learning_starts 100 (the config: sb3-contrib's 1024-1024 critics and delay 3, lit_rl's SAC discount 0.98, and
    # 256 steps before batches). 10,000 steps, half rl-zoo's n_timesteps: SAC reaches -200 by 3,000-6,000 here.
    CrossQRun("Pendulum-v1", "configs/crossq_pendulum.yaml", 10_000, 1_000, (2_000, 4_000, 6_000, 8_000, 10_000),
              ("--model.init_args.critic_hidden=[256,256]", "--model.init_args.policy_delay=2",
               "--data.init_args.replay.discount=0.99", "--data.init_args.replay.steps_before_batches=100")),
    # rl-zoo's MuJoCo entry (HalfCheetah-v4): 2048-2048 critics, the paper's (the config: sb3-contrib's 1024-1024);
    # the rest is the config's. 5,000 random steps (learning_starts), then 3,000 with one update each: an update of
    # these critics takes about 0.4 s on one core, so 3,000 of them are 20-40 min a run, 6 runs.
    CrossQRun("HalfCheetah-v5", "configs/crossq_halfcheetah.yaml", 8_000, 5_000, (5_000, 6_000, 7_000, 8_000),
              ("--model.init_args.critic_hidden=[2048,2048]",)),
)  # fmt: skip
# One torch thread on both sides: per-core speed, and beside another job a second thread's spin-waits slow the
# updates several times (as PENDULUM_THREADS); the runs share this machine with long jobs.
CROSSQ_THREADS = ["--threads", "1"]
CROSSQ_EVAL_EVERY = 1_000


def updating_steps_per_s(run: dict, updates_from: int) -> float:
    """Env steps per second of training time from the evaluation at ``updates_from`` to the last: the stretch where
    both sides make one update per env step (random warm-up steps, far cheaper, left out)."""
    steps = [s for s, _ in run["curve"]]
    first = steps.index(updates_from)
    return (steps[-1] - steps[first]) / (run["train_seconds_at"][-1] - run["train_seconds_at"][first])


def steps_label(steps: int) -> str:
    return f"{steps // 1000}k" if steps % 1000 == 0 else f"{steps:,}"


def reached_iqm(runs: list[dict]) -> str:
    """``steps_iqm`` when every seed reached -200; else how many did (its interval is NaN with a seed at infinity)."""
    reached = sum(r["steps_to_minus_200"] is not None for r in runs)
    return steps_iqm(runs) if reached == len(runs) else f"{reached} of {len(runs)} seeds reach it"


def crossq_table(spec: CrossQRun, ours: dict, sb3: dict) -> tuple[list[str], float]:
    """One env's rows and the lit_rl / sb3-contrib ratio of the median updating steps/s."""
    pendulum = spec.env.startswith("Pendulum")
    shown = " / ".join(map(steps_label, spec.shown))
    window = f"{steps_label(spec.updates_from)}-{steps_label(spec.steps)}"
    lines = [
        f"**{spec.env}**, {spec.steps:,} steps:",
        "",
        f"| implementation | seed |{' steps to test return >= -200 |' if pendulum else ''} test return at {shown} "
        f"| training time (s) | env steps/s while updating ({window}) |",
        f"|---|---|{'---|' if pendulum else ''}---|---|---|",
    ]
    medians = []
    for name, result in (("lit_rl CrossQ", ours), ("sb3-contrib CrossQ (rl-zoo)", sb3)):
        runs = result["runs"]
        speeds = [updating_steps_per_s(r, spec.updates_from) for r in runs]
        for r, speed in zip(runs, speeds, strict=True):
            at = dict(r["curve"])
            returns = " / ".join(f"{at[s]:.0f}" if s in at else "n/a" for s in spec.shown)
            reached = f" {fmt_steps(r['steps_to_minus_200'])} |" if pendulum else ""
            lines.append(f"| {name} | {r['seed']} |{reached} {returns} | {r['train_seconds']:.0f} | {speed:.1f} |")
        reached = f" **{reached_iqm(runs)}** |" if pendulum else ""
        lines.append(
            f"| **{name}** | IQM [95% CI]; time, steps/s: median (min–max) |{reached} final: "
            f"{iqm_ci([r['final_return'] for r in runs], lambda v: f'{v:.0f}')} | "
            f"**{spread([r['train_seconds'] for r in runs], lambda v: f'{v:.0f}')}** | **{spread(speeds)}** |"
        )
        medians.append(statistics.median(speeds))
    return lines, medians[0] / medians[1]


# Outside the checkout: the step takes hours (12 runs), so it goes on over several working sessions, a seed at a time.
CROSSQ_OUT = Path.home() / "lit_rl_runs" / "crossq"
CROSSQ_SIDES = ("lit_rl", "sb3_contrib")


def crossq_seed(spec: CrossQRun, side: str, seed: str) -> dict:
    """One side's run of one seed on ``spec.env``: ``<side>_seed<seed>.json`` (its result, wall time and the
    machine's load meanwhile) in ``CROSSQ_OUT/<env>/``, copied with its per-epoch log to ``bench/results/crossq/<env>/``
    as soon as it ends. A seed kept there is not run again; an interrupted one starts again."""
    out, kept = CROSSQ_OUT / spec.env, RESULTS / "crossq" / spec.env
    name = f"{side}_seed{seed}.json"
    if REPORT_ONLY or (kept / name).is_file():
        return json.loads((kept / name).read_text())
    out.mkdir(parents=True, exist_ok=True)
    budget = ([seed], spec.steps, CROSSQ_EVAL_EVERY, CROSSQ_THREADS, out / name)
    start = time.perf_counter()
    with LoadSampler() as load:
        if side == "lit_rl":
            run_lit_rl(spec.config, *budget, out / "lit_rl", spec.overrides)
        else:
            run_sb3("crossq", spec.env, *budget, out / "sb3_contrib")
    (run,) = json.loads((out / name).read_text())["runs"]
    run.update(wall_seconds=time.perf_counter() - start, **load.record(own=1))
    if side == "lit_rl":
        keep_logs(Path(run["run_dir"]), kept / "lit_rl" / Path(run["run_dir"]).name)
    else:
        log = f"crossq_{spec.env}_seed{seed}.csv"
        (kept / "sb3_contrib").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "sb3_contrib" / log, kept / "sb3_contrib" / log)
    (kept / name).write_text(json.dumps(run, indent=1))  # last: its presence says the seed is done
    return run


def crossq(seeds: list[str], quick: bool) -> list[Check]:
    """CrossQ against sb3-contrib's CrossQ, both with rl-zoo's settings (the lit_rl configs made rl-zoo's where they
    differ): learning and env steps/s on Pendulum-v1 and HalfCheetah-v5, each seed run on its own (``crossq_seed``)
    and its logs (lit_rl's metrics.csv, sb3-contrib's evaluations as CSV) kept under bench/results/crossq/, from which
    ``--report`` redraws the table: with the seeds kept on both sides so far, while the step goes on over sessions.
    Never quick (QUICK_SKIPS)."""
    lines, ratios, checks, runs = [machine_line("stable-baselines3", "sb3-contrib", "mujoco"), ""], [], [], []
    for spec in CROSSQ_RUNS:
        kept = RESULTS / "crossq" / spec.env
        done = [s for s in seeds if all((kept / f"{side}_seed{s}.json").is_file() for side in CROSSQ_SIDES)]
        if REPORT_ONLY and done != seeds:
            lines += [f"**{spec.env}**: seeds {', '.join(done) or 'none'} of {', '.join(seeds)} kept on both sides "
                      "so far (`make bench-crossq` goes on with the rest).", ""]  # fmt: skip
            if not done:
                continue
        run_seeds = done if REPORT_ONLY else seeds
        ours, sb3 = ({"runs": [crossq_seed(spec, side, seed) for seed in run_seeds]} for side in CROSSQ_SIDES)
        runs += ours["runs"] + sb3["runs"]
        table, ratio = crossq_table(spec, ours, sb3)
        lines += [*table, ""]
        ratios.append(f"{spec.env} **{ratio:.2f}**")
        if spec.env.startswith("Pendulum"):
            checks.append((f"lit_rl CrossQ reaches -200 within {spec.steps:,} Pendulum-v1 steps, every seed",
                           all(r["steps_to_minus_200"] is not None for r in ours["runs"])))  # fmt: skip
    shared, unknown = sum(bool(r.get("shared")) for r in runs), sum("shared" not in r for r in runs)
    lines += [
        f"lit_rl / sb3-contrib median env steps/s while updating (above 1: lit_rl faster): {', '.join(ratios)}.",
        "",
        f"The {len(runs)} runs took {fmt_minutes(sum(r['wall_seconds'] for r in runs))} one after the other; "
        f"{shared} of them shared the machine with other jobs (load above 2: read their steps/s as a lower bound)"
        + (f", {unknown} ended before the first load sample (30 s)" if unknown else "")
        + f". Per-epoch logs: {(RESULTS / 'crossq').relative_to(ROOT)}/.",
    ]
    report = "\n".join(lines)
    print(report)
    rewrite_section("crossq-table", report)
    return checks


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


CROSSQ_STEP = "CrossQ Pendulum-v1 and HalfCheetah-v5, lit_rl vs sb3-contrib"
STEPS: dict[str, Callable[[list[str], bool], list[Check]]] = {
    "DDPG Pendulum-v1, lit_rl vs SB3": pendulum(("ddpg",), "pendulum-table", "ddpg_pendulum.png"),
    "TD3 and SAC Pendulum-v1, lit_rl vs SB3": pendulum(
        ("td3", "sac"), "td3-sac-pendulum-table", "td3_sac_pendulum.png"
    ),
    "DEP-MPO throughput, DEP controller": timings("dep_mpo_throughput.py"),
    "Dyna vs DDPG Pendulum-v1": dyna,
    "DDP throughput, 1 vs 2 processes": timings("ddp_throughput.py"),
    "TD3 and SAC HalfCheetah-v5, lit_rl vs SB3": halfcheetah,
    CROSSQ_STEP: crossq,
}
QUICK_SKIPS = ("TD3 and SAC HalfCheetah-v5, lit_rl vs SB3", CROSSQ_STEP)
ONLY_WHEN_NAMED = (CROSSQ_STEP,)  # hours here: `--only crossq`
LEARNING_STEPS = (
    "DDPG Pendulum-v1, lit_rl vs SB3",
    "TD3 and SAC Pendulum-v1, lit_rl vs SB3",
    "Dyna vs DDPG Pendulum-v1",
)  # minutes per run: not a quick check
REPORTABLE = (*LEARNING_STEPS, CROSSQ_STEP)  # --report --only


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


def selected_steps(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The steps to run (or rebuild, with --report), in ``STEPS`` order."""
    default = LEARNING_STEPS if args.report else [n for n in STEPS if n not in ONLY_WHEN_NAMED]
    if not args.only:
        names = list(default)
    else:
        words = [w.lower() for w in args.only]
        unmatched = [w for w in words if not any(w in n.lower() for n in STEPS)]
        if unmatched:
            parser.error(f"--only {' '.join(unmatched)}: no step's name holds it; the steps: {list(STEPS)}")
        names = [n for n in STEPS if any(w in n.lower() for w in words)]
    if args.report:
        names = [n for n in names if n in REPORTABLE]
    if args.quick:
        names = [n for n in names if n not in QUICK_SKIPS]
    if not names:
        parser.error(f"nothing to run: --quick skips {list(QUICK_SKIPS)}; --report rebuilds only {list(REPORTABLE)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick regression check (make bench-quick)")
    parser.add_argument("--seeds", nargs="+", help="default: 0 1 2, with --quick 0")
    parser.add_argument(
        "--report", action="store_true", help="only rebuild the learning tables and figures from bench_runs/*.json"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="WORD",
        help="only the steps whose name holds a WORD (case-insensitive), e.g. crossq",
    )
    args = parser.parse_args()
    names = selected_steps(parser, args)
    if args.report:
        global REPORT_ONLY
        REPORT_ONLY = True
        for name in names:
            STEPS[name](args.seeds or ["0", "1", "2"], args.quick)
        return
    seeds = args.seeds or (["0"] if args.quick else ["0", "1", "2"])
    seconds, checks = {}, []
    start, busy_start, own_start = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    for name in names:
        step = STEPS[name]
        step_start = time.perf_counter()
        checks += step(seeds, args.quick)
        seconds[name] = time.perf_counter() - step_start
        print(f"== {name}: {fmt_minutes(seconds[name])}", flush=True)
    wall = time.perf_counter() - start
    other_cores = max(0.0, (busy_cpu_seconds() - busy_start) - (own_cpu_seconds() - own_start)) / wall
    report = runtime_report(seconds, other_cores, checks, args.quick)
    print(report)
    if not args.only:  # the runtime section times a whole `make bench` (or bench-quick), not a part of it
        rewrite_section(section("runtime", args.quick), report)
    if not all(passed for _, passed in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()

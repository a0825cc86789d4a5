"""A 300,000-step learning probe of each MyoSuite DEP-MPO config (issue 30): which tasks learn visibly.

Each probe (``PROBES``) is one ``python -m lit_rl fit`` process of a config as it is, seed 0, shrunk to a
2-core machine (``LAYOUT``, ``PROTOCOL``): 1 x 10 envs in-process, 5 test episodes after each 50,000-step
epoch, a save every 50,000 steps, to 300,000 steps. The configs' ``steps_before_batches: 200000`` (deprl's)
is kept, so a probe is 200,000 DEP-only steps (no learning) and then 100,000 steps of learning. Two probes
repeat a DEP one without DEP (``dep_mode: 0``: MPO explores with its own untrained policy in the warm-up).

Run directories go to ``--out`` (``~/lit_rl_runs/myosuite_probes``, outside the checkout so that they
survive a new one). A probe that finished (it has ``result.json``) is skipped; an interrupted one resumes
from its last save (the configs have ``resume: true``). While a probe runs and at its end, its per-epoch
logs (``metrics.csv`` of each segment, ``result.json``, ``wall_s.json``, ``load.json``) are copied to
``bench/results/myosuite_probes/<probe>/``, which is committed: the BENCHMARKS.md section
``myosuite-probes-table`` is drawn from those copies only, so ``--report`` works from the repository alone.

    OMP_NUM_THREADS=1 python bench/myosuite_probes.py [--probes NAME ...] [--report]

A smoke (another ``--out`` keeps its logs in ``<out>/results`` and only prints the table; ``--report``
with the same flags, and ``--markdown`` a scratch copy of BENCHMARKS.md, redraws it there)::

    OMP_NUM_THREADS=1 python bench/myosuite_probes.py --probes myolegroughterrain --steps 3000 \
        --before 1000 --epoch 1000 --save 1000 --out /tmp/probe_smoke
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from summary import RESULTS, ROOT, LoadSampler, keep_logs, machine_line, rewrite_section, segment_order

OUT = Path.home() / "lit_rl_runs" / "myosuite_probes"
SECTION = "myosuite-probes-table"
TASKS_MD = ROOT / "docs" / "myosuite_tasks.md"  # the compatibility table: each task's actuators
SEED = 0
POLL_S = 60  # seconds between copies of a running probe's logs
LOGS = ("result.json", "wall_s.json", "load.json")
LAYOUT = ["--data.init_args.parallel", "1", "--data.init_args.sequential", "10"]  # 10 envs in-process
OWN_PROCESSES = 1  # what the probe keeps busy (learner and envs in one process): more load means shared
PROTOCOL = [
    "--data.init_args.test_episodes", "5",
    "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
    "--trainer.enable_progress_bar", "false",
]  # fmt: skip
NO_DEP = ["--model.init_args.dep_mode", "0"]
PROBES = {  # name: (config, overrides), in the order they run
    "myolegroughterrain": ("configs/dep_mpo_myolegroughterrain.yaml", []),
    "myoleghillyterrain": ("configs/dep_mpo_myoleghillyterrain.yaml", []),
    "myolegstairterrain": ("configs/dep_mpo_myolegstairterrain.yaml", []),
    "myolegdirectionalforward": ("configs/dep_mpo_myolegdirectionalforward.yaml", []),
    "myooslrun": ("configs/dep_mpo_myooslrun.yaml", []),
    "myobimanual": ("configs/dep_mpo_myobimanual.yaml", []),
    "myosoccer": ("configs/dep_mpo_myosoccer.yaml", []),
    "myotabletennis": ("configs/dep_mpo_myotabletennis.yaml", []),
    "myolegroughterrain_no_dep": ("configs/dep_mpo_myolegroughterrain.yaml", NO_DEP),
    "myosoccer_no_dep": ("configs/dep_mpo_myosoccer.yaml", NO_DEP),
}


@dataclass(frozen=True)
class Budget:
    steps: int = 300_000  # env steps per probe
    before: int = 200_000  # DEP-only env steps (steps_before_batches): learning starts after them
    epoch: int = 50_000  # env steps per epoch (an evaluation of 5 test episodes after each)
    save: int = 50_000  # env steps between saves (with the replay): an interrupted probe resumes there


def command(out: Path, name: str, budget: Budget) -> list[str]:
    config, overrides = PROBES[name]
    return [
        sys.executable, "-m", "lit_rl", "fit", "--config", config, *LAYOUT, *PROTOCOL, *overrides,
        "--seed_everything", str(SEED), "--data.init_args.total_steps", str(budget.steps),
        "--data.init_args.epoch_steps", str(budget.epoch), "--data.init_args.save_steps", str(budget.save),
        "--data.init_args.replay.steps_before_batches", str(budget.before),
        "--working_dir", str(out), "--name", name,
    ]  # fmt: skip


def run_probe(out: Path, results: Path, name: str, budget: Budget) -> None:
    """Run (or resume) one probe to ``budget.steps``, copying its logs to ``results/<name>`` every
    ``POLL_S`` seconds and at its end; the machine's load is sampled throughout (``load.json``, all
    segments of a resumed probe) and summarised in ``result.json``."""
    directory, kept = out / name, results / name
    if (directory / "result.json").is_file():
        keep_logs(directory, kept, LOGS)
        print(f"{name}: done already", flush=True)
        return
    if not (directory / "checkpoints" / "last.ckpt").is_file():  # killed before its first save: start again
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(kept, ignore_errors=True)
    wall, loads = directory / "wall_s.json", directory / "load.json"
    args = command(out, name, budget)
    print(f"{name}: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} python {' '.join(args[1:])}", flush=True)
    start = time.perf_counter()
    with LoadSampler() as sampler:
        earlier = json.loads(loads.read_text()) if loads.is_file() else []
        process = subprocess.Popen(args, cwd=ROOT)
        try:
            while process.poll() is None:
                try:
                    process.wait(timeout=POLL_S)
                except subprocess.TimeoutExpired:
                    pass
                if directory.is_dir():  # fit makes it once the config is read
                    loads.write_text(json.dumps(earlier + sampler.samples))
                    keep_logs(directory, kept, LOGS)  # what an interrupted probe reached is kept too
        finally:
            if process.poll() is None:  # this script was interrupted: so is the probe (it resumes)
                process.terminate()
                process.wait()
    segments = [*(json.loads(wall.read_text()) if wall.is_file() else []), time.perf_counter() - start]
    sampler.samples[:0] = earlier
    if directory.is_dir():  # a failed segment counts too: the probe resumes from its last save
        wall.write_text(json.dumps(segments))
        loads.write_text(json.dumps(sampler.samples))
        keep_logs(directory, kept, LOGS)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, args)
    result = {"probe": name, "config": PROBES[name][0], "overrides": PROBES[name][1], "seed": SEED,
              **asdict(budget), "wall_s": sum(segments), "segments": len(segments),
              **sampler.record(OWN_PROCESSES), "machine": machine_line("mujoco", "myosuite")}  # fmt: skip
    (directory / "result.json").write_text(json.dumps(result, indent=1))
    keep_logs(directory, kept, LOGS)


def read_rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def merged_rows(directory: Path) -> list[dict[str, float]]:
    """The logged rows of all segments, in env-step order: a resumed segment replaces what the killed one
    logged after the save it resumed from, and a row logged again at that save counts once (the later)."""
    rows: list[dict[str, float]] = []
    for metrics in sorted(directory.glob("**/metrics.csv"), key=segment_order):
        segment = [r for r in read_rows(metrics) if "env_steps" in r]
        if segment:
            first = min(r["env_steps"] for r in segment)
            rows = [r for r in rows if r["env_steps"] <= first] + segment
    rows = {(r["env_steps"], tuple(sorted(r))): r for r in rows}.values()
    return sorted(rows, key=lambda r: r["env_steps"])


def epoch_of(env_steps: float, epoch: int) -> int:
    return int(-(-env_steps // epoch) * epoch)


def steps_per_s(rows: list[dict[str, float]], low: int, high: int) -> float | None:
    """Env steps/s over the points logged in (low, high]: each ``perf/env_steps_per_s`` is a rate since the
    previous point (training and evaluation), so its seconds are the steps since then over the rate."""
    steps = seconds = previous = 0.0
    for row in rows:
        if "perf/env_steps_per_s" not in row:
            continue
        if low < row["env_steps"] <= high and row["perf/env_steps_per_s"] > 0:
            steps += row["env_steps"] - previous
            seconds += (row["env_steps"] - previous) / row["perf/env_steps_per_s"]
        previous = row["env_steps"]
    return steps / seconds if seconds else None


def train_at(rows: list[dict[str, float]], end: int, epoch: int) -> dict[str, float]:
    """Mean train episode return and length over the episodes that ended in the epoch ending at ``end``
    (each logged point is a mean over the episodes since the previous one; ``train/episodes`` counts them)."""
    episodes, totals = 0.0, [0.0, 0.0, 0.0]
    for row in rows:
        if "train/episode_length" not in row:
            continue
        count, episodes = row["train/episodes"] - episodes, row["train/episodes"]
        if epoch_of(row["env_steps"], epoch) == end:
            totals[0] += row["train/episode_return"] * count
            totals[1] += row["train/episode_length"] * count
            totals[2] += count
    return {"return": totals[0] / totals[2], "length": totals[1] / totals[2]} if totals[2] else {}


def test_at(rows: list[dict[str, float]], end: int, epoch: int) -> dict[str, float]:
    """The evaluation logged at the end of the epoch ending at ``end`` (its last, after a resume)."""
    tests = [r for r in rows if "test/episode_return" in r and epoch_of(r["env_steps"], epoch) == end]
    return tests[-1] if tests else {}


def learns(before: dict, after: dict, train_before: dict, train_after: dict) -> str:
    """The rule of the table's prose: test return up by more than the spread (std) of the test episodes at
    the end of the DEP-only phase, and the train return up too."""
    values = (before.get("test/episode_return"), before.get("test/episode_return_std"),
              after.get("test/episode_return"), train_before.get("return"), train_after.get("return"))  # fmt: skip
    if None in values:
        return "–"
    test_before, spread, test_after, train_b, train_a = values
    return "yes" if test_after - test_before > spread and train_a > train_b else "no"


def actuators() -> dict[str, str]:
    """Env id -> its actuators, from the compatibility table (docs/myosuite_tasks.md)."""
    out = {}
    for line in TASKS_MD.read_text().splitlines() if TASKS_MD.is_file() else []:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 3 and cells[0].startswith("`"):
            out[cells[0].strip("`")] = cells[3]
    return out


def env_id(name: str) -> str:
    return yaml.safe_load((ROOT / PROBES[name][0]).read_text())["data"]["init_args"]["env"]["id"]


def number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def term(value: float | None) -> str:
    """A reward term, compact: terms range from thousands to thousandths."""
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 1 else f"{value:.2g}"


def arrow(a: float | None, b: float | None, digits: int = 1) -> str:
    return f"{number(a, digits)} → {number(b, digits)}"


def steps_label(steps: int) -> str:
    return f"{steps / 1000:g}k"


def load_record(kept: Path, result: dict) -> dict:
    """``result.json``'s load summary, or for a probe still running the same from its ``load.json``."""
    if "shared" in result or not (kept / "load.json").is_file():
        return result
    sampler = LoadSampler()
    sampler.samples = json.loads((kept / "load.json").read_text())
    return sampler.record(OWN_PROCESSES)


def order() -> list[str]:
    """Table order: each no-DEP probe beside its DEP one."""
    names = [n for n in PROBES if not n.endswith("_no_dep")]
    for name in [n for n in PROBES if n.endswith("_no_dep")]:
        twin = name.removesuffix("_no_dep")
        names.insert(names.index(twin) + 1 if twin in names else len(names), name)
    return names


def row(results: Path, name: str, budget: Budget, motors: dict[str, str]) -> str:
    ident = env_id(name)
    label = f"{name} (`dep_mode: 0`)" if PROBES[name][1] == NO_DEP else name
    task = f"`{ident}`" + (f" ({motors[ident]})" if ident in motors else "")
    kept = results / name
    rows = merged_rows(kept)
    if not rows:
        return f"| {label} | {task} | not run |" + " |" * 8
    result = json.loads((kept / "result.json").read_text()) if (kept / "result.json").is_file() else {}
    if not result:
        label += f" (running, resumable: {rows[-1]['env_steps']:,.0f} steps)"
    before, end = budget.before, budget.steps
    test_b, test_a = test_at(rows, before, budget.epoch), test_at(rows, end, budget.epoch)
    train_b, train_a = train_at(rows, before, budget.epoch), train_at(rows, end, budget.epoch)
    rates = f"{number(steps_per_s(rows, 0, before), 0)} / {number(steps_per_s(rows, before, end), 0)}"

    def test(kind: str) -> str:
        return arrow(test_b.get(f"test/episode_{kind}"), test_a.get(f"test/episode_{kind}"))

    spread = test_b.get("test/episode_return_std")
    test_return = test("return") + ("" if spread is None else f" (± {spread:.1f} at {steps_label(before)})")
    prefix = "test/reward_terms/"
    names = sorted({k[len(prefix) :] for r in (test_b, test_a) for k in r if k.startswith(prefix)})
    terms = "; ".join(f"{t} {term(test_b.get(prefix + t))}→{term(test_a.get(prefix + t))}" for t in names) or "–"
    load = load_record(kept, result)
    machine = "–"
    if "shared" in load:
        machine = f"{'shared' if load['shared'] else 'alone'} (load ≤ {load['load_max']:.1f})"
    hours = number(result["wall_s"] / 3600) if "wall_s" in result else "–"
    cells = [label, task, rates, arrow(train_b.get("return"), train_a.get("return")),
             arrow(train_b.get("length"), train_a.get("length")), test_return, test("length"), terms,
             learns(test_b, test_a, train_b, train_a), hours, machine]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def table(results: Path, budget: Budget) -> str:
    finished = [results / n / "result.json" for n in PROBES if (results / n / "result.json").is_file()]
    machines = sorted({json.loads(p.read_text()).get("machine", "") for p in finished} - {""})
    b, s = steps_label(budget.before), steps_label(budget.steps)
    lines = [
        *(machines or ["No probe has finished yet."]),
        "",
        f"Each cell `a → b`: at the end of the DEP-only phase ({b}) and at the end ({s}). Train: the mean over "
        f"the episodes that ended in the last {steps_label(budget.epoch)} steps before; test: the mean of the "
        "evaluation's test episodes (± their std); test reward terms: MyoSuite's `rwd_dict`, each term summed "
        "over a test episode, mean over the episodes (`dense` is the reward itself). Env steps/s: "
        f"0-{b} / {b}-{s}, training and evaluations. Learns visibly: test return at {s} above its {b} value by "
        f"more than the {b} test episodes' std, and train return up too. Machine: shared when the 1-minute load "
        f"went over {OWN_PROCESSES + 1} (the probe keeps {OWN_PROCESSES} core busy).",
        "",
        "| probe | env id (actuators) | env steps/s | train return | train ep. length | test return | "
        f"test ep. length | test reward terms | learns visibly in {steps_label(budget.steps - budget.before)} learning "
        "steps? | hours | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    motors = actuators()
    return "\n".join([*lines, *(row(results, name, budget, motors) for name in order())])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", nargs="+", default=list(PROBES), choices=list(PROBES), metavar="NAME",
                        help=f"in order (default: all: {', '.join(PROBES)})")  # fmt: skip
    for key, value in asdict(Budget()).items():
        parser.add_argument(f"--{key}", type=int, default=value, help="(default: %(default)s)")
    parser.add_argument("--report", action="store_true", help="only redraw the table from the kept logs")
    parser.add_argument("--out", type=Path, default=OUT, help="run directories (default: %(default)s)")
    parser.add_argument(
        "--results", type=Path, help="the kept logs (default: bench/results/myosuite_probes; <out>/results "
        "for another --out, so a smoke leaves the committed logs alone)"
    )  # fmt: skip
    parser.add_argument(
        "--markdown", type=Path, help=f"the file whose {SECTION} section is rewritten, 'none' only prints it "
        "(default: BENCHMARKS.md; none for another --out)"
    )  # fmt: skip
    args = parser.parse_args()
    default_out = args.out.expanduser().resolve() == OUT.resolve()
    results = args.results or (RESULTS / "myosuite_probes" if default_out else args.out / "results")
    markdown = args.markdown or (ROOT / "BENCHMARKS.md" if default_out else Path("none"))
    budget = Budget(**{key: getattr(args, key) for key in asdict(Budget())})
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the probes share 2 cores; idle torch threads spin
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed script stops its probe too (finally)
    if not args.report:
        for name in args.probes:
            run_probe(args.out.expanduser(), results, name, budget)
    text = table(results, budget)
    print(text)
    if str(markdown) != "none":
        rewrite_section(SECTION, text, markdown)


if __name__ == "__main__":
    main()

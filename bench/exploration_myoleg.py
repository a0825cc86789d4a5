"""The exploration comparison on myoLegWalk-v0 (issue 31): DEP-MPO, DEP-CrossQ, DEP-SAC, Lattice-SAC,
pink-noise SAC and plain SAC in ``make bench-deprl``'s shrunk protocol.

Every run is one ``python -m lit_rl fit`` process built from bench/deprl_side_by_side.py's own lit_rl
command (``lit_rl_command``, with its ``Protocol``: 2 x 10 envs, hidden 256, 200,000 steps before the first
update, 1,000,000 steps, 100,000-step epochs with 10 test episodes, ``test_seeds: continued``, saves every
200,000 steps, float32, CSVLogger, ``muscle_sigmoid: false``). Only two things change per variant
(``VARIANTS``): the config file, and for SAC and CrossQ the width, given as ``actor_hidden`` and
``critic_hidden`` (two layers of 256 each) in place of MPO's ``hidden_size``. So ``dep_mpo`` is the same
command as bench-deprl's ``lit_rl`` float32 run, and every variant gets the protocol the same way.

The first 200,000 steps (``steps_before_batches``) fill the replay without updates. In the DEP variants
DEP alone acts there (mode 3's first phase). Lattice-SAC, pink-noise SAC and plain SAC have DEP off
(``dep_mode: 0``, ``random_steps: 0``): their untrained policy acts with its own exploration (Lattice's
noise, pink noise, SAC's Gaussian sampling).

Runs go to ``--out`` (``~/lit_rl_runs/exploration_myoleg``, outside the checkout so that they survive a new
one), ``<variant>_seed<seed>`` each. A finished run (it has ``result.json``, there or in the kept logs) is
skipped; an interrupted one resumes from its last save. While a run goes on (every minute) and at its end its
per-epoch logs (``metrics.csv`` of each segment, ``config.yaml``, ``result.json``, ``wall_s.json``,
``load.json``, ``machines.json``) are copied to ``bench/results/exploration_myoleg/<variant>_seed<seed>/``,
committed. The machine's load is sampled throughout (``summary.LoadSampler``); ``result.json`` says whether
the run shared the cores, and the machine of each segment (a resumed run may change machines).

After the listed runs, once every variant's seed 0 has finished, the ``--best`` (2) variants with the longest
mean test episode over the learning epochs get seed 1 too (the issue: two seeds for the two best).

``--report`` only redraws: the ``exploration-myoleg-table`` section of BENCHMARKS.md and
docs/exploration_myoleg_test.png, from the kept logs alone, with a row for bench-deprl's lit_rl DEP-MPO
runs where bench/results/deprl_side_by_side/ holds them.

    python bench/exploration_myoleg.py [--runs dep_sac:0 sac:0 ...] [--best 2] [--report]

A smoke (another ``--out`` keeps its logs in ``<out>/results``, draws its figure there and only prints the
table: the committed logs and BENCHMARKS.md are left alone)::

    OMP_NUM_THREADS=1 python bench/exploration_myoleg.py --runs dep_sac:0 sac:0 --steps 4000 --warmup 1000 \
        --epoch 2000 --save 2000 --best 0 --out /tmp/exploration_smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from deprl_side_by_side import Protocol, lit_rl_command
from myoleg_learning import epochs, fmt, has_metrics
from summary import RESULTS, ROOT, LoadSampler, keep_logs, rewrite_section, segment_machines

OUT = Path.home() / "lit_rl_runs" / "exploration_myoleg"
SECTION = "exploration-myoleg-table"
FIGURE = "exploration_myoleg_test.png"  # in docs/ for the default --out
SIDE_BY_SIDE = RESULTS / "deprl_side_by_side"  # bench-deprl's kept logs: its lit_rl runs are DEP-MPO here
PRECISION = "32-true"  # the protocol's float32 (deprl has no mixed precision)
POLL_S = 60  # seconds between copies of a running run's logs
LOGS = ("config.yaml", "result.json", "wall_s.json", "load.json", "machines.json")
SEED_FOR_BEST = 1  # the second seed of the best variants


@dataclass(frozen=True)
class Variant:
    label: str
    config: str
    warmup: str  # what acts in the steps before the first update
    overrides: tuple[str, ...] = ()


DEP_ONLY = "DEP alone"
VARIANTS = {
    "dep_mpo": Variant("DEP-MPO", "configs/dep_mpo_myolegwalk.yaml", DEP_ONLY),
    "dep_crossq": Variant("DEP-CrossQ", "configs/dep_crossq_myolegwalk.yaml", DEP_ONLY),
    "dep_sac": Variant("DEP-SAC", "configs/dep_sac_myolegwalk.yaml", DEP_ONLY),
    "lattice_sac": Variant("Lattice-SAC", "configs/lattice_sac_myolegwalk.yaml", "the untrained Lattice policy"),
    "pink_sac": Variant("pink-noise SAC", "configs/pink_sac_myolegwalk.yaml", "the untrained policy, pink noise"),
    # DEP-SAC's file with DEP off (docs/exploration.md): SAC's own Gaussian sampling from the first step
    "sac": Variant(
        "plain SAC",
        "configs/dep_sac_myolegwalk.yaml",
        "the untrained policy, Gaussian",
        ("--model.init_args.dep_mode", "0"),
    ),
}
DEFAULT_RUNS = [f"{variant}:0" for variant in VARIANTS]


def run_name(variant: str, seed: int) -> str:
    return f"{variant}_seed{seed}"


def command(out: Path, variant: str, seed: int, protocol: Protocol) -> list[str]:
    """bench-deprl's lit_rl command with this variant's config, its width under the config's own keys, and
    its overrides (last, so they win)."""
    spec = VARIANTS[variant]
    args = lit_rl_command(protocol, seed, out, run_name(variant, seed), PRECISION)
    args[args.index("--config") + 1] = spec.config
    init_args = yaml.safe_load((ROOT / spec.config).read_text())["model"]["init_args"]
    if "hidden_size" not in init_args:  # SAC and CrossQ: a list of layer widths for policy and critics
        at = args.index("--model.init_args.hidden_size")
        widths = []
        for key in ("actor_hidden", "critic_hidden"):
            width = json.dumps([protocol.hidden] * len(init_args[key]))  # the config's depth, the protocol's width
            widths += [f"--model.init_args.{key}", width]
        args[at : at + 2] = widths
    return [*args, *spec.overrides]


def reached(directory: Path, protocol: Protocol) -> int:
    return int(max((v["reached"] for v in epochs(directory, protocol.epoch).values()), default=0))


def train(out: Path, results: Path, variant: str, seed: int, protocol: Protocol) -> None:
    """Run (or resume) one run to ``protocol.steps``, copying its logs to ``results`` every ``POLL_S`` seconds
    and at its end."""
    name = run_name(variant, seed)
    directory, kept = out / name, results / name
    if (directory / "result.json").is_file():
        keep_logs(directory, kept, LOGS)
        print(f"{name}: done already", flush=True)
        return
    if (kept / "result.json").is_file():  # finished in a session whose home is gone
        print(f"{name}: done already (its logs are kept in {kept})", flush=True)
        return
    if not (directory / "checkpoints" / "last.ckpt").is_file():  # killed before its first save: start again
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(kept, ignore_errors=True)
    wall, loads = directory / "wall_s.json", directory / "load.json"
    args = command(out, variant, seed, protocol)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    load_now = os.getloadavg()[0]
    print(f"{name}: load {load_now:.2f} at the start; OMP_NUM_THREADS={threads} python {' '.join(args[1:])}",
          flush=True)  # fmt: skip
    start = time.perf_counter()
    earlier = json.loads(loads.read_text()) if loads.is_file() else []
    machines = directory / "machines.json"
    machines_so_far = segment_machines(machines, "mujoco", "myosuite")
    with LoadSampler() as sampler:
        sampler.samples.append(load_now)  # what else is running before the run adds its own load
        process = subprocess.Popen(args, cwd=ROOT, start_new_session=True)  # its env workers in its group
        try:
            while process.poll() is None:
                try:
                    process.wait(timeout=POLL_S)
                except subprocess.TimeoutExpired:
                    pass
                if directory.is_dir():  # fit makes it once the config is read
                    machines.write_text(json.dumps(machines_so_far))
                    loads.write_text(json.dumps(earlier + sampler.samples))
                    keep_logs(directory, kept, LOGS)  # what an interrupted run reached is kept too
        finally:
            if process.poll() is None:  # this script was stopped: so is the run (it resumes from its last save)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # Every segment, an interrupted one too, counts in the run's wall time and load.
            segments = [*(json.loads(wall.read_text()) if wall.is_file() else []), time.perf_counter() - start]
            sampler.samples[:0] = earlier
            if directory.is_dir():
                wall.write_text(json.dumps(segments))
                loads.write_text(json.dumps(sampler.samples))
                keep_logs(directory, kept, LOGS)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, args)
    steps = reached(directory, protocol)
    if steps < protocol.steps:
        raise RuntimeError(f"{name} stopped at {steps:,} env steps of {protocol.steps:,}")
    result = {"variant": variant, "seed": seed, "config": VARIANTS[variant].config,
              "overrides": list(VARIANTS[variant].overrides), **asdict(protocol), "precision": PRECISION,
              "omp_num_threads": threads, "wall_s": sum(segments), "segments": len(segments),
              **sampler.record(own=protocol.parallel + 1), "machines": machines_so_far}  # fmt: skip
    (directory / "result.json").write_text(json.dumps(result, indent=1))
    keep_logs(directory, kept, LOGS)


# ----------------------------------------------------------------------------------- report


def seeds_run(results: Path, variant: str) -> list[int]:
    """The seeds of a variant with kept logs (finished, or interrupted and resumable)."""
    found = [int(d.name.rsplit("_seed", 1)[1]) for d in results.glob(f"{variant}_seed*") if has_metrics(d)]
    return sorted(found)


def load_record(directory: Path, protocol: Protocol) -> dict:
    """``result.json``'s load summary, or for a run still going the same from its ``load.json``."""
    result = json.loads((directory / "result.json").read_text()) if (directory / "result.json").is_file() else {}
    if "shared" in result or not (directory / "load.json").is_file():
        return result
    sampler = LoadSampler()
    sampler.samples = json.loads((directory / "load.json").read_text())
    return sampler.record(own=protocol.parallel + 1)


def learning_mean(per_epoch: dict[int, dict[str, float]], protocol: Protocol) -> float | None:
    """The rule that picks the best variants: mean test episode length over the learning epochs."""
    tests = [v["test"] for e, v in per_epoch.items() if e > protocol.warmup and "test" in v]
    return sum(tests) / len(tests) if tests else None


def points(protocol: Protocol) -> list[int]:
    """The epoch ends the table shows: about 5 of them, evenly spaced (every epoch is in the kept logs)."""
    every = max(1, round(protocol.steps / protocol.epoch / 5)) * protocol.epoch
    return list(range(every, protocol.steps + 1, every))


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def row(label: str, warmup: str, directory: Path, protocol: Protocol) -> str:
    per_epoch = epochs(directory, protocol.epoch)
    done = (directory / "result.json").is_file()
    if not done:
        label += f" (running, resumable: {max((v['reached'] for v in per_epoch.values()), default=0):,.0f} steps)"
    cells = [" / ".join(fmt(per_epoch.get(p, {}).get(kind)) for p in points(protocol)) for kind in ("train", "test")]
    last = max((e for e, v in per_epoch.items() if "test" in v), default=None)
    final = "–" if last is None else f"{fmt(per_epoch[last].get('train'))} / {fmt(per_epoch[last]['test'])}"
    if last is not None and last != protocol.steps:
        final += f" (at {last:,})"

    def rate(learning: bool) -> str:
        return fmt(median([v["steps_per_s"] for e, v in per_epoch.items()
                           if "steps_per_s" in v and (e > protocol.warmup) == learning]), 0)  # fmt: skip

    result = json.loads((directory / "result.json").read_text()) if done else {}
    seconds = result.get("wall_s", sum(v.get("seconds", 0.0) for v in per_epoch.values()))
    load = load_record(directory, protocol)
    machine = "–" if "shared" not in load else ("shared" if load["shared"] else "alone")
    if "load_max" in load:
        machine += f" (load up to {load['load_max']:.1f})"
    if "omp_num_threads" in result:
        machine += f", OMP_NUM_THREADS {result['omp_num_threads']}"
    return (f"| {label} | {warmup} | {cells[0]} | {cells[1]} | {final} | {rate(False)} / {rate(True)} | "
            f"{seconds / 3600:.2f} | {machine} |")  # fmt: skip


def side_by_side_rows(protocol: Protocol) -> list[str]:
    """bench-deprl's lit_rl float32 runs: the same command as ``dep_mpo``, read from their kept logs."""
    runs = sorted(d for d in SIDE_BY_SIDE.glob("lit_rl_seed*") if has_metrics(d))
    if not runs:
        return [f"| DEP-MPO, `make bench-deprl`'s lit_rl float32 runs | {DEP_ONLY} | no kept logs in "
                "bench/results/deprl_side_by_side/ yet | | | | | |"]  # fmt: skip
    return [row(f"DEP-MPO, `make bench-deprl`'s lit_rl float32 run, seed {d.name.rsplit('_seed', 1)[1]}", DEP_ONLY,
                d, protocol) for d in runs]  # fmt: skip


def best(results: Path, protocol: Protocol, count: int) -> list[str] | None:
    """The ``count`` variants with the longest mean test episode over the learning epochs of their seed 0,
    once every variant's seed 0 has finished (None before)."""
    means = {}
    for variant in VARIANTS:
        directory = results / run_name(variant, 0)
        if not (directory / "result.json").is_file():
            return None
        means[variant] = learning_mean(epochs(directory, protocol.epoch), protocol) or 0.0
    return sorted(means, key=means.get, reverse=True)[:count]


def report(results: Path, protocol: Protocol, figure: Path | None) -> str:
    ran = {variant: seeds_run(results, variant) for variant in VARIANTS}
    directories = [results / run_name(v, s) for v, seeds in ran.items() for s in seeds]
    machines = sorted({m for d in directories if (d / "result.json").is_file()
                       for m in json.loads((d / "result.json").read_text()).get("machines", [])})  # fmt: skip
    shown = " / ".join(f"{p / 1e6:g}" for p in points(protocol))
    lines = [*(machines or ["Not measured yet: no run of this comparison has kept logs."]), "",
             f"Per run: what acts in the first {protocol.warmup:,} steps (no updates there); the mean train and test "
             f"episode length of the epochs ending at {shown} M env steps ({protocol.test_episodes} test episodes "
             "each); both at the last epoch; env steps/s, the median over the epochs before learning and over the "
             "learning epochs (evaluation included); hours of wall time; whether the run had the machine to "
             f"itself (its own load is about {protocol.parallel + 1}: more than one above that means it shared the "
             "cores, and its speed with them). Every epoch is in the kept logs.",
             "",
             f"| run | first {protocol.warmup:,} steps | train ep. length at {shown} M | "
             f"test ep. length at {shown} M | final train / test | env steps/s: before / during learning | "
             "hours | machine |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for variant, spec in VARIANTS.items():
        if not ran[variant]:
            lines.append(f"| {spec.label} | {spec.warmup} | not run | | | | | |")
        for seed in ran[variant]:
            lines.append(row(f"{spec.label}, seed {seed}", spec.warmup, results / run_name(variant, seed), protocol))
    if protocol == Protocol():  # bench-deprl's runs are this protocol only at its own numbers
        lines += side_by_side_rows(protocol)
    chosen = best(results, protocol, 2)
    if chosen:
        names = ", ".join(VARIANTS[v].label for v in chosen)
        lines += ["", f"Longest mean test episode over the learning epochs, seed 0: {names} (their seed "
                      f"{SEED_FOR_BEST} runs with `--best 2`)."]  # fmt: skip
    if figure is not None and directories:
        from lit_rl.commands.plot import plot

        plot(directories, "test/episode_length", "env_steps", figure, protocol.steps)
        dirs = " ".join(str(relative(d)) for d in directories)
        redraw = (f"python -m lit_rl plot {dirs} --metric test/episode_length --x-max {protocol.steps} "
                  f"--out {relative(figure)}")  # fmt: skip
        lines += ["", f"![test episode length, myoLegWalk-v0, exploration compared]({relative(figure)})", "",
                  f"Drawn by `{redraw}`."]  # fmt: skip
    return "\n".join(lines)


def relative(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="variant:seed, in order (default: %(default)s)")
    parser.add_argument("--best", type=int, default=2, help="then seed 1 of this many best variants (default: 2)")
    for key, value in asdict(Protocol()).items():  # bench-deprl's protocol; --warmup also as --before
        flags = [f"--{key.replace('_', '-')}", *(["--before"] if key == "warmup" else [])]
        parser.add_argument(*flags, dest=key, type=int, default=value, help="(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="run directories (default: %(default)s)")
    parser.add_argument("--report", action="store_true", help="only redraw the table and figure from the kept logs")
    args = parser.parse_args()
    runs = [(variant, int(seed)) for variant, seed in (r.split(":") for r in args.runs)]
    for variant, _ in runs:
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    protocol = Protocol(**{key: getattr(args, key) for key in asdict(Protocol())})
    out = args.out.expanduser().resolve()
    default_out = out == OUT.resolve()
    # Another --out (a smoke) keeps its logs, figure and table to itself.
    results = RESULTS / OUT.name if default_out else out / "results"
    figure = ROOT / "docs" / FIGURE if default_out else out / FIGURE
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped script stops its run too (finally)
    if not args.report:
        for variant, seed in runs:
            train(out, results, variant, seed, protocol)
        chosen = best(results, protocol, args.best) if args.best else []
        if chosen is None:
            print("second seeds: they wait until every variant's seed 0 has finished", flush=True)
        for variant in chosen or []:
            train(out, results, variant, SEED_FOR_BEST, protocol)
    text = report(results, protocol, figure)
    print(text)
    if default_out:
        rewrite_section(SECTION, text)


if __name__ == "__main__":
    main()

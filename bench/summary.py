"""What the benchmark scripts share: the per-seed and median summary, the machine/version header
line of every table, where full and quick (`--quick`) runs write, the BENCHMARKS.md section
rewrite and the learning-curve figures."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import statistics
import threading
import time
from importlib import metadata
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def out_dir(quick: bool) -> Path:
    """Where a run writes its JSON, run directories and (quick) figures: a quick run never
    overwrites the full run's."""
    path = ROOT / "bench_runs" / "quick" if quick else ROOT / "bench_runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_path(name: str, quick: bool) -> Path:
    """Full runs draw the committed figures (docs/, linked from docs/results.md and BENCHMARKS.md), quick
    runs draw next to their data."""
    return out_dir(True) / name if quick else ROOT / "docs" / name


def section(name: str, quick: bool) -> str:
    """The BENCHMARKS.md section a table goes to: quick runs have their own."""
    return f"quick-{name}" if quick else name


def fmt_steps(value) -> str:
    # NaN too: an IQM over seeds that never got there computes inf - inf
    return "never" if value is None or not math.isfinite(value) else f"{int(value):,}"


def spread(values: list[float], fmt=lambda v: f"{v:.1f}") -> str:
    """``median (min–max)`` over repeats; a single value alone."""
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def iqm_ci(values: list[float], fmt=lambda v: f"{v:.1f}") -> str:
    """``IQM [low, high]`` over seeds: interquartile mean and 95% stratified bootstrap interval
    (``lit_rl.commands.stats``, the rliable protocol)."""
    from lit_rl.commands.stats import interval_text, iqm_interval

    return interval_text(*iqm_interval(values), fmt)


def steps_iqm(runs: list[dict]) -> str:
    """Steps to test return >= -200 over seeds as ``iqm_ci``; a seed that never gets there counts as
    infinitely slow."""
    return iqm_ci(
        [float("inf") if r["steps_to_minus_200"] is None else r["steps_to_minus_200"] for r in runs], fmt_steps
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_line(*packages: str) -> str:
    """The header line of every table the bench scripts write: date, machine and versions
    (python, torch, lightning, gymnasium, and ``packages`` where a script uses them)."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("lightning", "gymnasium", *packages))
    return (
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores ({_cpu_model()}), {gpu}; "
        f"python {platform.python_version()}, torch {torch.__version__}, {versions}."
    )


def segment_machines(path: Path, *packages: str) -> list[str]:
    """A resumed run's machines: its earlier segments' (``path``, a JSON list, if there) and this one's
    ``machine_line``, as a run resumed over several working sessions may change machines."""
    return [*(json.loads(path.read_text()) if path.is_file() else []), machine_line(*packages)]


def report(algo: str, runs: list[dict], out: str | Path | None = None, **extra) -> dict:
    """Print each seed and the medians; write them to ``out`` as JSON. A seed that never
    reaches -200 counts as infinitely slow in the median."""
    reached = [r["steps_to_minus_200"] for r in runs]
    result = {
        "algo": algo,
        "env": "Pendulum-v1",
        **extra,
        "runs": runs,
        "median_steps_to_minus_200": statistics.median(r if r is not None else float("inf") for r in reached),
        "median_train_seconds": statistics.median(r["train_seconds"] for r in runs),
    }
    for r in runs:
        final = "n/a" if r["final_return"] is None else f"{r['final_return']:.1f}"
        print(f"seed {r['seed']}: train {r['train_seconds']:.1f} s, -200 at {r['steps_to_minus_200']}, final {final}")
    print(f"median: -200 at {result['median_steps_to_minus_200']}, train {result['median_train_seconds']:.1f} s")
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
    return result


def plot_curves(run_dirs: list[Path], out: Path, title: str, x_max: int | None = None) -> str:
    """Draw test return against environment steps with `python -m lit_rl plot` (lit_rl/commands/plot.py,
    the one place that draws curves); returns the BENCHMARKS.md lines: the figure and the
    command that redraws it."""
    from lit_rl.commands.plot import plot

    plot(run_dirs, "test/episode_return", "env_steps", out, x_max)
    dirs = " ".join(str(d.resolve().relative_to(ROOT)) for d in run_dirs)
    figure = out.resolve().relative_to(ROOT)
    crop = "" if x_max is None else f" --x-max {x_max}"
    command = f"python -m lit_rl plot {dirs} --metric test/episode_return --x env_steps{crop} --out {figure}"
    return f"![{title}]({figure})\n\nDrawn by `{command}`."


def rewrite_section(name: str, text: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace what lies between ``<!-- {name}:start -->`` and ``<!-- {name}:end -->`` in ``path``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text()
    if start not in old or end not in old:
        raise ValueError(f"{path.name} has no {start} ... {end} section")
    new = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: f"{start}\n{text}\n{end}", old, flags=re.S)
    path.write_text(new)


RESULTS = ROOT / "bench" / "results"  # the per-epoch logs behind the tables, committed


def keep_logs(run_dir: Path, dest: Path, names: tuple[str, ...] = ("result.json", "wall_s.json")) -> None:
    """Copy a run's per-epoch CSV logs (every ``metrics.csv`` under it, one per segment of a resumed
    run: ``version_0``, ``version_1``, ...) and ``names`` into ``dest`` (under ``RESULTS``), keeping
    their paths: the tables are drawn from these copies, so anyone can recompute them."""
    for path in [*run_dir.glob("**/metrics.csv"), *(run_dir / name for name in names)]:
        if path.is_file():
            target = dest / path.relative_to(run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def segment_order(path: Path) -> int:
    """The order of a CSVLogger segment: ``N`` of its ``version_N`` folder (0 when there is none)."""
    match = re.search(r"version_(\d+)", str(path))
    return int(match.group(1)) if match else 0


class LoadSampler:
    """Samples the machine's 1-minute load average every ``every`` seconds while a run goes on (a
    thread), to tell a run that had the cores to itself from one that shared them: ``shared(own)``
    when the load went over the run's own ``own`` busy processes by more than one."""

    def __init__(self, every: float = 30.0):
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def record(self, own: int) -> dict:
        """For a run's result.json: the median and highest load seen, and whether the run shared the machine."""
        if not self.samples:
            return {}
        high = max(self.samples)
        return {"load_median": statistics.median(self.samples), "load_max": high, "shared": high > own + 1}

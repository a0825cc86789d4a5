"""``python -m lit_rl plot RUN_DIR [RUN_DIR ...] --metric test/episode_return --x env_steps --out curves.png
[--x-max 6000]``

Reads each run's logged metrics from its W&B run files (``RUN_DIR/wandb/*run-*/run-*.wandb``, offline
or online) and any CSVLogger ``metrics.csv`` under it (not under ``eval/``, where validate and test
write), groups runs whose configs differ only in
the seed (and name), and draws one colour per config: with 3 or more seeds the interquartile
mean over seeds and its 95% stratified bootstrap interval (``lit_rl.commands.stats``, where every seed
has data), with fewer the mean and a band from the lowest to the highest seed. A config is labelled
with its first run's name less a seed ending (``_seed0``, or ``_3`` where 3 is the run's seed).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np
import yaml

from lit_rl.training.files import EVAL_DIR

# W&B's run file is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of records, each
# with a 7-byte header (crc32 u32, length u16, type u8); a protobuf may span several records.
WANDB_HEADER = b":W&B"
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
# Keys that do not make two runs different configs (the logger and callbacks hold run paths and ids).
SEED_KEYS = ("seed_everything", "name", "working_dir", "resume", "ckpt_path")
RUN_SPECIFIC_TRAINER_KEYS = ("logger", "callbacks", "default_root_dir")


class PlotError(ValueError):
    """A run directory without the metric; printed as one line."""


def _wandb_payloads(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    if not raw.startswith(WANDB_HEADER):
        raise PlotError(f"{path} is not a W&B run file")
    payloads, pending, pos = [], b"", 7
    while pos + 7 <= len(raw):
        if BLOCK - pos % BLOCK < 7:  # block trailer padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if pos + 7 + length > len(raw):
            break  # a run killed mid-write: keep what is complete
        data, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == FULL:
            payloads.append(data)
        elif kind == FIRST:
            pending = data
        elif kind == MIDDLE:
            pending += data
        elif kind == LAST:
            payloads.append(pending + data)
    return payloads


def read_wandb(path: Path) -> list[dict[str, float]]:
    """The history rows (``wandb.log`` calls) of a ``run-*.wandb`` file."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for payload in _wandb_payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
    return rows


def read_csv(path: Path) -> list[dict[str, float]]:
    """The rows of a Lightning CSVLogger ``metrics.csv`` (empty cells dropped)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def _segment_order(path: Path) -> tuple:
    """CSVLogger segments of a resumed run in the order they were written: ``version_10`` after ``version_9``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path)))


def run_curve(run_dir: Path, metric: str, x: str, x_max: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(xs, ys)`` of ``metric`` against ``x`` over all of a run's logs, sorted by x, up to
    ``x_max``; a point logged twice (a resumed run repeats its last evaluation) keeps its last value."""
    wandb_files = sorted(run_dir.glob("wandb/*run-*/run-*.wandb"))  # not again through the latest-run link
    rows = [row for f in wandb_files for row in read_wandb(f)]
    csv_files = [f for f in run_dir.rglob("metrics.csv") if f.relative_to(run_dir).parts[0] != EVAL_DIR]
    rows += [row for f in sorted(csv_files, key=_segment_order) for row in read_csv(f)]
    points = {row[x]: row[metric] for row in rows if isinstance(row.get(metric), int | float) and x in row}
    if not wandb_files and not csv_files:
        raise PlotError(f"{run_dir}: {_no_logs(run_dir)}")
    if not points:
        where = "wandb/*run-*/run-*.wandb and metrics.csv"
        raise PlotError(f"{run_dir}: no logged {metric!r} with {x!r} (looked in {where})")
    if x_max is not None:
        points = {v: y for v, y in points.items() if v <= x_max}
        if not points:
            raise PlotError(f"{run_dir}: no logged {metric!r} at {x} <= {x_max:g}")
    xs = np.array(sorted(points), float)
    return xs, np.array([points[v] for v in xs], float)


def _no_logs(run_dir: Path) -> str:
    """Why a run directory holds no log ``plot`` reads: logging was off, or went elsewhere."""
    config_file = run_dir / "config.yaml"
    config = (yaml.safe_load(config_file.read_text()) or {}) if config_file.is_file() else {}
    if (config.get("trainer") or {}).get("logger") is False:
        return (
            "logged nothing: it ran with trainer.logger false (logging off), so there are no curves to plot; "
            "train with the default W&B logger or a CSVLogger to plot a run"
        )
    return (
        "no W&B run files (wandb/*run-*/run-*.wandb) or metrics.csv in it; plot reads those, and this run's "
        "logger wrote elsewhere or in another format"
    )


def run_label(run_dir: Path, seed: object = None) -> str:
    """A run's name without its seed: ``ddpg_seed0`` -> ``ddpg``, and ``ddpg_3`` -> ``ddpg`` when 3 is
    the run's ``seed``; any other ending stays (``ddpg_lr3e-4`` is not the seed 4 of ``ddpg_lr3e``,
    nor ``ddpg_lr1e-3`` of seed 3 the seed 3 of ``ddpg_lr1e``)."""
    name = run_dir.name
    label = re.sub(r"[_-]?seed[_-]?\d+$", "", name)
    if label == name and isinstance(seed, int) and not isinstance(seed, bool):
        label = re.sub(rf"(?<![0-9.][eE])[_-]0*{seed}$", "", name)
    return label or name


def config_key(run_dir: Path) -> tuple[str, str]:
    """(group key, label): runs whose config.yaml differ only in seed-like keys share a group."""
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        return str(run_dir), run_label(run_dir)
    config = yaml.safe_load(config_file.read_text()) or {}
    label = run_label(run_dir, config.get("seed_everything"))
    for key in SEED_KEYS:
        config.pop(key, None)
    for key in RUN_SPECIFIC_TRAINER_KEYS:
        (config.get("trainer") or {}).pop(key, None)
    (config.get("data") or {}).get("init_args", {}).pop("seed", None)
    return json.dumps(config, sort_keys=True, default=str), label


def plot(run_dirs: list[Path], metric: str, x: str, out: Path, x_max: float | None = None) -> dict[str, int]:
    """Write the figure (``x`` up to ``x_max``, default all); returns the number of runs per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, tuple[str, list]] = {}
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise PlotError(f"{run_dir} is not a run directory")
        key, label = config_key(run_dir)
        groups.setdefault(key, (label, []))[1].append(run_curve(run_dir, metric, x, x_max))

    from lit_rl.commands.stats import iqm_interval

    fig, ax = plt.subplots(figsize=(7, 4.5))
    counts = {}
    for label, curves in groups.values():
        grid = np.unique(np.concatenate([xs for xs, _ in curves]))
        if len(curves) >= 3:  # IQM needs every seed at each point: the x range all of them cover
            grid = grid[(grid >= max(c[0][0] for c in curves)) & (grid <= min(c[0][-1] for c in curves))]
        # Each seed interpolated on the union of x values, within its own range only.
        ys = np.array([np.where((grid >= c[0][0]) & (grid <= c[0][-1]), np.interp(grid, *c), np.nan) for c in curves])
        name = f"{label} ({len(curves)} run{'s' if len(curves) > 1 else ''}"
        name += ", IQM and 95% CI)" if len(curves) >= 3 else ")"
        while name in counts:
            name += "'"
        if len(curves) >= 3:
            center, low, high = iqm_interval(ys)
        else:
            center, low, high = np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
        (line,) = ax.plot(grid, center, label=name)
        if len(curves) > 1:
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
        counts[name] = len(curves)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lit_rl plot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories (<working_dir>/<name>)")
    parser.add_argument("--metric", default="test/episode_return")
    parser.add_argument("--x", default="env_steps")
    parser.add_argument("--out", type=Path, default=Path("curves.png"))
    parser.add_argument("--x-max", type=float, help="draw up to this x (default: everything logged)")
    args = parser.parse_args(argv)
    try:
        counts = plot(args.run_dirs, args.metric, args.x, args.out, args.x_max)
    except PlotError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: " + ", ".join(counts))
    return 0

"""Soak: a long DEP-MPO myoLegWalk run (2 workers x 10 envs, bf16, W&B offline, full saves) with
the training process's resident memory, open files and threads, and its child processes
(env workers, W&B service) sampled every minute. After the replay is full none of them may grow.

The replay holds ``--replay`` transitions (150,000: full after about a quarter of the default
45 minutes on 2 cores, leaving the rest to watch for growth) and is saved with the checkpoint
every 100,000 env steps, so saves (with the envs' mid-episode states) run all along. Samples go
to ``bench_runs/soak/samples.csv``, the figure to docs/soak.png and the table to the ``soak``
section of RELIABILITY.md.

    python bench/soak.py [--minutes 45] [--report]
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch
from summary import ROOT, machine_line, rewrite_section

OUT = ROOT / "bench_runs" / "soak"
SAMPLES = OUT / "samples.csv"
FIGURE = ROOT / "docs" / "soak.png"
RELIABILITY_MD = ROOT / "RELIABILITY.md"
FIELDS = ["minute", "env_steps", "rss_mb", "children_rss_mb", "fds", "children_fds", "threads", "children"]


def command(replay: int) -> list[str]:
    return [
        sys.executable, "-m", "lit_rl", "fit", "--config", "configs/dep_mpo_myolegwalk.yaml",
        "--working_dir", str(OUT), "--name", "run", "--resume", "false",
        "--data.init_args.parallel", "2", "--data.init_args.sequential", "10",
        "--data.init_args.replay.size", str(replay),
        "--data.init_args.replay.steps_before_batches", "50000",
        "--data.init_args.epoch_steps", "50000", "--data.init_args.save_steps", "100000",
        "--data.init_args.test_episodes", "2",
        "--trainer.precision", "bf16-mixed", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip


def saved_env_steps(checkpoints: Path) -> int:
    try:
        state = torch.load(checkpoints / "last.ckpt", weights_only=True, map_location="cpu")
        return int(state["RolloutDataModule"]["env_steps"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return 0  # not written yet, or being replaced right now


def sample(process: psutil.Process) -> dict:
    children = process.children(recursive=True)

    def total(attribute) -> float:
        value = 0
        for child in children:
            try:
                value += attribute(child)
            except psutil.Error:  # ended between listing and reading
                pass
        return value

    return {
        "rss_mb": process.memory_info().rss / 2**20,
        "children_rss_mb": total(lambda c: c.memory_info().rss) / 2**20,
        "fds": process.num_fds(),
        "children_fds": total(lambda c: c.num_fds()),
        "threads": process.num_threads(),
        "children": len(children),
    }


def soak(minutes: float, replay: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}
    with open(OUT / "run.log", "w") as log:
        run = subprocess.Popen(command(replay), cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    process, checkpoints = psutil.Process(run.pid), OUT / "run" / "checkpoints"
    rows, start = [], time.monotonic()
    try:
        with open(SAMPLES, "w", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            for minute in range(int(minutes) + 1):
                time.sleep(max(0.0, start + 60 * minute - time.monotonic()))
                if run.poll() is not None:
                    raise RuntimeError(
                        f"the run ended after {minute} min (exit {run.returncode}): see {OUT / 'run.log'}"
                    )
                row = {"minute": minute, "env_steps": saved_env_steps(checkpoints), **sample(process)}
                writer.writerow(row)
                f.flush()
                rows.append(row)
                print(row, flush=True)
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def read_samples() -> list[dict]:
    with open(SAMPLES) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def report(replay: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_samples()
    full = next((r["minute"] for r in rows if r["env_steps"] >= replay), None)
    if full is None:
        raise RuntimeError(f"the replay ({replay:,} transitions) never filled in {rows[-1]['minute']:.0f} min")
    after = [r for r in rows if r["minute"] >= full]
    panels = [
        ("resident memory (MB)", ["rss_mb", "children_rss_mb"], ["training process", "children (sum)"]),
        ("open files", ["fds", "children_fds"], ["training process", "children (sum)"]),
        ("threads of the training process", ["threads"], [None]),
        ("child processes", ["children"], [None]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    for ax, (title, keys, labels) in zip(axes.flat, panels, strict=True):
        for key, label in zip(keys, labels, strict=True):
            ax.plot([r["minute"] for r in rows], [r[key] for r in rows], marker=".", label=label)
        ax.axvline(full, color="grey", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        if labels[0]:
            ax.legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("minutes (dashed: replay full)")
    fig.suptitle("DEP-MPO myoLegWalk-v0 soak, 2 x 10 envs, bf16, W&B offline")
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=90)

    lines = [
        machine_line("myosuite"),
        "",
        f"`python bench/soak.py --minutes {rows[-1]['minute']:.0f}`: {rows[-1]['env_steps']:,.0f} env steps saved, "
        f"replay ({replay:,} transitions) full from minute {full:.0f}.",
        "",
        "| sampled every minute | at start (min 1) | replay full (min {:.0f}) | end (min {:.0f}) | "
        "max after full | growth after full |".format(full, rows[-1]["minute"]),
        "|---|---|---|---|---|---|",
    ]
    names = {
        "rss_mb": "training process RSS (MB)",
        "children_rss_mb": "children RSS, sum (MB)",
        "fds": "open files, training process",
        "children_fds": "open files, children (sum)",
        "threads": "threads, training process",
        "children": "child processes",
    }
    first = rows[1] if len(rows) > 1 else rows[0]
    for key, name in names.items():
        values = [r[key] for r in after]
        lines.append(
            f"| {name} | {first[key]:,.0f} | {after[0][key]:,.0f} | {after[-1][key]:,.0f} | {max(values):,.0f} | "
            f"{after[-1][key] - after[0][key]:+,.0f} |"
        )
    lines += ["", f"![soak]({FIGURE.relative_to(ROOT)})"]
    rewrite_section("soak", "\n".join(lines), RELIABILITY_MD)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=45)
    parser.add_argument("--replay", type=int, default=150_000)
    parser.add_argument("--report", action="store_true", help="only redraw the figure and table from the samples")
    args = parser.parse_args()
    if not args.report:
        soak(args.minutes, args.replay)
    report(args.replay)


if __name__ == "__main__":
    main()

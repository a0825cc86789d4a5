"""DEP-MPO on myoLegWalk-v0 against deprl's published learning curve, three ablations and DEP-SAC.

The published curve (``PUBLISHED``, deprl's myoLegWalk run of 2023-05-14 shipped with MyoSuite)
ran on the MyoSuite of that time (1.6: the ``myoleg_v0.52`` legs model, actions in [-1, 1]
through a sigmoid), ``reset_type: init``, 10 x 10 envs and 1e6 DEP-only steps; its reward
weights match no MyoSuite release and MyoSuite 3's myoLegWalk-v0 is another model
(``myolegs_with_torso.xml``), so episode lengths are compared, not returns. Every run here is
``configs/dep_mpo_myolegwalk.yaml`` with that protocol (``PROTOCOL``): ``reset_type: init``,
``muscle_sigmoid: true``, 1e6 DEP-only steps, 2 workers x 10 envs, bf16-mixed (32-true on a CPU
without bfloat16 instructions: ``PRECISION``), 200,000-step
epochs with 10 test episodes, to ``--steps`` (1.6e6). Runs (``VARIANTS``, one
``python -m lit_rl fit`` process each, one after the other):

- ``dep_mpo``: the config as it is (deprl's computation: DEP ``normalization: independent``, the
  actor on raw observations, float32 normaliser statistics, the terminal muscle state in DEP's
  range, deprl's phase timing; docs/dep.md);
- ``dep_mpo_actor_normalized``: ``normalize_observations: true`` (the actor normalises too);
- ``dep_mpo_exact_statistics``: ``normalizer_statistics: exact`` (float64 running statistics);
- ``dep_mpo_rows``: ``normalization: independent_rows`` (each row of C to norm kappa);
- ``mpo_no_dep``: ``dep_mode: 0``, plain MPO from the first step (no DEP);
- ``dep_mpo_raw_actions``: ``muscle_sigmoid: false``, MyoSuite 3's raw [0, 1] activations;
- ``dep_sac``: DEP-SAC, ``configs/dep_sac_myolegwalk.yaml`` (the same env, DEP, replay and schedule).

Each run's directory (``~/lit_rl_runs/myoleg_learning/<variant>_seed<seed>``: config.yaml, CSVLogger
metrics.csv, checkpoints every ``--save`` steps) is kept; a run that finished (it has
``result.json``, there or in its kept logs) is not run again and an interrupted one resumes from its
last checkpoint, so the script can be stopped and started again. Every minute and at the end, a run's per-epoch logs
(``metrics.csv`` of each segment, ``result.json``) are copied to ``bench/results/<--out's name>/``,
which is committed: the table and figures are drawn from those copies, so ``--report`` rewrites
them from the repository alone (a run still going is shown up to its last logged epoch). Writes
the ``myoleg-learning-table`` section of BENCHMARKS.md and docs/myoleg_learning_{test,train}.png
(drawn by ``python -m lit_rl plot``, with the published curve in
``bench/results/<name>/deprl_published/metrics.csv``, lit_rl's metric names).

    python bench/myoleg_learning.py [--runs dep_mpo:0 dep_sac:0 ...] [--steps 1600000] [--report]

The walk to full-length episodes (deprl's published run reached its first 1,000-step test episode at
6.4 M steps and all of them at 6.8 M) with the published run's 100 envs (2 x 50: the layout is only
the process layout, tests/test_dep_training.py), outside the checkout so that it survives a new
checkout, saving every 200,000 steps and stopping 400,000 steps after its first full-length test
episode (or at 10 M); started again, it resumes::

    python bench/myoleg_learning.py --runs dep_mpo:0 --steps 10000000 --save 200000 \
        --parallel 2 --sequential 50 --after_full_length 400000 \
        --out ~/lit_rl_runs/myoleg_walk --section myoleg-walk-table \
        --compare bench/results/myoleg_walk_clipped_sigmoid/dep_mpo_clipped_sigmoid_seed0 \
        bench/results/myoleg_walk_lost/dep_mpo_lost_home_seed0

``--compare`` draws committed logs of other runs in the figures: here the walk of lit_rl before
56d08e9, whose ``muscle_sigmoid`` clipped actions to [-1, 1] first (variant
``dep_mpo_clipped_sigmoid``: a kept run, only ``--report`` draws it), and the walk's first run with
today's code, lost at 2.92 M steps with the machine's home directory (``dep_mpo_lost_home``, kept too).
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

from summary import RESULTS, ROOT, keep_logs, machine_line, rewrite_section, segment_order

from lit_rl.commands.cli import cpu_bf16_native

# deprl's log of the published run, every 200k-step epoch (written by bench/data/published_curve.py)
PUBLISHED = ROOT / "bench" / "data" / "deprl_myolegwalk_curve.csv"
OUT = Path.home() / "lit_rl_runs" / "myoleg_learning"  # outside the checkout: it is laid anew, the home kept
FULL_LENGTH = 1000  # myoLegWalk-v0's max_episode_steps: an episode that long did not fall
RANDOM_STARTS = 20  # test episodes of the final checkpoint from random starts
POLL_S = 60  # seconds between looks at a running run (its logs copied, the stop rule checked)
LOAD_LOG = "load.csv"  # per look: the env steps the run's log reached, the 1-minute load average
MACHINE_LOG = "machines.csv"  # per segment: the env steps it resumed from, the machine, the precision
# MPO's statistics, lit_rl's metric: the published curve's column
LEARNER_METRICS = {"q/mean": "critic_q", "loss/critic": "critic_loss", "mpo/temperature": "temperature"}
CONFIG = "configs/dep_mpo_myolegwalk.yaml"
# bf16-mixed where the CPU has bfloat16 instructions (about 3.5x faster per MPO batch there); without them
# bfloat16 is emulated, several times slower than float32 (docs/dep.md), so the run takes 32-true.
PRECISION = "32-true" if cpu_bf16_native() is False else "bf16-mixed"
PROTOCOL = [
    "--data.init_args.env.make_kwargs", '{"reset_type": "init"}',
    "--data.init_args.env.muscle_sigmoid", "true",
    "--data.init_args.test_episodes", "10",
    "--trainer.precision", PRECISION,
    "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
    "--trainer.enable_progress_bar", "false",
]  # fmt: skip
VARIANTS = {  # name: (label, config, overrides)
    "dep_mpo": ("DEP-MPO, deprl's computation", CONFIG, []),
    "dep_mpo_actor_normalized": (
        "DEP-MPO, actor on normalised observations",
        CONFIG,
        ["--model.init_args.normalize_observations", "true"],
    ),
    "dep_mpo_exact_statistics": (
        "DEP-MPO, exact normaliser statistics",
        CONFIG,
        ["--model.init_args.normalizer_statistics", "exact"],
    ),
    "dep_mpo_rows": (
        "DEP-MPO, `independent_rows`",
        CONFIG,
        ["--model.init_args.dep.normalization", "independent_rows"],
    ),
    "mpo_no_dep": ("plain MPO (`dep_mode: 0`)", CONFIG, ["--model.init_args.dep_mode", "0"]),
    "dep_mpo_raw_actions": (
        "DEP-MPO, `muscle_sigmoid: false`",
        CONFIG,
        ["--data.init_args.env.muscle_sigmoid", "false"],
    ),
    "dep_sac": ("DEP-SAC (`configs/dep_sac_myolegwalk.yaml`)", "configs/dep_sac_myolegwalk.yaml", []),
    # Kept runs: only their logs in bench/results, drawn by --report; they are not run again.
    "dep_mpo_clipped_sigmoid": (
        "DEP-MPO, actions clipped to [-1, 1] before the sigmoid (lit_rl before 56d08e9)",
        None,
        [],
    ),
    "dep_mpo_lost_home": (
        "DEP-MPO, the walk's run lost with the machine's home directory (same code and seed)",
        None,
        [],
    ),
}
DEFAULT_RUNS = [
    "dep_mpo:0", "dep_mpo_actor_normalized:0", "dep_mpo_exact_statistics:0", "dep_mpo:1",
    "dep_mpo_rows:0", "mpo_no_dep:0", "dep_mpo_raw_actions:0", "dep_sac:0",
]  # fmt: skip


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / f"{variant}_seed{seed}"


@dataclass(frozen=True)
class Budget:
    steps: int = 1_600_000  # env steps per run
    epoch: int = 200_000  # env steps per epoch (an evaluation after each)
    warmup: int = 1_000_000  # DEP-only env steps (steps_before_batches)
    save: int = 400_000  # env steps between checkpoints (with the replay): an interrupted run resumes there
    parallel: int = 2  # worker processes
    sequential: int = 10  # envs per worker: parallel x sequential envs in all (deprl's published run: 100)
    after_full_length: int = 0  # > 0: stop this many env steps after the first full-length test episode


def command(out: Path, variant: str, seed: int, budget: Budget) -> list[str]:
    return [
        sys.executable, "-m", "lit_rl", "fit", "--config", VARIANTS[variant][1], *PROTOCOL, *VARIANTS[variant][2],
        "--seed_everything", str(seed), "--data.init_args.total_steps", str(budget.steps),
        "--data.init_args.epoch_steps", str(budget.epoch), "--data.init_args.save_steps", str(budget.save),
        "--data.init_args.replay.steps_before_batches", str(budget.warmup),
        "--data.init_args.parallel", str(budget.parallel), "--data.init_args.sequential", str(budget.sequential),
        "--working_dir", str(out), "--name", run_dir(out, variant, seed).name,
    ]  # fmt: skip


def saved_steps(directory: Path) -> int:
    """The env steps of the run's newest save with its replay (``last-<env_steps>-<token>.replay``)."""
    return max((int(p.name.split("-")[1]) for p in (directory / "checkpoints").glob("last-*.replay")), default=0)


def stop_step(per_epoch: dict[int, dict[str, float]], budget: Budget) -> int | None:
    """With ``after_full_length``: the epoch end ``after_full_length`` steps after the first epoch with a
    full-length test episode, once there is one (the published run: 6.4 M, all full-length at 6.8 M)."""
    first = full_length(per_epoch, "test_max")
    if not budget.after_full_length or first is None:
        return None
    return min(first + budget.after_full_length, budget.steps)


def train(out: Path, variant: str, seed: int, budget: Budget) -> None:
    """Run (or resume) one run to ``budget.steps``, or with ``after_full_length`` until that many
    steps after its first full-length test episode: the run is stopped (kill -9, which it resumes
    from exactly) once that epoch's test is logged and its save is on disk. Its logs are copied to
    ``bench/results/<out name>/`` every minute, so what a killed session reached is kept too."""
    directory = run_dir(out, variant, seed)
    results = run_dir(RESULTS / out.name, variant, seed)
    if VARIANTS[variant][1] is None:
        raise SystemExit(f"{variant}: a kept run ({VARIANTS[variant][0]}); only --report draws it")
    if (directory / "result.json").is_file():
        keep_logs(directory, results)
        print(f"{directory.name}: done already", flush=True)
        return
    if (results / "result.json").is_file():  # finished in a session whose home is gone
        print(f"{directory.name}: done already (its logs are kept in {relative(results)})", flush=True)
        return
    if not (directory / "checkpoints" / "last.ckpt").is_file():
        shutil.rmtree(directory, ignore_errors=True)  # killed before its first save: start again
    wall = directory / "wall_s.json"  # the wall time of the finished segments (a resumed run has several)
    start = time.perf_counter()
    args = command(out, variant, seed, budget)
    print(f"{directory.name}: python {' '.join(args[1:])}", flush=True)
    resumed_from = saved_steps(directory) if directory.is_dir() else 0
    process = subprocess.Popen(args, cwd=ROOT, start_new_session=True)  # its env workers in its group
    stopped_at, machine_recorded = None, False
    while process.poll() is None:
        time.sleep(POLL_S)
        if not directory.is_dir():  # fit has not made it yet
            continue
        if not machine_recorded:  # a run resumed over several sessions may change machines
            with open(directory / MACHINE_LOG, "a", newline="") as f:
                csv.writer(f).writerow([resumed_from, machine_line("mujoco", "myosuite"), PRECISION])
            machine_recorded = True
        per_epoch = epochs(directory, budget.epoch)
        with open(directory / LOAD_LOG, "a") as f:  # the machine's load beside the run's progress
            f.write(f"{max((v['reached'] for v in per_epoch.values()), default=0):.0f},{os.getloadavg()[0]:.2f}\n")
        keep_logs(directory, results, names=("result.json", "wall_s.json", LOAD_LOG, MACHINE_LOG))
        stop = stop_step(per_epoch, budget)  # None without after_full_length
        logged = stop is not None and "test" in per_epoch.get(stop, {})
        if logged and saved_steps(directory) >= stop:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            stopped_at = stop
    if stopped_at is None and process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, args)
    segments = [*(json.loads(wall.read_text()) if wall.is_file() else []), time.perf_counter() - start]
    wall.write_text(json.dumps(segments))
    result = {"variant": variant, "seed": seed, **asdict(budget), "wall_s": sum(segments), "segments": len(segments),
              "stopped_at": stopped_at or budget.steps}  # fmt: skip
    (directory / "result.json").write_text(json.dumps(result))
    keep_logs(directory, results, names=("result.json", "wall_s.json", LOAD_LOG, MACHINE_LOG))


def evaluate(out: Path, variant: str, seed: int, figure_dir: Path) -> None:
    """After a run ended: its final checkpoint from ``--random-starts`` random starts (``reset_type:
    random``; the test episodes of training start from ``init``, all the same episode), written to
    ``random_starts.json``, and one test episode as a video (``<figure_dir>/<name>_<steps>.mp4``) with
    a strip of its frames (``.png``). Each is done once (kept in ``bench/results/``)."""
    directory, results = run_dir(out, variant, seed), run_dir(RESULTS / out.name, variant, seed)
    steps = json.loads((directory / "result.json").read_text())["stopped_at"]
    checkpoint = directory / "checkpoints" / f"step={steps}.ckpt"  # the run may have gone on until it was stopped
    base = [sys.executable, "-m", "lit_rl", "test", "--config", str(directory / "config.yaml"),
            "--ckpt_path", str(checkpoint), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false"]  # fmt: skip
    if not (results / "random_starts.json").is_file():
        random_starts = ["--data.init_args.env.make_kwargs", '{"reset_type": "random"}',
                         "--data.init_args.test_episodes", str(RANDOM_STARTS)]  # fmt: skip
        subprocess.run([*base, *random_starts], cwd=ROOT, check=True)
        shutil.copyfile(newest(directory / "eval", "test_*/metrics.json"), results / "random_starts.json")
    video = figure_dir / f"{out.name}_{steps}.mp4"
    if not video.is_file():
        subprocess.run([*base, "--data.init_args.record_video", "true", "--data.init_args.test_episodes", "1"],
                       cwd=ROOT, check=True)  # fmt: skip
        shutil.copyfile(newest(directory / "eval", "test_*/videos/*.mp4"), video)
        frame_strip(video, video.with_suffix(".png"))


def newest(directory: Path, pattern: str) -> Path:
    return max(directory.glob(pattern), key=lambda p: p.stat().st_mtime)


def frame_strip(video: Path, png: Path, frames: int = 8, size: int = 200) -> None:
    """``frames`` evenly spaced frames of ``video`` side by side, each a ``size``-pixel square around
    the body (centred on its bright pixels, bones and skin against the darker floor)."""
    import imageio_ffmpeg
    import matplotlib.pyplot as plt
    import numpy as np

    reader = imageio_ffmpeg.read_frames(str(video))
    width, height = next(reader)["size"]
    shots = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    crops = []
    for i in range(frames):
        shot = shots[round(i * (len(shots) - 1) / (frames - 1))]
        rows, cols = np.nonzero(shot.min(axis=2) > 150)
        half = min(size, height, width) // 2
        y = int(np.clip(rows.mean() if len(rows) else height / 2, half, height - half))
        x = int(np.clip(cols.mean() if len(cols) else width / 2, half, width - half))
        crops.append(shot[y - half : y + half, x - half : x + half])
    plt.imsave(png, np.concatenate(crops, axis=1))


def read_rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def epochs(directory: Path, epoch_steps: int) -> dict[int, dict[str, float]]:
    """Per epoch end (env steps): the mean train episode length and return over the epoch's
    episodes (each logged point is a mean over the episodes since the previous one,
    ``train/episodes`` counts them), the test episode length (mean and max) and return, env
    steps/s over the epoch, its seconds (training and evaluation: the rate's steps over the rate)
    and the env steps the log reached in it (``reached`` < the epoch end: a partial epoch)."""
    rows: list[dict[str, float]] = []
    for metrics in sorted(directory.glob("**/metrics.csv"), key=segment_order):
        segment = [r for r in read_rows(metrics) if "env_steps" in r]
        if segment:  # a resumed segment replaces what the killed one logged after its last save
            rows = [r for r in rows if r["env_steps"] <= min(r["env_steps"] for r in segment)] + segment
    # At the save a run resumed from, the resumed segment logs that epoch's evaluation again: one row
    # per step and kind of row (the later one), so the epoch keeps its train row and one test row.
    rows = sorted({(r["env_steps"], tuple(sorted(r))): r for r in rows}.values(), key=lambda r: r["env_steps"])
    out: dict[int, dict[str, float]] = {}
    episodes, steps = 0.0, 0.0
    sums: dict[int, list[float]] = {}  # epoch -> [length sum, return sum, episodes, env steps, seconds]
    learner: dict[int, dict[str, list[float]]] = {}  # epoch -> MPO's logged statistics
    for row in rows:
        epoch = int(-(-row["env_steps"] // epoch_steps) * epoch_steps)
        acc = sums.setdefault(epoch, [0.0, 0.0, 0.0, 0.0, 0.0])
        entry = out.setdefault(epoch, {})
        entry["reached"] = max(entry.get("reached", 0), row["env_steps"])
        if "train/episode_length" in row:
            count = row["train/episodes"] - episodes
            acc[0] += row["train/episode_length"] * count
            acc[1] += row["train/episode_return"] * count
            acc[2] += count
            episodes = row["train/episodes"]
        if "perf/env_steps_per_s" in row:  # a rate since the previous point
            acc[3] += row["env_steps"] - steps
            acc[4] += (row["env_steps"] - steps) / row["perf/env_steps_per_s"]
            steps = row["env_steps"]
        for name, key in (("length", "test"), ("length_max", "test_max"), ("return", "test_return")):
            if f"test/episode_{name}" in row:
                entry[key] = row[f"test/episode_{name}"]
        for metric, key in LEARNER_METRICS.items():
            if metric in row:
                learner.setdefault(epoch, {}).setdefault(key, []).append(row[metric])
    for epoch, (length_sum, return_sum, count, env_steps, seconds) in sums.items():
        entry = out[epoch]
        if count:
            entry["train"], entry["train_return"] = length_sum / count, return_sum / count
        if seconds:
            entry["steps_per_s"], entry["seconds"] = env_steps / seconds, seconds
    for epoch, values in learner.items():
        out[epoch].update({key: sum(points) / len(points) for key, points in values.items()})
    return out


def published() -> dict[int, dict[str, float]]:
    return {
        int(r["env_steps"]): {
            "train": r["train_episode_length"],
            "train_return": r["train_episode_return"],
            "test": r["test_episode_length_mean"],
            "test_max": r["test_episode_length_max"],
            "test_return": r["test_episode_return"],
            "clock": r["wall_s"],  # deprl's wall time from the start to this epoch's end, on its machine
            **{key: r[key] for key in LEARNER_METRICS.values() if key in r},
        }
        for r in read_rows(PUBLISHED)
    }


def has_metrics(directory: Path) -> bool:
    """A run that has logged (finished, or interrupted and resumable: its table so far is shown)."""
    return any(directory.glob("**/metrics.csv"))


def full_length(per_epoch: dict[int, dict[str, float]], kind: str, length: int = FULL_LENGTH) -> int | None:
    """The first epoch whose test episodes reached ``length`` steps: one of them (``test_max``) or all (``test``)."""
    return next((e for e, values in sorted(per_epoch.items()) if values.get(kind, 0) >= length), None)


def with_clock(per_epoch: dict[int, dict[str, float]]) -> dict[int, dict[str, float]]:
    """Adds ``clock``: seconds from the start to each epoch's end, summed over the epochs (training
    and evaluation; the restarts of a resumed run and the steps it trained again are not counted)."""
    total = 0.0
    for _, values in sorted(per_epoch.items()):
        total += values.get("seconds", 0.0)
        values["clock"] = total
    return per_epoch


def run_epochs(results: Path, variant: str, seed: int, budget: Budget) -> dict[int, dict[str, float]]:
    """A run's epochs from its committed logs, up to where it ended (``result.json``'s ``stopped_at``)."""
    directory = run_dir(results, variant, seed)
    result = directory / "result.json"
    end = json.loads(result.read_text()).get("stopped_at", budget.steps) if result.is_file() else budget.steps
    per_epoch = with_clock({e: v for e, v in epochs(directory, budget.epoch).items() if e <= end})
    if (directory / LOAD_LOG).is_file():
        for line in (directory / LOAD_LOG).read_text().split():
            steps, load = (float(x) for x in line.split(","))
            epoch = int(-(-steps // budget.epoch) * budget.epoch)
            if epoch in per_epoch:
                per_epoch[epoch]["load"] = max(per_epoch[epoch].get("load", 0.0), load)
    return per_epoch


def write_published_run(results: Path) -> Path:
    """The published curve as a run directory that ``python -m lit_rl plot`` reads (metrics.csv in
    lit_rl's metric names)."""
    directory = results / "deprl_published"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["env_steps", "train/episode_length", "test/episode_length", "train/episode_return",
                         "test/episode_return"])  # fmt: skip
        for steps, v in sorted(published().items()):
            writer.writerow([steps, v["train"], v["test"], v["train_return"], v["test_return"]])
    return directory


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def hours(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 3600:.1f}"


def machines(results: Path, runs: list[tuple[str, int]]) -> list[str]:
    """Where each run ran: a line per segment (``MACHINE_LOG``: the env steps it resumed from, its
    machine), as a run resumed over several sessions may change machines; a run from before that
    record says so. The report's own machine when no run has logged yet."""
    lines = []
    for variant, seed in runs:
        directory = run_dir(results, variant, seed)
        if not has_metrics(directory):
            continue
        name = f"{VARIANTS[variant][0]}, seed {seed}"
        if not (directory / MACHINE_LOG).is_file():
            lines.append(f"- {name}: its machines were not recorded (a run from before 2026-12-08).")
            continue
        with open(directory / MACHINE_LOG, newline="") as f:
            for steps, line, *precision in csv.reader(f):  # precision: bf16-mixed before it was recorded
                lines.append(f"- {name}, from {int(steps):,} env steps, {precision[0] if precision else 'bf16-mixed'}: "
                             f"{line.replace('Measured', 'started', 1)}")  # fmt: skip
    return ["Where each run ran, by segment:", "", *lines] if lines else [machine_line("mujoco", "myosuite")]


def table(results: Path, runs: list[tuple[str, int]], budget: Budget) -> str:
    ref = published()
    lines = [
        *machines(results, runs),
        "",
        "Per epoch, lit_rl against the published run at the same env steps (test: mean and, in brackets, the "
        "longest of the test episodes); hours: wall time from the start on this machine (training and "
        "evaluation); load: the highest 1-minute load average seen in the epoch (the run keeps about "
        f"{budget.parallel + 1} processes busy: more means it shared the machine, and its env steps/s with it). "
        "A partial epoch (the run stopped in it) shows the steps it reached.",
        "",
        "| run | env steps | train ep. length | published | test ep. length | published | train return | "
        "published | test return | published | env steps/s | hours | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, seed in runs:
        directory = run_dir(results, variant, seed)
        if not has_metrics(directory):
            continue
        done = (directory / "result.json").is_file() or VARIANTS[variant][1] is None
        running = "" if done else " (running, resumable)"
        label = f"{VARIANTS[variant][0]}, seed {seed}{running}"
        for epoch, v in sorted(run_epochs(results, variant, seed, budget).items()):
            theirs = ref.get(epoch, {})
            steps = f"{epoch:,}" if v["reached"] >= epoch else f"{epoch:,} (partial: {v['reached']:,.0f})"
            test = f"{fmt(v.get('test'))} ({fmt(v.get('test_max'), 0)})" if "test" in v else "–"
            theirs_test = f"{fmt(theirs.get('test'))} ({fmt(theirs.get('test_max'), 0)})" if theirs else "–"
            lines.append(
                f"| {label} | {steps} | {fmt(v.get('train'))} | {fmt(theirs.get('train'))} | {test} | {theirs_test} | "
                f"{fmt(v.get('train_return'))} | {fmt(theirs.get('train_return'))} | {fmt(v.get('test_return'))} | "
                f"{fmt(theirs.get('test_return'))} | {fmt(v.get('steps_per_s'), 0)} | {hours(v.get('clock'))} | "
                f"{fmt(v.get('load'))} |"
            )
            label = ""
    return "\n".join([*lines, "", *summary(results, runs, budget)])


def learning_runs(results: Path, runs: list[tuple[str, int]], budget: Budget):
    """``(variant, seed, per_epoch, learning)`` of each run that has evaluated learning epochs (after
    the DEP-only warm-up): its epochs from the committed logs and the learning ones among them."""
    for variant, seed in runs:
        if not has_metrics(run_dir(results, variant, seed)):
            continue
        per_epoch = run_epochs(results, variant, seed, budget)
        learning = [e for e, v in sorted(per_epoch.items()) if e > budget.warmup and "test" in v]
        if learning:
            yield variant, seed, per_epoch, learning


def summary(results: Path, runs: list[tuple[str, int]], budget: Budget) -> list[str]:
    """Per run, the means over its learning epochs (after the warm-up, to its last evaluated epoch)
    beside the published run's over the same epochs, and when the test episodes first reached full
    length."""
    ref = published()

    def mean(values: list[float | None]) -> float | None:
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    def when(per_epoch: dict[int, dict[str, float]], kind: str) -> str:
        epoch = full_length(per_epoch, kind)
        return "–" if epoch is None else f"{epoch / 1e6:g} M ({hours(per_epoch[epoch].get('clock'))} h)"

    lines = [
        "Means over the same learning epochs on both sides (from the first after the DEP-only warm-up to the "
        f"run's last evaluated epoch), and the first epoch with a full-length ({FULL_LENGTH:,}-step) test episode "
        "and with all test episodes full-length, with the wall time to it (– : not within the steps run; the "
        "published run's hours are deprl's, on its machine):",
        "",
        "| run | epochs | train ep. length | published | test ep. length | published | first full-length test "
        "episode | published | all test episodes full-length | published |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, seed, per_epoch, learning in learning_runs(results, runs, budget):
        span = f"{learning[0] / 1e6:g}-{learning[-1] / 1e6:g} M"
        cells = []
        for kind in ("train", "test"):
            cells += [fmt(mean([per_epoch[e].get(kind) for e in learning])),
                      fmt(mean([ref.get(e, {}).get(kind) for e in learning]))]  # fmt: skip
        lines.append(
            f"| {VARIANTS[variant][0]}, seed {seed} | {span} | {' | '.join(cells)} | {when(per_epoch, 'test_max')} | "
            f"{when(ref, 'test_max')} | {when(per_epoch, 'test')} | {when(ref, 'test')} |"
        )
    return lines


def learner_table(results: Path, runs: list[tuple[str, int]], budget: Budget) -> list[str]:
    """MPO's own statistics beside the published run's (deprl's log has them too), at the first learning
    epoch, every millionth step and the run's last evaluated epoch: the train reward per env step
    (return over length, the fall's -100 included), the critic's mean Q and loss and the E-step
    temperature, each the mean over the epoch's logged points."""
    ref = published()
    lines = [
        "MPO's statistics against the published run's (deprl logs them too): train reward per env step (the "
        "epoch's train return over its train episode length), the critic's Q and loss on the replay batches "
        "and the E-step temperature, each the mean over the epoch. The published run's reward is another "
        "(its weights and legs model are not MyoSuite 3's), so its scale is not ours: compare how each "
        "side's values change over the run, not the values:",
        "",
        "| run | env steps | reward per step | published | Q | published | critic loss | published | temperature "
        "| published |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, seed, per_epoch, learning in learning_runs(results, runs, budget):
        shown = [e for e in learning if e == learning[0] or e == learning[-1] or e % 1_000_000 == 0]
        label = f"{VARIANTS[variant][0]}, seed {seed}"
        for epoch in shown:
            cells = []
            for side in (per_epoch[epoch], ref.get(epoch, {})):
                per_step = side["train_return"] / side["train"] if side.get("train") else None
                cells.append(fmt(per_step))
            for key, digits in (("critic_q", 1), ("critic_loss", 1), ("temperature", 2)):
                cells += [fmt(per_epoch[epoch].get(key), digits), fmt(ref.get(epoch, {}).get(key), digits)]
            lines.append(f"| {label} | {epoch:,} | {' | '.join(cells)} |")
            label = ""
    return lines


def figures(results: Path, runs: list[tuple[str, int]], steps: int, figure_dir: Path, compare: list[Path]) -> list[str]:
    """Test and train episode length against the published run (and the ``compare`` runs' committed
    logs), drawn from the committed logs."""
    from lit_rl.commands.plot import plot

    directories = [write_published_run(results)] if min(published()) <= steps else []
    directories += [run_dir(results, v, s) for v, s in runs if has_metrics(run_dir(results, v, s))]
    directories += [d for d in compare if has_metrics(d)]
    lines = []
    for kind in ("test", "train"):
        figure = figure_dir / f"{results.name}_{kind}.png"  # myoleg_learning_test.png for the default --out
        metric = f"{kind}/episode_length"
        plot(directories, metric, "env_steps", figure, steps)
        dirs = " ".join(str(relative(d)) for d in directories)
        redraw = f"python -m lit_rl plot {dirs} --metric {metric} --x-max {steps} --out {relative(figure)}"
        lines += [f"![{kind} episode length, myoLegWalk-v0]({relative(figure)})", "", f"Drawn by `{redraw}`.", ""]
    return lines


def relative(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="variant:seed, in order (default: %(default)s)")
    for key, value in asdict(Budget()).items():
        parser.add_argument(f"--{key}", type=int, default=value, help="(default: %(default)s)")  # Budget
    parser.add_argument("--report", action="store_true", help="only rewrite the table and figures")
    parser.add_argument("--out", type=Path, default=OUT, help="run directories (default: %(default)s)")
    parser.add_argument(
        "--compare", type=Path, nargs="*", default=[], help="committed run logs (bench/results/...) drawn beside"
    )
    parser.add_argument(
        "--section", default="myoleg-learning-table", help="BENCHMARKS.md section; 'none' only prints the table"
    )
    args = parser.parse_args()
    runs = [(v, int(s)) for v, s in (r.split(":") for r in args.runs)]
    budget = Budget(**{key: getattr(args, key) for key in asdict(Budget())})
    for variant, _ in runs:
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    figure_dir = ROOT / "docs" if args.section != "none" else args.out
    if not args.report:
        for variant, seed in runs:
            train(args.out, variant, seed, budget)
            if budget.after_full_length:  # the walk: the final checkpoint from random starts, and a video
                evaluate(args.out, variant, seed, figure_dir)
    results = RESULTS / args.out.name
    report = "\n".join(
        [table(results, runs, budget), "", *learner_table(results, runs, budget), "",
         *figures(results, runs, budget.steps, figure_dir, args.compare)]
    )  # fmt: skip
    print(report.rstrip())
    if args.section != "none":
        rewrite_section(args.section, report.rstrip())


if __name__ == "__main__":
    main()

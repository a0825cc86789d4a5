"""Killing training runs and comparing what they leave: training subprocesses SIGKILLed at a
chosen moment, checkpoints and replay files compared tensor by tensor, a callback that makes
checkpoint saves slow or kills the process inside one (loaded by the CLI with
``--trainer.callbacks+=tests.crash_helpers.CrashOnSave``), and the random-moment kill trials
(``kill_trial``, run by the slow suite and by bench/kill_trials.py)."""

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from lit_rl.contract import Batch
from lit_rl.data.replay import ReplayBuffer
from tests.conftest import DATA_KEY, ROOT, cli_env, load_ckpt, ok, run_cli


class CrashOnSave(Callback):
    """``ballast_mb``: megabytes of zeros added to every checkpoint, so writing it takes a while.
    ``kill_at_save``: SIGKILL this process while the n-th checkpoint (1 = the first) is being
    assembled, i.e. after the replay file of that save was written and before the ``.ckpt`` is."""

    def __init__(self, ballast_mb: int = 0, kill_at_save: int | None = None):
        self.ballast_mb, self.kill_at_save = ballast_mb, kill_at_save
        self.saves = 0

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.saves += 1
        if self.saves == self.kill_at_save:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.ballast_mb:
            checkpoint["ballast"] = torch.zeros(self.ballast_mb * 2**18)


def start_fit(working_dir: Path, name: str, *args: str) -> subprocess.Popen:
    env = cli_env()
    # W&B writes its history to disk every 15 s by default: flush often enough for a short run.
    env["WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"] = "0.5"
    log = open(working_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    command = [sys.executable, "-m", "lit_rl", "fit", *args, "--working_dir", str(working_dir), "--name", name]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)


def stop_at_first_save(process: subprocess.Popen, checkpoints: Path) -> Callable[[], bool]:
    """A ``kill_when`` condition: SIGSTOP the trainer as soon as its first ``last.ckpt`` is on disk
    (so it cannot save again before the kill; a W&B service, another process, keeps running), then true."""
    stopped = []

    def condition() -> bool:
        if not stopped and (checkpoints / "last.ckpt").is_file():
            os.kill(process.pid, signal.SIGSTOP)
            stopped.append(True)
        return bool(stopped)

    return condition


def killed_at_first_save(working_dir: Path, name: str, args: list[str]) -> dict:
    """Start a run, SIGKILL it once its first ``last.ckpt`` is written; that checkpoint's DataModule state."""
    checkpoints = working_dir / name / "checkpoints"
    kill_when(start_fit(working_dir, name, *args), lambda: (checkpoints / "last.ckpt").is_file())
    return load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]


def kill_when(process: subprocess.Popen, condition, timeout: float = 240) -> None:
    """SIGKILL the training process as soon as ``condition()`` holds (``None``: it kills itself),
    as the OOM killer would."""
    deadline = time.monotonic() + timeout
    try:
        while condition is not None and not condition():
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run did not get there in time"
            time.sleep(0.002)
        if condition is not None:
            os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=timeout) == -signal.SIGKILL
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever it started (W&B service)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)


def read_replay(checkpoints: Path) -> dict[str, torch.Tensor]:
    """The filled rows of the replay file that ``last.ckpt`` records, read as the run would."""
    state = load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]
    path = checkpoints / state["replay_file"]
    with open(path, "rb") as f:
        header = json.loads(f.readline())
    obs, act = header["shapes"]["observations"][0], header["shapes"]["actions"][0]
    replay = ReplayBuffer(header["rows"] * header["num_envs"], header["num_envs"], obs, act, header["return_steps"],
                          header["discount"])  # fmt: skip
    replay.load(path, token=state["replay_token"])
    assert path.stat().st_size == state["replay_bytes"]
    fields = {name: getattr(replay, name)[: replay.filled] for name in ReplayBuffer._FIELDS}
    fields["finals"] = dict(sorted(replay.finals.items()))  # the next observations kept aside
    fields["newest_next"] = replay.newest_next
    return {**fields, "position": torch.tensor([replay.index, replay.filled])}


def same(x, y) -> bool:
    """Equal values, tensors and numpy arrays compared exactly, dicts and lists element by element."""
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        return x.dtype == y.dtype and np.array_equal(x, y)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    if isinstance(x, list | tuple) and isinstance(y, list | tuple):
        return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
        return x.dtype == y.dtype and torch.equal(x, y)
    return x == y


def assert_equal_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        assert same(a[key], b[key]), f"{what}: {key} differs"


def assert_same_state(a: dict, b: dict, data_keys) -> None:
    assert_equal_tensors(a["state_dict"], b["state_dict"], "weights and normaliser")
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for param_a, param_b in zip(opt_a["state"].values(), opt_b["state"].values(), strict=True):
            assert_equal_tensors(param_a, param_b, "optimizer state")
    for key in data_keys:
        assert same(a[DATA_KEY][key], b[DATA_KEY][key]), f"DataModule state {key} differs"


RUN_STATE = ["env_steps", "episodes", "faults", "last_phase_steps", "pending_batches", "torch_rng", "env_rng"]


def env_states(data_state: dict) -> list[dict]:
    """The envs' states with each snapshot decoded to its physics part. The pickled Python part
    is left out: equal objects can pickle to different bytes (a string shared by two attributes
    in one run is two strings after a restore); the replay rows after it are what tell."""
    states = []
    for state in data_state.get("env_states", []):
        state = dict(state)
        if state["env"] is not None:
            state["env"] = pickle.loads(state["env"].numpy().tobytes())["sim"]
        states.append(state)
    return states


def assert_same_run(checkpoints: Path, reference: Path) -> None:
    a, b = load_ckpt(checkpoints / "last.ckpt"), load_ckpt(reference / "last.ckpt")
    assert_same_state(a, b, [*RUN_STATE, "replay_position"])
    assert same(env_states(a[DATA_KEY]), env_states(b[DATA_KEY])), "env states differ"
    assert same(a[DATA_KEY].get("collection"), b[DATA_KEY].get("collection")), "collection state differs"
    assert a["loops"] == b["loops"], "Lightning's loop counters differ"
    assert (a["global_step"], a["epoch"]) == (b["global_step"], b["epoch"])
    assert a.get("updates") == b.get("updates")
    assert same(a.get("acting"), b.get("acting")), "acting state (noise, DEP, recorded observations) differs"
    assert_equal_tensors(read_replay(checkpoints), read_replay(reference), "replay")


class PhaseMarker(Callback):
    """Writes what the training process is doing into ``path`` ("<phase> <env_steps>"), for
    killing it at a chosen kind of moment: ``collection`` (between batches, where the rollout
    steps the envs or samples the replay), ``training`` (a gradient batch) and ``evaluation``.
    A save in progress shows as ``*.tmp`` files in the checkpoint folder."""

    def __init__(self, path: str):
        self.path = path

    def _mark(self, trainer, phase: str) -> None:
        with open(self.path, "w") as f:
            f.write(f"{phase} {trainer.datamodule.env_steps}")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._mark(trainer, "training" if isinstance(batch, Batch) else "collection")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._mark(trainer, "collection")

    def on_validation_start(self, trainer, pl_module) -> None:
        self._mark(trainer, "evaluation")

    def on_validation_end(self, trainer, pl_module) -> None:
        self._mark(trainer, "collection")


MOMENTS = ("collection", "training", "evaluation", "save")


@dataclass
class Trial:
    target: str  # the kind of moment aimed at
    threshold: int = 0  # the random env step from which the first such moment was taken
    moment: str = ""  # the kind of moment the kill hit
    killed_at: int = 0  # env steps when killed
    saved: int = 0  # env steps of the last.ckpt it resumed from (0: none, it started again)
    lost: int = 0  # env steps collected before the kill that the resumed run had to collect again
    resumed: bool = False
    identical: bool = False  # ended in the same state as the uninterrupted run
    clean: bool = False  # no *.tmp, no replay file other than the one last.ckpt names
    problem: str = ""


def _kill_at(process, trial: Trial, marker: Path, checkpoints: Path, rng) -> bool:
    """SIGKILL ``process`` at the first ``trial.target`` moment at or after env step
    ``trial.threshold``; False if it finished first."""
    deadline = time.monotonic() + 300
    while process.poll() is None:
        assert time.monotonic() < deadline, f"no {trial.target} moment within 300 s"
        try:
            phase, steps = marker.read_text().split()
        except (OSError, ValueError):  # not written yet, or caught between truncating and writing
            time.sleep(0.001)
            continue
        if checkpoints.is_dir() and any(checkpoints.glob("*.tmp")):
            phase = "save"
        if phase == trial.target and int(steps) >= trial.threshold:
            time.sleep(rng.uniform(0, 0.005))
            trial.moment, trial.killed_at = phase, int(steps)
            os.kill(process.pid, signal.SIGKILL)
            kill_when(process, None)  # reaps it and whatever it started
            return True
        time.sleep(0.001)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever it left running
    except ProcessLookupError:
        pass
    return False


def kill_trial(args: list[str], working_dir: Path, reference: Path, target: str, rng, total_steps: int) -> Trial:
    """One run of ``args`` killed with SIGKILL at the first moment of kind ``target`` from a random
    env step on (a run that ends before one comes is started again with another), started again
    as a requeued job would be (same command, resume on), and compared with the uninterrupted run
    in ``reference``."""
    trial = Trial(target)
    run_dir = working_dir / "run"
    checkpoints, marker = run_dir / "checkpoints", working_dir / "phase"
    extra = ["--trainer.callbacks+=" + json.dumps({"class_path": "tests.crash_helpers.PhaseMarker",
                                                   "init_args": {"path": str(marker)}})]  # fmt: skip
    if target == "save":  # 40 MB of ballast make the write of last.ckpt take long enough to hit
        extra += ["--trainer.callbacks+=" + json.dumps({"class_path": "tests.crash_helpers.CrashOnSave",
                                                        "init_args": {"ballast_mb": 40}})]  # fmt: skip
    for _ in range(5):
        shutil.rmtree(working_dir, ignore_errors=True)
        working_dir.mkdir(parents=True)
        trial.threshold = rng.randrange(total_steps)
        process = start_fit(working_dir, "run", *args, *extra)
        if _kill_at(process, trial, marker, checkpoints, rng):
            break
    else:
        trial.problem = f"5 runs in a row ended before a {target} moment came"
        return trial
    if (checkpoints / "last.ckpt").is_file():
        trial.saved = load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]["env_steps"]
    trial.lost = max(trial.killed_at - trial.saved, 0)
    result = run_cli("fit", *args, "--working_dir", str(working_dir), "--name", "run", timeout=600)
    trial.resumed = result.returncode == 0
    if not trial.resumed:
        trial.problem = result.stderr[-2000:]
        return trial
    try:
        assert_same_run(checkpoints, reference)
        trial.identical = True
    except AssertionError as error:
        trial.problem = f"differs from the uninterrupted run: {error}"
    replay = load_ckpt(checkpoints / "last.ckpt")[DATA_KEY].get("replay_file")
    stray = [p.name for p in checkpoints.iterdir() if p.suffix == ".tmp" or p.suffix == ".replay" and p.name != replay]
    trial.clean = not stray
    if stray:
        trial.problem += f" stray files: {stray}"
    return trial


QUIET_RUN = ["--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]
TRIAL_CONFIGS = {  # name: (label, args, save_steps, total_steps)
    "ddpg": (
        "DDPG Pendulum-v1, 2 envs, 70-step episodes, 800 steps, saves every 200",
        ["--config", "configs/smoke/ddpg_pendulum.yaml", *QUIET_RUN,
         "--data.init_args.env.make_kwargs.max_episode_steps", "70", "--data.init_args.total_steps", "800"],
        200, 800,
    ),
    "dep_mpo": (
        "DEP-MPO myoLegWalk-v0, 2 workers x 2 envs, 480 steps, saves every 160",
        ["--config", "configs/smoke/dep_mpo_myolegwalk.yaml", *QUIET_RUN, "--data.init_args.total_steps", "480"],
        160, 480,
    ),
}  # fmt: skip


def run_trials(name: str, trials: int, seed: int, root: Path) -> list[Trial]:
    """The uninterrupted run of ``TRIAL_CONFIGS[name]`` once, then ``trials`` killed and resumed
    runs (the kinds of moment taking turns) compared with it."""
    _, args, _, total_steps = TRIAL_CONFIGS[name]
    reference = root / f"{name}-reference"
    ok(run_cli("fit", *args, "--working_dir", str(reference), "--name", "run", timeout=600))
    rng = random.Random(seed)
    results = []
    for i in range(trials):
        working_dir = root / f"{name}-{i}"
        target = MOMENTS[i % len(MOMENTS)]
        results.append(kill_trial(args, working_dir, reference / "run" / "checkpoints", target, rng, total_steps))
        print(name, i, results[-1], flush=True)
        shutil.rmtree(working_dir, ignore_errors=True)
    return results

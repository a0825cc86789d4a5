"""Killing training runs and comparing what they leave: training subprocesses SIGKILLed at a
chosen moment, checkpoints and replay files compared tensor by tensor, and a callback that makes
checkpoint saves slow or kills the process inside one (loaded by the CLI with
``--trainer.callbacks+=tests.crash_helpers.CrashOnSave``)."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from lit_rl.data.replay import ReplayBuffer
from tests.conftest import DATA_KEY, ROOT, cli_env, load_ckpt


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
    replay = ReplayBuffer(header["rows"] * header["num_envs"], header["num_envs"], obs, act, header["return_steps"])
    replay.load(path, token=state["replay_token"])
    assert path.stat().st_size == state["replay_bytes"]
    fields = {name: getattr(replay, name)[: replay.filled] for name in ReplayBuffer._FIELDS}
    return {**fields, "position": torch.tensor([replay.index, replay.filled])}


def same(x, y) -> bool:
    """Equal values, tensors compared exactly, dicts and lists element by element."""
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


def same_values(x, y) -> bool:
    """``same``, with numpy arrays too."""
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        return x.dtype == y.dtype and np.array_equal(x, y)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same_values(x[k], y[k]) for k in x)
    if isinstance(x, list | tuple) and isinstance(y, list | tuple):
        return len(x) == len(y) and all(same_values(a, b) for a, b in zip(x, y, strict=True))
    return same(x, y)


def assert_same_run(checkpoints: Path, reference: Path) -> None:
    a, b = load_ckpt(checkpoints / "last.ckpt"), load_ckpt(reference / "last.ckpt")
    assert_same_state(a, b, [*RUN_STATE, "replay_position"])
    assert same_values(env_states(a[DATA_KEY]), env_states(b[DATA_KEY])), "env states differ"
    assert same(a[DATA_KEY].get("collection"), b[DATA_KEY].get("collection")), "collection state differs"
    assert a["loops"] == b["loops"], "Lightning's loop counters differ"
    assert (a["global_step"], a["epoch"]) == (b["global_step"], b["epoch"])
    assert a.get("updates") == b.get("updates")
    assert same(a.get("acting"), b.get("acting")), "acting state (noise, DEP, recorded observations) differs"
    assert_equal_tensors(read_replay(checkpoints), read_replay(reference), "replay")

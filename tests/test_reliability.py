"""Crash safety and exact resume (issue 6, points 1-3): real training subprocesses killed with
SIGKILL mid-run and mid-save, resumed with ``--ckpt_path last``, and compared tensor by tensor
with a run that was never interrupted."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lit_rl.commands.plot import read_wandb
from lit_rl.data.replay import ReplayBuffer
from tests.conftest import DATA_KEY, ROOT, SMOKE, load_ckpt, ok, run_cli
from tests.crash_helpers import (
    TRIAL_CONFIGS,
    assert_same_run,
    assert_same_state,
    kill_when,
    killed_at_first_save,
    read_replay,
    run_trials,
    start_fit,
    stop_at_first_save,
)

SMOKE_DEP = ROOT / "configs" / "smoke" / "dep_mpo_myolegwalk.yaml"
QUIET = ["--trainer.enable_progress_bar", "false"]
# The smoke run: 2 envs, 50-step episodes, so every save (each 200 env steps) falls where all
# episodes have just ended (test_algorithms kills every algorithm mid-episode).
DDPG = ["--config", str(SMOKE), *QUIET]
CRASH = "--trainer.callbacks+=tests.crash_helpers.CrashOnSave"


def fit(working_dir: Path, name: str, *extra: str) -> None:
    result = run_cli("fit", *DDPG, "--working_dir", str(working_dir), "--name", name, *extra)
    ok(result)


def logged_env_steps(run_file: Path) -> list[float]:
    """The ``env_steps`` values in a W&B run file's history."""
    return [row["env_steps"] for row in read_wandb(run_file) if "env_steps" in row]


def killed_run_flushed(run_dir: Path) -> bool:
    """W&B's service flushes its run file on a timer (0.5 s here), which can lag the checkpoint."""
    return any(max(logged_env_steps(f), default=0) >= 100 for f in run_dir.glob("wandb/*run-*/run-*.wandb"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The checkpoints of an uninterrupted 400-step run, keeping one periodic checkpoint."""
    working_dir = tmp_path_factory.mktemp("reference")
    fit(working_dir, "reference", "--trainer.logger", "false", "--keep_checkpoints", "1")
    return working_dir / "reference" / "checkpoints"


def test_keep_checkpoints_deletes_old_checkpoints_and_their_side_files(reference):
    replay = load_ckpt(reference / "last.ckpt")[DATA_KEY]["replay_file"]
    assert sorted(p.name for p in reference.iterdir()) == sorted(["last.ckpt", "step=400.ckpt", replay])


def test_half_then_resume_equals_one_run(reference, tmp_path):
    """Point 3: N/2 steps, a resume, N/2 more end exactly where N steps in one go end."""
    fit(tmp_path, "split", "--trainer.logger", "false", "--data.init_args.total_steps", "200")
    fit(tmp_path, "split", "--trainer.logger", "false")
    assert_same_run(tmp_path / "split" / "checkpoints", reference)


def test_kill_9_mid_training_then_resume_loses_nothing_saved(reference, tmp_path):
    checkpoints = tmp_path / "killed" / "checkpoints"
    process = start_fit(tmp_path, "killed", *DDPG)
    stopped = stop_at_first_save(process, checkpoints)  # W&B's service flushes what it was sent meanwhile
    kill_when(process, lambda: stopped() and killed_run_flushed(tmp_path / "killed"))
    saved = load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]["env_steps"]
    assert saved == 200

    fit(tmp_path, "killed", "--ckpt_path", "last")
    assert_same_run(checkpoints, reference)
    assert not list(checkpoints.glob("*.tmp"))
    assert len(list(checkpoints.glob("*.replay"))) == 1

    # W&B: the resumed run continues the killed run's id; its history picks up after the checkpoint.
    runs = sorted((tmp_path / "killed" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 2 and len({p.name for p in runs}) == 1, runs
    before, after = logged_env_steps(runs[0]), logged_env_steps(runs[1])
    assert max(before) >= 100  # the killed run's flushed history stays on disk
    assert after and min(after) >= saved and max(after) == 400


def test_dep_mpo_kill_9_mid_episode_then_resume_is_exact(tmp_path):
    """DEP-MPO on myoLegWalk-v0, 2 env workers: MyoSuite's physics and task state, the muscle-state
    ranges DEP's inputs are normalised with, and the DEP controller all continue exactly."""
    args = ["--config", str(SMOKE_DEP), *QUIET, "--trainer.logger", "false"]
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "reference"))
    saved = killed_at_first_save(tmp_path, "killed", args)
    assert saved["env_steps"] == 160 and any(state["length"] > 0 for state in saved["env_states"])
    dep = saved["acting"]["dep"]
    assert dep["shape"] == [4, 80, 120] and dep["switch"]["interventions"] > 0 and dep["controller"]["t"] > 0
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "killed", "--ckpt_path", "last"))
    assert_same_run(tmp_path / "killed" / "checkpoints", tmp_path / "reference" / "checkpoints")


@pytest.mark.parametrize(
    ("kill", "expected_steps"),
    [
        # between writing the new replay file and writing last.ckpt (the 4th save: last.ckpt at 400)
        ([CRASH, "--trainer.callbacks.init_args.kill_at_save", "4"], 200),
        # in the middle of writing last.ckpt, made slow by 100 MB of ballast
        ([CRASH, "--trainer.callbacks.init_args.ballast_mb", "100"], 200),
    ],
    ids=["after-replay-before-ckpt", "mid-ckpt-write"],
)
def test_kill_9_mid_save_keeps_the_previous_checkpoint(kill, expected_steps, reference, tmp_path):
    checkpoints = tmp_path / "crash" / "checkpoints"
    process = start_fit(tmp_path, "crash", *DDPG, "--trainer.logger", "false", *kill)
    if "ballast_mb" in " ".join(kill):  # kill while last.ckpt is being rewritten, the old one still in place
        last, tmp = checkpoints / "last.ckpt", checkpoints / "last.ckpt.tmp"
        kill_when(process, lambda: last.is_file() and tmp.is_file())
    else:
        kill_when(process, None)
    assert load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]["env_steps"] == expected_steps
    read_replay(checkpoints)  # complete, and the one last.ckpt was saved with
    fit(tmp_path, "crash", "--trainer.logger", "false", "--ckpt_path", "last")
    assert_same_run(checkpoints, reference)
    assert not list(checkpoints.glob("*.tmp"))


def test_kill_9_mid_replay_write_keeps_the_previous_file(tmp_path):
    """The replay side file alone: a 200 MB save killed half way leaves the earlier file intact."""
    path = tmp_path / "last.replay"
    script = f"""
import torch
from lit_rl.data.replay import ReplayBuffer
replay = ReplayBuffer(400_000, 1, 100, 20)
for fill in (1.0, 2.0):
    replay.observations.fill_(fill); replay.index, replay.filled = 0, replay.rows
    replay.save({str(path)!r}, token=str(fill))
    print("saved", fill, flush=True)
"""
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True
    )
    tmp = path.with_name(path.name + ".tmp")
    kill_when(process, lambda: path.is_file() and tmp.is_file() and tmp.stat().st_size > 50 * 2**20)
    replay = ReplayBuffer(400_000, 1, 100, 20)
    replay.load(path, token="1.0")
    assert replay.filled == replay.rows and bool((replay.observations == 1.0).all())
    with pytest.raises(ValueError, match="token mismatch"):  # a file of the same size from another save
        replay.load(path, token="2.0")


def test_saving_the_replay_makes_no_copy_of_it(tmp_path):
    """Peak memory of a process holding a 380 MB replay grows by less than 20 MB while it saves it."""
    script = f"""
import resource, torch
from lit_rl.data.replay import ReplayBuffer
replay = ReplayBuffer(1_000_000, 1, 90, 8)
for name in ReplayBuffer._FIELDS:
    getattr(replay, name).zero_()  # touch every page
replay.index, replay.filled = 0, replay.rows
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
replay.save({str(tmp_path / "big.replay")!r})
print(replay.nbytes >> 20, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    ok(result)
    size_mb, growth_mb = map(int, result.stdout.split())
    assert size_mb >= 380 and growth_mb < 20, (size_mb, growth_mb)


@pytest.mark.slow
def test_dep_mpo_energy_state_survives_kill_9(tmp_path):
    """DEP-MPO with the adaptive energy replay and the observation normaliser, 2 env workers:
    killed after its first save and resumed, it ends equal to an uninterrupted run, the energy
    state (relabelled rewards, action cost) included."""
    args = ["--config", str(SMOKE_DEP), *QUIET, "--trainer.logger", "false"]
    args += ["--model.init_args.normalize_observations", "true"]
    args += ["--data.init_args.replay.adaptive_energy.num_acts", "1"]
    args += ["--data.init_args.replay.adaptive_energy.threshold", "-1000"]
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "reference"))
    saved = killed_at_first_save(tmp_path, "dep", args)
    assert saved["adaptive_energy"]["action_cost"] > 0
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "dep", "--ckpt_path", "last"))
    resumed, reference = (load_ckpt(tmp_path / name / "checkpoints" / "last.ckpt") for name in ("dep", "reference"))
    assert_same_run(tmp_path / "dep" / "checkpoints", tmp_path / "reference" / "checkpoints")
    assert_same_state(resumed, reference, ["adaptive_energy"])


def test_resuming_a_finished_run_changes_nothing(reference, tmp_path):
    """A job killed after its last save and started again: it says so and leaves the checkpoint."""
    run_dir = tmp_path / "reference"
    shutil.copytree(reference.parent, run_dir)
    before = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()}
    result = run_cli("fit", *DDPG, "--working_dir", str(tmp_path), "--name", "reference", "--trainer.logger", "false")
    ok(result)
    assert "is finished: its checkpoint holds 400 env steps of total_steps 400" in result.stderr
    assert {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()} == before


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRIAL_CONFIGS))
def test_random_moment_kill_trials(name, tmp_path):
    """bench/kill_trials.py in small: one kill at each kind of moment (collection, training,
    evaluation, a save), each resumed and compared with the uninterrupted run."""
    for trial in run_trials(name, 4, seed=1, root=tmp_path):
        assert trial.moment == trial.target and trial.resumed and trial.identical and trial.clean, trial
        assert trial.lost <= TRIAL_CONFIGS[name][2], trial

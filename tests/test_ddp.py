"""Real 2-process DDP on CPU (gloo) through ``python -m lit_rl fit --trainer.devices 2``. Each
run is a subprocess with a timeout, so a hang fails the test instead of hanging pytest."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.conftest import DATA_KEY, ROOT, SMOKE, last_logged, load_ckpt, logged_rows, ok, run_cli
from tests.crash_helpers import assert_same_run, env_states, killed_at_first_save, same

DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2"]
DEP_SMOKE = ROOT / "configs" / "smoke" / "dep_mpo_myolegwalk.yaml"


def csv_logger(name: str) -> list[str]:
    return [
        "--trainer.logger",
        json.dumps({"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"name": name}}),
    ]


def snapshots(out_dir) -> list[str]:
    return [
        "--trainer.callbacks+="
        + json.dumps({"class_path": "tests.ddp_helpers.RankSnapshot", "init_args": {"out_dir": str(out_dir)}})
    ]


def fit(working_dir, name: str, out_dir, *extra: str):
    args = ["fit", "--config", str(SMOKE), "--working_dir", str(working_dir), "--name", name]
    return run_cli(
        *args, *DDP, *csv_logger("fit"), *snapshots(out_dir), "--trainer.enable_progress_bar", "false", *extra
    )


def assert_same_weights(a: dict, b: dict, rank_local: bool = False) -> None:
    """Equal weights and buffers; the normaliser's observations recorded since its last update are
    each rank's own (summed over ranks at the update), compared only if ``rank_local``."""
    assert a.keys() == b.keys()
    for key in a:
        if rank_local or ".new_" not in key:
            assert torch.equal(a[key], b[key]), f"{key} differs"


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """400 global env steps of the smoke config on 2 processes (2 envs each)."""
    root = tmp_path_factory.mktemp("ddp")
    ok(fit(root, "ddp", root / "snap"))
    return root


def test_two_processes_train_one_model_on_different_data(ddp_run):
    rank0, rank1 = load_ckpt(ddp_run / "snap" / "end-rank0.pt"), load_ckpt(ddp_run / "snap" / "end-rank1.pt")
    assert rank0["world_size"] == 2
    # DDP averaged the gradients, and the normaliser statistics were summed over ranks
    assert_same_weights(rank0["state_dict"], rank1["state_dict"])
    # each rank stepped its own, differently seeded envs into its own replay
    assert rank0["replay_observations"].shape == rank1["replay_observations"].shape == (100, 2, 3)
    assert not torch.allclose(rank0["replay_observations"], rank1["replay_observations"])
    # env_steps is global: 2 ranks x 2 envs x 100 rows
    assert rank0["env_steps"] == rank1["env_steps"] == 400
    state = load_ckpt(ddp_run / "ddp" / "checkpoints" / "last.ckpt")[DATA_KEY]
    assert state["env_steps"] == 400
    files = [rank["replay_file"] for rank in state["ranks"]]
    assert files[0].endswith(".rank0.replay") and files[1].endswith(".rank1.replay")
    on_disk = sorted(p.name for p in (ddp_run / "ddp" / "checkpoints").glob("*.replay"))
    assert on_disk == sorted(files)  # the replay files of the step-200 save were deleted


def test_evaluation_is_split_over_ranks_and_gathered(ddp_run):
    """The run's last test return (episode 0 on rank 0, episode 1 on rank 1) equals one process
    playing both episodes with the same weights and seeds."""
    during_training = last_logged(logged_rows(ddp_run / "ddp" / "fit"), "test/episode_return")
    ok(run_cli("validate", "--config", str(SMOKE), "--working_dir", str(ddp_run), "--name", "ddp",
               "--ckpt_path", "last", *csv_logger("validate")))  # fmt: skip
    [evaluation] = (ddp_run / "ddp" / "eval").iterdir()  # validate writes into a folder of its own
    assert last_logged(logged_rows(evaluation), "test/episode_return") == pytest.approx(
        json.loads((evaluation / "metrics.json").read_text())["metrics"]["test/episode_return"]
    )
    one_process = last_logged(logged_rows(evaluation), "test/episode_return")
    assert during_training == pytest.approx(one_process, rel=1e-5)


def test_resume_restores_every_ranks_buffer_and_continues_exactly(ddp_run, tmp_path):
    run_dir = tmp_path / "ddp"
    shutil.copytree(ddp_run / "ddp", run_dir)
    ok(fit(tmp_path, "ddp", tmp_path / "snap", "--data.init_args.total_steps", "800"))
    for rank in (0, 1):
        before = load_ckpt(ddp_run / "snap" / f"end-rank{rank}.pt")
        restored = load_ckpt(tmp_path / "snap" / f"start-rank{rank}.pt")
        assert torch.equal(restored["replay_observations"], before["replay_observations"])
        assert restored["replay_position"] == before["replay_position"]
        assert_same_weights(restored["state_dict"], before["state_dict"], rank_local=True)
    # 400 + resume + 400 ends where 800 steps in one go end
    ok(fit(tmp_path, "straight", tmp_path / "straight", "--data.init_args.total_steps", "800"))
    for rank in (0, 1):
        resumed = load_ckpt(tmp_path / "snap" / f"end-rank{rank}.pt")
        straight = load_ckpt(tmp_path / "straight" / f"end-rank{rank}.pt")
        assert_same_weights(resumed["state_dict"], straight["state_dict"], rank_local=True)
        assert torch.equal(resumed["replay_observations"], straight["replay_observations"])


def test_resuming_with_another_number_of_processes_is_refused(ddp_run, tmp_path):
    shutil.copytree(ddp_run / "ddp", tmp_path / "ddp")
    more = ["--data.init_args.total_steps", "800"]  # a finished run would have nothing to train
    result = run_cli("fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--name", "ddp", *more)
    assert result.returncode != 0
    assert "was written by 2 training process(es)" in result.stderr
    assert "this run has 1" in result.stderr


@pytest.mark.slow
def test_dep_mpo_on_myosuite_with_two_processes_resumes_each_ranks_dep(tmp_path):
    """DEP-MPO on myoLegWalk-v0: each rank's DEP controller acts on its own envs and is saved and
    restored per rank; one test episode (rank 1 plays none)."""
    args = ["fit", "--config", str(DEP_SMOKE), "--working_dir", str(tmp_path), "--name", "dep", *DDP]
    args += ["--data.init_args.parallel", "1", "--trainer.logger", "false"]
    ok(run_cli(*args, *snapshots(tmp_path / "first")))
    first = load_ckpt(tmp_path / "dep" / "checkpoints" / "last.ckpt")
    dep = [rank["acting"]["dep"]["controller"] for rank in first[DATA_KEY]["ranks"]]
    assert not torch.equal(dep[0]["x_smooth"], dep[1]["x_smooth"])
    ends = [load_ckpt(tmp_path / "first" / f"end-rank{rank}.pt") for rank in (0, 1)]
    assert_same_weights(ends[0]["state_dict"], ends[1]["state_dict"])
    ok(run_cli(*args, *snapshots(tmp_path / "second"), "--data.init_args.total_steps", "480"))
    second = load_ckpt(tmp_path / "dep" / "checkpoints" / "last.ckpt")
    assert second[DATA_KEY]["env_steps"] == 480
    for rank in (0, 1):
        restored = load_ckpt(tmp_path / "second" / f"start-rank{rank}.pt")
        assert torch.equal(restored["replay_observations"], ends[rank]["replay_observations"])
        assert second[DATA_KEY]["ranks"][rank]["acting"]["dep"]["controller"]["t"] > dep[rank]["t"]


@pytest.mark.slow
def test_kill_9_mid_episode_under_ddp_then_resume_is_exact(tmp_path):
    """2 processes, 70-step episodes: the first save (100 env steps per rank) falls 50 steps into
    every env's episode. Killed there and resumed, the run ends equal to an uninterrupted one,
    each rank's envs, RNGs and replay position included."""
    args = ["--config", str(SMOKE), *DDP, "--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]
    args += ["--data.init_args.env.make_kwargs.max_episode_steps", "70"]
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "reference"))
    checkpoints = tmp_path / "killed" / "checkpoints"
    saved = killed_at_first_save(tmp_path, "killed", args)
    assert [state["length"] for rank in saved["ranks"] for state in rank["env_states"]] == [50] * 4
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "killed", "--ckpt_path", "last"))
    assert_same_run(checkpoints, tmp_path / "reference" / "checkpoints")
    resumed, reference = (
        load_ckpt(d / "last.ckpt")[DATA_KEY] for d in (checkpoints, tmp_path / "reference" / "checkpoints")
    )
    for a, b in zip(resumed["ranks"], reference["ranks"], strict=True):
        assert same(env_states(a), env_states(b))
        assert same(a["env_rng"], b["env_rng"]) and same(a["torch_rng"], b["torch_rng"])
        assert a["replay_position"] == b["replay_position"]


def test_gradients_are_averaged_and_a_non_finite_loss_anywhere_skips_everywhere():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    port = str(29_400 + os.getpid() % 500)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ddp_average_check.py"), port],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def test_strategy_ddp_on_one_device_trains(tmp_path):
    """``--trainer.strategy ddp --trainer.devices 1`` (the GPU check's DDP step on one GPU) takes
    lit_rl's DDP strategy, as several devices do; Lightning's own failed on parameters a manual
    optimisation step leaves unused."""
    args = ["fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--trainer.logger", "false",
            "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "1"]  # fmt: skip
    ok(run_cli(*args))
    assert load_ckpt(tmp_path / "smoke_ddpg_pendulum" / "checkpoints" / "last.ckpt")[DATA_KEY]["env_steps"] == 400

"""DEP wired into training: the switching decides who acts, DEP's actions are what is stored,
its state survives a checkpoint, mode 4 trains nothing."""

import json

import pytest
import torch
import yaml

from lit_rl.acting import Actor, DEPConfig, DEPController, RolloutContext
from lit_rl.algos import MPO
from tests.conftest import DATA_KEY, ROOT, load_ckpt, logged_rows, ok, run_cli
from tests.crash_helpers import assert_equal_tensors, same

SMOKE_DEP = ROOT / "configs" / "smoke" / "dep_mpo_myolegwalk.yaml"
CONFIG = DEPConfig(kappa=100.0, tau=3, buffer_size=10, time_dist=1, s4avg=2)


def context(env_steps, muscles):
    return RolloutContext(env_steps, 0, torch.zeros(4, dtype=torch.bool), muscles, steps_before_batches=20)


def test_dep_acts_until_the_rl_phase_then_the_policy_acts():
    module = MPO(observation_dim=3, action_bounds=[[-1.0, -1.0], [1.0, 1.0]], hidden_size=8, dep_mode=1, dep=CONFIG)
    actor, reference = Actor(module), DEPController(4, 2, CONFIG)
    obs = torch.randn(4, 3)
    for step in range(6):
        muscles = torch.rand(4, 2)
        actions = actor.act(obs, context(step * 4, muscles))
        assert torch.equal(actions, reference.step(muscles)), "InitExplore: DEP's actions are executed"
    greedy = module.act_greedy(obs)
    actions = actor.act(obs, context(24, torch.rand(4, 2)))
    assert not torch.equal(actions, reference.step(torch.rand(4, 2)))
    assert (actions - greedy).abs().max() > 0  # the policy samples


def run(tmp_path, *extra):
    args = ["fit", "--config", str(SMOKE_DEP), "--working_dir", str(tmp_path), "--trainer.logger", "false", *extra]
    result = run_cli(*args)
    ok(result)
    return load_ckpt(tmp_path / "smoke_dep_mpo_myolegwalk" / "checkpoints" / "last.ckpt")


# test_reliability's DEP-MPO kill -9 test resumes this run exactly (DEP's state included)
@pytest.mark.slow
def test_dep_mpo_on_myoleg_with_workers_checkpoints_and_resumes_dep_state(tmp_path):
    first = run(tmp_path)
    assert first["RolloutDataModule"]["env_steps"] == 320
    assert first["RolloutDataModule"]["acting"]["dep"]["shape"] == [4, 80, 120]
    assert first["RolloutDataModule"]["acting"]["dep"]["switch"]["interventions"] > 0
    steps_before = first["RolloutDataModule"]["acting"]["dep"]["controller"]["t"]
    assert steps_before > 0
    second = run(tmp_path, "--data.init_args.total_steps", "480")
    assert second["RolloutDataModule"]["env_steps"] == 480
    # restored, not restarted: the 40 vector steps after the resume add to the saved count
    assert steps_before < second["RolloutDataModule"]["acting"]["dep"]["controller"]["t"] <= steps_before + 40


@pytest.mark.parametrize(
    "extra",
    [
        ["--data.init_args.replay.steps_before_batches", "100000"],  # DEP-only warm-up: no gradient batch
        ["--model.init_args.dep_mode", "4"],  # PureDep: nothing is ever trained
    ],
    ids=["warm-up", "mode-4"],
)
def test_train_metrics_are_logged_every_epoch_without_gradient_batches(tmp_path, extra):
    logger = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(tmp_path)]
    checkpoint = run(tmp_path, *logger, *extra)
    if "4" in extra:  # PureDep stores and trains nothing
        assert checkpoint["RolloutDataModule"]["replay_position"] == [0, 0]
        assert all(not state["state"] for state in checkpoint["optimizer_states"])
        assert checkpoint["RolloutDataModule"]["acting"]["dep"]["controller"]["t"] == 80  # 320 steps of 4 envs
    rows = [r for r in logged_rows(tmp_path) if r.get("train/episode_length")]
    assert [float(r["env_steps"]) for r in rows] == [160.0, 320.0]  # both epochs
    for row in rows:
        assert float(row["train/episodes"]) > 0 and float(row["perf/env_steps_per_s"]) > 0
        assert 0 < float(row["train/episode_length"]) <= 40  # the smoke config's max_episode_steps
        assert float(row["replay/size"]) == (0.0 if "4" in extra else float(row["env_steps"]))
    # the test episodes' reward terms (MyoSuite's rwd_dict, summed over the episode); ``dense`` is the reward
    tests = [r for r in logged_rows(tmp_path) if r.get("test/episode_return")]
    assert tests and all(r["test/reward_terms/vel_reward"] and r["test/reward_terms/solved"] for r in tests)
    for row in tests:
        assert float(row["test/reward_terms/dense"]) == pytest.approx(float(row["test/episode_return"]), rel=1e-5)


# TD3 acts as DDPG does, and SAC (and CrossQ) train with DEP in test_exploration's myoLegWalk configs
@pytest.mark.parametrize(
    "algorithm", ["DDPG", pytest.param("TD3", marks=pytest.mark.slow), pytest.param("SAC", marks=pytest.mark.slow)]
)
def test_dep_wraps_any_algorithm(algorithm, tmp_path):
    """deprl's dep_factory wraps any agent: DEP (mode 3) with another learner on myoLegWalk-v0."""
    config = yaml.safe_load(SMOKE_DEP.read_text())
    dep = config["model"]["init_args"]["dep"]
    config["model"] = {
        "class_path": f"lit_rl.algos.{algorithm}",
        "init_args": {"actor_hidden": [32], "critic_hidden": [32], "dep_mode": 3, "dep": dep},
    }
    path = tmp_path / "dep.yaml"
    path.write_text(yaml.safe_dump(config))
    ok(run_cli("fit", "--config", str(path), "--working_dir", str(tmp_path), "--trainer.logger", "false"))
    checkpoint = load_ckpt(tmp_path / "smoke_dep_mpo_myolegwalk" / "checkpoints" / "last.ckpt")
    assert checkpoint["hyper_parameters"]["_class_path"] == f"lit_rl.algos.{algorithm}"
    assert checkpoint["RolloutDataModule"]["acting"]["dep"]["switch"]["interventions"] > 0 and checkpoint["updates"] > 0


def replay_contents(run_dir) -> tuple[dict, bytes]:
    """A run's saved replay file: its header (without the per-save token) and its data bytes."""
    (path,) = (run_dir / "checkpoints").glob("*.replay")
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        header.pop("token")
        return header, f.read()


def assert_layouts_train_alike(tmp_path, layouts: list[tuple[int, int]]) -> None:
    """12 vector steps of every ``(parallel, sequential)`` layout (all with the same number of
    envs): DEP acts, then the policy after its first updates; the replay files, the weights and
    the acting state (DEP, its switch) must be the same."""
    envs = layouts[0][0] * layouts[0][1]
    runs = []
    for parallel, sequential in layouts:
        directory = tmp_path / f"{parallel}x{sequential}"
        run(
            directory,
            "--data.init_args.parallel", str(parallel), "--data.init_args.sequential", str(sequential),
            "--data.init_args.total_steps", str(12 * envs), "--data.init_args.epoch_steps", str(12 * envs),
            "--data.init_args.save_steps", str(12 * envs), "--data.init_args.test_episodes", "0",
            "--data.init_args.replay.steps_before_batches", str(4 * envs),
            "--data.init_args.replay.steps_between_batches", str(2 * envs),
            "--data.init_args.replay.size", str(20 * envs),
            "--full_save", "true",
        )  # fmt: skip
        run_dir = directory / "smoke_dep_mpo_myolegwalk"
        runs.append((replay_contents(run_dir), load_ckpt(run_dir / "checkpoints" / "last.ckpt")))
    (header, data), first = runs[0]
    assert header["filled"] == 12 and first["updates"] > 0
    for (other_header, other_data), other in runs[1:]:
        assert other_header == header
        assert other_data == data, "the stored transitions differ between the layouts"
        assert other["updates"] == first["updates"]
        assert_equal_tensors(other["state_dict"], first["state_dict"], "weights")
        assert same(other[DATA_KEY]["acting"], first[DATA_KEY]["acting"]), "DEP's or the switch's state differs"


def test_worker_layout_is_only_the_process_layout(tmp_path):
    """Env ``k`` is seeded ``seed + k`` whatever the layout and acting sees one batch of all envs,
    so 1 x 4 envs in-process and 2 x 2 in workers train alike."""
    assert_layouts_train_alike(tmp_path, [(1, 4), (2, 2)])


@pytest.mark.slow
def test_published_layout_10x10_trains_like_2x50(tmp_path):
    """deprl's published myoLegWalk run used 10 x 10 envs; the walk runs 2 x 50 on 2 cores."""
    assert_layouts_train_alike(tmp_path, [(10, 10), (2, 50)])

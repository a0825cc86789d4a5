"""Dyna: the flow's counters, epsilon-greedy exploration, checkpoint round trip of the models
and scalers, and CLI runs of the smoke config (W&B offline, resume)."""

import shutil

import pytest
import torch
import yaml

from lit_rl.acting import Actor, RolloutContext, piecewise_linear
from lit_rl.algos import Dyna
from lit_rl.algos.dyna import DynaFlow
from lit_rl.algos.dyna.dynamics import DynamicsConfig
from lit_rl.contract import Trigger
from tests.conftest import ROOT, load_ckpt, logged_rows, ok, run_cli
from tests.test_dynamics import adam_step, linear_system

SMOKE_DYNA = ROOT / "configs" / "smoke" / "dyna_pendulum.yaml"
BOUNDS = [[-1.0], [1.0]]


def test_triggers_fire_at_the_configured_real_step_counts():
    flow = DynaFlow(
        test_dynamics=Trigger(100, start=200),
        train_dynamics=Trigger(50, start=100),
        train_algo_real=Trigger(30, start=0),
        train_algo_model=Trigger(None, start=0),
    )
    fired = {name: [] for name in DynaFlow.ORDER}
    for steps in range(10, 401, 10):  # a tick every 10 real steps
        for name in flow.due(steps):
            fired[name].append(steps)
    assert fired["test_dynamics"] == [200, 300, 400]
    assert fired["train_dynamics"] == [100, 150, 200, 250, 300, 350, 400]
    assert fired["train_algo_real"] == [10, 40, 70, 100, 130, 160, 190, 220, 250, 280, 310, 340, 370, 400]
    assert fired["train_algo_model"] == []
    # uneven ticks (e.g. 3 envs stepping together): due once at least `every` steps have passed
    trigger = Trigger(25, start=0)
    assert [s for s in range(6, 100, 6) if trigger.due(s)] == [6, 36, 66, 96]
    with pytest.raises(ValueError, match="trigger period"):
        Trigger(0)


def test_flow_order_and_state_round_trip():
    flow = DynaFlow(**{name: Trigger(10) for name in DynaFlow.ORDER})
    assert flow.due(10) == ["test_dynamics", "train_dynamics", "train_algo_real", "train_algo_model"]
    restored = DynaFlow(**{name: Trigger(10) for name in DynaFlow.ORDER})
    restored.load_state_dict(flow.state_dict())
    assert restored.due(15) == [] and restored.due(20) == list(DynaFlow.ORDER)
    assert restored.triggers["train_dynamics"].fired == 2


def test_piecewise_linear_schedules():
    points = [(0.0, 1.0), (100.0, 5.0), (200.0, 5.0)]
    assert [piecewise_linear(points, x) for x in (-5, 0, 50, 100, 150, 1000)] == [1.0, 1.0, 3.0, 5.0, 5.0, 5.0]
    module = Dyna(observation_dim=3, action_bounds=BOUNDS, reward_function="pendulum", rollout_horizon=1,
                  rollout_horizon_schedule=[[1000, 5], [2000, 5]])  # fmt: skip
    assert [module.rollout_horizon(s) for s in (0, 500, 999, 1000, 5000)] == [1, 3, 4, 5, 5]


def test_epsilon_greedy_takes_random_actions_with_the_decayed_probability():
    torch.manual_seed(0)
    module = Dyna(
        observation_dim=3,
        action_bounds=[[-2.0], [2.0]],
        reward_function="pendulum",
        random_steps=0,
        noise_std=0.0,  # Baconian's epsilon-greedy: otherwise the noiseless policy action
        init_random_prob=0.5,
        random_prob_schedule=[[1000, 0.1], [3000, 0.0]],
    )
    assert [module.acting.epsilon(s) for s in (0, 500, 1000, 2000, 5000)] == pytest.approx([0.5, 0.3, 0.1, 0.05, 0.0])
    obs = torch.randn(20_000, 3)
    starts = torch.zeros(20_000, dtype=torch.bool)
    actor = Actor(module)
    with torch.no_grad():
        greedy = module.act_greedy(obs)
        for steps, p in [(0, 0.5), (1000, 0.1), (5000, 0.0)]:
            actions = actor.act(obs, RolloutContext(steps, 0, starts, None, steps_before_batches=0))
            assert actions.abs().max() <= 2.0
            random_share = (actions != greedy).float().mean().item()
            assert random_share == pytest.approx(p, abs=0.015), steps


def test_learned_reward_needs_a_reward_head():
    with pytest.raises(ValueError, match="reward_function: learned"):
        Dyna(observation_dim=3, action_bounds=BOUNDS, dynamics=DynamicsConfig(kind="mlp"))
    with pytest.raises(ValueError, match="unknown terminal_function"):
        Dyna(observation_dim=3, action_bounds=BOUNDS, terminal_function="sometimes")


@pytest.mark.parametrize("kind", ["mlp", "ensemble"])
def test_checkpoint_round_trip_of_models_scalers_and_counters(tmp_path, kind):
    torch.manual_seed(0)
    config = DynamicsConfig(kind=kind, hidden=[16], members=3, elites=2, batch_size=32)
    module = Dyna(observation_dim=3, action_bounds=BOUNDS, dynamics=config, reward_function="pendulum")
    data = linear_system(300)
    module.dynamics.update_scalers(data)
    module.dynamics.fit(data, adam_step(module.dynamics), iterations=30)
    module.flow.due(120)
    module.flow.due(370)
    module.fitted_at, module.model_transitions = 370, 4242

    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "dyna.ckpt")
    loaded = torch.load(tmp_path / "dyna.ckpt", weights_only=True)  # as LightningCLI loads it
    restored = Dyna(**loaded["hyper_parameters"])
    restored.load_state_dict(loaded["state_dict"])
    restored.on_load_checkpoint(loaded)

    assert restored.dynamics_config == config
    for name in ("state_scaler", "action_scaler", "target_scaler"):
        for stat in ("mean", "var", "count"):
            saved = getattr(getattr(module.dynamics, name), stat)
            assert torch.equal(getattr(getattr(restored.dynamics, name), stat), saved)
        assert getattr(restored.dynamics, name).count.item() == 300
    test = linear_system(50, seed=3)
    expected = module.dynamics.predict(test.observations, test.actions).next_observations
    torch.testing.assert_close(restored.dynamics.predict(test.observations, test.actions).next_observations, expected)
    if kind == "ensemble":
        assert torch.equal(restored.dynamics.elite_indices, module.dynamics.elite_indices)
    assert restored.flow.state_dict() == module.flow.state_dict()
    assert (restored.fitted_at, restored.model_transitions) == (370, 4242)


# ----------------------------------------------------------------------------- CLI


def smoke_ticks(total: int) -> list[int]:
    return list(range(20, total + 1, 20))  # steps_between_batches: 20


def expected_model_transitions(module: Dyna, total: int) -> int:
    # rollouts every 20 real steps from 100 on, 64 branched rollouts of the scheduled horizon
    return 64 * sum(module.rollout_horizon(s) for s in smoke_ticks(total) if s >= 100)


@pytest.fixture(scope="module")
def dyna_run(tmp_path_factory):
    """The smoke config through ``python -m lit_rl fit`` with the default W&B logger (offline), for
    200 of its 400 steps (one epoch: the resume below adds a second)."""
    working_dir = tmp_path_factory.mktemp("dyna")
    args = ["--working_dir", str(working_dir), "--name", "smoke", "--data.init_args.total_steps", "200"]
    ok(run_cli("fit", "--config", str(SMOKE_DYNA), *args))
    return working_dir / "smoke"


def test_cli_smoke_run_counts_real_steps_and_saves_the_models(dyna_run):
    wandb_runs = list((dyna_run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(wandb_runs) == 1 and wandb_runs[0].stat().st_size > 0
    assert yaml.safe_load((dyna_run / "config.yaml").read_text())["model"]["class_path"] == "lit_rl.algos.Dyna"
    checkpoint = load_ckpt(dyna_run / "checkpoints" / "last.ckpt")
    assert checkpoint["RolloutDataModule"]["env_steps"] == 200
    flow = checkpoint["dyna"]["flow"]
    # smoke config: ticks every 20 real steps; model trained and tested every 100 from 100,
    # real-data DDPG training every 100 from 100, rollouts + mixed training every 20 from 100
    assert {name: state["fired"] for name, state in flow.items()} == {
        "test_dynamics": 2,
        "train_dynamics": 2,
        "train_algo_real": 2,
        "train_algo_model": 6,
    }
    assert flow["train_dynamics"]["last"] == 200 and checkpoint["dyna"]["fitted_at"] == 200
    module = Dyna(observation_dim=3, action_bounds=BOUNDS, rollout_horizon=1, rollout_horizon_schedule=[[300, 3]])
    assert checkpoint["dyna"]["model_transitions"] == expected_model_transitions(module, 200)  # horizons 1 and 2
    state = checkpoint["state_dict"]
    assert state["dynamics.state_scaler.count"].item() == 200  # every real transition, once
    assert state["dynamics.target_scaler.mean"].shape == (4,)  # delta state + learned reward
    assert checkpoint["hyper_parameters"]["dynamics"]["members"] == 3
    assert len(checkpoint["optimizer_states"]) == 3  # actor, critic, dynamics


def test_cli_resume_continues_the_counters_and_logs_dyna_metrics(dyna_run, tmp_path):
    run_dir = tmp_path / "smoke"
    shutil.copytree(dyna_run, run_dir)
    before = load_ckpt(run_dir / "checkpoints" / "last.ckpt")
    extra = ["--data.init_args.total_steps", "300", "--trainer.logger", "lightning.pytorch.loggers.CSVLogger"]
    ok(run_cli("fit", "--config", str(SMOKE_DYNA), "--working_dir", str(tmp_path), "--name", "smoke", *extra))
    after = load_ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert after["RolloutDataModule"]["env_steps"] == 300
    fired = {name: state["fired"] for name, state in after["dyna"]["flow"].items()}
    assert fired == {"test_dynamics": 3, "train_dynamics": 3, "train_algo_real": 3, "train_algo_model": 11}
    module = Dyna(observation_dim=3, action_bounds=BOUNDS, rollout_horizon=1, rollout_horizon_schedule=[[300, 3]])
    assert after["dyna"]["model_transitions"] == expected_model_transitions(module, 300)  # horizons up to 3
    # the scalers folded in only the 100 new real transitions
    assert after["state_dict"]["dynamics.state_scaler.count"].item() == 300
    assert not torch.equal(after["state_dict"]["dynamics.head.weight"], before["state_dict"]["dynamics.head.weight"])

    rows = logged_rows(run_dir)
    names = set(rows[0])
    for name in [
        "dyna/real_transitions",
        "dyna/model_transitions",
        "dynamics/test_one_step_mse",
        "dynamics/test_5_step_mse",
        "dynamics/test_reward_mse",
        "dynamics/train_loss",
        "dynamics/validation_loss",
        "loss/critic",
        "test/episode_return",
    ]:
        assert name in names, name
    one_step = [float(r["dynamics/test_one_step_mse"]) for r in rows if r["dynamics/test_one_step_mse"]]
    assert one_step and all(0 <= v < 10 for v in one_step)


def test_cli_baconian_config_runs_the_guides_flow(tmp_path):
    """The guide's settings as shipped: MLP model, model episodes continued from observation-space
    starts, epsilon-greedy, counters on a tick every 10 real steps up to the 200-sample end point
    (with one batch per training trigger instead of 10: the counters do not depend on it)."""
    config = ROOT / "configs" / "dyna_pendulum_baconian.yaml"
    extra = ["--working_dir", str(tmp_path), "--name", "baconian", "--trainer.logger", "false"]
    extra += ["--model.init_args.model_free_algo_train_iter", "1", "--model.init_args.dynamics_model_train_iter", "1"]
    ok(run_cli("fit", "--config", str(config), *extra))
    checkpoint = load_ckpt(tmp_path / "baconian" / "checkpoints" / "last.ckpt")
    assert checkpoint["RolloutDataModule"]["env_steps"] == 200
    fired = {name: state["fired"] for name, state in checkpoint["dyna"]["flow"].items()}
    # first due at the first tick (10 >= start 1), then every 20 (model) or 40 real steps
    assert fired == {"test_dynamics": 5, "train_dynamics": 10, "train_algo_real": 5, "train_algo_model": 5}
    assert checkpoint["dyna"]["model_transitions"] == 5 * 10  # one model env, 10 steps per trigger
    assert checkpoint["state_dict"]["dynamics.target_scaler.mean"].shape == (3,)  # state change only

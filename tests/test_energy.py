"""The adaptive energy replay option (algorithms.md section 8)."""

import numpy as np
import pytest
import torch

from lit_rl.contract import Batch
from lit_rl.data import AdaptiveEnergy, AdaptiveEnergyConfig
from tests.conftest import DATA_KEY, SMOKE, load_ckpt, ok, run_cli


def numpy_cost(a: np.ndarray, cost_function: int) -> np.ndarray:
    powers = a + a**2 + a**3 + a**4
    return {
        0: 4 * powers.sum(1),
        1: 4 * powers.mean(1),
        2: (a**3).mean(1),
        3: (a**3).sum(1),
        4: -np.exp(-5 * a).sum(1),
    }[cost_function]


@pytest.mark.parametrize("cost_function", range(5))
def test_relabel_subtracts_a_per_transition_cost_of_the_last_activations(cost_function):
    num_acts, batch_size = 6, 8
    energy = AdaptiveEnergy(AdaptiveEnergyConfig(num_acts=num_acts, cost_function=cost_function), observation_dim=10)
    energy.action_cost = 0.3
    generator = torch.Generator().manual_seed(cost_function)
    next_obs = torch.rand(batch_size, 10, generator=generator)
    rewards = torch.randn(batch_size, generator=generator)
    batch = Batch(next_obs.clone(), torch.zeros(batch_size, 2), rewards.clone(), next_obs, torch.ones(batch_size))
    energy.relabel(batch)
    expected = rewards.numpy() - 0.3 * numpy_cost(next_obs[:, -num_acts:].numpy(), cost_function)
    np.testing.assert_allclose(batch.rewards.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert len(np.unique(batch.rewards.numpy() - rewards.numpy())) == batch_size  # not one batch-wide number


def reference_updates(scores, alpha, threshold, lr, lr_decimation):
    """The update rule written out plainly, step by step as in the deprl description."""
    action_cost, score_avg, cdt_avg, history = 0.0, 0.0, 0.0, []
    for score in scores:
        score_avg = alpha * score_avg + (1 - alpha) * score
        if score_avg > threshold and cdt_avg < 0.5:
            lr = lr * lr_decimation
            action_cost = action_cost + lr
        if score_avg > threshold and cdt_avg >= 0.5:
            action_cost = action_cost + lr
        if score_avg < threshold:
            action_cost = action_cost - lr
        cdt_avg = alpha * cdt_avg + (1 - alpha) * (1.0 if score_avg > threshold else 0.0)
        action_cost = min(max(action_cost, 0.0), 100.0)
        history.append((action_cost, lr, score_avg, cdt_avg))
    return history


def test_cost_weight_adapts_to_scores_as_described():
    config = AdaptiveEnergyConfig(num_acts=3, alpha=0.8, threshold=100.0, lr=0.01, lr_decimation=0.9)
    energy = AdaptiveEnergy(config, observation_dim=5)
    scores = [0.0, 500.0, 800.0, 900.0, 900.0, 900.0, 900.0, 0.0, 0.0, -50.0, 1200.0, 1500.0]
    for score, (action_cost, lr, score_avg, cdt_avg) in zip(
        scores, reference_updates(scores, 0.8, 100.0, 0.01, 0.9), strict=True
    ):
        energy.episode_finished(score)
        assert energy.action_cost == pytest.approx(action_cost)
        assert energy.lr == pytest.approx(lr)
        assert energy.score_avg == pytest.approx(score_avg)
        assert energy.cdt_avg == pytest.approx(cdt_avg)
    assert energy.lr < 0.01  # decimated while the success average was low
    restored = AdaptiveEnergy(config, observation_dim=5)
    restored.load_state_dict(energy.state_dict())
    assert restored.state_dict() == energy.state_dict()


def test_bad_energy_config_names_the_key():
    with pytest.raises(ValueError, match="cost_function"):
        AdaptiveEnergyConfig(num_acts=3, cost_function=7)
    with pytest.raises(ValueError, match="num_acts is 90 but observations have only 3"):
        AdaptiveEnergy(AdaptiveEnergyConfig(num_acts=90), observation_dim=3)


def test_energy_state_is_logged_checkpointed_and_resumed(tmp_path):
    # Pendulum's 50-step returns (about -300) lie above a threshold of -1000: the cost weight grows.
    common = [
        "--config", str(SMOKE), "--working_dir", str(tmp_path), "--name", "energy",
        "--trainer.logger", "false", "--data.init_args.replay.adaptive_energy.num_acts", "1",
        "--data.init_args.replay.adaptive_energy.threshold", "-1000",
        "--data.init_args.epoch_steps", "100", "--data.init_args.save_steps", "100",
    ]  # fmt: skip
    result = run_cli("fit", *common, "--data.init_args.total_steps", "200")
    ok(result)
    last = tmp_path / "energy" / "checkpoints" / "last.ckpt"
    state = load_ckpt(last)[DATA_KEY]["adaptive_energy"]
    assert state["action_cost"] > 0 and state["cdt_avg"] > 0  # env 0 finished 2 episodes

    result = run_cli("fit", *common, "--data.init_args.total_steps", "300")
    ok(result)
    resumed = load_ckpt(last)[DATA_KEY]["adaptive_energy"]
    assert resumed["action_cost"] > state["action_cost"]  # continued from the saved weight, one more episode
    assert resumed["cdt_avg"] > state["cdt_avg"]

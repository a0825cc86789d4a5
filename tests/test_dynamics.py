"""Dynamics models and the model env: scaler statistics against NumPy, a known linear system,
the ensemble's NLL and elites, reward and terminal functions against the real envs."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from lit_rl.algos.dyna.dynamics import (
    DynamicsConfig,
    EnsembleDynamics,
    MLPDynamics,
    RunningStandardScaler,
    Transitions,
)
from lit_rl.algos.dyna.model_env import (
    FixedEpisodeLength,
    HopperTerminal,
    ModelEnv,
    NegatedCost,
    PendulumReward,
    QuadraticCost,
    RandomReward,
    RandomTerminal,
    make_reward_function,
    uniform_states,
)


def adam_step(module, lr=1e-3, weight_decay=0.0, frozen_members=()):
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)

    def step(loss):
        optimizer.zero_grad()
        loss.backward()
        for layer in getattr(module, "layers", []):  # members that must not learn
            for p in layer.parameters():
                p.grad[list(frozen_members)] = 0.0
        if frozen_members:
            for p in module.head.parameters():
                p.grad[list(frozen_members)] = 0.0
        optimizer.step()

    return step


def linear_system(n, seed=0, noise=0.0):
    """``s' = A s + B a`` (+ noise), reward ``-|s|^2``."""
    g = torch.Generator().manual_seed(seed)
    a_matrix = torch.tensor([[0.9, 0.2, 0.0], [-0.1, 0.8, 0.3], [0.0, 0.1, 0.95]])
    b_matrix = torch.tensor([[0.5], [0.0], [-1.0]])
    obs = torch.randn(n, 3, generator=g) * torch.tensor([1.0, 2.0, 0.5])
    act = torch.rand(n, 1, generator=g) * 2 - 1
    nxt = obs @ a_matrix.T + act @ b_matrix.T + noise * torch.randn(n, 3, generator=g)
    return Transitions(obs, act, nxt, -(obs**2).sum(-1), torch.zeros(n, dtype=torch.bool))


def test_running_scaler_matches_numpy_over_random_batches():
    rng = np.random.default_rng(0)
    scaler = RunningStandardScaler(4)
    seen = []
    for size in [1, 7, 100, 3, 250]:
        batch = rng.normal(loc=[0.0, 5.0, -3.0, 100.0], scale=[1.0, 0.1, 4.0, 20.0], size=(size, 4))
        scaler.update(torch.from_numpy(batch).float())
        seen.append(batch.astype(np.float32))
        data = np.concatenate(seen)
        np.testing.assert_allclose(scaler.mean.numpy(), data.mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(scaler.var.numpy(), data.var(0), rtol=1e-4, atol=1e-6)
        assert scaler.count.item() == len(data)
    x = torch.from_numpy(data[:5])
    expected = (data[:5] - data.mean(0)) / (data.std(0) + 0.01)
    np.testing.assert_allclose(scaler(x).numpy(), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(scaler.inverse(scaler(x)), x, rtol=1e-4, atol=1e-4)


def test_mlp_model_fits_a_linear_system():
    torch.manual_seed(0)
    data = linear_system(2000)
    config = DynamicsConfig(kind="mlp", hidden=[64, 64], activation="relu", batch_size=128, init_std=0.1)
    model = MLPDynamics(3, 1, config)
    model.update_scalers(data)
    before = model.scaled_error(data).mean().item()
    model.fit(data, adam_step(model, lr=1e-2), iterations=150)  # error about 3e-4 (seeds 0-2), before about 0.95
    test = linear_system(500, seed=1)
    error = model.scaled_error(test).mean().item()
    assert before > 0.3 and error < 5e-3, (before, error)
    prediction = model.predict(test.observations, test.actions)
    assert prediction.rewards is None and prediction.terminations is None
    assert (prediction.next_observations - test.next_observations).abs().max() < 0.3


def test_mlp_model_weight_penalties_add_to_the_loss():
    data = linear_system(64)
    plain = MLPDynamics(3, 1, DynamicsConfig(kind="mlp", hidden=[8], init_std=0.5))
    penalised = MLPDynamics(3, 1, DynamicsConfig(kind="mlp", hidden=[8], init_std=0.5, l1=0.1, l2=0.2))
    penalised.load_state_dict(plain.state_dict())
    weights = [layer.weight for layer in plain.net if isinstance(layer, torch.nn.Linear)]
    expected = 0.1 * sum(w.abs().sum() for w in weights) + 0.2 * sum(w.square().sum() for w in weights)
    assert penalised.loss(data).item() == pytest.approx(plain.loss(data).item() + expected.item(), rel=1e-5)


def test_ensemble_nll_decreases_and_elites_have_the_lowest_validation_loss():
    torch.manual_seed(0)
    data = linear_system(1500, noise=0.05)
    config = DynamicsConfig(
        kind="ensemble", hidden=[32, 32], members=4, elites=2, batch_size=64, holdout_ratio=0.2, patience=50
    )
    model = EnsembleDynamics(3, 1, config)
    model.update_scalers(data)
    with torch.no_grad():
        before = model.nll(data).mean().item()
    # members 0 and 1 never learn: validation must rank them last
    # 100 iterations: the learning members' NLL about -3.3 (seeds 0-2), their scaled error 0.004-0.008
    metrics = model.fit(data, adam_step(model, lr=1e-2, weight_decay=5e-5, frozen_members=(0, 1)), iterations=100)
    with torch.no_grad():
        after = model.nll(data)  # [M, N]
    assert after[2:].mean().item() < before - 1.0, (before, after.mean(1))
    assert set(model.elite_indices.tolist()) == {2, 3}
    assert (model.validation_loss[[2, 3]] < model.validation_loss[[0, 1]].min()).all()
    assert metrics["dynamics/validation_loss"] == pytest.approx(model.validation_loss[[2, 3]].mean().item())
    # the elites' mean prediction is accurate, the reward head included
    test = linear_system(300, seed=1)
    assert model.scaled_error(test).mean().item() < 0.05
    sample = model.sample(test.observations, test.actions)
    assert sample.rewards.shape == (300,) and torch.isfinite(sample.next_observations).all()


def test_ensemble_early_stopping_keeps_each_members_best_weights():
    torch.manual_seed(0)
    data = linear_system(600, noise=0.3)
    config = DynamicsConfig(kind="ensemble", hidden=[16], members=3, elites=1, batch_size=64, patience=2)
    model = EnsembleDynamics(3, 1, config)
    model.update_scalers(data)
    step = adam_step(model, lr=1e-2)  # at the noise floor after about 150 batches (noise 0.05, lr 3e-3: 600)
    first = model.fit(data, step, iterations=5000)
    assert first["dynamics/train_batches"] < 5000  # stopped by patience, not by the budget
    # a learning rate so large that every step makes things worse: nothing is kept
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    model.fit(data, adam_step(model, lr=10.0), iterations=50)
    for key, value in model.state_dict().items():
        if "scaler" not in key and key not in ("validation_loss", "elite_indices"):
            torch.testing.assert_close(value, kept[key], msg=key)


# ----------------------------------------------------------------------------- model env


def test_pendulum_reward_matches_the_real_env():
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    reward_scaled, reward_torque = PendulumReward(), PendulumReward(scaled_actions=False)
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = rng.uniform(-1, 1, size=1).astype(np.float32)
        nxt, r, terminated, truncated, _ = env.step(2.0 * a)
        s, act, s2 = (torch.as_tensor(x, dtype=torch.float32)[None] for x in (obs, a, nxt))
        assert reward_scaled(s, act, s2).item() == pytest.approx(r, abs=1e-4)
        assert reward_torque(s, 2.0 * act, s2).item() == pytest.approx(r, abs=1e-4)
        obs = nxt
        if terminated or truncated:
            obs, _ = env.reset()


def test_quadratic_cost_negated_and_random_rewards():
    s, a, s2 = torch.randn(5, 3), torch.randn(5, 2), torch.randn(5, 3)
    cost = QuadraticCost(state_weight=[1.0, 2.0, 0.5], action_weight=0.1, goal=[1.0, 0.0, 0.0])
    goal = torch.tensor([1.0, 0.0, 0.0])
    expected = ((s2 - goal) ** 2 * torch.tensor([1.0, 2.0, 0.5])).sum(-1) + 0.1 * (a**2).sum(-1)
    torch.testing.assert_close(cost(s, a, s2), expected)
    torch.testing.assert_close(NegatedCost(cost)(s, a, s2), -expected)
    by_name = make_reward_function("quadratic_cost", {"state_weight": [1.0, 2.0, 0.5], "action_weight": 0.1})
    torch.testing.assert_close(
        by_name(s, a, s2), -((s2**2) * torch.tensor([1.0, 2.0, 0.5])).sum(-1) - 0.1 * (a**2).sum(-1)
    )
    random = RandomReward(-2.0, 3.0)(torch.zeros(10_000, 3), torch.zeros(10_000, 1), torch.zeros(10_000, 3))
    assert random.min() >= -2.0 and random.max() <= 3.0 and abs(random.mean().item() - 0.5) < 0.1
    with pytest.raises(ValueError, match="unknown reward_function"):
        make_reward_function("nope")


def test_hopper_terminal_matches_the_real_env():
    env = gym.make("Hopper-v5")
    terminal = HopperTerminal()
    rng = np.random.default_rng(0)
    checked = ended = 0
    for episode in range(10):
        obs, _ = env.reset(seed=episode)
        for _ in range(200):
            nxt, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 3).astype(np.float32))
            s, s2 = torch.as_tensor(obs)[None].float(), torch.as_tensor(nxt)[None].float()
            assert terminal(s, None, s2, None).item() == terminated
            checked, ended = checked + 1, ended + int(terminated)
            obs = nxt
            if terminated or truncated:
                break
    assert ended == 10 and checked > 50  # random actions make every episode fall


def model_env(terminal_function, reward_function=None, **config):
    dynamics = MLPDynamics(3, 1, DynamicsConfig(kind="mlp", hidden=[8], **config))
    return ModelEnv(dynamics, reward_function or PendulumReward(), terminal_function)


def test_fixed_episode_length_counts_each_model_episode_and_truncates():
    env = model_env(FixedEpisodeLength(3))
    env.reset(torch.zeros(4, 3))
    actions = torch.zeros(4, 1)
    for _ in range(2):
        _, _, _, terminated, truncated = env.step(actions)
        assert not truncated.any()
    env.reset(torch.ones(2, 3), rows=torch.tensor([True, False, True, False]))  # two new episodes
    _, _, _, terminated, truncated = env.step(actions)
    assert truncated.tolist() == [False, True, False, True]  # a time limit: bootstraps, not terminal
    assert not terminated.any()
    assert env.episode_steps.tolist() == [1, 3, 1, 3]


def test_random_terminal_terminates_with_probability_p():
    env = model_env(RandomTerminal(0.2))
    env.reset(torch.zeros(20_000, 3))
    _, next_obs, rewards, terminated, truncated = env.step(torch.zeros(20_000, 1))
    assert abs(terminated.float().mean().item() - 0.2) < 0.02 and not truncated.any()
    assert next_obs.shape == (20_000, 3) and rewards.shape == (20_000,)


def test_model_env_needs_a_reward_source_and_clips_to_the_box():
    dynamics = MLPDynamics(3, 1, DynamicsConfig(kind="mlp", hidden=[8]))
    with pytest.raises(ValueError, match="does not predict rewards"):
        ModelEnv(dynamics, None)
    with torch.no_grad():
        dynamics.net[-1].bias.fill_(100.0)  # predicts a huge change
    low, high = torch.tensor([-1.0, -1.0, -8.0]), torch.tensor([1.0, 1.0, 8.0])
    env = ModelEnv(dynamics, PendulumReward(), None, low, high)
    env.reset(torch.zeros(5, 3))
    _, next_obs, _, _, _ = env.step(torch.zeros(5, 1))
    assert torch.equal(next_obs, high.expand(5, 3))
    starts = uniform_states(low, high, 1000)
    assert (starts >= low).all() and (starts <= high).all() and starts[:, 2].abs().max() > 6

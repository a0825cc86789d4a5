import numpy as np
import pytest
import torch

from lit_rl.acting import Actor, RolloutContext
from lit_rl.algos import DDPG
from lit_rl.algos.base import PolyakTargets
from lit_rl.nets import ObservationNormalizer, mlp


def context(env_steps: int, episode_starts: torch.Tensor) -> RolloutContext:
    return RolloutContext(env_steps, 0, episode_starts, None, steps_before_batches=0)


def test_normalizer_folds_statistics_only_on_update():
    normalizer = ObservationNormalizer(2)
    data = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    normalizer.record(data)
    assert torch.equal(normalizer(data), data)  # nothing folded in yet: mean 0, std 1
    normalizer.update()
    assert normalizer.mean.tolist() == pytest.approx([3.0, 10.0])
    assert normalizer.std[0].item() == pytest.approx(np.std([1.0, 3.0, 5.0]))
    assert normalizer.std[1].item() == pytest.approx(1e-2)  # floor
    more = torch.tensor([[7.0, 10.0]])
    normalizer.record(more)
    normalizer.update()
    assert normalizer.mean[0].item() == pytest.approx(4.0)
    assert normalizer.std[0].item() == pytest.approx(np.std([1.0, 3.0, 5.0, 7.0]))


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match="swish"):
        mlp(2, [4], 1, "swish")


def test_soft_update_is_polyak_average():
    online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = target.weight.detach().clone()
    PolyakTargets((target, online)).update(0.25)
    assert torch.allclose(target.weight, before + 0.25 * (online.weight - before))


def test_ddpg_actions_respect_bounds_and_warm_up_is_uniform():
    module = DDPG(observation_dim=3, action_bounds=[[-2.0], [2.0]], random_steps=10, noise_std=5.0)
    obs = torch.randn(64, 3)
    starts = torch.zeros(64, dtype=torch.bool)
    greedy = module.act_greedy(obs)
    assert greedy.shape == (64, 1) and greedy.abs().max() <= 2.0
    actor = Actor(module)
    with torch.no_grad():
        warm = actor.act(obs, context(0, starts))
        noisy = actor.act(obs, context(100, starts))
    assert warm.abs().max() <= 2.0 and noisy.abs().max() <= 2.0
    assert warm.std() > 0.5  # uniform over [-2, 2]
    assert noisy.abs().max() == 2.0  # noise of 5 half-ranges, clipped to the bounds


def test_ornstein_uhlenbeck_noise_resets_at_episode_start():
    module = DDPG(
        observation_dim=3,
        action_bounds=[[-1.0], [1.0]],
        random_steps=0,
        exploration_noise="ornstein_uhlenbeck",
        noise_std=0.3,
        ou_theta=0.15,
        ou_dt=0.01,
    )
    obs = torch.zeros(2, 3)
    actor = Actor(module)
    for _ in range(20):
        actor.act(obs, context(1, torch.zeros(2, dtype=torch.bool)))
    previous = actor.noise.state.clone()
    assert (previous != 0).all()
    torch.manual_seed(1)
    draw = torch.randn(2, 1)
    torch.manual_seed(1)
    actor.act(obs, context(1, torch.tensor([True, False])))
    # env 0 restarts its process from zero, env 1 continues it
    assert actor.noise.state[0].item() == pytest.approx(0.1 * draw[0].item())
    assert actor.noise.state[1].item() == pytest.approx(previous[1].item() * (1 - 0.15 * 0.01) + 0.1 * draw[1].item())


def test_ddpg_requires_linked_spaces():
    with pytest.raises(ValueError, match="observation_dim and action_bounds"):
        DDPG()

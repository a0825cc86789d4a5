"""What TD3's and SAC's math needs beyond the shared suite (tests/test_algorithms.py)."""

import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from lit_rl.algos import SAC, TD3
from lit_rl.contract import Batch

OBS, ACT, B = 3, 2, 64


def toy_batch() -> Batch:
    return Batch(torch.randn(B, OBS), torch.rand(B, ACT) * 2 - 1, torch.randn(B), torch.randn(B, OBS),
                 torch.full((B,), 0.99))  # fmt: skip


def without_trainer(module):
    """``update`` runs with plain optimizers and backward, no Trainer."""
    optimizers = module.configure_optimizers()
    module.optimizers = lambda: optimizers
    module.manual_backward = lambda loss: loss.backward()
    return module


def test_sac_log_prob_is_the_tanh_squashed_gaussians():
    torch.manual_seed(0)
    module = SAC(observation_dim=OBS, action_bounds=[[-1.0] * ACT, [1.0] * ACT], actor_hidden=(16,))
    obs = torch.randn(5, OBS)
    torch.manual_seed(1)
    actions, log_prob = module.actor.sample(obs)
    mean, log_std = module.actor(obs)
    reference = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    torch.testing.assert_close(log_prob, reference.log_prob(actions.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1), atol=1e-3,
                               rtol=1e-4)  # fmt: skip
    assert actions.abs().max() < 1


@pytest.mark.parametrize(("target_entropy", "grows"), [(100.0, True), (-100.0, False)])
def test_sac_temperature_moves_towards_the_target_entropy(target_entropy, grows):
    torch.manual_seed(0)
    module = without_trainer(SAC(observation_dim=OBS, action_bounds=[[-1.0] * ACT, [1.0] * ACT], actor_hidden=(16,),
                                 critic_hidden=(16,), target_entropy=target_entropy))  # fmt: skip
    before = module.log_alpha.item()
    metrics = module.update(toy_batch())
    assert (module.log_alpha.item() > before) == grows
    assert torch.isfinite(metrics["loss/actor"]) and torch.isfinite(metrics["loss/critic"])


def test_td3_updates_the_actor_and_targets_every_policy_delay_critic_updates():
    torch.manual_seed(0)
    module = without_trainer(TD3(observation_dim=OBS, action_bounds=[[-1.0] * ACT, [1.0] * ACT], actor_hidden=(16,),
                                 critic_hidden=(16,), policy_delay=3))  # fmt: skip
    actor_steps = []
    for updates in range(7):
        module.updates = updates  # the base class counts them in training_step
        actor, target = module.actor[0].weight.clone(), module.critic_target[0].weight.clone()
        critic = module.critic2[0].weight.clone()
        metrics = module.update(toy_batch())
        assert not torch.equal(critic, module.critic2[0].weight), "both critics learn every update"
        stepped = not torch.equal(actor, module.actor[0].weight)
        assert stepped == ("loss/actor" in metrics) == (not torch.equal(target, module.critic_target[0].weight))
        actor_steps.append(stepped)
    assert actor_steps == [True, False, False, True, False, False, True]


@pytest.mark.parametrize("low_critic", ["critic_target", "critic2_target"])
def test_td3_bootstraps_from_the_smaller_target_critic_at_a_smoothed_action(low_critic):
    torch.manual_seed(0)
    module = TD3(observation_dim=OBS, action_bounds=[[-2.0] * ACT, [2.0] * ACT], actor_hidden=(16,),
                 critic_hidden=(16,), target_noise=0.2, noise_clip=0.3)  # fmt: skip
    with torch.no_grad():
        getattr(module, low_critic)[-1].bias.fill_(-50.0)
    batch = toy_batch()
    torch.manual_seed(1)
    target = module.td_target(batch)
    torch.manual_seed(1)
    noise = (torch.randn_like(batch.actions) * 0.2).clamp(-0.3, 0.3) * 2.0  # the half-range is 2
    next_actions = (module.pi(batch.next_observations, target=True) + noise).clamp(-2.0, 2.0)
    low = module.q if low_critic == "critic_target" else module.q2
    torch.testing.assert_close(
        target, batch.rewards + batch.discounts * low(batch.next_observations, next_actions, True)
    )

"""An algorithm written as a newcomer would from Lightning's manual-optimization docs, with none
of lit_rl's helpers: no ``save_hyperparameters``, plain
``manual_backward(loss); opt.step()``, no ``rank_state_dict``, and an actor step (and its
metric) on every other batch only. tests/test_contract.py checks that none of that fails silently."""

import copy

import torch
import torch.nn.functional as F

from lit_rl.algos import OffPolicyAlgorithm, PolyakTargets
from lit_rl.nets import mlp


class PlainDDPG(OffPolicyAlgorithm):
    """DDPG with delayed actor updates (every ``policy_delay`` batches), Ornstein-Uhlenbeck noise."""

    def __init__(self, observation_dim=None, action_bounds=None, hidden: int = 32, policy_delay: int = 2):
        super().__init__(
            observation_dim,
            action_bounds,
            normalize_observations=True,
            random_steps=100,
            exploration_noise="ornstein_uhlenbeck",
            noise_std=0.3,
        )
        self.actor = mlp(self.observation_dim, [hidden], self.action_dim)
        self.critic = mlp(self.observation_dim + self.action_dim, [hidden], 1)
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        self.targets = PolyakTargets((self.actor_target, self.actor), (self.critic_target, self.critic))
        self.policy_delay = policy_delay

    def pi(self, observations, target=False):
        return self.scale_action(
            torch.tanh((self.actor_target if target else self.actor)(self.normalize_for_actor(observations)))
        )

    def q(self, observations, actions, target=False):
        critic = self.critic_target if target else self.critic
        return critic(torch.cat([self.normalize_for_critic(observations), actions], -1)).squeeze(-1)

    def explore(self, observations, env_steps, episode_starts):
        return self.pi(observations)

    def act_greedy(self, observations):
        return self.pi(observations)

    def update(self, batch):
        actor_opt, critic_opt = self.optimizers()
        with torch.no_grad():
            target = batch.rewards + batch.discounts * self.q(
                batch.next_observations, self.pi(batch.next_observations, True), True
            )
        critic_loss = F.mse_loss(self.q(batch.observations, batch.actions), target)
        critic_opt.zero_grad()
        self.manual_backward(critic_loss)
        critic_opt.step()
        metrics = {"loss/critic": critic_loss.detach()}
        if self.updates % self.policy_delay == 0:
            actor_loss = -self.q(batch.observations, self.pi(batch.observations)).mean()
            actor_opt.zero_grad()
            self.manual_backward(actor_loss)
            actor_opt.step()
            self.targets.update(0.005)
            metrics["loss/actor"] = actor_loss.detach()
        return metrics

    def configure_optimizers(self):
        return [torch.optim.Adam(self.actor.parameters(), 1e-3), torch.optim.Adam(self.critic.parameters(), 1e-3)]

"""Twin Delayed DDPG (Fujimoto et al. 2018): DDPG with two critics whose smaller target value is
bootstrapped from, smoothed target actions, and actor and target updates every few critic updates."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from lit_rl.algos.base import PolyakTargets, adam
from lit_rl.algos.ddpg import DDPG
from lit_rl.contract import Batch
from lit_rl.nets import mlp


class TD3(DDPG):
    """TD3: DDPG's networks, noise and warm-up, a second critic and delayed actor updates.

    Args:
        policy_delay: the actor and the targets are updated every this many critic updates.
        target_noise: std of the Gaussian noise on target actions, as a fraction of the action
            half-range (target policy smoothing).
        noise_clip: that noise is clipped to +-this fraction of the half-range.
        **kwargs: ``DDPG``'s arguments.
    """

    tonic_agents = {  # a literal: convert reads it from this file
        "tonic.torch.agents.TD3": ("model", "replay", "exploration", "actor_updater", "critic_updater", "delay_steps"),
        "deprl.vendor.tonic.torch.agents.TD3": (
            "model", "replay", "exploration", "actor_updater", "critic_updater", "delay_steps",
        ),
    }  # fmt: skip

    def __init__(
        self,
        observation_dim: int | None = None,
        action_bounds: list[list[float]] | None = None,
        policy_delay: int = 2,
        target_noise: float = 0.2,
        noise_clip: float = 0.5,
        **kwargs,
    ):
        super().__init__(observation_dim, action_bounds, **kwargs)
        hp = self.hparams
        self.critic2 = mlp(self.observation_dim + self.action_dim, list(hp.critic_hidden), 1, hp.activation)
        self.critic2_target = copy.deepcopy(self.critic2).requires_grad_(False)
        self.targets = PolyakTargets(
            (self.actor_target, self.actor), (self.critic_target, self.critic), (self.critic2_target, self.critic2)
        )

    def q2(self, observations: torch.Tensor, actions: torch.Tensor, target: bool = False) -> torch.Tensor:
        critic = self.critic2_target if target else self.critic2
        return critic(torch.cat([self.normalize_for_critic(observations), actions], -1)).squeeze(-1)

    @torch.no_grad()
    def td_target(self, batch: Batch) -> torch.Tensor:
        """``r + d * min_i Q_i,targ(s', clip(pi_targ(s') + clipped noise))``."""
        hp = self.hparams
        smoothing = (torch.randn_like(batch.actions) * hp.target_noise).clamp(-hp.noise_clip, hp.noise_clip)
        next_actions = self.pi(batch.next_observations, target=True) + smoothing * self.action_half_range
        next_actions = torch.clamp(next_actions, self.action_low, self.action_high)
        next_q1 = self.q(batch.next_observations, next_actions, target=True)
        next_q = torch.min(next_q1, self.q2(batch.next_observations, next_actions, target=True))
        return batch.rewards + batch.discounts * next_q

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        actor_opt, critic_opt = self.optimizers()
        hp = self.hparams
        target = self.td_target(batch)
        q1, q2 = self.q(batch.observations, batch.actions), self.q2(batch.observations, batch.actions)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.clip_and_step(critic_opt, critic_loss, hp.max_grad_norm)
        metrics = {"loss/critic": critic_loss.detach(), "q/mean": q1.detach().mean()}

        if self.updates % hp.policy_delay == 0:
            actor_loss = -self.q(batch.observations, self.pi(batch.observations)).mean()
            self.clip_and_step(actor_opt, actor_loss, hp.max_grad_norm)
            self.targets.update(hp.tau)
            metrics["loss/actor"] = actor_loss.detach()
        return metrics

    def configure_optimizers(self):
        critics = [*self.critic.parameters(), *self.critic2.parameters()]
        return [adam(self.actor.parameters(), self.hparams.actor_lr), adam(critics, self.hparams.critic_lr)]

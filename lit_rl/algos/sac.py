"""Soft Actor-Critic (Haarnoja et al. 2018, with the automatic entropy temperature of the second
paper): a tanh-squashed Gaussian policy maximising return plus entropy, twin critics."""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lit_rl.acting import DEPConfig
from lit_rl.algos.base import OffPolicyAlgorithm, PolyakTargets, adam
from lit_rl.contract import Batch
from lit_rl.nets import mlp

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class SquashedGaussianActor(nn.Module):
    """Observation -> MLP -> mean and log-std of ``u``; the action is ``tanh(u)`` in [-1, 1]."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: list[int], activation: str, log_std_min: float,
                 log_std_max: float):  # fmt: skip
        super().__init__()
        self.net = mlp(observation_dim, hidden, 2 * action_dim, activation)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(observations).float().chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in [-1, 1] and its log-probability (summed over dimensions)."""
        mean, log_std = self(observations)
        noise = torch.randn_like(mean)
        u = mean + log_std.exp() * noise
        log_prob = (-0.5 * noise.square() - log_std - LOG_SQRT_2PI).sum(-1)
        # log |d tanh(u) / du| = log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
        log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), log_prob


class SAC(OffPolicyAlgorithm):
    """SAC with twin critics and targets, a learned entropy temperature and a uniform warm-up.

    Args:
        actor_hidden: hidden layer sizes of the actor.
        critic_hidden: hidden layer sizes of each critic (input: observation and action).
        activation: hidden activation (relu, tanh, silu, elu, gelu).
        actor_lr: Adam learning rate of the actor.
        critic_lr: Adam learning rate of the critics.
        alpha_lr: Adam learning rate of the log entropy temperature.
        initial_alpha: entropy temperature at the start.
        target_entropy: the entropy the temperature steers the policy to; None: ``-action_dim``.
        tau: Polyak rate of the target critics, applied after every batch.
        log_std_min, log_std_max: clamp of the policy's log-std.
        max_grad_norm: clip the actor's and the critics' gradient norm (None: no clipping).
        observation_dim, action_bounds, normalize_observations, normalizer_statistics, dep_mode,
            dep, random_steps: see ``OffPolicyAlgorithm``; SAC explores by sampling its policy, after ``random_steps``
            uniform random steps.
    """

    tonic_agents = {  # a literal: convert reads it from this file
        "tonic.torch.agents.SAC": ("model", "replay", "exploration", "actor_updater", "critic_updater"),
        "deprl.vendor.tonic.torch.agents.SAC": ("model", "replay", "exploration", "actor_updater", "critic_updater"),
    }

    def __init__(
        self,
        observation_dim: int | None = None,
        action_bounds: list[list[float]] | None = None,
        actor_hidden: tuple[int, ...] = (256, 256),
        critic_hidden: tuple[int, ...] = (256, 256),
        activation: str = "relu",
        actor_lr: float = 3e-4,
        critic_lr: float = 3e-4,
        alpha_lr: float = 3e-4,
        initial_alpha: float = 1.0,
        target_entropy: float | None = None,
        tau: float = 0.005,
        log_std_min: float = -20.0,
        log_std_max: float = 2.0,
        max_grad_norm: float | None = None,
        normalize_observations: bool | Literal["critic"] = False,
        normalizer_statistics: Literal["exact", "float32"] = "exact",
        dep_mode: int = 0,
        dep: DEPConfig | None = None,
        random_steps: int = 10_000,
    ):
        super().__init__(
            observation_dim, action_bounds, normalize_observations=normalize_observations,
            normalizer_statistics=normalizer_statistics, dep_mode=dep_mode, dep=dep, random_steps=random_steps,
        )  # fmt: skip
        obs_dim, act_dim = self.observation_dim, self.action_dim
        self.actor = SquashedGaussianActor(obs_dim, act_dim, list(actor_hidden), activation, log_std_min, log_std_max)
        self.critics = nn.ModuleList(mlp(obs_dim + act_dim, list(critic_hidden), 1, activation) for _ in range(2))
        self.critic_targets = copy.deepcopy(self.critics).requires_grad_(False)
        self.targets = PolyakTargets((self.critic_targets, self.critics))
        self.log_alpha = nn.Parameter(torch.tensor(math.log(initial_alpha)))
        self.target_entropy = -float(act_dim) if target_entropy is None else target_entropy

    def q(self, observations: torch.Tensor, actions: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Both critics' values ``[2, B]``."""
        inputs = torch.cat([self.normalize_for_critic(observations), actions], -1)
        return torch.stack(
            [critic(inputs).squeeze(-1).float() for critic in (self.critic_targets if target else self.critics)]
        )

    def policy_sample(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions in the action bounds and their log-probabilities (of the [-1, 1] actions)."""
        unit, log_prob = self.actor.sample(self.normalize_for_actor(observations))
        return self.scale_action(unit), log_prob

    def explore(self, observations, env_steps, episode_starts):
        return self.policy_sample(observations)[0]

    def act_greedy(self, observations):
        return self.scale_action(torch.tanh(self.actor(self.normalize_for_actor(observations))[0]))

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        actor_opt, critic_opt, alpha_opt = self.optimizers()
        max_norm = self.hparams.max_grad_norm
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_actions, next_log_prob = self.policy_sample(batch.next_observations)
            next_q = self.q(batch.next_observations, next_actions, target=True).min(0).values
            target = batch.rewards + batch.discounts * (next_q - alpha * next_log_prob)
        q = self.q(batch.observations, batch.actions)
        critic_loss = F.mse_loss(q[0], target) + F.mse_loss(q[1], target)
        self.clip_and_step(critic_opt, critic_loss, max_norm)

        actions, log_prob = self.policy_sample(batch.observations)
        actor_loss = (alpha * log_prob - self.q(batch.observations, actions).min(0).values).mean()
        self.clip_and_step(actor_opt, actor_loss, max_norm)
        # dJ/dlog_alpha = -(log_prob + target_entropy): alpha grows while the entropy is below target
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self.clip_and_step(alpha_opt, alpha_loss, None)

        self.targets.update(self.hparams.tau)
        return {
            "loss/actor": actor_loss.detach(),
            "loss/critic": critic_loss.detach(),
            "q/mean": q.detach().mean(),
            "sac/alpha": alpha,
            "sac/entropy": -log_prob.detach().mean(),
        }

    def configure_optimizers(self):
        hp = self.hparams
        return [
            adam(self.actor.parameters(), hp.actor_lr),
            adam(self.critics.parameters(), hp.critic_lr),
            adam([self.log_alpha], hp.alpha_lr),
        ]

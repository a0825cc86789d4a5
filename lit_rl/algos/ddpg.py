"""Deep Deterministic Policy Gradient (Lillicrap et al. 2016)."""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F

from lit_rl.acting import DEPConfig
from lit_rl.algos.base import OffPolicyAlgorithm, PolyakTargets, adam
from lit_rl.contract import Batch
from lit_rl.nets import mlp


class DDPG(OffPolicyAlgorithm):
    """DDPG with target networks, action noise and a uniform random warm-up.

    Args:
        actor_hidden: hidden layer sizes of the actor.
        critic_hidden: hidden layer sizes of the critic (input: observation and action).
        activation: hidden activation (relu, tanh, silu, elu, gelu).
        actor_lr: Adam learning rate of the actor.
        critic_lr: Adam learning rate of the critic.
        tau: Polyak rate of the target networks, applied after every batch.
        max_grad_norm: clip each network's gradient norm to this value (None: no clipping).
        observation_dim, action_bounds, normalize_observations, normalizer_statistics, dep_mode, dep,
            random_steps, exploration_noise, noise_std, ou_theta, ou_dt, pink_beta, pink_seq_len: see
            ``OffPolicyAlgorithm``; DDPG explores with Gaussian noise of std 0.1 after 10,000 uniform
            random steps; ``exploration_noise: pink`` adds pink noise of that std instead.
    """

    noise_enters = "action"  # a deterministic policy: the exploration noise is added to its actions

    tonic_agents = {
        "tonic.torch.agents.DDPG": ("model", "replay", "exploration", "actor_updater", "critic_updater"),
        "deprl.vendor.tonic.torch.agents.DDPG": ("model", "replay", "exploration", "actor_updater", "critic_updater"),
    }

    def __init__(
        self,
        observation_dim: int | None = None,
        action_bounds: list[list[float]] | None = None,
        actor_hidden: tuple[int, ...] = (256, 256),
        critic_hidden: tuple[int, ...] = (256, 256),
        activation: str = "relu",
        actor_lr: float = 1e-3,
        critic_lr: float = 1e-3,
        tau: float = 0.005,
        exploration_noise: Literal["gaussian", "ornstein_uhlenbeck", "pink"] = "gaussian",
        noise_std: float = 0.1,
        ou_theta: float = 0.15,
        ou_dt: float = 0.01,
        pink_beta: float = 1.0,
        pink_seq_len: int = 1000,
        random_steps: int = 10_000,
        max_grad_norm: float | None = None,
        normalize_observations: bool | Literal["critic"] = False,
        normalizer_statistics: Literal["exact", "float32"] = "exact",
        dep_mode: int = 0,
        dep: DEPConfig | None = None,
    ):
        super().__init__(
            observation_dim, action_bounds, normalize_observations=normalize_observations,
            normalizer_statistics=normalizer_statistics, dep_mode=dep_mode, dep=dep, random_steps=random_steps,
            exploration_noise=exploration_noise, noise_std=noise_std, ou_theta=ou_theta, ou_dt=ou_dt,
            pink_beta=pink_beta, pink_seq_len=pink_seq_len,
        )  # fmt: skip
        obs_dim, act_dim = self.observation_dim, self.action_dim
        self.actor = mlp(obs_dim, list(actor_hidden), act_dim, activation)
        self.critic = mlp(obs_dim + act_dim, list(critic_hidden), 1, activation)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.targets = PolyakTargets((self.actor_target, self.actor), (self.critic_target, self.critic))

    def pi(self, observations: torch.Tensor, target: bool = False) -> torch.Tensor:
        actor = self.actor_target if target else self.actor
        return self.scale_action(torch.tanh(actor(self.normalize_for_actor(observations))))

    def q(self, observations: torch.Tensor, actions: torch.Tensor, target: bool = False) -> torch.Tensor:
        critic = self.critic_target if target else self.critic
        return critic(torch.cat([self.normalize_for_critic(observations), actions], -1)).squeeze(-1)

    def explore(self, observations, env_steps, episode_starts):
        return self.pi(observations)  # the base class adds the exploration noise

    def act_greedy(self, observations):
        return self.pi(observations)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        actor_opt, critic_opt = self.optimizers()[:2]  # subclasses (Dyna) may add optimizers after these
        max_norm = self.hparams.max_grad_norm

        with torch.no_grad():
            next_q = self.q(batch.next_observations, self.pi(batch.next_observations, target=True), target=True)
            target = batch.rewards + batch.discounts * next_q
        q = self.q(batch.observations, batch.actions)
        critic_loss = F.mse_loss(q, target)
        self.clip_and_step(critic_opt, critic_loss, max_norm)

        actor_loss = -self.q(batch.observations, self.pi(batch.observations)).mean()
        self.clip_and_step(actor_opt, actor_loss, max_norm)

        self.targets.update(self.hparams.tau)
        return {"loss/actor": actor_loss.detach(), "loss/critic": critic_loss.detach(), "q/mean": q.detach().mean()}

    def configure_optimizers(self):
        return [
            adam(self.actor.parameters(), self.hparams.actor_lr),
            adam(self.critic.parameters(), self.hparams.critic_lr),
        ]

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
from lit_rl.nets import ACTIVATIONS, full_precision, mlp
from lit_rl.nets.lattice import LatticeActor, LatticeConfig, LatticeHead, tanh_log_det

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class SquashedGaussianActor(nn.Module):
    """``net``: observation -> mean and log-std of ``u`` (``2 * action_dim`` outputs); the action is
    ``tanh(u)`` in [-1, 1]."""

    def __init__(self, net: nn.Module, log_std_min: float, log_std_max: float):
        super().__init__()
        self.net = net
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = full_precision(self.net(observations)).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(self, observations: torch.Tensor, noise: torch.Tensor | None = None):
        """A reparameterised action in [-1, 1] and its log-probability (summed over dimensions),
        ``[B, A]`` and ``[B]``; ``noise``: the standard normal draw (a fresh one when None)."""
        mean, log_std = self(observations)
        noise = torch.randn_like(mean) if noise is None else noise
        u = mean + log_std.exp() * noise
        log_prob = (-0.5 * noise.square() - log_std - LOG_SQRT_2PI).sum(-1)
        return torch.tanh(u), log_prob - tanh_log_det(u)

    def explore(self, observations: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """An action in [-1, 1]; ``noise``: the standard normal draw (pink noise), or a fresh one."""
        return self.sample(observations, None if noise is None else noise.to(torch.float32))[0]

    def greedy(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(observations)[0])

    def new_update_noise(self) -> None:
        pass  # fresh noise for every sample


POLICY_HEADS = ("gaussian", "lattice")


def policy_trunk(observation_dim: int, hidden: list[int], activation: str) -> tuple[nn.Sequential, int]:
    """The policy's layers up to its last hidden layer (what a head reads) and that layer's size."""
    if not hidden:
        return nn.Sequential(), observation_dim
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    layers = mlp(observation_dim, hidden[:-1], hidden[-1], activation)
    return nn.Sequential(*layers, ACTIVATIONS[activation]()), hidden[-1]


class SquashedPolicy:
    """What SAC and CrossQ share: a tanh-squashed stochastic policy, its head (``gaussian``, a
    diagonal Gaussian, or ``lattice``, Lattice exploration's latent noise, ``lit_rl.nets.lattice``)
    and how it acts. A mixin before ``OffPolicyAlgorithm``."""

    noise_enters = "draw"  # a stochastic policy: pink noise is the draw it samples with

    def build_policy(self, trunk: nn.Module, latent_dim: int, policy_head: str, lattice: LatticeConfig | dict | None,
                     log_std_min: float, log_std_max: float) -> None:  # fmt: skip
        """``self.actor`` from ``trunk`` (observation -> its last hidden layer, ``latent_dim``
        features) and the head; refuses a head it does not know, or lattice options without it."""
        if policy_head not in POLICY_HEADS:
            raise ValueError(f"policy_head must be one of {list(POLICY_HEADS)}, got {policy_head!r}")
        if policy_head != "lattice" and lattice is not None:
            raise ValueError(f"lattice options are given but policy_head is {policy_head!r}: set policy_head: lattice")
        if policy_head == "lattice" and self.acting.exploration_noise is not None:
            raise ValueError(
                f"exploration_noise: {self.acting.exploration_noise} with policy_head: lattice: Lattice draws its own "
                "latent noise; choose one of them"
            )
        if policy_head == "lattice":
            head = LatticeHead(latent_dim, self.action_dim, LatticeConfig.of(lattice), log_std_min, log_std_max)
            self.actor = LatticeActor(trunk, head)
        else:
            net = nn.Sequential(*trunk, nn.Linear(latent_dim, 2 * self.action_dim))
            self.actor = SquashedGaussianActor(net, log_std_min, log_std_max)

    def policy_sample(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions in the action bounds and their log-probabilities (of the [-1, 1] actions)."""
        unit, log_prob = self.actor.sample(self.normalize_for_actor(observations))
        return self.scale_action(unit), log_prob

    def explore(self, observations, env_steps, episode_starts, noise=None):
        actor_input = self.normalize_for_actor(observations)
        unit = self.actor.explore(actor_input) if noise is None else self.actor.explore(actor_input, noise)
        return self.scale_action(unit)

    def act_greedy(self, observations):
        return self.scale_action(self.actor.greedy(self.normalize_for_actor(observations)))

    def rank_state_dict(self) -> dict:
        state = super().rank_state_dict()
        if isinstance(self.actor, LatticeActor):  # each rank's envs' noise matrices
            state["lattice_acting"] = self.actor.acting_state()
        return state

    def load_rank_state_dict(self, state: dict) -> None:
        super().load_rank_state_dict(state)
        if isinstance(self.actor, LatticeActor) and "lattice_acting" in state:
            self.actor.load_acting_state(state["lattice_acting"])


class SAC(SquashedPolicy, OffPolicyAlgorithm):
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
        policy_head: ``gaussian`` (a diagonal Gaussian, SAC's) or ``lattice`` (Lattice exploration's
            latent noise, ``lit_rl.nets.lattice``; docs/exploration.md).
        lattice: Lattice's options (``lit_rl.nets.LatticeConfig``; its defaults when omitted), with
            ``policy_head: lattice`` only.
        exploration_noise: null (the default: the policy samples with a fresh Gaussian draw) or
            ``pink``: the acting policy's standard-normal draw is pink noise, ``a = tanh(mean + std *
            pink)`` (Eberhard et al. 2023, pink-noise-rl's ``PinkNoiseDist``); the updates' samples
            stay Gaussian. Not with ``policy_head: lattice``.
        pink_beta, pink_seq_len: the pink noise's exponent and sequence length (``OffPolicyAlgorithm``).
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
        policy_head: str = "gaussian",
        lattice: LatticeConfig | None = None,
        exploration_noise: str | None = None,
        pink_beta: float = 1.0,
        pink_seq_len: int = 1000,
    ):
        super().__init__(
            observation_dim, action_bounds, normalize_observations=normalize_observations,
            normalizer_statistics=normalizer_statistics, dep_mode=dep_mode, dep=dep, random_steps=random_steps,
            exploration_noise=exploration_noise, pink_beta=pink_beta, pink_seq_len=pink_seq_len,
        )  # fmt: skip
        obs_dim, act_dim = self.observation_dim, self.action_dim
        self.build_policy(*policy_trunk(obs_dim, list(actor_hidden), activation), policy_head, lattice, log_std_min,
                          log_std_max)  # fmt: skip
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

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        actor_opt, critic_opt, alpha_opt = self.optimizers()
        max_norm = self.hparams.max_grad_norm
        alpha = self.log_alpha.exp().detach()
        self.actor.new_update_noise()  # Lattice's noise matrices: one draw for the whole update
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

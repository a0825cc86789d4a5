"""CrossQ (Bhatt et al. 2024, "CrossQ: Batch Normalization in Deep Reinforcement Learning for
Greater Sample Efficiency and Simplicity"): SAC without target networks, with batch
renormalisation in the critics (and the policy) and one critic forward pass over the current and
the next state-action pairs together, so the normalisation sees both distributions."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lit_rl.acting import DEPConfig
from lit_rl.algos.base import OffPolicyAlgorithm
from lit_rl.algos.sac import SquashedPolicy, policy_trunk
from lit_rl.contract import Batch
from lit_rl.nets import full_precision, mlp
from lit_rl.nets.batch_renorm import renorm_mlp, set_renorm_training
from lit_rl.nets.lattice import LatticeConfig
from lit_rl.training.distributed import is_distributed


class CrossQ(SquashedPolicy, OffPolicyAlgorithm):
    """CrossQ: SAC's policy and entropy temperature, twin batch-renormalised critics, no targets.

    Defaults are sb3-contrib's ``CrossQ`` (the paper's, with a 1024- instead of 2048-wide critic).
    Each update: the next actions are sampled (policy normalisation in evaluation mode); both
    critics run once on ``[s, s']`` and ``[a, a']`` stacked (critic normalisation in training
    mode: batch statistics of the mixture, running statistics updated) and are fitted to
    ``r + discount * (min Q(s', a') - alpha log pi(a'|s'))`` (no gradient through it) with
    ``0.5 * sum of the two MSEs``. Every ``policy_delay``-th update (the 3rd, 6th, ...) the policy is
    sampled with its normalisation in training mode, the temperature steps, then the policy
    steps on ``alpha log pi - min Q`` with the critics in evaluation mode.

    Args:
        actor_hidden: hidden layer sizes of the policy.
        critic_hidden: hidden layer sizes of each critic (the paper's 2048 wide; sb3-contrib's
            1024).
        activation: hidden activation (relu, tanh, silu, elu, gelu).
        actor_lr, critic_lr: Adam learning rates of the policy and the critics.
        alpha_lr: Adam learning rate of the log entropy temperature (Adam's default betas).
        adam_betas: Adam's betas for the policy and the critics (CrossQ's beta1 0.5).
        initial_alpha: entropy temperature at the start.
        target_entropy: the entropy the temperature steers the policy to; None: ``-action_dim``.
        policy_delay: the policy and the temperature are updated every this many critic updates.
        batch_renorm: batch renormalisation before every linear layer of the critics and the
            policy (false: plain MLPs, CrossQ's ablation).
        renorm_momentum: rate of the running statistics, ``ra += momentum * (batch - ra)``.
        renorm_eps: added to the variances.
        renorm_warmup_steps: training batches each normalisation layer normalises with the batch
            statistics alone before the running statistics correct them (counted per layer).
        log_std_min, log_std_max: clamp of the Gaussian policy's log-std.
        max_grad_norm: clip the policy's and the critics' gradient norm (None: no clipping, CrossQ's).
        policy_head, lattice: the policy's distribution, as SAC's (``gaussian`` or ``lattice``).
        exploration_noise, pink_beta, pink_seq_len: pink noise as the acting policy's draw, as SAC's.
        observation_dim, action_bounds, normalize_observations, normalizer_statistics, dep_mode,
            dep, random_steps: see ``OffPolicyAlgorithm``; CrossQ explores by sampling its policy,
            after ``random_steps`` uniform random steps.
    """

    def __init__(
        self,
        observation_dim: int | None = None,
        action_bounds: list[list[float]] | None = None,
        actor_hidden: tuple[int, ...] = (256, 256),
        critic_hidden: tuple[int, ...] = (1024, 1024),
        activation: str = "relu",
        actor_lr: float = 1e-3,
        critic_lr: float = 1e-3,
        alpha_lr: float = 1e-3,
        adam_betas: tuple[float, float] = (0.5, 0.999),
        initial_alpha: float = 1.0,
        target_entropy: float | None = None,
        policy_delay: int = 3,
        batch_renorm: bool = True,
        renorm_momentum: float = 0.01,
        renorm_eps: float = 1e-3,
        renorm_warmup_steps: int = 100_000,
        log_std_min: float = -20.0,
        log_std_max: float = 2.0,
        max_grad_norm: float | None = None,
        policy_head: str = "gaussian",
        lattice: LatticeConfig | None = None,
        normalize_observations: bool | Literal["critic"] = False,
        normalizer_statistics: Literal["exact", "float32"] = "exact",
        dep_mode: int = 0,
        dep: DEPConfig | None = None,
        random_steps: int = 100,
        exploration_noise: str | None = None,
        pink_beta: float = 1.0,
        pink_seq_len: int = 1000,
    ):
        super().__init__(
            observation_dim, action_bounds, normalize_observations=normalize_observations,
            normalizer_statistics=normalizer_statistics, dep_mode=dep_mode, dep=dep, random_steps=random_steps,
            exploration_noise=exploration_noise, pink_beta=pink_beta, pink_seq_len=pink_seq_len,
        )  # fmt: skip
        if policy_delay < 1:
            raise ValueError(f"policy_delay must be at least 1, got {policy_delay}")
        obs_dim, act_dim = self.observation_dim, self.action_dim
        renorm = {"momentum": renorm_momentum, "eps": renorm_eps, "warmup_steps": renorm_warmup_steps}
        if batch_renorm:
            trunk = renorm_mlp(obs_dim, list(actor_hidden), None, activation, **renorm)
            latent_dim = actor_hidden[-1] if actor_hidden else obs_dim
            critics = [renorm_mlp(obs_dim + act_dim, list(critic_hidden), 1, activation, **renorm) for _ in range(2)]
        else:
            trunk, latent_dim = policy_trunk(obs_dim, list(actor_hidden), activation)
            critics = [mlp(obs_dim + act_dim, list(critic_hidden), 1, activation) for _ in range(2)]
        self.build_policy(trunk, latent_dim, policy_head, lattice, log_std_min, log_std_max)
        self.critics = nn.ModuleList(critics)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(initial_alpha)))
        self.target_entropy = -float(act_dim) if target_entropy is None else target_entropy

    def q(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Both critics' values ``[2, B]``."""
        inputs = torch.cat([self.normalize_for_critic(observations), actions], -1)
        return torch.stack([full_precision(critic(inputs).squeeze(-1)) for critic in self.critics])

    # the policy acts with its normalisation's running statistics, whatever Lightning's mode
    def explore(self, observations, env_steps, episode_starts, noise=None):
        set_renorm_training(self.actor, False)
        return super().explore(observations, env_steps, episode_starts, noise)

    def act_greedy(self, observations):
        set_renorm_training(self.actor, False)
        return super().act_greedy(observations)

    def manual_backward(self, loss: torch.Tensor, *args, **kwargs) -> None:
        # Under DDP the normalisation's batch statistics are all-reduced in the backward too, so
        # every rank backpropagates or none: a non-finite loss on one rank skips it on all.
        if self.hparams.batch_renorm and is_distributed():
            finite = torch.isfinite(loss).all().float()
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
            if torch.isfinite(loss).all() and not finite:
                self._nonfinite_losses.append("non-finite on another process")
                return
        super().manual_backward(loss, *args, **kwargs)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        actor_opt, critic_opt, alpha_opt = self.optimizers()
        hp = self.hparams
        alpha = self.log_alpha.exp().detach()
        self.actor.new_update_noise()  # Lattice's noise matrices: one draw for the whole update
        with torch.no_grad():
            set_renorm_training(self.actor, False)
            next_actions, next_log_prob = self.policy_sample(batch.next_observations)

        # one pass over [s, s'] and [a, a']: the normalisation's batch statistics are the mixture's
        set_renorm_training(self.critics, True)
        observations = torch.cat([batch.observations, batch.next_observations])
        q, next_q = self.q(observations, torch.cat([batch.actions, next_actions])).chunk(2, dim=1)
        set_renorm_training(self.critics, False)
        with torch.no_grad():
            target = batch.rewards + batch.discounts * (next_q.min(0).values - alpha * next_log_prob)
        critic_loss = 0.5 * (F.mse_loss(q[0], target) + F.mse_loss(q[1], target))
        self.clip_and_step(critic_opt, critic_loss, hp.max_grad_norm)
        metrics = {"loss/critic": critic_loss.detach(), "q/mean": q.detach().mean(), "sac/alpha": alpha}

        if (self.updates + 1) % hp.policy_delay == 0:
            set_renorm_training(self.actor, True)
            actions, log_prob = self.policy_sample(batch.observations)
            set_renorm_training(self.actor, False)
            # dJ/dlog_alpha = -(log_prob + target_entropy): alpha grows while the entropy is below target
            alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
            self.clip_and_step(alpha_opt, alpha_loss, None)
            actor_loss = (alpha * log_prob - self.q(batch.observations, actions).min(0).values).mean()
            self.clip_and_step(actor_opt, actor_loss, hp.max_grad_norm)
            metrics.update({"loss/actor": actor_loss.detach(), "loss/alpha": alpha_loss.detach(),
                            "sac/entropy": -log_prob.detach().mean()})  # fmt: skip
        return metrics

    def configure_optimizers(self):
        hp = self.hparams
        betas = tuple(hp.adam_betas)
        return [
            torch.optim.Adam(self.actor.parameters(), lr=hp.actor_lr, betas=betas, fused=True),
            torch.optim.Adam(self.critics.parameters(), lr=hp.critic_lr, betas=betas, fused=True),
            torch.optim.Adam([self.log_alpha], lr=hp.alpha_lr, fused=True),
        ]

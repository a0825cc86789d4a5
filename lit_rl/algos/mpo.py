"""Maximum a Posteriori Policy Optimisation (Abdolmaleki et al. 2018), as tuned in deprl
(``TunedMPO``, algorithms.md section 4): Gaussian policy, expected-SARSA critic, E-step with
samples of the target policy, decoupled M-step with per-dimension KL constraints."""

from __future__ import annotations

import copy
import functools
import logging
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lit_rl.acting import DEPConfig
from lit_rl.algos.base import OffPolicyAlgorithm, PolyakTargets, adam
from lit_rl.contract import Batch
from lit_rl.nets import mlp

log = logging.getLogger(__name__)

DUAL_EPSILON = 1e-8  # duals are softplus(raw) + DUAL_EPSILON
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Log-density of ``N(mean, std^2)`` per dimension (broadcasting)."""
    return -0.5 * ((x - mean) / std) ** 2 - std.log() - LOG_SQRT_2PI


def gaussian_kl(mean_p: torch.Tensor, std_p: torch.Tensor, mean_q: torch.Tensor, std_q: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean_p, std_p^2) || N(mean_q, std_q^2))`` per dimension."""
    return (std_q / std_p).log() + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5


def float32(tensor: torch.Tensor) -> torch.autocast:
    """Turn autocast off (``bf16-mixed``) for the small output layers, whose values enter
    log-probabilities and softmaxes over Q differences."""
    return torch.autocast(tensor.device.type, enabled=False)


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 activations to float32; float32 and float64 (golden tests) stay as they are."""
    return tensor.float() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor


@functools.cache
def float32_log(count: int) -> float:
    """deprl's ``log N`` of the E-step, taken in float32: what float32 runs use anyway, and in float64
    the golden test against deprl (tests/test_mpo_deprl.py) agrees to 1e-9 instead of 1e-7."""
    return torch.log(torch.tensor(count, dtype=torch.float32)).item()


class GaussianActor(nn.Module):
    """Observation (normalised, or raw as deprl's) -> MLP -> ``mean = tanh(Linear)``, ``std = softplus(Linear)``
    clamped to ``[min_std, max_std]``. Not squashed: samples may leave [-1, 1]."""

    def __init__(self, observation_dim: int, action_dim: int, hidden_size: int, min_std: float, max_std: float):
        super().__init__()
        self.torso = mlp(observation_dim, [hidden_size], hidden_size)
        self.torso.append(nn.ReLU())
        self.mean_head = nn.Linear(hidden_size, action_dim)
        self.std_head = nn.Linear(hidden_size, action_dim)
        self.min_std, self.max_std = min_std, max_std

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.torso(observations)
        with float32(features):  # log-probs of near-mean samples need more than bf16's 8 bits
            features = at_least_float32(features)
            mean = torch.tanh(self.mean_head(features))
            std = F.softplus(self.std_head(features)).clamp(self.min_std, self.max_std)
        return mean, std


class Critic(nn.Module):
    """``Q(s, a)``: an MLP on ``[s, a]``. The first layer is split into its observation and action
    columns, so with ``N`` sampled actions per state the observation part is computed once per
    state instead of ``N`` times."""

    def __init__(self, observation_dim: int, action_dim: int, hidden_size: int):
        super().__init__()
        self.observation_dim = observation_dim
        self.input = nn.Linear(observation_dim + action_dim, hidden_size)
        self.hidden = nn.Sequential(nn.ReLU(), nn.Linear(hidden_size, hidden_size), nn.ReLU())
        self.output = nn.Linear(hidden_size, 1)

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q values ``[...]`` for ``observations [B, O]`` and ``actions [B, A]`` or ``[N, B, A]``."""
        weight, split = self.input.weight, self.observation_dim
        features = F.linear(observations, weight[:, :split], self.input.bias) + F.linear(actions, weight[:, split:])
        features = self.hidden(features)
        with float32(features):
            return self.output(at_least_float32(features)).squeeze(-1)


class MPO(OffPolicyAlgorithm):
    """MPO with target networks, an expected-SARSA critic and deprl's ``TunedMPO`` defaults.

    The policy acts in [-1, 1] whatever ``action_bounds`` say (as in deprl; use
    ``scaled_actions: true`` so the env side rescales and clips). The duals (temperature,
    per-dimension KL multipliers, action-penalty temperature) are ``softplus(raw) + 1e-8`` of
    raw ``nn.Parameter``s trained by their own Adam optimizer.

    Args:
        hidden_size: width of the two hidden layers of actor and critic (deprl ``mpo_args``).
        lr_actor: Adam learning rate of the actor.
        lr_critic: Adam learning rate of the critic.
        lr_dual: Adam learning rate of the dual variables.
        num_samples: actions sampled from the target policy per state, for the critic target
            and the E-step.
        epsilon: KL bound of the E-step (temperature dual).
        epsilon_mean: per-dimension KL bound of the policy mean (M-step).
        epsilon_std: per-dimension KL bound of the policy std (M-step).
        epsilon_penalty: KL bound of the action-penalisation E-step.
        action_penalization: add softmax weights of ``-||a - clip(a, -1, 1)||`` (own temperature),
            pulling the policy back inside [-1, 1].
        initial_temperature: raw (pre-softplus) initial value of the E-step temperature.
        initial_alpha_mean: raw initial value of the mean KL multipliers.
        initial_alpha_std: raw initial value of the std KL multipliers.
        initial_penalty_temperature: raw initial value of the action-penalty temperature.
        min_dual: raw dual values are clamped from below at this value before each update.
        min_std, max_std: clamp of the policy std.
        tau: Polyak rate of the target networks, applied after every batch.
        max_grad_norm: clip the critic's and the actor's gradient norm to this value (None: no
            clipping; the duals are never clipped).
        exploration_noise: null (the default: the policy samples with a fresh Gaussian draw) or
            ``pink``: the acting policy's standard-normal draw is pink noise, ``a = mean + std *
            pink`` (as pink-noise-rl's ``MPO_CN`` for tonic); the updates' samples stay Gaussian.
        pink_beta, pink_seq_len: the pink noise's exponent and sequence length (``OffPolicyAlgorithm``).
        observation_dim, action_bounds, normalize_observations, normalizer_statistics, dep_mode,
            dep: see ``OffPolicyAlgorithm``. deprl's computation is ``normalize_observations:
            critic`` with ``normalizer_statistics: float32`` (what its configs and ``convert``
            write); the defaults normalise both networks with exact statistics.
    """

    noise_enters = "draw"  # a stochastic policy: pink noise is the draw it samples with

    tonic_agents = {
        "deprl.custom_mpo_torch.TunedMPO": ("model", "replay", "actor_updater", "critic_updater"),
        "tonic.torch.agents.MPO": ("model", "replay", "actor_updater", "critic_updater"),
        "deprl.vendor.tonic.torch.agents.MPO": ("model", "replay", "actor_updater", "critic_updater"),
    }

    def __init__(
        self,
        observation_dim: int | None = None,
        action_bounds: list[list[float]] | None = None,
        hidden_size: int = 256,
        lr_actor: float = 3e-4,
        lr_critic: float = 1e-3,
        lr_dual: float = 1e-2,
        num_samples: int = 20,
        epsilon: float = 0.1,
        epsilon_mean: float = 1e-3,
        epsilon_std: float = 1e-6,
        epsilon_penalty: float = 1e-3,
        action_penalization: bool = True,
        initial_temperature: float = 1.0,
        initial_alpha_mean: float = 1.0,
        initial_alpha_std: float = 10.0,
        initial_penalty_temperature: float = 1.0,
        min_dual: float = -18.0,
        min_std: float = 1e-4,
        max_std: float = 1.0,
        tau: float = 0.005,
        max_grad_norm: float | None = None,
        normalize_observations: bool | Literal["critic"] = True,
        normalizer_statistics: Literal["exact", "float32"] = "exact",
        dep_mode: int = 0,
        dep: DEPConfig | None = None,
        exploration_noise: str | None = None,
        pink_beta: float = 1.0,
        pink_seq_len: int = 1000,
    ):
        super().__init__(
            observation_dim, action_bounds, normalize_observations=normalize_observations,
            normalizer_statistics=normalizer_statistics, dep_mode=dep_mode, dep=dep,
            exploration_noise=exploration_noise, pink_beta=pink_beta, pink_seq_len=pink_seq_len,
        )  # fmt: skip
        if not (torch.all(self.action_low == -1.0) and torch.all(self.action_high == 1.0)):
            low, high = self.action_low.min().item(), self.action_high.max().item()
            log.warning(
                "MPO acts in [-1, 1] but the env's actions lie in [%g, %g] and are clipped there "
                "(scaled_actions: false); scaled_actions: true rescales instead",
                low,
                high,
            )
        obs_dim, act_dim = self.observation_dim, self.action_dim
        self.actor = GaussianActor(obs_dim, act_dim, hidden_size, min_std, max_std)
        self.critic = Critic(obs_dim, act_dim, hidden_size)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.targets = PolyakTargets((self.actor_target, self.actor), (self.critic_target, self.critic))

        self.raw_temperature = nn.Parameter(torch.tensor(initial_temperature))
        self.raw_alpha_mean = nn.Parameter(torch.full((act_dim,), initial_alpha_mean))
        self.raw_alpha_std = nn.Parameter(torch.full((act_dim,), initial_alpha_std))
        self.raw_penalty_temperature = (
            nn.Parameter(torch.tensor(initial_penalty_temperature)) if action_penalization else None
        )

    # ------------------------------------------------------------ networks

    def policy(self, observations: torch.Tensor, target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std ``[..., A]`` of the Gaussian policy."""
        actor = self.actor_target if target else self.actor
        return actor(self.normalize_for_actor(observations))

    def q(self, observations: torch.Tensor, actions: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Q values ``[...]`` for ``observations [B, O]`` and ``actions [B, A]`` or ``[N, B, A]``
        (the observations are broadcast over the leading sample dimension)."""
        critic = self.critic_target if target else self.critic
        return critic(self.normalize_for_critic(observations), actions)

    def sample_target_policy(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``num_samples`` actions ``[N, B, A]`` from the target policy, with its mean and std ``[B, A]``."""
        mean, std = self.policy(observations, target=True)
        noise = torch.randn(self.hparams.num_samples, *mean.shape, device=mean.device)
        return mean + std * noise, mean, std

    def duals(self) -> list[nn.Parameter]:
        raw = [self.raw_temperature, self.raw_alpha_mean, self.raw_alpha_std]
        return raw + ([self.raw_penalty_temperature] if self.raw_penalty_temperature is not None else [])

    @staticmethod
    def dual(raw: torch.Tensor) -> torch.Tensor:
        return F.softplus(raw) + DUAL_EPSILON

    # ------------------------------------------------------------ acting

    def explore(self, observations, env_steps, episode_starts, noise=None):
        mean, std = self.policy(observations)
        return mean + std * (torch.randn_like(mean) if noise is None else noise.to(mean.dtype))

    def act_greedy(self, observations):
        return self.policy(observations)[0]

    # ------------------------------------------------------------ training

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        actor_opt, critic_opt, dual_opt = self.optimizers()
        max_norm = self.hparams.max_grad_norm

        critic_loss, q = self.critic_loss(batch)
        self.clip_and_step(critic_opt, critic_loss, max_norm)

        self.clamp_duals()
        actor_loss, metrics = self.actor_loss(batch.observations)
        self.clip_and_step(actor_opt, actor_loss, max_norm, dual_opt)

        self.targets.update(self.hparams.tau)
        return {"loss/actor": actor_loss.detach(), "loss/critic": critic_loss.detach(), "q/mean": q.mean(), **metrics}

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Expected SARSA: ``R + D * mean_j Q_targ(s', a'_j)``, ``a'_j ~ pi_targ(s')``; MSE."""
        with torch.no_grad():
            next_actions, _, _ = self.sample_target_policy(batch.next_observations)
            next_q = self.q(batch.next_observations, next_actions, target=True).mean(0)
            target = batch.rewards + batch.discounts * next_q
        q = self.q(batch.observations, batch.actions)
        return F.mse_loss(q, target), q.detach()

    @torch.no_grad()
    def clamp_duals(self) -> None:
        for raw in self.duals():
            raw.clamp_(min=self.hparams.min_dual)

    def actor_loss(self, observations: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Policy + KL + dual losses (one backward trains the actor and the duals)."""
        hp = self.hparams
        # E-step: non-parametric weights over actions of the target policy.
        with torch.no_grad():
            actions, target_mean, target_std = self.sample_target_policy(observations)  # [N, B, A], [B, A]
            q = self.q(observations, actions, target=True)  # [N, B]
        temperature = self.dual(self.raw_temperature)
        weights, temperature_loss = self.weights_and_temperature_loss(q, hp.epsilon, temperature)
        metrics = {"mpo/temperature": temperature.detach()}
        if self.raw_penalty_temperature is not None:
            penalty_temperature = self.dual(self.raw_penalty_temperature)
            cost = -torch.linalg.vector_norm(actions - actions.clamp(-1.0, 1.0), dim=-1)  # [N, B]
            penalty_weights, penalty_loss = self.weights_and_temperature_loss(
                cost, hp.epsilon_penalty, penalty_temperature
            )
            weights = weights + penalty_weights
            temperature_loss = temperature_loss + penalty_loss
            metrics["mpo/penalty_temperature"] = penalty_temperature.detach()

        # M-step, decoupled: pi_mu = N(mu_online, sigma_target), pi_sigma = N(mu_target, sigma_online).
        mean, std = self.policy(observations)
        log_prob_mu = gaussian_log_prob(actions, mean, target_std).sum(-1)  # [N, B]
        log_prob_sigma = gaussian_log_prob(actions, target_mean, std).sum(-1)
        policy_loss = -(weights * (log_prob_mu + log_prob_sigma)).sum(0).mean()

        # Per-dimension KL(pi_target || pi_mu) and KL(pi_target || pi_sigma), averaged over the batch.
        kl_mean = gaussian_kl(target_mean, target_std, mean, target_std).mean(0)  # [A]
        kl_std = gaussian_kl(target_mean, target_std, target_mean, std).mean(0)
        alpha_mean, alpha_std = self.dual(self.raw_alpha_mean), self.dual(self.raw_alpha_std)
        kl_mean_loss, alpha_mean_loss = self.kl_and_dual_losses(kl_mean, alpha_mean, hp.epsilon_mean)
        kl_std_loss, alpha_std_loss = self.kl_and_dual_losses(kl_std, alpha_std, hp.epsilon_std)

        loss = policy_loss + kl_mean_loss + kl_std_loss + temperature_loss + alpha_mean_loss + alpha_std_loss
        metrics.update(
            {
                "loss/policy": policy_loss.detach(),
                "loss/dual": (temperature_loss + alpha_mean_loss + alpha_std_loss).detach(),
                "mpo/alpha_mean": alpha_mean.detach().mean(),
                "mpo/alpha_std": alpha_std.detach().mean(),
                "mpo/kl_mean": kl_mean.detach().mean(),
                "mpo/kl_std": kl_std.detach().mean(),
                "mpo/std": std.detach().mean(),
            }
        )
        return loss, metrics

    @staticmethod
    def weights_and_temperature_loss(
        values: torch.Tensor, epsilon: float, temperature: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``w_ij = softmax_j(v_ij / eta)`` (no gradient) and the temperature dual loss
        ``eta * (epsilon + mean_i logsumexp_j(v_ij / eta) - log N)``; ``values [N, B]``."""
        tempered = values / temperature
        weights = torch.softmax(tempered, dim=0).detach()
        loss = temperature * (epsilon + torch.logsumexp(tempered, dim=0).mean() - float32_log(values.shape[0]))
        return weights, loss

    @staticmethod
    def kl_and_dual_losses(kl: torch.Tensor, alpha: torch.Tensor, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``sum_d sg(alpha_d) KL_d`` for the actor and ``sum_d alpha_d (epsilon - sg(KL_d))`` for the duals."""
        return (alpha.detach() * kl).sum(), (alpha * (epsilon - kl.detach())).sum()

    def configure_optimizers(self):
        return [
            adam(self.actor.parameters(), self.hparams.lr_actor),
            adam(self.critic.parameters(), self.hparams.lr_critic),
            adam(self.duals(), self.hparams.lr_dual),  # its own optimizer (not tonic's shared one)
        ]

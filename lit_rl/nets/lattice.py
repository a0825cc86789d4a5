"""Lattice exploration (Chiappa et al. 2023, "Latent Exploration for Reinforcement Learning"): a
policy head whose noise perturbs the policy's latent state (its last hidden layer) as well as the
actions, so the action noise is correlated across actuators through the output layer's weights.

With ``W`` the output layer's weights, the pre-tanh action ``u`` is Gaussian around the mean
action with covariance ``W diag(latent variance) W^T + diag(action variance)``, squashed by tanh;
the log-probability SAC's entropy term needs is that Gaussian's with the tanh correction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lit_rl.nets.mlp import full_precision

LOG_2PI = math.log(2 * math.pi)


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """``log |d tanh(u) / du| = log(1 - tanh(u)^2)``, summed over the last dimension; written as
    ``2 (log 2 - u - softplus(-2u))``, exact for large ``|u|`` too."""
    return (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


@dataclass
class LatticeConfig:
    """Lattice's options (the reference code's names in brackets; defaults are its SAC scripts'
    where they set one, else its ``LatticeActor``'s).

    Args:
        state_dependent: true: the paper's Lattice with gSDE-style noise [``use_sde``]: the latent
            and action perturbations are the latent times random matrices, drawn per env every
            ``resample_every`` steps while acting and once per update for the batch, and the
            variances come from a learned log-std matrix. false: fresh noise at every step, its
            variances from a linear layer of the latent (``LatticeNoiseDistribution``).
        resample_every: acting steps between new noise matrices per env [``sde_sample_freq``]
            (state_dependent only).
        log_std_init: initial log-std: the log-std matrix's value (state_dependent), or the log of
            a factor on the linear layer's std (not state_dependent).
        std_clip: ``[min, max]`` of the std matrix's entries, before the ``1/sqrt(latent_dim)``
            scaling (state_dependent only).
        use_expln: ``exp`` for log-stds below 0, ``log1p(x) + 1`` above, so the std grows
            slowly (state_dependent only; gSDE's ``expln``).
        expln_eps: added to the log-std ``expln`` takes the log1p of [``expln_eps``].
        std_reg: a std added to every action's independent noise, so the policy cannot become
            deterministic (state_dependent only).
        alpha: weight of the latent noise against the action noise; 0 removes the latent noise
            (state_dependent only).
        clip_mean: the mean action (before tanh) is clipped to +-this (state_dependent only; 0: no
            clip).
    """

    state_dependent: bool = True
    resample_every: int = 1
    log_std_init: float = 0.0
    std_clip: tuple[float, float] = (1e-3, 10.0)
    use_expln: bool = True
    expln_eps: float = 1e-6
    std_reg: float = 0.0
    alpha: float = 1.0
    clip_mean: float = 2.0

    def __post_init__(self):
        self.std_clip = tuple(float(x) for x in self.std_clip)
        if len(self.std_clip) != 2 or not 0 < self.std_clip[0] <= self.std_clip[1]:
            raise ValueError(f"lattice.std_clip must be [min, max] with 0 < min <= max, got {list(self.std_clip)}")
        if self.resample_every < 1:
            raise ValueError(f"lattice.resample_every must be at least 1, got {self.resample_every}")
        if self.alpha < 0 or self.std_reg < 0 or self.clip_mean < 0:
            raise ValueError("lattice.alpha, lattice.std_reg and lattice.clip_mean must not be negative")

    @classmethod
    def of(cls, value: LatticeConfig | dict | None) -> LatticeConfig:
        """The config from a config block, a checkpoint's dict or None (the defaults)."""
        if value is None:
            return cls()
        return cls(**value) if isinstance(value, dict) else cls(**asdict(value))


class LatticeHead(nn.Module):
    """The latent ``[B, L]`` -> a squashed Gaussian over ``A`` actions with Lattice's covariance.

    ``mean_layer`` (``W``, ``b``) gives the mean ``clip(W z + b)``. state_dependent: with
    ``S = std(log_std)`` ``[L, L + A]`` split into ``S_lat`` and ``S_act``, the noise matrices are
    ``S * N(0, 1)``; the pre-tanh action is ``clip(W (z + alpha z M_lat) + b) + z M_act`` and its
    covariance ``alpha^2 W diag(z^2 S_lat^2) W^T + diag(z^2 S_act^2 + std_reg^2)``. Otherwise:
    ``s = exp(clamp(std_layer(z))) * exp(log_std_init)`` split into action and latent stds,
    covariance ``W diag(s_lat^2) W^T + diag(s_act^2)``, the pre-tanh action ``mean + chol(cov) e``
    with ``e ~ N(0, I_A)``.
    """

    def __init__(self, latent_dim: int, action_dim: int, config: LatticeConfig, log_std_min: float = -20.0,
                 log_std_max: float = 2.0):  # fmt: skip
        super().__init__()
        self.config, self.latent_dim, self.action_dim = config, latent_dim, action_dim
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.mean_layer = nn.Linear(latent_dim, action_dim)
        if config.state_dependent:
            self.log_std = nn.Parameter(torch.full((latent_dim, latent_dim + action_dim), float(config.log_std_init)))
        else:
            self.std_layer = nn.Linear(latent_dim, action_dim + latent_dim)

    # ------------------------------------------------------------ the distribution

    def mean(self, latent: torch.Tensor) -> torch.Tensor:
        mean = full_precision(self.mean_layer(latent))
        clip = self.config.clip_mean
        return mean.clamp(-clip, clip) if self.config.state_dependent and clip > 0 else mean

    def noise_stds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """state_dependent: the stds ``[L, L]`` and ``[L, A]`` of the latent and action noise
        matrices' entries."""
        cfg = self.config
        log_std = self.log_std.clamp(math.log(cfg.std_clip[0]), math.log(cfg.std_clip[1]))
        log_std = log_std - 0.5 * math.log(self.latent_dim)  # the latent's size does not scale the noise
        if cfg.use_expln:
            positive = log_std > 0
            std = torch.where(positive, torch.log1p(log_std * positive + cfg.expln_eps) + 1.0, log_std.exp())
        else:
            std = log_std.exp()
        return std[:, : self.latent_dim], std[:, self.latent_dim :]

    def covariance(self, latent: torch.Tensor) -> torch.Tensor:
        """``[B, A, A]``: ``W diag(latent variance) W^T + diag(action variance)``."""
        weight, latent = self.mean_layer.weight, full_precision(latent)
        if self.config.state_dependent:
            latent_std, action_std = self.noise_stds()
            latent_var = self.config.alpha**2 * (latent.square() @ latent_std.square())
            action_var = latent.square() @ action_std.square() + self.config.std_reg**2
        else:
            log_std = full_precision(self.std_layer(latent)).clamp(self.log_std_min, self.log_std_max)
            var = (log_std.exp() * math.exp(self.config.log_std_init)).square()
            action_var, latent_var = var[:, : self.action_dim], var[:, self.action_dim :]
        return (weight * latent_var[:, None, :]) @ weight.T + torch.diag_embed(action_var)

    def gaussian_log_prob(self, latent: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``[B]``: the log-density of the pre-tanh actions ``u``."""
        scale_tril = torch.linalg.cholesky(self.covariance(latent))
        whitened = torch.linalg.solve_triangular(scale_tril, (u - self.mean(latent))[..., None], upper=False)
        return _log_density(whitened.squeeze(-1), scale_tril)

    def gaussian_entropy(self, latent: torch.Tensor) -> torch.Tensor:
        """``[B]``: the entropy of the Gaussian before tanh (the squashed one has no closed form)."""
        scale_tril = torch.linalg.cholesky(self.covariance(latent))
        log_det = scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return 0.5 * self.action_dim * (1.0 + LOG_2PI) + log_det

    # ------------------------------------------------------------ sampling

    def draw_noise(self, batch: int, matrices: int = 1, device=None):
        """Standard normal noise for ``sample``: ``[batch, A]``, or (state_dependent) the latent and
        action noise matrices, ``matrices`` of each (1: one for the whole batch, as for an update's
        batch; one per env while acting)."""
        like = {"device": device or self.mean_layer.weight.device, "dtype": self.mean_layer.weight.dtype}
        if not self.config.state_dependent:
            return torch.randn(batch, self.action_dim, **like)
        latent_noise = torch.randn(matrices, self.latent_dim, self.latent_dim, **like)
        return latent_noise, torch.randn(matrices, self.latent_dim, self.action_dim, **like)

    def sample(self, latent: torch.Tensor, noise) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh actions ``u`` ``[B, A]`` (reparameterised) and their Gaussian log-densities
        ``[B]`` for ``noise`` from ``draw_noise``."""
        if not self.config.state_dependent:
            scale_tril = torch.linalg.cholesky(self.covariance(latent))
            u = self.mean(latent) + (scale_tril @ noise[..., None]).squeeze(-1)
            return u, _log_density(noise, scale_tril)
        latent_std, action_std = self.noise_stds()
        latent_noise, action_noise = noise
        z = full_precision(latent)
        perturbed = z + self.config.alpha * _times(z, latent_std * latent_noise)
        mean = full_precision(self.mean_layer(perturbed))
        if self.config.clip_mean > 0:
            mean = mean.clamp(-self.config.clip_mean, self.config.clip_mean)
        u = mean + _times(z, action_std * action_noise)
        return u, self.gaussian_log_prob(latent, u)


def _times(latent: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """``latent @ matrix``: one matrix for the batch, or one per row."""
    if matrices.shape[0] == 1:
        return latent @ matrices[0]
    return (latent[:, None, :] @ matrices).squeeze(1)


def _log_density(whitened: torch.Tensor, scale_tril: torch.Tensor) -> torch.Tensor:
    log_det = scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return -0.5 * whitened.square().sum(-1) - log_det - 0.5 * whitened.shape[-1] * LOG_2PI


class LatticeActor(nn.Module):
    """A trunk (observation -> latent, its last hidden layer) and a ``LatticeHead``: the squashed
    policy SAC and CrossQ sample. Holds the noise: per env while acting (``explore``, with the
    acting step count; rank state, checkpointed by the algorithm) and one draw per update
    (``new_update_noise``, before an update's samples)."""

    def __init__(self, trunk: nn.Module, head: LatticeHead):
        super().__init__()
        self.trunk, self.head = trunk, head
        self.update_noise = None
        self.acting_noise = None
        self.acting_steps = 0

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """The latent."""
        return self.trunk(observations)

    def greedy(self, observations: torch.Tensor) -> torch.Tensor:
        """The deterministic action in [-1, 1]: the squashed mean."""
        return torch.tanh(self.head.mean(self.trunk(observations)))

    def new_update_noise(self) -> None:
        if self.head.config.state_dependent:
            self.update_noise = self.head.draw_noise(1)

    def sample(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions in [-1, 1] and their log-probabilities, for an update's batch."""
        latent = self.trunk(observations)
        if self.head.config.state_dependent:
            if self.update_noise is None:
                self.new_update_noise()
            noise = self.update_noise
        else:
            noise = self.head.draw_noise(latent.shape[0])
        return self._squashed(latent, noise)

    def explore(self, observations: torch.Tensor) -> torch.Tensor:
        """Actions in [-1, 1] for the envs acting: state_dependent, each env's own noise matrices,
        drawn anew every ``resample_every`` calls."""
        latent = self.trunk(observations)
        if not self.head.config.state_dependent:
            return self._squashed(latent, self.head.draw_noise(latent.shape[0]))[0]
        envs = latent.shape[0]
        stale = self.acting_steps % self.head.config.resample_every == 0
        if stale or self.acting_noise is None or self.acting_noise[0].shape[0] != envs:
            self.acting_noise = self.head.draw_noise(envs, envs, device=latent.device)
        elif self.acting_noise[0].device != latent.device:  # restored before the module moved to its device
            self.acting_noise = tuple(noise.to(latent.device) for noise in self.acting_noise)
        self.acting_steps += 1
        return self._squashed(latent, self.acting_noise)[0]

    def _squashed(self, latent: torch.Tensor, noise) -> tuple[torch.Tensor, torch.Tensor]:
        u, log_prob = self.head.sample(latent, noise)
        return torch.tanh(u), log_prob - tanh_log_det(u)

    def acting_state(self) -> dict:
        noise = None if self.acting_noise is None else [n.detach().cpu().clone() for n in self.acting_noise]
        return {"noise": noise, "steps": self.acting_steps}

    def load_acting_state(self, state: dict) -> None:
        device = self.head.mean_layer.weight.device
        self.acting_noise = None if state["noise"] is None else tuple(n.to(device) for n in state["noise"])
        self.acting_steps = state["steps"]

"""Learned dynamics models for Dyna: Baconian's deterministic MLP and an MBPO-style
probabilistic ensemble, both on top of running standard scalers (algorithms.md section 7).

Both predict the change of state ``s' - s`` (scaled) from the scaled state and action, so a
model that outputs zero predicts "nothing moves", and both keep all their state (weights,
scaler statistics, elite indices) in parameters and buffers: it is saved with the module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lit_rl.nets.mlp import ACTIVATIONS, mlp

Reduce = Callable[[torch.Tensor], torch.Tensor]  # in place over DDP processes (lit_rl.training.distributed)


class RunningStandardScaler(nn.Module):
    """Baconian's ``RunningStandardScaler``: ``(x - mean) / (std + eps)`` with statistics merged
    batch by batch, weighted by counts (Chan et al.'s parallel variance). Starts at mean 0,
    std 1 so an unfitted scaler is close to the identity."""

    def __init__(self, dim: int, eps: float = 0.01):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor, reduce: Reduce | None = None) -> None:
        """Merge the rows of ``x``; ``reduce`` sums the batch's count and moments in place over
        processes (DDP), so every rank merges the batch of all ranks."""
        x = x.reshape(-1, x.shape[-1]).double()
        moments = torch.cat([x.new_tensor([x.shape[0]]), x.sum(0), x.square().sum(0)])
        if reduce is not None:
            reduce(moments)
        n, sums, squares = moments[0], moments[1 : 1 + x.shape[1]], moments[1 + x.shape[1] :]
        if n == 0:
            return
        batch_mean = sums / n
        batch_var = (squares / n - batch_mean.square()).clamp_min(0.0)
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean += delta * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.float()) / (self.std + self.eps)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * (self.std + self.eps) + self.mean.float()


@dataclass
class DynamicsConfig:
    """The learned model of ``Dyna`` (``model.init_args.dynamics``).

    Args:
        kind: ``mlp`` (Baconian's deterministic global dynamics model; needs a known reward
            function) or ``ensemble`` (MBPO's probabilistic ensemble, predicts the reward too).
        hidden: hidden layer sizes (Baconian's ``N_UNITS`` per layer).
        activation: hidden activation (Baconian's ``ACT``: relu, tanh, silu, elu, gelu).
        lr: Adam learning rate of the model's own optimizer.
        batch_size: transitions per model gradient batch.
        max_grad_norm: clip the model's gradient norm (None: no clipping).
        init_std: ``mlp`` only: weights drawn from ``N(0, init_std^2)`` (Baconian's
            ``W_NORMAL_STDDEV``); None keeps PyTorch's default init.
        bias_init: ``mlp`` only: initial bias (Baconian's ``B_INIT_VALUE``).
        l1, l2: ``mlp`` only: L1 / L2 penalties on the weights (Baconian's ``L1_NORM``, ``L2_NORM``).
        members: ``ensemble``: networks in the ensemble.
        elites: ``ensemble``: members with the lowest validation loss used for prediction.
        weight_decay: ``ensemble``: Adam L2 weight decay.
        predict_reward: ``ensemble``: also predict the reward (``Dyna``'s ``reward_function: learned``).
        predict_termination: ``ensemble``: a termination logit head (binary cross-entropy).
        holdout_ratio: ``ensemble``: fraction of the real transitions held out for validation
            (at most ``max_holdout``), re-drawn at every training.
        max_holdout: ``ensemble``: cap on the validation set.
        patience: ``ensemble``: stop training after this many epochs in which no member's
            validation loss improved by more than 1%; each member keeps its best weights.
        min_logvar, max_logvar: ``ensemble``: initial soft bounds of the predicted log-variance
            (learned, as in MBPO).
    """

    kind: Literal["mlp", "ensemble"] = "ensemble"
    hidden: list[int] = field(default_factory=lambda: [200, 200, 200, 200])
    activation: str = "silu"
    lr: float = 1e-3
    batch_size: int = 256
    max_grad_norm: float | None = None
    init_std: float | None = None
    bias_init: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    members: int = 7
    elites: int = 5
    weight_decay: float = 5e-5
    predict_reward: bool = True
    predict_termination: bool = False
    holdout_ratio: float = 0.2
    max_holdout: int = 5000
    patience: int = 5
    min_logvar: float = -10.0
    max_logvar: float = 0.5

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown dynamics activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if self.kind == "ensemble" and not 1 <= self.elites <= self.members:
            raise ValueError(f"dynamics.elites must be in 1..members ({self.members}), got {self.elites}")


class Transitions(NamedTuple):
    """Flat one-step transitions ``[N, ...]``."""

    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    rewards: torch.Tensor
    terminations: torch.Tensor  # bool

    def __len__(self) -> int:
        return self.observations.shape[0]

    def index(self, idx: torch.Tensor) -> Transitions:
        return Transitions(*(t[idx] for t in self))


class Prediction(NamedTuple):
    next_observations: torch.Tensor
    rewards: torch.Tensor | None  # None: the model does not predict rewards
    terminations: torch.Tensor | None  # bool; None: the model does not predict terminations


StepFn = Callable[[torch.Tensor], None]  # backward + optimizer step on a loss


class DynamicsModel(nn.Module):
    """Shared by both models: the three scalers (state, action, and the target: delta-state,
    with the reward appended when it is predicted) and the interface ``Dyna`` uses."""

    predicts_reward = False
    predicts_termination = False

    def __init__(self, observation_dim: int, action_dim: int, config: DynamicsConfig, target_dim: int):
        super().__init__()
        self.config = config
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.state_scaler = RunningStandardScaler(observation_dim)
        self.action_scaler = RunningStandardScaler(action_dim)
        self.target_scaler = RunningStandardScaler(target_dim)

    def targets(self, data: Transitions) -> torch.Tensor:
        delta = data.next_observations - data.observations
        return torch.cat([delta, data.rewards[..., None]], -1) if self.predicts_reward else delta

    def update_scalers(self, data: Transitions, reduce: Reduce | None = None) -> None:
        """Fold new real transitions into the running statistics (``reduce``: see ``RunningStandardScaler``)."""
        self.state_scaler.update(data.observations, reduce)
        self.action_scaler.update(data.actions, reduce)
        self.target_scaler.update(self.targets(data), reduce)

    def inputs(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.state_scaler(observations), self.action_scaler(actions)], -1)

    def _prediction(self, observations: torch.Tensor, scaled_target: torch.Tensor, logit: torch.Tensor | None):
        target = self.target_scaler.inverse(scaled_target)
        next_obs = observations + target[..., : self.observation_dim]
        rewards = target[..., self.observation_dim] if self.predicts_reward else None
        terminations = logit > 0 if logit is not None else None
        return Prediction(next_obs, rewards, terminations)

    def fit(
        self, data: Transitions, step: StepFn, iterations: int, generator=None, reduce: Reduce | None = None
    ) -> dict[str, float]:
        raise NotImplementedError

    def predict(self, observations: torch.Tensor, actions: torch.Tensor) -> Prediction:
        """The mean prediction (evaluation and model tests)."""
        raise NotImplementedError

    def sample(self, observations: torch.Tensor, actions: torch.Tensor) -> Prediction:
        """A sampled prediction (model rollouts)."""
        raise NotImplementedError

    def scaled_error(self, data: Transitions) -> torch.Tensor:
        """Per-transition mean squared error of the mean prediction in scaled target units
        (dimensionless: 1 is the error of always predicting the mean change)."""
        prediction = self.predict(data.observations, data.actions)
        predicted = prediction.next_observations - data.observations
        if self.predicts_reward:
            predicted = torch.cat([predicted, prediction.rewards[:, None]], -1)
        return (self.target_scaler(predicted) - self.target_scaler(self.targets(data))).square().mean(-1)


class MLPDynamics(DynamicsModel):
    """Baconian's ``ContinuousMLPGlobalDynamicsModel``: a deterministic MLP from
    ``[scaled s, scaled a]`` to the scaled ``s' - s``, MSE loss plus L1/L2 weight penalties."""

    def __init__(self, observation_dim: int, action_dim: int, config: DynamicsConfig):
        super().__init__(observation_dim, action_dim, config, observation_dim)
        self.net = mlp(observation_dim + action_dim, list(config.hidden), observation_dim, config.activation)
        for layer in self.net:
            if isinstance(layer, nn.Linear) and config.init_std is not None:
                nn.init.normal_(layer.weight, 0.0, config.init_std)
                nn.init.constant_(layer.bias, config.bias_init)

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.net(self.inputs(observations, actions))

    def loss(self, data: Transitions) -> torch.Tensor:
        loss = F.mse_loss(self(data.observations, data.actions), self.target_scaler(self.targets(data)))
        weights = [layer.weight for layer in self.net if isinstance(layer, nn.Linear)]
        if self.config.l1:
            loss = loss + self.config.l1 * sum(w.abs().sum() for w in weights)
        if self.config.l2:
            loss = loss + self.config.l2 * sum(w.square().sum() for w in weights)
        return loss

    def fit(
        self, data: Transitions, step: StepFn, iterations: int, generator=None, reduce: Reduce | None = None
    ) -> dict[str, float]:
        losses = []
        for _ in range(iterations):
            idx = torch.randint(len(data), (self.config.batch_size,), generator=generator)
            loss = self.loss(data.index(idx))
            step(loss)
            losses.append(loss.detach())
        return {"dynamics/train_loss": torch.stack(losses).mean().item()} if losses else {}

    @torch.no_grad()
    def predict(self, observations, actions) -> Prediction:
        return self._prediction(observations, self(observations, actions), None)

    sample = predict


class EnsembleLinear(nn.Module):
    """``members`` independent linear layers applied in one batched matmul to ``[M, B, in]``."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default init, per member
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleDynamics(DynamicsModel):
    """MBPO's probabilistic ensemble: each member outputs a Gaussian (mean, bounded
    log-variance) over the scaled ``[s' - s, r]``, trained with the Gaussian negative
    log-likelihood on its own bootstrap batches; a validation split decides early stopping,
    which weights each member keeps, and the elites."""

    def __init__(self, observation_dim: int, action_dim: int, config: DynamicsConfig):
        target_dim = observation_dim + int(config.predict_reward)
        super().__init__(observation_dim, action_dim, config, target_dim)
        self.predicts_reward = config.predict_reward
        self.predicts_termination = config.predict_termination
        m, sizes = config.members, [observation_dim + action_dim, *config.hidden]
        self.layers = nn.ModuleList(EnsembleLinear(m, a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.activation = ACTIVATIONS[config.activation]()
        self.target_dim = target_dim
        self.head = EnsembleLinear(m, sizes[-1], 2 * target_dim + int(config.predict_termination))
        self.max_logvar = nn.Parameter(torch.full((target_dim,), config.max_logvar))
        self.min_logvar = nn.Parameter(torch.full((target_dim,), config.min_logvar))
        self.register_buffer("elite_indices", torch.arange(config.elites))
        self.register_buffer("validation_loss", torch.full((m,), float("inf")))

    def forward(self, observations: torch.Tensor, actions: torch.Tensor):
        """``observations`` ``[B, O]`` (every member sees the same batch) or ``[M, B, O]``.
        Returns mean and log-variance ``[M, B, T]`` and the termination logit ``[M, B]`` or None."""
        x = self.inputs(observations, actions)
        if x.dim() == 2:
            x = x.expand(self.config.members, *x.shape)
        for layer in self.layers:
            x = self.activation(layer(x))
        out = self.head(x)
        t = self.target_dim
        mean, logvar = out[..., :t], out[..., t : 2 * t]
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        logit = out[..., 2 * t] if self.predicts_termination else None
        return mean, logvar, logit

    def nll(self, data: Transitions) -> torch.Tensor:
        """Gaussian NLL per member and sample, ``data`` shaped ``[M, B, ...]`` (constant dropped)."""
        mean, logvar, logit = self(data.observations, data.actions)
        target = self.target_scaler(self.targets(data))
        nll = ((mean - target).square() * torch.exp(-logvar) + logvar).mean(-1)
        if logit is not None:
            nll = nll + F.binary_cross_entropy_with_logits(logit, data.terminations.float(), reduction="none")
        return nll

    @torch.no_grad()
    def validation_losses(self, data: Transitions) -> torch.Tensor:
        """Each member's mean squared error of its mean in scaled target units ``[M]``."""
        mean, _, _ = self(data.observations, data.actions)
        return (mean - self.target_scaler(self.targets(data))).square().mean((1, 2))

    def fit(
        self, data: Transitions, step: StepFn, iterations: int, generator=None, reduce: Reduce | None = None
    ) -> dict[str, float]:
        """Train for at most ``iterations`` batches per member, one validation check per epoch
        (a pass over the training split), stop after ``patience`` epochs without a 1% gain."""
        cfg = self.config
        n = len(data)
        holdout = min(int(n * cfg.holdout_ratio), cfg.max_holdout) if n >= 10 else 0
        perm = torch.randperm(n, generator=generator)
        train, valid = data.index(perm[holdout:]), data.index(perm[:holdout])
        check = valid if holdout else train
        epoch = max(1, math.ceil(len(train) / cfg.batch_size))
        params = list(self.parameters())
        per_member = {id(p) for layer in (*self.layers, self.head) for p in layer.parameters()}

        def validation_losses() -> torch.Tensor:  # averaged over processes: the same stops and elites on all
            losses = self.validation_losses(check)
            return reduce(losses) if reduce is not None else losses

        best_loss = validation_losses()
        best = [p.detach().clone() for p in params]
        stale, done, losses = 0, 0, []
        while done < iterations and stale < cfg.patience:
            for _ in range(min(epoch, iterations - done)):
                idx = torch.randint(len(train), (cfg.members, cfg.batch_size), generator=generator)
                nll = self.nll(train.index(idx)).mean()
                loss = nll + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
                step(loss)
                losses.append(nll.detach())
                done += 1
            val = validation_losses()
            improved = (best_loss - val) / best_loss.abs().clamp_min(1e-12) > 0.01
            stale = 0 if improved.any() else stale + 1
            best_loss = torch.where(improved, val, best_loss)
            with torch.no_grad():
                for kept, p in zip(best, params, strict=True):
                    if id(p) in per_member:  # keep each member's best weights
                        mask = improved.view(-1, *([1] * (p.dim() - 1)))
                        kept.copy_(torch.where(mask, p, kept))
                    elif improved.any():  # shared log-variance bounds follow any improvement
                        kept.copy_(p)
        with torch.no_grad():
            for kept, p in zip(best, params, strict=True):
                p.copy_(kept)
        self.validation_loss.copy_(validation_losses())
        self.elite_indices.copy_(torch.argsort(self.validation_loss)[: cfg.elites])
        return {
            "dynamics/train_loss": torch.stack(losses).mean().item() if losses else float("nan"),
            "dynamics/validation_loss": self.validation_loss[self.elite_indices].mean().item(),
            "dynamics/train_batches": float(done),
        }

    @torch.no_grad()
    def predict(self, observations, actions) -> Prediction:
        mean, _, logit = self(observations, actions)
        elites = self.elite_indices
        logit = logit[elites].mean(0) if logit is not None else None
        return self._prediction(observations, mean[elites].mean(0), logit)

    @torch.no_grad()
    def sample(self, observations, actions) -> Prediction:
        """Each state goes through one random elite, with that member's Gaussian noise."""
        mean, logvar, logit = self(observations, actions)
        rows = torch.arange(observations.shape[0], device=observations.device)
        member = self.elite_indices[torch.randint(len(self.elite_indices), rows.shape, device=rows.device)]
        mean, std = mean[member, rows], (0.5 * logvar[member, rows]).exp()
        logit = logit[member, rows] if logit is not None else None
        return self._prediction(observations, mean + std * torch.randn_like(std), logit)


def make_dynamics(observation_dim: int, action_dim: int, config: DynamicsConfig) -> DynamicsModel:
    if config.kind == "mlp":
        return MLPDynamics(observation_dim, action_dim, config)
    return EnsembleDynamics(observation_dim, action_dim, config)

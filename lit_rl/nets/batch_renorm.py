"""Batch renormalisation (Ioffe 2017) as CrossQ uses it (Bhatt et al. 2024), and MLPs with it
before every linear layer."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from lit_rl.nets.mlp import ACTIVATIONS


class BatchRenorm1d(nn.Module):
    """Normalises each feature of a ``[B, F]`` batch; after ``warmup_steps`` training batches with
    the running statistics corrected towards the batch's.

    In training mode (``module.train()``): the batch mean ``m`` and unbiased variance ``v`` are
    folded into the running ones (``ra += momentum * (batch - ra)``, ``steps`` counts the batches)
    and the batch is normalised with ``m`` and ``v`` for the first ``warmup_steps + 1`` batches
    (plain batch normalisation); after that with ``m - d sqrt(v) / r`` and ``v / r^2``, where
    ``r = clip(sqrt(v + eps) / sqrt(ra_var + eps), 1/3, 3)`` and
    ``d = clip((m - ra_mean) / sqrt(ra_var + eps), -5, 5)`` (both without gradient): the batch
    statistics pulled to the running ones, which is what the layer then computes at evaluation.
    In evaluation mode the running statistics normalise and nothing is updated. Then
    ``scale * x + bias``. The statistics are computed in the buffers' precision (float32 under bf16 autocast).
    This is the formulation of the CrossQ authors' code and sb3-contrib's ``BatchRenorm1d``
    (their defaults: momentum 0.01, eps 1e-3, warm-up 100,000 batches, r_max 3, d_max 5).

    Under DDP the batch statistics (and their gradients) are those of all ranks' batches together,
    as with one process and the whole batch, so the running statistics stay the same on every
    rank; every rank must then run the training-mode forward and its backward together.
    """

    def __init__(self, features: int, momentum: float = 0.01, eps: float = 1e-3, warmup_steps: int = 100_000,
                 r_max: float = 3.0, d_max: float = 5.0):  # fmt: skip
        super().__init__()
        self.momentum, self.eps, self.warmup_steps, self.r_max, self.d_max = momentum, eps, warmup_steps, r_max, d_max
        self.scale = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("ra_mean", torch.zeros(features))
        self.register_buffer("ra_var", torch.ones(features))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"{self.scale.shape[0]}, momentum={self.momentum}, eps={self.eps}, warmup_steps={self.warmup_steps}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.ra_mean.dtype)  # float32 under autocast, float64 in a float64 module
        if not self.training:
            return self.scale * ((x - self.ra_mean) / (self.ra_var + self.eps).sqrt()) + self.bias
        mean, var = _batch_statistics(x)
        if self.steps > self.warmup_steps:
            ra_std = (self.ra_var + self.eps).sqrt()
            r = ((var + self.eps).sqrt() / ra_std).detach().clamp(1 / self.r_max, self.r_max)
            d = ((mean - self.ra_mean) / ra_std).detach().clamp(-self.d_max, self.d_max)
            norm_mean, norm_var = mean - d * var.sqrt() / r, var / r.square()
        else:
            norm_mean, norm_var = mean, var
        with torch.no_grad():
            self.ra_mean.lerp_(mean.detach(), self.momentum)
            self.ra_var.lerp_(var.detach(), self.momentum)
            self.steps += 1
        return self.scale * ((x - norm_mean) / (norm_var + self.eps).sqrt()) + self.bias


def _batch_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased variance over the batch, over all ranks' batches under DDP (two passes,
    through autograd's all-reduce, so the gradients are those of the joint batch)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return x.mean(0), x.var(0)
    from torch.distributed.nn.functional import all_reduce

    count = torch.tensor([float(x.shape[0])], device=x.device)
    dist.all_reduce(count)
    mean = all_reduce(x.sum(0)) / count
    var = all_reduce((x - mean).square().sum(0)) / (count - 1)
    return mean, var


def renorm_mlp(in_dim: int, hidden_sizes: list[int], out_dim: int | None, activation: str = "relu",
               **renorm) -> nn.Sequential:  # fmt: skip
    """``[BatchRenorm1d, Linear, activation]`` per hidden layer, then ``[BatchRenorm1d, Linear]`` to
    ``out_dim``, or with ``out_dim`` None only the ``BatchRenorm1d`` (a policy's trunk, its output
    the latent its heads read). sb3-contrib's CrossQ layout; ``renorm``: ``BatchRenorm1d``'s options."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [BatchRenorm1d(in_dim, **renorm), nn.Linear(in_dim, size), ACTIVATIONS[activation]()]
        in_dim = size
    layers.append(BatchRenorm1d(in_dim, **renorm))
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def set_renorm_training(module: nn.Module, training: bool) -> None:
    """Training (batch statistics, running statistics updated) or evaluation mode for every
    ``BatchRenorm1d`` in ``module``, whatever the module's own mode."""
    for layer in module.modules():
        if isinstance(layer, BatchRenorm1d):
            layer.training = training

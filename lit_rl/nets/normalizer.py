"""Running observation mean/std (tonic's MeanStd)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ObservationNormalizer(nn.Module):
    """``(x - mean) / std`` with statistics of every observation acted on.

    Observations are recorded as they are acted on and folded into the statistics only when
    ``update()`` is called (after each training phase), so the networks see fixed statistics
    during a phase. Starts at mean 0, std 1; std is floored at ``min_std``. All state lives in
    buffers, so it is saved with the module and moves with it between devices.
    """

    def __init__(self, dim: int, min_std: float = 1e-2):
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean_sq", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("new_sum", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("new_sum_sq", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("new_count", torch.zeros((), dtype=torch.float64))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return (observations - self.mean) / self.std

    @torch.no_grad()
    def record(self, observations: torch.Tensor) -> None:
        obs = observations.reshape(-1, observations.shape[-1]).double()
        self.new_sum += obs.sum(0)
        self.new_sum_sq += (obs * obs).sum(0)
        self.new_count += obs.shape[0]

    PENDING = ("new_sum", "new_sum_sq", "new_count")

    def pending_state_dict(self) -> dict[str, torch.Tensor]:
        """What was recorded since the last ``update``: under DDP each rank's own."""
        return {name: getattr(self, name).clone() for name in self.PENDING}

    @torch.no_grad()
    def update(self, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Fold the recorded observations in; ``reduce`` sums the recorded sums in place over
        processes (DDP), so every rank ends with the statistics of all ranks' observations."""
        if reduce is not None:
            reduce(self.new_sum)
            reduce(self.new_sum_sq)
            reduce(self.new_count)
        if self.new_count == 0:
            return
        total = self.count + self.new_count
        w_old, w_new = self.count / total, self.new_count / total
        mean = w_old * self.mean.double() + w_new * self.new_sum / self.new_count
        self.mean_sq.copy_(w_old * self.mean_sq + w_new * self.new_sum_sq / self.new_count)
        var = (self.mean_sq - mean * mean).clamp_min(0.0)
        self.mean.copy_(mean.float())
        self.std.copy_(var.sqrt().clamp_min(self.min_std).float())
        self.count.copy_(total)
        self.new_sum.zero_()
        self.new_sum_sq.zero_()
        self.new_count.zero_()

"""Running observation mean/std (tonic's MeanStd)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import nn

STATISTICS = ("exact", "float32")


class ObservationNormalizer(nn.Module):
    """``(x - mean) / std`` with statistics of every observation acted on.

    Observations are recorded as they are acted on and folded into the statistics only when
    ``update()`` is called (after each training phase), so the networks see fixed statistics
    during a phase. Starts at mean 0, std 1; std is floored at ``min_std``. All state lives in
    buffers, so it is saved with the module and moves with it between devices.

    ``statistics``: ``exact`` sums and updates in float64. ``float32`` is deprl's (tonic's
    ``MeanStd``): each observation added into float32 sums one at a time, the update done in
    float32; the buffers hold the same float32 values, bit for bit (a sequential float32
    cumulative sum adds in deprl's order). On myoLegWalk's low-variance dimensions deprl's std
    drifts from the exact one (27% after 2e5 observations, 346% after 1e6).
    """

    def __init__(self, dim: int, min_std: float = 1e-2, statistics: Literal["exact", "float32"] = "exact"):
        super().__init__()
        if statistics not in STATISTICS:
            raise ValueError(f"normalizer_statistics must be one of {STATISTICS}, got {statistics!r}")
        self.min_std = min_std
        self.statistics = statistics
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        # float64 buffers; in float32 mode they hold float32 values (same checkpoint layout)
        self.register_buffer("mean_sq", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("new_sum", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("new_sum_sq", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("new_count", torch.zeros((), dtype=torch.float64))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return (observations - self.mean) / self.std

    @torch.no_grad()
    def record(self, observations: torch.Tensor) -> None:
        if self.statistics == "float32":
            self._record_float32(observations)
            return
        obs = observations.reshape(-1, observations.shape[-1]).double()
        self.new_sum += obs.sum(0)
        self.new_sum_sq += (obs * obs).sum(0)
        self.new_count += obs.shape[0]

    def _record_float32(self, observations: torch.Tensor) -> None:
        # numpy's accumulate adds row after row in float32 (torch's CPU cumsum accumulates in double)
        obs = observations.detach().reshape(-1, observations.shape[-1]).cpu().numpy().astype(np.float32)
        for buffer, rows in ((self.new_sum, obs), (self.new_sum_sq, np.square(obs))):
            start = buffer.cpu().numpy().astype(np.float32)[None]
            total = np.add.accumulate(np.concatenate([start, rows]), axis=0, dtype=np.float32)[-1]
            buffer.copy_(torch.from_numpy(total.astype(np.float64)))
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
        if self.statistics == "float32":
            mean, mean_sq, std = self._update_float32()
        else:
            total = self.count + self.new_count
            w_old, w_new = self.count / total, self.new_count / total
            mean = w_old * self.mean.double() + w_new * self.new_sum / self.new_count
            mean_sq = w_old * self.mean_sq + w_new * self.new_sum_sq / self.new_count
            std = (mean_sq - mean * mean).clamp_min(0.0).sqrt().clamp_min(self.min_std)
        self.mean.copy_(mean)
        self.mean_sq.copy_(mean_sq)
        self.std.copy_(std)
        self.count += self.new_count
        self.new_sum.zero_()
        self.new_sum_sq.zero_()
        self.new_count.zero_()

    def _update_float32(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tonic's ``MeanStd.update``, operation for operation: float32 arrays, Python scalars for
        the counts and weights (cast to float32 where they meet an array, as numpy does)."""
        count, new_count = int(self.count), int(self.new_count)
        f32 = np.float32
        new_mean = self.new_sum.cpu().numpy().astype(f32) / f32(new_count)
        new_mean_sq = self.new_sum_sq.cpu().numpy().astype(f32) / f32(new_count)
        w_old, w_new = count / (count + new_count), new_count / (count + new_count)
        mean = f32(w_old) * self.mean.cpu().numpy().astype(f32) + f32(w_new) * new_mean
        mean_sq = f32(w_old) * self.mean_sq.cpu().numpy().astype(f32) + f32(w_new) * new_mean_sq
        std = np.maximum(np.sqrt(np.maximum(mean_sq - np.square(mean), f32(0))), f32(self.min_std))
        return tuple(torch.from_numpy(x) for x in (mean, mean_sq, std))  # copied into the buffers' dtypes

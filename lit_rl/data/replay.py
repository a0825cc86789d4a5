"""Ring replay with per-environment columns and n-step returns, and its config with the training
schedule's counts (deprl's ``Buffer`` arguments; algorithms.md section 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from lit_rl.contract import Batch
from lit_rl.data.energy import AdaptiveEnergyConfig
from lit_rl.files import write_atomically

PHASE_CLOCKS = ("after_step", "before_step")


@dataclass
class ReplayConfig:
    """deprl's ``Buffer`` arguments. Every count is in environment transitions summed over envs
    (and over processes under DDP: each of N ranks holds ``size / N`` transitions and samples
    ``batch_size / N`` of each batch, see ``lit_rl.distributed``).

    Args:
        size: transitions the ring holds (split evenly over the env columns).
        return_steps: n of the n-step return.
        discount: gamma.
        batch_size: transitions per gradient batch.
        steps_before_batches: no training before this many transitions were collected.
        steps_between_batches: after that, a training phase every time this many new
            transitions have arrived.
        batch_iterations: gradient batches per training phase.
        adaptive_energy: relabel sampled rewards with an adaptive muscle-energy cost
            (deprl's ``AdaptiveEnergyBuffer``, see ``AdaptiveEnergyConfig``); off when omitted.
        phase_clock: which count the two phase settings above are compared with.
            ``after_step``: the transitions collected, so the first phase trains on exactly
            ``steps_before_batches``. ``before_step``: deprl's, the count before the latest
            vector step (its trainer passes it to ``Buffer.ready``), so every phase fires one
            vector step later and also trains on that step (200,200 transitions at deprl's first
            phase with 200 envs) and the normaliser folds that step in too.
    """

    size: int = 1_000_000
    return_steps: int = 1
    discount: float = 0.99
    batch_size: int = 100
    steps_before_batches: int = 10_000
    steps_between_batches: int = 50
    batch_iterations: int = 50
    adaptive_energy: AdaptiveEnergyConfig | None = None
    phase_clock: Literal["after_step", "before_step"] = "after_step"

    def __post_init__(self):
        if self.phase_clock not in PHASE_CLOCKS:
            raise ValueError(f"replay.phase_clock must be one of {PHASE_CLOCKS}, got {self.phase_clock!r}")
        for key in ("size", "return_steps", "batch_size", "steps_between_batches", "batch_iterations"):
            if getattr(self, key) < 1:
                raise ValueError(f"replay.{key} must be >= 1, got {getattr(self, key)}")
        if self.steps_before_batches < 0:
            raise ValueError(f"replay.steps_before_batches must be >= 0, got {self.steps_before_batches}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"replay.discount must be in [0, 1], got {self.discount}")


class ReplayBuffer:
    """Storage shaped ``[rows, E, ...]`` with ``rows = size // E``, one ring index for all columns.

    ``discount = gamma * (1 - terminated)``: a time-limit truncation ends the episode (reset) but
    still bootstraps from the true final observation. With ``return_steps = n``, each new
    transition is folded into the previous ``n - 1`` rows of its column until a reset row is met,
    so every row holds a consistent k-step target (k <= n) at any time.
    """

    _FIELDS = ("observations", "actions", "next_observations", "rewards", "discounts", "resets", "terminations")

    def __init__(
        self,
        size: int,
        num_envs: int,
        observation_dim: int,
        action_dim: int,
        return_steps: int = 1,
        discount: float = 0.99,
    ):
        if return_steps < 1:
            raise ValueError(f"return_steps must be >= 1, got {return_steps}")
        self.rows = size // num_envs
        if self.rows < return_steps:
            raise ValueError(f"replay size {size} is too small for {num_envs} envs")
        self.num_envs = num_envs
        self.return_steps = return_steps
        self.gamma = discount
        r, e = self.rows, num_envs
        self.observations = torch.empty(r, e, observation_dim)
        self.actions = torch.empty(r, e, action_dim)
        self.next_observations = torch.empty(r, e, observation_dim)
        self.rewards = torch.empty(r, e)
        self.discounts = torch.empty(r, e)
        self.resets = torch.empty(r, e, dtype=torch.bool)
        self.terminations = torch.empty(r, e, dtype=torch.bool)
        self.index = 0  # next row to write
        self.filled = 0  # rows holding data

    def __len__(self) -> int:
        return self.filled * self.num_envs

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self._FIELDS)

    @staticmethod
    def transition_bytes(observation_dim: int, action_dim: int) -> int:
        """Bytes one transition takes in the fields above (and in a saved file)."""
        return 4 * (2 * observation_dim + action_dim + 2) + 2  # float32 fields, then the two bool ones

    def store(
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        next_observations: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
    ) -> None:
        """Write one row (one transition per env column) and update the n-step targets behind it."""
        i = self.index
        discounts = self.gamma * (~terminated).float()
        self.observations[i] = observations
        self.actions[i] = actions
        self.next_observations[i] = next_observations
        self.rewards[i] = rewards
        self.discounts[i] = discounts
        self.resets[i] = terminated | truncated
        self.terminations[i] = terminated
        alive = torch.ones(self.num_envs, dtype=torch.bool)
        for k in range(1, min(self.return_steps, self.filled + 1)):
            row = (i - k) % self.rows
            alive &= ~self.resets[row]
            if not alive.any():
                break
            self.rewards[row] += torch.where(alive, self.discounts[row] * rewards, 0.0)
            self.discounts[row] = torch.where(alive, self.discounts[row] * discounts, self.discounts[row])
            self.next_observations[row][alive] = next_observations[alive]
        self.index = (i + 1) % self.rows
        self.filled = min(self.filled + 1, self.rows)

    def mark_episode_boundary(self) -> None:
        """Treat the newest row as a truncation, e.g. when the envs restart after a resume,
        so n-step returns never chain into a different episode."""
        if self.filled:
            self.resets[(self.index - 1) % self.rows] = True

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        if not self.filled:
            raise RuntimeError("cannot sample from an empty replay buffer")
        flat = torch.randint(self.filled * self.num_envs, (batch_size,), generator=generator)
        rows, cols = flat // self.num_envs, flat % self.num_envs
        return Batch(
            observations=self.observations[rows, cols],
            actions=self.actions[rows, cols],
            rewards=self.rewards[rows, cols],
            next_observations=self.next_observations[rows, cols],
            discounts=self.discounts[rows, cols],
        )

    # Saving: a JSON header line, then the raw bytes of the filled rows of each field,
    # written straight from the storage (no copy of the buffer is made).

    def _header(self) -> dict:
        return {
            "rows": self.rows,
            "num_envs": self.num_envs,
            "return_steps": self.return_steps,
            "discount": self.gamma,
            "index": self.index,
            "filled": self.filled,
            "shapes": {name: list(getattr(self, name).shape[2:]) for name in self._FIELDS},
        }

    def save(self, path: str | Path, token: str = "") -> int:
        """Write to ``path`` atomically (``lit_rl.files``); ``token`` is stored in the header so
        that a checkpoint can tell its own replay file from another. Returns the size."""
        path = Path(path)

        def write(f) -> None:
            f.write(json.dumps({**self._header(), "token": token}).encode() + b"\n")
            for name in self._FIELDS if self.filled else ():
                f.write(memoryview(getattr(self, name)[: self.filled].numpy()).cast("B"))

        write_atomically(path, write)
        return path.stat().st_size

    def load(self, path: str | Path, token: str | None = None) -> None:
        """Read a file written by ``save``; with ``token``, it must be the one saved with it."""
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            if token is not None and header.get("token") != token:
                raise ValueError(f"replay file {path} is not the one its checkpoint was saved with (token mismatch)")
            mine = self._header()
            for key in ("rows", "num_envs", "shapes"):
                if header[key] != mine[key]:
                    raise ValueError(
                        f"replay file {path} does not fit this run: {key} is {header[key]} there, "
                        f"{mine[key]} here (replay size, env count or spaces changed)"
                    )
            filled = header["filled"]
            for name in self._FIELDS if filled else ():
                target = memoryview(getattr(self, name)[:filled].numpy()).cast("B")
                if f.readinto(target) != len(target):
                    raise ValueError(f"replay file {path} is truncated")
        self.index, self.filled = header["index"], filled

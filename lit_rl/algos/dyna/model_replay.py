"""A flat ring of one-step transitions, written in blocks: Dyna's model replay.

The real replay (``ReplayBuffer``) stores one row per vector env step and folds n-step
returns; model rollouts arrive as thousands of unrelated one-step transitions at once, so they
get this simpler store. Dyna checkpoints it with each rank's own state (``Dyna.rank_state_dict``).
"""

from __future__ import annotations

import torch

from lit_rl.contract import Batch


class TransitionRing:
    def __init__(self, size: int, observation_dim: int, action_dim: int):
        if size < 1:
            raise ValueError(f"model replay size must be >= 1, got {size}")
        self.size = size
        self.observations = torch.empty(size, observation_dim)
        self.actions = torch.empty(size, action_dim)
        self.next_observations = torch.empty(size, observation_dim)
        self.rewards = torch.empty(size)
        self.discounts = torch.empty(size)
        self.index = 0  # next slot to write
        self.filled = 0

    def __len__(self) -> int:
        return self.filled

    def add(self, observations, actions, next_observations, rewards, discounts) -> None:
        """Write ``N`` transitions; the oldest are overwritten once the ring is full."""
        n = observations.shape[0]
        if n > self.size:  # only the newest fit
            observations, actions, next_observations = (
                observations[-self.size :],
                actions[-self.size :],
                next_observations[-self.size :],
            )
            rewards, discounts, n = rewards[-self.size :], discounts[-self.size :], self.size
        slots = (self.index + torch.arange(n)) % self.size
        self.observations[slots] = observations.cpu()
        self.actions[slots] = actions.cpu()
        self.next_observations[slots] = next_observations.cpu()
        self.rewards[slots] = rewards.cpu()
        self.discounts[slots] = discounts.cpu()
        self.index = (self.index + n) % self.size
        self.filled = min(self.filled + n, self.size)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        if not self.filled:
            raise RuntimeError("cannot sample from an empty model replay")
        idx = torch.randint(self.filled, (batch_size,), generator=generator)
        return Batch(
            observations=self.observations[idx],
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            next_observations=self.next_observations[idx],
            discounts=self.discounts[idx],
        )

    FIELDS = ("observations", "actions", "next_observations", "rewards", "discounts")

    def state_dict(self) -> dict:
        """The filled slots (tensors) and the ring position."""
        return {
            "index": self.index,
            "filled": self.filled,
            **{name: getattr(self, name)[: self.filled].clone() for name in self.FIELDS},
        }

    def load_state_dict(self, state: dict) -> None:
        filled = int(state["filled"])
        if filled > self.size:
            raise ValueError(f"model replay state holds {filled} transitions, this model replay only {self.size}")
        for name in self.FIELDS:
            getattr(self, name)[:filled] = state[name]
        self.index, self.filled = int(state["index"]), filled

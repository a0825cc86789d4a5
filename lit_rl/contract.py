"""What the algorithm side (``lit_rl.algos``) and the data side (``lit_rl.data``) exchange.

Both import this module and neither imports the other: the DataModule acts through an
``Agent`` (the LightningModule), the algorithm reads experience through a ``DataView`` (the
DataModule's ``view``), and the items that travel between them are defined here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import torch


@dataclass
class Batch:
    """A replay sample. ``rewards`` and ``discounts`` are the n-step return and the product of
    per-step discounts (0 after a termination); ``next_observations`` is the state to bootstrap from."""

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor
    discounts: torch.Tensor
    last_in_phase: bool = False  # the last batch of a training phase

    def to(self, device: torch.device) -> Batch:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[key] = value.to(device, non_blocking=True)
        return Batch(**moved)

    @staticmethod
    def cat(first: Batch, second: Batch) -> Batch:
        """The transitions of both batches in one (e.g. real and model data)."""
        names = ("observations", "actions", "rewards", "next_observations", "discounts")
        return Batch(**{name: torch.cat([getattr(first, name), getattr(second, name)]) for name in names})


class PhaseEnd:
    """Yielded after each training phase and at each epoch end; ``training_step`` skips it.

    Lightning fetches one item ahead. Because the item after a phase's last batch is this
    marker, the envs are stepped only after the whole phase was trained on, and a checkpoint
    taken while the marker is pending sees a consistent state (the DataModule's ``at_cut``)."""

    def __repr__(self) -> str:
        return "PhaseEnd()"


PHASE_END = PhaseEnd()


@dataclass
class RolloutContext:
    """What the data side knows when it asks for actions."""

    env_steps: int  # transitions collected so far, summed over envs
    episodes: int  # training episodes finished so far
    episode_starts: torch.Tensor  # [E] bool: the env's episode just began
    muscle_states: torch.Tensor | None  # [E, m] when the module needs them (DEP)
    steps_before_batches: int  # the replay's warm-up: DEP modes 1-3 explore until then


@dataclass
class EpisodeResult:
    """One test episode, the item of the validation and test dataloaders."""

    episode_return: float
    episode_length: int


@dataclass
class ReplayRows:
    """Consecutive replay rows in time order, ``[T, E, ...]`` (one column per env): the 1-step
    fields as stored, and whether an episode ended at each row (``resets``)."""

    observations: torch.Tensor  # [T, E, O]
    actions: torch.Tensor  # [T, E, A]
    next_observations: torch.Tensor  # [T, E, O]
    rewards: torch.Tensor  # [T, E]
    terminations: torch.Tensor  # [T, E] bool
    resets: torch.Tensor  # [T, E] bool: terminated or truncated

    def __len__(self) -> int:
        return self.observations.shape[0]


class Agent(Protocol):
    """What the DataModule calls on the LightningModule (``lit_rl.algos.OffPolicyAlgorithm``)."""

    device: torch.device
    needs_muscle_states: bool  # the envs must report muscle states (DEP)
    trains: bool  # transitions are stored and trained on (False: DEP mode 4)
    evaluates_with_muscle_states: bool  # test episodes act on muscle states too (DEP mode 4)
    evaluation_every: int | None  # env steps between evaluations it asks for (None: epoch_steps decides)

    def act(self, observations: torch.Tensor, context: RolloutContext) -> torch.Tensor:
        """Training actions ``[E, A]``; what is returned is executed and stored."""
        ...

    def act_for_evaluation(self, observations: torch.Tensor, muscle_states: torch.Tensor | None) -> torch.Tensor:
        """Test-episode actions ``[1, A]``."""
        ...


class DataView(Protocol):
    """What an algorithm may read of the data side (``self.data`` in an ``OffPolicyAlgorithm``).
    Counts are global (summed over envs and DDP ranks); sampling and transitions are this rank's."""

    env_steps: int  # transitions collected so far
    done: bool  # total_steps reached
    batch_size: int  # this rank's share of replay.batch_size
    discount: float  # replay.discount (gamma)
    return_steps: int  # replay.return_steps (n of the n-step targets)
    transitions_per_row: int  # global env steps per replay row
    observation_low: torch.Tensor  # the observation space's bounds, flat [O] (may be infinite)
    observation_high: torch.Tensor

    relabels_rewards: bool  # sampled rewards are relabelled (replay.adaptive_energy)

    def sample(self, batch_size: int) -> Batch:
        """A uniform replay sample of this rank (with the replay's reward relabelling, if any)."""
        ...

    def recent(self, since: int | None = None) -> ReplayRows:
        """The replay rows written after env step ``since`` (None: all filled rows), oldest first."""
        ...

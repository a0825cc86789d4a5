"""What the algorithm side (``lit_rl.algos``) and the data side (``lit_rl.data``) exchange.

Both import this module and neither imports the other: the DataModule's acting layer acts
through a ``Policy`` (the LightningModule), the algorithm reads experience through a ``DataView`` (the
DataModule's ``view``), and the items that travel between them are defined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Protocol

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


class Trigger:
    """Due at the first check with ``steps >= start`` (and at least ``every`` steps after
    ``last``, when ``last`` is given), then whenever ``every`` more steps have passed since it
    last fired (Baconian's ``PeriodicalEventSchedule``). ``every=None`` never fires."""

    def __init__(self, every: int | None, start: int = 0, last: int | None = None):
        if every is not None and every < 1:
            raise ValueError(f"a trigger period must be >= 1 env steps (or null: never), got {every}")
        self.every, self.start = every, start
        self.last = last
        self.fired = 0

    def due(self, steps: int) -> bool:
        """Whether it fires at ``steps``; if so, it counts as fired there."""
        if self.every is None or steps < self.start:
            return False
        if self.last is not None and steps - self.last < self.every:
            return False
        self.last = steps
        self.fired += 1
        return True


class PhaseEnd:
    """Yielded after each training phase and at each epoch end; ``training_step`` skips it.

    Lightning fetches one item ahead. Because the item after a phase's last batch is this
    marker, the envs are stepped only after the whole phase was trained on, and a checkpoint
    taken while the marker is pending sees a consistent state (the DataModule's ``at_cut``)."""

    def __repr__(self) -> str:
        return "PhaseEnd()"


PHASE_END = PhaseEnd()


@dataclass
class EpisodeResult:
    """One test episode, the item of the validation and test dataloaders."""

    episode_return: float
    episode_length: int
    reward_terms: dict[str, float] = field(default_factory=dict)  # summed over the episode (MyoSuite's rwd_dict)


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


class Policy(Protocol):
    """What the data side's acting layer (``lit_rl.acting.Actor``) uses of the LightningModule
    (``lit_rl.algos.OffPolicyAlgorithm``): the policy, its action bounds and observation
    normaliser, and how the algorithm asked to explore (``acting``, a ``lit_rl.acting.ActingConfig``)."""

    device: torch.device
    acting: Any  # lit_rl.acting.ActingConfig: DEP mode and block, warm-up, noise, epsilon schedule
    action_low: torch.Tensor  # [A]
    action_high: torch.Tensor  # [A]
    normalizer: Any  # lit_rl.nets.ObservationNormalizer or None: records what is acted on
    evaluation_every: int | None  # env steps between evaluations it asks for (None: epoch_steps decides)

    def explore(self, observations: torch.Tensor, env_steps: int, episode_starts: torch.Tensor) -> torch.Tensor:
        """The policy's training actions ``[E, A]`` (before noise). A stochastic policy that
        declares ``noise_enters = "draw"`` also takes ``noise=`` (``[E, A]``, pink noise): the
        standard-normal draw to sample with; it is passed only when that noise is configured."""
        ...

    def act_greedy(self, observations: torch.Tensor) -> torch.Tensor:
        """Deterministic actions (evaluation, export)."""
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

    def pop_train_metrics(self) -> dict[str, float]:
        """The collection's metrics since the last call, over all ranks (collective under DDP)."""
        ...

    def recent(self, since: int | None = None) -> ReplayRows:
        """The replay rows written after env step ``since`` (None: all filled rows), oldest first."""
        ...

"""Ring replay with per-environment columns and n-step returns, each observation stored once, and
its config with the training schedule's counts (deprl's ``Buffer`` arguments; algorithms.md
section 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from lit_rl.contract import Batch, ReplayRows
from lit_rl.data.energy import AdaptiveEnergyConfig
from lit_rl.training.files import write_atomically
from lit_rl.training.resume import replay_settings, replay_settings_problem

PHASE_CLOCKS = ("after_step", "before_step")


@dataclass
class ReplayConfig:
    """deprl's ``Buffer`` arguments. Every count is in environment transitions summed over envs
    (and over processes under DDP: each of N ranks holds ``size / N`` transitions and samples
    ``batch_size / N`` of each batch, see ``lit_rl.training.distributed``).

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
    so every row holds a consistent k-step target (k <= n, its ``horizons``) at any time.

    Each observation is stored once. The state row ``t`` bootstraps from is the next observation
    of the row its return ends on, ``last = t + k - 1``, and that is:

    - for the newest row, ``newest_next``: one extra row where its successor waits;
    - for a row whose next observation is not the observation of the row after it (an episode
      ended there, or the envs restarted), the true one kept in the side table ``finals``
      (key ``row * E + env``, flagged in ``has_final``), dropped when the row is overwritten;
    - for any other row, the observation of the row after it.

    So samples and ``recent`` rows are bit for bit those of a buffer that keeps a next
    observation per row. Files of such a buffer (format 1) still load (``load``).
    """

    # the per-row fields
    _FIELDS = ("observations", "actions", "rewards", "discounts", "resets", "terminations", "horizons", "has_final")
    FORMAT = 2  # of saved files; format 1 stored ``next_observations`` per row, in these fields
    _FORMAT_1_FIELDS = (
        "observations", "actions", "next_observations", "rewards", "discounts", "resets", "terminations",
    )  # fmt: skip

    def __init__(
        self,
        size: int,
        num_envs: int,
        observation_dim: int,
        action_dim: int,
        return_steps: int = 1,
        discount: float = 0.99,
    ):
        if not 1 <= return_steps <= 255:
            raise ValueError(f"return_steps must be in [1, 255], got {return_steps}")
        self.rows = size // num_envs
        if self.rows < return_steps:
            raise ValueError(f"replay size {size} is too small for {num_envs} envs")
        self.num_envs = num_envs
        self.return_steps = return_steps
        self.gamma = discount
        r, e = self.rows, num_envs
        storage = torch.empty(r + 1, e, observation_dim)  # one row more: the newest row's successor
        self.observations, self.newest_next = storage[:r], storage[r]
        self._observations_and_next = storage
        self.actions = torch.empty(r, e, action_dim)
        self.rewards = torch.empty(r, e)
        self.discounts = torch.empty(r, e)
        self.resets = torch.empty(r, e, dtype=torch.bool)
        self.terminations = torch.empty(r, e, dtype=torch.bool)
        self.horizons = torch.empty(r, e, dtype=torch.uint8)  # k of each row's k-step return
        self.has_final = torch.zeros(r, e, dtype=torch.bool)  # the row's next observation is in ``finals``
        self.finals: dict[int, torch.Tensor] = {}  # row * E + env -> its next observation
        self.index = 0  # next row to write
        self.filled = 0  # rows holding data

    def __len__(self) -> int:
        return self.filled * self.num_envs

    @property
    def nbytes(self) -> int:
        """Bytes of the storage: the per-row fields, the extra row and the side table."""
        fields = sum(getattr(self, name).nbytes for name in self._FIELDS) + self.newest_next.nbytes
        return fields + sum(final.nbytes for final in self.finals.values())

    @staticmethod
    def transition_bytes(observation_dim: int, action_dim: int) -> int:
        """Bytes one transition takes in the per-row fields (and in a saved file): float32
        observation, action, reward and discount, three bool flags and the uint8 horizon. Each
        episode end adds its final observation (``4 * observation_dim`` bytes, and an 8-byte key
        in a file), the buffer one row of observations."""
        return 4 * (observation_dim + action_dim + 2) + 4

    # ----------------------------------------------------------------- writing

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
        self._forget(i)  # the row is overwritten
        self.observations[i] = observations
        previous = (i - 1) % self.rows
        if self.filled and previous != i:  # the previous newest row's successor is settled now
            self._keep_finals(previous, self.observations[i])
        self.newest_next[:] = next_observations
        discounts = self.gamma * (~terminated).float()
        self.actions[i] = actions
        self.rewards[i] = rewards
        self.discounts[i] = discounts
        self.resets[i] = terminated | truncated
        self.terminations[i] = terminated
        self.horizons[i] = 1
        self._extend_returns(i, rewards, discounts)
        self.index = (i + 1) % self.rows
        self.filled = min(self.filled + 1, self.rows)

    def _extend_returns(self, i: int, rewards: torch.Tensor, discounts: torch.Tensor) -> None:
        """Fold the transitions of row ``i`` into the returns of the ``n - 1`` rows before it
        that have not met a reset yet."""
        alive = torch.ones(self.num_envs, dtype=torch.bool)
        for k in range(1, min(self.return_steps, self.filled + 1)):
            row = (i - k) % self.rows
            alive &= ~self.resets[row]
            if not alive.any():
                break
            self.rewards[row] += torch.where(alive, self.discounts[row] * rewards, 0.0)
            self.discounts[row] = torch.where(alive, self.discounts[row] * discounts, self.discounts[row])
            self.horizons[row] += alive.to(torch.uint8)

    def _forget(self, row: int) -> None:
        """Drop the side-table entries of ``row``."""
        if not self.finals:
            return
        for env in self.has_final[row].nonzero().flatten().tolist():
            del self.finals[row * self.num_envs + env]
        self.has_final[row] = False

    def _keep_finals(self, row: int, successors: torch.Tensor) -> None:
        """``row`` was the newest: where its next observation (the extra row) is not, bit for bit,
        ``successors`` (the observations of the row after it), keep it in the side table."""
        moved = (_bits(self.newest_next) != _bits(successors)).any(-1)
        if not moved.any():  # the common case: the episodes go on
            return
        for env in moved.nonzero().flatten().tolist():
            self.finals[row * self.num_envs + env] = self.newest_next[env].clone()
        self.has_final[row] |= moved

    def mark_episode_boundary(self) -> None:
        """Treat the newest row as a truncation, e.g. when the envs restart after a resume,
        so n-step returns never chain into a different episode."""
        if self.filled:
            self.resets[(self.index - 1) % self.rows] = True

    # ----------------------------------------------------------------- reading

    def _next_observations(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The states the returns of rows ``rows`` (in env columns ``cols``, the same shape)
        bootstrap from; rows must hold data."""
        last = rows  # the row each return ends on (one-step returns: the row itself)
        if self.return_steps > 1:
            last = (rows + self.horizons[rows, cols] - 1) % self.rows
        after = ((last + 1) % self.rows).masked_fill_(last == (self.index - 1) % self.rows, self.rows)
        out = self._observations_and_next[after, cols]  # the newest row's: ``newest_next``
        if not self.finals:
            return out
        own = self.has_final[last, cols]
        if own.any():
            keys = (last * self.num_envs + cols)[own].tolist()
            out[own] = torch.stack([self.finals[key] for key in keys])
        return out

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        if not self.filled:
            raise RuntimeError("cannot sample from an empty replay buffer")
        flat = torch.randint(self.filled * self.num_envs, (batch_size,), generator=generator)
        rows, cols = flat // self.num_envs, flat % self.num_envs
        return Batch(
            observations=self.observations[rows, cols],
            actions=self.actions[rows, cols],
            rewards=self.rewards[rows, cols],
            next_observations=self._next_observations(rows, cols),
            discounts=self.discounts[rows, cols],
        )

    def recent(self, count: int) -> ReplayRows:
        """The newest ``count`` rows in time order (copies); their rewards and next observations
        are the n-step ones, as sampled."""
        if not 0 <= count <= self.filled:
            raise ValueError(f"the replay holds {self.filled} rows, {count} asked for")
        rows = (self.index - count + torch.arange(count)) % self.rows
        cols = torch.arange(self.num_envs)
        return ReplayRows(
            self.observations[rows],
            self.actions[rows],
            self._next_observations(rows[:, None].expand(-1, self.num_envs), cols.expand(count, -1)),
            self.rewards[rows],
            self.terminations[rows],
            self.resets[rows],
        )

    # Saving: a JSON header line, then the raw bytes of the filled rows of each field, the extra
    # row of observations, and the side table (keys, then observations), written straight from
    # the storage (no copy of the buffer is made).

    def _header(self) -> dict:
        return {
            "format": self.FORMAT,
            "rows": self.rows,
            "num_envs": self.num_envs,
            "return_steps": self.return_steps,
            "discount": self.gamma,
            "index": self.index,
            "filled": self.filled,
            "shapes": {name: list(getattr(self, name).shape[2:]) for name in self._FIELDS},
            "finals": len(self.finals),
        }

    def save(self, path: str | Path, token: str = "") -> int:
        """Write to ``path`` atomically (``lit_rl.training.files``); ``token`` is stored in the header so
        that a checkpoint can tell its own replay file from another. Returns the size."""
        path = Path(path)

        def write(f) -> None:
            f.write(json.dumps({**self._header(), "token": token}).encode() + b"\n")
            if not self.filled:
                return
            for name in self._FIELDS:
                f.write(_raw(getattr(self, name)[: self.filled]))
            f.write(_raw(self.newest_next))
            f.write(_raw(torch.tensor(list(self.finals), dtype=torch.int64)))
            for final in self.finals.values():
                f.write(_raw(final))

        write_atomically(path, write)
        return path.stat().st_size

    def load(self, path: str | Path, token: str | None = None) -> None:
        """Read a file written by ``save``, or by the buffer that stored next observations per
        row (format 1, converted); with ``token``, it must be the one saved with it."""
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            if token is not None and header.get("token") != token:
                raise ValueError(f"replay file {path} is not the one its checkpoint was saved with (token mismatch)")
            version = header.get("format", 1)
            if version not in (1, self.FORMAT):
                raise ValueError(f"replay file {path} has format {version}, this version reads 1 and {self.FORMAT}")
            problem = replay_settings_problem(path, replay_settings(header), replay_settings(self._header()))
            if problem is not None:
                raise ValueError(problem)
            self.finals.clear()
            self.has_final.zero_()
            self.index, self.filled = header["index"], header["filled"]
            if not self.filled:
                return
            if version == 1:
                self._read_format_1(f, path, header["return_steps"])
                return
            for name in self._FIELDS:
                _read(f, getattr(self, name)[: self.filled], path)
            _read(f, self.newest_next, path)
            keys = _read(f, torch.empty(header["finals"], dtype=torch.int64), path)
            for key in keys.tolist():
                self.finals[key] = _read(f, torch.empty(self.observations.shape[2:]), path)

    def _read_format_1(self, f, path, return_steps: int) -> None:
        """The rest of a format-1 file (after its header): its fields, then from its next
        observations the extra row and the side table that give the same next observations."""
        filled, rows, e = self.filled, self.rows, self.num_envs
        offsets, offset = {}, f.tell()
        for name in self._FORMAT_1_FIELDS:
            offsets[name] = offset
            like = self.observations if name == "next_observations" else getattr(self, name)
            offset += filled * like[0].nbytes
        for name in self._FORMAT_1_FIELDS:
            if name != "next_observations":
                f.seek(offsets[name])
                _read(f, getattr(self, name)[:filled], path)
        self.horizons[:filled] = self._horizons_from_resets(return_steps)
        row_bytes = self.observations[0].nbytes
        newest = (self.index - 1) % rows
        f.seek(offsets["next_observations"] + newest * row_bytes)
        _read(f, self.newest_next, path)  # the newest row's return is its own transition
        f.seek(offsets["next_observations"])
        cols = torch.arange(e)
        chunk = max(1, 2**14 // e)
        for first in range(0, filled, chunk):
            count = min(chunk, filled - first)
            stored = _read(f, torch.empty(count, *self.observations.shape[1:]), path)
            t = torch.arange(first, first + count)[:, None].expand(-1, e)
            derived = self._next_observations(t, cols.expand(count, -1))
            last = (t + self.horizons[t, cols] - 1) % rows
            for row, env in ((_bits(derived) != _bits(stored)).any(-1)).nonzero().tolist():
                self.finals[int(last[row, env]) * e + env] = stored[row, env].clone()
                self.has_final[last[row, env], env] = True

    def _horizons_from_resets(self, return_steps: int) -> torch.Tensor:
        """The k of each filled row's return as ``_extend_returns`` builds it with ``return_steps``:
        up to and including the first reset row, and no further than the newest row."""
        filled, steps = self.filled, torch.arange(return_steps)
        t = torch.arange(filled)
        to_newest = (self.index - 1 - t) % self.rows
        beyond = (steps >= to_newest[:, None])[..., None]  # the newest row ends every return
        ends = torch.logical_or(self.resets[(t[:, None] + steps) % self.rows], beyond)  # [T, n, E]
        ends[:, -1] = True
        return (ends.to(torch.uint8).argmax(1) + 1).to(torch.uint8)


def _bits(x: torch.Tensor) -> torch.Tensor:
    """float32 values as their bit patterns, to compare them exactly (NaN, -0.0)."""
    return x.view(torch.int32)


def _raw(x: torch.Tensor) -> memoryview:
    return memoryview(x.numpy()).cast("B")


def _read(f, x: torch.Tensor, path) -> torch.Tensor:
    """Fill ``x`` from ``f``."""
    target = _raw(x)
    if f.readinto(target) != len(target):
        raise ValueError(f"replay file {path} is truncated")
    return x

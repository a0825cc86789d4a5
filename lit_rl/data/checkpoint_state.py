"""What the DataModule puts into a checkpoint, and the replay file that belongs to one.

The schedule's counters are the same on every rank; the counts, RNG states, envs' states
(physics and wrappers mid-episode, muscle-state ranges), adaptive energy state and replay file
are each rank's own (under DDP gathered by ``add_rank_states``). The
replay is not inside the ``.ckpt``: ``EnvStepCheckpoint`` writes it next to ``last.ckpt`` and
the checkpoint records the file's name, size, replay position and a random token stored in the
file; it is loaded only if all of them match. The keys are those of every earlier checkpoint.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from lit_rl.data.collection import Collector, Progress
from lit_rl.data.energy import AdaptiveEnergy
from lit_rl.data.replay import ReplayBuffer
from lit_rl.data.schedule import Schedule
from lit_rl.distributed import add_rank_states, rank_state

log = logging.getLogger(__name__)


class ReplayFiles:
    """The replay file of the checkpoint being written (``recording``) and the checks that a
    checkpoint's replay file is its own (``load``)."""

    def __init__(self):
        self.record: dict = {}  # set while a checkpoint that owns a replay file is written

    @staticmethod
    def save(replay: ReplayBuffer, path: Path) -> dict:
        """Write ``replay`` to ``path``; returns what the checkpoint records of it."""
        token = secrets.token_hex(8)
        size = replay.save(path, token)
        return {
            "replay_file": path.name,
            "replay_position": [replay.index, replay.filled],
            "replay_token": token,
            "replay_bytes": size,
        }

    @contextmanager
    def recording(self, record: dict) -> Iterator[None]:
        """A checkpoint saved inside the block names the replay file of ``record``."""
        self.record = record
        try:
            yield
        finally:
            self.record = {}

    @staticmethod
    def load(replay: ReplayBuffer, state: dict, ckpt_path: str) -> bool:
        """Fill ``replay`` from the file this rank's checkpoint ``state`` names; False if it names none."""
        replay_file = state.get("replay_file")
        if replay_file is None:
            return False
        path = Path(ckpt_path).parent / replay_file
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {ckpt_path} needs its replay file {path}, which is missing")
        size = path.stat().st_size
        if "replay_bytes" in state and size != state["replay_bytes"]:
            raise ValueError(
                f"replay file {path} has {size} bytes, checkpoint {ckpt_path} recorded "
                f"{state['replay_bytes']}: it is truncated or from another save"
            )
        replay.load(path, token=state.get("replay_token"))
        if (replay.index, replay.filled) != tuple(state["replay_position"]):
            raise ValueError(
                f"replay file {path} was written at a different step than checkpoint {ckpt_path}; "
                "they do not belong together"
            )
        return True


def data_state(
    progress: Progress,
    schedule: Schedule,
    collector: Collector | None,
    energy: AdaptiveEnergy | None,
    replay_files: ReplayFiles,
) -> dict:
    """The DataModule's checkpoint state (collective under DDP)."""
    shared = {"env_steps": progress.env_steps, **schedule.state_dict()}
    local = {
        "episodes": progress.episodes,
        "faults": progress.faults,
        "torch_rng": torch.get_rng_state(),
        "replay_file": None,
        **replay_files.record,
    }
    if torch.cuda.is_available():
        local["cuda_rng"] = torch.cuda.get_rng_state_all()
    if collector is not None:
        local["env_rng"] = collector.envs.rng_states()  # for a resume that cannot restore the envs
        if collector.started:
            local["env_states"] = collector.envs.env_states()
            local["collection"] = collector.state_dict()
    if energy is not None:
        local["adaptive_energy"] = energy.state_dict()
    return add_rank_states(shared, local)


def load_data_state(
    state: dict,
    progress: Progress,
    schedule: Schedule,
    collector: Collector | None,
    energy: AdaptiveEnergy | None,
    ckpt_path: str,
    rank: int,
    world_size: int,
) -> None:
    """Restore ``data_state``: the counts and RNGs in every stage; when fitting (``collector``),
    this rank's env RNGs and replay file too."""
    progress.env_steps = state["env_steps"]
    schedule.load_state_dict(state)
    if collector is not None:  # fit: this rank's own part
        state = rank_state(state, rank, world_size, f"checkpoint {ckpt_path}")
    progress.episodes = state["episodes"]
    progress.faults = state.get("faults", 0)
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if energy is not None and "adaptive_energy" in state:
        energy.load_state_dict(state["adaptive_energy"])
    if collector is None:  # validate/test: no training envs, no replay
        return
    exact = "env_states" in state and collector.envs.load_env_states(state["env_states"])
    if not exact and "env_rng" in state:
        collector.envs.set_rng_states(state["env_rng"])
    collector.restart(state["collection"] if exact else None)
    if not ReplayFiles.load(collector.replay, state, ckpt_path):
        log.warning(
            "This checkpoint holds no replay buffer (full_save was off or it is a periodic "
            "checkpoint): training resumes with an empty buffer."
        )
        schedule.pending_batches = 0

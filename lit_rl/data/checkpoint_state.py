"""What the DataModule puts into a checkpoint, and the replay file that belongs to one.

The schedule's counters are the same on every rank; the counts, RNG states, acting state (DEP,
action noise), envs' states (physics and wrappers mid-episode, muscle-state ranges), adaptive
energy state and replay file are each rank's own (under DDP gathered by ``add_rank_states``;
``lit_rl.training.resume`` hands each rank its own part back). The
replay is not inside the ``.ckpt``: ``EnvStepCheckpoint`` writes it next to ``last.ckpt`` and
the checkpoint records the file's name, size, replay position and a random token stored in the
file; it is loaded only if all of them match. The keys are those of every earlier checkpoint.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import torch

from lit_rl.acting import Actor
from lit_rl.data.collection import Collector, Progress
from lit_rl.data.energy import AdaptiveEnergy
from lit_rl.data.evaluation import Evaluator
from lit_rl.data.replay import ReplayBuffer
from lit_rl.data.schedule import Schedule
from lit_rl.training.distributed import add_rank_states
from lit_rl.training.resume import replay_file_problem

log = logging.getLogger(__name__)


class ReplayFiles:
    """Writing a replay file with the record a checkpoint keeps of it (``save``; the checkpoint
    callback puts the record into the checkpoint it writes next) and the checks that a
    checkpoint's replay file is its own (``load``)."""

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

    @staticmethod
    def load(replay: ReplayBuffer, state: dict, ckpt_path: str) -> bool:
        """Fill ``replay`` from the file this rank's checkpoint ``state`` names; False if it names none."""
        if state.get("replay_file") is None:
            return False
        path = Path(ckpt_path).parent / state["replay_file"]
        problem = replay_file_problem(state, path.parent)
        if problem is not None:  # missing, or not as long as recorded (truncated, another save's)
            raise (ValueError if path.is_file() else FileNotFoundError)(f"checkpoint {ckpt_path} {problem}")
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
    actor: Actor | None,
    energy: AdaptiveEnergy | None,
    evaluator: Evaluator | None,
) -> dict:
    """The DataModule's checkpoint state (collective under DDP)."""
    shared = {"env_steps": progress.env_steps, **schedule.state_dict()}
    local = {
        "episodes": progress.episodes,
        "faults": progress.faults,
        "torch_rng": torch.get_rng_state(),
        "replay_file": None,  # EnvStepCheckpoint records the file of a last.ckpt that has one
    }
    if torch.cuda.is_available():
        local["cuda_rng"] = torch.cuda.get_rng_state_all()
    if collector is not None:
        local["env_rng"] = collector.envs.rng_states()  # for a resume that cannot restore the envs
        if collector.started:
            local["env_states"] = collector.envs.env_states()
            local["collection"] = collector.state_dict()
        local["acting"] = actor.state_dict()
    if energy is not None:
        local["adaptive_energy"] = energy.state_dict()
    if evaluator is not None and (test_env := evaluator.state_dict()):
        local["test_env"] = test_env
    return add_rank_states(shared, local)


def load_data_state(
    state: dict,
    progress: Progress,
    schedule: Schedule,
    collector: Collector | None,
    actor: Actor | None,
    energy: AdaptiveEnergy | None,
    evaluator: Evaluator | None,
    ckpt_path: str,
) -> None:
    """Restore ``data_state`` (when fitting, this rank's part: ``lit_rl.training.resume``): the counts and
    RNGs in every stage; when fitting (``collector``), the acting state, env states and RNGs and
    the replay file too."""
    progress.env_steps = state["env_steps"]
    schedule.load_state_dict(state)
    progress.episodes = state["episodes"]
    progress.faults = state.get("faults", 0)
    if collector is not None:  # before the RNG: rebuilding DEP's switch draws its coin's seed from it
        actor.load_state_dict(state.get("acting", {}))
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if energy is not None and "adaptive_energy" in state:
        energy.load_state_dict(state["adaptive_energy"])
    if collector is None:  # validate/test: no training envs, no replay; test episodes start afresh
        return
    if evaluator is not None:
        evaluator.load_state_dict(state.get("test_env", {}))
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

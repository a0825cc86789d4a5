"""Reading a checkpoint back: the one place where older layouts are brought up to date and where
a DDP rank's own parts are picked out, before Lightning hands the sections to the module
(``hyper_parameters``, ``state_dict``, ``learner``, ``updates``, ...) and to the DataModule
(its state, with the acting state, env states, collection state and replay file record).

Sections written with ``lit_rl.training.distributed.add_rank_states`` hold rank 0's local part merged in
and, under DDP, every rank's under ``ranks``; when fitting, each rank keeps the shared keys and its
own local ones (``for_rank``). Validate and test read rank 0's, as a single-process checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from lit_rl.training.distributed import RANKS_KEY, rank_state
from lit_rl.training.files import write_atomically

DATA_SECTION = "RolloutDataModule"  # the DataModule's state (Lightning names it by the class)
# Before the acting layer, the module saved the acting state with its own per-rank state under
# "acting"; these of its keys are the acting layer's now (the DataModule's "acting"), the rest
# (normaliser sums, Dyna's model replay and model env) the module's "learner".
ACTING_KEYS = ("exploration_noise", "dep")


def upgrade(checkpoint: dict) -> dict:
    """``checkpoint`` in today's layout (a no-op for one written by this version)."""
    if "acting" not in checkpoint:
        return checkpoint
    old = checkpoint.pop("acting")
    parts = old.get(RANKS_KEY, [old])

    def split(part: dict, acting: bool) -> dict:
        return {k: v for k, v in part.items() if (k in ACTING_KEYS) == acting and k != RANKS_KEY}

    learner = split(old, acting=False)
    if RANKS_KEY in old:
        learner[RANKS_KEY] = [split(part, acting=False) for part in parts]
    checkpoint["learner"] = learner
    data = checkpoint.get(DATA_SECTION)
    if data is not None:
        data["acting"] = split(old, acting=True)
        if RANKS_KEY in data:
            for local, part in zip(data[RANKS_KEY], parts, strict=True):
                local["acting"] = split(part, acting=True)
    return checkpoint


def for_rank(checkpoint: dict, rank: int, world_size: int, what: str) -> dict:
    """``checkpoint`` with every per-rank section reduced to the shared keys and ``rank``'s own."""
    for key, section in list(checkpoint.items()):
        if isinstance(section, dict) and RANKS_KEY in section:
            shared = {k: v for k, v in section.items() if k != RANKS_KEY}
            checkpoint[key] = {**shared, **rank_state(section, rank, world_size, what)}
    return checkpoint


def replay_file_problem(record: dict, checkpoint_dir: Path, here: dict | None = None) -> str | None:
    """What is wrong with the replay file a rank's record names: None when it is there and as
    long as recorded (or the record names none) and, given the run's ``here``
    (``RolloutDataModule.replay_settings``), written with the same settings
    (``replay_settings_problem``); checked before a resume starts and again when the file is read
    (which also checks its token and position)."""
    name = record.get("replay_file")
    if name is None:
        return None
    path = Path(checkpoint_dir) / name
    size = path.stat().st_size if path.is_file() else None
    if size is None:
        return f"needs its replay file {path}, which is missing"
    if size != record.get("replay_bytes", size):
        return f"needs its replay file {path}, which has {size} bytes instead of {record['replay_bytes']}"
    if here is not None:
        with open(path, "rb") as f:
            try:
                header = json.loads(f.readline())
            except ValueError:
                return f"needs its replay file {path}, which has no readable header"
        return replay_settings_problem(path, replay_settings(header), here)
    return None


# What a replay file was written with that a resumed run must have too, in the order they are
# checked (the env columns first: the rows per column follow from them): its header's value,
# what it is, why another value misreads the file, and the option that sets it ("" for the env's
# spaces, which only a new run can change).
REPLAY_SETTINGS = (
    ("num_envs", "env columns (parallel x sequential)", "each env's transitions are one column of the file",
     "--data.init_args.parallel and --data.init_args.sequential that make"),
    ("observation_size", "observation size", "its rows hold observations of that size", ""),
    ("action_size", "action size", "its rows hold actions of that size", ""),
    ("rows", "rows per env column", "the ring's rows are replay.size / env columns / processes",
     "a --data.init_args.replay.size that gives"),
    ("return_steps", "replay.return_steps", "its rewards and discounts are sums over that many steps, which "
     "this run would bootstrap after its own number of steps", "--data.init_args.replay.return_steps"),
    ("discount", "replay.discount", "its n-step rewards and discounts were computed with it",
     "--data.init_args.replay.discount"),
)  # fmt: skip


def replay_settings(header: dict) -> dict:
    """The settings of ``REPLAY_SETTINGS`` from a replay file's header (format 1 or 2)."""
    shapes = header.get("shapes", {})
    return {
        "num_envs": header.get("num_envs"),
        "observation_size": shapes.get("observations"),
        "action_size": shapes.get("actions"),
        "rows": header.get("rows"),
        "return_steps": header.get("return_steps"),
        "discount": header.get("discount"),
    }


def _shown(value) -> str:
    if isinstance(value, list):  # a shape: [403] -> 403
        return "x".join(map(str, value)) if value else "1"
    return str(value)


def replay_settings_problem(path, written: dict, here: dict) -> str | None:
    """The refusal of a replay file written with settings (``replay_settings`` of its header)
    other than this run's ``here``, in one line naming the first setting that differs, both
    values and the way out; None when they agree. A resumed run that loaded it would misread it:
    with another ``return_steps`` it pairs n-step rewards with bootstrap observations of another
    step."""
    for key, what, why, option in REPLAY_SETTINGS:
        theirs, ours = written.get(key), here.get(key)
        if theirs is None or ours is None or theirs == ours:
            continue
        keep = f"resume with {option} {_shown(theirs)}, or " if option else ""
        return (
            f"replay file {path} was written with {what} {_shown(theirs)}, this run has {_shown(ours)} ({why}): "
            f"{keep}start a new run with --resume false (the old one is moved aside) or a new --name"
        )
    return None


class RunCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints crash-safely and reads them through ``upgrade`` and, when fitting,
    ``for_rank``.

    ``torch.save`` goes straight into a temporary file in the checkpoint's own directory, then a
    rename. Lightning's ``_atomic_save`` serialises into memory (a second copy of the checkpoint)
    and writes through an fsspec transaction that stages the file in the system temp directory:
    where that is another filesystem (e.g. a tmpfs ``/tmp``) the final file is written by a copy,
    so a crash leaves a partial ``last.ckpt``; nothing is fsynced either.

    Args:
        trainer: the Trainer whose rank, world size and stage decide the per-rank parts (None:
            read as written, e.g. outside a run).
    """

    def __init__(self, trainer=None):
        super().__init__()
        self.trainer = trainer

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda f: torch.save(checkpoint, f))

    def load_checkpoint(self, path, *args, **kwargs) -> dict[str, Any]:
        checkpoint = upgrade(super().load_checkpoint(path, *args, **kwargs))
        trainer = self.trainer
        if trainer is not None and trainer.state.fn == "fit":
            checkpoint = for_rank(checkpoint, trainer.global_rank, trainer.world_size, f"checkpoint {path}")
        return checkpoint

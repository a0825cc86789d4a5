"""Reading a checkpoint back: the one place where older layouts are brought up to date and where
a DDP rank's own parts are picked out, before Lightning hands the sections to the module
(``hyper_parameters``, ``state_dict``, ``learner``, ``updates``, ...) and to the DataModule
(its state, with the acting state, env states, collection state and replay file record).

Sections written with ``lit_rl.training.distributed.add_rank_states`` hold rank 0's local part merged in
and, under DDP, every rank's under ``ranks``; when fitting, each rank keeps the shared keys and its
own local ones (``for_rank``). Validate and test read rank 0's, as a single-process checkpoint.
"""

from __future__ import annotations

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


def replay_file_problem(record: dict, checkpoint_dir: Path) -> str | None:
    """What is wrong with the replay file a rank's record names: None when it is there and as
    long as recorded (or the record names none); checked before a resume starts and again when
    the file is read (which also checks its token and position)."""
    name = record.get("replay_file")
    if name is None:
        return None
    path = Path(checkpoint_dir) / name
    size = path.stat().st_size if path.is_file() else None
    if size is None:
        return f"needs its replay file {path}, which is missing"
    if size != record.get("replay_bytes", size):
        return f"needs its replay file {path}, which has {size} bytes instead of {record['replay_bytes']}"
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

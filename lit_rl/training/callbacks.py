"""Callbacks that count in environment steps instead of optimizer steps, and crash-safe
checkpoint files."""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import sys
import time
from pathlib import Path

from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from tqdm import tqdm

from lit_rl.training.distributed import RANKS_KEY, gather_objects
from lit_rl.training.lightning_internals import save_checkpoint
from lit_rl.training.resume import RunCheckpointIO

log = logging.getLogger(__name__)

PERIODIC = re.compile(r"step=(\d+)\.ckpt")


class EnvStepCheckpoint(ModelCheckpoint):
    """Saves ``step=<env_steps>.ckpt`` every ``save_steps`` environment steps (the DataModule's
    ``save_steps``) and ``last.ckpt`` with it and at the end of training.

    Saves happen only at a rollout cut (between a training phase and the next collection), so a
    checkpoint is a consistent state. Every file is written atomically and read back through
    ``lit_rl.training.resume`` (``RunCheckpointIO``).
    With ``full_save`` the replay buffer is written next to ``last.ckpt`` under a new name each
    time (``last-<env_steps>-<random>.replay``, raw tensors, not inside the ``.ckpt``), before the
    ``.ckpt``, which records the file's name, size and a token stored inside it; the replay of the
    previous ``last.ckpt`` is deleted only once the new ``last.ckpt`` is in place. A crash at any
    moment thus leaves a ``last.ckpt`` whose replay file is complete. Periodic checkpoints hold
    everything but the replay; ``keep_last`` keeps only the newest that many of them.
    """

    def __init__(self, dirpath: str | Path, full_save: bool = True, keep_last: int | None = None):
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=False, every_n_epochs=0)
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"keep_checkpoints must be >= 1 (or null to keep all), got {keep_last}")
        self.full_save = full_save
        self.keep_last = keep_last
        self._next_save: int | None = None
        self._saved_at: int | None = None
        self._replay_record: dict | None = None  # this rank's replay file, while the last.ckpt naming it is written

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # leave a user's own plugin alone
            trainer.strategy.checkpoint_io = RunCheckpointIO(trainer)

    def on_fit_start(self, trainer, pl_module) -> None:
        # After a resume restored env_steps and before Lightning fetches (and so collects) ahead.
        self._next_save = self._next_multiple(trainer.datamodule)
        if trainer.is_global_zero and Path(self.dirpath).is_dir():
            for stale in Path(self.dirpath).glob("*.tmp"):  # a save interrupted by a crash
                stale.unlink()

    @staticmethod
    def _next_multiple(datamodule) -> int:
        return datamodule.schedule.next_save(datamodule.env_steps)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        datamodule = trainer.datamodule
        if datamodule.at_cut and datamodule.env_steps >= self._next_save:
            self.save_now(trainer, periodic=True)
            self._next_save = self._next_multiple(datamodule)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pass

    def on_validation_end(self, trainer, pl_module) -> None:
        pass

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.datamodule.at_cut and self._saved_at != trainer.datamodule.env_steps:
            self.save_now(trainer, periodic=False)

    def save_now(self, trainer, periodic: bool) -> None:
        datamodule = trainer.datamodule
        dirpath = Path(self.dirpath)
        dirpath.mkdir(parents=True, exist_ok=True)
        if periodic:
            save_checkpoint(self, trainer, str(dirpath / f"step={datamodule.env_steps}.ckpt"))
            self._prune_periodic(trainer, dirpath)
        last = str(dirpath / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")
        if self.full_save:
            self._save_with_replay(trainer, dirpath, last)
        else:
            save_checkpoint(self, trainer, last)
        self.last_model_path = last
        self._saved_at = datamodule.env_steps

    def _save_with_replay(self, trainer, dirpath: Path, last: str) -> None:
        """Every rank writes its replay file, then rank 0 the ``last.ckpt`` that names them all
        (the DataModule's state gathers every rank's record); only then are the replay files of the
        previous ``last.ckpt`` deleted."""
        datamodule = trainer.datamodule
        token = trainer.strategy.broadcast(secrets.token_hex(4))  # one name stem for all ranks' files of this save
        rank = f".rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        replay = dirpath / f"last-{datamodule.env_steps}-{token}{rank}.replay"
        failure = None
        try:
            record = datamodule.save_replay(replay)
        except Exception as error:  # noqa: BLE001 - raised below, once every rank knows
            failure = error
        if not trainer.strategy.reduce_boolean_decision(failure is None, all=True):
            replay.unlink(missing_ok=True)  # the old last.ckpt and its replay files stay as they were
            raise failure or RuntimeError("another training process failed to write its replay file")
        before = file_identity(last)
        self._replay_record = record
        try:
            save_checkpoint(self, trainer, last)
        except BaseException:
            # Delete this save's replay file only if last.ckpt was not replaced: under DDP rank 0
            # may have written it and then died, and this rank learns that in the barrier after it.
            if file_identity(last) == before:
                replay.unlink(missing_ok=True)
            raise
        finally:
            self._replay_record = None
        if trainer.is_global_zero:  # only now: the new last.ckpt is in place (save_checkpoint ends in a barrier)
            for old in dirpath.glob("*.replay"):
                if old.name.split(".")[0] != replay.name.split(".")[0]:
                    old.unlink()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        """Every rank (collective under DDP): a ``last.ckpt`` written with the replay names each
        rank's file in that rank's part of the DataModule's state (``lit_rl.training.resume``)."""
        if self._replay_record is None:
            return
        records = gather_objects(self._replay_record)
        data = checkpoint[type(trainer.datamodule).__qualname__]
        data.update(records[0])
        for part, record in zip(data.get(RANKS_KEY, []), records, strict=False):
            part.update(record)

    def _prune_periodic(self, trainer, dirpath: Path) -> None:
        if self.keep_last is None or not trainer.is_global_zero:
            return
        periodic = sorted(
            (int(match.group(1)), path) for path in dirpath.iterdir() if (match := PERIODIC.fullmatch(path.name))
        )
        for _, path in periodic[: -self.keep_last]:
            path.unlink()


def file_identity(path) -> tuple[int, int] | None:
    """Inode and modification time: changes when a file is replaced by a rename."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def check_output_dir(path: Path, needed_bytes: int) -> None:
    """Fail before training starts if ``path`` cannot be written or has less than
    ``needed_bytes`` free, naming the problem."""
    probe = path / f".write-test-{secrets.token_hex(4)}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"lit_rl")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"output directory {path} is not writable: {error}") from error
    free = shutil.disk_usage(path).free
    if free < needed_bytes:
        raise OSError(
            f"not enough free disk space in {path}: {free / 2**20:.1f} MiB free, the checkpoints of this run "
            f"need about {needed_bytes / 2**20:.1f} MiB (with full_save, two copies of the replay file exist "
            "while one is saved). Free some space, choose another working_dir, shrink replay.size or set "
            "full_save false."
        )


class EnvStepProgressBar(ProgressBar):
    """One bar over environment steps, with steps per second and the last test return."""

    def __init__(self, refresh_seconds: float = 0.5):
        super().__init__()
        self.refresh_seconds = refresh_seconds
        self._enabled = True
        self._bar: tqdm | None = None
        self._last_refresh = 0.0
        self._rate = (0, 0.0)

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_fit_start(self, trainer, pl_module) -> None:
        # on_train_start would come after Lightning's first fetch, i.e. after the warm-up collection
        if not (self._enabled and trainer.is_global_zero):
            return
        datamodule = trainer.datamodule
        self._bar = tqdm(
            total=datamodule.total_steps,
            initial=datamodule.env_steps,
            desc="env steps",
            unit="step",
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
        )
        self._rate = (datamodule.env_steps, time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._bar is None or now - self._last_refresh < self.refresh_seconds:
            return
        self._refresh(trainer, now)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._refresh(trainer, time.perf_counter())

    def _refresh(self, trainer, now: float) -> None:
        steps = trainer.datamodule.env_steps
        last_steps, last_time = self._rate
        postfix = {}
        if now > last_time and steps > last_steps:
            postfix["steps/s"] = f"{(steps - last_steps) / (now - last_time):.0f}"
            self._rate = (steps, now)
        test_return = trainer.callback_metrics.get("test/episode_return")
        if test_return is not None:
            postfix["test_return"] = f"{float(test_return):.1f}"
        self._bar.n = steps
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.refresh()
        self._last_refresh = now

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._refresh(trainer, time.perf_counter())
            self._bar.close()
            self._bar = None

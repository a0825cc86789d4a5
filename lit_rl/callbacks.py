"""Callbacks that count in environment steps instead of optimizer steps."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from tqdm import tqdm


class EnvStepCheckpoint(ModelCheckpoint):
    """Saves ``step=<env_steps>.ckpt`` every ``save_steps`` environment steps (the DataModule's
    ``save_steps``) and ``last.ckpt`` with it and at the end of training.

    Saves happen only at a rollout cut (between a training phase and the next collection), so a
    checkpoint is a consistent state. With ``full_save`` the replay buffer is written next to
    ``last.ckpt`` as ``last.replay`` (raw tensors, not inside the ``.ckpt``); periodic checkpoints
    hold everything but the replay.
    """

    def __init__(self, dirpath: str | Path, full_save: bool = True):
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=False, every_n_epochs=0)
        self.full_save = full_save
        self._next_save: int | None = None
        self._saved_at: int | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        # After a resume restored env_steps and before Lightning fetches (and so collects) ahead.
        self._next_save = self._next_multiple(trainer.datamodule)

    @staticmethod
    def _next_multiple(datamodule) -> int:
        return (datamodule.env_steps // datamodule.save_steps + 1) * datamodule.save_steps

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
            self._save_checkpoint(trainer, str(dirpath / f"step={datamodule.env_steps}.ckpt"))
        last = str(dirpath / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")
        if self.full_save:
            with datamodule.replay_saved_to(dirpath / "last.replay"):
                self._save_checkpoint(trainer, last)
        else:
            self._save_checkpoint(trainer, last)
        self.last_model_path = last
        self._saved_at = datamodule.env_steps


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

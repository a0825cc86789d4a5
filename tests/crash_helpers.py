"""A callback that makes checkpoint saves slow or kills the process inside one, for the
crash-during-save tests (loaded by the CLI with ``--trainer.callbacks+=tests.crash_helpers.CrashOnSave``)."""

import os
import signal

import torch
from lightning.pytorch.callbacks import Callback


class CrashOnSave(Callback):
    """``ballast_mb``: megabytes of zeros added to every checkpoint, so writing it takes a while.
    ``kill_at_save``: SIGKILL this process while the n-th checkpoint (1 = the first) is being
    assembled, i.e. after the replay file of that save was written and before the ``.ckpt`` is."""

    def __init__(self, ballast_mb: int = 0, kill_at_save: int | None = None):
        self.ballast_mb, self.kill_at_save = ballast_mb, kill_at_save
        self.saves = 0

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.saves += 1
        if self.saves == self.kill_at_save:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.ballast_mb:
            checkpoint["ballast"] = torch.zeros(self.ballast_mb * 2**18)

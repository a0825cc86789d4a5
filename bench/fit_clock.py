"""A callback the benchmarks add to a CLI run (``--trainer.callbacks+=``) to time training."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lightning.pytorch import Callback


class FitClock(Callback):
    """``seconds`` and ``env_steps`` of the fit, from ``on_fit_start`` (after a resume or worker
    start-up, before the first collection) to the end of training; written as JSON to ``out``
    (by rank 0) when given, for runs in another process."""

    def __init__(self, out: str | None = None):
        self.out = Path(out) if out is not None else None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()
        self.start_steps = trainer.datamodule.env_steps

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start
        self.env_steps = trainer.datamodule.env_steps - self.start_steps
        if self.out is not None and trainer.is_global_zero:
            self.out.write_text(json.dumps({"seconds": self.seconds, "env_steps": self.env_steps}))

"""A callback the benchmarks add to a CLI run (``--trainer.callbacks+=``) to time training."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lightning.pytorch import Callback


class FitClock(Callback):
    """Writes ``{"seconds", "env_steps"}`` of the fit, from ``on_fit_start`` (after a resume or
    worker start-up, before the first collection) to the end of training, to ``out`` (rank 0)."""

    def __init__(self, out: str):
        self.out = Path(out)

    def on_fit_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()
        self.start_steps = trainer.datamodule.env_steps

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            seconds = time.perf_counter() - self.start
            steps = trainer.datamodule.env_steps - self.start_steps
            self.out.write_text(json.dumps({"seconds": seconds, "env_steps": steps}))

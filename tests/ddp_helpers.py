"""A callback the DDP tests add on the command line (``--trainer.callbacks+=...``) to see every
rank's state, which only rank 0's checkpoint would otherwise show."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback


class RankSnapshot(Callback):
    """Writes ``<out_dir>/<moment>-rank<r>.pt`` after a resume is restored (``start``) and when
    training ends (``end``): the module's weights and buffers, the replay's filled rows and the
    DataModule's step count."""

    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)

    def on_fit_start(self, trainer, pl_module) -> None:
        self._write(trainer, pl_module, "start")

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer, pl_module, "end")

    def _write(self, trainer, pl_module, moment: str) -> None:
        data = trainer.datamodule
        replay = data.replay
        self.out_dir.mkdir(parents=True, exist_ok=True)
        snapshot = {
            "state_dict": {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()},
            "replay_observations": replay.observations[: replay.filled].clone(),
            "replay_position": [replay.index, replay.filled],
            "env_steps": data.env_steps,
            "world_size": trainer.world_size,
        }
        torch.save(snapshot, self.out_dir / f"{moment}-rank{trainer.global_rank}.pt")

from lit_rl.data.datamodule import (
    PHASE_END,
    EpisodeResult,
    PhaseEnd,
    ReplayConfig,
    RolloutContext,
    RolloutDataModule,
)
from lit_rl.data.replay import Batch, ReplayBuffer

__all__ = [
    "PHASE_END",
    "Batch",
    "EpisodeResult",
    "PhaseEnd",
    "ReplayBuffer",
    "ReplayConfig",
    "RolloutContext",
    "RolloutDataModule",
]

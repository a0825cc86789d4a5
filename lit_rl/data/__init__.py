from lit_rl.data.datamodule import (
    PHASE_END,
    EpisodeResult,
    PhaseEnd,
    ReplayConfig,
    RolloutContext,
    RolloutDataModule,
)
from lit_rl.data.energy import AdaptiveEnergy, AdaptiveEnergyConfig
from lit_rl.data.replay import Batch, ReplayBuffer

__all__ = [
    "PHASE_END",
    "AdaptiveEnergy",
    "AdaptiveEnergyConfig",
    "Batch",
    "EpisodeResult",
    "PhaseEnd",
    "ReplayBuffer",
    "ReplayConfig",
    "RolloutContext",
    "RolloutDataModule",
]

from lit_rl.data.datamodule import RolloutDataModule, RolloutView
from lit_rl.data.energy import AdaptiveEnergy, AdaptiveEnergyConfig
from lit_rl.data.replay import ReplayBuffer, ReplayConfig
from lit_rl.data.schedule import Schedule

__all__ = [
    "AdaptiveEnergy",
    "AdaptiveEnergyConfig",
    "ReplayBuffer",
    "ReplayConfig",
    "RolloutDataModule",
    "RolloutView",
    "Schedule",
]

from lit_rl.explore.dep import DEPConfig, DEPController
from lit_rl.explore.noise import NOISES, GaussianNoise, OrnsteinUhlenbeckNoise
from lit_rl.explore.switching import DEPSwitch, SwitchDecision

__all__ = [
    "NOISES",
    "DEPConfig",
    "DEPController",
    "DEPSwitch",
    "GaussianNoise",
    "OrnsteinUhlenbeckNoise",
    "SwitchDecision",
]

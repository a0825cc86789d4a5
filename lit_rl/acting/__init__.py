"""Acting, on the data side: the ``Actor`` around an algorithm's policy (DEP, random warm-up,
action noise or a stochastic policy's pink draw, epsilon-greedy), its config and its parts
(``dep``, ``switching``, ``noise``)."""

from lit_rl.acting.actor import ActingConfig, Actor, RolloutContext, piecewise_linear
from lit_rl.acting.dep import DEPConfig, DEPController
from lit_rl.acting.noise import NOISES, GaussianNoise, OrnsteinUhlenbeckNoise, PinkNoise
from lit_rl.acting.switching import DEPSwitch, SwitchDecision

__all__ = [
    "NOISES",
    "ActingConfig",
    "Actor",
    "DEPConfig",
    "DEPController",
    "DEPSwitch",
    "GaussianNoise",
    "OrnsteinUhlenbeckNoise",
    "PinkNoise",
    "RolloutContext",
    "SwitchDecision",
    "piecewise_linear",
]

"""Envs that misbehave on purpose, registered for the fault-handling tests (imported by the
workers through ``EnvConfig.imports``)."""

import os

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv


class FaultyPendulum(PendulumEnv):
    """Pendulum whose first episode raises at its step 3 and whose second episode returns a NaN
    observation at its step 2; later episodes behave. With ``die_at`` it kills its process at
    that step of the first episode, like a segfaulting simulator."""

    def __init__(self, die_at: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.die_at = die_at
        self.episode, self.t = 0, 0

    def reset(self, **kwargs):
        self.episode += 1
        self.t = 0
        return super().reset(**kwargs)

    def step(self, action):
        self.t += 1
        if self.episode == 1 and self.t == self.die_at:
            os._exit(3)
        if self.episode == 1 and self.t == 3:
            raise RuntimeError("simulated MuJoCo instability")
        obs, reward, terminated, truncated, info = super().step(action)
        if self.episode == 2 and self.t == 2:
            obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


gym.register("FaultyPendulum-v0", entry_point=FaultyPendulum, max_episode_steps=50)

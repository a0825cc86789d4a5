"""Envs that misbehave on purpose, registered for the fault-handling tests (imported by the
workers through ``EnvConfig.imports``)."""

import os
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv


class FaultyPendulum(PendulumEnv):
    """Pendulum whose first episode raises at its step 3 and whose second episode returns a NaN
    observation at its step 2; later episodes behave (``faults=False``: none of these).

    Opt-in faults, counted per env instance:
        die_at: kill the process at this step of the first episode, like a segfaulting simulator.
        hang_at: sleep (hang) at this step of the first episode.
        once_file: with die_at/hang_at, only the first env to get there does it (it creates this
            file), so a replacement worker behaves.
        reset_raises_at: the reset with this number (1 = the first) raises.
        big_reward: the reward returned at the steps in ``big_reward_at`` (every step when
            ``big_reward_always``), large enough to make a critic loss overflow.
    """

    def __init__(
        self,
        faults: bool = True,
        die_at: int | None = None,
        hang_at: int | None = None,
        once_file: str | None = None,
        reset_raises_at: int | None = None,
        big_reward: float = 3e38,
        big_reward_at: tuple[int, ...] = (),
        big_reward_always: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.faults, self.die_at, self.hang_at, self.once_file = faults, die_at, hang_at, once_file
        self.reset_raises_at = reset_raises_at
        self.big_reward, self.big_reward_at, self.big_reward_always = big_reward, set(big_reward_at), big_reward_always
        self.episode, self.t, self.total_steps = 0, 0, 0

    def _first_to_fault(self) -> bool:
        if self.once_file is None:
            return True
        try:
            Path(self.once_file).touch(exist_ok=False)
        except FileExistsError:
            return False
        return True

    def reset(self, **kwargs):
        self.episode += 1
        self.t = 0
        if self.episode == self.reset_raises_at:
            raise RuntimeError("simulated reset failure")
        return super().reset(**kwargs)

    def step(self, action):
        self.t += 1
        self.total_steps += 1
        if self.episode == 1 and self.t == self.die_at and self._first_to_fault():
            os._exit(3)
        if self.episode == 1 and self.t == self.hang_at and self._first_to_fault():
            time.sleep(3600)
        if self.faults and self.episode == 1 and self.t == 3:
            raise RuntimeError("simulated MuJoCo instability")
        obs, reward, terminated, truncated, info = super().step(action)
        if self.faults and self.episode == 2 and self.t == 2:
            obs = np.full_like(obs, np.nan)
        if self.big_reward_always or self.total_steps in self.big_reward_at:
            reward = self.big_reward
        return obs, reward, terminated, truncated, info


gym.register("FaultyPendulum-v0", entry_point=FaultyPendulum, max_episode_steps=50)


class UnpicklablePendulum(PendulumEnv):
    """Pendulum holding a lock, which does not pickle: its state cannot be saved mid-episode."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lock = threading.Lock()


gym.register("UnpicklablePendulum-v0", entry_point=UnpicklablePendulum, max_episode_steps=50)

"""Simulator faults, the same for training and test episodes: an exception in ``step`` (e.g. a
MuJoCo instability) or a non-finite observation or reward ends the episode as a termination
with reward 0, and training goes on."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def guarded_step(env: gym.Env, action: np.ndarray) -> tuple[np.ndarray | None, float, bool, bool, bool, dict]:
    """``env.step(action)`` as ``(observation [O] float32, reward, terminated, truncated, fault,
    info)``; after a fault the observation is None, the reward 0, the episode terminated and the
    info empty."""
    try:
        obs, reward, terminated, truncated, info = env.step(action)
        obs = np.asarray(obs, np.float32).reshape(-1)
        if np.isfinite(obs).all() and np.isfinite(reward):
            return obs, float(reward), bool(terminated), bool(truncated), False, info
    except Exception:  # noqa: BLE001 - any simulator error is a fault of this episode only
        pass
    return None, 0.0, True, False, True, {}

"""Envs registered with the old ``gym`` package (sconegym registers there, with gym's 4-tuple step API)."""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np


def legacy_registry() -> Any | None:
    """The old ``gym`` package's registry, or None when ``gym`` is not installed."""
    try:
        old_gym = importlib.import_module("gym")
    except ImportError:
        return None
    registry = old_gym.envs.registry
    return getattr(registry, "env_specs", registry)  # a dict since gym 0.26, a registry object before


def legacy_ids() -> list[str]:
    registry = legacy_registry()
    return [] if registry is None else list(registry)


def make_legacy(env_id: str, make_kwargs: dict[str, Any]) -> gym.Env:
    """``gym.make`` of the old package, adapted to Gymnasium's API."""
    kwargs = dict(make_kwargs)
    max_episode_steps = kwargs.pop("max_episode_steps", None)
    old_env = importlib.import_module("gym").make(env_id, **kwargs)
    env: gym.Env = LegacyEnv(old_env)
    if max_episode_steps is None:
        max_episode_steps = getattr(env.unwrapped, "_max_episode_steps", None)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    return env


def _box(space) -> gym.spaces.Box:
    return gym.spaces.Box(
        np.asarray(space.low, np.float32), np.asarray(space.high, np.float32), tuple(space.shape), np.float32
    )


class LegacyEnv(gym.Env):
    """Gymnasium API over an env with the old one: ``reset() -> obs``, ``step() -> (obs, r, done,
    info)``. A ``done`` that the old TimeLimit marked (``info["TimeLimit.truncated"]``) is a
    truncation. Seeds go to the env's ``seed()`` if it has one, and to NumPy's global RNG, which
    old envs such as sconegym draw their initial states from."""

    def __init__(self, env):
        self.env = env
        self.observation_space = _box(env.observation_space)
        self.action_space = _box(env.action_space)

    @property
    def unwrapped(self):
        return getattr(self.env, "unwrapped", self.env)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            if callable(getattr(self.env, "seed", None)):
                self.env.seed(seed)
            np.random.seed(seed)
        result = self.env.reset()
        obs, info = result if isinstance(result, tuple) else (result, {})
        return np.asarray(obs, np.float32), dict(info)

    def step(self, action):
        result = self.env.step(action)
        if len(result) == 5:
            obs, reward, terminated, truncated, info = result
        else:
            obs, reward, done, info = result
            truncated = bool(info.get("TimeLimit.truncated", False))
            terminated = bool(done) and not truncated
        return np.asarray(obs, np.float32), float(reward), bool(terminated), bool(truncated), dict(info)

    def close(self):
        self.env.close()

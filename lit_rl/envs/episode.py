"""One episode played to its end, the loop of the test episodes (``lit_rl.data.evaluation``) and
of the Python API's ``evaluate``: a simulator fault ends it as in training (``guarded_step``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from lit_rl.envs.faults import guarded_step


@dataclass
class Episode:
    episode_return: float
    length: int
    fault: bool  # it ended in a simulator fault
    video: Any = None  # what ``start_video`` returned, to be finished by the caller
    reward_terms: dict[str, float] = field(default_factory=dict)  # summed over the episode, see ``reward_terms``


def reward_terms(info: dict) -> dict[str, float]:
    """The reward terms a step reports: MyoSuite's ``info["rwd_dict"]`` (its unweighted terms and
    ``dense``, ``sparse``, ``solved``, ``done``), the scalar entries only; {} for other envs."""
    terms = info.get("rwd_dict")
    if not isinstance(terms, dict):
        return {}
    return {
        str(name): float(np.asarray(value).reshape(()))
        for name, value in terms.items()
        if np.size(value) == 1 and np.asarray(value).dtype.kind in "biuf"
    }


def play_episode(
    env: gym.Env,
    act: Callable[[np.ndarray], np.ndarray],
    seed: int,
    start_video: Callable[[gym.Env], Any] | None = None,
) -> Episode:
    """Reset ``env`` with ``seed`` and step it with ``act(observation)`` (env-ready actions) until
    the episode ends. ``start_video(env)``, right after the reset, may return a video
    (``lit_rl.training.video.EpisodeVideo``) that captures a frame after every step that did not
    fault."""
    obs, _ = env.reset(seed=seed)
    video = start_video(env) if start_video is not None else None
    total, length, done, fault, terms = 0.0, 0, False, False, {}
    while not done:
        obs, reward, terminated, truncated, fault, info = guarded_step(env, act(obs))
        total += reward
        length += 1
        for name, value in reward_terms(info).items():
            terms[name] = terms.get(name, 0.0) + value
        done = terminated or truncated
        if video is not None and not fault:
            video.capture(env)
    return Episode(total, length, fault, video, terms)

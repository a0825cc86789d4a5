"""Stepping ``E`` environments in lockstep with automatic reset."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lit_rl.envs.make import ActionMap, EnvConfig, make_env


@dataclass
class Step:
    """One vector step. ``next_observations`` are the true successors (the final observation
    when an episode ended) and go to the replay; ``observations`` are what to act on next
    (post-reset where an episode ended)."""

    observations: np.ndarray  # [E, O]
    next_observations: np.ndarray  # [E, O]
    rewards: np.ndarray  # [E]
    terminated: np.ndarray  # [E] bool: true end, no bootstrapping
    truncated: np.ndarray  # [E] bool: time limit, still bootstraps
    finished: list[tuple[float, int]] = field(default_factory=list)  # (return, length) per ended episode

    @property
    def resets(self) -> np.ndarray:
        return self.terminated | self.truncated


class SequentialEnvs:
    """``num_envs`` copies of one env stepped in a loop in this process.

    Env ``j`` is seeded with ``seed + j`` on its first reset; later resets continue its RNG.
    """

    def __init__(self, config: EnvConfig, num_envs: int, seed: int):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.envs = [make_env(config) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.seed = seed
        self.action_map = ActionMap(self.envs[0].action_space, config.scaled_actions)
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.action_map.agent_space
        obs_dim = int(np.prod(self.observation_space.shape))
        self._obs = np.zeros((num_envs, obs_dim), np.float32)
        self._returns = np.zeros(num_envs, np.float64)
        self._lengths = np.zeros(num_envs, np.int64)
        self._seeded = False

    def reset(self) -> np.ndarray:
        """Start a fresh episode in every env; returns observations [E, O]."""
        for j, env in enumerate(self.envs):
            seed = None if self._seeded else self.seed + j
            obs, _ = env.reset(seed=seed)
            self._obs[j] = np.asarray(obs, np.float32).reshape(-1)
        self._seeded = True
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._obs.copy()

    def step(self, actions: np.ndarray) -> Step:
        env_actions = self.action_map(np.asarray(actions, np.float32))
        num = self.num_envs
        next_obs = np.empty_like(self._obs)
        rewards = np.empty(num, np.float32)
        terminated = np.empty(num, bool)
        truncated = np.empty(num, bool)
        finished = []
        for j, env in enumerate(self.envs):
            obs, reward, term, trunc, _ = env.step(env_actions[j])
            next_obs[j] = np.asarray(obs, np.float32).reshape(-1)
            rewards[j], terminated[j], truncated[j] = reward, term, trunc
            self._returns[j] += reward
            self._lengths[j] += 1
            if term or trunc:
                finished.append((float(self._returns[j]), int(self._lengths[j])))
                self._returns[j], self._lengths[j] = 0.0, 0
                obs, _ = env.reset()
                self._obs[j] = np.asarray(obs, np.float32).reshape(-1)
            else:
                self._obs[j] = next_obs[j]
        return Step(self._obs.copy(), next_obs, rewards, terminated, truncated, finished)

    def rng_states(self) -> list[dict]:
        return [env.unwrapped.np_random.bit_generator.state for env in self.envs]

    def set_rng_states(self, states: list[dict]) -> None:
        if len(states) != self.num_envs:
            raise ValueError(f"checkpoint holds RNG states for {len(states)} envs, this run has {self.num_envs}")
        for env, state in zip(self.envs, states, strict=True):
            env.unwrapped.np_random.bit_generator.state = state
        self._seeded = True

    def close(self) -> None:
        for env in self.envs:
            env.close()

"""A group of envs stepped in lockstep, writing every result into preallocated per-step arrays:
the code that runs in-process (``SequentialEnvs``) and in each worker process (``ParallelEnvs``).
Simulator faults are guarded here, and an env whose reset fails is replaced."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import torch

from lit_rl.envs import snapshot
from lit_rl.envs.faults import guarded_step
from lit_rl.envs.make import ActionMap, EnvConfig, make_env
from lit_rl.envs.muscles import MuscleState

MAX_RESET_TRIES = 10
REPLACEMENT_SEED_STRIDE = 1_000_003  # seeds of replaced envs, far from the run's own seeds


def allocate(num_envs: int, obs_dim: int, act_dim: int, muscles: int, shared: bool) -> dict:
    """The per-step arrays for ``num_envs`` envs: plain arrays, or ``RawArray`` shared memory."""
    spec = {
        "actions": (np.float32, act_dim),
        "observations": (np.float32, obs_dim),
        "next_observations": (np.float32, obs_dim),
        "rewards": (np.float32, 0),
        "terminated": (np.bool_, 0),
        "truncated": (np.bool_, 0),
        "episode_returns": (np.float64, 0),  # of the episode that just ended, where it ended
        "episode_lengths": (np.int64, 0),
        "faults": (np.int64, 0),  # cumulative per env
        "muscle_states": (np.float32, muscles),
    }
    arrays = {}
    for name, (dtype, dim) in spec.items():
        shape = (num_envs, dim) if dim else (num_envs,)
        if shared:
            arrays[name] = (mp.RawArray("b", int(np.prod(shape)) * np.dtype(dtype).itemsize), dtype, shape)
        else:
            arrays[name] = np.zeros(shape, dtype)
    return arrays


def views(shared_arrays: dict) -> dict[str, np.ndarray]:
    """Numpy arrays over ``allocate(..., shared=True)``'s shared memory."""
    return {name: np.frombuffer(raw, dtype=dtype).reshape(shape) for name, (raw, dtype, shape) in shared_arrays.items()}


class EnvGroup:
    """Steps the envs ``lo .. lo + len(seeds)`` of the arrays (``self.arrays``: views of those
    rows). Env ``index`` of the group is seeded with ``seeds[index]`` on its first reset; later
    resets continue its RNG.

    A simulator fault (``lit_rl.envs.faults``) ends that episode as a termination with reward 0,
    resets the env and counts the fault; training goes on. An env whose ``reset`` raises is
    closed and replaced by a new one (seeded from its seed), also counted as a fault.

    ``env_states`` / ``load_env_states``: each env's full state in the middle of an episode
    (``lit_rl.envs.snapshot``), its last observation, running return and length, and its
    muscle-state range, for a resume that continues every episode exactly."""

    def __init__(
        self,
        config: EnvConfig,
        seeds: list[int],
        arrays: dict,
        lo: int,
        muscle_states: bool,
        force_scale: float,
        terminal_muscle_range: bool = False,
    ):
        self.config = config
        self.terminal_muscle_range = terminal_muscle_range
        self.envs = [make_env(config) for _ in seeds]
        self.pristine = snapshot.physics_of(self.envs[0]).pristine(self.envs[0])  # before any reset changes the model
        self.seeds = seeds
        self.replacements = [0] * len(seeds)
        # RNG state of each env just before its last unseeded reset: an env that is at the start
        # of an episode reports it, so a resumed run redraws the very same initial state.
        self._start_rng: list[dict | None] = [None] * len(seeds)
        self.action_map = ActionMap(self.envs[0].action_space, config)
        self.arrays = {name: array[lo : lo + len(seeds)] for name, array in arrays.items()}
        self.muscles = None
        if muscle_states:
            num_muscles = self.arrays["muscle_states"].shape[1]
            self.muscles = [MuscleState(num_muscles, force_scale) for _ in seeds]
        self._returns = np.zeros(len(seeds))
        self._lengths = np.zeros(len(seeds), np.int64)
        self._seeded = False

    def _sense(self, index: int) -> None:
        if self.muscles is not None:
            self.arrays["muscle_states"][index] = self.muscles[index](*MuscleState.read(self.envs[index]))

    def _reset_env(self, index: int, seed: int | None) -> None:
        for _ in range(MAX_RESET_TRIES):
            self._start_rng[index] = (
                None if seed is not None else self.envs[index].unwrapped.np_random.bit_generator.state
            )
            try:
                obs, _ = self.envs[index].reset(seed=seed)
                obs = np.asarray(obs, np.float32).reshape(-1)
                if np.isfinite(obs).all():
                    self.arrays["observations"][index] = obs
                    self._sense(index)
                    return
                seed = None
            except Exception:  # noqa: BLE001 - a broken simulator instance is replaced, whatever it raised
                seed = self._replace_env(index)
            self.arrays["faults"][index] += 1
        raise RuntimeError(
            f"env {self.config.id}: {MAX_RESET_TRIES} resets in a row failed (exceptions or NaN observations)"
        )

    def _replace_env(self, index: int) -> int:
        try:
            self.envs[index].close()
        except Exception:  # noqa: BLE001 - the broken env may not even close
            pass
        self.envs[index] = make_env(self.config)
        self.replacements[index] += 1
        return self.seeds[index] + REPLACEMENT_SEED_STRIDE * self.replacements[index]

    def reset(self) -> None:
        for index in range(len(self.envs)):
            self._reset_env(index, None if self._seeded else self.seeds[index])
        self._seeded = True
        self._returns[:] = 0.0
        self._lengths[:] = 0

    def step(self) -> None:
        arrays = self.arrays
        env_actions = self.action_map(arrays["actions"])
        for index, env in enumerate(self.envs):
            obs, reward, terminated, truncated, fault, _ = guarded_step(env, env_actions[index])
            if fault:
                arrays["faults"][index] += 1
                obs = arrays["observations"][index]
            arrays["next_observations"][index] = obs
            arrays["rewards"][index] = reward
            arrays["terminated"][index], arrays["truncated"][index] = terminated, truncated
            self._returns[index] += reward
            self._lengths[index] += 1
            if terminated or truncated:
                if self.terminal_muscle_range and self.muscles is not None:
                    self.muscles[index](*MuscleState.read(env))  # deprl: the final state enters the range
                arrays["episode_returns"][index] = self._returns[index]
                arrays["episode_lengths"][index] = self._lengths[index]
                self._returns[index], self._lengths[index] = 0.0, 0
                self._reset_env(index, None)
            else:
                arrays["observations"][index] = obs
                self._sense(index)

    def rng_states(self) -> list[dict]:
        """Per env, the RNG state a resumed run restores before resetting the env: for an env at
        the start of an episode the state before that reset, otherwise the current one."""
        return [
            start if start is not None and length == 0 else env.unwrapped.np_random.bit_generator.state
            for env, start, length in zip(self.envs, self._start_rng, self._lengths, strict=True)
        ]

    def set_rng_states(self, states: list[dict]) -> None:
        for env, state in zip(self.envs, states, strict=True):
            env.unwrapped.np_random.bit_generator.state = state
        self._seeded = True

    def env_states(self) -> list[dict]:
        """Per env: ``env`` (its snapshot as uint8 bytes, or None and ``unsupported``, the reason),
        ``observation``, ``return``, ``length``, ``replacements``, and with muscle states ``muscles``
        (the running range) and ``muscle_state`` (the current sensor values)."""
        states = []
        for index, env in enumerate(self.envs):
            state = {
                "observation": torch.from_numpy(self.arrays["observations"][index].copy()),
                "return": float(self._returns[index]),
                "length": int(self._lengths[index]),
                "replacements": self.replacements[index],
            }
            if self.muscles is not None:
                state["muscles"] = self.muscles[index].state_dict()
                state["muscle_state"] = torch.from_numpy(self.arrays["muscle_states"][index].copy())
            try:
                state["env"] = torch.frombuffer(bytearray(snapshot.capture(env, self.pristine)), dtype=torch.uint8)
            except snapshot.Unsupported as reason:
                state["env"], state["unsupported"] = None, str(reason)
            states.append(state)
        return states

    def load_env_states(self, states: list[dict]) -> bool:
        """Restore ``env_states`` into these (freshly made) envs. True: every env continues its
        episode exactly; False: some env had no snapshot, and only the muscle-state ranges and
        replacement counts were restored (the caller resets the envs)."""
        for index, state in enumerate(states):
            self.replacements[index] = state["replacements"]
            if self.muscles is not None and "muscles" in state:
                self.muscles[index].load_state_dict(state["muscles"])
        if any(state["env"] is None for state in states):
            return False
        for index, (env, state) in enumerate(zip(self.envs, states, strict=True)):
            snapshot.restore(env, state["env"].numpy().tobytes())
            self.arrays["observations"][index] = state["observation"].numpy()
            if self.muscles is not None:
                self.arrays["muscle_states"][index] = state["muscle_state"].numpy()
            self._returns[index], self._lengths[index] = state["return"], state["length"]
        self._seeded = True
        return True

    def close(self) -> None:
        for env in self.envs:
            env.close()

"""Stepping ``E = parallel x sequential`` environments in lockstep with automatic reset.

``EnvGroup`` steps a list of envs and writes every result into preallocated arrays; the
same code runs in-process (``SequentialEnvs``) and in worker processes over shared memory
(``ParallelEnvs``, deprl's ``parallel`` workers each stepping ``sequential`` envs).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch

from lit_rl.envs import snapshot
from lit_rl.envs.faults import guarded_step
from lit_rl.envs.make import ActionMap, EnvConfig, make_env

log = logging.getLogger(__name__)

MAX_RESET_TRIES = 10
MAX_WORKER_RESTARTS = 5  # per worker: a worker that keeps dying is a broken env, not bad luck
REPLACEMENT_SEED_STRIDE = 1_000_003  # seeds of replaced envs, far from the run's own seeds


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
    muscle_states: np.ndarray | None = None  # [E, m] for acting on, when muscle states are on
    faults: int = 0  # simulator faults (exceptions, NaN) in this step

    @property
    def resets(self) -> np.ndarray:
        return self.terminated | self.truncated


class MuscleState:
    """DEP's sensor input per env from actuator lengths ``l`` and forces ``f`` (MuJoCo's
    ``data.actuator_length`` / ``data.actuator_force``), with a per-env running min/max kept
    for the env's whole lifetime (updates skipped on NaN):

        x = 2 * ((l - min_l) / (max_l - min_l + 0.1) - 0.5) + force_scale * (f - min_f) / (max_f - min_f + 0.1)
    """

    def __init__(self, num_muscles: int, force_scale: float = 0.0):
        self.force_scale = force_scale
        self.max_l = np.zeros(num_muscles)
        self.min_l = np.full(num_muscles, 100.0)
        self.max_f = np.full(num_muscles, -100.0)
        self.min_f = np.full(num_muscles, 100.0)

    @staticmethod
    def read(env) -> tuple[np.ndarray, np.ndarray]:
        """Muscle lengths and forces: MuJoCo's actuator data, or a SCONE model's muscle arrays (sconegym)."""
        model = getattr(env.unwrapped, "model", None)
        if hasattr(model, "muscle_fiber_length_array"):
            return (
                np.asarray(model.muscle_fiber_length_array(), np.float64),
                np.asarray(model.muscle_force_array(), np.float64),
            )
        data = getattr(env.unwrapped, "data", None)
        if data is None or not hasattr(data, "actuator_length"):
            raise TypeError(
                f"{env.spec.id if env.spec else env}: no actuator data (env.unwrapped.data.actuator_length); "
                "muscle states, and so DEP, need a MuJoCo env with actuators or a sconegym env"
            )
        return np.asarray(data.actuator_length, np.float64), np.asarray(data.actuator_force, np.float64)

    def __call__(self, length: np.ndarray, force: np.ndarray) -> np.ndarray:
        if not np.isnan(length).any():
            np.maximum(self.max_l, length, out=self.max_l)
            np.minimum(self.min_l, length, out=self.min_l)
        if not np.isnan(force).any():
            np.maximum(self.max_f, force, out=self.max_f)
            np.minimum(self.min_f, force, out=self.min_f)
        x = 2.0 * ((length - self.min_l) / (self.max_l - self.min_l + 0.1) - 0.5)
        return x + self.force_scale * (force - self.min_f) / (self.max_f - self.min_f + 0.1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(getattr(self, name).copy()) for name in ("max_l", "min_l", "max_f", "min_f")}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            getattr(self, name)[:] = value.numpy()


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
    return {name: np.frombuffer(raw, dtype=dtype).reshape(shape) for name, (raw, dtype, shape) in shared_arrays.items()}


class EnvGroup:
    """Steps the envs ``lo .. lo + len(seeds)`` of the arrays. Env ``j`` of the group is seeded
    with ``seeds[j]`` on its first reset; later resets continue its RNG.

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
        self.a = {name: array[lo : lo + len(seeds)] for name, array in arrays.items()}
        self.muscles = None
        if muscle_states:
            num_muscles = self.a["muscle_states"].shape[1]
            self.muscles = [MuscleState(num_muscles, force_scale) for _ in seeds]
        self._returns = np.zeros(len(seeds))
        self._lengths = np.zeros(len(seeds), np.int64)
        self._seeded = False

    def _sense(self, j: int) -> None:
        if self.muscles is not None:
            self.a["muscle_states"][j] = self.muscles[j](*MuscleState.read(self.envs[j]))

    def _reset_env(self, j: int, seed: int | None) -> None:
        for _ in range(MAX_RESET_TRIES):
            self._start_rng[j] = None if seed is not None else self.envs[j].unwrapped.np_random.bit_generator.state
            try:
                obs, _ = self.envs[j].reset(seed=seed)
                obs = np.asarray(obs, np.float32).reshape(-1)
                if np.isfinite(obs).all():
                    self.a["observations"][j] = obs
                    self._sense(j)
                    return
                seed = None
            except Exception:  # noqa: BLE001 - a broken simulator instance is replaced, whatever it raised
                seed = self._replace_env(j)
            self.a["faults"][j] += 1
        raise RuntimeError(
            f"env {self.config.id}: {MAX_RESET_TRIES} resets in a row failed (exceptions or NaN observations)"
        )

    def _replace_env(self, j: int) -> int:
        try:
            self.envs[j].close()
        except Exception:  # noqa: BLE001 - the broken env may not even close
            pass
        self.envs[j] = make_env(self.config)
        self.replacements[j] += 1
        return self.seeds[j] + REPLACEMENT_SEED_STRIDE * self.replacements[j]

    def reset(self) -> None:
        for j in range(len(self.envs)):
            self._reset_env(j, None if self._seeded else self.seeds[j])
        self._seeded = True
        self._returns[:] = 0.0
        self._lengths[:] = 0

    def step(self) -> None:
        a = self.a
        env_actions = self.action_map(a["actions"])
        for j, env in enumerate(self.envs):
            obs, reward, terminated, truncated, fault = guarded_step(env, env_actions[j])
            if fault:
                a["faults"][j] += 1
                obs = a["observations"][j]
            a["next_observations"][j] = obs
            a["rewards"][j], a["terminated"][j], a["truncated"][j] = reward, terminated, truncated
            self._returns[j] += reward
            self._lengths[j] += 1
            if terminated or truncated:
                if self.terminal_muscle_range and self.muscles is not None:
                    self.muscles[j](*MuscleState.read(env))  # deprl: the final state enters the range
                a["episode_returns"][j], a["episode_lengths"][j] = self._returns[j], self._lengths[j]
                self._returns[j], self._lengths[j] = 0.0, 0
                self._reset_env(j, None)
            else:
                a["observations"][j] = obs
                self._sense(j)

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
        for j, env in enumerate(self.envs):
            state = {
                "observation": torch.from_numpy(self.a["observations"][j].copy()),
                "return": float(self._returns[j]),
                "length": int(self._lengths[j]),
                "replacements": self.replacements[j],
            }
            if self.muscles is not None:
                state["muscles"] = self.muscles[j].state_dict()
                state["muscle_state"] = torch.from_numpy(self.a["muscle_states"][j].copy())
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
        for j, state in enumerate(states):
            self.replacements[j] = state["replacements"]
            if self.muscles is not None and "muscles" in state:
                self.muscles[j].load_state_dict(state["muscles"])
        if any(state["env"] is None for state in states):
            return False
        for j, (env, state) in enumerate(zip(self.envs, states, strict=True)):
            snapshot.restore(env, state["env"].numpy().tobytes())
            self.a["observations"][j] = state["observation"].numpy()
            if self.muscles is not None:
                self.a["muscle_states"][j] = state["muscle_state"].numpy()
            self._returns[j], self._lengths[j] = state["return"], state["length"]
        self._seeded = True
        return True

    def close(self) -> None:
        for env in self.envs:
            env.close()


class VectorEnvs:
    """What the DataModule sees: ``reset()``, ``step(actions) -> Step`` (or ``step_async`` then
    ``step_wait``, to work while worker processes step), spaces, RNG states, and the envs' full
    states for a checkpoint (``env_states`` / ``load_env_states``)."""

    def __init__(self, config: EnvConfig, parallel: int, sequential: int, seed: int, muscle_states: bool = False):
        if parallel < 1 or sequential < 1:
            raise ValueError(f"parallel and sequential must be >= 1, got {parallel} and {sequential}")
        self.parallel, self.sequential = parallel, sequential
        self.num_envs = parallel * sequential
        self.seed = seed
        probe = make_env(config)
        self.observation_space = probe.observation_space
        self.action_space = ActionMap(probe.action_space, config).agent_space
        self.obs_dim = int(np.prod(probe.observation_space.shape))
        self.num_muscles = 0
        if muscle_states:
            probe.reset(seed=seed)
            self.num_muscles = len(MuscleState.read(probe)[0])
        probe.close()
        self.with_muscles = muscle_states
        self._faults_seen = 0
        self._warned_unsupported = False

    def step(self, actions: np.ndarray) -> Step:
        self.step_async(actions)
        return self.step_wait()

    def current_muscle_states(self) -> np.ndarray | None:
        """Muscle states ``[E, m]`` to act on now (e.g. right after ``reset``)."""
        return self.arrays["muscle_states"].copy() if self.with_muscles else None

    def current_observations(self) -> np.ndarray:
        return self.arrays["observations"].copy()

    def env_states(self) -> list[dict]:
        """Every env's state (``EnvGroup.env_states``); an env that cannot be captured is named
        once in a warning."""
        states = self._group_states()
        unsupported = [state["unsupported"] for state in states if state["env"] is None]
        if unsupported and not self._warned_unsupported:
            log.warning("%s, so a resume from a checkpoint starts every env on a new episode", unsupported[0])
            self._warned_unsupported = True
        return states

    def load_env_states(self, states: list[dict]) -> bool:
        """Restore ``env_states`` (before the first reset); True if every episode continues exactly."""
        if len(states) != self.num_envs:
            raise ValueError(f"checkpoint holds the states of {len(states)} envs, this run has {self.num_envs}")
        return self._load_group_states(states)

    def seeds(self, worker: int) -> list[int]:
        """Env ``j`` of worker ``i`` gets ``seed + i * sequential + j`` (deprl)."""
        return [self.seed + worker * self.sequential + j for j in range(self.sequential)]

    def _collect(self, a: dict) -> Step:
        resets = a["terminated"] | a["truncated"]
        finished = [(float(a["episode_returns"][j]), int(a["episode_lengths"][j])) for j in np.flatnonzero(resets)]
        total_faults = int(a["faults"].sum())
        faults, self._faults_seen = total_faults - self._faults_seen, total_faults
        return Step(
            a["observations"].copy(),
            a["next_observations"].copy(),
            a["rewards"].copy(),
            a["terminated"].copy(),
            a["truncated"].copy(),
            finished,
            a["muscle_states"].copy() if self.with_muscles else None,
            faults,
        )


class SequentialEnvs(VectorEnvs):
    """All envs in this process (``parallel: 1``)."""

    def __init__(
        self,
        config: EnvConfig,
        num_envs: int,
        seed: int,
        muscle_states: bool = False,
        force_scale: float = 0.0,
        terminal_muscle_range: bool = False,
    ):
        super().__init__(config, 1, num_envs, seed, muscle_states)
        self.arrays = allocate(num_envs, self.obs_dim, self.action_space.shape[0], self.num_muscles, shared=False)
        self.group = EnvGroup(config, self.seeds(0), self.arrays, 0, muscle_states, force_scale, terminal_muscle_range)

    def reset(self) -> np.ndarray:
        self.group.reset()
        return self.arrays["observations"].copy()

    def step_async(self, actions: np.ndarray) -> None:
        self.arrays["actions"][:] = actions

    def step_wait(self) -> Step:
        self.group.step()
        return self._collect(self.arrays)

    def rng_states(self) -> list[dict]:
        return self.group.rng_states()

    def _group_states(self) -> list[dict]:
        return self.group.env_states()

    def _load_group_states(self, states: list[dict]) -> bool:
        return self.group.load_env_states(states)

    def set_rng_states(self, states: list[dict]) -> None:
        if len(states) != self.num_envs:
            raise ValueError(f"checkpoint holds RNG states for {len(states)} envs, this run has {self.num_envs}")
        self.group.set_rng_states(states)

    def close(self) -> None:
        self.group.close()


def _worker(index: int, config, seeds, shared_arrays, lo, muscle_states, force_scale, terminal_range, conn) -> None:
    try:
        group = EnvGroup(config, seeds, views(shared_arrays), lo, muscle_states, force_scale, terminal_range)
        conn.send_bytes(b"k")
        while True:
            command = conn.recv_bytes()
            if command == b"s":
                group.step()
                conn.send_bytes(b"k")
            elif command == b"r":
                group.reset()
                conn.send_bytes(b"k")
            elif command == b"g":
                conn.send(group.rng_states())
            elif command == b"p":
                group.set_rng_states(conn.recv())
                conn.send_bytes(b"k")
            elif command == b"S":
                conn.send(group.env_states())
            elif command == b"L":
                conn.send(group.load_env_states(conn.recv()))
            elif command == b"c":
                group.close()
                return
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return
    except BaseException:
        try:
            conn.send_bytes(b"e" + traceback.format_exc().encode())
        except (BrokenPipeError, OSError):
            pass


class WorkerLost(Exception):
    """An env worker died or stopped answering."""


class ParallelEnvs(VectorEnvs):
    """``parallel`` worker processes, each stepping ``sequential`` envs. Actions, observations,
    rewards, flags and muscle states go through shared memory; per step the main process sends
    each worker one byte and waits for one byte back.

    A worker that dies (killed from outside, a segfaulting simulator) or does not answer within
    ``worker_timeout`` seconds (a hung simulator) is killed and replaced by a new one whose envs
    start new episodes (seeded away from the run's seeds); the step its envs were in ends as a
    fault (terminated, reward 0) and is counted like a simulator fault. After
    ``MAX_WORKER_RESTARTS`` replacements of one worker the run stops with an error naming it.
    Starting a worker (making its envs) may take ``startup_factor`` times longer."""

    startup_factor = 10

    def __init__(
        self,
        config: EnvConfig,
        parallel: int,
        sequential: int,
        seed: int,
        muscle_states: bool = False,
        force_scale: float = 0.0,
        worker_timeout: float = 60.0,
        terminal_muscle_range: bool = False,
    ):
        super().__init__(config, parallel, sequential, seed, muscle_states)
        if worker_timeout <= 0:
            raise ValueError(f"worker_timeout must be > 0 seconds, got {worker_timeout}")
        self.config, self.force_scale, self.worker_timeout = config, force_scale, worker_timeout
        self.terminal_muscle_range = terminal_muscle_range
        self._shared = allocate(self.num_envs, self.obs_dim, self.action_space.shape[0], self.num_muscles, shared=True)
        self.arrays = views(self._shared)
        self._context = mp.get_context("spawn")  # fork is unsafe next to torch and logger threads
        self.conns, self.processes = [None] * parallel, [None] * parallel
        self.restarts = [0] * parallel
        # Running return and length per env, to report an episode cut short by a lost worker.
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, np.int64)
        for i in range(parallel):
            self._start_worker(i, self.seeds(i))
        for i in range(parallel):
            self._wait_or_raise(i, self.worker_timeout * self.startup_factor)

    def _start_worker(self, i: int, seeds: list[int]) -> None:
        parent, child = self._context.Pipe()
        args = (
            i, self.config, seeds, self._shared, i * self.sequential, self.with_muscles, self.force_scale,
            self.terminal_muscle_range, child,
        )  # fmt: skip
        process = self._context.Process(target=_worker, args=args, daemon=True, name=f"lit_rl-env-worker-{i}")
        process.start()
        child.close()
        self.conns[i], self.processes[i] = parent, process

    def _wait(self, i: int, timeout: float) -> bytes:
        conn, process = self.conns[i], self.processes[i]
        deadline = time.monotonic() + timeout
        while not conn.poll(min(1.0, max(deadline - time.monotonic(), 0.0))):
            if not process.is_alive():
                raise WorkerLost(f"died (exit code {process.exitcode})")
            if time.monotonic() >= deadline:
                raise WorkerLost(f"did not answer within {timeout:g} s (hung)")
        try:
            message = conn.recv_bytes()
        except (EOFError, ConnectionResetError, OSError) as error:
            process.join(timeout=1)
            raise WorkerLost(f"died (exit code {process.exitcode})") from error
        if message.startswith(b"e"):
            raise RuntimeError(f"env worker {i} failed:\n{message[1:].decode()}")
        return message

    def _wait_or_raise(self, i: int, timeout: float | None = None) -> bytes:
        try:
            return self._wait(i, self.worker_timeout if timeout is None else timeout)
        except WorkerLost as error:
            raise RuntimeError(f"env worker {i} {error}") from None

    def _replace_worker(self, i: int, reason: WorkerLost) -> None:
        self.restarts[i] += 1
        if self.restarts[i] > MAX_WORKER_RESTARTS:
            raise RuntimeError(
                f"env worker {i} {reason}, and it was replaced {MAX_WORKER_RESTARTS} times already: giving up "
                f"(env {self.config.id})"
            )
        log.warning("env worker %d %s: replacing it; its %d envs start new episodes", i, reason, self.sequential)
        process = self.processes[i]
        if process.is_alive():
            process.kill()  # before a new worker writes the same shared slots
        process.join(timeout=10)
        self.conns[i].close()
        self._start_worker(i, [s + self.num_envs * self.restarts[i] for s in self.seeds(i)])
        self._wait_or_raise(i, self.worker_timeout * self.startup_factor)
        self.conns[i].send_bytes(b"r")
        self._wait_or_raise(i)

    def _broadcast(self, command: bytes) -> list[int]:
        """Send ``command`` to every worker and wait; returns the workers that had to be replaced."""
        self._send(command)
        return self._wait_all()

    def _send(self, command: bytes) -> None:
        for conn in self.conns:
            try:
                conn.send_bytes(command)
            except (BrokenPipeError, OSError):
                pass  # a dead worker: found by the wait

    def _wait_all(self) -> list[int]:
        lost = []
        for i in range(self.parallel):
            try:
                self._wait(i, self.worker_timeout)
            except WorkerLost as reason:
                self._replace_worker(i, reason)
                lost.append(i)
        return lost

    def reset(self) -> np.ndarray:
        self._broadcast(b"r")
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self.arrays["observations"].copy()

    def step_async(self, actions: np.ndarray) -> None:
        a = self.arrays
        a["actions"][:] = actions
        # A replacement resets its envs, so keep what a lost step needs: the observations acted on.
        self._acted_on = a["observations"].copy()
        self._send(b"s")

    def step_wait(self) -> Step:
        a, observations = self.arrays, self._acted_on
        lost = self._wait_all()
        for i in lost:  # the lost step ends as a fault: terminated, reward 0, no bootstrapping
            envs = slice(i * self.sequential, (i + 1) * self.sequential)
            a["next_observations"][envs] = observations[envs]
            a["rewards"][envs], a["terminated"][envs], a["truncated"][envs] = 0.0, True, False
            a["episode_returns"][envs] = self._returns[envs]
            a["episode_lengths"][envs] = self._lengths[envs] + 1
            a["faults"][envs] += 1
        resets = a["terminated"] | a["truncated"]
        self._returns += a["rewards"]
        self._lengths += 1
        self._returns[resets], self._lengths[resets] = 0.0, 0
        return self._collect(a)

    def _ask(self, command: bytes, payloads: list | None = None) -> list:
        """Send ``command`` (and each worker its payload) to every worker; their answers."""
        for i, conn in enumerate(self.conns):
            conn.send_bytes(command)
            if payloads is not None:
                conn.send(payloads[i])
        answers = []
        for i, conn in enumerate(self.conns):
            if not conn.poll(self.worker_timeout):
                raise RuntimeError(f"env worker {i} did not answer within {self.worker_timeout:g} s")
            answers.append(conn.recv())
        return answers

    def _per_worker(self, items: list) -> list[list]:
        return [items[i * self.sequential : (i + 1) * self.sequential] for i in range(self.parallel)]

    def rng_states(self) -> list[dict]:
        return [state for states in self._ask(b"g") for state in states]

    def _group_states(self) -> list[dict]:
        return [state for states in self._ask(b"S") for state in states]

    def _load_group_states(self, states: list[dict]) -> bool:
        exact = all(self._ask(b"L", self._per_worker(states)))
        if exact:
            self._returns[:] = [state["return"] for state in states]
            self._lengths[:] = [state["length"] for state in states]
        return exact

    def set_rng_states(self, states: list[dict]) -> None:
        if len(states) != self.num_envs:
            raise ValueError(f"checkpoint holds RNG states for {len(states)} envs, this run has {self.num_envs}")
        for conn, worker_states in zip(self.conns, self._per_worker(states), strict=True):
            conn.send_bytes(b"p")
            conn.send(worker_states)
        for i in range(self.parallel):
            self._wait_or_raise(i)

    def close(self) -> None:
        for conn, process in zip(self.conns, self.processes, strict=True):
            if process is None:
                continue
            if process.is_alive():
                try:
                    conn.send_bytes(b"c")
                except (BrokenPipeError, OSError):
                    pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            conn.close()
        self.conns, self.processes = [], []


def make_vector_envs(
    config: EnvConfig,
    parallel: int,
    sequential: int,
    seed: int,
    muscle_states: bool = False,
    force_scale: float = 0.0,
    worker_timeout: float = 60.0,
    terminal_muscle_range: bool = False,
) -> VectorEnvs:
    """``terminal_muscle_range``: an episode's final muscle state also enters the running range
    that normalises DEP's input, as deprl's ``Sequential`` reads it (off: only the states acted
    on)."""
    if parallel == 1:
        return SequentialEnvs(config, sequential, seed, muscle_states, force_scale, terminal_muscle_range)
    return ParallelEnvs(
        config, parallel, sequential, seed, muscle_states, force_scale, worker_timeout, terminal_muscle_range
    )

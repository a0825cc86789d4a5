"""Stepping ``E = parallel x sequential`` environments in lockstep with automatic reset: what the
DataModule steps.

``EnvGroup`` (``lit_rl.envs.group``) steps a list of envs and writes every result into
preallocated arrays; the same code runs in-process (``SequentialEnvs``) and in worker processes
over shared memory (``ParallelEnvs``, deprl's ``parallel`` workers each stepping ``sequential``
envs, ``lit_rl.envs.workers``). Muscle states: ``lit_rl.envs.muscles``; envs' full states for a
checkpoint: ``lit_rl.envs.snapshot``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from lit_rl.envs.group import MAX_RESET_TRIES, REPLACEMENT_SEED_STRIDE, EnvGroup, allocate, views
from lit_rl.envs.make import ActionMap, EnvConfig, EnvUnsupported
from lit_rl.envs.muscles import MuscleState
from lit_rl.envs.probe import EnvProbe, probe_env
from lit_rl.envs.workers import MAX_WORKER_RESTARTS, Command, WorkerLost, WorkerPool

__all__ = [  # and, for code that imported them from here before they moved: the names above
    "MAX_RESET_TRIES",
    "MAX_WORKER_RESTARTS",
    "REPLACEMENT_SEED_STRIDE",
    "EnvGroup",
    "MuscleState",
    "ParallelEnvs",
    "SequentialEnvs",
    "Step",
    "VectorEnvs",
    "WorkerLost",
    "allocate",
    "make_vector_envs",
    "views",
]

log = logging.getLogger(__name__)


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


class VectorEnvs:
    """What the DataModule sees: ``reset()``, ``step(actions) -> Step`` (or ``step_async`` then
    ``step_wait``, to work while worker processes step), spaces, RNG states, and the envs' full
    states for a checkpoint (``env_states`` / ``load_env_states``)."""

    def __init__(
        self,
        config: EnvConfig,
        parallel: int,
        sequential: int,
        seed: int,
        muscle_states: bool = False,
        probe: EnvProbe | None = None,
    ):
        if parallel < 1 or sequential < 1:
            raise ValueError(f"parallel and sequential must be >= 1, got {parallel} and {sequential}")
        self.parallel, self.sequential = parallel, sequential
        self.num_envs = parallel * sequential
        self.seed = seed
        probe = probe if probe is not None else probe_env(config, seed)  # the caller's, or one env made here
        self.observation_space = probe.observation_space
        self.action_space = ActionMap(probe.action_space, config).agent_space
        self.obs_dim = probe.observation_dim
        self.dep_layout = probe.dep  # where DEP reads and acts (muscles and their action dims)
        self.num_muscles = 0
        if muscle_states:
            if probe.dep.problem is not None:
                raise EnvUnsupported(probe.dep.problem)
            self.num_muscles = probe.dep.muscles
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

    def _collect(self, arrays: dict) -> Step:
        resets = arrays["terminated"] | arrays["truncated"]
        finished = [
            (float(arrays["episode_returns"][env]), int(arrays["episode_lengths"][env]))
            for env in np.flatnonzero(resets)
        ]
        total_faults = int(arrays["faults"].sum())
        faults, self._faults_seen = total_faults - self._faults_seen, total_faults
        return Step(
            arrays["observations"].copy(),
            arrays["next_observations"].copy(),
            arrays["rewards"].copy(),
            arrays["terminated"].copy(),
            arrays["truncated"].copy(),
            finished,
            arrays["muscle_states"].copy() if self.with_muscles else None,
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
        probe: EnvProbe | None = None,
    ):
        super().__init__(config, 1, num_envs, seed, muscle_states, probe)
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


class ParallelEnvs(VectorEnvs):
    """``parallel`` worker processes (``lit_rl.envs.workers.WorkerPool``), each stepping
    ``sequential`` envs. Actions, observations, rewards, flags and muscle states go through shared
    memory; per step the main process sends each worker one byte and waits for one byte back.

    A worker that dies (killed from outside, a segfaulting simulator) or does not answer within
    ``worker_timeout`` seconds (a hung simulator) is killed and replaced by a new one whose envs
    start new episodes (seeded away from the run's seeds). The episodes its envs were in end as a
    fault (terminated, reward 0), counted like a simulator fault: in the step the worker was lost
    in, or, when it was lost while the run read the envs' states for a checkpoint
    (``rng_states``, ``env_states``), in the next step, which its replacement does not take (the
    answers describe the replacement's new episodes). A worker lost in ``reset``,
    ``set_rng_states`` or ``load_env_states`` is replaced by one that gets the same command, with
    no fault. After ``MAX_WORKER_RESTARTS`` replacements of one worker the run stops with an error
    naming it."""

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
        probe: EnvProbe | None = None,
    ):
        super().__init__(config, parallel, sequential, seed, muscle_states, probe)
        if worker_timeout <= 0:
            raise ValueError(f"worker_timeout must be > 0 seconds, got {worker_timeout}")
        self.config, self.force_scale, self.worker_timeout = config, force_scale, worker_timeout
        self.terminal_muscle_range = terminal_muscle_range
        self._shared = allocate(self.num_envs, self.obs_dim, self.action_space.shape[0], self.num_muscles, shared=True)
        self.arrays = views(self._shared)
        # Running return and length per env, to report an episode cut short by a lost worker.
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, np.int64)
        # Workers lost between steps -> the observations their envs were at: the next step ends
        # those episodes as a lost step, without the replacement stepping.
        self._cut: dict[int, np.ndarray] = {}
        self.pool = WorkerPool(
            config, [self.seeds(worker) for worker in range(parallel)], self._shared, muscle_states, force_scale,
            terminal_muscle_range, worker_timeout,
        )  # fmt: skip

    @property
    def processes(self) -> list:
        return self.pool.processes

    @property
    def restarts(self) -> list[int]:
        """Per worker, how many times it was replaced."""
        return self.pool.restarts

    def _envs_of(self, worker: int) -> slice:
        return slice(worker * self.sequential, (worker + 1) * self.sequential)

    def reset(self) -> np.ndarray:
        self.pool.request(Command.RESET)
        self._cut.clear()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self.arrays["observations"].copy()

    def step_async(self, actions: np.ndarray) -> None:
        arrays = self.arrays
        arrays["actions"][:] = actions
        # A replacement resets its envs, so keep what a lost step needs: the observations acted on.
        self._acted_on = arrays["observations"].copy()
        for worker, observations in self._cut.items():
            self._acted_on[self._envs_of(worker)] = observations
        self.pool.send(Command.STEP, workers=[worker for worker in range(self.parallel) if worker not in self._cut])

    def step_wait(self) -> Step:
        arrays, observations = self.arrays, self._acted_on
        _, lost = self.pool.gather()
        lost += list(self._cut)
        self._cut.clear()
        for worker in lost:  # the lost step ends as a fault: terminated, reward 0, no bootstrapping
            envs = self._envs_of(worker)
            arrays["next_observations"][envs] = observations[envs]
            arrays["rewards"][envs], arrays["terminated"][envs], arrays["truncated"][envs] = 0.0, True, False
            arrays["episode_returns"][envs] = self._returns[envs]
            arrays["episode_lengths"][envs] = self._lengths[envs] + 1
            arrays["faults"][envs] += 1
        resets = arrays["terminated"] | arrays["truncated"]
        self._returns += arrays["rewards"]
        self._lengths += 1
        self._returns[resets], self._lengths[resets] = 0.0, 0
        return self._collect(arrays)

    def _ask(self, command: Command, payloads: list | None = None) -> list:
        """Every worker's answer to ``command`` (each worker its payload), through the pool's one
        request path; a worker lost during a mid-episode question leaves its episodes to be cut."""
        observations = self.arrays["observations"].copy() if command.mid_episode else None
        answers, lost = self.pool.request(command, payloads)
        if command.mid_episode:
            for worker in lost:
                self._cut.setdefault(worker, observations[self._envs_of(worker)])
        return answers

    def _per_worker(self, items: list) -> list[list]:
        return [items[self._envs_of(worker)] for worker in range(self.parallel)]

    def rng_states(self) -> list[dict]:
        return [state for states in self._ask(Command.GET_RNG_STATES) for state in states]

    def _group_states(self) -> list[dict]:
        return [state for states in self._ask(Command.GET_ENV_STATES) for state in states]

    def _load_group_states(self, states: list[dict]) -> bool:
        exact = all(self._ask(Command.LOAD_ENV_STATES, self._per_worker(states)))
        if exact:
            self._returns[:] = [state["return"] for state in states]
            self._lengths[:] = [state["length"] for state in states]
            self._cut.clear()
        return exact

    def set_rng_states(self, states: list[dict]) -> None:
        if len(states) != self.num_envs:
            raise ValueError(f"checkpoint holds RNG states for {len(states)} envs, this run has {self.num_envs}")
        self._ask(Command.SET_RNG_STATES, self._per_worker(states))

    def close(self) -> None:
        self.pool.close()


def make_vector_envs(
    config: EnvConfig,
    parallel: int,
    sequential: int,
    seed: int,
    muscle_states: bool = False,
    force_scale: float = 0.0,
    worker_timeout: float = 60.0,
    terminal_muscle_range: bool = False,
    probe: EnvProbe | None = None,
) -> VectorEnvs:
    """``terminal_muscle_range``: an episode's final muscle state also enters the running range
    that normalises DEP's input, as deprl's ``Sequential`` reads it (off: only the states acted
    on). ``probe``: the env's ``EnvProbe`` when the caller has one (saves making an env; some
    MyoSuite tasks take most of a minute to make)."""
    if parallel == 1:
        return SequentialEnvs(config, sequential, seed, muscle_states, force_scale, terminal_muscle_range, probe)
    return ParallelEnvs(
        config, parallel, sequential, seed, muscle_states, force_scale, worker_timeout, terminal_muscle_range, probe
    )

"""Env worker processes: the commands the main process sends them, the loop each one runs, and
the pool of workers with its one request path, which replaces a worker that died or hung.

The pipe protocol: the main process sends a command as one byte (``Command``), followed by one
pickled payload for the commands that take one. The worker carries it out on its ``EnvGroup``
(whose per-step arrays live in shared memory) and answers every command but ``CLOSE`` with one
message: ``OK``, the pickled answer of a command that has one, or ``FAILED`` and its traceback.
"""

from __future__ import annotations

import enum
import logging
import multiprocessing as mp
import time
import traceback
from multiprocessing.reduction import ForkingPickler

from lit_rl.envs.group import EnvGroup, views
from lit_rl.envs.make import EnvConfig

log = logging.getLogger(__name__)

MAX_WORKER_RESTARTS = 5  # per worker: a worker that keeps dying is a broken env, not bad luck

OK = b"k"  # a worker is ready, or has carried out a command that has no answer
FAILED = b"e"  # followed by the traceback of the exception that ended the worker


class Command(bytes, enum.Enum):
    """What the main process asks a worker; the value is the byte sent on the pipe."""

    STEP = b"s"  # step every env with the actions in shared memory
    RESET = b"r"  # reset every env (seeded on the first reset)
    GET_RNG_STATES = b"g"  # answer: EnvGroup.rng_states()
    SET_RNG_STATES = b"p"  # payload: the group's RNG states
    GET_ENV_STATES = b"S"  # answer: EnvGroup.env_states()
    LOAD_ENV_STATES = b"L"  # payload: the group's env states; answer: whether they continue exactly
    CLOSE = b"c"  # close the envs and exit; no answer

    @property
    def takes_payload(self) -> bool:
        return self in (Command.SET_RNG_STATES, Command.LOAD_ENV_STATES)

    @property
    def answers(self) -> bool:
        """Answered with a pickled value rather than ``OK``."""
        return self in (Command.GET_RNG_STATES, Command.GET_ENV_STATES, Command.LOAD_ENV_STATES)

    @property
    def mid_episode(self) -> bool:
        """Sent while the envs are in the middle of episodes, which a lost worker takes with it."""
        return self in (Command.STEP, Command.GET_RNG_STATES, Command.GET_ENV_STATES)


def carry_out(group: EnvGroup, command: Command, payload):
    """``command`` on ``group``; its answer, or None."""
    if command is Command.STEP:
        group.step()
    elif command is Command.RESET:
        group.reset()
    elif command is Command.GET_RNG_STATES:
        return group.rng_states()
    elif command is Command.SET_RNG_STATES:
        group.set_rng_states(payload)
    elif command is Command.GET_ENV_STATES:
        return group.env_states()
    elif command is Command.LOAD_ENV_STATES:
        return group.load_env_states(payload)
    return None


def run_worker(config, seeds, shared_arrays, lo, muscle_states, force_scale, terminal_muscle_range, conn) -> None:
    """A worker process: make its ``EnvGroup`` over the shared arrays, say ``OK``, then carry out
    commands until ``CLOSE``. An exception is sent back as ``FAILED`` and ends the worker."""
    try:
        group = EnvGroup(config, seeds, views(shared_arrays), lo, muscle_states, force_scale, terminal_muscle_range)
        conn.send_bytes(OK)
        while True:
            command = Command(conn.recv_bytes())
            if command is Command.CLOSE:
                group.close()
                return
            payload = conn.recv() if command.takes_payload else None
            answer = carry_out(group, command, payload)
            if command.answers:
                conn.send(answer)
            else:
                conn.send_bytes(OK)
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return
    except BaseException:
        try:
            conn.send_bytes(FAILED + traceback.format_exc().encode())
        except (BrokenPipeError, OSError):
            pass


class WorkerLost(Exception):
    """An env worker died or stopped answering."""


class WorkerPool:
    """Worker processes over one set of shared arrays: worker ``w`` steps the envs seeded with
    ``seeds[w]``, the next ``len(seeds[w])`` rows of the arrays.

    Every request goes one way: ``request`` (or ``send`` and later ``gather``, to work while the
    workers step) sends a command to the workers, then waits for each worker's answer in turn. A
    worker that died (killed from outside, a segfaulting simulator) or did not answer within
    ``timeout`` seconds (a hung simulator) is killed and replaced by a new one with new seeds,
    away from the run's (``seed + num_envs * restarts``), which stands in for it:

    - a mid-episode command (``Command.mid_episode``: a step, or a question about the envs'
      states): the lost worker's episodes are gone, and the replacement resets its envs to start
      new ones. A step is not repeated (``gather`` names the replaced workers, and the caller ends
      their lost step as a fault); a question is asked again and answered for the new episodes.
    - any other command is sent to the replacement again: a reset resets its envs (with its new
      seeds: new episodes); RNG or env states, restored before the first reset, are restored into
      its freshly made envs just as into the lost worker's.

    After ``MAX_WORKER_RESTARTS`` replacements of one worker, or if a replacement does not start or
    does not answer, the run stops with an error naming the worker. Starting a worker (making its
    envs) may take ``startup_factor`` times ``timeout``."""

    startup_factor = 10

    def __init__(
        self,
        config: EnvConfig,
        seeds: list[list[int]],
        shared_arrays: dict,
        muscle_states: bool,
        force_scale: float,
        terminal_muscle_range: bool,
        timeout: float,
    ):
        self.config, self.seeds, self.shared_arrays = config, seeds, shared_arrays
        self.muscle_states, self.force_scale = muscle_states, force_scale
        self.terminal_muscle_range = terminal_muscle_range
        self.timeout = timeout
        self.num_envs = sum(len(worker_seeds) for worker_seeds in seeds)
        self.first_env = [sum(len(worker_seeds) for worker_seeds in seeds[:worker]) for worker in range(len(seeds))]
        self._context = mp.get_context("spawn")  # fork is unsafe next to torch and logger threads
        self.conns, self.processes = [None] * len(seeds), [None] * len(seeds)
        self.restarts = [0] * len(seeds)
        self._pending: tuple[Command, list | None, list[int]] | None = None
        for worker in range(len(seeds)):
            self._start(worker, seeds[worker])
        for worker in range(len(seeds)):
            self._wait_or_raise(worker, self.timeout * self.startup_factor)

    def _start(self, worker: int, seeds: list[int]) -> None:
        parent, child = self._context.Pipe()
        args = (
            self.config, seeds, self.shared_arrays, self.first_env[worker], self.muscle_states, self.force_scale,
            self.terminal_muscle_range, child,
        )  # fmt: skip
        process = self._context.Process(target=run_worker, args=args, daemon=True, name=f"lit_rl-env-worker-{worker}")
        process.start()
        child.close()
        self.conns[worker], self.processes[worker] = parent, process

    def request(
        self, command: Command, payloads: list | None = None, workers: list[int] | None = None
    ) -> tuple[list, list[int]]:
        """``send`` then ``gather``: the workers' answers (None for a command without one) and the
        workers that were replaced."""
        self.send(command, payloads, workers)
        return self.gather()

    def send(self, command: Command, payloads: list | None = None, workers: list[int] | None = None) -> None:
        """Send ``command`` to ``workers`` (all by default), with worker ``w`` ``payloads[w]``;
        ``gather`` waits for the answers."""
        if self._pending is not None:
            raise RuntimeError(f"env workers: {self._pending[0].name} was sent and not gathered")
        workers = list(range(len(self.conns))) if workers is None else list(workers)
        for worker in workers:
            self._send(worker, command, None if payloads is None else payloads[worker])
        self._pending = (command, payloads, workers)

    def gather(self) -> tuple[list, list[int]]:
        """The answers to the command last sent, in the order of its workers, and the workers
        that were lost and replaced (see the class docstring for what a replacement answers)."""
        command, payloads, workers = self._pending
        self._pending = None
        answers, replaced = [], []
        for worker in workers:
            try:
                answers.append(self._answer(command, self._wait(worker, self.timeout)))
            except WorkerLost as reason:
                payload = None if payloads is None else payloads[worker]
                answers.append(self._replace(worker, reason, command, payload))
                replaced.append(worker)
        return answers, replaced

    def _send(self, worker: int, command: Command, payload=None) -> None:
        try:
            self.conns[worker].send_bytes(command.value)
            if command.takes_payload:
                self.conns[worker].send(payload)
        except (BrokenPipeError, OSError):
            pass  # a dead worker: found by the wait

    @staticmethod
    def _answer(command: Command, message: bytes):
        return ForkingPickler.loads(message) if command.answers else None

    def _wait(self, worker: int, timeout: float) -> bytes:
        conn, process = self.conns[worker], self.processes[worker]
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
        if message.startswith(FAILED):
            raise RuntimeError(f"env worker {worker} failed:\n{message[len(FAILED) :].decode()}")
        return message

    def _wait_or_raise(self, worker: int, timeout: float | None = None) -> bytes:
        try:
            return self._wait(worker, self.timeout if timeout is None else timeout)
        except WorkerLost as error:
            raise RuntimeError(f"env worker {worker} {error}") from None

    def _replace(self, worker: int, reason: WorkerLost, command: Command, payload):
        """Replace the lost ``worker``; the replacement's answer to ``command`` (None for a step)."""
        self.restarts[worker] += 1
        if self.restarts[worker] > MAX_WORKER_RESTARTS:
            raise RuntimeError(
                f"env worker {worker} {reason}, and it was replaced {MAX_WORKER_RESTARTS} times already: giving up "
                f"(env {self.config.id})"
            )
        envs = len(self.seeds[worker])
        if command.mid_episode or command is Command.RESET:
            log.warning("env worker %d %s: replacing it; its %d envs start new episodes", worker, reason, envs)
        else:
            log.warning("env worker %d %s: replacing it; sending %s again", worker, reason, command.name)
        process = self.processes[worker]
        if process.is_alive():
            process.kill()  # before a new worker writes the same shared slots
        process.join(timeout=10)
        self.conns[worker].close()
        self._start(worker, [seed + self.num_envs * self.restarts[worker] for seed in self.seeds[worker]])
        self._wait_or_raise(worker, self.timeout * self.startup_factor)
        if command.mid_episode:
            self._send(worker, Command.RESET)
            self._wait_or_raise(worker)
        if command is Command.STEP:
            return None
        self._send(worker, command, payload)
        return self._answer(command, self._wait_or_raise(worker))

    def close(self) -> None:
        for conn, process in zip(self.conns, self.processes, strict=True):
            if process is None:
                continue
            if process.is_alive():
                try:
                    conn.send_bytes(Command.CLOSE.value)
                except (BrokenPipeError, OSError):
                    pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            conn.close()
        self.conns, self.processes = [], []

"""Collection: the training envs stepped with the agent's actions into the replay, the counts
of steps, episodes and faults, and the train metrics that summarise them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from lit_rl.acting import Actor, RolloutContext
from lit_rl.data.energy import AdaptiveEnergy
from lit_rl.data.replay import ReplayBuffer
from lit_rl.data.schedule import Schedule
from lit_rl.envs import VectorEnvs
from lit_rl.training.distributed import sum_across_ranks


@dataclass
class Progress:
    """The run's counts, in every stage (validate and test restore them from the checkpoint)."""

    env_steps: int = 0  # transitions collected, summed over envs and DDP ranks (all ranks step in lockstep)
    episodes: int = 0  # finished training episodes, this rank's
    faults: int = 0  # simulator faults survived in training and test episodes, this rank's


class Collector:
    """Steps ``envs`` (this rank's) with ``Actor.act``, writes every transition into ``replay``
    and counts them in ``progress``.

    Args:
        progress: the counts it advances.
        envs: this rank's training envs.
        replay: this rank's replay.
        schedule: decides when a training phase interrupts the collection.
        transitions_per_row: global env steps per vector step (envs per rank x ranks).
        acting_threads: torch intra-op threads to act with, whatever the env layout: acting
            batches are small, idle OpenMP threads spin-wait on the cores the envs need, and the
            thread count changes a matmul's last bits, so a layout-dependent count would make
            the layout change the actions; None leaves the count alone.
        energy: the adaptive energy relabelling, told about finished episodes.
    """

    def __init__(
        self,
        progress: Progress,
        envs: VectorEnvs,
        replay: ReplayBuffer,
        schedule: Schedule,
        transitions_per_row: int,
        acting_threads: int | None = 1,
        energy: AdaptiveEnergy | None = None,
    ):
        self.progress, self.envs, self.replay, self.schedule = progress, envs, replay, schedule
        self.transitions_per_row = transitions_per_row
        self.acting_threads = acting_threads
        self.energy = energy
        self.restored = False  # resumed from a checkpoint that could not save the episodes: the envs reset
        self._observations: np.ndarray | None = None
        self._muscle_states: np.ndarray | None = None
        self._episode_starts: np.ndarray | None = None
        self._finished_since_log: list[tuple[float, int]] = []
        self._log_clock = (0, time.perf_counter())

    @property
    def started(self) -> bool:
        return self._observations is not None

    def start(self) -> None:
        """Reset the envs (after a resume the replay's newest row is marked as an episode end)."""
        if self.restored:
            self.replay.mark_episode_boundary()
        self._observations = self.envs.reset()
        self._muscle_states = self.envs.current_muscle_states()
        self._episode_starts = np.ones(self.envs.num_envs, bool)
        self._log_clock = (self.progress.env_steps, time.perf_counter())  # env steps/s from here, not start-up

    def state_dict(self) -> dict:
        """What continues the collection where it stopped, with the envs' own states."""
        return {
            "episode_starts": torch.from_numpy(self._episode_starts.copy()),
            "finished_since_log": list(self._finished_since_log),
        }

    def restart(self, state: dict | None) -> None:
        """After a resume. ``state``: the ``state_dict`` of a collection whose envs were restored
        mid-episode, which goes on from there; None: the next ``start`` resets the envs."""
        self._log_clock = (self.progress.env_steps, time.perf_counter())
        if state is None:
            self.restored = True
            self._observations = None
            return
        self._observations = self.envs.current_observations()
        self._muscle_states = self.envs.current_muscle_states()
        self._episode_starts = state["episode_starts"].numpy().copy()
        self._finished_since_log = [tuple(item) for item in state["finished_since_log"]]

    @contextmanager
    def _acting_threads(self) -> Iterator[None]:
        threads = torch.get_num_threads()
        if self.acting_threads is None or threads == self.acting_threads:
            yield
            return
        torch.set_num_threads(self.acting_threads)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def collect(self, actor: Actor, until: int) -> None:
        """Step until ``until`` env steps or until the schedule starts a training phase."""
        device, progress = actor.device, self.progress
        # Each transition is written to the replay while the env workers take the next step;
        # the last one is written before returning, so training and checkpoints see them all.
        unstored: tuple | None = None
        try:
            with self._acting_threads():
                while progress.env_steps < until:
                    obs = torch.from_numpy(self._observations)
                    muscles = self._muscle_states
                    context = RolloutContext(
                        env_steps=progress.env_steps,
                        episodes=progress.episodes,
                        episode_starts=torch.from_numpy(self._episode_starts),
                        muscle_states=None if muscles is None else torch.from_numpy(muscles),
                        steps_before_batches=self.schedule.steps_before_batches,
                    )
                    with torch.no_grad():
                        actions = actor.act(obs.to(device), context).cpu()
                    self.envs.step_async(actions.numpy())
                    if unstored is not None:
                        self.replay.store(*unstored)
                        unstored = None
                    step = self.envs.step_wait()
                    if actor.trains:
                        unstored = (
                            obs,
                            actions,
                            torch.from_numpy(step.next_observations),
                            torch.from_numpy(step.rewards),
                            torch.from_numpy(step.terminated),
                            torch.from_numpy(step.truncated),
                        )
                    self._observations = step.observations
                    self._muscle_states = step.muscle_states
                    self._episode_starts = step.resets
                    progress.env_steps += self.transitions_per_row
                    progress.episodes += len(step.finished)
                    progress.faults += step.faults
                    self._finished_since_log.extend(step.finished)
                    if self.energy is not None and step.resets[0]:
                        self.energy.episode_finished(step.finished[0][0])  # deprl: the first env's scores
                    if actor.trains and self.schedule.phase_due(progress.env_steps, self.transitions_per_row):
                        return
        finally:
            if unstored is not None:
                self.replay.store(*unstored)

    def pop_metrics(self, device: torch.device) -> dict[str, float]:
        """Metrics of the collection since the last call, over all ranks (collective under DDP:
        every rank calls it at the same points)."""
        progress = self.progress
        steps, clock = self._log_clock
        now = time.perf_counter()
        finished = np.array(self._finished_since_log, np.float64).reshape(-1, 2)
        totals = torch.tensor(
            [len(self.replay), progress.faults, progress.episodes, len(finished), *finished.sum(0)],
            dtype=torch.float64,
            device=device,
        )
        replay_size, faults, episodes, count, return_sum, length_sum = sum_across_ranks(totals).tolist()
        metrics = {"env_steps": float(progress.env_steps), "replay/size": replay_size, "env/faults": faults}
        if now > clock and progress.env_steps > steps:
            metrics["perf/env_steps_per_s"] = (progress.env_steps - steps) / (now - clock)
        if count:
            metrics["train/episode_return"] = return_sum / count
            metrics["train/episode_length"] = length_sum / count
            metrics["train/episodes"] = episodes
        self._finished_since_log = []
        self._log_clock = (progress.env_steps, now)
        if self.energy is not None:
            metrics.update(self.energy.metrics())
        return metrics

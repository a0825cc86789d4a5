"""Evaluation: test episodes with the deterministic policy (DEP in mode 4) on the test env,
optionally recorded as videos."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Literal, get_args

import numpy as np
import torch

from lit_rl.acting import Actor
from lit_rl.contract import EpisodeResult
from lit_rl.data.collection import Progress
from lit_rl.envs import ActionMap, EnvConfig, MuscleState, make_env
from lit_rl.envs.episode import play_episode
from lit_rl.training.video import EpisodeVideo, VideoRecorder, log_video, rendering_config, video_path

log = logging.getLogger(__name__)

TEST_SEED_OFFSET = 1_000_000  # test episode i starts from seed + TEST_SEED_OFFSET + i
TestSeeds = Literal["fixed", "continued"]  # where test episodes start: see Evaluator


class Evaluator:
    """Plays test episodes. A simulator fault ends the test episode as in training
    (``lit_rl.envs.faults``) and is counted in ``progress.faults``.

    Where test episodes start (``test_seeds``):

    - ``fixed``: episode ``i`` of every evaluation starts from seed ``seed + 1_000_000 + i``, so
      evaluations are comparable across epochs and numbers of processes (under DDP episode ``i``
      plays on rank ``i % N``);
    - ``continued`` (deprl's): the test env is seeded once, with ``seed + 1_000_000 + rank``, and
      every later episode continues its generator, so each evaluation starts from new states. The
      generator's state is in the checkpoint (``state_dict``), so a resumed run continues it.

    Args:
        config: the test env.
        episodes: episodes per evaluation (over all ranks).
        seed: the run's env seed base.
        progress: the run's counts (faults, and the env steps that name videos).
        force_scale: weight of the forces in the muscle states (DEP mode 4 acts on them).
        video: records the first test episode(s) of each evaluation (``lit_rl.training.video``), or None.
        test_seeds: ``fixed`` or ``continued``, see above.
    """

    def __init__(
        self,
        config: EnvConfig,
        episodes: int,
        seed: int,
        progress: Progress,
        force_scale: float = 0.0,
        video: VideoRecorder | None = None,
        test_seeds: TestSeeds = "fixed",
    ):
        if test_seeds not in get_args(TestSeeds):
            raise ValueError(f"test_seeds must be one of {', '.join(get_args(TestSeeds))}, got {test_seeds!r}")
        self.config, self.episodes, self.seed, self.test_seeds = config, episodes, seed, test_seeds
        self._seeded = False  # ``continued``: the test env was seeded (later episodes continue its generator)
        self.progress, self.force_scale, self.video = progress, force_scale, video
        if self.video is None:
            self.env = make_env(config)
        else:
            self.env = make_env(rendering_config(config))
            self.video.check(self.env, seed + TEST_SEED_OFFSET)
        self.action_map = ActionMap(self.env.action_space, config)

    @property
    def observation_space(self):
        return self.env.observation_space

    def close(self) -> None:
        self.env.close()

    def run(self, actor: Actor, rank: int, world_size: int, trainer) -> Iterator[EpisodeResult]:
        """This rank's share of the test episodes. ``trainer`` (rank, run directory, loggers) is
        only used for videos."""
        muscles = None
        if actor.evaluates_with_muscle_states:
            muscles = MuscleState(len(MuscleState.read(self.env)[0]), self.force_scale)

        def act(obs) -> np.ndarray:
            obs_t = torch.as_tensor(np.asarray(obs, np.float32).reshape(1, -1), device=actor.device)
            muscle_t = None
            if muscles is not None:
                muscle_t = torch.as_tensor(muscles(*MuscleState.read(self.env)), dtype=torch.float32)[None]
            with torch.no_grad():
                return self.action_map(actor.act_for_evaluation(obs_t, muscle_t)[0].cpu().numpy())

        for index in range(rank, self.episodes, world_size):
            seed = self._episode_seed(index, rank)
            episode = play_episode(self.env, act, seed, lambda env, i=index: self._start_video(i, trainer))
            if episode.fault:
                log.warning("simulator fault in test episode %d: the episode ends there", index)
                self.progress.faults += 1
            if episode.video is not None:
                self._finish_video(episode.video, index, trainer)
            yield EpisodeResult(episode.episode_return, episode.length, episode.reward_terms)

    def _episode_seed(self, index: int, rank: int) -> int | None:
        """The reset seed of test episode ``index`` (None: continue the test env's generator)."""
        if self.test_seeds == "fixed":
            return self.seed + TEST_SEED_OFFSET + index
        if self._seeded:
            return None
        self._seeded = True
        return self.seed + TEST_SEED_OFFSET + rank

    def state_dict(self) -> dict:
        """``continued``: the test env's generator once seeded (empty otherwise)."""
        if self.test_seeds != "continued" or not self._seeded:
            return {}
        return {"rng": self.env.unwrapped.np_random.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if self.test_seeds == "continued" and "rng" in state:
            self.env.unwrapped.np_random.bit_generator.state = state["rng"]
            self._seeded = True

    def _start_video(self, index: int, trainer) -> EpisodeVideo | None:
        if self.video is None or index >= self.video.config.episodes or not trainer.is_global_zero:
            return None
        # default_root_dir is the run directory under the CLI
        path = video_path(trainer.default_root_dir, self.progress.env_steps, index)
        return self.video.start(self.env, path)

    def _finish_video(self, video: EpisodeVideo, index: int, trainer) -> None:
        path = video.finish()
        log.info("test episode %d video: %s (%d frames at %.3g fps)", index, path, video.frames, video.fps)
        log_video(trainer, path, self.progress.env_steps, index)

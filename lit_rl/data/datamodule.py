"""The rollout DataModule: the config surface of the data side and the glue between Lightning
and its parts (``schedule``, ``collection``, ``evaluation``, ``checkpoint_state``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import lightning.pytorch as pl
import numpy as np
import torch

from lit_rl.acting import Actor
from lit_rl.contract import PHASE_END, Batch, EpisodeResult, PhaseEnd, Policy, ReplayRows
from lit_rl.data.checkpoint_state import ReplayFiles, data_state, load_data_state
from lit_rl.data.collection import Collector, Progress
from lit_rl.data.energy import AdaptiveEnergy
from lit_rl.data.evaluation import Evaluator, TestSeeds
from lit_rl.data.replay import ReplayBuffer, ReplayConfig
from lit_rl.data.schedule import Schedule
from lit_rl.envs import EnvConfig, EnvUnsupported, make_vector_envs, probe_env
from lit_rl.envs.make import ActionMap
from lit_rl.training.video import VideoConfig, VideoRecorder, configure_rendering

log = logging.getLogger(__name__)


class _Iterable:
    """A plain re-iterable (not a torch DataLoader): no worker processes, no samplers."""

    def __init__(self, make_iterator):
        self._make_iterator = make_iterator

    def __iter__(self):
        return self._make_iterator()


class RolloutDataModule(pl.LightningDataModule):
    """Collects experience with the LightningModule's current policy and yields replay batches.

    The train "dataloader" alternates between stepping the envs and yielding
    ``replay.batch_iterations`` batches whenever the schedule says so. An epoch is
    ``epoch_steps`` transitions; training ends after ``total_steps``; the checkpoint callback
    saves every ``save_steps``. The validation dataloader plays ``test_episodes`` episodes with
    the deterministic policy on the test env.

    Under DDP every rank steps its own ``parallel * sequential`` envs (seeded after the other
    ranks' envs) into its own replay, all ranks in lockstep; ``env_steps`` and every count below
    are global, summed over ranks. Test episodes are split over ranks (episode ``i`` plays on rank
    ``i % N`` with the same seed as on one process) and their returns gathered.

    Args:
        env: the training env (see ``EnvConfig``).
        test_env: the evaluation env; defaults to ``env``.
        parallel: env worker processes (deprl's ``parallel``); 1 steps the envs in this process.
        sequential: envs stepped in a loop by each worker (deprl's ``sequential``). All
            ``parallel * sequential`` envs act in lockstep, one replay column each.
        replay: replay size, n-step return and training schedule (see ``ReplayConfig``).
        total_steps: environment transitions of the whole run.
        epoch_steps: environment transitions per epoch (an evaluation follows each).
        save_steps: environment transitions between periodic checkpoints.
        test_episodes: episodes per evaluation.
        test_seeds: where test episodes start: ``fixed``, episode ``i`` of every evaluation from
            the same seed (comparable across epochs), or ``continued``, deprl's: the test env is
            seeded once and every later episode continues its generator (new starts each time;
            see ``lit_rl.data.evaluation.Evaluator``).
        seed: env seed base; defaults to the run's ``seed_everything``.
        force_scale: weight of the actuator forces in the muscle states that DEP acts on
            (algorithms.md section 2; 0 uses lengths only). Muscle states are computed only when
            the module asks for them (``dep_mode`` > 0).
        terminal_muscle_range: an episode's final muscle state also enters each env's running
            min/max that normalises DEP's input, as deprl's ``Sequential`` workers read it
            (false: only the states acted on; DEP's inputs differ from the first episode end on,
            by up to 0.02 on myoLegWalk).
        worker_timeout: seconds an env worker (``parallel`` > 1) may take for one step before it
            counts as hung and is replaced (see ``lit_rl.envs.ParallelEnvs``).
        record_video: render the first test episode(s) of each evaluation offscreen into
            ``<run_dir>/videos/<env_steps>.mp4`` and log them to W&B (``lit_rl.training.video``); off by default.
        video: how episodes are recorded (``lit_rl.training.video.VideoConfig``); its defaults when omitted.
    """

    def __init__(
        self,
        env: EnvConfig,
        test_env: EnvConfig | None = None,
        parallel: int = 1,
        sequential: int = 1,
        replay: ReplayConfig | None = None,
        total_steps: int = 1_000_000,
        epoch_steps: int = 20_000,
        save_steps: int = 100_000,
        test_episodes: int = 5,
        test_seeds: TestSeeds = "fixed",
        seed: int | None = None,
        force_scale: float = 0.0,
        terminal_muscle_range: bool = False,
        worker_timeout: float = 60.0,
        record_video: bool = False,
        video: VideoConfig | None = None,
    ):
        super().__init__()
        replay = replay or ReplayConfig()
        counts = {"total_steps": total_steps, "epoch_steps": epoch_steps, "save_steps": save_steps}
        for key, value in {**counts, "parallel": parallel, "sequential": sequential}.items():
            if value < 1:
                raise ValueError(f"{key} must be >= 1, got {value}")
        if save_steps < epoch_steps:
            raise ValueError(f"save_steps ({save_steps}) must be >= epoch_steps ({epoch_steps})")
        if test_episodes < 0:
            raise ValueError(f"test_episodes must be >= 0, got {test_episodes}")
        if worker_timeout <= 0:
            raise ValueError(f"worker_timeout must be > 0 seconds, got {worker_timeout}")
        if replay.size // (parallel * sequential) < replay.return_steps:
            raise ValueError(
                f"replay.size {replay.size} is too small: it needs at least return_steps ({replay.return_steps}) "
                f"rows for each of the {parallel * sequential} envs"
            )
        self.env_config = env
        self.test_env_config = test_env or env
        self.parallel, self.sequential = parallel, sequential
        self.num_envs = parallel * sequential
        self.replay_config = replay
        self.test_episodes, self.test_seeds = test_episodes, test_seeds
        self._seed = seed
        self.force_scale = force_scale
        self.terminal_muscle_range = terminal_muscle_range
        self.worker_timeout = worker_timeout
        self.video = VideoRecorder(video) if record_video else None
        if self.video is not None:
            if test_episodes < 1:
                raise ValueError("record_video needs test_episodes >= 1")
            configure_rendering()  # sets MUJOCO_GL before the probe below imports mujoco
        # Spaces are needed before setup() (CLI links), so probe one env now: an env that cannot be
        # trained (not made or reset here, non-Box spaces) is refused here, in one line.
        self.env_probe = probe_env(env, self.seed)
        self._action_map = ActionMap(self.env_probe.action_space, env)
        self.observation_dim = self.env_probe.observation_dim
        energy = replay.adaptive_energy
        self.energy = AdaptiveEnergy(energy, self.observation_dim) if energy is not None else None

        self.progress = Progress()
        self.schedule = Schedule(
            total_steps,
            epoch_steps,
            save_steps,
            replay.steps_before_batches,
            replay.steps_between_batches,
            replay.batch_iterations,
            replay.phase_clock,
        )
        self.replay: ReplayBuffer | None = None  # this rank's, when fitting
        self.collector: Collector | None = None  # when fitting
        self.evaluator: Evaluator | None = None
        self.actor: Actor | None = None  # acts around the LightningModule's policy, from setup()
        self.view = RolloutView(self)
        self._at_cut = True
        self.world_size, self.global_rank = 1, 0  # set in setup() from the trainer

    # ----------------------------------------------------------------- spaces (CLI links)

    @property
    def action_bounds(self) -> list[list[float]]:
        """[low, high] of the agent's action space (``[-1, 1]`` with ``scaled_actions``)."""
        space = self._action_map.agent_space
        return [space.low.tolist(), space.high.tolist()]

    @property
    def seed(self) -> int:
        if self._seed is not None:
            return self._seed
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    # ----------------------------------------------------------------- counts

    @property
    def env_steps(self) -> int:
        """Transitions collected, summed over envs and ranks."""
        return self.progress.env_steps

    @property
    def total_steps(self) -> int:
        return self.schedule.total_steps

    @property
    def epoch_steps(self) -> int:
        return self.schedule.epoch_steps

    @property
    def save_steps(self) -> int:
        return self.schedule.save_steps

    @property
    def transitions_per_row(self) -> int:
        """Global env steps per replay row: one vector step of every rank's envs."""
        return self.num_envs * self.world_size

    @property
    def batch_size(self) -> int:
        """This rank's share of ``replay.batch_size``."""
        return self.replay_config.batch_size // self.world_size

    @property
    def done(self) -> bool:
        return self.schedule.done(self.progress.env_steps)

    @property
    def at_cut(self) -> bool:
        """True while the rollout is paused at a phase or epoch boundary: all collected data has
        been trained on per the schedule and nothing was fetched ahead, so a checkpoint is exact."""
        return self._at_cut

    # ----------------------------------------------------------------- lifecycle

    @property
    def policy(self) -> Policy:
        return self.trainer.lightning_module

    def setup(self, stage: str) -> None:
        self.world_size, self.global_rank = self.trainer.world_size, self.trainer.global_rank
        if self.replay_config.batch_size % self.world_size:
            raise ValueError(
                f"replay.batch_size {self.replay_config.batch_size} must be divisible by the {self.world_size} "
                "training processes: each samples an equal share of every batch"
            )
        if (problem := self.env_problem(self.policy)) is not None:
            raise EnvUnsupported(problem)
        if self.actor is None or self.actor.policy is not self.policy:
            self.actor = Actor(self.policy, self.env_probe.dep.action_dims)
        if self.evaluator is None:
            self.evaluator = Evaluator(
                self.test_env_config, self.test_episodes, self.seed, self.progress, self.force_scale, self.video,
                self.test_seeds,
            )  # fmt: skip
        if stage == "fit" and self.collector is None:
            self._setup_collection()

    def _setup_collection(self) -> None:
        policy, actor = self.policy, self.actor
        if policy.evaluation_every is not None and policy.evaluation_every != self.schedule.epoch_steps:
            log.info("%s evaluates every %d env steps: that is the epoch length", type(policy).__name__,
                     policy.evaluation_every)  # fmt: skip
            self.schedule.epoch_steps = policy.evaluation_every
        self._warn_if_no_training(actor)
        seed = self.seed + self.global_rank * self.num_envs  # env j of rank r: as env r * E + j of one process
        args = (self.env_config, self.parallel, self.sequential, seed, actor.needs_muscle_states, self.force_scale)
        envs = make_vector_envs(
            *args,
            worker_timeout=self.worker_timeout,
            terminal_muscle_range=self.terminal_muscle_range,
            probe=self.env_probe,
        )
        if self.global_rank > 0:  # seed_everything gave every rank rank 0's noise and sampling stream
            torch.manual_seed(int(np.random.SeedSequence([self.seed, self.global_rank]).generate_state(1)[0]))
        cfg = self.replay_config
        self.replay = ReplayBuffer(
            cfg.size // self.world_size,
            self.num_envs,
            self.observation_dim,
            len(self.action_bounds[0]),
            cfg.return_steps,
            cfg.discount,
        )
        self.collector = Collector(
            self.progress, envs, self.replay, self.schedule, self.transitions_per_row, energy=self.energy
        )

    def replay_settings(self, world_size: int) -> dict:
        """What this run writes its replay files with, ``world_size`` processes each holding its
        share (``lit_rl.training.resume.REPLAY_SETTINGS``): a resume refuses a replay file written
        with others (``replay_file_problem``)."""
        cfg = self.replay_config
        return {
            "num_envs": self.num_envs,
            "observation_size": [self.observation_dim],
            "action_size": [len(self.action_bounds[0])],
            "rows": cfg.size // world_size // self.num_envs,
            "return_steps": cfg.return_steps,
            "discount": cfg.discount,
        }

    def env_problem(self, policy: Policy) -> str | None:
        """Why the env cannot be trained with ``policy``'s acting (DEP on a body without muscle
        states), as a one-line refusal; None: it can. ``setup`` raises it (``EnvUnsupported``)
        before any env steps."""
        return self.env_probe.dep_problem(policy.acting.dep_mode)

    def _warn_if_no_training(self, actor: Actor) -> None:
        # A budget that ends before the replay warm-up otherwise exits 0 after zero gradient
        # updates without a word (e.g. a deprl config, 200,000 warm-up steps, shrunk to a short run).
        schedule, step = self.schedule, self.transitions_per_row
        if actor.trains and schedule.first_phase(step) > schedule.last_step(step) and self.global_rank == 0:
            log.warning(
                "This run makes no gradient update: training starts after replay.steps_before_batches="
                "%d env steps (with steps_between_batches=%d, at env step %d), but total_steps=%d ends the "
                "run first. Lower data.init_args.replay.steps_before_batches or raise data.init_args.total_steps.",
                schedule.steps_before_batches, schedule.phases.every, schedule.first_phase(step),
                schedule.total_steps,
            )  # fmt: skip

    def teardown(self, stage: str) -> None:
        if self.collector is not None:
            self.collector.envs.close()
            self.collector = None
        if self.evaluator is not None:
            self.evaluator.close()
            self.evaluator = None

    def train_dataloader(self) -> _Iterable:
        return _Iterable(self._rollout)

    def val_dataloader(self) -> _Iterable:
        return _Iterable(self._test_episodes)

    def test_dataloader(self) -> _Iterable:
        return _Iterable(self._test_episodes)

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        # Lightning's generic dataclass traversal costs more than a small network's update.
        if isinstance(batch, Batch):
            return batch.to(device)
        if isinstance(batch, PhaseEnd | EpisodeResult):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    # ----------------------------------------------------------------- the rollout

    def sample(self, batch_size: int) -> Batch:
        batch = self.replay.sample(batch_size)
        if self.energy is not None:
            self.energy.relabel(batch)
        return batch

    def _phase_end(self, kind: str) -> Iterator[PhaseEnd]:
        """Yield a PhaseEnd; while Lightning holds it fetched ahead, a checkpoint records it (see
        ``Schedule.fetched_end``)."""
        self._at_cut = True
        self.schedule.fetched_end = kind
        yield PHASE_END
        self.schedule.fetched_end = None

    def _rollout(self) -> Iterator[Batch | PhaseEnd]:
        """One epoch: collect, and yield batches whenever the schedule triggers a phase."""
        schedule, collector = self.schedule, self.collector
        # Resumed from a checkpoint taken while a PhaseEnd was fetched ahead: yield it again, and
        # if it ended the epoch, end the epoch here (and so evaluate) as the uninterrupted run did.
        owed = schedule.fetched_end
        if owed is not None:
            yield from self._phase_end(owed)
            if owed == "epoch":
                return
        epoch_end = schedule.start_epoch(self.progress.env_steps)
        if not collector.started:
            collector.start()
        while True:
            while schedule.pending_batches > 0:
                self._at_cut = False
                batch = self.sample(self.batch_size)
                batch.last_in_phase = schedule.take_batch()
                yield batch
                if batch.last_in_phase:
                    yield from self._phase_end("phase")
            if self.progress.env_steps >= epoch_end:
                schedule.end_epoch()
                yield from self._phase_end("epoch")  # every epoch yields at least one item, so evaluation always runs
                return
            collector.collect(self.actor, epoch_end)

    def pop_train_metrics(self) -> dict[str, float]:
        """Metrics of the rollout since the last call (for the module to log), over all ranks
        (collective under DDP: every rank calls it at the same points)."""
        return self.collector.pop_metrics(self.policy.device)

    def _test_episodes(self) -> Iterator[EpisodeResult]:
        return self.evaluator.run(self.actor, self.trainer.global_rank, self.trainer.world_size, self.trainer)

    # ----------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        """See ``lit_rl.data.checkpoint_state`` (collective under DDP)."""
        return data_state(self.progress, self.schedule, self.collector, self.actor, self.energy, self.evaluator)

    def load_state_dict(self, state: dict) -> None:
        ckpt_path = str(self.trainer.ckpt_path)
        load_data_state(
            state, self.progress, self.schedule, self.collector, self.actor, self.energy, self.evaluator, ckpt_path
        )  # fmt: skip

    def save_replay(self, path) -> dict:
        """Write this rank's replay to ``path``; returns what a checkpoint records of it
        (``ReplayFiles.save``)."""
        return ReplayFiles.save(self.replay, path)


class RolloutView:
    """The ``DataView`` an algorithm reads (``OffPolicyAlgorithm.data``): counts, replay samples
    and recent transitions, nothing of the DataModule's own state."""

    def __init__(self, datamodule: RolloutDataModule):
        self._dm = datamodule

    @property
    def env_steps(self) -> int:
        return self._dm.env_steps

    @property
    def done(self) -> bool:
        return self._dm.done

    @property
    def batch_size(self) -> int:
        return self._dm.batch_size

    @property
    def discount(self) -> float:
        return self._dm.replay_config.discount

    @property
    def return_steps(self) -> int:
        return self._dm.replay_config.return_steps

    @property
    def relabels_rewards(self) -> bool:
        """Sampled rewards are relabelled (``replay.adaptive_energy``)."""
        return self._dm.energy is not None

    @property
    def transitions_per_row(self) -> int:
        return self._dm.transitions_per_row

    def pop_train_metrics(self) -> dict[str, float]:
        return self._dm.pop_train_metrics()

    @property
    def observation_low(self) -> torch.Tensor:
        return torch.as_tensor(self._dm.evaluator.observation_space.low, dtype=torch.float32).reshape(-1)

    @property
    def observation_high(self) -> torch.Tensor:
        return torch.as_tensor(self._dm.evaluator.observation_space.high, dtype=torch.float32).reshape(-1)

    def sample(self, batch_size: int) -> Batch:
        return self._dm.sample(batch_size)

    def recent(self, since: int | None = None) -> ReplayRows:
        replay = self._dm.replay
        count = replay.filled
        if since is not None:
            count = min(count, max(0, self.env_steps - since) // self.transitions_per_row)
        return replay.recent(count)

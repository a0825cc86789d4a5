"""The rollout DataModule: envs, replay and the collect/train schedule."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import lightning.pytorch as pl
import numpy as np
import torch

from lit_rl.data.energy import AdaptiveEnergy, AdaptiveEnergyConfig
from lit_rl.data.replay import Batch, ReplayBuffer
from lit_rl.distributed import add_rank_states, rank_state, sum_across_ranks
from lit_rl.envs import EnvConfig, MuscleState, VectorEnvs, make_env, make_vector_envs
from lit_rl.envs.make import ActionMap
from lit_rl.video import (
    EpisodeVideo,
    VideoConfig,
    VideoRecorder,
    configure_rendering,
    log_video,
    rendering_config,
    video_path,
)

if TYPE_CHECKING:
    from lit_rl.algos.base import OffPolicyAlgorithm

log = logging.getLogger(__name__)


@dataclass
class ReplayConfig:
    """deprl's ``Buffer`` arguments. Every count is in environment transitions summed over envs
    (and over processes under DDP: each of N ranks holds ``size / N`` transitions and samples
    ``batch_size / N`` of each batch, see ``lit_rl.distributed``).

    Args:
        size: transitions the ring holds (split evenly over the env columns).
        return_steps: n of the n-step return.
        discount: gamma.
        batch_size: transitions per gradient batch.
        steps_before_batches: no training before this many transitions were collected.
        steps_between_batches: after that, a training phase every time this many new
            transitions have arrived.
        batch_iterations: gradient batches per training phase.
        adaptive_energy: relabel sampled rewards with an adaptive muscle-energy cost
            (deprl's ``AdaptiveEnergyBuffer``, see ``AdaptiveEnergyConfig``); off when omitted.
    """

    size: int = 1_000_000
    return_steps: int = 1
    discount: float = 0.99
    batch_size: int = 100
    steps_before_batches: int = 10_000
    steps_between_batches: int = 50
    batch_iterations: int = 50
    adaptive_energy: AdaptiveEnergyConfig | None = None

    def __post_init__(self):
        for key in ("size", "return_steps", "batch_size", "steps_between_batches", "batch_iterations"):
            if getattr(self, key) < 1:
                raise ValueError(f"replay.{key} must be >= 1, got {getattr(self, key)}")
        if self.steps_before_batches < 0:
            raise ValueError(f"replay.steps_before_batches must be >= 0, got {self.steps_before_batches}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"replay.discount must be in [0, 1], got {self.discount}")


class PhaseEnd:
    """Yielded after each training phase and at each epoch end; ``training_step`` skips it.

    Lightning fetches one item ahead. Because the item after a phase's last batch is this
    marker, the envs are stepped only after the whole phase was trained on, and a checkpoint
    taken while the marker is pending sees a consistent state (see ``at_cut``)."""

    def __repr__(self) -> str:
        return "PhaseEnd()"


PHASE_END = PhaseEnd()


@dataclass
class RolloutContext:
    """What the data side knows when it asks for actions."""

    env_steps: int  # transitions collected so far, summed over envs
    episodes: int  # training episodes finished so far
    episode_starts: torch.Tensor  # [E] bool: the env's episode just began
    muscle_states: torch.Tensor | None  # [E, m] when the module needs them (DEP)
    steps_before_batches: int  # the replay's warm-up: DEP modes 1-3 explore until then


@dataclass
class EpisodeResult:
    episode_return: float
    episode_length: int


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
        epoch_steps: environment transitions per epoch (an evaluation follows each epoch).
        save_steps: environment transitions between periodic checkpoints.
        test_episodes: episodes per evaluation.
        seed: env seed base; defaults to the run's ``seed_everything``.
        force_scale: weight of the actuator forces in the muscle states that DEP acts on
            (algorithms.md section 2; 0 uses lengths only). Muscle states are computed only when
            the module asks for them (``dep_mode`` > 0).
        worker_timeout: seconds an env worker (``parallel`` > 1) may take for one step before it
            counts as hung and is replaced (see ``lit_rl.envs.ParallelEnvs``).
        record_video: render the first test episode(s) of each evaluation offscreen into
            ``<run_dir>/videos/<env_steps>.mp4`` and log them to W&B (``lit_rl.video``); off by default.
        video: how episodes are recorded (``lit_rl.video.VideoConfig``); its defaults when omitted.
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
        seed: int | None = None,
        force_scale: float = 0.0,
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
        self.total_steps = total_steps
        self.epoch_steps = epoch_steps
        self.save_steps = save_steps
        self.test_episodes = test_episodes
        self._seed = seed
        self.force_scale = force_scale
        self.worker_timeout = worker_timeout
        self.video = VideoRecorder(video) if record_video else None
        if self.video is not None:
            if test_episodes < 1:
                raise ValueError("record_video needs test_episodes >= 1")
            configure_rendering()  # sets MUJOCO_GL before the probe below imports mujoco
        # Spaces are needed before setup() (CLI links), so probe one env now.
        probe = make_env(env)
        self._action_map = ActionMap(probe.action_space, env)
        self.observation_dim = int(np.prod(probe.observation_space.shape))
        probe.close()
        energy = self.replay_config.adaptive_energy
        self.energy = AdaptiveEnergy(energy, self.observation_dim) if energy is not None else None

        self.envs: VectorEnvs | None = None
        self.test_env = None
        self.replay: ReplayBuffer | None = None
        self.env_steps = 0  # transitions collected, summed over envs
        self.episodes = 0  # finished training episodes
        self.faults = 0  # simulator faults survived (see EnvGroup)
        self._last_phase_steps = 0
        self._pending_batches = 0
        self._at_cut = True
        self._observations: np.ndarray | None = None
        self._muscle_states: np.ndarray | None = None
        self._episode_starts: np.ndarray | None = None
        self._restored = False
        self._epoch_end: int | None = None  # env step at which the running epoch ends
        self._replay_record: dict = {}  # set while a checkpoint that owns a replay file is written
        self._finished_since_log: list[tuple[float, int]] = []
        self._log_clock = (0, time.perf_counter())
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

    # ----------------------------------------------------------------- lifecycle

    @property
    def transitions_per_row(self) -> int:
        """Global env steps per replay row: one vector step of every rank's envs."""
        return self.num_envs * self.world_size

    @property
    def batch_size(self) -> int:
        """This rank's share of ``replay.batch_size``."""
        return self.replay_config.batch_size // self.world_size

    def setup(self, stage: str) -> None:
        self.world_size, self.global_rank = self.trainer.world_size, self.trainer.global_rank
        if self.replay_config.batch_size % self.world_size:
            raise ValueError(
                f"replay.batch_size {self.replay_config.batch_size} must be divisible by the {self.world_size} "
                "training processes: each samples an equal share of every batch"
            )
        if self.test_env is None:
            if self.video is None:
                self.test_env = make_env(self.test_env_config)
            else:
                self.test_env = make_env(rendering_config(self.test_env_config))
                self.video.check(self.test_env, self.seed + 1_000_000)
            self._test_action_map = ActionMap(self.test_env.action_space, self.test_env_config)
        if stage == "fit" and self.envs is None:
            muscles = self.trainer.lightning_module.needs_muscle_states
            seed = self.seed + self.global_rank * self.num_envs  # env j of rank r: as env r * E + j of one process
            args = (self.env_config, self.parallel, self.sequential, seed, muscles, self.force_scale)
            self.envs = make_vector_envs(*args, worker_timeout=self.worker_timeout)
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

    def teardown(self, stage: str) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None
        if self.test_env is not None:
            self.test_env.close()
            self.test_env = None

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

    # ----------------------------------------------------------------- collection

    @property
    def agent(self) -> OffPolicyAlgorithm:
        return self.trainer.lightning_module

    @property
    def at_cut(self) -> bool:
        """True while the rollout is paused at a phase or epoch boundary: all collected data has
        been trained on per the schedule and nothing was fetched ahead, so a checkpoint is exact."""
        return self._at_cut

    @property
    def done(self) -> bool:
        return self.env_steps >= self.total_steps

    def _rollout(self) -> Iterator[Batch | PhaseEnd]:
        """One epoch: collect, and yield batches whenever the schedule triggers a phase."""
        # A checkpoint taken at an epoch's last cut resumes into that epoch: end it (and so evaluate)
        # as the uninterrupted run did.
        epoch_end = self._epoch_end
        if epoch_end is None or epoch_end < self.env_steps:
            epoch_end = min(self.total_steps, (self.env_steps // self.epoch_steps + 1) * self.epoch_steps)
        self._epoch_end = epoch_end
        if self._observations is None:
            self._start_envs()
        while True:
            while self._pending_batches > 0:
                self._pending_batches -= 1
                self._at_cut = False
                batch = self.replay.sample(self.batch_size)
                if self.energy is not None:
                    self.energy.relabel(batch)
                batch.last_in_phase = self._pending_batches == 0
                yield batch
                if self._pending_batches == 0:
                    self._at_cut = True
                    yield PHASE_END
            if self.env_steps >= epoch_end:
                self._at_cut = True
                self._epoch_end = None
                yield PHASE_END  # every epoch yields at least one item, so evaluation always runs
                return
            with self._acting_threads():
                self._collect_until_phase(epoch_end)

    @contextmanager
    def _acting_threads(self) -> Iterator[None]:
        """Act with one intra-op thread while env workers step: acting batches are small, and
        idle OpenMP threads spin-wait on the cores the workers need (about 15% of the collection
        rate with 2 workers on 2 cores)."""
        threads = torch.get_num_threads()
        if self.parallel == 1 or threads == 1:
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _start_envs(self) -> None:
        if self._restored:
            self.replay.mark_episode_boundary()
        self._observations = self.envs.reset()
        self._muscle_states = self.envs.current_muscle_states()
        self._episode_starts = np.ones(self.num_envs, bool)
        self._log_clock = (self.env_steps, time.perf_counter())  # env steps/s from here, not from start-up

    def _collect_until_phase(self, epoch_end: int) -> None:
        cfg = self.replay_config
        agent = self.agent
        device = agent.device
        # Each transition is written to the replay while the env workers take the next step;
        # the last one is written before returning, so training and checkpoints see them all.
        unstored: tuple | None = None
        try:
            while self.env_steps < epoch_end:
                obs = torch.from_numpy(self._observations)
                context = RolloutContext(
                    env_steps=self.env_steps,
                    episodes=self.episodes,
                    episode_starts=torch.from_numpy(self._episode_starts),
                    muscle_states=None if self._muscle_states is None else torch.from_numpy(self._muscle_states),
                    steps_before_batches=cfg.steps_before_batches,
                )
                with torch.no_grad():
                    actions = agent.act(obs.to(device), context).cpu()
                self.envs.step_async(actions.numpy())
                if unstored is not None:
                    self.replay.store(*unstored)
                    unstored = None
                step = self.envs.step_wait()
                if agent.trains:
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
                self.env_steps += self.transitions_per_row
                self.episodes += len(step.finished)
                self.faults += step.faults
                self._finished_since_log.extend(step.finished)
                if self.energy is not None and step.resets[0]:
                    self.energy.episode_finished(step.finished[0][0])  # deprl: the first env's scores
                if (
                    agent.trains
                    and self.env_steps >= cfg.steps_before_batches
                    and self.env_steps - self._last_phase_steps >= cfg.steps_between_batches
                ):
                    self._last_phase_steps = self.env_steps
                    self._pending_batches = cfg.batch_iterations
                    return
        finally:
            if unstored is not None:
                self.replay.store(*unstored)

    def pop_train_metrics(self) -> dict[str, float]:
        """Metrics of the rollout since the last call (for the module to log), over all ranks
        (collective under DDP: every rank calls it on the same logging steps)."""
        steps, clock = self._log_clock
        now = time.perf_counter()
        finished = np.array(self._finished_since_log, np.float64).reshape(-1, 2)
        totals = torch.tensor(
            [len(self.replay), self.faults, self.episodes, len(finished), *finished.sum(0)],
            dtype=torch.float64,
            device=self.agent.device,
        )
        replay_size, faults, episodes, count, return_sum, length_sum = sum_across_ranks(totals).tolist()
        metrics = {"env_steps": float(self.env_steps), "replay/size": replay_size, "env/faults": faults}
        if now > clock and self.env_steps > steps:
            metrics["perf/env_steps_per_s"] = (self.env_steps - steps) / (now - clock)
        if count:
            metrics["train/episode_return"] = return_sum / count
            metrics["train/episode_length"] = length_sum / count
            metrics["train/episodes"] = episodes
        self._finished_since_log = []
        self._log_clock = (self.env_steps, now)
        if self.energy is not None:
            metrics.update(self.energy.metrics())
        return metrics

    # ----------------------------------------------------------------- evaluation

    def _test_episodes(self) -> Iterator[EpisodeResult]:
        """Play ``test_episodes`` episodes with the deterministic policy (this rank's share under
        DDP). Episode ``i`` always starts from seed ``seed + 1_000_000 + i``, so evaluations are
        comparable across epochs and numbers of processes."""
        agent = self.agent
        muscles = None
        if agent.dep_mode == 4:  # PureDep is evaluated with DEP, which acts on muscle states
            muscles = MuscleState(len(MuscleState.read(self.test_env)[0]), self.force_scale)
        for index in range(self.trainer.global_rank, self.test_episodes, self.trainer.world_size):
            obs, _ = self.test_env.reset(seed=self.seed + 1_000_000 + index)
            video = self._start_video(index)
            total, length, done = 0.0, 0, False
            while not done:
                obs_t = torch.as_tensor(np.asarray(obs, np.float32).reshape(1, -1), device=agent.device)
                muscle_t = None
                if muscles is not None:
                    muscle_t = torch.as_tensor(muscles(*MuscleState.read(self.test_env)), dtype=torch.float32)[None]
                with torch.no_grad():
                    action = agent.act_for_evaluation(obs_t, muscle_t)[0].cpu().numpy()
                try:
                    obs, reward, terminated, truncated, _ = self.test_env.step(self._test_action_map(action))
                    fault = not (np.isfinite(obs).all() and np.isfinite(reward))
                except Exception:  # noqa: BLE001 - a simulator fault ends the test episode, as in training
                    fault = True
                if fault:
                    log.warning("simulator fault in test episode %d: the episode ends there", index)
                    self.faults += 1
                    reward, terminated, truncated = 0.0, True, False
                total += float(reward)
                length += 1
                done = terminated or truncated
                if video is not None and not fault:
                    video.capture(self.test_env)
            if video is not None:
                self._finish_video(video, index)
            yield EpisodeResult(total, length)

    def _start_video(self, index: int) -> EpisodeVideo | None:
        if self.video is None or index >= self.video.config.episodes or not self.trainer.is_global_zero:
            return None
        # default_root_dir is the run directory under the CLI
        return self.video.start(self.test_env, video_path(self.trainer.default_root_dir, self.env_steps, index))

    def _finish_video(self, video: EpisodeVideo, index: int) -> None:
        path = video.finish()
        log.info("test episode %d video: %s (%d frames at %.3g fps)", index, path, video.frames, video.fps)
        log_video(self.trainer, path, self.env_steps, index)

    # ----------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        """The schedule (the same on every rank) and this rank's envs, RNGs and replay file; under
        DDP every rank's part too (``lit_rl.distributed.add_rank_states``; collective)."""
        shared = {
            "env_steps": self.env_steps,
            "last_phase_steps": self._last_phase_steps,
            "pending_batches": self._pending_batches,
            "epoch_end": self._epoch_end,
        }
        local = {
            "episodes": self.episodes,
            "faults": self.faults,
            "torch_rng": torch.get_rng_state(),
            "replay_file": None,
            **self._replay_record,
        }
        if torch.cuda.is_available():
            local["cuda_rng"] = torch.cuda.get_rng_state_all()
        if self.envs is not None:
            local["env_rng"] = self.envs.rng_states()
        if self.energy is not None:
            local["adaptive_energy"] = self.energy.state_dict()
        return add_rank_states(shared, local)

    def load_state_dict(self, state: dict) -> None:
        self.env_steps = state["env_steps"]
        self._last_phase_steps = state["last_phase_steps"]
        self._pending_batches = state["pending_batches"]
        self._epoch_end = state.get("epoch_end")
        self._log_clock = (self.env_steps, time.perf_counter())
        if self.envs is not None:  # fit: this rank's own part
            state = rank_state(state, self.global_rank, self.world_size, f"checkpoint {self.trainer.ckpt_path}")
        self.episodes = state["episodes"]
        self.faults = state.get("faults", 0)
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if self.energy is not None and "adaptive_energy" in state:
            self.energy.load_state_dict(state["adaptive_energy"])
        if self.envs is None:  # validate/test: no training envs, no replay
            return
        if "env_rng" in state:
            self.envs.set_rng_states(state["env_rng"])
        self._restored = True
        self._observations = None  # envs restart with fresh episodes
        replay_file = state.get("replay_file")
        if replay_file is None:
            log.warning(
                "This checkpoint holds no replay buffer (full_save was off or it is a periodic "
                "checkpoint): training resumes with an empty buffer."
            )
            self._pending_batches = 0
            return
        path = Path(self.trainer.ckpt_path).parent / replay_file
        if not path.is_file():
            raise FileNotFoundError(
                f"checkpoint {self.trainer.ckpt_path} needs its replay file {path}, which is missing"
            )
        size = path.stat().st_size
        if "replay_bytes" in state and size != state["replay_bytes"]:
            raise ValueError(
                f"replay file {path} has {size} bytes, checkpoint {self.trainer.ckpt_path} recorded "
                f"{state['replay_bytes']}: it is truncated or from another save"
            )
        self.replay.load(path, token=state.get("replay_token"))
        if (self.replay.index, self.replay.filled) != tuple(state["replay_position"]):
            raise ValueError(
                f"replay file {path} was written at a different step than checkpoint {self.trainer.ckpt_path}; "
                "they do not belong together"
            )

    def save_replay(self, path: Path) -> dict:
        """Write the replay to ``path``. Returns what a checkpoint records of it: the file's name,
        size, replay position and a random token stored in the file; it loads the file only if all
        of them match (see ``recording_replay``)."""
        token = secrets.token_hex(8)
        size = self.replay.save(path, token)
        return {
            "replay_file": path.name,
            "replay_position": [self.replay.index, self.replay.filled],
            "replay_token": token,
            "replay_bytes": size,
        }

    @contextmanager
    def recording_replay(self, record: dict) -> Iterator[None]:
        """A checkpoint saved inside the block names the replay file of ``record``."""
        self._replay_record = record
        try:
            yield
        finally:
            self._replay_record = {}

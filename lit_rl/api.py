"""lit_rl from Python: ``train`` a config, ``load_policy`` a run, ``evaluate`` it (docs/api.md).

``load_policy(run_dir)(observation)`` returns env-ready actions: the checkpoint's ``act_greedy``
followed by the run's env action mapping (``lit_rl.envs.ActionMap``, the one training and test
episodes use), so a policy loaded here scores what ``python -m lit_rl test`` reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml

from lit_rl.algos.base import OffPolicyAlgorithm
from lit_rl.commands.cli import AlreadyFinished, ConfigError, LitRLCLI
from lit_rl.commands.export import ExportError, checkpoint_of, load_algorithm
from lit_rl.data.evaluation import TEST_SEED_OFFSET
from lit_rl.envs import ActionMap, EnvConfig, make_env
from lit_rl.envs.episode import play_episode
from lit_rl.training.files import run_dir_of
from lit_rl.training.video import VideoRecorder, configure_rendering, rendering_config

__all__ = [
    "AlreadyFinished",
    "ConfigError",
    "Evaluation",
    "Policy",
    "TrainResult",
    "evaluate",
    "load_policy",
    "train",
]


class Policy:
    """A trained policy: ``policy(observation)`` gives the env's actions, deterministically.

    Attributes:
        module: the algorithm (a LightningModule, in eval mode, on the CPU; ``policy.module.to("cuda")``
            moves it and the policy follows).
        env_config, test_env_config: the run's training and test envs (``lit_rl.envs.EnvConfig``).
        env_id: ``env_config.id``.
        test_seed: the seed of the run's first test episode; test episode ``i`` starts from ``test_seed + i``.
        config: the run's ``config.yaml``, as a dict.
        ckpt_path: the checkpoint the weights came from.
    """

    def __init__(self, module: OffPolicyAlgorithm, config: dict, ckpt_path: Path):
        data = config["data"]["init_args"]
        self.module, self.config, self.ckpt_path = module, config, ckpt_path
        self.env_config = EnvConfig(**data["env"])
        self.test_env_config = EnvConfig(**data["test_env"]) if data.get("test_env") else self.env_config
        seed = data.get("seed")
        if seed is None:  # the DataModule's default: seed_everything (config.yaml holds the one drawn for `true`)
            everything = config.get("seed_everything")
            seed = everything if isinstance(everything, int) and not isinstance(everything, bool) else 0
        self.test_seed = seed + TEST_SEED_OFFSET
        self.action_map = ActionMap.of(self.env_config)

    @property
    def env_id(self) -> str:
        return self.env_config.id

    def make_env(self) -> gym.Env:
        """The run's test env, made as the DataModule makes it (``make_kwargs``, ``env_args``, ``imports``)."""
        return make_env(self.test_env_config)

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """Observation ``[O]`` -> action ``[A]``, or a batch ``[B, O]`` -> ``[B, A]`` (float32)."""
        observation = np.asarray(observation, np.float32)
        single = observation.ndim == 1
        batch = torch.as_tensor(observation.reshape(1 if single else len(observation), -1), device=self.module.device)
        with torch.no_grad():
            actions = self.action_map(self.module.act_greedy(batch).cpu().numpy())
        return actions[0] if single else actions

    def __repr__(self) -> str:
        return f"Policy({type(self.module).__name__} on {self.env_id}, {self.ckpt_path})"


def load_policy(path: str | Path) -> Policy:
    """The policy of a run directory (its ``checkpoints/last.ckpt``) or of one checkpoint file of a
    run; either way the run's ``config.yaml`` (``<run_dir>/config.yaml``) gives the env and its
    action mapping. Raises ``ConfigError`` for a missing or unreadable file."""
    path = Path(path)
    ckpt_path = checkpoint_of(path)
    if not ckpt_path.is_file():
        raise ConfigError(f"{path}: no checkpoint {ckpt_path}")
    config_path = run_dir_of(ckpt_path) / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{ckpt_path}: the run's config {config_path} is missing (it names the env)")
    try:
        module = load_algorithm(ckpt_path)
    except ExportError as error:  # its messages name the checkpoint; one exception type for API users
        raise ConfigError(str(error)) from error
    return Policy(module, yaml.safe_load(config_path.read_text()), ckpt_path)


@dataclass
class Evaluation:
    """Returns and lengths of evaluation episodes; ``std`` is the population std, as ``test/episode_return_std``."""

    returns: list[float]
    lengths: list[int]
    seeds: list[int]
    mean: float = field(init=False)
    std: float = field(init=False)

    def __post_init__(self):
        self.mean = float(np.mean(self.returns))
        self.std = float(np.std(self.returns))


def evaluate(
    policy: Policy,
    episodes: int = 10,
    seed: int | None = None,
    env: gym.Env | EnvConfig | None = None,
    video: str | Path | None = None,
) -> Evaluation:
    """Play ``episodes`` episodes with ``policy`` and return their returns and lengths.

    Episode ``i`` starts from seed ``seed + i``; with ``seed=None``, from the run's test episode
    seeds, so the first ``test_episodes`` of them are the episodes ``validate``/``test`` play and
    their mean is the run's ``test/episode_return``. ``env``: the run's test env by default, or an
    ``EnvConfig``, or a made env (not closed here). ``video``: an MP4 path; the first episode is
    recorded there (``lit_rl.training.video``; a made env needs ``render_mode="rgb_array"``). A simulator
    fault ends an episode as in training and test episodes (``lit_rl.envs.guarded_step``).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    first = policy.test_seed if seed is None else seed
    recorder = VideoRecorder() if video is not None else None
    own_env = not isinstance(env, gym.Env)
    if own_env:
        config = env or policy.test_env_config
        if recorder is not None:
            configure_rendering()  # before the env is made: MuJoCo reads MUJOCO_GL when first imported
            config = rendering_config(config)
        env = make_env(config)
    returns, lengths, seeds = [], [], [first + i for i in range(episodes)]
    try:
        if recorder is not None:
            recorder.check(env, first)
        for index, episode_seed in enumerate(seeds):
            record = recorder is not None and index == 0
            episode = play_episode(
                env, policy, episode_seed, (lambda e: recorder.start(e, Path(video))) if record else None
            )
            if episode.video is not None:
                episode.video.finish()
            returns.append(episode.episode_return)
            lengths.append(episode.length)
    finally:
        if own_env:
            env.close()
    return Evaluation(returns, lengths, seeds)


@dataclass
class TrainResult:
    """``run_dir``: the run directory (``config.yaml``, ``checkpoints/``); ``metrics``: the last value
    logged of each metric (``test/episode_return``, ``env_steps``, ``loss/actor``, ...)."""

    run_dir: Path
    metrics: dict[str, float]


def override_args(overrides: dict[str, Any] | list[str] | tuple[str, ...] | None) -> list[str]:
    """``fit`` arguments for ``train``'s overrides: a dict of dotted keys and values, or a list of
    ``"key=value"`` strings (as ``sweep --set`` and the command line write them; the value is read
    as ``fit`` reads it). Anything else is a ``ConfigError``."""
    args: list[str] = []
    if overrides is None:
        return args
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            # jsonargparse reads each value as YAML: JSON is YAML, and strings go as typed (class paths)
            args += [f"--{str(key).removeprefix('--')}", value if isinstance(value, str) else json.dumps(value)]
        return args
    if not isinstance(overrides, list | tuple):
        raise ConfigError(
            f"overrides: a dict {{'key': value}} or a list of 'key=value' strings, not {type(overrides).__name__}"
        )
    for item in overrides:
        key, equals, value = item.partition("=") if isinstance(item, str) else ("", "", "")
        if not equals or not key.removeprefix("--"):
            raise ConfigError(
                f"overrides: {item!r} is not 'key=value' (e.g. 'model.init_args.actor_lr=3e-4'); or give a dict"
            )
        args += [f"--{key.removeprefix('--')}", value]
    return args


def train(
    config: str | Path,
    overrides: dict[str, Any] | list[str] | None = None,
    working_dir: str | Path | None = None,
    name: str | None = None,
) -> TrainResult:
    """``python -m lit_rl fit --config CONFIG --KEY VALUE ...`` in this process.

    ``overrides`` maps dotted config keys to values (``{"model.init_args.actor_lr": 3e-4,
    "trainer.logger": False}``), or lists them as ``"key=value"`` strings
    (``["model.init_args.actor_lr=3e-4"]``); ``working_dir`` and ``name`` default to the config's.
    As ``fit``, it resumes a run directory that has a ``last.ckpt`` (unless ``resume: false``).
    Each call logs to its own W&B run, which it finishes before it returns (or raises), so calls
    in a loop never log into each other's runs. Raises ``ConfigError`` for a bad config (unknown
    key, wrong type, unknown env id, unusable checkpoint or output directory, overrides that are
    neither a dict nor ``"key=value"`` strings) and ``AlreadyFinished`` for a run that has nothing
    left to train.
    """
    args = ["fit", "--config", str(config)]
    if working_dir is not None:
        args += ["--working_dir", str(working_dir)]
    if name is not None:
        args += ["--name", name]
    args += override_args(overrides)
    try:
        cli = LitRLCLI(args=args)  # a config error raises ConfigError (one line), as the CLI prints it
    except SystemExit as error:
        if isinstance(error.__context__, KeyboardInterrupt):  # Lightning answers Ctrl+C with sys.exit(1)
            raise KeyboardInterrupt from None
        raise
    return TrainResult(cli.run_dir, cli.last_metrics())

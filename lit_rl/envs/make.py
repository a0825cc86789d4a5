"""Making Gymnasium environments from config, deprl style."""

from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from lit_rl.envs.legacy import legacy_ids, make_legacy


@dataclass
class EnvConfig:
    """How to make one environment.

    Args:
        id: registered Gymnasium id, e.g. ``Pendulum-v1`` or ``myoLegWalk-v0``.
        make_kwargs: extra keyword arguments for ``gym.make`` (e.g. ``reset_type: random``,
            ``max_episode_steps: 1000``).
        env_args: attributes set on ``env.unwrapped`` after making it (deprl's ``env_args``).
        scaled_actions: deprl's flag. True: the agent acts in [-1, 1] and actions are rescaled
            to the env's bounds. False: actions pass through, clipped to the env's bounds.
        muscle_sigmoid: the agent acts in [-1, 1] and the env gets ``1 / (1 + exp(-5 (a - 0.5)))``
            of its action ``a``, unclipped: MyoSuite 2's muscle mapping (to 2.11), which deprl's
            values and published runs were made with (a policy sample above 1 still raises the
            activation, from 0.924 at 1 towards 1). For an env that takes raw activations in
            [0, 1]: MyoSuite 3's leg walk tasks (e.g. myoLegWalk-v0), where without this policy
            outputs below 0 are clipped to no activation, or its sigmoid tasks made with
            ``normalize_act: false`` (they clip to [-1, 1] before their own sigmoid). Excludes
            ``scaled_actions``.
        imports: modules imported before making the env, for the ids they register
            (e.g. ``[myosuite]``). Module names only, never code.
    """

    id: str
    make_kwargs: dict[str, Any] = field(default_factory=dict)
    env_args: dict[str, Any] = field(default_factory=dict)
    scaled_actions: bool = True
    muscle_sigmoid: bool = False
    imports: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.scaled_actions and self.muscle_sigmoid:
            raise ValueError(f"env {self.id}: scaled_actions and muscle_sigmoid both map actions; set one of them")


# How to install the env packages the shipped configs import (a missing one is named with its hint).
INSTALL_HINTS = {
    "myosuite": "pip install myosuite==3.0.0",
    "sconegym": (
        "sconegym is not on PyPI: install SCONE with the Hyfydy engine (https://scone.software), then clone "
        "https://github.com/tgeijten/sconegym and run `pip install -e .` in it"
    ),
}


def import_env_modules(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as error:
            package = name.split(".")[0]
            hint = INSTALL_HINTS.get(package, "install it or remove it from `imports`")
            raise ImportError(
                f"env import {name!r} failed: the package {package!r} is missing or broken ({error}). {hint}"
            ) from error


class EnvUnsupported(ValueError):
    """An env lit_rl cannot train on, found before training starts: the message is one line that
    says why and what to do (``python -m lit_rl fit`` prints it as its error)."""


# Exception classes (in an error's chain) that mean the env tried to reach a server: MyoSuite's
# motion-data tasks download from the Hugging Face hub when they are made or reset.
NETWORK_ERRORS = ("ConnectError", "ConnectionError", "LocalEntryNotFoundError", "HTTPError", "URLError", "gaierror",
                  "ConnectTimeout", "OfflineModeIsEnabled")  # fmt: skip


def _needs_network(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if any(klass.__name__ in NETWORK_ERRORS for klass in type(error).__mro__):
            return True
        error = error.__cause__ or error.__context__
    return False


def env_failure(config: EnvConfig, doing: str, error: BaseException) -> EnvUnsupported:
    """The one-line ``EnvUnsupported`` for an env that raised ``error`` while being ``doing``
    (``made``, ``reset``): the error's first line and what to do."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0][:240]  # its first sentence
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if _needs_network(error):
        hint = (
            "it downloads data when it is made or reset, and the server cannot be reached from here: make it once "
            "on a machine with network access (the download is cached), or train another env"
        )
    else:
        imports = "".join(f", {name}" for name in config.imports)
        command = f"import gymnasium as gym{imports}; gym.make('{config.id}').reset()"
        hint = f'to see the whole error: python -c "{command}"'
    return EnvUnsupported(f"env {config.id} cannot be {doing} here ({text}); {hint}")


def check_spaces(env_id: str, env: gym.Env) -> None:
    """lit_rl's algorithms observe and act in Box (continuous vector) spaces; anything else is
    refused in one line (a Dict of actions first: a multi-agent env, whose observations are a Dict too)."""
    spaces = [("observation", env.observation_space), ("action", env.action_space)]
    if isinstance(env.action_space, gym.spaces.Dict):
        spaces.reverse()
    for which, space in spaces:
        if not isinstance(space, gym.spaces.Box):
            shown = " ".join(str(space).split())
            shown = shown if len(shown) <= 120 else shown[:117] + "..."
            multi = isinstance(space, gym.spaces.Dict) and which == "action"
            hint = (
                "it is a multi-agent env (an action per agent), and lit_rl trains one agent: choose a single-agent task"
                if multi
                else "wrap it into a Box space in an env of your own (gymnasium.wrappers.FlattenObservation for a "
                "Dict observation), or choose a task with Box spaces"
            )
            raise EnvUnsupported(
                f"env {env_id}: lit_rl trains on Box (continuous) observation and action spaces, but its {which} "
                f"space is {shown}; {hint}"
            )


def make_env(config: EnvConfig) -> gym.Env:
    """Make one env: imports, ``gym.make`` with the extra kwargs, then ``env_args``. An env that
    cannot be made here, or whose spaces are not Box, raises ``EnvUnsupported`` (one line)."""
    import_env_modules(config.imports)
    if config.id in gym.registry:
        make = lambda: gym.make(config.id, **config.make_kwargs)  # noqa: E731
    elif config.id in (old_ids := legacy_ids()):
        make = lambda: make_legacy(config.id, config.make_kwargs)  # noqa: E731
    else:
        close = difflib.get_close_matches(config.id, [*gym.registry, *old_ids], n=5, cutoff=0.5)
        hint = f" Closest registered ids: {', '.join(close)}." if close else ""
        raise gym.error.NameNotFound(
            f"Unknown environment id {config.id!r}.{hint} "
            "If it is registered by a package, list that package under `imports`."
        )
    try:
        env = make()
    except (gym.error.Error, ImportError):  # one line already (the CLI prints them as its error)
        raise
    except Exception as error:  # noqa: BLE001 - whatever the env's constructor raised: one line, the cause chained
        raise env_failure(config, "made", error) from error
    try:
        check_spaces(config.id, env)
    except EnvUnsupported:
        env.close()
        raise
    for key, value in config.env_args.items():
        if not hasattr(env.unwrapped, key):
            raise AttributeError(f"{config.id}: env_args key {key!r} is not an attribute of the env")
        setattr(env.unwrapped, key, value)
    return env


# |a| beyond which the activation is 0 or 1 to float32 precision; the bound keeps exp(-5 (a - 0.5)) finite
SIGMOID_BOUND = 16.0


class ActionMap:
    """Maps the agent's actions to the env's action bounds (``scaled_actions``, ``muscle_sigmoid``)."""

    def __init__(self, env_space: gym.spaces.Box, config: EnvConfig):
        self.low = env_space.low.astype(np.float32)
        self.high = env_space.high.astype(np.float32)
        self.scaled, self.sigmoid = config.scaled_actions, config.muscle_sigmoid
        if self.scaled or self.sigmoid:
            self.agent_space = gym.spaces.Box(-1.0, 1.0, env_space.shape, np.float32)
        else:
            self.agent_space = gym.spaces.Box(self.low, self.high, env_space.shape, np.float32)

    @classmethod
    def of(cls, config: EnvConfig) -> ActionMap:
        """The mapping for ``config``'s env (made once to read its action space)."""
        probe = make_env(config)
        try:
            return cls(probe.action_space, config)
        finally:
            probe.close()

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        if self.scaled:
            actions = np.clip(actions, -1.0, 1.0)
            return self.low + (actions + 1.0) * 0.5 * (self.high - self.low)
        if self.sigmoid:
            actions = 1.0 / (1.0 + np.exp(-5.0 * (np.clip(actions, -SIGMOID_BOUND, SIGMOID_BOUND) - 0.5)))
        return np.clip(actions, self.low, self.high)

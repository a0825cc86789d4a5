"""What lit_rl needs to know about an env before it trains on it, found by making and resetting
it once: its spaces (Box only), that it can be made and reset here (MyoSuite's motion-data tasks
download at that point), and where DEP reads and acts (``DEPLayout``). Whatever stops training
is refused here, in one line that says why and what to do (``EnvUnsupported``), before anything
runs: the DataModule probes its env when it is built, at the start of ``fit``."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from lit_rl.envs.make import EnvConfig, EnvUnsupported, env_failure, make_env
from lit_rl.envs.muscles import DEPLayout, dep_layout


@dataclass(frozen=True)
class EnvProbe:
    """One env's spaces and ``DEPLayout``, read from an env made and reset once."""

    env_id: str
    observation_space: gym.spaces.Box
    action_space: gym.spaces.Box  # the env's own (``ActionMap`` gives the agent's)
    dep: DEPLayout

    @property
    def observation_dim(self) -> int:
        return int(np.prod(self.observation_space.shape))

    def dep_problem(self, dep_mode: int) -> str | None:
        """Why DEP mode ``dep_mode`` cannot run on this env, as the one-line refusal (None: it can,
        or ``dep_mode`` is 0)."""
        if not dep_mode or self.dep.problem is None:
            return None
        return (
            f"dep_mode {dep_mode}: {self.dep.problem}; train it without DEP (--model.init_args.dep_mode 0) or choose "
            "an env with muscles"
        )


def probe_env(config: EnvConfig, seed: int | None = 0) -> EnvProbe:
    """Make ``config``'s env, reset it once (with ``seed``; the global RNGs are left as they were)
    and read its spaces and ``DEPLayout``. Raises ``EnvUnsupported`` for an env that cannot be made
    or reset here or whose spaces are not Box."""
    env = make_env(config)
    try:
        state = np.random.get_state()
        try:
            env.reset(seed=seed)
        except Exception as error:  # noqa: BLE001 - whatever the env raised: one line, the cause chained
            raise env_failure(config, "reset", error) from error
        finally:
            np.random.set_state(state)
        return EnvProbe(config.id, env.observation_space, env.action_space, dep_layout(env))
    finally:
        env.close()


__all__ = ["DEPLayout", "EnvProbe", "EnvUnsupported", "probe_env"]

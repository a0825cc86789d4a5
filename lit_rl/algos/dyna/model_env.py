"""The model environment of Dyna: a batch of states stepped through a learned dynamics model,
with a reward function and a terminal function (Baconian's ``DynamicsEnvironment``).

Reward functions map ``(s, a, s')`` (``[B, ...]`` tensors, actions as the agent sees them) to
rewards ``[B]``; terminal functions map ``(s, a, s', episode_steps)`` to done flags ``[B]``.
Both are chosen in config by name (``REWARD_FUNCTIONS``, ``TERMINAL_FUNCTIONS``) with
keyword arguments, so checkpoints hold plain values only.
"""

from __future__ import annotations

import torch

from lit_rl.algos.dyna.dynamics import DynamicsModel

# ----------------------------------------------------------------------------- rewards


class PendulumReward:
    """Pendulum-v1's reward computed from its observation ``[cos th, sin th, th_dot]``:
    ``-(angle_normalize(th)^2 + 0.1 th_dot^2 + 0.001 u^2)`` with the state before the step.
    The angle comes from ``atan2(sin, cos)`` (Baconian read cos/sin as the angle itself).

    Args:
        max_torque: the env's torque bound.
        scaled_actions: the agent acts in [-1, 1] and ``u = a * max_torque`` (lit_rl's default
            ``scaled_actions: true``); false: actions are torques.
    """

    def __init__(self, max_torque: float = 2.0, scaled_actions: bool = True):
        self.max_torque, self.scaled_actions = max_torque, scaled_actions

    def __call__(self, observations, actions, next_observations) -> torch.Tensor:
        theta = torch.atan2(observations[:, 1], observations[:, 0])  # in [-pi, pi]: already normalised
        u = actions[:, 0] * self.max_torque if self.scaled_actions else actions[:, 0]
        u = u.clamp(-self.max_torque, self.max_torque)
        return -(theta.square() + 0.1 * observations[:, 2].square() + 0.001 * u.square())


class QuadraticCost:
    """``(s' - goal)^T diag(state_weight) (s' - goal) + a^T diag(action_weight) a``.

    Args:
        state_weight: one weight for every state dimension, or one per dimension.
        action_weight: likewise for the action.
        goal: the target state (zeros when omitted).
    """

    def __init__(
        self,
        state_weight: float | list[float] = 1.0,
        action_weight: float | list[float] = 0.0,
        goal: list[float] | None = None,
    ):
        self.state_weight = torch.as_tensor(state_weight, dtype=torch.float32)
        self.action_weight = torch.as_tensor(action_weight, dtype=torch.float32)
        self.goal = torch.as_tensor(goal, dtype=torch.float32) if goal is not None else None

    def __call__(self, observations, actions, next_observations) -> torch.Tensor:
        error = next_observations - self.goal.to(next_observations) if self.goal is not None else next_observations
        state = (error.square() * self.state_weight.to(error)).sum(-1)
        return state + (actions.square() * self.action_weight.to(actions)).sum(-1)


class NegatedCost:
    """A reward from a cost: ``-cost(s, a, s')`` (Baconian's ``CostFunc`` wrapper)."""

    def __init__(self, cost):
        self.cost = cost

    def __call__(self, observations, actions, next_observations) -> torch.Tensor:
        return -self.cost(observations, actions, next_observations)


class RandomReward:
    """Uniform random rewards in ``[low, high]``: a debugging signal only (the Baconian guide's
    example uses it, nothing can be learned from it)."""

    def __init__(self, low: float = -1.0, high: float = 1.0):
        self.low, self.high = low, high

    def __call__(self, observations, actions, next_observations) -> torch.Tensor:
        u = torch.rand(observations.shape[0], device=observations.device)
        return self.low + (self.high - self.low) * u


REWARD_FUNCTIONS = {
    "pendulum": PendulumReward,
    "quadratic_cost": lambda **kwargs: NegatedCost(QuadraticCost(**kwargs)),
    "random": RandomReward,
}

# ----------------------------------------------------------------------------- terminals


class NeverTerminal:
    """No state ends an episode (Pendulum: it only has a time limit)."""

    time_limit = False

    def __call__(self, observations, actions, next_observations, episode_steps) -> torch.Tensor:
        return torch.zeros(observations.shape[0], dtype=torch.bool, device=observations.device)


class FixedEpisodeLength:
    """Done once a model episode has run ``max_steps`` steps, counted per episode (Baconian
    counted the model env's lifetime steps). A time limit: the transition still bootstraps."""

    time_limit = True

    def __init__(self, max_steps: int = 200):
        self.max_steps = max_steps

    def __call__(self, observations, actions, next_observations, episode_steps) -> torch.Tensor:
        return episode_steps >= self.max_steps


class RandomTerminal:
    """Done with probability ``p`` at every step (debugging)."""

    time_limit = False

    def __init__(self, p: float = 0.01):
        self.p = p

    def __call__(self, observations, actions, next_observations, episode_steps) -> torch.Tensor:
        return torch.rand(observations.shape[0], device=observations.device) < self.p


class HopperTerminal:
    """Hopper's health check from its observation (height ``s[0]``, angle ``s[1]``), as in
    Gymnasium's Hopper-v4/v5 with the default ranges: done when the state leaves
    ``|s[1:]| < 100``, height ``> 0.7`` or ``|angle| < 0.2``, or is not finite."""

    time_limit = False

    def __call__(self, observations, actions, next_observations, episode_steps) -> torch.Tensor:
        s = next_observations
        healthy = torch.isfinite(s).all(-1) & (s[:, 1:].abs() < 100).all(-1) & (s[:, 0] > 0.7) & (s[:, 1].abs() < 0.2)
        return ~healthy


TERMINAL_FUNCTIONS = {
    "never": NeverTerminal,
    "pendulum": NeverTerminal,
    "fixed_length": FixedEpisodeLength,
    "random": RandomTerminal,
    "hopper": HopperTerminal,
}


def make_reward_function(name: str, kwargs: dict | None = None):
    if name not in REWARD_FUNCTIONS:
        raise ValueError(f"unknown reward_function {name!r}; choose learned or one of {sorted(REWARD_FUNCTIONS)}")
    return REWARD_FUNCTIONS[name](**(kwargs or {}))


def make_terminal_function(name: str, kwargs: dict | None = None):
    if name not in TERMINAL_FUNCTIONS:
        raise ValueError(f"unknown terminal_function {name!r}; choose one of {sorted(TERMINAL_FUNCTIONS)}")
    return TERMINAL_FUNCTIONS[name](**(kwargs or {}))


# ----------------------------------------------------------------------------- the env


class ModelEnv:
    """``num_states`` model episodes stepped in parallel through ``dynamics``.

    Rewards come from ``reward_function`` or, when it is None, from the model's reward head.
    Done flags come from ``terminal_function`` or, where the model predicts termination, from
    either. Next states are clipped to ``[observation_low, observation_high]`` where finite.
    A terminal function marked ``time_limit`` truncates (the transition bootstraps), every
    other done flag is a termination.
    """

    def __init__(
        self,
        dynamics: DynamicsModel,
        reward_function=None,
        terminal_function=None,
        observation_low: torch.Tensor | None = None,
        observation_high: torch.Tensor | None = None,
    ):
        if reward_function is None and not dynamics.predicts_reward:
            raise ValueError(
                "the dynamics model does not predict rewards: give a reward_function "
                "(or use the ensemble with predict_reward: true)"
            )
        self.dynamics = dynamics
        self.reward_function = reward_function
        self.terminal_function = terminal_function or NeverTerminal()
        self.observation_low, self.observation_high = observation_low, observation_high
        self.states: torch.Tensor | None = None
        self.episode_steps: torch.Tensor | None = None

    def reset(self, start_states: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Start new episodes: all of them, or only ``rows`` (a bool mask) from the given states."""
        if rows is None or self.states is None:
            self.states = start_states.clone()
            self.episode_steps = torch.zeros(start_states.shape[0], dtype=torch.long, device=start_states.device)
            return
        self.states[rows] = start_states
        self.episode_steps[rows] = 0

    def state_dict(self) -> dict:
        """The running model episodes (``continue_model_episodes``)."""
        return {"states": self.states, "episode_steps": self.episode_steps}

    def load_state_dict(self, state: dict) -> None:
        device = self.dynamics_device
        self.states = None if state["states"] is None else state["states"].to(device)
        self.episode_steps = None if state["episode_steps"] is None else state["episode_steps"].to(device)

    @property
    def dynamics_device(self) -> torch.device:
        return next(self.dynamics.parameters()).device

    def clip(self, next_observations: torch.Tensor) -> torch.Tensor:
        """Predicted next states clipped to the observation bounds (where the space has any)."""
        if self.observation_low is None:
            return next_observations
        return torch.maximum(torch.minimum(next_observations, self.observation_high), self.observation_low)

    @torch.no_grad()
    def step(self, actions: torch.Tensor):
        """Returns ``(observations, next_observations, rewards, terminated, truncated)``; the
        env then continues from the next states (reset the done rows yourself)."""
        obs = self.states
        prediction = self.dynamics.sample(obs, actions)
        next_obs = self.clip(prediction.next_observations)
        if self.reward_function is not None:
            rewards = self.reward_function(obs, actions, next_obs)
        else:
            rewards = prediction.rewards
        self.episode_steps += 1
        done = self.terminal_function(obs, actions, next_obs, self.episode_steps)
        if self.terminal_function.time_limit:
            terminated, truncated = torch.zeros_like(done), done
        else:
            terminated, truncated = done, torch.zeros_like(done)
        if prediction.terminations is not None:
            terminated = terminated | prediction.terminations
        self.states = next_obs
        return obs, next_obs, rewards, terminated, truncated


def uniform_states(low: torch.Tensor, high: torch.Tensor, count: int, generator=None) -> torch.Tensor:
    """States drawn uniformly from a box observation space (Baconian's model-env reset)."""
    if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise ValueError("start_states: observation_space needs a bounded observation space")
    u = torch.rand(count, low.shape[0], generator=generator)
    return low + u * (high - low)

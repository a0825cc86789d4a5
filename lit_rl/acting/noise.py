"""Action noise for deterministic policies."""

from __future__ import annotations

import torch


class GaussianNoise:
    """Independent ``N(0, (std * half_range)^2)`` per action dimension."""

    def __init__(self, std: float, half_range: torch.Tensor):
        self.scale = std * half_range

    def __call__(self, actions: torch.Tensor, episode_starts: torch.Tensor) -> torch.Tensor:
        return actions + self.scale.to(actions.device) * torch.randn_like(actions)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class OrnsteinUhlenbeckNoise:
    """``x += theta * (0 - x) * dt + std * sqrt(dt) * N(0, 1)`` per env, reset at episode starts."""

    def __init__(self, std: float, half_range: torch.Tensor, theta: float = 0.15, dt: float = 0.01):
        self.scale = std * half_range
        self.theta, self.dt = theta, dt
        self.state: torch.Tensor | None = None

    def __call__(self, actions: torch.Tensor, episode_starts: torch.Tensor) -> torch.Tensor:
        if self.state is None or self.state.shape != actions.shape:
            self.state = torch.zeros_like(actions)
        self.state[episode_starts.to(actions.device)] = 0.0
        self.state += -self.theta * self.state * self.dt + (self.dt**0.5) * torch.randn_like(actions)
        return actions + self.scale.to(actions.device) * self.state

    def state_dict(self) -> dict:
        return {"state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.state = state["state"]


NOISES = {"gaussian": GaussianNoise, "ornstein_uhlenbeck": OrnsteinUhlenbeckNoise}

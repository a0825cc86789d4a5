"""Exploration noise: added to a deterministic policy's actions (Gaussian, Ornstein-Uhlenbeck,
pink), or handed to a stochastic policy as its standard-normal draw (pink)."""

from __future__ import annotations

import numpy as np
import torch
from pink import ColoredNoiseProcess


class GaussianNoise:
    """Independent ``N(0, (std * half_range)^2)`` per action dimension."""

    def __init__(self, std: float, half_range: torch.Tensor):
        self.scale = std * half_range

    def __call__(self, actions: torch.Tensor, episode_starts: torch.Tensor) -> torch.Tensor:
        return actions + self.scale.to(actions.device) * torch.randn_like(actions)

    def skip(self, episode_starts: torch.Tensor) -> None:
        """A step in which the policy did not act (DEP did): nothing to do."""

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

    def skip(self, episode_starts: torch.Tensor) -> None:
        """A step in which the policy did not act (DEP did): the state is kept as it is (as it
        always was; the next episode start the noise is called at resets it)."""

    def state_dict(self) -> dict:
        return {"state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.state = state["state"]


class PinkNoise:
    """Colored noise over time, one process per env: pink-noise-rl's ``ColoredNoiseProcess``
    (Eberhard et al. 2023), Gaussian with unit variance per action dimension and a power
    spectrum ``1 / f^beta`` (1: pink, 0: white, 2: red/Brownian). Each env's process plays a
    sequence of ``seq_len`` steps, then the next one; an env whose episode starts gets a new
    sequence. Added to a deterministic policy's actions as ``std * half_range * noise``
    (``__call__``), or the standard-normal draw of a stochastic policy's sampling (``draw``).

    The processes are built at the first draw, when the number of envs is known, from one NumPy
    generator seeded from torch's (so ``seed_everything`` and each DDP rank's seed decide it);
    the generator's state, every env's sequence and position and the episode starts seen in
    steps the policy did not act (``skip``) are the checkpointed state."""

    def __init__(self, std: float, half_range: torch.Tensor, beta: float = 1.0, seq_len: int = 1000):
        if not (np.isfinite(beta) and beta >= 0):
            raise ValueError(f"pink_beta must be a finite exponent >= 0 (1: pink, 0: white), got {beta}")
        if int(seq_len) != seq_len or seq_len < 2:
            raise ValueError(f"pink_seq_len must be an integer of at least 2 steps, got {seq_len}")
        self.scale = std * half_range
        self.action_dim = half_range.shape[0]
        self.beta, self.seq_len = float(beta), int(seq_len)
        self.rng: np.random.Generator | None = None
        self.processes: list[ColoredNoiseProcess] = []
        self.pending: torch.Tensor | None = None  # [E] bool: an episode started in a skipped step

    def _build(self, num_envs: int, seed: int | None = None) -> None:
        """``num_envs`` processes with fresh sequences; the generator's seed is drawn from torch's
        unless given (a checkpoint's state replaces it)."""
        seed = int(torch.randint(0, 2**63 - 1, (1,)).item()) if seed is None else seed
        self.rng = np.random.Generator(np.random.PCG64(seed))
        size = (self.action_dim, self.seq_len)
        self.processes = [ColoredNoiseProcess(self.beta, size, rng=self.rng) for _ in range(num_envs)]
        self.pending = torch.zeros(num_envs, dtype=torch.bool)

    def draw(self, episode_starts: torch.Tensor) -> torch.Tensor:
        """The next step of every env's process, ``[E, A]`` float32 on ``episode_starts``'s
        device; an env whose episode starts (now, or in a skipped step) begins a new sequence."""
        starts = episode_starts.detach().cpu().bool()
        if len(self.processes) != starts.shape[0]:
            self._build(starts.shape[0])  # fresh sequences: no reset needed
        else:
            for env in torch.nonzero(starts | self.pending).flatten().tolist():
                self.processes[env].reset()
        self.pending.zero_()
        noise = np.stack([process.sample() for process in self.processes])
        return torch.from_numpy(noise).to(device=episode_starts.device, dtype=torch.float32)

    def __call__(self, actions: torch.Tensor, episode_starts: torch.Tensor) -> torch.Tensor:
        noise = self.draw(episode_starts).to(actions.device)
        return actions + self.scale.to(actions.device) * noise

    def skip(self, episode_starts: torch.Tensor) -> None:
        """A step in which the policy did not act (DEP did): the processes stand still, and an
        episode start is remembered for the next draw."""
        if self.pending is not None and self.pending.shape[0] == episode_starts.shape[0]:
            self.pending |= episode_starts.detach().cpu().bool()

    def state_dict(self) -> dict:
        """Tensors and Python scalars only (loadable with ``torch.load(weights_only=True)``)."""
        if not self.processes:
            return {}
        return {
            "rng": self.rng.bit_generator.state,
            "sequences": torch.from_numpy(np.stack([process.buffer for process in self.processes])),
            "positions": [process.idx for process in self.processes],
            "pending": self.pending.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        sequences = state["sequences"]
        if tuple(sequences.shape[1:]) != (self.action_dim, self.seq_len):
            raise ValueError(
                f"the checkpoint's pink noise has sequences of shape {list(sequences.shape[1:])}, this run's are "
                f"[{self.action_dim}, {self.seq_len}] (pink_seq_len changed?)"
            )
        self._build(sequences.shape[0], seed=0)  # torch's generator is left as it is
        self.rng.bit_generator.state = state["rng"]
        for process, sequence, position in zip(self.processes, sequences, state["positions"], strict=True):
            process.buffer, process.idx = sequence.numpy().copy(), int(position)
        self.pending = state["pending"].clone().bool()


NOISES = {"gaussian": GaussianNoise, "ornstein_uhlenbeck": OrnsteinUhlenbeckNoise, "pink": PinkNoise}

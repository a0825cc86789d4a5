"""The replay as it was before each observation was stored once (an observation and a next
observation per row), with its file writer (format 1): the reference ``ReplayBuffer``'s samples,
``recent`` rows and loaded files must equal bit for bit (tests/test_replay.py), and the layout
bench/replay_next_obs_once.py measures against."""

import json

import torch

BATCH_FIELDS = ("observations", "actions", "rewards", "next_observations", "discounts")
ROW_FIELDS = ("observations", "actions", "next_observations", "rewards", "terminations", "resets")


class TwoArrayReplay:
    FIELDS = ("observations", "actions", "next_observations", "rewards", "discounts", "resets", "terminations")

    def __init__(self, size, num_envs, observation_dim, action_dim, return_steps=1, discount=0.99):
        self.rows, self.num_envs, self.return_steps, self.gamma = size // num_envs, num_envs, return_steps, discount
        r, e = self.rows, num_envs
        self.observations = torch.empty(r, e, observation_dim)
        self.actions = torch.empty(r, e, action_dim)
        self.next_observations = torch.empty(r, e, observation_dim)
        self.rewards, self.discounts = torch.empty(r, e), torch.empty(r, e)
        self.resets = torch.empty(r, e, dtype=torch.bool)
        self.terminations = torch.empty(r, e, dtype=torch.bool)
        self.index = self.filled = 0

    def store(self, observations, actions, next_observations, rewards, terminated, truncated):
        i = self.index
        discounts = self.gamma * (~terminated).float()
        self.observations[i], self.actions[i], self.next_observations[i] = observations, actions, next_observations
        self.rewards[i], self.discounts[i] = rewards, discounts
        self.resets[i], self.terminations[i] = terminated | truncated, terminated
        alive = torch.ones(self.num_envs, dtype=torch.bool)
        for k in range(1, min(self.return_steps, self.filled + 1)):
            row = (i - k) % self.rows
            alive &= ~self.resets[row]
            if not alive.any():
                break
            self.rewards[row] += torch.where(alive, self.discounts[row] * rewards, 0.0)
            self.discounts[row] = torch.where(alive, self.discounts[row] * discounts, self.discounts[row])
            self.next_observations[row][alive] = next_observations[alive]
        self.index = (i + 1) % self.rows
        self.filled = min(self.filled + 1, self.rows)

    def mark_episode_boundary(self):
        if self.filled:
            self.resets[(self.index - 1) % self.rows] = True

    def sample(self, batch_size, generator=None):
        flat = torch.randint(self.filled * self.num_envs, (batch_size,), generator=generator)
        rows, cols = flat // self.num_envs, flat % self.num_envs
        return {name: getattr(self, name)[rows, cols] for name in BATCH_FIELDS}

    def recent(self, count):
        rows = (self.index - count + torch.arange(count)) % self.rows
        return {name: getattr(self, name)[rows] for name in ROW_FIELDS}

    def save_format_1(self, path, token=""):
        header = {
            "rows": self.rows, "num_envs": self.num_envs, "return_steps": self.return_steps,
            "discount": self.gamma, "index": self.index, "filled": self.filled,
            "shapes": {name: list(getattr(self, name).shape[2:]) for name in self.FIELDS}, "token": token,
        }  # fmt: skip
        with open(path, "wb") as f:
            f.write(json.dumps(header).encode() + b"\n")
            for name in self.FIELDS if self.filled else ():
                f.write(getattr(self, name)[: self.filled].numpy().tobytes())

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.FIELDS)

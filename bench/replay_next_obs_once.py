"""Measures storing each observation once in the replay: would it halve a myoLegWalk replay
without changing what training samples?

``ReplayBuffer`` keeps an observation and a next observation per transition. Within an episode
the next observation of row ``t`` is the observation of row ``t + 1``, and with n-step returns
the bootstrap observation of a row is that of the row ``k <= n`` steps later. So
``SharedObservationReplay`` below keeps the observations, a per-row ``horizon`` k (int8) and,
for the rows where an episode ended (the next row then holds the next episode's first
observation), the true final observation in a side table; the newest row's next observation
waits in one extra row. It is fed the same transitions as ``ReplayBuffer`` (real myoLegWalk-v0
envs, 10 envs, random actions in [-1, 1] through the muscle sigmoid, n = 3, ring wrapped twice)
and both are sampled with the same generator: every field of every batch must be bit-identical.
Memory is counted as the bytes of the tensors each allocates, with the side table at the
episode-end rate measured (random actions fall after about 30 steps: the worst case) and at the
rate of the DEP-MPO soak's replay file when there is one (``bench_runs/soak``). Writes the
``replay-memory`` section of BENCHMARKS.md.

    python bench/replay_next_obs_once.py
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from summary import ROOT, machine_line, rewrite_section

sys.path.insert(0, str(ROOT))
from lit_rl.contract import Batch  # noqa: E402
from lit_rl.data.replay import ReplayBuffer  # noqa: E402
from lit_rl.envs import EnvConfig, SequentialEnvs  # noqa: E402


class SharedObservationReplay(ReplayBuffer):
    """``ReplayBuffer``'s storage and sampling with each observation stored once (measurement only)."""

    def __init__(self, size, num_envs, observation_dim, action_dim, return_steps=1, discount=0.99):
        super().__init__(size, num_envs, observation_dim, action_dim, return_steps, discount)
        self.next_observations = None  # not stored: that is the point
        self.observations = torch.empty(self.rows + 1, num_envs, observation_dim)  # + the newest's successor
        self.horizons = torch.zeros(self.rows, num_envs, dtype=torch.int8)
        self.finals: dict[tuple[int, int], torch.Tensor] = {}  # (row, env) -> final observation

    def store(self, observations, actions, next_observations, rewards, terminated, truncated) -> None:
        i = self.index
        for env in range(self.num_envs):
            self.finals.pop((i, env), None)  # the row being overwritten
        discounts = self.gamma * (~terminated).float()
        resets = terminated | truncated
        self.observations[i] = observations
        self.observations[self.rows] = next_observations  # the successor of the newest row
        self.actions[i], self.rewards[i], self.discounts[i] = actions, rewards, discounts
        self.resets[i], self.terminations[i] = resets, terminated
        self.horizons[i] = 1
        for env in torch.nonzero(resets).flatten().tolist():
            self.finals[(i, env)] = next_observations[env].clone()
        alive = torch.ones(self.num_envs, dtype=torch.bool)
        for k in range(1, min(self.return_steps, self.filled + 1)):
            row = (i - k) % self.rows
            alive &= ~self.resets[row]
            if not alive.any():
                break
            self.rewards[row] += torch.where(alive, self.discounts[row] * rewards, 0.0)
            self.discounts[row] = torch.where(alive, self.discounts[row] * discounts, self.discounts[row])
            self.horizons[row] += alive.to(torch.int8)
        self.index = (i + 1) % self.rows
        self.filled = min(self.filled + 1, self.rows)

    def _next_of(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        last = (rows + self.horizons[rows, cols].long() - 1) % self.rows  # the row the return ends on
        newest = (self.index - 1) % self.rows
        successor = torch.where(last == newest, self.rows, (last + 1) % self.rows)
        out = self.observations[successor, cols]
        for n in torch.nonzero(self.resets[last, cols]).flatten().tolist():
            out[n] = self.finals[(int(last[n]), int(cols[n]))]
        return out

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        flat = torch.randint(self.filled * self.num_envs, (batch_size,), generator=generator)
        rows, cols = flat // self.num_envs, flat % self.num_envs
        return Batch(
            observations=self.observations[rows, cols],
            actions=self.actions[rows, cols],
            rewards=self.rewards[rows, cols],
            next_observations=self._next_of(rows, cols),
            discounts=self.discounts[rows, cols],
        )

    @property
    def nbytes(self) -> int:
        fields = [self.observations, self.actions, self.rewards, self.discounts, self.resets, self.terminations]
        return sum(t.nbytes for t in fields) + self.horizons.nbytes + sum(t.nbytes for t in self.finals.values())


def soak_end_rate() -> float | None:
    """Episode ends per transition in the soak's replay file (DEP-MPO training data), if any."""
    checkpoints = ROOT / "bench_runs" / "soak" / "run" / "checkpoints"
    files = sorted(checkpoints.glob("*.replay")) if checkpoints.is_dir() else []
    if not files:
        return None
    with open(files[-1], "rb") as f:
        header = json.loads(f.readline())
        offset = f.tell()
    rows, envs, filled = header["rows"], header["num_envs"], header["filled"]
    sizes = {name: int(np.prod(shape, dtype=np.int64)) for name, shape in header["shapes"].items()}
    for name in ReplayBuffer._FIELDS[: ReplayBuffer._FIELDS.index("resets")]:
        offset += filled * envs * sizes[name] * 4
    resets = np.fromfile(files[-1], np.bool_, filled * envs, offset=offset)
    return float(resets.mean()) if rows else None


def main() -> None:
    envs_count, steps, n = 10, 1_500, 3
    config = EnvConfig(id="myoLegWalk-v0", make_kwargs={"reset_type": "random"}, scaled_actions=False,
                       muscle_sigmoid=True, imports=["myosuite"])  # fmt: skip
    envs = SequentialEnvs(config, envs_count, seed=0)
    obs_dim, act_dim = envs.obs_dim, envs.action_space.shape[0]
    size = envs_count * steps // 2  # the ring wraps twice
    full = ReplayBuffer(size, envs_count, obs_dim, act_dim, n, 0.99)
    shared = SharedObservationReplay(size, envs_count, obs_dim, act_dim, n, 0.99)
    rng = np.random.default_rng(0)
    observations = envs.reset()
    ends = 0
    for t in range(steps):
        actions = rng.uniform(-1, 1, (envs_count, act_dim)).astype(np.float32)
        step = envs.step(actions)
        row = [torch.from_numpy(x) for x in (observations, actions, step.next_observations, step.rewards,
                                             step.terminated, step.truncated)]  # fmt: skip
        full.store(*row)
        shared.store(*row)
        ends += int(step.resets.sum())
        observations = step.observations
        if t % 50 == 49:  # sample as training does, from the ring as it is at that moment
            for seed in range(4):
                a = full.sample(256, torch.Generator().manual_seed(t * 10 + seed))
                b = shared.sample(256, torch.Generator().manual_seed(t * 10 + seed))
                for name in ("observations", "actions", "rewards", "next_observations", "discounts"):
                    assert torch.equal(getattr(a, name), getattr(b, name)), f"{name} differs at step {t}"
    envs.close()
    end_rate = ends / (steps * envs_count)
    per_full = ReplayBuffer.transition_bytes(obs_dim, act_dim)
    per_shared_base = 4 * (obs_dim + act_dim + 2) + 3  # observation, action, reward, discount; 2 flags, horizon
    measured = shared.nbytes / (shared.rows * envs_count)
    lines = [
        machine_line("myosuite"),
        "",
        f"`python bench/replay_next_obs_once.py`: {steps * envs_count:,} myoLegWalk-v0 transitions "
        f"(random actions, {end_rate:.1%} of them end an episode), n = {n}, the ring wrapped twice; "
        f"{steps // 50 * 4} batches of 256 sampled from both at the same moments with the same "
        "generators: every field bit-identical.",
        "",
        "| storage | bytes per transition | 1e6 myoLegWalk transitions |",
        "|---|---|---|",
        f"| `ReplayBuffer` (observation and next observation) | {per_full:,} | {per_full * 1e6 / 1e9:.2f} GB |",
        f"| observations once, random actions ({end_rate:.1%} episode ends) | {measured:,.0f} | "
        f"{measured * 1e6 / 1e9:.2f} GB |",
    ]
    soak_rate = soak_end_rate()
    if soak_rate is not None:
        per = per_shared_base + soak_rate * 4 * obs_dim
        lines.append(
            f"| observations once, DEP-MPO soak's replay ({soak_rate:.2%} episode ends) | {per:,.0f} | "
            f"{per * 1e6 / 1e9:.2f} GB |"
        )
    rewrite_section("replay-memory", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

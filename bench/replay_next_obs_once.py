"""Measures the replay storing each observation once against the layout it replaced: bytes per
transition, the size of a 1e6-transition myoLegWalk replay, and that training samples the same.

``ReplayBuffer`` stores each observation once: within an episode the next observation of row
``t`` is the observation of row ``t + 1``, a per-row horizon says which row an n-step return
ends on, a side table keeps the true final observation where an episode ended, and the newest
row's next observation waits in one extra row. ``TwoArrayReplay`` (tests/replay_reference.py)
is the layout before it (an observation and a next observation per row), kept only to compare
with. Both are fed
the same transitions (real myoLegWalk-v0 envs, 10 envs, random actions in [-1, 1] through the
muscle sigmoid, n = 3, the ring wrapped twice) and sampled with the same generators: every
field of every batch, and the rows ``recent`` returns, must be bit-identical, also after a
save and load of ``ReplayBuffer``. Memory is counted as the bytes of the tensors each
allocates; the side table at the episode-end rate measured (random actions fall after about 30
steps: the worst case) and at the rate of the DEP-MPO soak's replay file when there is one
(``bench_runs/soak``). About a minute on two cores. Writes the ``replay-memory`` section of
BENCHMARKS.md.

    python bench/replay_next_obs_once.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from summary import ROOT, machine_line, rewrite_section

sys.path.insert(0, str(ROOT))
from lit_rl.data.replay import ReplayBuffer  # noqa: E402
from lit_rl.envs import EnvConfig, SequentialEnvs  # noqa: E402
from tests.replay_reference import BATCH_FIELDS, ROW_FIELDS, TwoArrayReplay  # noqa: E402


def assert_same(new: ReplayBuffer, old: TwoArrayReplay, seeds: range, moment: str) -> int:
    """Same batches and newest rows; returns the number of batches compared."""
    for seed in seeds:
        a = new.sample(256, torch.Generator().manual_seed(seed))
        b = old.sample(256, torch.Generator().manual_seed(seed))
        for name in BATCH_FIELDS:
            assert torch.equal(getattr(a, name).view(torch.int32), b[name].view(torch.int32)), f"{name} at {moment}"
    a, b = new.recent(new.filled), old.recent(old.filled)
    for name in ROW_FIELDS:
        assert torch.equal(getattr(a, name), b[name]), f"recent {name} at {moment}"
    return len(seeds)


def seconds_per_sample(*replays, rounds: int = 10, repeats: int = 100) -> list[float]:
    """Seconds per batch of 256 of each replay: the best of ``rounds`` alternating rounds (the
    least disturbed by other work on the machine)."""
    generator = torch.Generator().manual_seed(0)
    best = [float("inf")] * len(replays)
    for _ in range(rounds):
        for k, replay in enumerate(replays):
            start = time.perf_counter()
            for _ in range(repeats):
                replay.sample(256, generator)
            best[k] = min(best[k], (time.perf_counter() - start) / repeats)
    return best


def soak_end_rate() -> float | None:
    """Side-table entries (episode ends) per transition in the soak's replay file, if any."""
    checkpoints = ROOT / "bench_runs" / "soak" / "run" / "checkpoints"
    files = sorted(checkpoints.glob("*.replay")) if checkpoints.is_dir() else []
    if not files:
        return None
    with open(files[-1], "rb") as f:
        header = json.loads(f.readline())
        offset = f.tell()
    envs, filled = header["num_envs"], header["filled"]
    if not filled:
        return None
    if "format" in header:  # ReplayBuffer's own: the header counts the side table
        return header["finals"] / (filled * envs)
    # format 1: float32 fields up to the resets
    sizes = {name: int(np.prod(shape, dtype=np.int64)) for name, shape in header["shapes"].items()}
    for name in TwoArrayReplay.FIELDS[: TwoArrayReplay.FIELDS.index("resets")]:
        offset += filled * envs * sizes[name] * 4
    resets = np.fromfile(files[-1], np.bool_, filled * envs, offset=offset)
    return float(resets.mean())


def main() -> None:
    envs_count, steps, n = 10, 1_500, 3
    config = EnvConfig(id="myoLegWalk-v0", make_kwargs={"reset_type": "random"}, scaled_actions=False,
                       muscle_sigmoid=True, imports=["myosuite"])  # fmt: skip
    envs = SequentialEnvs(config, envs_count, seed=0)
    obs_dim, act_dim = envs.obs_dim, envs.action_space.shape[0]
    size = envs_count * steps // 2  # the ring wraps twice
    args = (size, envs_count, obs_dim, act_dim, n, 0.99)
    new, old = ReplayBuffer(*args), TwoArrayReplay(*args)
    rng = np.random.default_rng(0)
    observations = envs.reset()
    ends = batches = 0
    for t in range(steps):
        actions = rng.uniform(-1, 1, (envs_count, act_dim)).astype(np.float32)
        step = envs.step(actions)
        row = [torch.from_numpy(x) for x in (observations, actions, step.next_observations, step.rewards,
                                             step.terminated, step.truncated)]  # fmt: skip
        new.store(*row)
        old.store(*row)
        ends += int(step.resets.sum())
        observations = step.observations
        if t % 50 == 49:  # sample as training does, from the ring as it is at that moment
            batches += assert_same(new, old, range(t * 10, t * 10 + 4), f"step {t}")
    envs.close()
    with tempfile.TemporaryDirectory() as tmp:
        file_bytes = new.save(Path(tmp) / "replay", token="bench")
        loaded = ReplayBuffer(*args)
        loaded.load(Path(tmp) / "replay", token="bench")
    batches += assert_same(loaded, old, range(4), "the end, saved and loaded")
    transitions = new.rows * envs_count
    end_rate = ends / (steps * envs_count)
    before = old.nbytes / transitions
    assert before == 4 * (2 * obs_dim + act_dim + 2) + 2
    fixed = ReplayBuffer.transition_bytes(obs_dim, act_dim)
    measured = new.nbytes / transitions
    table_rate = len(new.finals) / transitions
    sample_old, sample_new = seconds_per_sample(old, new)

    def row(label: str, per: float) -> str:
        return f"| {label} | {per:,.0f} | {per * 1e6 / 1e9:.2f} GB |"

    lines = [
        machine_line("myosuite"),
        "",
        f"`python bench/replay_next_obs_once.py`: {steps * envs_count:,} myoLegWalk-v0 transitions "
        f"({obs_dim} observations, {act_dim} actions; random actions, {end_rate:.1%} of them end an episode) "
        f"into a ring of {transitions:,}, n = {n}, wrapped twice; {batches} batches of 256 sampled from "
        "`ReplayBuffer` and from the layout before it (`TwoArrayReplay` in the script) at the same moments "
        "with the same generators, the last ones after a save and load of `ReplayBuffer`, and the rows "
        "`recent` returns: every field bit-identical.",
        "",
        "| storage | bytes per transition | 1e6 myoLegWalk transitions |",
        "|---|---|---|",
        row("before: observation and next observation per row", before),
        row("`ReplayBuffer`: each observation once, per-row fields only (`transition_bytes`)", fixed),
        row(f"`ReplayBuffer` measured, random actions ({table_rate:.1%} side-table entries)", measured),
    ]
    soak_rate = soak_end_rate()
    if soak_rate is not None:
        lines.append(row(f"`ReplayBuffer`, DEP-MPO soak's replay ({soak_rate:.2%} episode ends)",
                         fixed + soak_rate * 4 * obs_dim))  # fmt: skip
    lines += [
        "",
        f"The side table adds {4 * obs_dim:,} bytes per episode end (and an 8-byte key in a replay file), "
        f"the extra row {4 * obs_dim * envs_count:,} bytes once; the saved file of this ring took "
        f"{file_bytes / transitions:,.0f} bytes per transition. Sampling a batch of 256 took "
        f"{sample_new * 1e6:,.0f} µs against {sample_old * 1e6:,.0f} µs before (the bootstrap observations "
        "are looked up through the horizons and the side table).",
    ]
    rewrite_section("replay-memory", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""lit_rl's replay and phase timing against deprl's own (GitHub HEAD 790df86): deprl's ``Buffer``,
fed by its trainer and agent the transitions of the env-path fixture (myoLegWalk-v0, 3 envs, 88 steps,
falls and time-limit resets), stored n-step rewards, discounts and bootstrap observations, and fired
training phases at steps that tests/fixtures/deprl_head/make_replay_fixture.py recorded in replay.npz
(deprl is not needed here).

The same transitions go through lit_rl's ``Collector`` (the code path of training: the transition is
stored while the envs step, ``Schedule.phase_due`` after each vector step) into a ``ReplayBuffer`` and
``Schedule`` built from the fixture's deprl settings with ``phase_clock: before_step``
(configs/dep_mpo_myolegwalk.yaml). At every phase (before its batches) and after the last step, every
row's n-step reward, discount, reset and termination flag, observation, action and bootstrap
observation must equal deprl's exactly (float32 ``==``), and so must the batches ``sample`` draws.

Exact, not to rounding: deprl folds a new transition ``(r, d, s')`` into an earlier row as
``(1 - m) * R + m * (R + D * r)`` with a float32 mask ``m`` of 0 or 1, and lit_rl as
``R + where(alive, D * r, 0)``; both are the float32 ``R + D * r`` where the row is still open and
``R`` where it is not (multiplying by 1 and adding 0 round nothing), and ``D * d`` likewise. deprl's
discount is ``float32(1 - terminations) * 0.99`` (float32), lit_rl's ``0.99 * (~terminated).float()``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_rl.data.collection import Collector, Progress
from lit_rl.data.replay import ReplayBuffer, ReplayConfig
from lit_rl.data.schedule import Schedule
from lit_rl.envs.vector import Step

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deprl_head"
with np.load(FIXTURES / "replay.npz") as npz:
    DATA = dict(npz)
META = json.loads(str(DATA["meta"]))
with np.load(FIXTURES / "env_path.npz") as npz:
    ENV_PATH = dict(npz)
MAX_EPISODE_STEPS = META["env_path"]["max_episode_steps"]


def recorded(case: str | None, envs: int, steps: int) -> dict[str, np.ndarray]:
    """The transitions the fixture's deprl run was fed, as lit_rl's envs give them: ``acting`` (the
    observations acted on), ``next`` (the true next observations), ``observations`` (to act on next,
    post-reset), and lit_rl's ``terminated`` and ``truncated`` flags (Gymnasium's: a fall on the
    time limit's last step is both, deprl's ``terminations`` only; tests/test_env_deprl.py).
    ``case`` None: 1-dim zeros and no episode ends, the clock variant's."""
    if case is None:
        zeros, flags = np.zeros((steps, envs, 1), np.float32), np.zeros((steps, envs), bool)
        return {"start": zeros[0], "observations": zeros, "acting": zeros, "next": zeros, "actions": zeros,
                "rewards": flags.astype(np.float32), "terminated": flags, "truncated": flags}  # fmt: skip
    observations, resets = ENV_PATH[f"{case}_observations"], ENV_PATH[f"{case}_resets"]
    terminated = ENV_PATH[f"{case}_terminations"]
    next_observations = observations.copy()
    next_observations[resets] = ENV_PATH[f"{case}_terminal_observations"]  # np.argwhere order
    start = ENV_PATH[f"{case}_start_observations"]
    lengths, length = np.zeros(resets.shape, np.int64), np.zeros(resets.shape[1], np.int64)
    for t, ended in enumerate(resets):
        length += 1
        lengths[t] = length
        length[ended] = 0
    truncated = (resets & ~terminated) | (lengths == MAX_EPISODE_STEPS)
    assert (truncated & terminated).any()  # the fixture has such a fall (env 2, step 39)
    return {
        "start": start, "observations": observations, "acting": np.concatenate([start[None], observations[:-1]]),
        "next": next_observations, "actions": ENV_PATH["actions"], "rewards": ENV_PATH[f"{case}_rewards"],
        "terminated": terminated, "truncated": truncated,
    }  # fmt: skip


class Playback:
    """lit_rl's vector envs (what the Collector uses of them) replaying ``record``."""

    def __init__(self, record: dict[str, np.ndarray]):
        self.record, self.t = record, 0
        self.num_envs = record["acting"].shape[1]

    def reset(self) -> np.ndarray:
        return self.record["start"].copy()

    def current_muscle_states(self) -> None:
        return None

    def step_async(self, actions: np.ndarray) -> None:
        np.testing.assert_array_equal(actions, self.record["actions"][self.t])

    def step_wait(self) -> Step:
        r, t = self.record, self.t
        self.t += 1
        ended = int((r["terminated"][t] | r["truncated"][t]).sum())
        return Step(
            observations=r["observations"][t].copy(), next_observations=r["next"][t].copy(),
            rewards=r["rewards"][t].copy(), terminated=r["terminated"][t].copy(), truncated=r["truncated"][t].copy(),
            finished=[(0.0, 1)] * ended,
        )  # fmt: skip


class RecordedActor:
    """Acts with the recorded actions, checking it is given the recorded observations."""

    device, trains = torch.device("cpu"), True

    def __init__(self, record: dict[str, np.ndarray]):
        self.record = record

    def act(self, observations: torch.Tensor, context) -> torch.Tensor:
        t = context.env_steps // observations.shape[0]
        np.testing.assert_array_equal(observations.numpy(), self.record["acting"][t])
        return torch.from_numpy(self.record["actions"][t].copy())


def lit_rl_settings(name: str, phase_clock: str = "before_step") -> tuple[ReplayConfig, Schedule]:
    """The variant's deprl Buffer arguments as lit_rl's replay config, and its Schedule (one epoch)."""
    variant = META["variants"][name]
    config = ReplayConfig(
        size=variant["size"], return_steps=META["return_steps"], discount=META["discount"],
        batch_size=META["batch_size"], steps_before_batches=variant["steps_before_batches"],
        steps_between_batches=variant["steps_between_batches"], batch_iterations=META["batch_iterations"],
        phase_clock=phase_clock,
    )  # fmt: skip
    total = variant["steps"] * variant["envs"]
    schedule = Schedule(
        total, total, total, config.steps_before_batches, config.steps_between_batches, config.batch_iterations,
        config.phase_clock,
    )  # fmt: skip
    return config, schedule


def lit_rl_run(name: str, phase_clock: str = "before_step") -> tuple[list[int], list[int], list[dict], dict]:
    """The variant's transitions through lit_rl's Collector (the DataModule's loop: collect until a
    phase or the end, then the phase's batches). Returns the env steps at which phases fired, the
    transitions the replay held then, a copy of the replay at each phase and after the last step,
    and the recorded transitions."""
    variant = META["variants"][name]
    envs, steps = variant["envs"], variant["steps"]
    record = recorded(variant["case"], envs, steps)
    config, schedule = lit_rl_settings(name, phase_clock)
    total = steps * envs
    obs_dim, action_dim = record["acting"].shape[-1], record["actions"].shape[-1]
    replay = ReplayBuffer(config.size, envs, obs_dim, action_dim, config.return_steps, config.discount)
    progress = Progress()
    collector = Collector(progress, Playback(record), replay, schedule, transitions_per_row=envs)
    collector.start()
    actor = RecordedActor(record)
    phases, held, snapshots = [], [], []
    while progress.env_steps < total:
        collector.collect(actor, total)
        if schedule.pending_batches:
            phases.append(progress.env_steps)
            held.append(len(replay))
            if variant["snapshots"]:
                snapshots.append(contents(replay))
            while not schedule.take_batch():
                pass
    if variant["snapshots"]:
        snapshots.append(contents(replay))
    return phases, held, snapshots, record


def contents(replay: ReplayBuffer) -> dict:
    """The replay's rows in ring order, with each row's bootstrap observation as ``sample`` reads it,
    and a batch drawn by ``sample`` with the indices it drew."""
    filled, envs = replay.filled, replay.num_envs
    rows = torch.arange(filled)[:, None].expand(-1, envs)
    cols = torch.arange(envs).expand(filled, -1)
    fields = ("observations", "actions", "rewards", "discounts", "resets", "terminations", "horizons")
    out = {name: getattr(replay, name)[:filled].numpy().copy() for name in fields}
    out["next_observations"] = replay._next_observations(rows, cols).numpy()
    out["recent_next_observations"] = replay.recent(filled).next_observations.numpy()
    out["time_order"] = ((replay.index - filled + torch.arange(filled)) % replay.rows).numpy()
    out["index"], out["filled"] = replay.index, filled
    batch = replay.sample(META["batch_size"], generator=torch.Generator().manual_seed(0))
    flat = torch.randint(filled * envs, (META["batch_size"],), generator=torch.Generator().manual_seed(0))
    out["batch"], out["batch_rows"], out["batch_cols"] = batch, (flat // envs).numpy(), (flat % envs).numpy()
    return out


VARIANTS = list(META["variants"])
COVERAGE = (
    "3-step returns",
    "returns of 2-3 steps cut by a fall",
    "returns of 2-3 steps cut by the time limit",
    "returns still open at the newest rows",
)
SNAPSHOT_VARIANTS = [name for name in VARIANTS if META["variants"][name]["snapshots"]]


@pytest.mark.parametrize("name", VARIANTS)
def test_phases_fire_at_deprls_steps(name):
    """deprl's ``Buffer.ready(steps)`` gets its trainer's count before the vector step; lit_rl's
    ``before_step`` clock is the same count, so every phase fires after the same vector step, on
    the same transitions (deprl's ``steps`` + E collected, all in the replay)."""
    variant = META["variants"][name]
    envs = variant["envs"]
    theirs = DATA[f"{name}/phase_steps"]
    phases, held, _, _ = lit_rl_run(name)
    assert len(theirs) >= 4, theirs
    np.testing.assert_array_equal(np.array(phases) - envs, theirs)
    np.testing.assert_array_equal(held, DATA[f"{name}/phase_transitions"])
    assert lit_rl_settings(name)[1].first_phase(envs) == phases[0]  # what the no-training warning reads
    # lit_rl's own clock (after_step) fires one vector step earlier, at deprl's count of transitions
    earlier, _, _, _ = lit_rl_run(name, phase_clock="after_step")
    np.testing.assert_array_equal(earlier[: len(theirs)], theirs)
    assert all(steps > variant["steps"] * envs - envs for steps in earlier[len(theirs) :])


def test_myoleg_walk_clock():
    """What the fixture says of deprl's myoLegWalk settings (200 envs, 2e5 before, 1000 between;
    lit_rl's phases are compared with it above): the first phase at count 200,000, on 200,200
    transitions, then every 1000 transitions (5 vector steps)."""
    theirs = DATA["myoLegWalk_clock/phase_steps"]
    assert theirs[0] == 200_000 and DATA["myoLegWalk_clock/phase_transitions"][0] == 200_200
    np.testing.assert_array_equal(np.diff(theirs), 1000)


@pytest.mark.parametrize("name", SNAPSHOT_VARIANTS)
def test_replay_stores_deprls_n_step_returns(name):
    variant = META["variants"][name]
    phases, _, snapshots, record = lit_rl_run(name)
    assert len(snapshots) == len(DATA[f"{name}/phase_steps"]) + 1 == len(phases) + 1
    theirs_all = {key: DATA[f"{name}/{key}"] for key in
                  ("rewards", "discounts", "resets", "terminations", "row_steps", "bootstrap_steps")}  # fmt: skip
    coverage = dict.fromkeys(COVERAGE, 0)
    for s, ours in enumerate(snapshots):
        when = f"{name}: snapshot {s} ({'phase ' + str(phases[s]) if s < len(phases) else 'the end'})"
        theirs = {key: value[s] for key, value in theirs_all.items()}
        filled = ours["filled"]
        row_steps = theirs["row_steps"]
        assert (row_steps[:filled] >= 0).all() and (row_steps[filled:] < 0).all(), when
        stored = int(row_steps.max()) + 1
        assert ours["index"] == stored % variant["rows"], when
        for key in ("rewards", "discounts", "resets", "terminations"):
            assert ours[key].dtype == theirs[key].dtype, key
            np.testing.assert_array_equal(ours[key], theirs[key][:filled], err_msg=f"{when}: {key}")
        steps, bootstrap = row_steps[:filled], theirs["bootstrap_steps"][:filled]
        env = np.arange(variant["envs"])
        np.testing.assert_array_equal(ours["observations"], record["acting"][steps], err_msg=when)
        np.testing.assert_array_equal(ours["actions"], record["actions"][steps], err_msg=when)
        expected_next = record["next"][bootstrap, env]
        np.testing.assert_array_equal(ours["next_observations"], expected_next, err_msg=f"{when}: bootstrap")
        np.testing.assert_array_equal(
            ours["recent_next_observations"], expected_next[ours["time_order"]], err_msg=f"{when}: recent"
        )
        np.testing.assert_array_equal(ours["horizons"], bootstrap - steps[:, None] + 1, err_msg=f"{when}: horizons")
        # the batch ``sample`` draws: rows and columns as deprl's ``get`` lays them (row * E + env)
        batch, rows, cols = ours["batch"], ours["batch_rows"], ours["batch_cols"]
        np.testing.assert_array_equal(batch.rewards.numpy(), theirs["rewards"][rows, cols], err_msg=when)
        np.testing.assert_array_equal(batch.discounts.numpy(), theirs["discounts"][rows, cols], err_msg=when)
        np.testing.assert_array_equal(batch.next_observations.numpy(), expected_next[rows, cols], err_msg=when)
        np.testing.assert_array_equal(batch.observations.numpy(), record["acting"][steps[rows], cols], err_msg=when)
        np.testing.assert_array_equal(batch.actions.numpy(), record["actions"][steps[rows], cols], err_msg=when)
        horizons = bootstrap - steps[:, None] + 1
        fell = record["terminated"][bootstrap, env]  # the return's last transition ended its episode
        timed_out = record["truncated"][bootstrap, env] & ~fell
        coverage["3-step returns"] += int((horizons == 3).sum())
        coverage["returns of 2-3 steps cut by a fall"] += int((fell & (horizons > 1)).sum())
        coverage["returns of 2-3 steps cut by the time limit"] += int((timed_out & (horizons > 1)).sum())
        coverage["returns still open at the newest rows"] += int(((horizons < 3) & ~fell & ~timed_out).sum())
    # not a trivial agreement: every kind of return was compared
    assert all(coverage.values()), coverage

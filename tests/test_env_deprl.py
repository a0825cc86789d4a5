"""lit_rl's MyoSuite env path against the real deprl's (GitHub HEAD 790df86 on MyoSuite 3.0): a golden
fixture of what deprl's ``Sequential`` group gives its agent on myoLegWalk-v0 for a fixed action
sequence (tests/fixtures/deprl_head/make_env_fixture.py writes it; deprl is not needed here).

lit_rl's ``SequentialEnvs`` with the same id, reset type, time limit and seed, and
``terminal_muscle_range=True`` must give bit for bit the same acting observations, next
observations, rewards, terminations, resets, truncations (deprl's ``resets & ~terminations``) and
DEP inputs (muscle states) at every step, including the start. One difference of convention only: a
fall on the time limit's last step is a termination in both, and Gymnasium's ``TimeLimit`` also flags
it ``truncated`` in lit_rl (tested as such; nothing bootstraps from it on either side).

Seeding: deprl calls ``env.seed(seed + i)`` and then ``reset()``; lit_rl resets env ``j`` of its one
worker with ``reset(seed=seed + j)`` (``VectorEnvs.seeds(0)``, ``EnvGroup.reset``). Both set MyoSuite's
``np_random`` to ``gymnasium.utils.seeding.np_random(seed + j)`` before the first reset draws from it,
and later resets continue that generator on both sides (the ``random`` case checks it).
"""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("myosuite")

from lit_rl.envs import EnvConfig, SequentialEnvs  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "deprl_head" / "env_path.npz"
with np.load(FIXTURE) as npz:
    DATA = dict(npz)
META = json.loads(str(DATA["meta"]))
ACTIONS = DATA["actions"]


def deprl_record(case: str) -> dict[str, np.ndarray]:
    """deprl's per-step arrays of ``case``, with the next observations and truncations rebuilt."""
    theirs = {name.removeprefix(f"{case}_"): value for name, value in DATA.items() if name.startswith(f"{case}_")}
    resets, terminations = theirs["resets"], theirs["terminations"]
    next_observations = theirs["observations"].copy()
    next_observations[resets] = theirs["terminal_observations"]  # boolean index: np.argwhere order
    theirs["next_observations"] = next_observations
    theirs["truncations"] = resets & ~terminations
    # episode length at each step (deprl's Sequential resets at lengths == max_episode_steps)
    lengths, length = np.zeros(resets.shape, np.int64), np.zeros(resets.shape[1], np.int64)
    for t, ended in enumerate(resets):
        length += 1
        lengths[t] = length
        length[ended] = 0
    theirs["at_time_limit"] = lengths == META["max_episode_steps"]
    return theirs


def lit_rl_envs(case: str, terminal_muscle_range: bool) -> SequentialEnvs:
    config = EnvConfig(
        id=META["env_id"],
        make_kwargs={"max_episode_steps": META["max_episode_steps"], "reset_type": case},
        scaled_actions=False,
        muscle_sigmoid=False,
        imports=["myosuite"],
    )
    return SequentialEnvs(
        config, META["num_envs"], META["seed"], muscle_states=True, force_scale=META["force_scale"],
        terminal_muscle_range=terminal_muscle_range,
    )  # fmt: skip


def lit_rl_record(case: str, terminal_muscle_range: bool = True) -> dict[str, np.ndarray]:
    """lit_rl's arrays for ``case``, named and shaped as deprl's."""
    envs = lit_rl_envs(case, terminal_muscle_range)
    try:
        ours = {"start_observations": envs.reset(), "start_muscle_states": envs.current_muscle_states()}
        steps = [envs.step(actions) for actions in ACTIONS]
    finally:
        envs.close()
    fields = {
        "observations": "observations", "next_observations": "next_observations", "rewards": "rewards",
        "terminations": "terminated", "truncated": "truncated", "resets": "resets", "muscle_states": "muscle_states",
    }  # fmt: skip
    ours.update({name: np.stack([getattr(step, attr) for step in steps]) for name, attr in fields.items()})
    # Gymnasium's TimeLimit also sets ``truncated`` where a fall lands on the last allowed step; deprl
    # then records a termination only. Both bootstrap nothing there (lit_rl's replay discounts by
    # ``~terminated`` and resets on either flag), so deprl's truncation is ``truncated & ~terminated``.
    ours["truncations"] = ours["truncated"] & ~ours["terminations"]
    assert sum(step.faults for step in steps) == 0
    return ours


@pytest.mark.parametrize("case", META["cases"])
def test_env_path_reproduces_deprl(case):
    theirs, ours = deprl_record(case), lit_rl_record(case)
    steps, envs = ACTIONS.shape[:2]
    assert theirs["observations"].shape == (steps, envs, theirs["start_observations"].shape[-1])
    for name in ("start_observations", "start_muscle_states"):
        assert ours[name].dtype == theirs[name].dtype
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"{case}: {name}")
    for t in range(steps):
        for name in (
            "observations", "next_observations", "rewards", "terminations", "truncations", "resets", "muscle_states"
        ):  # fmt: skip
            assert ours[name][t].dtype == theirs[name][t].dtype, name
            np.testing.assert_array_equal(ours[name][t], theirs[name][t], err_msg=f"{case}: step {t}, {name}")
    # lit_rl's raw flag: deprl's truncations plus the falls on the time limit's last step (the fixture
    # has such falls: env 2 falls on its 40th step in both cases)
    fall_at_limit = theirs["terminations"] & theirs["at_time_limit"]
    assert fall_at_limit.any()
    np.testing.assert_array_equal(ours["truncated"], theirs["truncations"] | fall_at_limit)
    # the comparison covers both kinds of episode end, and episodes after them
    counts = META["counts"][case]
    assert int(theirs["terminations"].sum()) == counts["terminations"] > 0
    assert int(theirs["truncations"].sum()) == counts["truncations"] > 0


@pytest.mark.parametrize("case", META["cases"])
def test_final_muscle_state_matters(case):
    """Without ``terminal_muscle_range`` the DEP inputs are deprl's until the first episode ends,
    and differ after it: the final state of an episode widens deprl's running muscle range."""
    theirs, ours = deprl_record(case), lit_rl_record(case, terminal_muscle_range=False)
    first_end = int(np.argwhere(theirs["resets"].any(axis=1))[0, 0])
    assert 0 < first_end < ACTIONS.shape[0] - 1
    np.testing.assert_array_equal(ours["start_muscle_states"], theirs["start_muscle_states"])
    np.testing.assert_array_equal(ours["muscle_states"][:first_end], theirs["muscle_states"][:first_end])
    # the envs themselves still agree: only the normalisation of DEP's input differs
    np.testing.assert_array_equal(ours["observations"], theirs["observations"])
    after = ours["muscle_states"][first_end:] != theirs["muscle_states"][first_end:]
    ended = theirs["resets"][first_end]
    assert after[0][ended].any()  # right after the reset, in the env whose episode ended
    assert after.any(axis=(0, 2))[ended].all()

"""An env's full state mid-episode (``lit_rl.envs.snapshot``): captured from one env, restored into
a freshly made one, which then continues bit for bit (through later resets too), for Gymnasium's
classic-control and MuJoCo tasks and the MyoSuite tasks of the shipped configs; the vector envs'
own state (observations, running returns, muscle-state ranges) in and out of worker processes;
and the fallback, with a warning that names the env, when a state cannot be captured."""

import logging

import gymnasium as gym
import numpy as np
import pytest

from lit_rl.envs import EnvConfig, make_vector_envs
from lit_rl.envs.make import import_env_modules
from lit_rl.envs.snapshot import Unsupported, capture, physics_of, restore

MYOSUITE = ["myoLegWalk-v0", "myoChallengeChaseTagP1-v0", "myoChallengeRelocateP1-v0"]


def fresh(env_id: str):
    import_env_modules(["myosuite"] if env_id.startswith("myo") else ["tests.faulty_envs"])
    env = gym.make(env_id)
    return env, physics_of(env).pristine(env)


def play(env, actions) -> list:
    """Observations, rewards, flags and (MuJoCo) actuator lengths and forces of each step."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        data = getattr(env.unwrapped, "data", None)
        muscles = () if data is None else (data.actuator_length.copy(), data.actuator_force.copy())
        out.append((obs.copy(), reward, terminated, truncated, *muscles))
        if terminated or truncated:
            out.append(env.reset()[0].copy())
    return out


def assert_same_play(a: list, b: list) -> None:
    assert len(a) == len(b)
    for step_a, step_b in zip(a, b, strict=True):
        if isinstance(step_a, np.ndarray):  # an observation after a reset
            assert np.array_equal(step_a, step_b)
            continue
        for x, y in zip(step_a, step_b, strict=True):
            assert np.array_equal(x, y)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "HalfCheetah-v5", *MYOSUITE])
def test_a_restored_env_continues_its_episode_bit_for_bit(env_id):
    env, pristine = fresh(env_id)
    env.reset(seed=3)
    space = env.action_space
    actions = np.random.default_rng(0).uniform(space.low, space.high, (260, *space.shape)).astype(np.float32)
    play(env, actions[:37])
    state = capture(env, pristine)
    assert len(state) < 100_000  # the model's meshes are not in it
    after = play(env, actions[37:])
    assert any(isinstance(step, np.ndarray) for step in after) or env_id == "HalfCheetah-v5", "no reset was tried"
    other, _ = fresh(env_id)
    restore(other, state)
    assert_same_play(play(other, actions[37:]), after)


def test_model_fields_the_task_changed_are_restored():
    env, pristine = fresh("HalfCheetah-v5")
    env.reset(seed=0)
    env.unwrapped.model.body_mass[2] *= 3.0  # as a task that randomises masses would
    env.unwrapped.model.opt.gravity[2] = -5.0
    actions = np.random.default_rng(1).uniform(-1, 1, (40, 6)).astype(np.float32)
    play(env, actions[:10])
    state = capture(env, pristine)
    after = play(env, actions[10:])
    other, _ = fresh("HalfCheetah-v5")
    restore(other, state)
    assert other.unwrapped.model.body_mass[2] == env.unwrapped.model.body_mass[2]
    assert other.unwrapped.model.opt.gravity[2] == -5.0
    assert_same_play(play(other, actions[10:]), after)


@pytest.mark.parametrize("parallel", [1, 2])
def test_vector_envs_continue_every_episode_after_a_restore(parallel):
    """myoLegWalk with DEP's muscle states, envs in this process or in 2 workers: the restored
    envs give the same steps, muscle states included, as the ones that went on."""
    config = EnvConfig(id="myoLegWalk-v0", make_kwargs={"reset_type": "random", "max_episode_steps": 30},
                       scaled_actions=False, muscle_sigmoid=True, imports=["myosuite"])  # fmt: skip
    args = dict(parallel=parallel, sequential=4 // parallel, seed=5, muscle_states=True)
    rng = np.random.default_rng(2)
    actions = rng.uniform(-1, 1, (60, 4, 80)).astype(np.float32)
    first, second = make_vector_envs(config, **args), make_vector_envs(config, **args)
    try:
        first.reset()
        for a in actions[:17]:
            first.step(a)
        states = first.env_states()
        assert all(state["env"] is not None for state in states)
        assert any(state["length"] > 0 for state in states) and any(state["muscles"]["max_l"].any() for state in states)
        assert second.load_env_states(states)
        assert np.array_equal(second.current_observations(), first.current_observations())
        assert np.array_equal(second.current_muscle_states(), first.current_muscle_states())
        for a in actions[17:]:
            x, y = first.step(a), second.step(a)
            for name in ("observations", "next_observations", "rewards", "terminated", "truncated", "muscle_states"):
                assert np.array_equal(getattr(x, name), getattr(y, name)), name
            assert x.finished == y.finished
    finally:
        first.close()
        second.close()


def test_an_env_that_cannot_be_captured_is_named_once_and_the_resume_resets_it(caplog):
    with pytest.raises(
        Unsupported, match=r"UnpicklablePendulum-v0: attribute UnpicklablePendulum\.lock cannot be pickled"
    ):
        env, pristine = fresh("UnpicklablePendulum-v0")
        env.reset(seed=0)
        capture(env, pristine)
    config = EnvConfig(id="UnpicklablePendulum-v0", imports=["tests.faulty_envs"])
    envs, other = make_vector_envs(config, 1, 2, seed=0), make_vector_envs(config, 1, 2, seed=0)
    envs.reset()
    with caplog.at_level(logging.WARNING, logger="lit_rl.envs.vector"):
        envs.env_states()
        states = envs.env_states()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "UnpicklablePendulum-v0" in warnings[0] and "new episode" in warnings[0]
    assert states[0]["env"] is None
    assert not other.load_env_states(states)  # the caller resets the envs, as before this existed

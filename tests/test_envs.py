import gymnasium as gym
import numpy as np
import pytest

from lit_rl.envs import ActionMap, EnvConfig, SequentialEnvs, make_env


def test_unknown_env_id_names_it_and_the_closest_ids():
    with pytest.raises(gym.error.NameNotFound) as error:
        make_env(EnvConfig(id="Pendulim-v1"))
    assert "'Pendulim-v1'" in str(error.value)
    assert "Pendulum-v1" in str(error.value)


def test_unknown_import_module_is_named():
    with pytest.raises(ImportError, match="not_a_real_package"):
        make_env(EnvConfig(id="Pendulum-v1", imports=["not_a_real_package"]))


def test_make_kwargs_and_env_args_are_applied():
    env = make_env(EnvConfig(id="Pendulum-v1", make_kwargs={"max_episode_steps": 7}, env_args={"max_speed": 3.0}))
    assert env.spec.max_episode_steps == 7
    assert env.unwrapped.max_speed == 3.0
    with pytest.raises(AttributeError, match="not_an_attribute"):
        make_env(EnvConfig(id="Pendulum-v1", env_args={"not_an_attribute": 1}))


def test_action_map_scaled_clipped_and_muscle_sigmoid():
    space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32), dtype=np.float32)
    scaled = ActionMap(space, EnvConfig(id="x", scaled_actions=True))
    assert np.allclose(scaled(np.array([-1.0, 1.0])), [-2.0, 1.0])
    assert np.allclose(scaled(np.array([0.0, 0.0])), [0.0, 0.5])
    assert np.allclose(scaled(np.array([5.0, -5.0])), [2.0, 0.0])  # clipped to [-1, 1] first
    assert np.allclose(scaled.agent_space.low, -1.0)
    raw = ActionMap(space, EnvConfig(id="x", scaled_actions=False))
    assert np.allclose(raw(np.array([-3.0, 0.5])), [-2.0, 0.5])
    assert np.allclose(raw.agent_space.high, [2.0, 1.0])
    # MyoSuite 2's muscle mapping: [-1, 1] -> 1 / (1 + exp(-5 (a - 0.5))), here for an env in [0, 1].
    muscles = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
    sigmoid = ActionMap(muscles, EnvConfig(id="x", scaled_actions=False, muscle_sigmoid=True))
    assert np.allclose(sigmoid.agent_space.low, -1.0) and np.allclose(sigmoid.agent_space.high, 1.0)
    assert np.allclose(sigmoid(np.array([-1.0, 0.5, 1.0])), [1 / (1 + np.exp(7.5)), 0.5, 1 / (1 + np.exp(-2.5))])
    assert np.allclose(sigmoid(np.array([-9.0, 0.5, 9.0])), sigmoid(np.array([-1.0, 0.5, 1.0])))
    with pytest.raises(ValueError, match="scaled_actions and muscle_sigmoid"):
        EnvConfig(id="x", scaled_actions=True, muscle_sigmoid=True)


def test_vector_envs_autoreset_keeps_final_observation_and_truncation_is_not_termination():
    envs = SequentialEnvs(EnvConfig(id="Pendulum-v1", make_kwargs={"max_episode_steps": 5}), num_envs=2, seed=3)
    envs.reset()
    for _ in range(4):
        step = envs.step(np.zeros((2, 1), np.float32))
        assert not step.resets.any()
        assert np.array_equal(step.observations, step.next_observations)
    step = envs.step(np.zeros((2, 1), np.float32))
    assert step.truncated.all() and not step.terminated.any()
    assert len(step.finished) == 2 and all(length == 5 for _, length in step.finished)
    # the replay gets the true final observation, acting continues from the reset observation
    assert not np.allclose(step.observations, step.next_observations)


def test_vector_envs_are_seeded_per_env():
    a = SequentialEnvs(EnvConfig(id="Pendulum-v1"), num_envs=2, seed=0).reset()
    b = SequentialEnvs(EnvConfig(id="Pendulum-v1"), num_envs=2, seed=0).reset()
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])


def test_myosuite_env_from_config():
    config = EnvConfig(
        id="myoLegWalk-v0", make_kwargs={"reset_type": "random"}, scaled_actions=False, imports=["myosuite"]
    )
    envs = SequentialEnvs(config, num_envs=1, seed=0)
    obs = envs.reset()
    assert obs.shape == (1, 403)
    assert envs.action_space.shape == (80,)
    assert np.allclose(envs.action_space.low, 0.0)  # scaled_actions false: the env's own bounds
    step = envs.step(np.full((1, 80), 0.5, np.float32))
    assert np.isfinite(step.next_observations).all()
    envs.close()

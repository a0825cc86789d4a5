import numpy as np
import pytest

from lit_rl.envs import EnvConfig, EnvUnsupported, MuscleState, ParallelEnvs, SequentialEnvs, make_vector_envs

PENDULUM = EnvConfig(id="Pendulum-v1", make_kwargs={"max_episode_steps": 5})
FAULTY = EnvConfig(id="FaultyPendulum-v0", imports=["tests.faulty_envs"])


def test_parallel_workers_match_sequential_stepping():
    sequential = SequentialEnvs(PENDULUM, num_envs=4, seed=7)
    parallel = ParallelEnvs(PENDULUM, parallel=2, sequential=2, seed=7)
    try:
        assert np.array_equal(sequential.reset(), parallel.reset())
        rng = np.random.default_rng(0)
        for _ in range(12):
            actions = rng.uniform(-1, 1, (4, 1)).astype(np.float32)
            a, b = sequential.step(actions), parallel.step(actions)
            for name in ("observations", "next_observations", "rewards", "terminated", "truncated"):
                assert np.array_equal(getattr(a, name), getattr(b, name)), name
            assert a.finished == b.finished
        assert sequential.rng_states() == parallel.rng_states()
    finally:
        parallel.close()


@pytest.mark.parametrize("parallel", [1, 2])
def test_simulator_faults_end_the_episode_and_are_counted(parallel):
    envs = make_vector_envs(FAULTY, parallel=parallel, sequential=1, seed=0)
    try:
        envs.reset()
        faults = []
        for t in range(1, 8):
            step = envs.step(np.zeros((parallel, 1), np.float32))
            faults.append(step.faults)
            if t in (3, 5):  # an exception, then a NaN observation: terminated, reward 0, env reset
                assert step.terminated.all() and (step.rewards == 0).all()
                assert len(step.finished) == parallel
            else:
                assert not step.resets.any()
            assert np.isfinite(step.observations).all() and np.isfinite(step.next_observations).all()
        assert faults == [0, 0, parallel, 0, parallel, 0, 0]
    finally:
        envs.close()


def test_muscle_state_normalisation():
    muscles = MuscleState(num_muscles=2, force_scale=0.5)
    x = muscles(np.array([1.0, 2.0]), np.array([0.0, 10.0]))
    # first call: min = max = value, so the length part is 2 * (0 / 0.1 - 0.5) = -1
    assert np.allclose(x, [-1.0, -1.0])
    x = muscles(np.array([2.0, np.nan]), np.array([1.0, 10.0]))
    assert muscles.max_l.tolist() == [1.0, 2.0]  # NaN vector: no length update
    assert muscles.max_f.tolist() == [1.0, 10.0]


def test_muscle_states_from_myosuite_and_a_clear_error_without_actuators():
    config = EnvConfig(id="myoLegWalk-v0", scaled_actions=False, imports=["myosuite"])
    envs = SequentialEnvs(config, num_envs=1, seed=0, muscle_states=True)
    envs.reset()
    step = envs.step(np.full((1, 80), 0.3, np.float32))
    assert step.muscle_states.shape == (1, 80) and np.isfinite(step.muscle_states).all()
    envs.close()
    with pytest.raises(EnvUnsupported, match="no actuator data"):
        SequentialEnvs(PENDULUM, num_envs=1, seed=0, muscle_states=True)


def test_terminal_muscle_range_reaches_the_workers():
    """``terminal_muscle_range`` works the same in worker processes as in-process (the in-process
    path is golden-tested against deprl in tests/test_env_deprl.py), and changes DEP's inputs."""
    config = EnvConfig(id="myoLegWalk-v0", make_kwargs={"max_episode_steps": 5}, scaled_actions=False,
                       imports=["myosuite"])  # fmt: skip
    runs = []
    for parallel, terminal in ((1, True), (2, True), (1, False)):
        envs = make_vector_envs(config, parallel, 2 // parallel, seed=0, muscle_states=True,
                                terminal_muscle_range=terminal)  # fmt: skip
        try:
            envs.reset()
            rng = np.random.RandomState(0)
            runs.append([envs.step(rng.uniform(0, 1, (2, 80)).astype(np.float32)).muscle_states for _ in range(12)])
        finally:
            envs.close()
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0][5:], runs[2][5:])  # from the first episode end on
    np.testing.assert_array_equal(runs[0][:4], runs[2][:4])

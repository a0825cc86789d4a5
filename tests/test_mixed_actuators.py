"""DEP on bodies that mix muscles with other actuators (issue 30): DEP reads and drives the
muscles only; the other actuators get the policy side's actions in DEP's steps. Real MyoSuite
envs: myoChallengeBimanual-v0 (63 muscles and a 17-motor prosthesis, one action per actuator)
and myoChallengeOslRunFixed-v0 (54 muscles and the OSL knee and ankle motors, which the env's own
controller drives: its 54 actions are the muscles'). Bodies of muscles only are unchanged
(tests/test_dep_deprl.py, tests/test_env_deprl.py, tests/test_mpo_deprl.py: deprl's numbers)."""

import mujoco
import numpy as np
import pytest
import torch

from lit_rl.acting import Actor, DEPConfig, DEPController, RolloutContext
from lit_rl.algos import MPO
from lit_rl.envs import EnvConfig, MuscleState, SequentialEnvs, probe_env

BIMANUAL = EnvConfig(id="myoChallengeBimanual-v0", scaled_actions=False, imports=["myosuite"])
OSL_RUN = EnvConfig(id="myoChallengeOslRunFixed-v0", scaled_actions=False, imports=["myosuite"])
DEP = DEPConfig(kappa=1169.7, tau=40, buffer_size=200, time_dist=5, s4avg=2, bias_rate=0.002)


def muscle_mask(env) -> np.ndarray:
    return np.asarray(env.unwrapped.model.actuator_dyntype) == mujoco.mjtDyn.mjDYN_MUSCLE


@pytest.mark.parametrize(
    ("config", "actuators", "muscles", "actions", "dep_dims"),
    [(BIMANUAL, 80, 63, 80, list(range(63))), (OSL_RUN, 56, 54, 54, None)],
    ids=["Bimanual", "OslRun"],
)
def test_dep_reads_the_muscles_only(config, actuators, muscles, actions, dep_dims):
    probe = probe_env(config)
    assert (probe.dep.actuators, probe.dep.muscles, probe.action_space.shape) == (actuators, muscles, (actions,))
    assert probe.dep.problem is None
    assert (None if probe.dep.action_dims is None else list(probe.dep.action_dims)) == dep_dims
    envs = SequentialEnvs(config, num_envs=2, seed=0, muscle_states=True)
    try:
        envs.reset()
        rng = np.random.default_rng(0)
        for _ in range(3):
            step = envs.step(rng.uniform(-1, 1, (2, actions)).astype(np.float32))
            assert step.muscle_states.shape == (2, muscles) and np.isfinite(step.muscle_states).all()
        env = envs.group.envs[0]
        mask = muscle_mask(env)
        assert mask.sum() == muscles and len(mask) == actuators
        length, force = MuscleState.read(env)
        assert np.array_equal(length, env.unwrapped.data.actuator_length[mask])
        assert np.array_equal(force, env.unwrapped.data.actuator_force[mask])
    finally:
        envs.close()


def context(env_steps: int, muscle_states: np.ndarray) -> RolloutContext:
    return RolloutContext(
        env_steps, 0, torch.zeros(len(muscle_states), dtype=torch.bool), torch.from_numpy(muscle_states), 10_000
    )


def muscle_mask_of(probe) -> np.ndarray:
    """The action dims DEP drives, as a mask over the actuators (one action per actuator)."""
    mask = np.zeros(probe.dep.actuators, bool)
    mask[list(probe.dep.action_dims)] = True
    return mask


@torch.no_grad()  # as the collector acts
def test_in_deps_steps_the_motors_get_the_policys_actions():
    """Bimanual, DEP's InitExplore (mode 1): every executed action is DEP's on the 63 muscles and
    the policy's own sample (``explore``, the same draw) on the 17 prosthesis motors, and that is
    what the env's motors are given; in mode 4's test episodes the motors get the greedy policy's."""
    probe = probe_env(BIMANUAL)
    motors = ~muscle_mask_of(probe)
    module = MPO(observation_dim=probe.observation_dim, action_bounds=[[-1.0] * 80, [1.0] * 80], hidden_size=16,
                 dep_mode=1, dep=DEP)  # fmt: skip
    actor = Actor(module, probe.dep.action_dims)
    reference = DEPController(2, 63, DEP)
    envs = SequentialEnvs(BIMANUAL, num_envs=2, seed=0, muscle_states=True, probe=probe)
    try:
        obs, muscles = envs.reset(), envs.current_muscle_states()
        for t in range(6):
            rng = torch.get_rng_state()
            actions = actor.act(torch.from_numpy(obs), context(2 * t, muscles))
            if t > 0:  # (the first call also seeds DEP's switch from the global RNG)
                torch.set_rng_state(rng)
                sampled = module.explore(torch.from_numpy(obs), 2 * t, None)
                assert torch.equal(actions[:, motors], sampled[:, motors])
            assert torch.equal(actions[:, :63], reference.step(torch.from_numpy(muscles)))
            step = envs.step(actions.numpy())
            for env, action in zip(envs.group.envs, actions.numpy(), strict=True):
                # what the prosthesis was driven with this step: the action mapped to its ctrl range
                low, high = env.unwrapped.model.actuator_ctrlrange[motors].T
                driven = (low + high) / 2 + np.clip(action[motors], -1, 1) * (high - low) / 2
                assert np.allclose(env.unwrapped.data.ctrl[motors], driven, atol=1e-6)
            obs, muscles = step.observations, step.muscle_states
    finally:
        envs.close()
    pure = Actor(MPO(observation_dim=probe.observation_dim, action_bounds=[[-1.0] * 80, [1.0] * 80], hidden_size=16,
                     dep_mode=4, dep=DEP), probe.dep.action_dims)  # fmt: skip
    observation = torch.from_numpy(obs[:1])
    test_actions = pure.act_for_evaluation(observation, torch.from_numpy(muscles[:1]))
    assert torch.equal(test_actions[:, motors], pure.policy.act_greedy(observation)[:, motors])
    assert test_actions[:, :63].abs().max() <= 1


@torch.no_grad()
def test_on_oslrun_dep_drives_every_action_and_the_env_drives_the_osl_motors():
    """OslRun's 54 actions are its muscles' (the OSL knee and ankle torques come from the env's own
    controller), so DEP's actions are the whole action, as on a body of muscles only."""
    probe = probe_env(OSL_RUN)
    module = MPO(observation_dim=probe.observation_dim, action_bounds=[[-1.0] * 54, [1.0] * 54], hidden_size=16,
                 dep_mode=3, dep=DEP)  # fmt: skip
    actor, reference = Actor(module, probe.dep.action_dims), DEPController(2, 54, DEP)
    envs = SequentialEnvs(OSL_RUN, num_envs=2, seed=0, muscle_states=True, probe=probe)
    try:
        obs, muscles = envs.reset(), envs.current_muscle_states()
        for t in range(4):
            actions = actor.act(torch.from_numpy(obs), context(2 * t, muscles))
            assert torch.equal(actions, reference.step(torch.from_numpy(muscles)))
            step = envs.step(actions.numpy())
            obs, muscles = step.observations, step.muscle_states
    finally:
        envs.close()

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import yaml

from lit_rl.envs import ActionMap, EnvConfig, EnvUnsupported, SequentialEnvs, make_env, probe_env
from tests.conftest import ROOT, SMOKE, cli_env


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
    # MyoSuite 2's muscle mapping (base_v0.step to 2.11): 1 / (1 + exp(-5 (a - 0.5))) of the unclipped
    # action, so a sample above 1 still raises the activation; here for an env in [0, 1].
    muscles = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
    sigmoid = ActionMap(muscles, EnvConfig(id="x", scaled_actions=False, muscle_sigmoid=True))
    assert np.allclose(sigmoid.agent_space.low, -1.0) and np.allclose(sigmoid.agent_space.high, 1.0)
    a = np.array([-1.0, 0.5, 1.0, 1.5], np.float32)
    assert np.allclose(sigmoid(a), 1 / (1 + np.exp(-5 * (a.astype(np.float64) - 0.5))))
    assert sigmoid(a)[3] > sigmoid(a)[2] + 0.06  # 0.993 against 0.924: not clipped to 1 first
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in exp far outside [-1, 1]
        assert np.allclose(sigmoid(np.array([-300.0, -40.0, 40.0, 300.0], np.float32)), [0.0, 0.0, 1.0, 1.0])
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


# What cannot be trained is refused when fit starts, in one line that says why and what to do (issue 30).


@pytest.mark.parametrize(
    ("env_id", "shown"),
    [("CartPole-v1", "its action space is Discrete(2)"), ("Blackjack-v1", "its observation space is Tuple(")],
)
def test_spaces_that_are_not_box_are_refused_in_one_line(env_id, shown):
    with pytest.raises(EnvUnsupported) as refused:
        probe_env(EnvConfig(id=env_id))
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"env {env_id}: lit_rl trains on Box") and shown in message


def test_an_env_that_fails_to_be_made_or_reset_is_refused_with_its_error_and_how_to_see_it():
    with pytest.raises(EnvUnsupported) as refused:
        probe_env(EnvConfig(id="Pendulum-v1", make_kwargs={"not_a_kwarg": 1}))
    message = str(refused.value)
    assert message.startswith("env Pendulum-v1 cannot be made here (TypeError: ") and "not_a_kwarg" in message
    assert "python -c \"import gymnasium as gym; gym.make('Pendulum-v1').reset()\"" in message and "\n" not in message
    faulty = EnvConfig(id="FaultyPendulum-v0", make_kwargs={"reset_raises_at": 1}, imports=["tests.faulty_envs"])
    with pytest.raises(EnvUnsupported, match=r"^env FaultyPendulum-v0 cannot be reset here \(RuntimeError: simulated"):
        probe_env(faulty)


def fit_smoke(tmp_path, *extra: str, environment: dict | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "lit_rl", "fit", "--config", str(SMOKE), "--working_dir", str(tmp_path)]
    args += ["--trainer.logger", "false", *extra]
    return subprocess.run(args, cwd=ROOT, env={**cli_env(), **(environment or {})}, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_fit_refuses_spaces_that_are_not_box_in_one_line(tmp_path):
    result = fit_smoke(tmp_path, "--data.init_args.env.id", "CartPole-v1")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "lit_rl: error: env CartPole-v1: lit_rl trains on Box (continuous) observation and action spaces, but its "
        "action space is Discrete(2); wrap it into a Box space in an env of your own (gymnasium.wrappers."
        "FlattenObservation for a Dict observation), or choose a task with Box spaces"
    ]
    assert not any(tmp_path.iterdir())


def test_a_network_error_is_told_as_a_download_that_failed():
    """What ``env_failure`` says of an env that raised a real network error (a refused connection)."""
    import urllib.error
    import urllib.request

    from lit_rl.envs.make import env_failure

    with pytest.raises(urllib.error.URLError) as raised:
        urllib.request.urlopen("http://127.0.0.1:9/motion.npz", timeout=5)
    message = str(env_failure(EnvConfig(id="myoFullBodyDirectional-v0"), "reset", raised.value))
    assert message.startswith("env myoFullBodyDirectional-v0 cannot be reset here (URLError: ")
    assert "it downloads data when it is made or reset, and the server cannot be reached from here" in message


@pytest.mark.slow  # the full body takes 10-60 s to build; the two tests above cover the same code
def test_fit_refuses_an_env_that_downloads_when_there_is_no_network_in_one_line(tmp_path):
    """myoFullBodyDirectional-v0 fetches motion data from the Hugging Face hub when it is made
    (HF_HUB_OFFLINE=1 makes "no network" certain here): exit status 2, one line, nothing written."""
    result = fit_smoke(tmp_path, "--data.init_args.env.id", "myoFullBodyDirectional-v0",
                       "--data.init_args.env.imports", "[myosuite]", environment={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("lit_rl: error:")]
    assert len(errors) == 1 and errors[0].startswith("lit_rl: error: env myoFullBodyDirectional-v0 cannot be made")
    assert "downloads data" in errors[0] and "network" in errors[0]
    assert not any(tmp_path.iterdir())


def test_fit_refuses_dep_on_an_env_without_muscle_states_before_a_step(tmp_path):
    """The refusal is the CLI's one line (exit 2, no traceback) and names the mode, the env and the
    way out; nothing is trained or saved."""
    result = fit_smoke(tmp_path, "--model.init_args.dep_mode", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "dep_mode 1: Pendulum-v1 has no actuator data" in last and "--model.init_args.dep_mode 0" in last, last
    assert not list(tmp_path.rglob("*.ckpt"))


def test_chasetag_config_maps_actions_as_myosuite2():
    """configs/dep_mpo_myochasetag.yaml (raw activations, lit_rl's sigmoid) steps as MyoSuite 3's own
    mapping for actions in [-1, 1]; above 1 it gives MyoSuite 2's larger activation, not the clipped 0.924."""
    config = yaml.safe_load((ROOT / "configs" / "dep_mpo_myochasetag.yaml").read_text())["data"]["init_args"]["env"]
    ours_config = EnvConfig(**config)
    theirs_kwargs = {k: v for k, v in config["make_kwargs"].items() if k != "normalize_act"}  # MyoSuite 3's mapping
    theirs_config = EnvConfig(**{**config, "muscle_sigmoid": False, "make_kwargs": theirs_kwargs})
    ours, theirs = make_env(ours_config), make_env(theirs_config)
    assert np.allclose(ours.action_space.low, 0.0) and np.allclose(theirs.action_space.low, -1.0)
    mapping = ActionMap(ours.action_space, ours_config)
    actions = np.random.default_rng(0).uniform(-1, 1, (3, *theirs.action_space.shape)).astype(np.float32)
    first, _ = ours.reset(seed=4)
    assert np.array_equal(first, theirs.reset(seed=4)[0])
    for action in actions:
        assert np.allclose(ours.step(mapping(action))[0], theirs.step(action)[0], atol=1e-6)
        assert np.allclose(ours.unwrapped.data.ctrl, theirs.unwrapped.data.ctrl, atol=1e-7)
    above = np.full(theirs.action_space.shape, 1.5, np.float32)
    ours.step(mapping(above))
    theirs.step(above)
    assert np.allclose(ours.unwrapped.data.ctrl, 1 / (1 + np.exp(-5.0)), atol=1e-6)  # 0.993
    assert np.allclose(theirs.unwrapped.data.ctrl, 1 / (1 + np.exp(-2.5)), atol=1e-6)  # 0.924: clipped first

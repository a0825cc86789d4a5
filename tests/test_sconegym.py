"""The DEP-MPO configs (myosuite and sconegym) mirror deprl's files; sconegym configs fail clearly
while sconegym is missing; envs of the old ``gym`` API (sconegym's) run through ``LegacyEnv``."""

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from lit_rl.commands.convert import convert, load
from lit_rl.envs import EnvConfig, make_env
from lit_rl.envs.legacy import LegacyEnv
from tests.conftest import ROOT, run_cli

FIXTURES = ROOT / "tests" / "fixtures" / "deprl"
# lit_rl config -> the deprl file it mirrors
CONFIGS = {
    "dep_mpo_myolegwalk.yaml": "myoLegWalk.yaml",
    "dep_mpo_myochasetag.yaml": "myoChaseTag.yaml",
    "dep_mpo_myorelocate.yaml": "myoRelocate.yaml",
    **{
        f"scone{kind}_{h}.yaml": f"scone_{kind}_{h}.yaml"
        for kind in ("walk", "run")
        for h in ("h0918", "h1622", "h2190")
    },
}
SCONE = [name for name in CONFIGS if name.startswith("scone")]


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_shipped_config_is_the_conversion_of_its_deprl_file(config):
    converted, _ = convert(load(FIXTURES / CONFIGS[config]))
    assert yaml.safe_load((ROOT / "configs" / config).read_text()) == converted


@pytest.mark.parametrize("config", SCONE)
def test_sconegym_configs_name_the_missing_package_and_how_to_install_it(config):
    env = yaml.safe_load((ROOT / "configs" / config).read_text())["data"]["init_args"]["env"]
    with pytest.raises(ImportError, match=r"'sconegym' is missing.*not on PyPI.*github.com/tgeijten/sconegym"):
        make_env(EnvConfig(**env))


def test_sconegym_config_fails_before_any_work_with_the_install_hint(tmp_path):
    result = run_cli("fit", "--config", "configs/sconewalk_h0918.yaml", "--working_dir", str(tmp_path))
    assert result.returncode != 0
    assert "sconegym is not on PyPI" in result.stderr and "pip install -e ." in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


def test_sconegym_walk_configs_use_the_adaptive_energy_replay():
    num_acts = {"h0918": 18, "h1622": 22, "h2190": 90}
    for h, expected in num_acts.items():
        replay = yaml.safe_load((ROOT / "configs" / f"sconewalk_{h}.yaml").read_text())["data"]["init_args"]["replay"]
        assert replay["adaptive_energy"] == {"num_acts": expected}
        run_replay = yaml.safe_load((ROOT / "configs" / f"sconerun_{h}.yaml").read_text())["data"]["init_args"]
        assert "adaptive_energy" not in run_replay["replay"]


class OldApiPendulum:
    """Pendulum behind the old gym API (reset -> obs, step -> 4-tuple), as sconegym's envs are."""

    def __init__(self):
        self.env = PendulumEnv()
        self.observation_space, self.action_space = self.env.observation_space, self.env.action_space
        self.steps = 0

    def reset(self):
        self.steps = 0
        return self.env.reset(seed=int(np.random.randint(1 << 30)))[0]

    def step(self, action):
        obs, reward, _, _, _ = self.env.step(action)
        self.steps += 1
        info = {"TimeLimit.truncated": True} if self.steps == 5 else {}
        return obs, reward, self.steps >= 5, info

    def close(self):
        self.env.close()


def test_legacy_env_speaks_gymnasium_and_seeds_numpy():
    env = LegacyEnv(OldApiPendulum())
    assert isinstance(env.action_space, gym.spaces.Box) and env.action_space.dtype == np.float32
    first, info = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    assert info == {} and first.dtype == np.float32 and np.array_equal(first, again)
    for _ in range(4):
        obs, reward, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        assert obs.shape == (3,) and isinstance(reward, float) and not (terminated or truncated)
    _, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
    assert truncated and not terminated  # the old TimeLimit flag becomes a truncation
    assert isinstance(env.unwrapped, OldApiPendulum)

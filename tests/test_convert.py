"""``python -m lit_rl convert``: deprl experiment files (copies in tests/fixtures/deprl) to lit_rl configs."""

import builtins
import json
import re

import pytest
import yaml

from lit_rl.commands.convert import ConvertError, convert, load
from tests.conftest import ROOT, ok, run_cli

FIXTURES = ROOT / "tests" / "fixtures" / "deprl"

# The DEP block of the three myosuite files and of test_settings.json (same values).
MYO_DEP = {
    "bias_rate": 0.002,
    "buffer_size": 200,
    "intervention_length": 5,
    "intervention_proba": 0.0004,
    "kappa": 1169.7,
    "normalization": "independent",
    "q_norm_selector": "l2",
    "regularization": 32,
    "s4avg": 2,
    "sensor_delay": 1,
    "tau": 40,
    "test_episode_every": 3,
    "time_dist": 5,
    "with_learning": True,
}
MPO_ARGS = {"hidden_size": 1024, "lr_actor": 3.53e-05, "lr_critic": 6.081e-05, "lr_dual": 0.00213}
# deprl's computation (docs/dep.md, "What differs from deprl"): every converted agent
DEPRL_MODEL = {"normalize_observations": "critic", "normalizer_statistics": "float32"}
DEPRL_REPLAY = {"phase_clock": "before_step"}
MYO_HEADER = "import deprl, myosuite; from myosuite.utils import gym"


def myosuite_expected(env_id: str, name: str, make_kwargs: dict, mpo_args: dict, sigmoid: bool = False) -> dict:
    return {
        "seed_everything": 0,
        "working_dir": "./baselines_DEPRL",
        "name": name,
        "resume": True,
        "full_save": True,
        "model": {
            "class_path": "lit_rl.algos.MPO",
            "init_args": {**mpo_args, **DEPRL_MODEL, "dep_mode": 3, "dep": MYO_DEP},
        },
        "data": {
            "class_path": "lit_rl.data.RolloutDataModule",
            "init_args": {
                "env": {
                    "id": env_id,
                    "scaled_actions": False,
                    **({"muscle_sigmoid": True} if sigmoid else {}),
                    "make_kwargs": make_kwargs,
                    "env_args": {},
                    "imports": ["myosuite"],
                },
                "test_env": None,
                "parallel": 20,
                "sequential": 10,
                "terminal_muscle_range": True,
                "replay": {
                    "return_steps": 3,
                    "batch_size": 256,
                    "steps_before_batches": 200000,
                    "steps_between_batches": 1000,
                    "batch_iterations": 30,
                    **DEPRL_REPLAY,
                },
                "total_steps": 100000000,
                "epoch_steps": 200000,
                "save_steps": 1000000,
            },
        },
    }


MYOSUITE = {
    "myoLegWalk.yaml": (
        myosuite_expected("myoLegWalk-v0", "myoLeg", {"reset_type": "random"}, MPO_ARGS, sigmoid=True),
        {
            "tonic.header",
            "tonic.before_training",
            "tonic.after_training",
            "tonic.environment_name",
            "tonic.environment[scaled_actions]",  # MyoSuite 3's raw activations: muscle_sigmoid added
        },
    ),
    "myoChaseTag.yaml": (  # MyoSuite 3 clips before its sigmoid: raw activations and lit_rl's unclipped sigmoid
        myosuite_expected(
            "myoChallengeChaseTagP1-v0",
            "myoChasetag",
            {"normalize_act": False, "reset_type": "random"},
            MPO_ARGS,
            sigmoid=True,
        ),
        {
            "tonic.header",
            "tonic.before_training",
            "tonic.after_training",
            "tonic.environment_name",
            "tonic.path",
            "tonic.environment[scaled_actions]",
        },
    ),
    "myoRelocate.yaml": (
        myosuite_expected(  # this file has no mpo_args
            "myoChallengeRelocateP1-v0", "Relocate", {"normalize_act": False}, {}, sigmoid=True
        ),
        {
            "tonic.header",
            "tonic.before_training",
            "tonic.after_training",
            "tonic.environment_name",
            "tonic.environment[scaled_actions]",
        },
    ),
}


def assert_same(actual, expected) -> None:
    """Equal, in the same key order and with the same types (200000 is not 200000.0)."""
    assert actual == expected
    assert json.dumps(actual) == json.dumps(expected)


def reported_keys(report: list[str]) -> list[str]:
    keys = []
    for line in report:
        match = re.match(r"deprl key (\S+) = .+: .+", line)
        assert match, f"malformed report line {line!r}"
        keys.append(match.group(1))
    return keys


def convert_fixture(name: str) -> tuple[dict, list[str]]:
    return convert(load(FIXTURES / name))


# ------------------------------------------------------------------ the reference files


@pytest.mark.parametrize("fixture", sorted(MYOSUITE))
def test_myosuite_files_convert_every_value(fixture):
    expected, expected_reports = MYOSUITE[fixture]
    config, report = convert_fixture(fixture)
    assert_same(config, expected)
    init_args = config["data"]["init_args"]
    assert type(init_args["replay"]["steps_before_batches"]) is int
    for key in ("total_steps", "epoch_steps", "save_steps"):
        assert type(init_args[key]) is int
    keys = reported_keys(report)
    assert len(keys) == len(set(keys)), "one line per key"
    assert set(keys) == expected_reports
    header = next(line for line in report if line.startswith("deprl key tonic.header"))
    assert MYO_HEADER in header and "['myosuite']" in header
    assert not any("checkpoint" in line for line in report)  # `last` is lit_rl's behaviour


def test_scone_walk_converts_the_adaptive_energy_replay():
    config, report = convert_fixture("scone_walk_h0918.yaml")
    init_args = config["data"]["init_args"]
    assert init_args["env"] == {
        "id": "sconewalk_h0918-v1",
        "scaled_actions": False,
        "make_kwargs": {},
        "env_args": {
            "clip_actions": True,
            "grf_coeff": -0.17281,
            "joint_limit_coeff": -0.1307,
            "nmuscle_coeff": -1.57929,
            "smooth_coeff": -0.097,
            "vel_coeff": 10,
            "step_size": 0.025,
            "init_activations_mean": 0.01,
            "init_activations_std": 0,
        },
        "imports": ["sconegym"],
    }
    # The Buffer keys of the AdaptiveEnergyBuffer become the replay, its own keys replay.adaptive_energy.
    assert_same(
        init_args["replay"],
        {
            "return_steps": 1,
            "batch_size": 256,
            "steps_before_batches": 200000,
            "steps_between_batches": 1000,
            "batch_iterations": 30,
            "adaptive_energy": {"num_acts": 18},
            **DEPRL_REPLAY,
        },
    )
    assert (init_args["total_steps"], init_args["epoch_steps"], init_args["save_steps"]) == (500000000, 200000, 1000000)
    assert config["model"]["init_args"]["dep_mode"] == 3
    assert config["model"]["init_args"]["dep"]["intervention_length"] == 8
    assert "hidden_size" not in config["model"]["init_args"]  # no mpo_args in this file
    assert "working_dir" not in config  # deprl's placeholder; lit_rl's default runs/ is used
    working_dir = next(line for line in report if line.startswith("deprl key working_dir"))
    assert "IGNORED_FOR_HYFYDY" in working_dir and "SCONE's results folder" in working_dir
    assert set(reported_keys(report)) == {
        "tonic.header",
        "tonic.before_training",
        "tonic.after_training",
        "working_dir",
    }


def test_scone_run_converts_and_reports_an_unknown_top_level_key():
    config, report = convert_fixture("scone_run_h2190.yaml")
    init_args = config["data"]["init_args"]
    assert init_args["env"]["imports"] == ["sconegym"]
    assert init_args["env"]["env_args"]["run"] is True
    assert init_args["env"]["env_args"]["self_contact_coeff"] == -10.0
    assert type(init_args["replay"]["steps_before_batches"]) is int
    assert init_args["replay"]["steps_before_batches"] == 1000000
    assert config["model"]["init_args"]["hidden_size"] == 1024
    assert set(reported_keys(report)) == {
        "tonic.header",
        "tonic.before_training",
        "tonic.after_training",
        "id",
        "working_dir",
    }


def test_json_test_settings():
    config, report = convert_fixture("test_settings.json")
    init_args = config["data"]["init_args"]
    assert type(init_args["replay"]["size"]) is int
    assert init_args["replay"]["size"] == 10000
    assert init_args["replay"]["return_steps"] == 3
    assert (init_args["total_steps"], init_args["epoch_steps"], init_args["save_steps"]) == (2000, 1000, 1000)
    assert (init_args["parallel"], init_args["sequential"]) == (2, 1)
    assert init_args["env"]["make_kwargs"] == {"reset_type": "random"}
    assert init_args["env"]["muscle_sigmoid"] is True
    assert config["working_dir"] == "./tests/test_DEPRL"
    assert config["model"]["init_args"]["hidden_size"] == 64
    assert config["model"]["init_args"]["dep"] == MYO_DEP
    assert set(reported_keys(report)) == {
        "tonic.header",
        "tonic.before_training",
        "tonic.after_training",
        "tonic.cpu_override",
        "tonic.environment[scaled_actions]",
    }
    assert any(line.startswith("deprl key tonic.cpu_override = 1: ") for line in report)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.iterdir()))
def test_converted_keys_exist_in_lit_rl(fixture):
    """Every converted key is an argument of the lit_rl class it is for (dep_mode/dep land with the lead's
    DEP work, so they are left out here)."""
    import inspect

    from lit_rl.algos import DDPG, MPO
    from lit_rl.data import ReplayConfig, RolloutDataModule
    from lit_rl.envs import EnvConfig

    config, _ = convert_fixture(fixture)
    model = {"lit_rl.algos.MPO": MPO, "lit_rl.algos.DDPG": DDPG}[config["model"]["class_path"]]
    model_args = set(config["model"]["init_args"]) - {"dep_mode", "dep"}
    assert model_args <= set(inspect.signature(model).parameters)
    data = config["data"]["init_args"]
    assert set(data) <= set(inspect.signature(RolloutDataModule).parameters)
    EnvConfig(**data["env"])
    ReplayConfig(**data["replay"])


# ------------------------------------------------------------------ other agents and keys


def minimal(**tonic) -> dict:
    return {
        "tonic": {
            "agent": "deprl.custom_agents.dep_factory(3, deprl.custom_mpo_torch.TunedMPO())"
            "(replay=deprl.replays.buffers.Buffer(size=int(1e5), discount_factor=0.98))",
            "environment": "deprl.environments.Gym('Pendulum-v1')",
            "trainer": "deprl.custom_trainer.Trainer(steps=2e4, epoch_steps=int(1e3), save_steps=5000)",
            **tonic,
        }
    }


def test_defaults_and_numbers():
    config, report = convert(minimal())
    data = config["data"]["init_args"]
    assert data["env"] == {
        "id": "Pendulum-v1",
        "scaled_actions": True,  # deprl's default
        "make_kwargs": {},
        "env_args": {},
        "imports": [],
    }
    assert_same(data["replay"], {"size": 100000, "discount": 0.98, **DEPRL_REPLAY})
    assert_same([data["total_steps"], data["epoch_steps"], data["save_steps"]], [20000, 1000, 5000])
    assert report == []


def test_undepped_agent_reports_the_dep_block():
    deprl = minimal(agent="tonic.torch.agents.MPO(replay=deprl.replays.buffers.Buffer(batch_size=64))")
    deprl["DEP"] = {"kappa": 1000}
    config, report = convert(deprl)
    assert config["model"] == {"class_path": "lit_rl.algos.MPO", "init_args": {**DEPRL_MODEL, "dep_mode": 0}}
    assert "terminal_muscle_range" not in config["data"]["init_args"]  # DEP's input only
    assert reported_keys(report) == ["DEP"]


def test_ddpg_reports_mpo_args():
    deprl = minimal(agent="deprl.custom_agents.dep_factory(1, tonic.torch.agents.DDPG())()")
    deprl["mpo_args"] = MPO_ARGS
    deprl["DEP"] = {"kappa": 1000}
    config, report = convert(deprl)
    init_args = {**DEPRL_MODEL, "dep_mode": 1, "dep": {"kappa": 1000}}
    assert config["model"] == {"class_path": "lit_rl.algos.DDPG", "init_args": init_args}
    assert config["data"]["init_args"]["replay"] == DEPRL_REPLAY
    assert reported_keys(report) == ["mpo_args"]


@pytest.mark.parametrize(("agent", "class_path"), [("SAC", "lit_rl.algos.SAC"), ("TD3", "lit_rl.algos.TD3")])
def test_dep_wrapped_sac_and_td3_convert(agent, class_path):
    config, report = convert(minimal(agent=f"deprl.custom_agents.dep_factory(3, tonic.torch.agents.{agent}())()"))
    assert config["model"] == {"class_path": class_path, "init_args": {**DEPRL_MODEL, "dep_mode": 3}}
    assert report == []


def test_every_adaptive_energy_key_lands_in_replay_adaptive_energy():
    buffer = (
        "deprl.custom_replay_buffers.AdaptiveEnergyBuffer(batch_size=32, num_acts=90, alpha=0.7, threshold=1200, "
        "lr=8e-4, lr_decimation=0.8, cost_function=2)"
    )
    config, report = convert(minimal(agent=f"tonic.torch.agents.MPO(replay={buffer})"))
    assert config["data"]["init_args"]["replay"] == {
        "batch_size": 32,
        "adaptive_energy": {
            "num_acts": 90, "alpha": 0.7, "threshold": 1200.0, "lr": 8e-4, "lr_decimation": 0.8, "cost_function": 2,
        },
        **DEPRL_REPLAY,
    }  # fmt: skip
    assert reported_keys(report) == []
    with pytest.raises(ConvertError, match="AdaptiveEnergyBuffer needs num_acts"):
        convert(minimal(agent="tonic.torch.agents.MPO(replay=deprl.custom_replay_buffers.AdaptiveEnergyBuffer())"))


def test_test_environment_checkpoint_and_unknown_keys():
    deprl = minimal(
        test_environment="deprl.environments.Gym('Pendulum-v1', scaled_actions=True, max_episode_steps=int(500))",
        checkpoint="step_100000",
        mystery=7,
    )
    deprl["env_args"] = {"speed": 1.5}
    config, report = convert(deprl)
    assert config["data"]["init_args"]["test_env"] == {
        "id": "Pendulum-v1",
        "scaled_actions": True,
        "make_kwargs": {"max_episode_steps": 500},
        "env_args": {"speed": 1.5},
        "imports": [],
    }
    assert reported_keys(report) == ["tonic.checkpoint", "tonic.mystery"]


@pytest.mark.parametrize(
    ("header", "imports"),
    [
        ("import deprl, gym, sconegym", ["sconegym"]),
        (MYO_HEADER, ["myosuite"]),
        (
            "import gymnasium as gym\nimport tonic.torch\nimport foo.envs, bar\nfrom bar.utils import x",
            ["foo.envs", "bar"],
        ),
        ("", []),
    ],
)
def test_header_imports(header, imports):
    config, report = convert(minimal(header=header))
    assert config["data"]["init_args"]["env"]["imports"] == imports
    assert reported_keys(report) == ["tonic.header"]


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ("deprl.custom_agents.dep_factory(3, tonic.torch.agents.D4PG())()", "tonic.torch.agents.D4PG"),
        ("tonic.torch.agents.PPO()", "tonic.torch.agents.PPO"),
        ("deprl.custom_agents.dep_factory(7, tonic.torch.agents.MPO())()", "mode"),
        ("tonic.torch.agents.MPO(replay=my.Buffer())", "my.Buffer()"),
    ],
)
def test_unknown_agents_are_errors(agent, message):
    with pytest.raises(ConvertError, match=re.escape(message)) as error:
        convert(minimal(agent=agent))
    assert str(error.value).startswith("tonic.agent: ")


# ------------------------------------------------------------------ never run deprl's strings


@pytest.fixture
def no_eval(monkeypatch):
    """Fail the test if anything calls eval or exec while converting."""

    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec called during conversion")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)


@pytest.mark.parametrize(
    ("key", "template"),
    [
        ("environment", "__import__('os').system('echo pwned > {marker}')"),
        ("environment", "deprl.environments.Gym('Pendulum-v1', x=__import__('os').system('echo pwned > {marker}'))"),
        ("trainer", "deprl.custom_trainer.Trainer(steps=int(__import__('os').system('echo pwned > {marker}')))"),
        ("agent", "tonic.torch.agents.MPO(replay=deprl.replays.buffers.Buffer(size=open('{marker}', 'w')))"),
    ],
)
def test_malicious_expressions_are_rejected_not_run(tmp_path, no_eval, key, template):
    marker = tmp_path / "pwned"
    expression = template.format(marker=marker)
    with pytest.raises(ConvertError, match=re.escape(f"tonic.{key}: ")) as error:
        convert(minimal(**{key: expression}))
    assert "__import__" in str(error.value) or "open(" in str(error.value)
    assert not marker.exists()


def test_header_code_is_reported_not_run(tmp_path, no_eval):
    marker = tmp_path / "pwned"
    header = f"import deprl, myosuite; __import__('os').system('echo pwned > {marker}')"
    config, report = convert(minimal(header=header))
    assert config["data"]["init_args"]["env"]["imports"] == ["myosuite"]
    assert "not converted" in report[0] and "__import__" in report[0]
    assert not marker.exists()


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.iterdir()))
def test_fixtures_convert_without_eval(no_eval, fixture):
    convert_fixture(fixture)


# ------------------------------------------------------------------ the CLI


def test_cli_converts_a_file():
    result = run_cli("convert", "tests/fixtures/deprl/myoLegWalk.yaml", timeout=60)
    ok(result)
    assert result.stdout.startswith(
        "# converted from tests/fixtures/deprl/myoLegWalk.yaml by python -m lit_rl convert\n"
    )
    config, report = convert_fixture("myoLegWalk.yaml")
    assert_same(yaml.safe_load(result.stdout), config)
    assert result.stderr.splitlines() == report
    assert set(reported_keys(result.stderr.splitlines())) == MYOSUITE["myoLegWalk.yaml"][1]


def test_cli_errors(tmp_path):
    missing = run_cli("convert", str(tmp_path / "nope.yaml"), timeout=60)
    assert missing.returncode == 2
    assert "nope.yaml" in missing.stderr and "not found" in missing.stderr
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(minimal(environment=f"__import__('os').system('echo pwned > {marker}')")))
    result = run_cli("convert", str(bad), timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "tonic.environment" in result.stderr and "__import__('os')" in result.stderr
    assert not marker.exists()


# ------------------------------------------------------------------ what the deprl configs build


@pytest.fixture(params=["converted myoLegWalk.yaml", "configs/dep_mpo_myolegwalk.yaml"])
def deprl_myoleg(request, tmp_path):
    """The CLI's model and DataModule from deprl's file (converted) and from the shipped config."""
    from lit_rl.commands.cli import LitRLCLI

    if request.param.startswith("converted"):
        config = tmp_path / "converted.yaml"
        config.write_text(yaml.safe_dump(convert_fixture("myoLegWalk.yaml")[0]))
    else:
        config = ROOT / request.param
    args = ["--config", str(config), "--trainer.logger", "false", "--working_dir", str(tmp_path)]
    return LitRLCLI(args=[*args, "--model.init_args.hidden_size", "16"], run=False)


def test_deprl_configs_build_deprls_computation(deprl_myoleg):
    """The actor ignores the observation normaliser, the critic uses it (deprl's tonic), with float32
    statistics; DEP's muscle range takes in terminal states and phases count as deprl's trainer does."""
    import torch

    model, data = deprl_myoleg.model, deprl_myoleg.datamodule
    assert model.normalizer is not None and model.normalizer.statistics == "float32"
    torch.manual_seed(0)
    observations = torch.randn(5, model.observation_dim)
    actions = torch.rand(5, model.action_dim)
    greedy, q = model.act_greedy(observations), model.q(observations, actions)
    with torch.no_grad():  # a fitted normaliser: the critic's inputs change, the actor's do not
        model.normalizer.mean.copy_(torch.randn(model.observation_dim))
        model.normalizer.std.copy_(torch.rand(model.observation_dim) + 0.5)
    assert torch.equal(model.act_greedy(observations), greedy)
    assert not torch.allclose(model.q(observations, actions), q)
    assert data.terminal_muscle_range is True
    assert data.replay_config.phase_clock == data.schedule.phase_clock == "before_step"

"""The suite every algorithm of ``lit_rl.algos`` passes, parametrized over the registered ones: a
new algorithm (one file and its ``configs/smoke/<name>_pendulum.yaml``) is covered without a
test of its own. Fit, kill -9 and resume bit-identical, ``validate``, ``export`` (TorchScript and
ONNX under onnxruntime, with and without the env's action mapping) against ``act_greedy``, a
2-process DDP run in bf16-mixed whose ranks end with the same weights."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from lit_rl.algos import algorithms
from lit_rl.commands.export import load_algorithm
from lit_rl.envs import EnvConfig, make_env
from lit_rl.envs.make import ActionMap
from tests.conftest import DATA_KEY, ROOT, load_ckpt, ok, run_cli
from tests.crash_helpers import assert_same_run, kill_when, start_fit

NAMES = list(algorithms())
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]


def smoke(name: str) -> list[str]:
    return ["--config", str(ROOT / "configs" / "smoke" / f"{name.lower()}_pendulum.yaml"), *QUIET]


def fit(name: str, working_dir, run: str, *extra: str):
    return ok(run_cli("fit", *smoke(name), "--working_dir", str(working_dir), "--name", run, *extra))


# 70-step episodes: the save at 200 env steps (100 per env) falls 30 steps into each env's second episode
MID_EPISODE = ["--data.init_args.env.make_kwargs.max_episode_steps", "70"]


@pytest.fixture(scope="module", params=NAMES)
def reference(request, tmp_path_factory):
    """(name, checkpoints) of an uninterrupted smoke run (400 env steps, saves at 200 and 400)."""
    working_dir = tmp_path_factory.mktemp(request.param)
    fit(request.param, working_dir, "reference", *MID_EPISODE)
    return request.param, working_dir / "reference" / "checkpoints"


@pytest.mark.parametrize("name", NAMES)
def test_every_algorithm_has_a_smoke_config(name):
    config = ROOT / "configs" / "smoke" / f"{name.lower()}_pendulum.yaml"
    assert config.is_file(), f"{name} needs {config.relative_to(ROOT)}: a run of seconds the suite trains"
    assert algorithms()[name].__doc__, f"{name} needs a docstring: it is what --model.help prints"


def test_fit_trains_and_counts_updates(reference):
    name, checkpoints = reference
    checkpoint = load_ckpt(checkpoints / "last.ckpt")
    assert checkpoint[DATA_KEY]["env_steps"] == 400
    assert checkpoint["hyper_parameters"]["_class_path"].endswith(name)
    assert checkpoint["updates"] > 0
    assert all(state["state"] for state in checkpoint["optimizer_states"]), "every optimizer stepped"


def test_kill_9_mid_episode_then_resume_is_bit_identical(reference, tmp_path):
    """The envs' physics, wrappers and running episodes are in the checkpoint: the resumed run
    continues every episode, and its replay rows, weights and env states equal the uninterrupted run's."""
    name, expected = reference
    checkpoints = tmp_path / "killed" / "checkpoints"
    process = start_fit(tmp_path, "killed", *smoke(name), *MID_EPISODE)
    stopped = []

    def stopped_at_first_checkpoint() -> bool:
        if not stopped and (checkpoints / "last.ckpt").is_file():
            os.kill(process.pid, signal.SIGSTOP)  # then SIGKILL: nothing after the save happens
            stopped.append(True)
        return bool(stopped)

    kill_when(process, stopped_at_first_checkpoint)
    saved = load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]
    assert saved["env_steps"] == 200 and [state["length"] for state in saved["env_states"]] == [30, 30]
    fit(name, tmp_path, "killed", *MID_EPISODE, "--ckpt_path", "last")
    assert_same_run(checkpoints, expected)


def test_validate_the_checkpoint(reference, tmp_path):
    name, checkpoints = reference
    result = run_cli(
        "validate", *smoke(name), "--ckpt_path", str(checkpoints / "last.ckpt"), "--working_dir", str(tmp_path)
    )
    ok(result)
    assert "test/episode_return" in result.stdout


LOAD_WITHOUT_LIT_RL = """
import sys
sys.modules["lit_rl"] = None
sys.modules["lightning"] = None
import torch
policy = torch.jit.load(sys.argv[1])
torch.save(policy(torch.load(sys.argv[2])), sys.argv[3])
"""


def test_export_acts_like_act_greedy_without_lit_rl(reference, tmp_path):
    _, checkpoints = reference
    ckpt, policy = checkpoints / "last.ckpt", tmp_path / "policy.pt"
    ok(run_cli("export", "--ckpt_path", str(ckpt), "--out", str(policy)))
    module = load_algorithm(ckpt)
    if module.normalizer is not None:  # the statistics moved away from the identity: folding them in matters
        assert module.normalizer.count.item() > 0 and not torch.allclose(module.normalizer.std, torch.ones(3))
    observations = torch.randn(7, module.observation_dim) * 3  # another batch size than the trace's
    torch.save(observations, tmp_path / "obs.pt")
    command = [sys.executable, "-I", "-c", LOAD_WITHOUT_LIT_RL, str(policy), str(tmp_path / "obs.pt")]
    subprocess.run([*command, str(tmp_path / "actions.pt")], check=True, timeout=120)
    with torch.no_grad():
        expected = module.act_greedy(observations)
    torch.testing.assert_close(torch.load(tmp_path / "actions.pt"), expected)


RUN_ONNX_WITHOUT_TORCH = """
import sys
for name in ("lit_rl", "lightning", "torch"):
    sys.modules[name] = None
import numpy as np
import onnxruntime
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
np.save(sys.argv[3], session.run(["actions"], {"observations": np.load(sys.argv[2])})[0])
"""


# Agent actions through ONNX are slow-only: the TorchScript test above covers the agent-action
# export of every algorithm, and the env-action case the ONNX path.
@pytest.mark.parametrize(
    "env_actions", [pytest.param(False, marks=pytest.mark.slow), True], ids=["agent-actions", "env-actions"]
)
def test_onnx_export_runs_under_onnxruntime_like_act_greedy(reference, env_actions, tmp_path):
    _, checkpoints = reference
    ckpt, policy = checkpoints / "last.ckpt", tmp_path / "policy.onnx"
    ok(run_cli("export", "--ckpt_path", str(ckpt), "--out", str(policy), *(["--env_actions"] if env_actions else [])))
    module = load_algorithm(ckpt)
    observations = torch.randn(7, module.observation_dim) * 3
    np.save(tmp_path / "obs.npy", observations.numpy())
    command = [sys.executable, "-I", "-c", RUN_ONNX_WITHOUT_TORCH, str(policy), str(tmp_path / "obs.npy")]
    subprocess.run([*command, str(tmp_path / "actions.npy")], check=True, timeout=120)
    with torch.no_grad():
        expected = module.act_greedy(observations).numpy()
    if env_actions:  # what lit_rl's envs do with the agent's actions (Pendulum: scaled to [-2, 2])
        config = yaml.safe_load((checkpoints.parent / "config.yaml").read_text())["data"]["init_args"]["env"]
        mapped = ActionMap(make_env(EnvConfig(**config)).action_space, EnvConfig(**config))(expected)
        assert not np.allclose(mapped, expected)  # the mapping does something here
        expected = mapped
    np.testing.assert_allclose(np.load(tmp_path / "actions.npy"), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_two_ddp_processes_in_bf16_end_with_the_same_weights(name, tmp_path):
    """DDP and bf16-mixed in one run (each alone is the same code path, and a run costs seconds)."""
    snapshot = {"class_path": "tests.ddp_helpers.RankSnapshot", "init_args": {"out_dir": str(tmp_path / "snap")}}
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", f"--trainer.callbacks+={json.dumps(snapshot)}"]
    fit(name, tmp_path, "ddp", *ddp, "--trainer.precision", "bf16-mixed")
    rank0, rank1 = (load_ckpt(tmp_path / "snap" / f"end-rank{rank}.pt") for rank in (0, 1))
    assert rank0["state_dict"].keys() == rank1["state_dict"].keys()
    for key in rank0["state_dict"]:
        if ".new_" not in key:  # the normaliser's observations since its last update are each rank's own
            assert torch.equal(rank0["state_dict"][key], rank1["state_dict"][key]), f"{key} differs"
    assert not torch.equal(rank0["replay_observations"], rank1["replay_observations"]), "ranks saw the same data"
    checkpoint = load_ckpt(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    assert checkpoint["updates"] > 0
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
